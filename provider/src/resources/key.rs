//! `securepipeline:aws:Key`: a customer-managed KMS key with rotation and
//! an alias, encrypting artifacts, build output, logs and notifications;
//! or a key the user brings (`existingArn`), checked and given the
//! pipeline's statements in its policy, but never otherwise changed or
//! deleted.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use aws_sdk_kms::operation::describe_key::DescribeKeyOutput;
use aws_sdk_kms::types::{KeySpec, KeyState, KeyUsageType, Tag};
use serde::{Deserialize, Serialize};

use super::common::{check_exact_arn, enabled, from_sdk_tags, is_enabled, sdk_tags};
use super::user_key::{self, Unreadable};
use crate::aws::arn::{is_region, Arns};
use crate::aws::failure::AwsFailure;
use crate::aws::retry::{once, Created, Transient};
use crate::iam::policy::Conditions;
use crate::iam::{Effect, PolicyDocument, Statement};
use crate::naming;
use crate::resource::{
    is_unknown, AutoName, CheckContext, CheckFailure, CreateToken, CustomResource, Failures,
    NameScope, Op, Placement, ResourceError, TagChange,
};
use crate::tags::Tags;

pub struct Key;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KeyInputs {
    pub name_prefix: String,
    /// `alias/<name>`, chosen by `check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_name: Option<String>,
    pub description: String,
    /// Use this key instead of creating one: it is checked, the services'
    /// statements are merged into its policy, and it is never deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_arn: Option<String>,
    /// The region the key lives in (cross-region pipelines need a key in
    /// each region); absent means the provider's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Always true; an input so that refresh shows rotation turned off.
    #[serde(default = "enabled")]
    pub enable_key_rotation: bool,
    /// Always true; an input so that refresh shows a key disabled outside
    /// Pulumi (nothing can encrypt or decrypt with it then).
    #[serde(default = "enabled", skip_serializing_if = "is_enabled")]
    pub enabled: bool,
    /// Services (e.g. `logs.eu-west-1.amazonaws.com`, `events.amazonaws.com`)
    /// allowed to use the key, each only on behalf of this account.
    #[serde(default)]
    pub service_principals: Vec<String>,
    /// What each service principal may use the key for: for CloudWatch
    /// Logs the exact log group ARNs (`kms:EncryptionContext:aws:logs:arn`),
    /// for other services the exact source ARNs (`aws:SourceArn`, e.g. an
    /// EventBridge rule). A service absent here is limited to the account.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_scopes: BTreeMap<String, Vec<String>>,
    /// The key policy; set by `check` from the account and the services.
    /// For an existing key, only the statements merged into its policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyDocument>,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KeyOutputs {
    pub key_id: String,
    pub arn: String,
    pub alias_arn: String,
}

const ALIAS_PREFIX: &str = "alias/";
/// KMS's limit on a key description.
const MAX_DESCRIPTION: usize = 8192;
/// KMS's limit on a key policy document.
const MAX_POLICY_BYTES: usize = 32 * 1024;
/// The shortest waiting period KMS allows, so a destroyed key is gone soon
/// but can still be recovered by hand for a week.
const DELETION_WINDOW_DAYS: i32 = 7;
const SERVICE_SUFFIX: &str = ".amazonaws.com";
const ADMIN_SID: &str = "AccountAdministers";
const EXISTING_EXAMPLE: &str =
    "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// What a service principal may do with the key: encrypt and decrypt on
/// this account's behalf, never manage it.
pub const SERVICE_ACTIONS: &[&str] = &[
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
];

pub fn alias_arn(arns: &Arns<'_>, alias: &str) -> String {
    format!(
        "arn:{}:kms:{}:{}:{alias}",
        arns.partition, arns.region, arns.account
    )
}

/// The key policy: the account administers the key (which lets IAM policies
/// grant its use), and each service may use it only for this account.
/// In a key policy `Resource: "*"` means this key and nothing else.
pub fn key_policy(
    arns: &Arns<'_>,
    service_principals: &[String],
    scopes: &BTreeMap<String, Vec<String>>,
) -> PolicyDocument {
    let mut statements = vec![Statement {
        sid: Some(ADMIN_SID.into()),
        effect: Effect::Allow,
        principal: Some([("AWS".to_string(), vec![arns.account_root()])].into()),
        actions: vec!["kms:*".into()],
        resources: vec!["*".into()],
        conditions: Conditions::new(),
    }];
    statements.extend(service_statements(arns, service_principals, scopes, ""));
    PolicyDocument::new(statements)
}

/// One statement per service: it may use the key only on behalf of this
/// account and, where `scopes` names them, only for those exact resources.
/// Each Sid is `sid_prefix` followed by the service's own part, so that
/// statements merged into a user's key policy carry this pipeline's name.
fn service_statements(
    arns: &Arns<'_>,
    service_principals: &[String],
    scopes: &BTreeMap<String, Vec<String>>,
    sid_prefix: &str,
) -> Vec<Statement> {
    let mut statements = Vec::new();
    for service in service_principals {
        let mut conditions: Conditions = [(
            "StringEquals".to_string(),
            [(
                "aws:SourceAccount".to_string(),
                vec![arns.account.to_string()],
            )]
            .into(),
        )]
        .into();
        if let Some(scope) = scopes.get(service).filter(|s| !s.is_empty()) {
            // CloudWatch Logs sends no source ARN; it names the log group
            // in the encryption context instead.
            let key = if service.starts_with("logs.") {
                "kms:EncryptionContext:aws:logs:arn"
            } else {
                "aws:SourceArn"
            };
            conditions.insert(
                "ArnEquals".to_string(),
                [(key.to_string(), scope.clone())].into(),
            );
        }
        statements.push(Statement {
            sid: Some(format!("{sid_prefix}{}", service_sid(service))),
            effect: Effect::Allow,
            principal: Some([("Service".to_string(), vec![service.clone()])].into()),
            actions: SERVICE_ACTIONS.iter().map(|a| (*a).to_string()).collect(),
            resources: vec!["*".into()],
            conditions,
        });
    }
    statements
}

