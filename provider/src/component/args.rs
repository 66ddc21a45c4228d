//! SecurePipeline's inputs and outputs: the user-facing contract. The
//! package schema is generated from these types (see `schema.rs`), so their
//! names and doc comments are what users see in their IDE.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

// Closed choices the children take as they are.
pub use crate::resources::build_project::{BuildImage, ComputeType};
pub use crate::resources::connection::SourceProvider;

/// A CI/CD pipeline on AWS CodePipeline (V2) and CodeBuild that is secure by
/// construction: every ARN is built from the caller identity, every role is
/// least-privilege, artifacts and logs are encrypted with a rotating KMS
/// key, builds and approvals are time-bound, and failures notify.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(rename = "SecurePipeline")]
pub struct SecurePipelineArgs {
    /// Where the code comes from.
    pub source: Source,
    /// How the code is built and tested.
    pub build: Build,
    /// Ordered deployment stages that follow the build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployments: Option<Vec<Deployment>>,
    /// Pipeline variables by name: values each execution takes from its
    /// default or from the value its start gives (`aws codepipeline
    /// start-pipeline-execution --variables name=DEPLOY_TARGET,value=green`).
    /// Every build and deployment action gets each one as an environment
    /// variable of the same name (`$DEPLOY_TARGET` in commands). Plain
    /// text: names and values that look like credentials are rejected, and
    /// names may not start with AWS_, CODEBUILD_, PULUMI_ or SECUREPIPELINE_
    /// nor repeat a name of an `environment`. At most 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<BTreeMap<String, PipelineVariable>>,
    /// Who is told about pipeline executions, and on which events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Notifications>,
    /// An EventBridge schedule expression (`rate(1 day)`, `cron(0 6 * * ? *)`)
    /// that also starts the pipeline, through a role the component creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Days CloudWatch Logs keeps build logs; one of the values CloudWatch
    /// Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400,
    /// 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653). Default 365,
    /// which passes the common one-year retention checks; values below 365
    /// are accepted but fail them, and longer ones (731, 1096, ...) meet
    /// stricter policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_retention_days: Option<u32>,
    /// Days the artifact bucket's S3 server access logs are kept in the
    /// access-log bucket the component creates, 1 to 3650. Default 365.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log_retention_days: Option<u32>,
    /// Days after which artifacts (and noncurrent versions) expire. Default 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_retention_days: Option<u32>,
    /// How concurrent executions are handled. Default QUEUED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_mode: Option<ExecutionMode>,
    /// An existing customer-managed KMS key (validated) to use instead of
    /// creating one with rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    /// When true, destroying the pipeline empties and deletes the artifact
    /// bucket. By default a bucket holding artifacts is never emptied. (The
    /// access-log bucket is always emptied on destroy, after its logging is
    /// turned off.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_destroy: Option<bool>,
    /// Tags added to every taggable resource, next to `ManagedBy` and the
    /// pipeline name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

/// The source repository, reached through a CodeConnections connection.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Source {
    /// The full repository id, `owner/repo`.
    pub repository: String,
    /// The branch the source reads when the pipeline is started by hand or
    /// by the schedule; a push to it always starts the pipeline. Default
    /// `main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// More branches whose pushes start the pipeline, as glob patterns
    /// (`release/*`, `hotfix/**`); the execution builds the pushed commit.
    /// With `branch`, at most 8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branches: Option<Vec<String>>,
    /// Branches (glob patterns) whose pushes never start the pipeline, even
    /// when `branches` matches them. They may not exclude `branch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_branches: Option<Vec<String>>,
    /// Releases: pushing a git tag matching one of these glob patterns
    /// (`v*`, `release-[0-9]*`) starts the pipeline on the tagged commit.
    /// Path filters do not apply to tag pushes. At most 8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Tags (glob patterns) whose pushes never start the pipeline, even
    /// when `tags` matches them (`*-rc*`). Needs `tags`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_tags: Option<Vec<String>>,
    /// The repository host. Default GitHub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<SourceProvider>,
    /// Reuse an existing connection instead of creating one. Its ARN is
    /// checked against the caller's partition, account and region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_arn: Option<String>,
    /// The host of a GitHubEnterpriseServer or GitLabSelfManaged connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_arn: Option<String>,
    /// Only branch pushes touching these paths (glob patterns) start the
    /// pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_paths: Option<Vec<String>>,
    /// Branch pushes touching only these paths (glob patterns) do not
    /// start it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_paths: Option<Vec<String>>,
}

