//! `securepipeline:aws:Role`: an IAM role trusted by exactly one service,
//! with inline policies assembled from grants.
//!
//! The trust policy is computed here from the service, the caller's account
//! and the source ARN, so no program can widen who may assume the role, and
//! every inline policy passes the IAM linter before it is written. Refresh
//! reads the trust policy, every inline policy and every attached managed
//! policy back, so a widened or added permission shows as drift and the next
//! update removes it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_iam::types::Tag;
use serde::{Deserialize, Serialize};

use super::common::{check_arn, from_sdk_tags, sdk_tags};
use crate::aws::arn::Arn;
use crate::aws::failure::AwsFailure;
use crate::aws::retry::{once, Created};
use crate::aws::AwsContext;
use crate::iam::{grants, lint, PolicyDocument};
use crate::naming;
use crate::resource::{
    is_unknown, AutoName, CheckContext, CheckFailure, CreateToken, CustomResource, Failures,
    NameScope, Op, Placement, ResourceError, TagChange,
};
use crate::tags::Tags;

/// Longest session a role hands out: one hour, the shortest IAM allows.
const MAX_SESSION_SECONDS: i32 = 3600;

/// IAM's limit on role descriptions.
const DESCRIPTION_MAX: usize = 1000;

/// IAM's limit on inline policy names.
const POLICY_NAME_MAX: usize = 128;

/// The service principals this product's roles are trusted by, each with
/// the ARNs it sends as `aws:SourceArn`: (principal, ARN service, resource
/// prefix, example).
const TRUSTED_SERVICES: &[(&str, &str, &str, &str)] = &[
    (
        "codebuild.amazonaws.com",
        "codebuild",
        "project/",
        "arn:aws:codebuild:us-east-1:123456789012:project/app-build-k3j9a0qz",
    ),
    (
        "codepipeline.amazonaws.com",
        "codepipeline",
        "",
        "arn:aws:codepipeline:us-east-1:123456789012:app-pipeline-k3j9a0qz",
    ),
    (
        "events.amazonaws.com",
        "events",
        "rule/",
        "arn:aws:events:us-east-1:123456789012:rule/app-schedule-k3j9a0qz",
    ),
];

pub struct Role;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RoleInputs {
    pub name_prefix: String,
    /// Chosen by `check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_name: Option<String>,
    pub description: String,
    /// The one service principal trusted, e.g. `codebuild.amazonaws.com`.
    pub service: String,
    /// The exact `aws:SourceArn` the trust policy requires (ArnEquals),
    /// when the service sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_arn: Option<String>,
    /// The trust policy; set by `check` from the service, account and source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_policy: Option<PolicyDocument>,
    /// Inline policies by name.
    pub policies: BTreeMap<String, PolicyDocument>,
    /// Managed policies attached to the role. Never set by the product (its
    /// roles carry only inline policies built from grants); `read` fills it
    /// when someone attached one out-of-band, so the next update detaches it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_policy_arns: Vec<String>,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RoleOutputs {
    pub arn: String,
    pub role_id: String,
    /// The trust policy in force. Also an input: `check` sets it when it
    /// knows the account; otherwise `create` computes it, and this output
    /// puts it in the state either way.
    pub trust_policy: PolicyDocument,
}

fn trusted_service(
    service: &str,
) -> Option<&'static (&'static str, &'static str, &'static str, &'static str)> {
    TRUSTED_SERVICES
        .iter()
        .find(|(principal, ..)| *principal == service)
}

/// The one trust policy a role with these inputs may have. A trust policy
/// given in the inputs must be exactly this one.
fn trust_for(aws: &AwsContext, inputs: &RoleInputs) -> Result<PolicyDocument, ResourceError> {
    let computed = grants::trust_policy(
        &inputs.service,
        &aws.account_id,
        inputs.source_arn.as_deref(),
    );
    match &inputs.trust_policy {
        Some(given) if *given != computed => Err(ResourceError::Failed(format!(
            "trustPolicy differs from the one computed from service `{}` and sourceArn; remove trustPolicy",
            inputs.service
        ))),
        _ => Ok(computed),
    }
}