/// What the key's policy must hold: for a created key the whole policy,
/// for a user's key the statements merged into it.
fn desired_policy(arns: &Arns<'_>, inputs: &KeyInputs) -> PolicyDocument {
    match &inputs.existing_arn {
        None => key_policy(arns, &inputs.service_principals, &inputs.service_scopes),
        Some(_) => PolicyDocument::new(service_statements(
            arns,
            &inputs.service_principals,
            &inputs.service_scopes,
            &user_key_sid_prefix(&inputs.name_prefix),
        )),
    }
}

/// `logs.eu-west-1.amazonaws.com` -> `ServiceLogsEuWest1`.
fn service_sid(service: &str) -> String {
    format!("Service{}", camel(service.trim_end_matches(SERVICE_SUFFIX)))
}

/// `app-x1y2-key` -> `AppX1y2Key`: a name as Sid characters.
fn camel(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .flat_map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase())
                .into_iter()
                .chain(chars)
        })
        .collect()
}

/// The Sid prefix of the statements one pipeline merges into a key the
/// user brings, e.g. `SecurePipelineAppX1y2Key`: its name prefix carries the
/// component and a tag of its project and stack, so two pipelines sharing
/// a key never touch each other's statements.
fn user_key_sid_prefix(name_prefix: &str) -> String {
    format!("SecurePipeline{}", camel(name_prefix))
}

/// Problems with a key policy. The IAM linter does not apply (in a key
/// policy `kms:*` on `*` is how the account administers its own key), so
/// this checks what matters here: nobody outside this account's root and
/// the listed services is named, and services act only for this account.
pub fn lint_key_policy(doc: &PolicyDocument, arns: &Arns<'_>, services: &[String]) -> Vec<String> {
    let root = arns.account_root();
    let mut problems = Vec::new();
    for (index, statement) in doc.statements.iter().enumerate() {
        let at = statement
            .sid
            .clone()
            .unwrap_or_else(|| format!("statement {index}"));
        let Some(principal) = &statement.principal else {
            problems.push(format!(
                "{at}: a key policy statement must name its principal"
            ));
            continue;
        };
        for (kind, names) in principal {
            for name in names {
                let allowed = match kind.as_str() {
                    "AWS" => name == &root,
                    "Service" => services.contains(name),
                    _ => false,
                };
                if name.contains('*') {
                    problems.push(format!("{at}: principal `{name}` is a wildcard; name the account root or a service"));
                } else if !allowed && !is_unknown(name) {
                    problems.push(format!(
                        "{at}: principal {kind} `{name}` is neither this account's root nor a listed service"
                    ));
                }
            }
        }
        if statement.effect == Effect::Allow && principal.contains_key("Service") {
            if statement
                .actions
                .iter()
                .any(|a| !SERVICE_ACTIONS.contains(&a.as_str()))
            {
                problems.push(format!(
                    "{at}: a service may only use the key ({})",
                    SERVICE_ACTIONS.join(", ")
                ));
            }
            let scoped = statement
                .conditions
                .get("StringEquals")
                .and_then(|keys| keys.get("aws:SourceAccount"))
                .is_some_and(|accounts| accounts.iter().all(|a| a == arns.account));
            if !scoped {
                problems.push(format!(
                    "{at}: a service must be conditioned on aws:SourceAccount {}",
                    arns.account
                ));
            }
        }
    }
    problems
}

/// KMS's own rule on alias names, beyond the characters and length the
/// lifecycle checks.
fn check_alias_name(property: &str, alias: &str) -> Option<CheckFailure> {
    alias
        .strip_prefix(ALIAS_PREFIX)
        .is_some_and(|name| name.starts_with("aws/"))
        .then(|| {
            CheckFailure::new(
                property,
                format!("`{alias}` is reserved for AWS managed keys; choose another name"),
            )
        })
}

fn check_service_principal(property: &str, service: &str) -> Option<CheckFailure> {
    if is_unknown(service) {
        return None;
    }
    let name = service.strip_suffix(SERVICE_SUFFIX).unwrap_or("");
    let valid = !name.is_empty()
        && !name.starts_with('.')
        && !name.ends_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    (!valid).then(|| {
        CheckFailure::new(
            property,
            format!(
                "`{service}` is not a service principal; name one exact service such as `events.amazonaws.com` (no wildcards)"
            ),
        )
    })
}

fn kms_tags(tags: &Tags) -> Result<Vec<Tag>, ResourceError> {
    sdk_tags(tags, |key, value| {
        Tag::builder().tag_key(key).tag_value(value).build()
    })
}

/// KMS's answer for a key or alias that does not exist.
const GONE: &[&str] = &["NotFoundException"];

/// KMS is eventually consistent: a key just created may not be found yet.
const JUST_CREATED: [Transient; 1] = [Transient::Propagation {
    code: "NotFoundException",
    message_contains: "does not exist",
}];

