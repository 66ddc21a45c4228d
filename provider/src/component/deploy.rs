//! Deployment stages as pure functions of the inputs: the buildspec each
//! stage runs, the grants its role gets (its own stack's state and secrets,
//! the one role it may assume, and explicit denies on production), and the
//! stage's actions in the pipeline.

use std::collections::{BTreeMap, BTreeSet};

use super::args::{Deployment, EnvironmentVariable, PulumiDeployment, SecurePipelineArgs};
use super::gates;
use super::plan::{
    artifact_keys, project_grants, secret_grants, BUILD_ARTIFACT, DEFAULT_TIMEOUT_MINUTES,
};
use super::pulumi_cli::{
    install_commands, oidc_audience, oidc_login_commands, secrets_provider_url,
    IDENTITY_TOKEN_SECONDS,
};
use crate::aws::arn::Arns;
use crate::buildspec::{shell_quote, Spec};
use crate::iam::grants::{document, EncryptedBucket, Grant, KmsKey, StoredValues};
use crate::iam::PolicyDocument;
use crate::resources::pipeline::{Action, Stage};
use crate::schema::PULUMI_SDK_VERSION;

pub const DEFAULT_APPROVAL_TIMEOUT_MINUTES: u32 = 1440;
pub const STACK_OUTPUTS_FILE: &str = "stack-outputs.json";
/// The profile the deployment (or the preview) runs under when it assumes
/// a role.
pub const DEPLOY_PROFILE: &str = "securepipeline-deploy";
/// The profile the state backend uses when the deployment assumes a role:
/// the stage's own CodeBuild role, which holds the state grants.
pub const STAGE_PROFILE: &str = "securepipeline-stage";
/// CodePipeline's limit on an approval's custom data.
pub const MAX_CUSTOM_DATA: usize = 500;
/// STS's limit on role session names.
const MAX_SESSION_NAME: usize = 64;

/// The purpose every child of a stage is named after: `deploy-<stage>`.
pub fn purpose(deployment: &Deployment) -> String {
    format!("deploy-{}", deployment.name)
}

/// The purpose the children of a stage's preview are named after:
/// `preview-<stage>`.
pub fn preview_purpose(deployment: &Deployment) -> String {
    format!("preview-{}", deployment.name)
}

pub fn is_production(deployment: &Deployment) -> bool {
    deployment.production.unwrap_or(false)
}

/// Production stages wait for approval unless told otherwise.
pub fn requires_approval(deployment: &Deployment) -> bool {
    deployment
        .require_approval
        .unwrap_or_else(|| is_production(deployment))
}

/// Whether the stage's state lives in Pulumi Cloud (no `s3://` backend).
pub fn pulumi_cloud(pulumi: &PulumiDeployment) -> bool {
    !pulumi
        .backend_url
        .as_deref()
        .is_some_and(|u| u.starts_with("s3://"))
}

/// Whether a Pulumi stage previews in its own project before its approval:
/// a self-managed backend previews with read-only state grants; a Pulumi
/// Cloud stack only with credentials that cannot write (a read-only
/// `previewAccessTokenSecretArn`, or an OIDC `previewTeam`), since the
/// deploy credentials can.
pub fn has_preview(deployment: &Deployment) -> bool {
    requires_approval(deployment)
        && deployment.pulumi.as_ref().is_some_and(|p| {
            !pulumi_cloud(p)
                || p.preview_access_token_secret_arn.is_some()
                || preview_team(p).is_some()
        })
}

/// The read-only team an OIDC stage's preview logs in as.
fn preview_team(pulumi: &PulumiDeployment) -> Option<&str> {
    pulumi
        .pulumi_cloud_oidc
        .as_ref()
        .and_then(|o| o.preview_team.as_deref())
}

/// The Pulumi CLI version a stage installs.
pub fn pulumi_version(pulumi: &PulumiDeployment) -> &str {
    pulumi
        .pulumi_version
        .as_deref()
        .unwrap_or(PULUMI_SDK_VERSION)
}

/// The region the stage's project runs in.
pub fn region<'a>(deployment: &'a Deployment, home: &'a str) -> &'a str {
    deployment.region.as_deref().unwrap_or(home)
}

/// Regions other than the pipeline's that stages run in, each of which
/// needs its own artifact bucket and key.
pub fn extra_regions(args: &SecurePipelineArgs, home: &str) -> Vec<String> {
    args.deployments
        .iter()
        .flatten()
        .map(|d| region(d, home))
        .filter(|r| *r != home)
        .map(str::to_string)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// A self-managed backend in S3: `s3://bucket[/prefix][?query]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Backend {
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
}

impl S3Backend {
    pub fn parse(url: &str) -> Option<Self> {
        let rest = url.strip_prefix("s3://")?;
        let path = rest.split('?').next().unwrap_or_default();
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        (!bucket.is_empty()).then(|| Self {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }

    /// A key under the backend's prefix.
    fn key(&self, path: &str) -> String {
        if self.prefix.is_empty() {
            path.to_string()
        } else {
            format!("{}/{path}", self.prefix)
        }
    }
}

/// The project and stack of `project/stack` or `organization/project/stack`,
/// the forms a self-managed backend addresses stacks by.
pub fn project_and_stack(stack: &str) -> Option<(&str, &str)> {
    match stack.split('/').collect::<Vec<_>>()[..] {
        [project, name] | [_, project, name] => Some((project, name)),
        _ => None,
    }
}

/// One stack's state in a self-managed S3 backend: the exact objects the
/// stage may read and write, each for what the CLI does with it, the
/// backend's metadata, and the listing.
#[derive(Debug, Clone, PartialEq)]
pub struct StackState {
    pub bucket_arn: String,
    /// The checkpoint: `<stack>.json`, `.json.gz`, `.json.bak` and
    /// `.json.attrs`, which updates read, write and replace.
    pub checkpoint: String,
    /// The stack's tags, which every operation reads and only `pulumi stack
    /// tag set`/`rm` write.
    pub tags: String,
    /// The stack's locks: an update writes and deletes its own, and reads
    /// another holder's to say who holds it.
    pub locks: String,
    /// History and backups, which every update adds to and no operation a
    /// stage runs reads or deletes.
    pub history: Vec<String>,
    /// `.pulumi/meta.yaml`, which every login reads.
    pub metadata: String,
    /// The `s3:prefix` patterns listing is limited to: this stack's keys,
    /// so the stage never learns other stacks' names.
    pub list_prefixes: Vec<String>,
}

impl StackState {
    /// Every object of this stack, whatever may be done to it.
    pub fn objects(&self) -> Vec<String> {
        [&self.checkpoint, &self.tags, &self.locks]
            .into_iter()
            .chain(&self.history)
            .cloned()
            .collect()
    }
}

pub fn stack_state(arns: &Arns<'_>, pulumi: &PulumiDeployment) -> Option<StackState> {
    let backend = S3Backend::parse(pulumi.backend_url.as_deref()?)?;
    let (project, stack) = project_and_stack(&pulumi.stack)?;
    let bucket_arn = arns.s3_bucket(&backend.bucket);
    // `<stack>.json*`, never `<stack>*`, which would also match stack
    // `<stack>2`.
    let checkpoint = backend.key(&format!(".pulumi/stacks/{project}/{stack}.json*"));
    let tags = backend.key(&format!(".pulumi/stacks/{project}/{stack}.pulumi-tags"));
    // Locks are kept under the stack's fully qualified name, whose
    // organization a self-managed backend always calls `organization`.
    let locks = backend.key(&format!(".pulumi/locks/organization/{project}/{stack}/*"));
    let history = [
        backend.key(&format!(".pulumi/history/{project}/{stack}/*")),
        backend.key(&format!(".pulumi/backups/{project}/{stack}/*")),
    ];
    let object = |key: &str| format!("{bucket_arn}/{key}");
    Some(StackState {
        checkpoint: object(&checkpoint),
        tags: object(&tags),
        locks: object(&locks),
        history: history.iter().map(|k| object(k)).collect(),
        metadata: object(&backend.key(".pulumi/meta.yaml")),
        list_prefixes: [checkpoint, tags, locks]
            .into_iter()
            .chain(history)
            .collect(),
        bucket_arn,
    })
}

/// Every Secrets Manager secret a stage reads: the Pulumi token and
/// passphrase and its environment's secrets.
pub fn secret_arns(deployment: &Deployment) -> Vec<String> {
    let pulumi = deployment.pulumi.as_ref();
    let mut arns: Vec<String> = pulumi
        .and_then(|p| p.access_token_secret_arn.clone())
        .into_iter()
        .chain(pulumi.and_then(|p| p.passphrase_secret_arn.clone()))
        .chain(
            deployment
                .environment
                .iter()
                .flatten()
                .filter_map(|(_, v)| v.secret_arn.clone()),
        )
        .collect();
    arns.sort();
    arns.dedup();
    arns
}

/// The secrets the preview reads: the config passphrase (which decrypts
/// config but writes nothing: the preview role has no write grant on the
/// state) and the read-only Pulumi Cloud token.
pub fn preview_secret_arns(deployment: &Deployment) -> Vec<String> {
    let pulumi = deployment.pulumi.as_ref();
    let mut arns: Vec<String> = pulumi
        .and_then(|p| p.passphrase_secret_arn.clone())
        .into_iter()
        .chain(pulumi.and_then(|p| p.preview_access_token_secret_arn.clone()))
        .collect();
    arns.sort();
    arns.dedup();
    arns
}

/// What production stages own, and every other role is denied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Protected {
    pub state: Vec<String>,
    pub secrets: Vec<String>,
    pub roles: Vec<String>,
    /// The artifacts production stages write.
    pub artifacts: Vec<String>,
    /// Parameter Store parameters production stages read.
    pub parameters: Vec<String>,
    /// KMS keys production stacks keep their secrets with.
    pub keys: Vec<String>,
    /// Per state bucket, the keys of production stacks, whose names a
    /// listing would show.
    pub listings: BTreeMap<String, Vec<String>>,
}

/// The ARNs of the Parameter Store parameters a stage's environment reads,
/// in the stage's region (`arns`).
fn parameter_arns(arns: &Arns<'_>, deployment: &Deployment) -> Vec<String> {
    deployment
        .environment
        .iter()
        .flatten()
        .filter_map(|(_, v)| v.parameter_name.as_deref())
        .map(|name| arns.ssm_parameter(name))
        .collect()
}

impl Protected {
    pub fn of(arns: &Arns<'_>, deployments: &[Deployment]) -> Self {
        let mut protected = Self::default();
        for (index, deployment) in deployments
            .iter()
            .enumerate()
            .filter(|(_, d)| is_production(d))
        {
            protected
                .artifacts
                .extend(outputs_artifact(index, deployment));
            if let Some(state) = deployment
                .pulumi
                .as_ref()
                .and_then(|p| stack_state(arns, p))
            {
                protected.state.extend(state.objects());
                protected
                    .listings
                    .entry(state.bucket_arn)
                    .or_default()
                    .extend(state.list_prefixes);
            }
            protected.parameters.extend(parameter_arns(
                &arns.in_region(region(deployment, arns.region)),
                deployment,
            ));
            protected.secrets.extend(secret_arns(deployment));
            protected.secrets.extend(preview_secret_arns(deployment));
            protected.keys.extend(
                deployment
                    .pulumi
                    .as_ref()
                    .and_then(|p| p.secrets_kms_key_arn.clone()),
            );
            protected.roles.extend(deployment.assume_role_arn.clone());
            protected.roles.extend(deployment.preview_role_arn.clone());
        }
        for list in [
            &mut protected.state,
            &mut protected.secrets,
            &mut protected.roles,
            &mut protected.artifacts,
            &mut protected.parameters,
            &mut protected.keys,
        ] {
            list.sort();
            list.dedup();
        }
        protected
    }