/// `sourceArn` must be one exact ARN of the trusted service in the
/// caller's partition and account: the component chooses its children's
/// names before registering them, so it never needs a name prefix.
fn check_source_arn(ctx: &CheckContext<'_>, service: &str, value: &str) -> Option<CheckFailure> {
    const PROPERTY: &str = "sourceArn";
    if is_unknown(value) {
        return None;
    }
    // An untrusted service is reported at `service`; its ARNs cannot be judged.
    let (_, arn_service, resource_prefix, example) = trusted_service(service)?;
    let arn = match value.parse::<Arn>() {
        Ok(arn) if arn.service != *arn_service => {
            return Some(CheckFailure::new(
                PROPERTY,
                format!("`{value}` is not a {arn_service} ARN, but the role trusts {service}; for example {example}"),
            ))
        }
        Ok(arn) => arn,
        Err(_) => return check_arn(ctx, PROPERTY, value, &[arn_service], resource_prefix, example, false),
    };
    if let Some(failure) = check_arn(
        ctx,
        PROPERTY,
        value,
        &[arn_service],
        resource_prefix,
        example,
        false,
    ) {
        return Some(failure);
    }
    let wildcard = |s: &str| s.contains(['*', '?']);
    let resource_name = arn
        .resource
        .strip_prefix(resource_prefix)
        .unwrap_or(&arn.resource);
    let identity = [&arn.partition, &arn.service, &arn.region, &arn.account];
    if identity.iter().any(|part| wildcard(part))
        || wildcard(resource_name)
        || resource_name.is_empty()
    {
        return Some(CheckFailure::new(
            PROPERTY,
            format!("`{value}` has a wildcard; name the exact resource (a name prefix would also trust others that share it), e.g. {example}"),
        ));
    }
    None
}

fn check_description(description: &str) -> Option<CheckFailure> {
    if is_unknown(description) {
        return None;
    }
    let allowed =
        |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{a1}'..='\u{ff}');
    let len = description.chars().count();
    if len > DESCRIPTION_MAX {
        return Some(CheckFailure::new(
            "description",
            format!("IAM allows at most {DESCRIPTION_MAX} characters; this one has {len}"),
        ));
    }
    description.chars().find(|c| !allowed(*c)).map(|bad| {
        CheckFailure::new(
            "description",
            format!(
                "`{bad}` is not a character IAM allows in descriptions; use printable Latin-1 text"
            ),
        )
    })
}

fn check_policies(policies: &BTreeMap<String, PolicyDocument>) -> Vec<CheckFailure> {
    let mut failures = Vec::new();
    for (policy_name, doc) in policies {
        let property = format!("policies.{policy_name}");
        let valid_name = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
        let len = policy_name.chars().count();
        if len == 0 || len > POLICY_NAME_MAX || !policy_name.chars().all(valid_name) {
            failures.push(CheckFailure::new(
                &property,
                format!("policy names must be 1 to {POLICY_NAME_MAX} letters, digits and _+=,.@-; rename `{policy_name}`"),
            ));
        }
        if doc.version != crate::iam::policy::VERSION {
            failures.push(CheckFailure::new(
                &property,
                format!(
                    "Version `{}` disables policy variables; use {}",
                    doc.version,
                    crate::iam::policy::VERSION
                ),
            ));
        }
        for problem in lint::permissions(doc) {
            failures.push(CheckFailure::new(&property, problem));
        }
    }
    let size = lint::inline_size(policies.values());
    if size > lint::INLINE_POLICY_LIMIT {
        failures.push(CheckFailure::new(
            "policies",
            format!(
                "the inline policies total {size} characters, {} over IAM's limit of {} per role; grant fewer resources or split the role",
                size - lint::INLINE_POLICY_LIMIT,
                lint::INLINE_POLICY_LIMIT
            ),
        ));
    }
    failures
}

/// Deleted since it was listed, or never there: IAM's answer for both.
const GONE: &[&str] = &["NoSuchEntity"];