#[async_trait]
impl CustomResource for Key {
    const TYPE: &'static str = "securepipeline:aws:Key";
    type Inputs = KeyInputs;
    type Outputs = KeyOutputs;
    const OUTPUT_KEYS: &'static [&'static str] = &["keyId", "arn", "aliasArn"];
    // Everything but the region and a switch to or from a user's key, the
    // alias included, changes in place: replacing a key would strand
    // whatever it encrypted.
    const REPLACE_KEYS: &'static [&'static str] = &["existingArn"];
    const NAME: AutoName = AutoName {
        service_prefix: ALIAS_PREFIX,
        replaces: false,
        ..AutoName::new(
            "aliasName",
            &naming::KMS_ALIAS,
            "KMS alias",
            NameScope::Region,
        )
    };
    const PLACEMENT: Placement = Placement::Regional;
    // A user's key keeps its own aliases and tags; it is used where it is.
    const ADOPTS: Option<&'static str> = Some("existingArn");

    fn validate(
        ctx: &CheckContext<'_>,
        _olds: Option<&Self::Inputs>,
        news: &mut Self::Inputs,
        failures: &mut Failures,
    ) {
        if let Some(existing) = &news.existing_arn {
            // The user's key keeps its own aliases; it is used where it is.
            failures.extend(check_exact_arn(
                ctx,
                "existingArn",
                existing,
                &["kms"],
                "key/",
                EXISTING_EXAMPLE,
                true,
            ));
            if news.alias_name.is_some() {
                failures.push(
                    "aliasName",
                    "an existing key keeps its own aliases; remove aliasName or existingArn",
                );
            }
            if news.region.is_some() {
                failures.push(
                    "region",
                    "an existing key is used in the provider's region, where it must live; remove region",
                );
            }
        } else if let Some(alias) = &news.alias_name {
            failures.extend(check_alias_name("aliasName", alias));
        }
        if let Some(region) = news
            .region
            .as_deref()
            .filter(|r| !is_unknown(r) && !is_region(r))
        {
            failures.push(
                "region",
                format!("`{region}` is not an AWS region; for example eu-west-1"),
            );
        }
        if news.description.chars().count() > MAX_DESCRIPTION {
            failures.push(
                "description",
                format!("must be at most {MAX_DESCRIPTION} characters"),
            );
        }
        if !news.enable_key_rotation {
            failures.push(
                "enableKeyRotation",
                "rotation cannot be turned off; remove the setting (it is always true)",
            );
        }
        if !news.enabled {
            failures.push(
                "enabled",
                "the key cannot be disabled: the pipeline, its builds and its logs encrypt with it; remove the setting (it is always true)",
            );
        }
        let mut principal_failures = Vec::new();
        for (index, service) in news.service_principals.iter().enumerate() {
            let property = format!("servicePrincipals[{index}]");
            principal_failures.extend(check_service_principal(&property, service));
            if news.service_principals[..index].contains(service) && !is_unknown(service) {
                principal_failures.push(CheckFailure::new(
                    property,
                    format!("`{service}` is listed twice; list it once"),
                ));
            }
        }
        // The policy is derived, never taken from the program. Before the
        // provider knows the account it stays unset; create derives it then.
        news.policy = ctx.aws.map(|aws| desired_policy(&aws.arns(), news));
        if let (Some(aws), Some(policy), true) =
            (ctx.aws, &news.policy, principal_failures.is_empty())
        {
            for problem in lint_key_policy(policy, &aws.arns(), &news.service_principals) {
                failures.push("policy", problem);
            }
            if policy.to_compact_json().len() > MAX_POLICY_BYTES {
                failures.push(
                    "servicePrincipals",
                    format!("the key policy would exceed KMS's {MAX_POLICY_BYTES} byte limit; list fewer services"),
                );
            }
        }
        failures.extend(principal_failures);
    }

    async fn create_resource(
        ctx: &Op<'_>,
        inputs: &Self::Inputs,
        token: &CreateToken,
    ) -> Result<(String, Self::Outputs), ResourceError> {
        if let Some(existing) = &inputs.existing_arn {
            return use_existing(ctx, existing, inputs, None).await;
        }
        let kms = &ctx.clients().kms;
        let alias = ctx.name()?;
        let arns = ctx.arns();
        let policy =
            key_policy(&arns, &inputs.service_principals, &inputs.service_scopes).to_compact_json();
        let tags = kms_tags(&token.mark(&inputs.tags))?;
        let created = ctx
            .create_once(
                format!("creating KMS key {alias}"),
                alias,
                &[],
                &[],
                || {
                    kms.create_key()
                        .description(&inputs.description)
                        .policy(&policy)
                        .key_usage(KeyUsageType::EncryptDecrypt)
                        .key_spec(KeySpec::SymmetricDefault)
                        .set_tags(Some(tags.clone()))
                        .customize()
                        .config_override(
                            aws_sdk_kms::config::Builder::default().retry_config(once()),
                        )
                        .send()
                },
                || key_with_token(ctx, token),
            )
            .await?;
        let metadata = match &created {
            Created::New(output) => output.key_metadata(),
            Created::Found(described) => described.key_metadata(),
        }
        .ok_or_else(|| {
            ResourceError::Failed(format!(
                "creating KMS key {alias}: AWS returned no key metadata"
            ))
        })?;
        let key_id = metadata.key_id().to_string();
        let outputs = KeyOutputs {
            arn: metadata
                .arn()
                .map_or_else(|| arns.kms_key(&key_id), str::to_string),
            alias_arn: alias_arn(&arns, alias),
            key_id: key_id.clone(),
        };
        Ok((key_id, outputs))
    }

    async fn configure(
        ctx: &Op<'_>,
        id: &str,
        _inputs: &Self::Inputs,
        _outputs: &mut Self::Outputs,
    ) -> Result<(), ResourceError> {
        enable_rotation(ctx, id).await?;
        point_alias(ctx, ctx.name()?, id).await
    }

    async fn read_resource(
        ctx: &Op<'_>,
        id: &str,
        inputs: &Self::Inputs,
    ) -> Result<Option<(Self::Inputs, Self::Outputs)>, ResourceError> {
        if inputs.existing_arn.is_some() {
            return read_existing(ctx, id, inputs).await;
        }
        let kms = &ctx.clients().kms;
        let Some(described) = find_key(ctx, id).await? else {
            return Ok(None);
        };
        let metadata = described.key_metadata().ok_or_else(|| {
            ResourceError::Failed(format!(
                "reading KMS key {id}: AWS returned no key metadata"
            ))
        })?;
        // A key waiting for deletion is as good as gone: nothing may use it.
        if matches!(
            metadata.key_state(),
            Some(KeyState::PendingDeletion | KeyState::PendingReplicaDeletion)
        ) {
            return Ok(None);
        }
        let rotation = ctx
            .call(format!("reading rotation of KMS key {id}"), || {
                kms.get_key_rotation_status().key_id(id).send()
            })
            .await?
            .key_rotation_enabled();
        let policy_text = default_policy(ctx, id).await?;
        let policy = match PolicyDocument::parse_aws(&policy_text) {
            Ok(policy) => Some(policy),
            // Not a shape this provider can read (e.g. `NotAction`):
            // read as unset, so the next update replaces it.
            Err(reason) => {
                ctx.log.warn(
                    ctx.urn,
                    &format!("the policy of KMS key {id} was changed outside Pulumi ({reason}); the next update restores it"),
                );
                None
            }
        };
        let aliases = ctx
            .call(format!("reading aliases of KMS key {id}"), || {
                kms.list_aliases().key_id(id).limit(100).send()
            })
            .await?
            .aliases
            .unwrap_or_default();
        // Only this resource's alias counts: one deleted by hand reads as
        // unset (the next update puts it back); others are not ours.
        let live_alias = aliases
            .iter()
            .filter_map(|entry| entry.alias_name())
            .find(|name| Some(*name) == inputs.alias_name.as_deref())
            .map(str::to_string);
        let arns = ctx.arns();
        let outputs = KeyOutputs {
            key_id: metadata.key_id().to_string(),
            arn: metadata
                .arn()
                .map_or_else(|| arns.kms_key(id), str::to_string),
            alias_arn: live_alias
                .as_deref()
                .map(|a| alias_arn(&arns, a))
                .unwrap_or_default(),
        };
        let mut live_inputs = inputs.clone();
        live_inputs.alias_name = live_alias;
        live_inputs.description = metadata.description().unwrap_or_default().to_string();
        live_inputs.enable_key_rotation = rotation;
        live_inputs.enabled = metadata.enabled();
        live_inputs.policy = policy;
        Ok(Some((live_inputs, outputs)))
    }

    async fn update_resource(
        ctx: &Op<'_>,
        id: &str,
        olds: &Self::Inputs,
        news: &Self::Inputs,
        outputs: &Self::Outputs,
    ) -> Result<Self::Outputs, ResourceError> {
        if let Some(existing) = &news.existing_arn {
            return use_existing(ctx, existing, news, olds.policy.as_ref())
                .await
                .map(|(_, outputs)| outputs);
        }
        let kms = &ctx.clients().kms;
        let arns = ctx.arns();
        if olds.description != news.description {
            ctx.call(format!("describing KMS key {id}"), || {
                kms.update_key_description()
                    .key_id(id)
                    .description(&news.description)
                    .send()
            })
            .await?;
        }
        // Before rotation: KMS refuses to change rotation of a disabled key.
        if news.enabled && !olds.enabled {
            ctx.call(format!("enabling KMS key {id}"), || {
                kms.enable_key().key_id(id).send()
            })
            .await?;
        }
        if news.enable_key_rotation && !olds.enable_key_rotation {
            enable_rotation(ctx, id).await?;
        }
        let policy = desired_policy(&arns, news);
        if olds.policy.as_ref() != Some(&policy) {
            put_policy(ctx, id, &policy.to_compact_json())
                .await
                .map_err(|failure| failure.during(format!("setting the policy of KMS key {id}")))?;
        }
        let new_alias = ctx.name()?;
        if olds.alias_name.as_deref() != Some(new_alias) {
            point_alias(ctx, new_alias, id).await?;
            if let Some(old_alias) = &olds.alias_name {
                delete_alias(ctx, old_alias).await?;
            }
        }
        Ok(KeyOutputs {
            alias_arn: alias_arn(&arns, new_alias),
            ..outputs.clone()
        })
    }

    async fn delete_resource(
        ctx: &Op<'_>,
        id: &str,
        inputs: &Self::Inputs,
        _outputs: &Self::Outputs,
    ) -> Result<(), ResourceError> {
        // A user's key is theirs: only the pipeline's statements go.
        if inputs.existing_arn.is_some() {
            return withdraw_from_existing(ctx, id, inputs).await;
        }
        if let Some(alias) = &inputs.alias_name {
            delete_alias(ctx, alias).await?;
        }
        let kms = &ctx.clients().kms;
        let scheduled = ctx
            .delete(format!("scheduling deletion of KMS key {id}"), GONE, || {
                kms.schedule_key_deletion()
                    .key_id(id)
                    .pending_window_in_days(DELETION_WINDOW_DAYS)
                    .send()
            })
            .await;
        match scheduled {
            Ok(()) => Ok(()),
            // Already scheduled for deletion is deleted as far as Pulumi goes;
            // any other state that refuses deletion is an error.
            Err(failure)
                if failure.is(&["KMSInvalidStateException"]) && pending_deletion(ctx, id).await =>
            {
                Ok(())
            }
            Err(failure) => Err(failure.into()),
        }
    }

    async fn read_tags(ctx: &Op<'_>, id: &str) -> Result<Option<Tags>, AwsFailure> {
        let kms = &ctx.clients().kms;
        let listed = ctx
            .find(format!("reading tags of KMS key {id}"), GONE, || {
                kms.list_resource_tags().key_id(id).limit(50).send()
            })
            .await?;
        Ok(listed
            .map(|listed| from_sdk_tags(listed.tags(), |tag| (tag.tag_key(), tag.tag_value()))))
    }

    async fn write_tags(ctx: &Op<'_>, id: &str, change: &TagChange) -> Result<(), ResourceError> {
        let kms = &ctx.clients().kms;
        let set = kms_tags(&change.set)?;
        change
            .by_key(
                |keys| {
                    ctx.call(format!("untagging KMS key {id}"), move || {
                        kms.untag_resource()
                            .key_id(id)
                            .set_tag_keys(Some(keys.clone()))
                            .send()
                    })
                },
                |_| {
                    ctx.call(format!("tagging KMS key {id}"), || {
                        kms.tag_resource()
                            .key_id(id)
                            .set_tags(Some(set.clone()))
                            .send()
                    })
                },
            )
            .await?;
        Ok(())
    }
}