    /// Explicit denies: they hold whatever else the role is ever given.
    /// `store` is the role's region's, where it could reach production's
    /// artifacts.
    pub fn denies(&self, store: Store<'_>) -> Vec<Grant> {
        let mut grants = self.artifact_denies(store);
        if !self.state.is_empty() {
            grants.push(Grant::deny_all(
                "DenyProductionState",
                &["s3:*"],
                self.state.clone(),
            ));
        }
        grants.extend(self.listing_denies());
        if !self.secrets.is_empty() {
            grants.push(Grant::deny_all(
                "DenyProductionSecrets",
                &["secretsmanager:*"],
                self.secrets.clone(),
            ));
        }
        if !self.parameters.is_empty() {
            grants.push(Grant::deny_all(
                "DenyProductionParameters",
                &["ssm:*"],
                self.parameters.clone(),
            ));
        }
        if !self.keys.is_empty() {
            grants.push(Grant::deny_all(
                "DenyProductionKeys",
                &["kms:*"],
                self.keys.clone(),
            ));
        }
        if !self.roles.is_empty() {
            grants.push(Grant::deny_all(
                "DenyProductionRoles",
                &["sts:AssumeRole"],
                self.roles.clone(),
            ));
        }
        grants
    }

    /// No listing production stacks' keys, one statement per state bucket.
    fn listing_denies(&self) -> Vec<Grant> {
        self.listings
            .iter()
            .enumerate()
            .map(|(index, (bucket, prefixes))| {
                let sid = match index {
                    0 => "DenyListingProductionState".to_string(),
                    n => format!("DenyListingProductionState{n}"),
                };
                Grant::deny_bucket_list_under(&sid, bucket, prefixes.clone())
            })
            .collect()
    }

    /// No overwriting what production stages exported, in `store`.
    fn artifact_denies(&self, store: Store<'_>) -> Vec<Grant> {
        if self.artifacts.is_empty() {
            return Vec::new();
        }
        vec![Grant::deny_all(
            "DenyProductionArtifacts",
            &["s3:DeleteObject", "s3:PutObject"],
            self.artifacts
                .iter()
                .map(|a| {
                    format!(
                        "{}/{}",
                        store.bucket_arn,
                        artifact_keys(store.pipeline_name, a)
                    )
                })
                .collect(),
        )]
    }
}

/// Where a stage's project keeps artifacts: the bucket and key of its
/// region.
#[derive(Debug, Clone, Copy)]
pub struct Store<'a> {
    pub bucket_arn: &'a str,
    pub key_arn: &'a str,
    /// The pipeline whose artifacts the bucket holds under its name.
    pub pipeline_name: &'a str,
}

impl<'a> Store<'a> {
    /// The artifact bucket, encrypted with the store's key: whoever is
    /// granted its objects is granted the key with them.
    pub fn bucket(&self) -> EncryptedBucket<'a> {
        EncryptedBucket::new(self.bucket_arn, KmsKey::new(self.key_arn))
    }
}

/// What a stage's role may do: write its own log group, use its region's
/// artifacts and key, read exactly its secrets and parameters, assume its
/// one deploy role, read and write its own stack's state, use its stack's
/// secrets key, get identity tokens for its Pulumi organization only; and,
/// unless the stage is production, nothing of production's.
/// `arns` are in the stage's region.
pub fn role_policy(
    arns: &Arns<'_>,
    store: Store<'_>,
    log_group_name: &str,
    (index, deployment): (usize, &Deployment),
    protected: &Protected,
) -> PolicyDocument {
    // The build's artifact in, the stage's own outputs out: no other
    // artifact, so nothing this stage runs can change what a later stage
    // deploys.
    let outputs = outputs_artifact(index, deployment);
    let mut grants = project_grants(
        arns,
        store,
        log_group_name,
        &[BUILD_ARTIFACT],
        outputs.as_deref().as_slice(),
    );
    grants.extend(secret_grants(
        arns,
        deployment.environment.as_ref(),
        secret_arns(deployment),
    ));
    if let Some(role) = &deployment.assume_role_arn {
        grants.push(Grant::assume_role("AssumeDeployRole", role));
    }
    if let Some(pulumi) = &deployment.pulumi {
        if let Some(key) = &pulumi.secrets_kms_key_arn {
            grants.push(KmsKey::new(key).grant_secrets_provider("UseSecretsProviderKey"));
        }
        if let Some(oidc) = &pulumi.pulumi_cloud_oidc {
            grants.push(Grant::web_identity_token(
                "GetPulumiCloudIdentityToken",
                &oidc_audience(&oidc.organization),
                IDENTITY_TOKEN_SECONDS,
            ));
        }
    }
    if let Some(state) = deployment
        .pulumi
        .as_ref()
        .and_then(|p| stack_state(arns, p))
    {
        grants.push(Grant::state_objects_read_write(
            "ReadWriteOwnStackState",
            vec![state.checkpoint.clone(), state.locks.clone()],
        ));
        grants.push(Grant::objects_read(
            "ReadOwnStackTags",
            vec![state.tags.clone()],
        ));
        grants.push(Grant::objects_write(
            "WriteOwnStackHistory",
            state.history.clone(),
        ));
        grants.push(Grant::objects_read(
            "ReadStateBackendMetadata",
            vec![state.metadata.clone()],
        ));
        grants.push(Grant::bucket_list_under(
            "ListStateBackend",
            &state.bucket_arn,
            state.list_prefixes.clone(),
        ));
    }
    if !is_production(deployment) {
        grants.extend(protected.denies(store));
    }
    document(&grants)
}

/// `all` without `except`, sorted and deduplicated.
fn without(all: impl IntoIterator<Item = String>, except: &[String]) -> Vec<String> {
    let mut left: Vec<String> = all.into_iter().filter(|a| !except.contains(a)).collect();
    left.sort();
    left.dedup();
    left
}

/// What the role of a stage's Preview action (which runs the repository's
/// program before anyone approves) may do: write its own log group, read
/// the build's artifact with the key, read its stack's state and the
/// backend's metadata without writing (`pulumi preview` takes no lock in a
/// self-managed backend and saves no checkpoint or history), read the
/// passphrase or read-only token, decrypt with its stack's secrets key, get
/// identity tokens (for its read-only team) and assume the read-only
/// `previewRoleArn`. It is explicitly denied the stage's deploy role and
/// write secrets, writing its state, and everything production owns that
/// it does not read.
pub fn preview_role_policy(
    arns: &Arns<'_>,
    store: Store<'_>,
    log_group_name: &str,
    deployment: &Deployment,
    protected: &Protected,
) -> PolicyDocument {
    // The preview exports no artifact: it only decrypts the build's.
    let mut grants = project_grants(arns, store, log_group_name, &[BUILD_ARTIFACT], &[]);
    let readable = preview_secret_arns(deployment);
    grants.extend(StoredValues::secrets(readable.clone()).grant_read("ReadPreviewSecrets"));
    let own_role: Vec<String> = deployment.preview_role_arn.iter().cloned().collect();
    if let Some(role) = &deployment.preview_role_arn {
        grants.push(Grant::assume_role("AssumePreviewRole", role));
    }
    let pulumi = deployment.pulumi.as_ref();
    let own_key: Vec<String> = pulumi
        .and_then(|p| p.secrets_kms_key_arn.clone())
        .into_iter()
        .collect();
    if let Some(key) = own_key.first() {
        grants.push(KmsKey::new(key).grant_decrypt("DecryptSecretsProviderKey"));
    }
    if let Some(oidc) = pulumi
        .and_then(|p| p.pulumi_cloud_oidc.as_ref())
        .filter(|o| o.preview_team.is_some())
    {
        grants.push(Grant::web_identity_token(
            "GetPulumiCloudIdentityToken",
            &oidc_audience(&oidc.organization),
            IDENTITY_TOKEN_SECONDS,
        ));
    }
    let state = deployment
        .pulumi
        .as_ref()
        .and_then(|p| stack_state(arns, p));
    if let Some(state) = &state {
        // A preview takes no lock and reads neither history nor backups.
        grants.push(Grant::objects_read(
            "ReadOwnStackState",
            vec![state.checkpoint.clone(), state.tags.clone()],
        ));
        grants.push(Grant::objects_read(
            "ReadStateBackendMetadata",
            vec![state.metadata.clone()],
        ));
        grants.push(Grant::bucket_list_under(
            "ListStateBackend",
            &state.bucket_arn,
            state.list_prefixes.clone(),
        ));
    }
    let roles = without(
        protected
            .roles
            .iter()
            .cloned()
            .chain(deployment.assume_role_arn.clone()),
        &own_role,
    );
    if !roles.is_empty() {
        grants.push(Grant::deny_all(
            "DenyDeployRoles",
            &["sts:AssumeRole"],
            roles,
        ));
    }
    let secrets = without(
        protected
            .secrets
            .iter()
            .cloned()
            .chain(secret_arns(deployment)),
        &readable,
    );
    if !secrets.is_empty() {
        grants.push(Grant::deny_all(
            "DenyDeploySecrets",
            &["secretsmanager:*"],
            secrets,
        ));
    }
    let own_state = state.map(|s| s.objects()).unwrap_or_default();
    if !own_state.is_empty() {
        grants.push(Grant::deny_all(
            "DenyStateWrites",
            &["s3:DeleteObject", "s3:PutObject"],
            own_state.clone(),
        ));
    }
    let parameters = without(
        protected
            .parameters
            .iter()
            .cloned()
            .chain(parameter_arns(arns, deployment)),
        &[],
    );
    if !parameters.is_empty() {
        grants.push(Grant::deny_all(
            "DenyDeployParameters",
            &["ssm:*"],
            parameters,
        ));
    }
    let keys = without(protected.keys.iter().cloned(), &own_key);
    if !keys.is_empty() {
        grants.push(Grant::deny_all("DenyProductionKeys", &["kms:*"], keys));
    }
    grants.extend(protected.artifact_denies(store));
    if !is_production(deployment) {
        grants.extend(protected.listing_denies());
    }
    let production_state = without(protected.state.iter().cloned(), &own_state);
    if !production_state.is_empty() {
        grants.push(Grant::deny_all(
            "DenyProductionState",
            &["s3:*"],
            production_state,
        ));
    }
    document(&grants)
}