/// A pipeline variable: a plain, non-secret value each execution resolves.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineVariable {
    /// The value executions take unless their start gives another; 1 to
    /// 1000 characters. Executions started by a push or the schedule
    /// always take it. Never a credential: pass those by reference in
    /// `environment` (secretArn or parameterName).
    pub default_value: String,
    /// What the variable is for, shown when starting the pipeline; at most
    /// 200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The build stage: one CodeBuild project with its own role and log group.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Build {
    /// Shell commands to run; the provider writes the buildspec. Give
    /// exactly one of `commands`, `buildspec` and `buildspecPath`: nothing
    /// falls back to a `buildspec.yml` in the repository, which anyone who
    /// can push could change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<String>>,
    /// An inline buildspec (YAML), parsed and validated at preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildspec: Option<String>,
    /// A buildspec file in the repository. Anyone who can push to the
    /// branch decides what it runs; `commands` or `buildspec` keep that in
    /// the pipeline's own configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildspec_path: Option<String>,
    /// The CodeBuild image. Default `aws/codebuild/standard:7.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<BuildImage>,
    /// The CodeBuild compute type. Default BUILD_GENERAL1_SMALL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_type: Option<ComputeType>,
    /// Builds Docker images: turns on privileged mode. Nothing else does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<bool>,
    /// Build timeout, 5 to 2160 minutes. Default 60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_minutes: Option<u32>,
    /// How long a build may wait in the queue, 5 to 480 minutes. Default 60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_timeout_minutes: Option<u32>,
    /// Environment variables by name. Secrets are given by reference and
    /// only the referenced ARNs become readable by the build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<BTreeMap<String, EnvironmentVariable>>,
    /// With `commands`: the files (globs relative to the source root) the
    /// build hands to the deployment stages. Default: the whole workspace.
    /// Credential files (`.npmrc`, `.env`, `.netrc`, `.git`, private keys
    /// and the like) are never handed on, whatever is listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_files: Option<Vec<String>>,
}

/// An environment variable: exactly one of `value`, `secretArn` or
/// `parameterName`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentVariable {
    /// A plain value. Values that look like credentials are rejected; put
    /// those in Secrets Manager and use `secretArn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A Secrets Manager secret ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_arn: Option<String>,
    /// The JSON key to read from the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_json_key: Option<String>,
    /// A Parameter Store parameter name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_name: Option<String>,
}