/// Checks the user's key and merges the pipeline's statements into its
/// policy, replacing those it merged before (`previous`).
async fn use_existing(
    ctx: &Op<'_>,
    arn: &str,
    inputs: &KeyInputs,
    previous: Option<&PolicyDocument>,
) -> Result<(String, KeyOutputs), ResourceError> {
    let facts = match user_key::inspect(&ctx.clients().kms, arn).await {
        Ok(facts) => facts,
        Err(Unreadable::Aws(failure)) => {
            return Err(failure.during(format!("kmsKeyArn: reading `{arn}`")).into())
        }
        Err(other) => return Err(ResourceError::Failed(format!("kmsKeyArn: {other}"))),
    };
    let problems = user_key::problems(&facts, &ctx.region);
    if !problems.is_empty() {
        return Err(ResourceError::Failed(format!(
            "kmsKeyArn: {}",
            problems.join("; ")
        )));
    }
    let ours = desired_policy(&ctx.arns(), inputs).statements;
    let stale: BTreeSet<String> = previous
        .iter()
        .flat_map(|p| &p.statements)
        .filter_map(|s| s.sid.clone())
        .collect();
    let help = format!(
        "allow the provider kms:GetKeyPolicy and kms:PutKeyPolicy on the key, or add exactly these statements to the key policy's Statement list yourself (the provider then only checks them):\n{}",
        user_key::required_statements(&ours)
    );
    let cannot = |failure: AwsFailure, what: &str| {
        failure
            .during(format!("kmsKeyArn: {what} the policy of `{arn}`"))
            .advise(help.clone())
    };
    let live = default_policy(ctx, &facts.key_id)
        .await
        .map_err(|failure| cannot(failure, "reading"))?;
    let merged = user_key::merge(&live, &ours, &stale).map_err(|why| {
        ResourceError::Failed(format!(
            "kmsKeyArn: the provider cannot write the policy of `{arn}` ({why}); {help}"
        ))
    })?;
    if let Some(policy) = merged {
        put_policy(ctx, &facts.key_id, &policy)
            .await
            .map_err(|failure| cannot(failure, "adding the pipeline's statements to"))?;
    }
    Ok((
        facts.key_id.clone(),
        KeyOutputs {
            key_id: facts.key_id,
            arn: facts.arn,
            alias_arn: String::new(),
        },
    ))
}