/// The stage's buildspec: a Pulumi deployment or the user's commands.
pub fn buildspec(deployment: &Deployment) -> String {
    match &deployment.pulumi {
        Some(pulumi) => pulumi_spec(deployment, pulumi, Run::Deploy),
        None => commands_spec(deployment),
    }
    .render()
}

/// The preview project's buildspec, for stages that preview.
pub fn preview_buildspec(deployment: &Deployment) -> Option<String> {
    let pulumi = deployment.pulumi.as_ref()?;
    has_preview(deployment).then(|| pulumi_spec(deployment, pulumi, Run::Preview).render())
}

/// The stage's environment the preview project gets: plain values only.
/// Secrets and parameters may be production credentials, which nothing
/// before the approval holds.
pub fn preview_environment(deployment: &Deployment) -> BTreeMap<String, EnvironmentVariable> {
    deployment
        .environment
        .iter()
        .flatten()
        .filter(|(_, v)| v.secret_arn.is_none() && v.parameter_name.is_none())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Runs the deployment under `assumeRoleArn` through a shared-config
/// profile: the SDKs assume the role from the container's credentials, so
/// no credentials are ever printed or exported. With `state_profile`, a
/// second profile keeps the state backend on the stage's own role.
fn assume_role_commands(session: &str, role_arn: &str, state_profile: bool) -> Vec<String> {
    let session: String = session.chars().take(MAX_SESSION_NAME).collect();
    let mut lines = vec![
        format!("[profile {DEPLOY_PROFILE}]"),
        format!("role_arn = {role_arn}"),
        "credential_source = EcsContainer".to_string(),
        format!("role_session_name = {session}"),
    ];
    if state_profile {
        // A profile without credentials settings falls back to the
        // container's, i.e. the stage's role.
        lines.extend([
            format!("[profile {STAGE_PROFILE}]"),
            "output = json".to_string(),
        ]);
    }
    let quoted: Vec<String> = lines.iter().map(|l| shell_quote(l)).collect();
    vec![
        "mkdir -p \"$HOME/.aws\"".to_string(),
        format!(
            "printf '%s\\n' {} > \"$HOME/.aws/config\"",
            quoted.join(" ")
        ),
        format!("export AWS_PROFILE={DEPLOY_PROFILE}"),
        // SDKs for Go v1 read ~/.aws/config only when asked to.
        "export AWS_SDK_LOAD_CONFIG=1".to_string(),
    ]
}

fn login_command(pulumi: &PulumiDeployment, assumes_role: bool) -> String {
    match &pulumi.backend_url {
        Some(url) if assumes_role && url.starts_with("s3://") => {
            let separator = if url.contains('?') { '&' } else { '?' };
            format!(
                "pulumi login {}",
                shell_quote(&format!("{url}{separator}profile={STAGE_PROFILE}"))
            )
        }
        Some(url) => format!("pulumi login {}", shell_quote(url)),
        None => "pulumi login".to_string(),
    }
}

/// The stack as `pulumi stack select` takes it. A self-managed backend
/// reads `a/b` as organization `a`, stack `b` (and knows only the
/// organization `organization`), so a `project/stack` is named in full.
fn stack_reference(pulumi: &PulumiDeployment) -> String {
    match project_and_stack(&pulumi.stack) {
        Some((project, stack)) if !pulumi_cloud(pulumi) => {
            format!("organization/{project}/{stack}")
        }
        _ => pulumi.stack.clone(),
    }
}

fn work_dir(pulumi: &PulumiDeployment) -> Option<&str> {
    pulumi
        .work_dir
        .as_deref()
        .map(|d| d.trim_end_matches('/'))
        .filter(|d| !d.is_empty() && *d != ".")
}

/// Which of a stage's CodeBuild projects a Pulumi buildspec is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// Before the approval: `pulumi preview` with read-only credentials.
    Preview,
    /// After it: refresh, preview, up, with the deploy role and secrets.
    Deploy,
}

/// How a run logs in to Pulumi Cloud (or to a self-managed backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Login<'a> {
    /// `pulumi login [url]`, with this token secret loaded, if any.
    Token(Option<&'a str>),
    /// Exchange an AWS identity token of the run's own role.
    Oidc {
        organization: &'a str,
        team: Option<&'a str>,
        user: Option<&'a str>,
    },
}

fn login_for(pulumi: &PulumiDeployment, run: Run) -> Login<'_> {
    let oidc = pulumi.pulumi_cloud_oidc.as_ref();
    match run {
        Run::Preview => match (&pulumi.preview_access_token_secret_arn, oidc) {
            (None, Some(o)) if o.preview_team.is_some() => Login::Oidc {
                organization: &o.organization,
                team: o.preview_team.as_deref(),
                user: None,
            },
            (token, _) => Login::Token(token.as_deref()),
        },
        Run::Deploy => match oidc {
            Some(o) => Login::Oidc {
                organization: &o.organization,
                team: o.team.as_deref(),
                user: o.user.as_deref(),
            },
            None => Login::Token(pulumi.access_token_secret_arn.as_deref()),
        },
    }
}

fn pulumi_spec(deployment: &Deployment, pulumi: &PulumiDeployment, run: Run) -> Spec {
    let preview_only = run == Run::Preview || pulumi.preview_only.unwrap_or(false);
    let refresh = pulumi.refresh.unwrap_or(true);
    let (role, session) = match run {
        Run::Preview => (
            deployment.preview_role_arn.as_deref(),
            format!("securepipeline-preview-{}", deployment.name),
        ),
        Run::Deploy => (
            deployment.assume_role_arn.as_deref(),
            format!("securepipeline-{}", deployment.name),
        ),
    };
    let login = login_for(pulumi, run);
    let key = pulumi.secrets_kms_key_arn.as_deref();
    // The stage's own role keeps the state and the secrets key, which its
    // grants cover, while the deployment runs under the assumed role.
    let state_profile = role.is_some() && (!pulumi_cloud(pulumi) || key.is_some());

    let mut variables = vec![("PULUMI_SKIP_UPDATE_CHECK".to_string(), "true".to_string())];
    if !pulumi_cloud(pulumi) {
        // Otherwise every login lists `.pulumi/stacks/` for files of old
        // CLIs, which would show every project's name: the role may list
        // its own stack's keys only.
        variables.push((
            "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING".to_string(),
            "true".to_string(),
        ));
    }
    let mut secrets = Vec::new();
    if let Login::Token(Some(arn)) = login {
        secrets.push(("PULUMI_ACCESS_TOKEN".to_string(), arn.to_string()));
    }
    if let Some(arn) = &pulumi.passphrase_secret_arn {
        secrets.push(("PULUMI_CONFIG_PASSPHRASE".to_string(), arn.clone()));
    }

    let install = install_commands(pulumi_version(pulumi), pulumi.pulumi_cli_sha256.as_deref());
    let mut pre_build = Vec::new();
    if let Login::Oidc {
        organization,
        team,
        user,
    } = login
    {
        let minutes = deployment
            .timeout_minutes
            .unwrap_or(DEFAULT_TIMEOUT_MINUTES);
        pre_build.extend(oidc_login_commands(
            pulumi.backend_url.as_deref(),
            (organization, team, user),
            minutes,
        ));
    }
    if let Some(role) = role {
        pre_build.extend(assume_role_commands(&session, role, state_profile));
    }
    if let Login::Token(_) = login {
        pre_build.push(login_command(pulumi, role.is_some()));
    }
    if let Some(dir) = work_dir(pulumi) {
        pre_build.push(format!("cd \"$CODEBUILD_SRC_DIR\"/{}", shell_quote(dir)));
    }
    if key.is_some() {
        // A stack whose committed config names no secrets provider keeps
        // the one its state records (the key) instead of Pulumi's default.
        pre_build.push("export PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER=true".to_string());
    }
    pre_build.push(match (run, key) {
        // A new stack gets the key as its secrets provider; the preview
        // never creates a stack.
        (Run::Deploy, Some(key)) => format!(
            "pulumi stack select --create --secrets-provider {} {}",
            shell_quote(&secrets_provider_url(
                key,
                state_profile.then_some(STAGE_PROFILE)
            )),
            shell_quote(&stack_reference(pulumi))
        ),
        _ => format!(
            "pulumi stack select {}",
            shell_quote(&stack_reference(pulumi))
        ),
    });

    let mut build = Vec::new();
    if refresh && !preview_only {
        build.push("pulumi refresh --yes --skip-preview".to_string());
    }
    // A preview-only run refreshes in memory only: it never writes state.
    build.push(
        if refresh && preview_only {
            "pulumi preview --diff --refresh"
        } else {
            "pulumi preview --diff"
        }
        .to_string(),
    );
    if !preview_only {
        build.push("pulumi up --yes --skip-preview".to_string());
    }
    let mut phases = vec![
        ("install", install),
        ("pre_build", pre_build),
        ("build", build),
    ];
    // The Preview action exports nothing: only what Deploy ran is an
    // artifact.
    let (artifact_files, base_directory) = match run {
        Run::Preview => (Vec::new(), None),
        Run::Deploy => {
            phases.push((
                "post_build",
                vec![format!("pulumi stack output --json > {STACK_OUTPUTS_FILE}")],
            ));
            (
                vec![STACK_OUTPUTS_FILE.to_string()],
                work_dir(pulumi).map(str::to_string),
            )
        }
    };
    Spec {
        variables,
        secrets,
        exported: Vec::new(),
        phases,
        artifact_files,
        base_directory,
        ..Spec::default()
    }
}

fn commands_spec(deployment: &Deployment) -> Spec {
    let mut phases = Vec::new();
    if let Some(role) = &deployment.assume_role_arn {
        phases.push((
            "pre_build",
            assume_role_commands(&format!("securepipeline-{}", deployment.name), role, false),
        ));
    }
    phases.push(("build", deployment.commands.clone().unwrap_or_default()));
    Spec {
        phases,
        ..Spec::default()
    }
}

/// The artifact a Pulumi stage exports its stack outputs as, for the
/// stage at `index`: `StackOutputs<index + 1>-<stage>`. CodePipeline keys
/// artifacts by their first 20 characters only, so the index comes first:
/// stages `prod` and `prod-eu` must never share (and so overwrite) a key
/// prefix. Artifact names allow letters, digits, `_` and `-`.
pub fn outputs_artifact(index: usize, deployment: &Deployment) -> Option<String> {
    deployment.pulumi.as_ref()?;
    let name: String = deployment
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    Some(format!("StackOutputs{}-{name}", index + 1))
}