/// A deployment stage after the build. Exactly one of `pulumiStack` and
/// `commands`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deployment {
    /// The stage name, unique within the pipeline.
    pub name: String,
    /// Deploy a Pulumi stack with a buildspec the provider writes. (Named
    /// `pulumiStack` because Pulumi schemas reserve the property name `pulumi`.)
    #[serde(
        rename = "pulumiStack",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub pulumi: Option<PulumiDeployment>,
    /// Shell commands to run instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<String>>,
    /// The only role this stage may assume; the deployment runs under it.
    /// Only the Deploy action, after any approval, holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role_arn: Option<String>,
    /// A read-only role the Preview action (before the approval) runs
    /// `pulumi preview` under, in its own CodeBuild project. Never the
    /// deploy role. Without it the preview assumes no role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_role_arn: Option<String>,
    /// Another region makes the pipeline cross-region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Production stages are denied to every non-production stage's role and
    /// require approval unless `requireApproval` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production: Option<bool>,
    /// A manual approval before the deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_approval: Option<bool>,
    /// How long an approval waits, 5 to 10080 minutes. Default 1440.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_timeout_minutes: Option<u32>,
    /// Who may approve this stage: ARNs of IAM users or roles in the
    /// pipeline's partition, without wildcards. They are written into the
    /// approval's description, so reviewers see who may approve. Only a
    /// stage with an approval takes them. To enforce the list, allow
    /// `codepipeline:PutApprovalResult` on
    /// `arn:aws:codepipeline:<region>:<account>:<pipeline>/<stage>/Approve`
    /// to these principals only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvers: Option<Vec<String>>,
    /// Roll the stage back to the last revision that succeeded in it when
    /// it fails (V2 `onFailure: ROLLBACK`). Default: true for a production
    /// stage, false otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_on_failure: Option<bool>,
    /// Gates: when the stage may start (a deployment window), CloudWatch
    /// alarms that keep it from starting and roll it back after it
    /// deploys, and a bake time those alarms are watched for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gates: Option<Gates>,
    /// Deployment build timeout, 5 to 2160 minutes. Default 60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_minutes: Option<u32>,
    /// Environment variables, as in `build.environment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<BTreeMap<String, EnvironmentVariable>>,
}

/// Gates of one deployment stage, as V2 stage conditions.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Gates {
    /// The stage starts only inside this window (a `beforeEntry`
    /// DeploymentWindow rule with result FAIL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_window: Option<DeploymentWindow>,
    /// CloudWatch alarms of the pipeline's account and region, by name (or
    /// ARN), at most 4. An alarm in ALARM keeps the stage from starting
    /// (`beforeEntry`), and after the deploy succeeds the same alarms roll
    /// the stage back (`onSuccess` ROLLBACK). The pipeline's role may
    /// describe exactly these alarms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarms: Option<Vec<String>>,
    /// Minutes, 1 to 1440, that the alarms are given after the deploy to
    /// change state before the next stage may start: the `WaitTime` of the
    /// `onSuccess` alarm rules (CodePipeline has no rule that only waits).
    /// Needs `alarms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_time_minutes: Option<u32>,
}

/// When a stage may start.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploymentWindow {
    /// The minutes the stage may start in, as CodePipeline's six- or
    /// seven-field cron: `seconds minutes hours day-of-month month
    /// day-of-week [year]`, seconds always `*`; e.g. `* * 9-16 ? * MON-FRI`.
    pub cron: String,
    /// An IANA time zone such as `Europe/Berlin`. Default UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// A Pulumi stack the stage deploys.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PulumiDeployment {
    /// The stack, `org/project/stack` (or `stack` for self-managed backends).
    pub stack: String,
    /// The directory of the Pulumi project in the repository. Default `.`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_dir: Option<String>,
    /// A self-managed backend, `s3://bucket/prefix`. Absent means Pulumi Cloud.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_url: Option<String>,
    /// The Pulumi Cloud access token, as a Secrets Manager secret ARN. Only
    /// the Deploy action, after any approval, reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_secret_arn: Option<String>,
    /// A Pulumi Cloud access token that can only read the stack (e.g. a team
    /// token with read permission), as a Secrets Manager secret ARN. The
    /// Preview action before an approval uses it; a Pulumi Cloud stage
    /// without it gets no preview, because its deploy token can write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_access_token_secret_arn: Option<String>,
    /// Pulumi Cloud login without a stored token: the build asks AWS STS
    /// for a short-lived identity token of the stage's role
    /// (`GetWebIdentityToken`, IAM outbound identity federation) and
    /// exchanges it with `pulumi login --oidc-token`. Instead of
    /// `accessTokenSecretArn`; needs Pulumi CLI 3.209.0 or later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulumi_cloud_oidc: Option<PulumiCloudOidc>,
    /// The stack's config passphrase, as a Secrets Manager secret ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase_secret_arn: Option<String>,
    /// A KMS key (exact key ARN, `arn:aws:kms:<region>:<account>:key/<id>`)
    /// as the stack's secrets provider (`awskms://`), instead of
    /// `passphraseSecretArn`: no passphrase exists, and only this stage's
    /// roles may use the key (Encrypt and Decrypt for the deployment,
    /// Decrypt for its preview).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_kms_key_arn: Option<String>,
    /// The Pulumi CLI version the buildspec installs, `3.x.y`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulumi_version: Option<String>,
    /// The SHA-256 (64 hex digits) of the Pulumi CLI release tarball for
    /// the build's architecture (`pulumi-v<version>-linux-x64.tar.gz`).
    /// The buildspec then checks the download against this hash instead of
    /// the release's published checksums. Needs `pulumiVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulumi_cli_sha256: Option<String>,
    /// Refresh before deploying. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<bool>,
    /// Only preview, never update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_only: Option<bool>,
}