/// The user's key as it is: gone when it no longer exists or waits for
/// deletion; rotation and the pipeline's statements as they are now, so
/// that drift shows and the next update checks or restores them.
async fn read_existing(
    ctx: &Op<'_>,
    id: &str,
    inputs: &KeyInputs,
) -> Result<Option<(KeyInputs, KeyOutputs)>, ResourceError> {
    let facts = match user_key::inspect(&ctx.clients().kms, id).await {
        Ok(facts) => facts,
        Err(Unreadable::Missing { .. }) => return Ok(None),
        Err(Unreadable::Aws(failure)) if failure.is(GONE) => return Ok(None),
        Err(Unreadable::Aws(failure)) => return Err(failure.into()),
        Err(other) => return Err(ResourceError::Failed(other.to_string())),
    };
    if matches!(
        facts.state,
        KeyState::PendingDeletion | KeyState::PendingReplicaDeletion
    ) {
        return Ok(None);
    }
    let live = default_policy(ctx, id).await?;
    let mut live_inputs = inputs.clone();
    live_inputs.enable_key_rotation = facts.rotation.unwrap_or(false);
    live_inputs.policy = inputs
        .policy
        .clone()
        .filter(|ours| user_key::holds(&live, &ours.statements, &BTreeSet::new()));
    let outputs = KeyOutputs {
        key_id: facts.key_id,
        arn: facts.arn,
        alias_arn: String::new(),
    };
    Ok(Some((live_inputs, outputs)))
}