/// A CodeBuild project and its log group.
#[derive(Debug, Clone, Copy)]
pub struct ProjectNames<'a> {
    pub project_name: &'a str,
    pub log_group_name: &'a str,
}

/// What the stage's actions need to know about its children.
#[derive(Debug, Clone, Copy)]
pub struct StageChildren<'a> {
    pub deploy: ProjectNames<'a>,
    /// The preview's own project, for stages that preview.
    pub preview: Option<ProjectNames<'a>>,
    pub topic_arn: &'a str,
}

fn codebuild_action(name: &str, project: &str, region: Option<&str>, run_order: u32) -> Action {
    let configuration = BTreeMap::from([("ProjectName".to_string(), project.to_string())]);
    Action {
        name: name.into(),
        category: "Build".into(),
        owner: "AWS".into(),
        provider: "CodeBuild".into(),
        version: "1".into(),
        run_order,
        configuration,
        input_artifacts: vec![BUILD_ARTIFACT.into()],
        output_artifacts: Vec::new(),
        region: region.map(str::to_string),
        namespace: None,
        timeout_in_minutes: None,
    }
}

/// Who may approve, as the approval's custom data states it.
pub fn approvers_note(approvers: &[String]) -> String {
    format!(
        "Only these principals may approve: {}.",
        approvers.join(", ")
    )
}

fn approval_action(deployment: &Deployment, children: StageChildren<'_>, run_order: u32) -> Action {
    let what = match (&deployment.pulumi, children.preview) {
        (Some(pulumi), Some(preview)) => format!(
            "Approve deploying stack {} to {}. Read the diff first: the Preview action of this stage ran `pulumi preview --diff` in CodeBuild project {} (logs: {}).",
            pulumi.stack, deployment.name, preview.project_name, preview.log_group_name
        ),
        (Some(pulumi), None) => format!(
            "Approve deploying stack {} to {}. No preview ran: a Pulumi Cloud stack previews only with read-only credentials (previewAccessTokenSecretArn or pulumiCloudOidc.previewTeam). CodeBuild project {} (logs: {}) deploys after approval.",
            pulumi.stack, deployment.name, children.deploy.project_name, children.deploy.log_group_name
        ),
        (None, _) => format!(
            "Approve running the deployment commands of stage {} (CodeBuild project {}).",
            deployment.name, children.deploy.project_name
        ),
    };
    // First, so that the length limit never cuts it off.
    let what = match deployment.approvers.as_deref() {
        Some(approvers) if !approvers.is_empty() => {
            format!("{} {what}", approvers_note(approvers))
        }
        _ => what,
    };
    Action {
        name: "Approve".into(),
        category: "Approval".into(),
        owner: "AWS".into(),
        provider: "Manual".into(),
        version: "1".into(),
        run_order,
        configuration: BTreeMap::from([
            (
                "NotificationArn".to_string(),
                children.topic_arn.to_string(),
            ),
            (
                "CustomData".to_string(),
                what.chars().take(MAX_CUSTOM_DATA).collect(),
            ),
        ]),
        input_artifacts: Vec::new(),
        output_artifacts: Vec::new(),
        region: None,
        namespace: None,
        timeout_in_minutes: Some(
            deployment
                .approval_timeout_minutes
                .unwrap_or(DEFAULT_APPROVAL_TIMEOUT_MINUTES),
        ),
    }
}