/// Who a Pulumi stage logs in to Pulumi Cloud as, through OIDC token
/// exchange. Register the account's outbound identity federation issuer in
/// the Pulumi organization and allow the stage's role (output `roleArns`)
/// in the issuer's policy.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PulumiCloudOidc {
    /// The Pulumi organization: the token's audience is
    /// `urn:pulumi:org:<organization>`.
    pub organization: String,
    /// Exchange for a team token of this team (`--oidc-team`). At most one
    /// of `team` and `user`; neither means an organization token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Exchange for a personal token of this user (`--oidc-user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The team the pre-approval Preview action's token is exchanged for:
    /// a team that can only read the stack. The Preview action runs under
    /// its own role, which Pulumi Cloud's issuer policy must map to this
    /// team only. Without it (and without
    /// `previewAccessTokenSecretArn`) the stage gets no preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_team: Option<String>,
}

/// Notifications through an encrypted SNS topic.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notifications {
    /// Email addresses to subscribe. Each must confirm the subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emails: Option<Vec<String>>,
    /// What notifies: execution states (FAILED, SUCCEEDED, CANCELED,
    /// SUPERSEDED, STARTED), a failed stage (STAGE_FAILED, naming the
    /// stage) or a failed action (ACTION_FAILED, naming the action).
    /// Default FAILED. Approvals always notify when they start waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<NotificationEvent>>,
}

/// Events that notify: pipeline execution states, and failures of a
/// stage or an action.
#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationEvent {
    Failed,
    Succeeded,
    Canceled,
    Superseded,
    Started,
    StageFailed,
    ActionFailed,
}

/// How CodePipeline handles executions that overlap.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionMode {
    Queued,
    Superseded,
    Parallel,
}

/// What the component exposes.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SecurePipelineOutputs {
    /// The pipeline's name.
    pub pipeline_name: String,
    /// The pipeline's ARN.
    pub pipeline_arn: String,
    /// The pipeline in the AWS console.
    pub pipeline_url: String,
    /// The source connection's ARN.
    pub connection_arn: String,
    /// PENDING until someone activates the connection in the console, then
    /// AVAILABLE.
    pub connection_status: String,
    /// Where to activate a pending connection.
    pub connection_activation_url: String,
    /// The artifact bucket's name.
    pub artifact_bucket_name: String,
    /// The bucket receiving the artifact bucket's S3 server access logs,
    /// under the prefix `<artifactBucketName>/`.
    #[serde(default)]
    pub access_log_bucket_name: String,
    /// The KMS key encrypting artifacts, logs and notifications.
    pub kms_key_arn: String,
    /// The SNS topic notifications go to.
    pub notification_topic_arn: String,
    /// The role EventBridge uses to start the pipeline; set when a schedule
    /// exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_bridge_role_arn: Option<String>,
    /// CodeBuild project names, build first, then deployments in order, then
    /// the preview projects of the stages that preview, in order.
    pub build_project_names: Vec<String>,
    /// Log group names, in the same order as the projects.
    pub log_group_names: Vec<String>,
    /// Role ARNs by purpose (`pipeline`, `build`, `deploy-<stage>`,
    /// `preview-<stage>`, `events`).
    pub role_arns: BTreeMap<String, String>,
}