/// Takes the pipeline's statements out of the user's key policy. A key
/// that is gone needs nothing; a policy the provider may not change is
/// reported with the Sids to remove by hand, without failing the destroy.
async fn withdraw_from_existing(
    ctx: &Op<'_>,
    id: &str,
    inputs: &KeyInputs,
) -> Result<(), ResourceError> {
    const DENIED: &[&str] = &["AccessDeniedException"];
    let sids: BTreeSet<String> = desired_policy(&ctx.arns(), inputs)
        .statements
        .into_iter()
        .chain(inputs.policy.iter().flat_map(|p| p.statements.clone()))
        .filter_map(|s| s.sid)
        .collect();
    let live = match default_policy(ctx, id).await {
        Ok(found) => found,
        Err(failure) if failure.is(&["NotFoundException", "KMSInvalidStateException"]) => {
            return Ok(())
        }
        Err(failure) if failure.is(DENIED) => {
            leave_to_user(ctx, id, &sids, &failure);
            return Ok(());
        }
        Err(failure) => return Err(failure.into()),
    };
    let Some(policy) = user_key::withdraw(&live, &sids).map_err(ResourceError::Failed)? else {
        return Ok(());
    };
    match put_policy(ctx, id, &policy).await {
        Ok(()) => Ok(()),
        Err(failure) if failure.is(DENIED) => {
            leave_to_user(ctx, id, &sids, &failure);
            Ok(())
        }
        Err(failure) => Err(failure
            .during(format!(
                "removing the pipeline's statements from the policy of KMS key {id}"
            ))
            .into()),
    }
}