/// The stage: with approval, a Pulumi stage previews (in its own project,
/// with read-only credentials), waits for approval, then deploys (in the
/// project that holds the deploy role and secrets); a commands stage waits,
/// then runs. The CodeBuild actions run in the stage's region.
pub fn stage(
    (index, deployment): (usize, &Deployment),
    home: &str,
    children: StageChildren<'_>,
) -> Stage {
    let region = deployment.region.as_deref().filter(|r| *r != home);
    let mut actions = Vec::new();
    if requires_approval(deployment) {
        if let Some(preview) = children.preview.filter(|_| has_preview(deployment)) {
            actions.push(codebuild_action("Preview", preview.project_name, region, 1));
        }
        actions.push(approval_action(
            deployment,
            children,
            actions.len() as u32 + 1,
        ));
    }
    let mut deploy = codebuild_action(
        "Deploy",
        children.deploy.project_name,
        region,
        actions.len() as u32 + 1,
    );
    deploy.output_artifacts = outputs_artifact(index, deployment).into_iter().collect();
    actions.push(deploy);
    let (before_entry, on_success) = gates::conditions(deployment.gates.as_ref());
    Stage {
        name: deployment.name.clone(),
        actions,
        rollback_on_failure: gates::rolls_back(deployment),
        before_entry,
        on_success,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::{lint, Effect};
    use serde_json::json;
    use serde_yaml_ng::Value as Yaml;

    const ARNS: Arns<'static> = Arns {
        partition: "aws",
        account: "123456789012",
        region: "eu-west-1",
    };
    const TOKEN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pulumi-token-AbCdEf";
    const PASSPHRASE: &str =
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dev-passphrase-AbCdEf";
    const DEPLOYER: &str = "arn:aws:iam::210987654321:role/deployer";

    fn deployment(value: serde_json::Value) -> Deployment {
        serde_json::from_value(value).unwrap()
    }

    fn dev() -> Deployment {
        deployment(json!({"name": "dev", "pulumiStack": {
            "stack": "web-infra/dev", "workDir": "infra", "backendUrl": "s3://state-bucket/pulumi",
            "passphraseSecretArn": PASSPHRASE
        }}))
    }

    fn prod() -> Deployment {
        deployment(
            json!({"name": "prod", "production": true, "assumeRoleArn": DEPLOYER, "pulumiStack": {
                "stack": "acme/web-infra/prod", "accessTokenSecretArn": TOKEN, "pulumiVersion": "3.200.0"
            }}),
        )
    }

    fn staging() -> Deployment {
        deployment(
            json!({"name": "staging", "region": "us-west-2", "commands": ["./deploy.sh staging"],
            "environment": {"DB": {"parameterName": "/web/staging/db"}}}),
        )
    }

    fn parse(spec: &str) -> Yaml {
        crate::buildspec::validate(spec).unwrap();
        serde_yaml_ng::from_str(spec).unwrap()
    }

    fn commands(doc: &Yaml, phase: &str) -> Vec<String> {
        doc["phases"][phase]["commands"]
            .as_sequence()
            .map(|s| s.iter().map(|c| c.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    }

    /// Every command of every phase, in the order CodeBuild runs them.
    fn all_commands(doc: &Yaml) -> Vec<String> {
        ["install", "pre_build", "build", "post_build"]
            .iter()
            .flat_map(|p| commands(doc, p))
            .collect()
    }

    fn position(all: &[String], needle: &str) -> usize {
        all.iter()
            .position(|c| c.contains(needle))
            .unwrap_or_else(|| panic!("`{needle}` missing from {all:#?}"))
    }

    #[test]
    fn pulumi_buildspec_runs_each_step_in_order() {
        let doc = parse(&buildspec(&dev()));
        let all = all_commands(&doc);
        let steps = [
            "sha256sum --check --strict pulumi.sha256",
            "export PATH=\"$HOME/.pulumi/bin:$PATH\"",
            "pulumi login s3://state-bucket/pulumi",
            "cd \"$CODEBUILD_SRC_DIR\"/infra",
            "pulumi stack select organization/web-infra/dev",
            "pulumi refresh --yes --skip-preview",
            "pulumi preview --diff",
            "pulumi up --yes --skip-preview",
            "pulumi stack output --json > stack-outputs.json",
        ];
        let positions: Vec<usize> = steps.iter().map(|s| position(&all, s)).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{all:#?}");
        assert_eq!(
            commands(&doc, "post_build"),
            vec!["pulumi stack output --json > stack-outputs.json"]
        );
        assert_eq!(
            doc["artifacts"]["files"][0],
            Yaml::String("stack-outputs.json".into())
        );
        assert_eq!(
            doc["artifacts"]["base-directory"],
            Yaml::String("infra".into())
        );
        // The Deploy project always deploys: the preview before an
        // approval has a project of its own.
        assert!(doc["env"]["variables"].get("PREVIEW_ONLY").is_none());
    }

    /// The install phase as the buildspec writes it for release 3.248.0.
    fn verified_install(check: &[&str]) -> Vec<String> {
        let mut install = vec![
            r#"case "$(uname -m)" in x86_64) PULUMI_ARCH=x64 ;; aarch64) PULUMI_ARCH=arm64 ;; *) echo "no Pulumi CLI release for $(uname -m)" >&2; exit 1 ;; esac"#,
            r#"PULUMI_DOWNLOAD="$(mktemp -d)""#,
            r#"PULUMI_TARBALL="pulumi-v3.248.0-linux-$PULUMI_ARCH.tar.gz""#,
            r#"curl -fsSL -o "$PULUMI_DOWNLOAD/$PULUMI_TARBALL" "${SECUREPIPELINE_PULUMI_RELEASES_URL:-https://get.pulumi.com/releases/sdk}/$PULUMI_TARBALL""#,
        ];
        install.extend(check);
        install.extend([
            r#"(cd "$PULUMI_DOWNLOAD" && sha256sum --check --strict pulumi.sha256)"#,
            r#"mkdir -p "$HOME/.pulumi/bin""#,
            r#"tar -xzf "$PULUMI_DOWNLOAD/$PULUMI_TARBALL" --strip-components=1 -C "$HOME/.pulumi/bin""#,
            r#"export PATH="$HOME/.pulumi/bin:$PATH""#,
            r#"test "$(pulumi version)" = v3.248.0"#,
        ]);
        install.into_iter().map(str::to_string).collect()
    }

    #[test]
    fn the_cli_is_installed_only_after_its_checksum_matches() {
        let doc = parse(&buildspec(&dev()));
        assert_eq!(
            commands(&doc, "install"),
            verified_install(&[
                r#"curl -fsSL -o "$PULUMI_DOWNLOAD/checksums.txt" "${SECUREPIPELINE_PULUMI_CHECKSUMS_URL:-https://github.com/pulumi/pulumi/releases/download}/v3.248.0/pulumi-3.248.0-checksums.txt""#,
                r#"awk -v tarball="$PULUMI_TARBALL" '$2 == tarball' "$PULUMI_DOWNLOAD/checksums.txt" > "$PULUMI_DOWNLOAD/pulumi.sha256""#,
            ])
        );
        // Nothing is piped into a shell, in any buildspec.
        for spec in [
            buildspec(&dev()),
            buildspec(&prod()),
            preview_buildspec(&prod_s3()).unwrap(),
        ] {
            assert!(
                all_commands(&parse(&spec))
                    .iter()
                    .all(|c| !c.contains("| sh")),
                "{spec}"
            );
        }

        // A pinned hash replaces the published checksums.
        let hash = "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef";
        let pinned = deployment(json!({"name": "dev", "pulumiStack": {
            "stack": "web-infra/dev", "backendUrl": "s3://state-bucket/pulumi",
            "passphraseSecretArn": PASSPHRASE, "pulumiVersion": "3.248.0", "pulumiCliSha256": hash
        }}));
        assert_eq!(
            commands(&parse(&buildspec(&pinned)), "install"),
            verified_install(&[
                r#"echo "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef  $PULUMI_TARBALL" > "$PULUMI_DOWNLOAD/pulumi.sha256""#
            ])
        );
    }

    /// Runs the install phase in `sh` (each command stops it on failure,
    /// as CodeBuild does) with releases and checksums served from `site`.
    fn run_install(install: &[String], site: &std::path::Path, home: &std::path::Path) -> bool {
        let script = format!("set -e\n{}", install.join("\n"));
        std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("HOME", home)
            .env(
                "SECUREPIPELINE_PULUMI_RELEASES_URL",
                format!("file://{}/releases", site.display()),
            )
            .env(
                "SECUREPIPELINE_PULUMI_CHECKSUMS_URL",
                format!("file://{}/checksums", site.display()),
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("sh runs")
            .success()
    }

    #[test]
    fn the_install_phase_refuses_a_tarball_its_checksums_do_not_name() {
        let install = commands(&parse(&buildspec(&dev())), "install");
        assert!(install.iter().all(|c| !c.contains("| sh")), "{install:#?}");
        let arch = match std::env::consts::ARCH {
            "aarch64" => "arm64",
            _ => "x64",
        };
        let tarball = format!("pulumi-v3.248.0-linux-{arch}.tar.gz");
        let site = std::env::temp_dir().join(format!("sp-install-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&site);
        let releases = site.join("releases");
        let checksums = site.join("checksums/v3.248.0");
        let cli = site.join("cli/pulumi");
        for dir in [&releases, &checksums, &cli] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let pack = |version: &str| {
            std::fs::write(cli.join("pulumi"), format!("#!/bin/sh\necho v{version}\n")).unwrap();
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "chmod +x pulumi/pulumi && tar -czf '{}' pulumi",
                    releases.join(&tarball).display()
                ))
                .current_dir(site.join("cli"))
                .status()
                .unwrap();
            assert!(status.success());
        };
        let sha256 = || {
            let out = std::process::Command::new("sha256sum")
                .arg(releases.join(&tarball))
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()[..64].to_string()
        };
        let publish = |lines: &str| {
            std::fs::write(checksums.join("pulumi-3.248.0-checksums.txt"), lines).unwrap();
        };
        let fresh_home = |name: &str| {
            let home = site.join(name);
            std::fs::create_dir_all(&home).unwrap();
            home
        };

        pack("3.248.0");
        let good = sha256();
        let other = if arch == "x64" { "arm64" } else { "x64" };
        publish(&format!(
            "{}  pulumi-v3.248.0-linux-{other}.tar.gz\n{good}  {tarball}\n",
            "0".repeat(64)
        ));
        let home = fresh_home("home-good");
        assert!(run_install(&install, &site, &home));
        assert!(home.join(".pulumi/bin/pulumi").exists());

        // Another tarball under the same name: refused, nothing installed.
        pack("3.248.1");
        let home = fresh_home("home-tampered");
        assert!(!run_install(&install, &site, &home));
        assert!(!home.join(".pulumi/bin/pulumi").exists());

        // Checksums without the tarball's line: refused.
        let tampered = sha256();
        publish(&format!(
            "{tampered}  pulumi-v3.248.0-linux-{other}.tar.gz\n"
        ));
        let home = fresh_home("home-unlisted");
        assert!(!run_install(&install, &site, &home));

        // The right checksum of a binary that is another version: refused.
        publish(&format!("{tampered}  {tarball}\n"));
        let home = fresh_home("home-wrong-version");
        assert!(!run_install(&install, &site, &home));
        let _ = std::fs::remove_dir_all(&site);
    }

    const SECRETS_KEY: &str =
        "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    /// Production on Pulumi Cloud without stored credentials: OIDC login,
    /// secrets with a KMS key, a read-only team for its preview.
    fn prod_keyless() -> Deployment {
        deployment(
            json!({"name": "prod", "production": true, "assumeRoleArn": DEPLOYER,
            "previewRoleArn": "arn:aws:iam::210987654321:role/previewer",
            "timeoutMinutes": 90,
            "pulumiStack": {
                "stack": "acme/web-infra/prod", "secretsKmsKeyArn": SECRETS_KEY,
                "pulumiCloudOidc": {"organization": "acme", "team": "deployers", "previewTeam": "readers"}
            }}),
        )
    }

    #[test]
    fn a_keyless_stage_logs_in_with_an_identity_token_and_keeps_secrets_with_its_key() {
        let spec = buildspec(&prod_keyless());
        let doc = parse(&spec);
        let pre_build = commands(&doc, "pre_build");
        assert_eq!(
            pre_build[..4],
            [
                r#"PULUMI_OIDC_TOKEN_FILE="$(mktemp)""#,
                r#"AWS_STS_REGIONAL_ENDPOINTS=regional aws sts get-web-identity-token --audience urn:pulumi:org:acme --signing-algorithm RS256 --duration-seconds 300 --query WebIdentityToken --output text > "$PULUMI_OIDC_TOKEN_FILE""#,
                r#"pulumi login --oidc-token "file://$PULUMI_OIDC_TOKEN_FILE" --oidc-org acme --oidc-team deployers --oidc-expiration 90m"#,
                r#"rm -f "$PULUMI_OIDC_TOKEN_FILE""#,
            ]
        );
        // The identity token is the stage role's: it is fetched before the
        // deployment's profile is in force.
        assert_eq!(pre_build[4], "mkdir -p \"$HOME/.aws\"");
        assert!(
            pre_build[5].contains("'[profile securepipeline-stage]'"),
            "{}",
            pre_build[5]
        );
        assert_eq!(
            pre_build.last().unwrap(),
            &format!("pulumi stack select --create --secrets-provider 'awskms:///{SECRETS_KEY}?region=eu-central-1&profile=securepipeline-stage' acme/web-infra/prod")
        );
        assert!(!spec.contains("PULUMI_ACCESS_TOKEN"), "{spec}");
        assert!(!spec.contains("PULUMI_CONFIG_PASSPHRASE"), "{spec}");
        assert_eq!(
            pre_build[pre_build.len() - 2],
            "export PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER=true"
        );
        assert!(doc["env"].get("secrets-manager").is_none(), "{spec}");

        // The preview logs in as the read-only team and creates nothing.
        assert!(has_preview(&prod_keyless()));
        let preview = parse(&preview_buildspec(&prod_keyless()).unwrap());
        let pre_build = commands(&preview, "pre_build");
        assert_eq!(
            pre_build[2],
            r#"pulumi login --oidc-token "file://$PULUMI_OIDC_TOKEN_FILE" --oidc-org acme --oidc-team readers --oidc-expiration 90m"#
        );
        assert_eq!(
            pre_build.last().unwrap(),
            "pulumi stack select acme/web-infra/prod"
        );

        // Without a role, the key is used by the stage's role directly.
        let mut own_role = prod_keyless();
        own_role.assume_role_arn = None;
        let doc = parse(&buildspec(&own_role));
        assert_eq!(
            commands(&doc, "pre_build").last().unwrap(),
            &format!("pulumi stack select --create --secrets-provider 'awskms:///{SECRETS_KEY}?region=eu-central-1' acme/web-infra/prod")
        );
    }

    #[test]
    fn keyless_stages_are_granted_their_key_and_one_token_audience_only() {
        let production = prod_keyless();
        let deployments = vec![dev(), production.clone()];
        let protected = Protected::of(&ARNS, &deployments);
        let store = Store {
            bucket_arn: "arn:aws:s3:::artifacts",
            key_arn: "arn:aws:kms:eu-west-1:123456789012:key/k",
            pipeline_name: "web-x1y2-pipeline-k3j9a0qz",
        };
        let policy = role_policy(&ARNS, store, "/l", (1, &production), &protected);
        let key = statement(&policy, "UseSecretsProviderKey").unwrap();
        assert_eq!(
            (key.effect, key.actions.clone(), key.resources.clone()),
            (
                Effect::Allow,
                vec!["kms:Decrypt".to_string(), "kms:Encrypt".to_string()],
                vec![SECRETS_KEY.to_string()]
            )
        );
        let token = statement(&policy, "GetPulumiCloudIdentityToken").unwrap();
        assert_eq!(token.actions, vec!["sts:GetWebIdentityToken"]);
        assert_eq!(token.resources, vec!["*"]);
        assert_eq!(
            token.conditions["ForAllValues:StringEquals"]["sts:IdentityTokenAudience"],
            vec!["urn:pulumi:org:acme"]
        );
        assert_eq!(
            token.conditions["NumericLessThanEquals"]["sts:DurationSeconds"],
            vec!["300"]
        );
        assert!(
            policy
                .statements
                .iter()
                .all(|s| !s.actions.iter().any(|a| a.starts_with("secretsmanager:"))),
            "no stored secret is read: {policy:#?}"
        );

        // The preview only decrypts.
        let preview = preview_role_policy(&ARNS, store, "/l", &production, &protected);
        let decrypt = statement(&preview, "DecryptSecretsProviderKey").unwrap();
        assert_eq!(
            (decrypt.actions.clone(), decrypt.resources.clone()),
            (
                vec!["kms:Decrypt".to_string()],
                vec![SECRETS_KEY.to_string()]
            )
        );
        assert!(statement(&preview, "GetPulumiCloudIdentityToken").is_some());
        assert!(statement(&preview, "DenyProductionKeys").is_none());

        // Every other role is denied production's key.
        let dev_policy = role_policy(&ARNS, store, "/l", (0, &dev()), &protected);
        let denied = statement(&dev_policy, "DenyProductionKeys").unwrap();
        assert_eq!(
            (
                denied.effect,
                denied.actions.clone(),
                denied.resources.clone()
            ),
            (
                Effect::Deny,
                vec!["kms:*".to_string()],
                vec![SECRETS_KEY.to_string()]
            )
        );
        assert!(statement(&dev_policy, "GetPulumiCloudIdentityToken").is_none());
        for doc in [&policy, &preview, &dev_policy] {
            assert!(
                lint::permissions(doc).is_empty(),
                "{:?}",
                lint::permissions(doc)
            );
        }
    }

    #[test]
    fn secrets_appear_only_as_secrets_manager_references() {
        let spec = buildspec(&prod());
        let doc = parse(&spec);
        assert_eq!(
            doc["env"]["secrets-manager"]["PULUMI_ACCESS_TOKEN"],
            Yaml::String(TOKEN.into())
        );
        assert!(doc["env"]["variables"]
            .as_mapping()
            .unwrap()
            .keys()
            .all(|k| !k.as_str().unwrap().starts_with("PULUMI_ACCESS")));
        assert_eq!(spec.matches(TOKEN).count(), 1, "{spec}");
        let dev_spec = buildspec(&dev());
        let dev_doc = parse(&dev_spec);
        assert_eq!(
            dev_doc["env"]["secrets-manager"]["PULUMI_CONFIG_PASSPHRASE"],
            Yaml::String(PASSPHRASE.into())
        );
        assert_eq!(dev_spec.matches(PASSPHRASE).count(), 1);
    }

    #[test]
    fn pinned_version_and_pulumi_cloud_login() {
        let doc = parse(&buildspec(&prod()));
        let all = all_commands(&doc);
        assert!(all
            .contains(&"PULUMI_TARBALL=\"pulumi-v3.200.0-linux-$PULUMI_ARCH.tar.gz\"".to_string()));
        assert!(all.contains(&"test \"$(pulumi version)\" = v3.200.0".to_string()));
        assert!(all.contains(&"pulumi login".to_string()));
        assert!(all.contains(&"pulumi stack select acme/web-infra/prod".to_string()));
        assert!(doc["artifacts"].get("base-directory").is_none());
    }

    #[test]
    fn the_deployment_runs_under_the_assumed_role_without_printing_credentials() {
        let doc = parse(&buildspec(&prod()));
        let pre_build = commands(&doc, "pre_build");
        assert_eq!(pre_build[0], "mkdir -p \"$HOME/.aws\"");
        assert_eq!(
            pre_build[1],
            "printf '%s\\n' '[profile securepipeline-deploy]' 'role_arn = arn:aws:iam::210987654321:role/deployer' 'credential_source = EcsContainer' 'role_session_name = securepipeline-prod' > \"$HOME/.aws/config\""
        );
        assert_eq!(pre_build[2], "export AWS_PROFILE=securepipeline-deploy");
        assert!(position(&pre_build, "AWS_PROFILE") < position(&pre_build, "pulumi login"));
        let all = all_commands(&doc).join("\n");
        assert!(
            !all.contains("assume-role") && !all.contains("AWS_SECRET_ACCESS_KEY"),
            "{all}"
        );
    }

    #[test]
    fn an_s3_backend_stays_on_the_stage_role_when_the_deployment_assumes_another() {
        let mut d = dev();
        d.assume_role_arn = Some(DEPLOYER.into());
        let doc = parse(&buildspec(&d));
        let pre_build = commands(&doc, "pre_build");
        assert!(
            pre_build[1].contains("'[profile securepipeline-stage]' 'output = json'"),
            "{}",
            pre_build[1]
        );
        assert!(
            pre_build.contains(
                &"pulumi login 's3://state-bucket/pulumi?profile=securepipeline-stage'".to_string()
            ),
            "{pre_build:#?}"
        );
    }

    #[test]
    fn preview_only_never_updates_or_writes_state() {
        let mut d = dev();
        d.pulumi.as_mut().unwrap().preview_only = Some(true);
        let doc = parse(&buildspec(&d));
        let build = commands(&doc, "build");
        assert_eq!(build, vec!["pulumi preview --diff --refresh"]);
        assert!(!all_commands(&doc)
            .iter()
            .any(|c| c.contains("pulumi up") || c.contains("pulumi refresh")));
        d.pulumi.as_mut().unwrap().refresh = Some(false);
        assert_eq!(
            commands(&parse(&buildspec(&d)), "build"),
            vec!["pulumi preview --diff"]
        );
    }

    #[test]
    fn refresh_can_be_turned_off() {
        let mut d = dev();
        d.pulumi.as_mut().unwrap().refresh = Some(false);
        let build = commands(&parse(&buildspec(&d)), "build");
        assert_eq!(
            build,
            vec!["pulumi preview --diff", "pulumi up --yes --skip-preview"]
        );
    }

    #[test]
    fn commands_stages_run_the_users_commands() {
        let doc = parse(&buildspec(&staging()));
        assert_eq!(commands(&doc, "build"), vec!["./deploy.sh staging"]);
        assert!(doc["phases"].get("pre_build").is_none());
        assert!(doc.get("artifacts").is_none());
        let mut with_role = staging();
        with_role.assume_role_arn = Some(DEPLOYER.into());
        let doc = parse(&buildspec(&with_role));
        assert_eq!(
            commands(&doc, "pre_build")[2],
            "export AWS_PROFILE=securepipeline-deploy"
        );
        assert_eq!(commands(&doc, "build"), vec!["./deploy.sh staging"]);
    }

    #[test]
    fn an_s3_backend_login_lists_nothing_but_its_own_stack() {
        let variables = |spec: &str| parse(spec)["env"]["variables"].clone();
        for spec in [buildspec(&dev()), preview_buildspec(&prod_s3()).unwrap()] {
            assert_eq!(
                variables(&spec)["PULUMI_DIY_BACKEND_NO_LEGACY_WARNING"],
                Yaml::String("true".into()),
                "{spec}"
            );
        }
        assert!(variables(&buildspec(&prod()))
            .get("PULUMI_DIY_BACKEND_NO_LEGACY_WARNING")
            .is_none());
    }

    #[test]
    fn self_managed_stacks_are_selected_by_their_full_name() {
        let select = |spec: &str| {
            commands(&parse(spec), "pre_build")
                .into_iter()
                .find(|c| c.starts_with("pulumi stack select"))
                .unwrap()
        };
        assert_eq!(
            select(&buildspec(&dev())),
            "pulumi stack select organization/web-infra/dev"
        );
        assert_eq!(
            select(&preview_buildspec(&prod_s3()).unwrap()),
            "pulumi stack select organization/web-infra/prod"
        );
        let mut qualified = dev();
        qualified.pulumi.as_mut().unwrap().stack = "organization/web-infra/dev".into();
        assert_eq!(
            select(&buildspec(&qualified)),
            "pulumi stack select organization/web-infra/dev"
        );
        // Pulumi Cloud stacks are named as given.
        assert_eq!(
            select(&buildspec(&prod())),
            "pulumi stack select acme/web-infra/prod"
        );
    }

    #[test]
    fn state_access_is_exactly_the_stacks_own() {
        let state = stack_state(&ARNS, dev().pulumi.as_ref().unwrap()).unwrap();
        assert_eq!(
            state.objects(),
            vec![
                "arn:aws:s3:::state-bucket/pulumi/.pulumi/stacks/web-infra/dev.json*",
                "arn:aws:s3:::state-bucket/pulumi/.pulumi/stacks/web-infra/dev.pulumi-tags",
                "arn:aws:s3:::state-bucket/pulumi/.pulumi/locks/organization/web-infra/dev/*",
                "arn:aws:s3:::state-bucket/pulumi/.pulumi/history/web-infra/dev/*",
                "arn:aws:s3:::state-bucket/pulumi/.pulumi/backups/web-infra/dev/*",
            ]
        );
        assert_eq!(
            state.metadata,
            "arn:aws:s3:::state-bucket/pulumi/.pulumi/meta.yaml"
        );
        assert_eq!(
            state.list_prefixes,
            vec![
                "pulumi/.pulumi/stacks/web-infra/dev.json*",
                "pulumi/.pulumi/stacks/web-infra/dev.pulumi-tags",
                "pulumi/.pulumi/locks/organization/web-infra/dev/*",
                "pulumi/.pulumi/history/web-infra/dev/*",
                "pulumi/.pulumi/backups/web-infra/dev/*",
            ]
        );
        let root = PulumiDeployment {
            backend_url: Some("s3://state?region=eu-west-1".into()),
            stack: "organization/app/prod".into(),
            ..dev().pulumi.unwrap()
        };
        let state = stack_state(&ARNS, &root).unwrap();
        assert_eq!(
            state.checkpoint,
            "arn:aws:s3:::state/.pulumi/stacks/app/prod.json*"
        );
        assert_eq!(state.list_prefixes[0], ".pulumi/stacks/app/prod.json*");
        assert!(
            stack_state(&ARNS, prod().pulumi.as_ref().unwrap()).is_none(),
            "Pulumi Cloud has no state grants"
        );
    }

    fn statement<'a>(doc: &'a PolicyDocument, sid: &str) -> Option<&'a crate::iam::Statement> {
        doc.statements
            .iter()
            .find(|s| s.sid.as_deref() == Some(sid))
    }

    #[test]
    fn non_production_roles_are_denied_production_and_production_is_not() {
        let mut prod = prod();
        prod.pulumi.as_mut().unwrap().backend_url = Some("s3://state-bucket/pulumi".into());
        prod.pulumi.as_mut().unwrap().stack = "web-infra/prod".into();
        prod.pulumi.as_mut().unwrap().passphrase_secret_arn = Some(
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod-passphrase-AbCdEf".into(),
        );
        let deployments = vec![dev(), staging(), prod.clone()];
        let protected = Protected::of(&ARNS, &deployments);
        let store = Store {
            bucket_arn: "arn:aws:s3:::artifacts",
            key_arn: "arn:aws:kms:eu-west-1:123456789012:key/k",
            pipeline_name: "web-x1y2-pipeline-k3j9a0qz",
        };

        let dev_policy = role_policy(&ARNS, store, "/securepipeline/dev", (0, &dev()), &protected);
        let state = statement(&dev_policy, "DenyProductionState").unwrap();
        assert_eq!(state.effect, Effect::Deny);
        assert_eq!(state.actions, vec!["s3:*"]);
        assert_eq!(
            state.resources,
            vec![
                "arn:aws:s3:::state-bucket/pulumi/.pulumi/backups/web-infra/prod/*",
                "arn:aws:s3:::state-bucket/pulumi/.pulumi/history/web-infra/prod/*",
                "arn:aws:s3:::state-bucket/pulumi/.pulumi/locks/organization/web-infra/prod/*",
                "arn:aws:s3:::state-bucket/pulumi/.pulumi/stacks/web-infra/prod.json*",
                "arn:aws:s3:::state-bucket/pulumi/.pulumi/stacks/web-infra/prod.pulumi-tags",
            ]
        );
        let secrets = statement(&dev_policy, "DenyProductionSecrets").unwrap();
        assert_eq!(secrets.actions, vec!["secretsmanager:*"]);
        assert_eq!(
            secrets.resources,
            vec![
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod-passphrase-AbCdEf",
                TOKEN
            ]
        );
        let roles = statement(&dev_policy, "DenyProductionRoles").unwrap();
        assert_eq!(
            (roles.actions.clone(), roles.resources.clone()),
            (
                vec!["sts:AssumeRole".to_string()],
                vec![DEPLOYER.to_string()]
            )
        );

        let staging_policy = role_policy(
            &ARNS.in_region("us-west-2"),
            store,
            "/securepipeline/staging",
            (1, &staging()),
            &protected,
        );
        assert_eq!(
            statement(&staging_policy, "DenyProductionRoles"),
            Some(roles)
        );

        let prod_policy = role_policy(&ARNS, store, "/securepipeline/prod", (2, &prod), &protected);
        assert!(
            prod_policy
                .statements
                .iter()
                .all(|s| s.effect == Effect::Allow),
            "{prod_policy:#?}"
        );
        assert_eq!(
            statement(&prod_policy, "AssumeDeployRole")
                .unwrap()
                .resources,
            vec![DEPLOYER]
        );

        for doc in [&dev_policy, &staging_policy, &prod_policy] {
            assert!(
                lint::permissions(doc).is_empty(),
                "{:?}",
                lint::permissions(doc)
            );
            assert!(lint::inline_size([doc]) <= lint::INLINE_POLICY_LIMIT);
        }
    }

    #[test]
    fn stage_roles_hold_exactly_their_own_grants() {
        let protected = Protected::default();
        let store = Store {
            bucket_arn: "arn:aws:s3:::artifacts",
            key_arn: "arn:aws:kms:eu-west-1:123456789012:key/k",
            pipeline_name: "web-x1y2-pipeline-k3j9a0qz",
        };
        let policy = role_policy(&ARNS, store, "/securepipeline/dev", (0, &dev()), &protected);
        let sids: Vec<&str> = policy
            .statements
            .iter()
            .filter_map(|s| s.sid.as_deref())
            .collect();
        assert_eq!(
            sids,
            vec![
                "WriteOwnLogs",
                "ArtifactsRead",
                "ArtifactsBucket",
                "ArtifactsWrite",
                "UseArtifactKey",
                "ReadReferencedSecrets",
                "ReadWriteOwnStackState",
                "ReadOwnStackTags",
                "WriteOwnStackHistory",
                "ReadStateBackendMetadata",
                "ListStateBackend",
            ]
        );
        assert_eq!(
            statement(&policy, "ReadReferencedSecrets")
                .unwrap()
                .resources,
            vec![PASSPHRASE]
        );
        // Each of the stack's objects for what the CLI does with it: the
        // checkpoint and locks read, written and replaced; the tags read;
        // history and backups only added to.
        let state = |sid: &str| {
            let found = statement(&policy, sid).unwrap();
            (found.actions.clone(), found.resources.clone())
        };
        let objects = |keys: &[&str]| -> Vec<String> {
            keys.iter()
                .map(|k| format!("arn:aws:s3:::state-bucket/pulumi/.pulumi/{k}"))
                .collect()
        };
        let actions =
            |names: &[&str]| -> Vec<String> { names.iter().map(|a| a.to_string()).collect() };
        assert_eq!(
            state("ReadWriteOwnStackState"),
            (
                actions(&["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]),
                objects(&[
                    "stacks/web-infra/dev.json*",
                    "locks/organization/web-infra/dev/*"
                ])
            )
        );
        assert_eq!(
            state("ReadOwnStackTags"),
            (
                actions(&["s3:GetObject"]),
                objects(&["stacks/web-infra/dev.pulumi-tags"])
            )
        );
        assert_eq!(
            state("WriteOwnStackHistory"),
            (
                actions(&["s3:PutObject"]),
                objects(&["history/web-infra/dev/*", "backups/web-infra/dev/*"])
            )
        );
        let list = statement(&policy, "ListStateBackend").unwrap();
        assert_eq!(list.resources, vec!["arn:aws:s3:::state-bucket"]);
        // Its own stack's keys only: listing shows no other stack's name.
        assert_eq!(
            list.conditions["StringLike"]["s3:prefix"],
            stack_state(&ARNS, dev().pulumi.as_ref().unwrap())
                .unwrap()
                .list_prefixes
        );
        // The build's artifact in, its own outputs out.
        assert_eq!(
            statement(&policy, "ArtifactsRead").unwrap().resources,
            vec!["arn:aws:s3:::artifacts/web-x1y2-pipeline-k3/BuildOutput/*"]
        );
        assert_eq!(
            statement(&policy, "ArtifactsWrite").unwrap().resources,
            vec!["arn:aws:s3:::artifacts/web-x1y2-pipeline-k3/StackOutputs1-dev/*"]
        );
        assert!(lint::permissions(&policy).is_empty());

        // A stage in another region reads its parameters there.
        let staging = role_policy(
            &ARNS.in_region("us-west-2"),
            store,
            "/securepipeline/staging",
            (1, &staging()),
            &protected,
        );
        assert_eq!(
            statement(&staging, "ReadReferencedParameters")
                .unwrap()
                .resources,
            vec!["arn:aws:ssm:us-west-2:123456789012:parameter/web/staging/db"]
        );
        assert_eq!(
            statement(&staging, "WriteOwnLogs").unwrap().resources[0],
            "arn:aws:logs:us-west-2:123456789012:log-group:/securepipeline/staging"
        );
    }

    const CHILDREN: StageChildren<'static> = StageChildren {
        deploy: ProjectNames {
            project_name: "web-x1y2-deploy-prod-abcdefgh",
            log_group_name: "/securepipeline/web-x1y2-deploy-prod-abcdefgh",
        },
        preview: Some(ProjectNames {
            project_name: "web-x1y2-preview-prod-abcdefgh",
            log_group_name: "/securepipeline/web-x1y2-preview-prod-abcdefgh",
        }),
        topic_arn: "arn:aws:sns:eu-west-1:123456789012:web-notify",
    };

    #[test]
    fn production_pulumi_stages_preview_then_wait_for_approval_then_deploy() {
        let stage = stage((2, &prod_s3()), "eu-west-1", CHILDREN);
        let names: Vec<(&str, u32)> = stage
            .actions
            .iter()
            .map(|a| (a.name.as_str(), a.run_order))
            .collect();
        assert_eq!(names, vec![("Preview", 1), ("Approve", 2), ("Deploy", 3)]);
        let preview = &stage.actions[0];
        let preview_children = CHILDREN.preview.unwrap();
        assert_eq!(
            preview.configuration["ProjectName"],
            preview_children.project_name
        );
        assert!(!preview.configuration.contains_key("EnvironmentVariables"));
        assert!(preview.output_artifacts.is_empty());
        let approve = &stage.actions[1];
        assert_eq!(
            (approve.category.as_str(), approve.provider.as_str()),
            ("Approval", "Manual")
        );
        assert_eq!(approve.configuration["NotificationArn"], CHILDREN.topic_arn);
        assert!(approve.configuration["CustomData"].contains("Preview action"));
        assert!(approve.configuration["CustomData"].contains(preview_children.log_group_name));
        assert_eq!(approve.timeout_in_minutes, Some(1440));
        let deploy = &stage.actions[2];
        assert_eq!(
            deploy.configuration["ProjectName"],
            CHILDREN.deploy.project_name
        );
        assert_eq!(deploy.input_artifacts, vec![BUILD_ARTIFACT]);
        assert_eq!(deploy.output_artifacts, vec!["StackOutputs3-prod"]);
        assert!(!deploy.configuration.contains_key("EnvironmentVariables"));
        // Production rolls back by default, and has no gates unless given.
        assert!(stage.rollback_on_failure);
        assert!(stage.before_entry.is_empty() && stage.on_success.is_empty());
    }

    #[test]
    fn the_approval_states_who_may_approve_first() {
        let approvers = vec![
            "arn:aws:iam::123456789012:role/release-managers".to_string(),
            "arn:aws:iam::123456789012:user/alice".to_string(),
        ];
        let mut with_approvers = prod();
        with_approvers.approvers = Some(approvers.clone());
        let stage = stage((2, &with_approvers), "eu-west-1", CHILDREN);
        let approve = stage
            .actions
            .iter()
            .find(|a| a.name == "Approve")
            .expect("an approval");
        let data = &approve.configuration["CustomData"];
        assert!(
            data.starts_with(&format!(
                "Only these principals may approve: {}, {}. Approve deploying",
                approvers[0], approvers[1]
            )),
            "{data}"
        );
        assert!(data.chars().count() <= MAX_CUSTOM_DATA);
    }

    #[test]
    fn approvals_follow_production_unless_set() {
        assert!(requires_approval(&prod()));
        assert!(!requires_approval(&dev()));
        let mut opted_out = prod();
        opted_out.require_approval = Some(false);
        assert_eq!(
            stage((2, &opted_out), "eu-west-1", CHILDREN).actions.len(),
            1
        );
        let mut commands = staging();
        commands.require_approval = Some(true);
        commands.approval_timeout_minutes = Some(60);
        commands.rollback_on_failure = Some(true);
        let stage = stage((1, &commands), "eu-west-1", CHILDREN);
        let names: Vec<(&str, u32)> = stage
            .actions
            .iter()
            .map(|a| (a.name.as_str(), a.run_order))
            .collect();
        assert_eq!(names, vec![("Approve", 1), ("Deploy", 2)]);
        assert_eq!(stage.actions[0].timeout_in_minutes, Some(60));
        assert!(stage.rollback_on_failure);
    }

    #[test]
    fn actions_run_in_the_stages_region() {
        let stage = stage((1, &staging()), "eu-west-1", CHILDREN);
        assert_eq!(stage.actions[0].region.as_deref(), Some("us-west-2"));
        assert!(
            stage.actions[0].output_artifacts.is_empty(),
            "commands export no artifact"
        );
        let home = stage_in_home();
        assert_eq!(home.actions[0].region, None);
        let args: SecurePipelineArgs = serde_json::from_value(json!({
            "source": {"repository": "o/r"}, "build": {"commands": ["make"]},
            "deployments": [dev(), staging(), prod(), {"name": "dr", "region": "eu-west-1", "commands": ["x"]}]
        }))
        .unwrap();
        assert_eq!(extra_regions(&args, "eu-west-1"), vec!["us-west-2"]);
    }

    fn stage_in_home() -> Stage {
        let mut d = staging();
        d.region = Some("eu-west-1".into());
        stage((1, &d), "eu-west-1", CHILDREN)
    }

    const PREVIEWER: &str = "arn:aws:iam::210987654321:role/previewer";
    const PROD_PASSPHRASE: &str =
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod-passphrase-AbCdEf";
    const PREVIEW_TOKEN: &str =
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pulumi-read-token-AbCdEf";

    /// Production on a self-managed backend, with a read-only preview role.
    fn prod_s3() -> Deployment {
        let mut prod = prod();
        prod.preview_role_arn = Some(PREVIEWER.into());
        let pulumi = prod.pulumi.as_mut().unwrap();
        pulumi.backend_url = Some("s3://state-bucket/pulumi".into());
        pulumi.stack = "web-infra/prod".into();
        pulumi.access_token_secret_arn = None;
        pulumi.passphrase_secret_arn = Some(PROD_PASSPHRASE.into());
        prod
    }

    #[test]
    fn the_preview_buildspec_previews_under_the_preview_role_only() {
        let spec = preview_buildspec(&prod_s3()).unwrap();
        let doc = parse(&spec);
        let all = all_commands(&doc);
        assert_eq!(
            commands(&doc, "build"),
            vec!["pulumi preview --diff --refresh"]
        );
        assert!(
            !all.iter()
                .any(|c| c.contains("pulumi up") || c.contains("pulumi refresh")),
            "{all:#?}"
        );
        assert!(spec.contains(&format!("role_arn = {PREVIEWER}")), "{spec}");
        assert!(!spec.contains(DEPLOYER), "{spec}");
        assert!(spec.contains("role_session_name = securepipeline-preview-prod"));
        assert!(all.contains(
            &"pulumi login 's3://state-bucket/pulumi?profile=securepipeline-stage'".to_string()
        ));
        assert_eq!(
            doc["env"]["secrets-manager"]["PULUMI_CONFIG_PASSPHRASE"],
            Yaml::String(PROD_PASSPHRASE.into())
        );
        assert!(doc["env"]["secrets-manager"]
            .get("PULUMI_ACCESS_TOKEN")
            .is_none());
        assert!(
            doc.get("artifacts").is_none(),
            "the preview exports nothing"
        );

        // Without a preview role the preview assumes none.
        let mut no_role = prod_s3();
        no_role.preview_role_arn = None;
        let spec = preview_buildspec(&no_role).unwrap();
        assert!(
            !spec.contains("AWS_PROFILE") && !spec.contains("role_arn"),
            "{spec}"
        );
    }

    #[test]
    fn pulumi_cloud_stages_preview_only_with_a_read_only_token() {
        // The deploy token can write: without a read-only token there is no
        // preview, and the approval says so.
        assert!(!has_preview(&prod()));
        assert_eq!(preview_buildspec(&prod()), None);
        let mut children = CHILDREN;
        children.preview = None;
        let stage = stage((2, &prod()), "eu-west-1", children);
        let names: Vec<&str> = stage.actions.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, vec!["Approve", "Deploy"]);
        assert!(stage.actions[0].configuration["CustomData"].contains("No preview ran"));

        let mut with_token = prod();
        with_token
            .pulumi
            .as_mut()
            .unwrap()
            .preview_access_token_secret_arn = Some(PREVIEW_TOKEN.into());
        assert!(has_preview(&with_token));
        let doc = parse(&preview_buildspec(&with_token).unwrap());
        assert_eq!(
            doc["env"]["secrets-manager"]["PULUMI_ACCESS_TOKEN"],
            Yaml::String(PREVIEW_TOKEN.into())
        );
        let deploy = parse(&buildspec(&with_token));
        assert_eq!(
            deploy["env"]["secrets-manager"]["PULUMI_ACCESS_TOKEN"],
            Yaml::String(TOKEN.into())
        );
        // Stages without an approval have no preview project.
        assert!(!has_preview(&dev()));
    }

    #[test]
    fn the_preview_role_holds_no_production_write_access() {
        let production = prod_s3();
        let deployments = vec![dev(), staging(), production.clone()];
        let protected = Protected::of(&ARNS, &deployments);
        let store = Store {
            bucket_arn: "arn:aws:s3:::artifacts",
            key_arn: "arn:aws:kms:eu-west-1:123456789012:key/k",
            pipeline_name: "web-x1y2-pipeline-k3j9a0qz",
        };
        let policy = preview_role_policy(
            &ARNS,
            store,
            "/securepipeline/web-preview-prod",
            &production,
            &protected,
        );
        assert!(
            lint::permissions(&policy).is_empty(),
            "{:?}",
            lint::permissions(&policy)
        );
        let allowed = |action: &str| -> Vec<String> {
            policy
                .statements
                .iter()
                .filter(|s| s.effect == Effect::Allow && s.actions.iter().any(|a| a == action))
                .flat_map(|s| s.resources.clone())
                .collect()
        };
        // Only the read-only role, never the deploy role.
        assert_eq!(allowed("sts:AssumeRole"), vec![PREVIEWER]);
        let deny_roles = statement(&policy, "DenyDeployRoles").unwrap();
        assert_eq!(deny_roles.effect, Effect::Deny);
        assert_eq!(deny_roles.resources, vec![DEPLOYER]);
        // The passphrase decrypts config but writes nothing; the preview
        // writes no artifact and no state.
        assert_eq!(
            allowed("secretsmanager:GetSecretValue"),
            vec![PROD_PASSPHRASE]
        );
        assert!(allowed("s3:PutObject").is_empty(), "{policy:#?}");
        assert!(allowed("s3:DeleteObject").is_empty(), "{policy:#?}");
        // It reads the build's artifact and encrypts nothing with the key.
        assert_eq!(allowed("kms:Decrypt"), vec![store.key_arn]);
        assert!(allowed("kms:GenerateDataKey").is_empty(), "{policy:#?}");
        assert!(allowed("kms:Encrypt").is_empty(), "{policy:#?}");
        let state = stack_state(&ARNS, production.pulumi.as_ref().unwrap()).unwrap();
        // Its checkpoint and tags only: a preview takes no lock and reads
        // neither history nor backups.
        assert_eq!(
            statement(&policy, "ReadOwnStackState").unwrap().resources,
            vec![state.checkpoint.clone(), state.tags.clone()]
        );
        let writes = statement(&policy, "DenyStateWrites").unwrap();
        assert_eq!(
            (writes.effect, writes.resources.clone()),
            (Effect::Deny, state.objects())
        );

        // With Pulumi Cloud, the deploy token is denied and the read-only
        // token readable.
        let mut cloud = prod();
        cloud
            .pulumi
            .as_mut()
            .unwrap()
            .preview_access_token_secret_arn = Some(PREVIEW_TOKEN.into());
        let protected = Protected::of(&ARNS, &[cloud.clone()]);
        let policy = preview_role_policy(&ARNS, store, "/l", &cloud, &protected);
        assert_eq!(
            statement(&policy, "ReadPreviewSecrets").unwrap().resources,
            vec![PREVIEW_TOKEN]
        );
        let denied = statement(&policy, "DenyDeploySecrets").unwrap();
        assert_eq!(
            (denied.effect, denied.resources.clone()),
            (Effect::Deny, vec![TOKEN.to_string()])
        );
        assert!(statement(&policy, "AssumePreviewRole").is_none());
        assert_eq!(
            statement(&policy, "DenyDeployRoles").unwrap().resources,
            vec![DEPLOYER]
        );
    }

    #[test]
    fn non_production_roles_cannot_reach_productions_artifacts_parameters_or_stack_names() {
        let mut prod = prod_s3();
        prod.environment =
            Some(serde_json::from_value(json!({"DB": {"parameterName": "/web/prod/db"}})).unwrap());
        let deployments = vec![dev(), staging(), prod.clone()];
        let protected = Protected::of(&ARNS, &deployments);
        let store = Store {
            bucket_arn: "arn:aws:s3:::artifacts",
            key_arn: "arn:aws:kms:eu-west-1:123456789012:key/k",
            pipeline_name: "web-x1y2-pipeline-k3j9a0qz",
        };
        let dev_policy = role_policy(&ARNS, store, "/l", (0, &dev()), &protected);
        let artifacts = statement(&dev_policy, "DenyProductionArtifacts").unwrap();
        assert_eq!(
            (artifacts.effect, artifacts.resources.clone()),
            (
                Effect::Deny,
                vec![
                    "arn:aws:s3:::artifacts/web-x1y2-pipeline-k3/StackOutputs3-prod/*".to_string()
                ]
            )
        );
        let parameters = statement(&dev_policy, "DenyProductionParameters").unwrap();
        assert_eq!(
            (parameters.effect, parameters.resources.clone()),
            (
                Effect::Deny,
                vec!["arn:aws:ssm:eu-west-1:123456789012:parameter/web/prod/db".to_string()]
            )
        );
        let prod_state = stack_state(&ARNS, prod.pulumi.as_ref().unwrap()).unwrap();
        let listing = statement(&dev_policy, "DenyListingProductionState").unwrap();
        assert_eq!(listing.effect, Effect::Deny);
        assert_eq!(listing.actions, vec!["s3:ListBucket"]);
        assert_eq!(listing.resources, vec!["arn:aws:s3:::state-bucket"]);
        assert_eq!(
            listing.conditions["StringLike"]["s3:prefix"],
            prod_state.list_prefixes
        );
        let own = statement(&dev_policy, "ListStateBackend").unwrap();
        assert!(
            own.conditions["StringLike"]["s3:prefix"]
                .iter()
                .all(|p| p.contains("/web-infra/dev")),
            "{own:?}"
        );
        // The staging stage in another region is denied there too.
        let staging_policy = role_policy(
            &ARNS.in_region("us-west-2"),
            store,
            "/l",
            (1, &staging()),
            &protected,
        );
        assert!(statement(&staging_policy, "DenyProductionParameters").is_some());
        // Production itself is not denied its own.
        let prod_policy = role_policy(&ARNS, store, "/l", (2, &prod), &protected);
        assert!(prod_policy
            .statements
            .iter()
            .all(|s| s.effect == Effect::Allow));
        assert_eq!(
            statement(&prod_policy, "ArtifactsWrite").unwrap().resources,
            vec!["arn:aws:s3:::artifacts/web-x1y2-pipeline-k3/StackOutputs3-prod/*"]
        );
        // Its preview may not read the parameter, nor write anything.
        let preview = preview_role_policy(&ARNS, store, "/l", &prod, &protected);
        assert_eq!(
            statement(&preview, "DenyDeployParameters")
                .unwrap()
                .resources,
            vec!["arn:aws:ssm:eu-west-1:123456789012:parameter/web/prod/db"]
        );
        assert!(statement(&preview, "DenyListingProductionState").is_none());
        for doc in [&dev_policy, &staging_policy, &prod_policy, &preview] {
            assert!(
                lint::permissions(doc).is_empty(),
                "{:?}",
                lint::permissions(doc)
            );
        }
    }

    #[test]
    fn parses_backends_and_stacks() {
        assert_eq!(
            S3Backend::parse("s3://b/a/b/?region=x"),
            Some(S3Backend {
                bucket: "b".into(),
                prefix: "a/b".into()
            })
        );
        assert_eq!(
            S3Backend::parse("s3://b"),
            Some(S3Backend {
                bucket: "b".into(),
                prefix: String::new()
            })
        );
        assert_eq!(S3Backend::parse("https://api.pulumi.com"), None);
        assert_eq!(project_and_stack("app/dev"), Some(("app", "dev")));
        assert_eq!(
            project_and_stack("organization/app/dev"),
            Some(("app", "dev"))
        );
        assert_eq!(project_and_stack("dev"), None);
    }
}