#[async_trait]
impl CustomResource for Role {
    const TYPE: &'static str = "securepipeline:aws:Role";
    type Inputs = RoleInputs;
    type Outputs = RoleOutputs;
    // `trustPolicy` is left out: when `check` computed it, preview shows the
    // real document instead of an unknown.
    const OUTPUT_KEYS: &'static [&'static str] = &["arn", "roleId"];
    const REPLACE_KEYS: &'static [&'static str] = &[];
    const NAME: AutoName = AutoName::new("roleName", &naming::IAM_ROLE, "role", NameScope::Account);
    const PLACEMENT: Placement = Placement::Global;

    fn validate(
        ctx: &CheckContext<'_>,
        _olds: Option<&Self::Inputs>,
        news: &mut Self::Inputs,
        failures: &mut Failures,
    ) {
        failures.extend(check_description(&news.description));

        let trusted = trusted_service(&news.service).is_some();
        if !trusted && !is_unknown(&news.service) {
            let allowed: Vec<&str> = TRUSTED_SERVICES
                .iter()
                .map(|(principal, ..)| *principal)
                .collect();
            failures.push(
                "service",
                format!("`{}` is not a service SecurePipeline roles are trusted by; use one of {allowed:?}", news.service),
            );
        }
        if let Some(source_arn) = &news.source_arn {
            failures.extend(check_source_arn(ctx, &news.service, source_arn));
        }
        if let Some(aws) = ctx.aws.filter(|_| trusted) {
            let computed =
                grants::trust_policy(&news.service, &aws.account_id, news.source_arn.as_deref());
            let source_known = !news.source_arn.as_deref().is_some_and(is_unknown);
            if news
                .trust_policy
                .as_ref()
                .is_some_and(|given| source_known && *given != computed)
            {
                failures.push(
                    "trustPolicy",
                    "the trust policy is computed from service and sourceArn, so a program cannot widen who may assume the role; remove trustPolicy",
                );
            }
            news.trust_policy = Some(computed);
        }
        if let Some(trust) = &news.trust_policy {
            for problem in lint::trust(trust) {
                failures.push(
                    "trustPolicy",
                    format!("{problem}; remove trustPolicy and let the provider compute it"),
                );
            }
        }

        failures.extend(check_policies(&news.policies));
        if !news.managed_policy_arns.is_empty() {
            failures.push(
                "managedPolicyArns",
                "SecurePipeline roles carry only inline policies built from exact grants; remove managedPolicyArns",
            );
        }
    }

    async fn create_resource(
        ctx: &Op<'_>,
        inputs: &Self::Inputs,
        token: &CreateToken,
    ) -> Result<(String, Self::Outputs), ResourceError> {
        let iam = &ctx.clients().iam;
        let name = ctx.name()?;
        let trust = trust_for(ctx.aws, inputs)?;
        let tags = iam_tags(&token.mark(&inputs.tags))?;
        let created = ctx
            .create_once(
                format!("creating role {name}"),
                name,
                &[],
                &["EntityAlreadyExists"],
                || {
                    iam.create_role()
                        .role_name(name)
                        .assume_role_policy_document(trust.to_compact_json())
                        .description(&inputs.description)
                        .max_session_duration(MAX_SESSION_SECONDS)
                        .set_tags(Some(tags.clone()))
                        .customize()
                        .config_override(
                            aws_sdk_iam::config::Builder::default().retry_config(once()),
                        )
                        .send()
                },
                || role_with_token(ctx, name, token),
            )
            .await?;
        let role = match created {
            Created::New(output) => output.role,
            Created::Found(role) => Some(role),
        }
        .ok_or_else(|| {
            ResourceError::Failed(format!("creating role {name}: IAM returned no role"))
        })?;
        let outputs = RoleOutputs {
            arn: role.arn().to_string(),
            role_id: role.role_id().to_string(),
            trust_policy: trust,
        };
        Ok((name.to_string(), outputs))
    }

    async fn configure(
        ctx: &Op<'_>,
        id: &str,
        inputs: &Self::Inputs,
        _outputs: &mut Self::Outputs,
    ) -> Result<(), ResourceError> {
        for (policy_name, doc) in &inputs.policies {
            put_policy(ctx, id, policy_name, doc).await?;
        }
        Ok(())
    }

    async fn read_resource(
        ctx: &Op<'_>,
        id: &str,
        inputs: &Self::Inputs,
    ) -> Result<Option<(Self::Inputs, Self::Outputs)>, ResourceError> {
        let Some(role) = get_role(ctx, id).await? else {
            return Ok(None);
        };
        let trust = parse_live(role.assume_role_policy_document().unwrap_or_default());

        let Some(policy_names) = inline_policy_names(ctx, id).await? else {
            return Ok(None);
        };
        let iam = &ctx.clients().iam;
        let mut policies = BTreeMap::new();
        for policy_name in policy_names {
            let policy = ctx
                .find(
                    format!("reading policy {policy_name} of role {id}"),
                    GONE,
                    || {
                        iam.get_role_policy()
                            .role_name(id)
                            .policy_name(&policy_name)
                            .send()
                    },
                )
                .await?;
            // Deleted since it was listed: it is not live.
            if let Some(policy) = policy {
                policies.insert(policy_name, parse_live(policy.policy_document()));
            }
        }
        let Some(managed_policy_arns) = attached_policy_arns(ctx, id).await? else {
            return Ok(None);
        };

        let mut live_inputs = inputs.clone();
        live_inputs.role_name = Some(id.to_string());
        live_inputs.description = role.description().unwrap_or_default().to_string();
        live_inputs.trust_policy = Some(trust.clone());
        live_inputs.policies = policies;
        live_inputs.managed_policy_arns = managed_policy_arns;
        let outputs = RoleOutputs {
            arn: role.arn().to_string(),
            role_id: role.role_id().to_string(),
            trust_policy: trust,
        };
        Ok(Some((live_inputs, outputs)))
    }

    async fn update_resource(
        ctx: &Op<'_>,
        id: &str,
        olds: &Self::Inputs,
        news: &Self::Inputs,
        outputs: &Self::Outputs,
    ) -> Result<Self::Outputs, ResourceError> {
        let iam = &ctx.clients().iam;
        let trust = trust_for(ctx.aws, news)?;
        // Old inputs lack the trust policy when check could not compute it.
        if olds.trust_policy.as_ref().unwrap_or(&outputs.trust_policy) != &trust {
            ctx.call(format!("updating the trust policy of role {id}"), || {
                iam.update_assume_role_policy()
                    .role_name(id)
                    .policy_document(trust.to_compact_json())
                    .send()
            })
            .await?;
        }
        if olds.description != news.description {
            ctx.call(format!("updating the description of role {id}"), || {
                iam.update_role()
                    .role_name(id)
                    .description(&news.description)
                    .send()
            })
            .await?;
        }
        for (policy_name, doc) in &news.policies {
            if olds.policies.get(policy_name) != Some(doc) {
                put_policy(ctx, id, policy_name, doc).await?;
            }
        }
        for policy_name in olds
            .policies
            .keys()
            .filter(|n| !news.policies.contains_key(*n))
        {
            delete_policy(ctx, id, policy_name).await?;
        }
        for policy_arn in olds
            .managed_policy_arns
            .iter()
            .filter(|a| !news.managed_policy_arns.contains(a))
        {
            detach_policy(ctx, id, policy_arn).await?;
        }
        Ok(RoleOutputs {
            trust_policy: trust,
            ..outputs.clone()
        })
    }

    async fn delete_resource(
        ctx: &Op<'_>,
        id: &str,
        _inputs: &Self::Inputs,
        _outputs: &Self::Outputs,
    ) -> Result<(), ResourceError> {
        // IAM deletes only an empty role. List what is live rather than what
        // the state says: drift may have added policies.
        for policy_name in inline_policy_names(ctx, id).await?.unwrap_or_default() {
            delete_policy(ctx, id, &policy_name).await?;
        }
        for policy_arn in attached_policy_arns(ctx, id).await?.unwrap_or_default() {
            detach_policy(ctx, id, &policy_arn).await?;
        }
        let iam = &ctx.clients().iam;
        ctx.delete(format!("deleting role {id}"), GONE, || {
            iam.delete_role().role_name(id).send()
        })
        .await?;
        Ok(())
    }

    async fn read_tags(ctx: &Op<'_>, id: &str) -> Result<Option<Tags>, AwsFailure> {
        let iam = &ctx.clients().iam;
        let listed = ctx
            .find(format!("reading tags of role {id}"), GONE, || {
                iam.list_role_tags()
                    .role_name(id)
                    .into_paginator()
                    .items()
                    .send()
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(listed.map(|tags| from_sdk_tags(&tags, |tag| (tag.key(), tag.value()))))
    }

    async fn write_tags(ctx: &Op<'_>, id: &str, change: &TagChange) -> Result<(), ResourceError> {
        let iam = &ctx.clients().iam;
        let set = iam_tags(&change.set)?;
        change
            .by_key(
                |keys| {
                    ctx.call(format!("untagging role {id}"), move || {
                        iam.untag_role()
                            .role_name(id)
                            .set_tag_keys(Some(keys.clone()))
                            .send()
                    })
                },
                |_| {
                    ctx.call(format!("tagging role {id}"), || {
                        iam.tag_role()
                            .role_name(id)
                            .set_tags(Some(set.clone()))
                            .send()
                    })
                },
            )
            .await?;
        Ok(())
    }
}

/// A live policy document. One in a shape the provider never writes
/// (`NotAction`, `"Principal": "*"`, ...) reads as a document without
/// statements: it differs from every document the provider writes, so the
/// next update replaces or deletes it instead of refresh failing.
fn parse_live(text: &str) -> PolicyDocument {
    PolicyDocument::parse_aws(text).unwrap_or_else(|_| PolicyDocument::new(Vec::new()))
}

/// The live role; `None` when it does not exist.
async fn get_role(
    ctx: &Op<'_>,
    name: &str,
) -> Result<Option<aws_sdk_iam::types::Role>, AwsFailure> {
    let iam = &ctx.clients().iam;
    let found = ctx
        .find(format!("reading role {name}"), GONE, || {
            iam.get_role().role_name(name).send()
        })
        .await?;
    Ok(found.and_then(|found| found.role))
}

/// The role `name` when it carries this create's `token`.
async fn role_with_token(
    ctx: &Op<'_>,
    name: &str,
    token: &CreateToken,
) -> Result<Option<aws_sdk_iam::types::Role>, AwsFailure> {
    let Some(role) = get_role(ctx, name).await? else {
        return Ok(None);
    };
    let ours = Role::read_tags(ctx, name)
        .await?
        .is_some_and(|tags| token.is_on(&tags));
    Ok(ours.then_some(role))
}

fn iam_tags(tags: &Tags) -> Result<Vec<Tag>, ResourceError> {
    sdk_tags(tags, |key, value| {
        Tag::builder().key(key).value(value).build()
    })
}

async fn put_policy(
    ctx: &Op<'_>,
    role: &str,
    policy_name: &str,
    doc: &PolicyDocument,
) -> Result<(), AwsFailure> {
    let iam = &ctx.clients().iam;
    ctx.call(
        format!("writing policy {policy_name} of role {role}"),
        || {
            iam.put_role_policy()
                .role_name(role)
                .policy_name(policy_name)
                .policy_document(doc.to_compact_json())
                .send()
        },
    )
    .await
    .map(drop)
}

async fn delete_policy(ctx: &Op<'_>, role: &str, policy_name: &str) -> Result<(), AwsFailure> {
    let iam = &ctx.clients().iam;
    ctx.delete(
        format!("deleting policy {policy_name} of role {role}"),
        GONE,
        || {
            iam.delete_role_policy()
                .role_name(role)
                .policy_name(policy_name)
                .send()
        },
    )
    .await
}

async fn detach_policy(ctx: &Op<'_>, role: &str, policy_arn: &str) -> Result<(), AwsFailure> {
    let iam = &ctx.clients().iam;
    ctx.delete(
        format!("detaching {policy_arn} from role {role}"),
        GONE,
        || {
            iam.detach_role_policy()
                .role_name(role)
                .policy_arn(policy_arn)
                .send()
        },
    )
    .await
}

/// Names of the role's inline policies; `None` when the role is gone.
async fn inline_policy_names(ctx: &Op<'_>, role: &str) -> Result<Option<Vec<String>>, AwsFailure> {
    let iam = &ctx.clients().iam;
    ctx.find(format!("listing policies of role {role}"), GONE, || {
        iam.list_role_policies()
            .role_name(role)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
    })
    .await
}

/// ARNs of managed policies attached to the role; `None` when it is gone.
async fn attached_policy_arns(ctx: &Op<'_>, role: &str) -> Result<Option<Vec<String>>, AwsFailure> {
    let iam = &ctx.clients().iam;
    let attached = ctx
        .find(
            format!("listing managed policies of role {role}"),
            GONE,
            || {
                iam.list_attached_role_policies()
                    .role_name(role)
                    .into_paginator()
                    .items()
                    .send()
                    .collect::<Result<Vec<_>, _>>()
            },
        )
        .await?;
    Ok(attached.map(|attached| {
        attached
            .iter()
            .filter_map(|policy| policy.policy_arn().map(str::to_string))
            .collect()
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::aws::Endpoints;
    use crate::iam::policy::{Conditions, Effect, Statement};
    use crate::iam::Grant;
    use crate::resource::Lifecycle;
    use crate::tags;

    const ACCOUNT: &str = "123456789012";
    const PROJECTS: &str =
        "arn:aws:codebuild:us-east-1:123456789012:project/app-x1y2-build-k3j9a0qz";

    fn aws() -> AwsContext {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        AwsContext::new(
            sdk,
            Endpoints::default(),
            ACCOUNT.into(),
            "aws".into(),
            "us-east-1".into(),
            Tags::new(),
        )
    }

    pub(crate) fn inputs() -> RoleInputs {
        RoleInputs {
            name_prefix: "app-x1y2-build".into(),
            role_name: None,
            description: "CodeBuild role of pipeline app".into(),
            service: "codebuild.amazonaws.com".into(),
            source_arn: Some(PROJECTS.into()),
            trust_policy: None,
            policies: BTreeMap::from([(
                "build".to_string(),
                grants::document(&[Grant::logs_write(
                    "Logs",
                    "arn:aws:logs:us-east-1:123456789012:log-group:/securepipeline/app-build-abcdefgh",
                )]),
            )]),
            managed_policy_arns: Vec::new(),
            tags: Tags::new(),
        }
    }

    fn check_with(
        aws: Option<&AwsContext>,
        olds: Option<&RoleInputs>,
        news: RoleInputs,
    ) -> Result<RoleInputs, Vec<CheckFailure>> {
        let ctx = CheckContext {
            name: "build-role",
            random_seed: b"seed",
            aws,
        };
        Role::check(&ctx, olds, news)
    }

    fn failures(news: RoleInputs) -> Vec<CheckFailure> {
        check_with(Some(&aws()), None, news).unwrap_err()
    }

    fn properties(failures: &[CheckFailure]) -> Vec<&str> {
        failures.iter().map(|f| f.property.as_str()).collect()
    }

    fn allow_all_s3() -> PolicyDocument {
        PolicyDocument::new(vec![Statement {
            sid: Some("Wide".into()),
            effect: Effect::Allow,
            principal: None,
            actions: vec!["s3:*".into()],
            resources: vec!["*".into()],
            conditions: Conditions::new(),
        }])
    }

    #[test]
    fn chooses_a_name_keeps_it_and_adds_managed_tags() {
        let checked = check_with(Some(&aws()), None, inputs()).unwrap();
        let name = checked.role_name.clone().unwrap();
        assert!(name.starts_with("app-x1y2-build-"), "{name}");
        assert!(name.len() <= naming::IAM_ROLE.max_len);
        assert_eq!(checked.tags[tags::MANAGED_BY_KEY], tags::MANAGED_BY_VALUE);
        let again = check_with(Some(&aws()), Some(&checked), inputs()).unwrap();
        assert_eq!(again.role_name, checked.role_name);
    }

    #[test]
    fn computes_the_trust_policy_from_service_account_and_source() {
        let checked = check_with(Some(&aws()), None, inputs()).unwrap();
        let trust = checked.trust_policy.unwrap();
        assert_eq!(
            trust,
            grants::trust_policy("codebuild.amazonaws.com", ACCOUNT, Some(PROJECTS))
        );
        assert!(lint::trust(&trust).is_empty());
        let statement = &trust.statements[0];
        assert_eq!(
            statement.principal.as_ref().unwrap()["Service"],
            vec!["codebuild.amazonaws.com"]
        );
        assert_eq!(
            statement.conditions["StringEquals"]["aws:SourceAccount"],
            vec![ACCOUNT]
        );
        assert_eq!(
            statement.conditions["ArnEquals"]["aws:SourceArn"],
            vec![PROJECTS]
        );
    }

    #[test]
    fn leaves_the_trust_policy_to_create_before_the_account_is_known() {
        let checked = check_with(None, None, inputs()).unwrap();
        assert_eq!(checked.trust_policy, None);
        let news = RoleInputs {
            trust_policy: Some(grants::trust_policy(
                "codebuild.amazonaws.com",
                ACCOUNT,
                Some(PROJECTS),
            )),
            ..inputs()
        };
        assert!(trust_for(&aws(), &news).is_ok());
        let other_account = RoleInputs {
            trust_policy: Some(grants::trust_policy(
                "codebuild.amazonaws.com",
                "210987654321",
                None,
            )),
            ..inputs()
        };
        assert!(trust_for(&aws(), &other_account)
            .unwrap_err()
            .to_string()
            .contains("trustPolicy"));
    }

    #[test]
    fn a_given_trust_policy_cannot_differ_from_the_computed_one() {
        let mut wider = grants::trust_policy("codebuild.amazonaws.com", ACCOUNT, Some(PROJECTS));
        wider.statements[0].principal =
            Some(BTreeMap::from([("AWS".to_string(), vec!["*".to_string()])]));
        let failures = failures(RoleInputs {
            trust_policy: Some(wider.clone()),
            ..inputs()
        });
        assert!(
            properties(&failures).iter().all(|p| *p == "trustPolicy"),
            "{failures:?}"
        );
        assert!(failures[0].reason.contains("remove trustPolicy"));
        // Before the account is known, the linter still rejects it.
        let failures = check_with(
            None,
            None,
            RoleInputs {
                trust_policy: Some(wider),
                ..inputs()
            },
        )
        .unwrap_err();
        assert!(failures
            .iter()
            .any(|f| f.property == "trustPolicy" && f.reason.contains("exactly one service")));
        let same = grants::trust_policy("codebuild.amazonaws.com", ACCOUNT, Some(PROJECTS));
        assert!(check_with(
            Some(&aws()),
            None,
            RoleInputs {
                trust_policy: Some(same),
                ..inputs()
            }
        )
        .is_ok());
    }

    #[test]
    fn trusts_only_the_services_the_product_uses() {
        let failures = failures(RoleInputs {
            service: "ec2.amazonaws.com".into(),
            source_arn: None,
            ..inputs()
        });
        assert_eq!(properties(&failures), vec!["service"]);
        assert!(failures[0].reason.contains("events.amazonaws.com"));
        for service in ["codepipeline.amazonaws.com", "events.amazonaws.com"] {
            assert!(check_with(
                Some(&aws()),
                None,
                RoleInputs {
                    service: service.into(),
                    source_arn: None,
                    ..inputs()
                }
            )
            .is_ok());
        }
    }

    #[test]
    fn source_arn_is_the_services_own_in_the_callers_account() {
        for bad in [
            "arn:aws:codebuild:us-east-1:210987654321:project/app-build-*",
            "arn:aws-cn:codebuild:cn-north-1:123456789012:project/app-build-*",
            "arn:aws:events:us-east-1:123456789012:rule/app-build-*",
            "arn:aws:codebuild:us-east-1:123456789012:report-group/app",
            "project/app-build-*",
        ] {
            let failures = failures(RoleInputs {
                source_arn: Some(bad.into()),
                ..inputs()
            });
            assert_eq!(properties(&failures), vec!["sourceArn"], "{bad}");
        }
    }

    #[test]
    fn source_arn_is_exact() {
        for bad in [
            "arn:aws:codebuild:us-east-1:123456789012:project/app-build-*",
            "arn:aws:codebuild:*:123456789012:project/app-build-*",
            "arn:aws:codebuild:us-east-1:123456789012:project/*",
            "arn:aws:codebuild:us-east-1:123456789012:project/app-*-build",
            "arn:aws:codebuild:us-east-1:123456789012:project/app-build-?",
            "arn:aws:codebuild:us-east-1:123456789012:project/app**",
        ] {
            let failures = failures(RoleInputs {
                source_arn: Some(bad.into()),
                ..inputs()
            });
            assert_eq!(properties(&failures), vec!["sourceArn"], "{bad}");
            assert!(
                failures[0].reason.contains("wildcard"),
                "{bad}: {}",
                failures[0].reason
            );
        }
        let pipelines = RoleInputs {
            service: "codepipeline.amazonaws.com".into(),
            source_arn: Some("*".into()),
            ..inputs()
        };
        assert_eq!(properties(&failures(pipelines.clone())), vec!["sourceArn"]);
        let exact = RoleInputs {
            source_arn: Some(
                "arn:aws:codepipeline:us-east-1:123456789012:app-pipeline-abcdefgh".into(),
            ),
            ..pipelines
        };
        assert!(check_with(Some(&aws()), None, exact).is_ok());
    }

    #[test]
    fn every_policy_problem_is_reported_at_its_policy() {
        let mut policies = inputs().policies;
        policies.insert("wide".into(), allow_all_s3());
        policies.insert("bad name!".into(), inputs().policies["build"].clone());
        let failures = failures(RoleInputs {
            policies,
            ..inputs()
        });
        assert_eq!(
            properties(&failures),
            vec!["policies.bad name!", "policies.wide", "policies.wide"]
        );
        assert!(failures[1].reason.contains("wildcard") || failures[2].reason.contains("wildcard"));
    }

    #[test]
    fn rejects_policies_over_the_inline_size_limit() {
        let resources: Vec<String> = (0..400)
            .map(|i| format!("arn:aws:logs:us-east-1:123456789012:log-group:/securepipeline/app-build-{i:08}"))
            .collect();
        let doc = PolicyDocument::new(vec![Statement {
            sid: Some("Logs".into()),
            effect: Effect::Allow,
            principal: None,
            actions: vec!["logs:PutLogEvents".into()],
            resources,
            conditions: Conditions::new(),
        }]);
        let size = lint::inline_size([&doc]);
        let failures = failures(RoleInputs {
            policies: BTreeMap::from([("big".to_string(), doc)]),
            ..inputs()
        });
        assert_eq!(properties(&failures), vec!["policies"]);
        assert!(
            failures[0]
                .reason
                .contains(&format!("{} over", size - lint::INLINE_POLICY_LIMIT)),
            "{}",
            failures[0].reason
        );
    }

    #[test]
    fn rejects_managed_policies_descriptions_and_tags_iam_refuses() {
        let failures = failures(RoleInputs {
            managed_policy_arns: vec!["arn:aws:iam::aws:policy/AdministratorAccess".into()],
            description: "x".repeat(1001),
            tags: Tags::from([("aws:owner".to_string(), "me".to_string())]),
            ..inputs()
        });
        assert_eq!(
            properties(&failures),
            vec!["description", "managedPolicyArns", "tags.aws:owner"]
        );
    }

    #[test]
    fn unknown_inputs_are_not_judged_at_preview() {
        let unknown = crate::protocol::json::UNKNOWN.to_string();
        let news = RoleInputs {
            source_arn: Some(unknown.clone()),
            description: unknown,
            ..inputs()
        };
        assert!(check_with(Some(&aws()), None, news).is_ok());
    }

    #[test]
    fn live_documents_in_foreign_shapes_read_as_drift() {
        let trust = grants::trust_policy("events.amazonaws.com", ACCOUNT, None);
        let encoded = urlencoding::encode(&trust.to_compact_json()).into_owned();
        assert_eq!(parse_live(&encoded), trust);
        let everyone = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]}"#;
        // Trust opened to everyone reads as such, and check rejects it.
        let opened = parse_live(everyone);
        assert_eq!(
            opened.statements[0].principal.as_ref().unwrap()["AWS"],
            vec!["*"]
        );
        assert!(!crate::iam::lint::trust(&opened).is_empty());
        let not_action = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}"#;
        assert!(parse_live(not_action).statements.is_empty());
    }

    #[test]
    fn builds_iam_tags() {
        let tags = iam_tags(&Tags::from([("team".to_string(), "ci".to_string())])).unwrap();
        assert_eq!((tags[0].key(), tags[0].value()), ("team", "ci"));
    }
}