fn leave_to_user(ctx: &Op<'_>, id: &str, sids: &BTreeSet<String>, why: &AwsFailure) {
    ctx.log.warn(
        ctx.urn,
        &format!(
            "the provider may not change the policy of KMS key {id} ({why}); remove the statements {} from it by hand",
            sids.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
    );
}

/// The key as KMS describes it; `None` when there is no such key (or
/// alias).
async fn find_key(ctx: &Op<'_>, id: &str) -> Result<Option<DescribeKeyOutput>, AwsFailure> {
    let kms = &ctx.clients().kms;
    ctx.find(format!("reading KMS key {id}"), GONE, || {
        kms.describe_key().key_id(id).send()
    })
    .await
}

async fn pending_deletion(ctx: &Op<'_>, id: &str) -> bool {
    find_key(ctx, id).await.is_ok_and(|described| {
        described
            .and_then(|d| d.key_metadata)
            .is_some_and(|m| m.key_state() == Some(&KeyState::PendingDeletion))
    })
}

async fn enable_rotation(ctx: &Op<'_>, key_id: &str) -> Result<(), AwsFailure> {
    let kms = &ctx.clients().kms;
    ctx.call_waiting(
        format!("enabling rotation of KMS key {key_id}"),
        &JUST_CREATED,
        || kms.enable_key_rotation().key_id(key_id).send(),
    )
    .await
    .map(drop)
}

/// Creates `alias` for the key. An alias that already exists is never moved
/// or adopted: it belongs to something else, unless our own create was
/// retried after a lost response and the alias already names our key.
async fn point_alias(ctx: &Op<'_>, alias: &str, key_id: &str) -> Result<(), ResourceError> {
    let kms = &ctx.clients().kms;
    ctx.create_once(
        format!("creating alias {alias} for KMS key {key_id}"),
        alias,
        &JUST_CREATED,
        &["AlreadyExistsException"],
        || {
            kms.create_alias()
                .alias_name(alias)
                .target_key_id(key_id)
                .customize()
                .config_override(aws_sdk_kms::config::Builder::default().retry_config(once()))
                .send()
        },
        || async {
            let target = find_key(ctx, alias)
                .await?
                .and_then(|described| described.key_metadata)
                .map(|metadata| metadata.key_id);
            Ok(is_our_alias(key_id, target.as_deref()).then_some(()))
        },
    )
    .await
    .map(drop)
}

/// The key of this region that carries `token`, found after a create whose
/// answer was lost.
async fn key_with_token(
    ctx: &Op<'_>,
    token: &CreateToken,
) -> Result<Option<DescribeKeyOutput>, AwsFailure> {
    let kms = &ctx.clients().kms;
    let keys = ctx
        .call("listing KMS keys", || {
            kms.list_keys()
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    for id in keys.iter().filter_map(|key| key.key_id()) {
        let ours = Key::read_tags(ctx, id)
            .await?
            .is_some_and(|tags| token.is_on(&tags));
        if ours {
            return find_key(ctx, id).await;
        }
    }
    Ok(None)
}

/// An alias that already exists is ours only when it points at our key
/// (the create whose answer was lost made it).
fn is_our_alias(key_id: &str, target: Option<&str>) -> bool {
    target == Some(key_id)
}

async fn delete_alias(ctx: &Op<'_>, alias: &str) -> Result<(), AwsFailure> {
    let kms = &ctx.clients().kms;
    ctx.delete(format!("deleting alias {alias}"), GONE, || {
        kms.delete_alias().alias_name(alias).send()
    })
    .await
}

/// The key's policy (KMS keys have one, named `default`).
async fn default_policy(ctx: &Op<'_>, id: &str) -> Result<String, AwsFailure> {
    let kms = &ctx.clients().kms;
    let found = ctx
        .call(format!("reading policy of KMS key {id}"), || {
            kms.get_key_policy()
                .key_id(id)
                .policy_name("default")
                .send()
        })
        .await?;
    Ok(found.policy.unwrap_or_default())
}

/// Replaces the key's policy.
async fn put_policy(ctx: &Op<'_>, id: &str, policy: &str) -> Result<(), AwsFailure> {
    let kms = &ctx.clients().kms;
    ctx.call(format!("writing the policy of KMS key {id}"), || {
        kms.put_key_policy()
            .key_id(id)
            .policy_name("default")
            .policy(policy)
            .send()
    })
    .await
    .map(drop)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::resource::{to_json, Lifecycle};
    use crate::tags;

    const ARNS: Arns<'static> = Arns {
        partition: "aws",
        account: "123456789012",
        region: "eu-west-1",
    };

    pub(crate) fn inputs() -> KeyInputs {
        KeyInputs {
            name_prefix: "app-key".into(),
            alias_name: None,
            description: "Encrypts the artifacts of pipeline app".into(),
            existing_arn: None,
            region: None,
            enable_key_rotation: true,
            enabled: true,
            service_principals: vec![
                "logs.eu-west-1.amazonaws.com".into(),
                "events.amazonaws.com".into(),
            ],
            service_scopes: BTreeMap::new(),
            policy: None,
            tags: Tags::new(),
        }
    }

    fn check(olds: Option<&KeyInputs>, news: KeyInputs) -> Result<KeyInputs, Vec<CheckFailure>> {
        let ctx = CheckContext {
            name: "key",
            random_seed: b"seed",
            aws: None,
        };
        Key::check(&ctx, olds, news)
    }

    fn properties(failures: &[CheckFailure]) -> Vec<&str> {
        failures.iter().map(|f| f.property.as_str()).collect()
    }

    #[test]
    fn chooses_an_alias_and_adds_managed_tags() {
        let checked = check(None, inputs()).unwrap();
        let alias = checked.alias_name.clone().unwrap();
        assert!(alias.starts_with("alias/app-key-"), "{alias}");
        assert_eq!(checked.tags[tags::MANAGED_BY_KEY], tags::MANAGED_BY_VALUE);
        // Without the caller identity the policy waits for create.
        assert_eq!(checked.policy, None);
        let again = check(Some(&checked), inputs()).unwrap();
        assert_eq!(again.alias_name, checked.alias_name);
        let renamed = check(
            Some(&checked),
            KeyInputs {
                name_prefix: "other".into(),
                ..inputs()
            },
        )
        .unwrap();
        assert!(renamed.alias_name.unwrap().starts_with("alias/other-"));
    }

    #[test]
    fn rotation_cannot_be_turned_off() {
        let failures = check(
            None,
            KeyInputs {
                enable_key_rotation: false,
                ..inputs()
            },
        )
        .unwrap_err();
        assert_eq!(properties(&failures), vec!["enableKeyRotation"]);
        assert!(failures[0].reason.contains("cannot be turned off"));
    }

    #[test]
    fn the_key_cannot_be_disabled() {
        let failures = check(
            None,
            KeyInputs {
                enabled: false,
                ..inputs()
            },
        )
        .unwrap_err();
        assert_eq!(properties(&failures), vec!["enabled"]);
        assert!(failures[0].reason.contains("cannot be disabled"));
        // An enabled key has no `enabled` in its inputs, so state written
        // before the input existed has no diff; a disabled one has.
        let enabled = to_json(&inputs());
        assert!(enabled.get("enabled").is_none());
        let old: KeyInputs = serde_json::from_value(enabled.clone()).unwrap();
        assert!(old.enabled);
        let disabled = to_json(&KeyInputs {
            enabled: false,
            ..inputs()
        });
        let diff = crate::resource::diff_inputs(
            &disabled,
            &enabled,
            &crate::resource::replace_keys::<Key>(),
        );
        assert_eq!(diff.changed, vec!["enabled"]);
        assert!(diff.replaces.is_empty());
    }

    #[test]
    fn rejects_wildcard_and_foreign_principals() {
        let news = KeyInputs {
            service_principals: vec![
                "*.amazonaws.com".into(),
                "logs.amazonaws.com.evil.com".into(),
                "events.amazonaws.com".into(),
                "events.amazonaws.com".into(),
                ".amazonaws.com".into(),
            ],
            ..inputs()
        };
        let failures = check(None, news).unwrap_err();
        assert_eq!(
            properties(&failures),
            vec![
                "servicePrincipals[0]",
                "servicePrincipals[1]",
                "servicePrincipals[3]",
                "servicePrincipals[4]"
            ]
        );
    }

    #[test]
    fn rejects_aliases_outside_the_alias_namespace() {
        for bad in ["app-key", "alias/aws/s3", "alias/has space"] {
            let failures = check(
                None,
                KeyInputs {
                    alias_name: Some(bad.into()),
                    ..inputs()
                },
            )
            .unwrap_err();
            assert_eq!(properties(&failures), vec!["aliasName"], "{bad}");
        }
    }

    #[test]
    fn rejects_an_oversized_description() {
        let failures = check(
            None,
            KeyInputs {
                description: "d".repeat(8193),
                ..inputs()
            },
        )
        .unwrap_err();
        assert_eq!(properties(&failures), vec!["description"]);
    }

    #[test]
    fn a_region_must_be_a_region() {
        let west = check(
            None,
            KeyInputs {
                region: Some("us-west-2".into()),
                ..inputs()
            },
        )
        .unwrap();
        assert_eq!(west.region.as_deref(), Some("us-west-2"));
        let failures = check(
            None,
            KeyInputs {
                region: Some("moon-1".into()),
                ..inputs()
            },
        )
        .unwrap_err();
        assert_eq!(properties(&failures), vec!["region"]);
    }

    #[test]
    fn key_policy_is_exact() {
        let policy = key_policy(&ARNS, &inputs().service_principals, &BTreeMap::new());
        let expected = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministers",
                    "Effect": "Allow",
                    "Principal": {"AWS": ["arn:aws:iam::123456789012:root"]},
                    "Action": ["kms:*"],
                    "Resource": ["*"]
                },
                {
                    "Sid": "ServiceLogsEuWest1",
                    "Effect": "Allow",
                    "Principal": {"Service": ["logs.eu-west-1.amazonaws.com"]},
                    "Action": SERVICE_ACTIONS,
                    "Resource": ["*"],
                    "Condition": {"StringEquals": {"aws:SourceAccount": ["123456789012"]}}
                },
                {
                    "Sid": "ServiceEvents",
                    "Effect": "Allow",
                    "Principal": {"Service": ["events.amazonaws.com"]},
                    "Action": SERVICE_ACTIONS,
                    "Resource": ["*"],
                    "Condition": {"StringEquals": {"aws:SourceAccount": ["123456789012"]}}
                }
            ]
        });
        assert_eq!(serde_json::to_value(&policy).unwrap(), expected);
        assert_eq!(
            lint_key_policy(&policy, &ARNS, &inputs().service_principals),
            Vec::<String>::new()
        );
        // Read back from KMS, it compares equal to what was written.
        assert_eq!(
            PolicyDocument::parse_aws(&policy.to_compact_json()).unwrap(),
            policy
        );
    }

    #[test]
    fn lint_finds_widened_key_policies() {
        let services = inputs().service_principals;
        let mut policy = key_policy(&ARNS, &services, &BTreeMap::new());
        policy.statements[0].principal = Some([("AWS".to_string(), vec!["*".to_string()])].into());
        policy.statements[1].conditions.clear();
        policy.statements[2].actions.push("kms:PutKeyPolicy".into());
        policy.statements.push(Statement {
            principal: Some(
                [(
                    "AWS".to_string(),
                    vec!["arn:aws:iam::999999999999:root".to_string()],
                )]
                .into(),
            ),
            ..policy.statements[0].clone()
        });
        let problems = lint_key_policy(&policy, &ARNS, &services);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("wildcard"));
        assert!(problems[1].contains("aws:SourceAccount"));
        assert!(problems[2].contains("may only use the key"));
        assert!(problems[3].contains("999999999999"));
    }

    const USER_KEY: &str =
        "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn user_key() -> KeyInputs {
        KeyInputs {
            existing_arn: Some(USER_KEY.into()),
            service_scopes: BTreeMap::from([(
                "logs.eu-west-1.amazonaws.com".to_string(),
                vec![
                    "arn:aws:logs:eu-west-1:123456789012:log-group:/securepipeline/app-build"
                        .to_string(),
                ],
            )]),
            ..inputs()
        }
    }

    #[test]
    fn a_users_key_gets_only_the_services_statements_under_this_pipelines_sids() {
        let aws = crate::resources::event_rule::tests::aws();
        let ctx = CheckContext {
            name: "key",
            random_seed: b"seed",
            aws: Some(&aws),
        };
        let checked = Key::check(&ctx, None, user_key()).unwrap();
        assert_eq!(checked.alias_name, None, "a user's key gets no alias");
        let ours = checked.policy.unwrap().statements;
        let sids: Vec<&str> = ours.iter().filter_map(|s| s.sid.as_deref()).collect();
        assert_eq!(
            sids,
            [
                "SecurePipelineAppKeyServiceLogsEuWest1",
                "SecurePipelineAppKeyServiceEvents"
            ]
        );
        // The same statements the provider writes into a key of its own.
        let own = key_policy(
            &ARNS,
            &user_key().service_principals,
            &user_key().service_scopes,
        );
        for (merged, created) in ours.iter().zip(&own.statements[1..]) {
            assert_eq!(
                Statement {
                    sid: None,
                    ..merged.clone()
                },
                Statement {
                    sid: None,
                    ..created.clone()
                }
            );
        }
        assert_eq!(
            ours[0].conditions["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"],
            ["arn:aws:logs:eu-west-1:123456789012:log-group:/securepipeline/app-build"]
        );
    }

    #[test]
    fn a_users_key_is_used_where_it_lives_and_keeps_its_aliases() {
        let aws = crate::resources::event_rule::tests::aws();
        let ctx = CheckContext {
            name: "key",
            random_seed: b"seed",
            aws: Some(&aws),
        };
        let failures = Key::check(
            &ctx,
            None,
            KeyInputs {
                existing_arn: Some(USER_KEY.replace("eu-west-1", "us-east-1")),
                alias_name: Some("alias/mine".into()),
                region: Some("eu-west-1".into()),
                ..user_key()
            },
        )
        .unwrap_err();
        assert_eq!(
            properties(&failures),
            vec!["existingArn", "aliasName", "region"]
        );
        assert!(
            failures[0].reason.contains("region us-east-1"),
            "{}",
            failures[0].reason
        );
    }

    #[test]
    fn an_existing_alias_is_ours_only_when_it_names_our_key() {
        assert!(is_our_alias("k1", Some("k1")));
        assert!(!is_our_alias("k1", Some("k2")));
        assert!(!is_our_alias("k1", None));
    }

    #[test]
    fn builds_alias_arns() {
        assert_eq!(
            alias_arn(&ARNS, "alias/app-key-abc"),
            "arn:aws:kms:eu-west-1:123456789012:alias/app-key-abc"
        );
        assert_eq!(
            service_sid("codestar-notifications.amazonaws.com"),
            "ServiceCodestarNotifications"
        );
    }
}
