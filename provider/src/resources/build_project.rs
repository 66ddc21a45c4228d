//! `securepipeline:aws:BuildProject`: a CodeBuild project run by the
//! pipeline, with timeouts, its own log group, the KMS key, and secrets by
//! reference only.

use async_trait::async_trait;
use aws_sdk_codebuild::types::{
    ArtifactsType, CloudWatchLogsConfig, ComputeType as AwsComputeType, EnvironmentType,
    EnvironmentVariable as AwsVariable, EnvironmentVariableType, ImagePullCredentialsType,
    LogsConfig, LogsConfigStatusType, Project, ProjectArtifacts, ProjectEnvironment, ProjectSource,
    S3LogsConfig, SourceType, Tag,
};
use aws_smithy_types::error::operation::BuildError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::common::{check_arn, check_kms_key_arn, check_secret_arn, from_sdk_tags};
use crate::aws::arn::{is_region, Arn};
use crate::aws::failure::AwsFailure;
use crate::aws::retry::{once, Created, Transient};
use crate::buildspec;
use crate::credentials;
use crate::naming;
use crate::resource::{
    is_unknown, AutoName, CheckContext, CheckFailure, CreateToken, CustomResource, Failures,
    NameScope, Op, Placement, ResourceError, TagChange,
};
use crate::tags::Tags;

/// CodeBuild's limits on build and queue timeouts, in minutes.
pub const BUILD_TIMEOUT: (u32, u32) = (5, 2160);
pub const QUEUED_TIMEOUT: (u32, u32) = (5, 480);

/// CodeBuild curated images.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum BuildImage {
    /// Ubuntu standard image 7.0.
    #[serde(rename = "aws/codebuild/standard:7.0")]
    #[schemars(title = "Standard7")]
    Standard7,
    /// Ubuntu standard image 6.0.
    #[serde(rename = "aws/codebuild/standard:6.0")]
    #[schemars(title = "Standard6")]
    Standard6,
    /// Amazon Linux 2023 standard image 5.0.
    #[serde(rename = "aws/codebuild/amazonlinux-x86_64-standard:5.0")]
    #[schemars(title = "AmazonLinuxStandard5")]
    AmazonLinuxStandard5,
    /// Amazon Linux 2 standard image 5.0.
    #[serde(rename = "aws/codebuild/amazonlinux2-x86_64-standard:5.0")]
    #[schemars(title = "AmazonLinux2Standard5")]
    AmazonLinux2Standard5,
}

/// CodeBuild compute types for Linux containers.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)]
pub enum ComputeType {
    /// 3 GB memory, 2 vCPUs.
    #[serde(rename = "BUILD_GENERAL1_SMALL")]
    BuildGeneral1Small,
    /// 7 GB memory, 4 vCPUs.
    #[serde(rename = "BUILD_GENERAL1_MEDIUM")]
    BuildGeneral1Medium,
    /// 15 GB memory, 8 vCPUs.
    #[serde(rename = "BUILD_GENERAL1_LARGE")]
    BuildGeneral1Large,
    /// 70 GB memory, 36 vCPUs.
    #[serde(rename = "BUILD_GENERAL1_XLARGE")]
    BuildGeneral1XLarge,
    /// 145 GB memory, 72 vCPUs.
    #[serde(rename = "BUILD_GENERAL1_2XLARGE")]
    BuildGeneral12XLarge,
}

pub struct BuildProject;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VariableType {
    Plaintext,
    SecretsManager,
    ParameterStore,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProjectVariable {
    pub name: String,
    /// The value, a Secrets Manager reference (`<arn>[:<json-key>]`) or a
    /// parameter name, by `type`.
    pub value: String,
    #[serde(rename = "type")]
    pub kind: VariableType,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BuildProjectInputs {
    pub name_prefix: String,
    /// Chosen by `check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
    /// The region the project lives in (a deployment stage in another
    /// region runs there); absent means the provider's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub description: String,
    pub service_role_arn: String,
    pub kms_key_arn: String,
    pub log_group_name: String,
    pub image: String,
    pub compute_type: String,
    /// Docker-in-Docker; only when the user asked for Docker builds.
    #[serde(default)]
    pub privileged_mode: bool,
    pub timeout_in_minutes: u32,
    pub queued_timeout_in_minutes: u32,
    /// Inline buildspec YAML, or a path in the repository.
    pub buildspec: String,
    #[serde(default)]
    pub environment_variables: Vec<ProjectVariable>,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BuildProjectOutputs {
    pub arn: String,
}

/// CodeBuild refuses descriptions longer than this.
const MAX_DESCRIPTION: usize = 255;

/// `what` (at `property`) must be in `region`, which CodeBuild reads it
/// from; `region` is `None` until the provider knows its own.
fn check_same_region(
    property: &str,
    value: &str,
    region: Option<&str>,
    what: &str,
) -> Option<CheckFailure> {
    let arn = value.parse::<Arn>().ok()?;
    let region = region?;
    (arn.region != region).then(|| {
        CheckFailure::new(
            property,
            format!(
                "the {what} is in {} but the project runs in {region}; use one in {region}",
                arn.region
            ),
        )
    })
}

fn check_range(failures: &mut Failures, property: &str, value: u32, (min, max): (u32, u32)) {
    if value < min || value > max {
        failures.push(
            property,
            format!("{value} is out of range; use {min} to {max} minutes"),
        );
    }
}

/// Checks that `value` is one of the wire values of a component enum
/// (curated images, compute types); serde's error lists the choices.
fn check_choice<T: serde::de::DeserializeOwned>(
    failures: &mut Failures,
    property: &str,
    value: &str,
    what: &str,
) {
    if is_unknown(value) {
        return;
    }
    if let Err(err) = serde_json::from_value::<T>(Json::String(value.to_string())) {
        failures.push(
            property,
            format!("`{value}` is not a supported {what}: {err}"),
        );
    }
}

/// A buildspec that ends in .yml/.yaml on a single line is a path in the
/// repository; anything else is inline YAML.
fn is_buildspec_path(buildspec: &str) -> bool {
    (buildspec.ends_with(".yml") || buildspec.ends_with(".yaml")) && !buildspec.contains('\n')
}

fn check_buildspec(buildspec: &str) -> Option<CheckFailure> {
    if is_unknown(buildspec) {
        return None;
    }
    let problem = if is_buildspec_path(buildspec) {
        (buildspec.starts_with('/') || buildspec.split('/').any(|part| part == "..")).then(|| {
            format!("`{buildspec}` must be a path inside the repository, e.g. `ci/buildspec.yml`")
        })
    } else {
        buildspec::validate(buildspec).err()
    };
    problem.map(|reason| CheckFailure::new("buildspec", reason))
}

/// Splits a Secrets Manager reference `<secret ARN>[:<json key>]`.
fn split_secret_reference(value: &str) -> Option<(String, Option<&str>)> {
    let parts: Vec<&str> = value.split(':').collect();
    match parts.len() {
        7 => Some((value.to_string(), None)),
        8 if !parts[7].is_empty() => Some((parts[..7].join(":"), Some(parts[7]))),
        _ => None,
    }
}

fn check_variables(
    ctx: &CheckContext<'_>,
    variables: &[ProjectVariable],
    region: Option<&str>,
    failures: &mut Failures,
) {
    let mut seen = std::collections::BTreeSet::new();
    for (index, variable) in variables.iter().enumerate() {
        let path = format!("environmentVariables[{index}]");
        let name = variable.name.as_str();
        let valid_name = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            failures.push(
                format!("{path}.name"),
                format!(
                    "`{name}` is not a valid environment variable name; use letters, digits and _"
                ),
            );
        }
        if name.to_ascii_uppercase().starts_with("CODEBUILD_") {
            failures.push(
                format!("{path}.name"),
                "names starting with CODEBUILD_ are reserved by CodeBuild; rename it",
            );
        }
        if credentials::is_reserved_variable(name) {
            failures.push(
                format!("{path}.name"),
                format!("`{name}` would replace the credentials of the project's service role; remove it"),
            );
        }
        if !seen.insert(name) {
            failures.push(
                format!("{path}.name"),
                format!("`{name}` is defined twice; give each variable once"),
            );
        }
        let value = variable.value.as_str();
        if is_unknown(value) {
            continue;
        }
        // Values are never echoed: they may be secret.
        let property = format!("{path}.value");
        match variable.kind {
            VariableType::Plaintext => {
                if let Some(problem) = credentials::plaintext_variable_problem(name, value) {
                    failures.push(
                        property,
                        format!("{problem}; store it in Secrets Manager and use type SECRETS_MANAGER (or PARAMETER_STORE for a SecureString)"),
                    );
                }
            }
            VariableType::SecretsManager => match split_secret_reference(value) {
                Some((arn, _)) => failures.extend(
                    check_secret_arn(
                        ctx,
                        &property,
                        &arn,
                        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:npm-token-AbCdEf:token",
                        false,
                    )
                    .or_else(|| check_same_region(&property, &arn, region, "secret")),
                ),
                None => failures.push(
                    property,
                    "use a Secrets Manager secret ARN, optionally followed by `:<json key>`",
                ),
            },
            VariableType::ParameterStore => {
                let valid = !value.is_empty()
                    && value.len() <= 2048
                    && !value.starts_with("arn:")
                    && value.chars().all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
                if !valid {
                    failures.push(property, "use a Parameter Store name such as /app/prod/db-password");
                }
            }
        }
    }
}

/// The request parts CreateProject and UpdateProject share.
struct ProjectSpec {
    source: ProjectSource,
    artifacts: ProjectArtifacts,
    environment: ProjectEnvironment,
    logs: LogsConfig,
}

fn variable_type(kind: VariableType) -> EnvironmentVariableType {
    match kind {
        VariableType::Plaintext => EnvironmentVariableType::Plaintext,
        VariableType::SecretsManager => EnvironmentVariableType::SecretsManager,
        VariableType::ParameterStore => EnvironmentVariableType::ParameterStore,
    }
}

fn spec(inputs: &BuildProjectInputs) -> Result<ProjectSpec, BuildError> {
    let variables = inputs
        .environment_variables
        .iter()
        .map(|v| {
            AwsVariable::builder()
                .name(&v.name)
                .value(&v.value)
                .r#type(variable_type(v.kind))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ProjectSpec {
        // The pipeline hands over the source and takes the artifacts.
        source: ProjectSource::builder()
            .r#type(SourceType::Codepipeline)
            .buildspec(&inputs.buildspec)
            .build()?,
        artifacts: ProjectArtifacts::builder()
            .r#type(ArtifactsType::Codepipeline)
            .build()?,
        environment: ProjectEnvironment::builder()
            .r#type(EnvironmentType::LinuxContainer)
            .image(&inputs.image)
            .compute_type(AwsComputeType::from(inputs.compute_type.as_str()))
            .privileged_mode(inputs.privileged_mode)
            .image_pull_credentials_type(ImagePullCredentialsType::Codebuild)
            .set_environment_variables(Some(variables))
            .build()?,
        // Logs go to the group created for this project, never S3.
        logs: LogsConfig::builder()
            .cloud_watch_logs(
                CloudWatchLogsConfig::builder()
                    .status(LogsConfigStatusType::Enabled)
                    .group_name(&inputs.log_group_name)
                    .build()?,
            )
            .s3_logs(
                S3LogsConfig::builder()
                    .status(LogsConfigStatusType::Disabled)
                    .build()?,
            )
            .build(),
    })
}

/// Tags as CodeBuild takes them (its builder cannot fail).
fn project_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(key, value)| Tag::builder().key(key).value(value).build())
        .collect()
}

/// The live project; `None` when it does not exist.
async fn get_project(ctx: &Op<'_>, name: &str) -> Result<Option<Project>, AwsFailure> {
    let codebuild = &ctx.clients().codebuild;
    let found = ctx
        .call(format!("reading build project {name}"), || {
            codebuild.batch_get_projects().names(name).send()
        })
        .await?;
    Ok(found
        .projects
        .unwrap_or_default()
        .into_iter()
        .find(|project| project.name() == Some(name)))
}

fn project_variable(variable: &AwsVariable) -> ProjectVariable {
    let kind = match variable.r#type() {
        Some(EnvironmentVariableType::SecretsManager) => VariableType::SecretsManager,
        Some(EnvironmentVariableType::ParameterStore) => VariableType::ParameterStore,
        _ => VariableType::Plaintext,
    };
    ProjectVariable {
        name: variable.name().to_string(),
        value: variable.value().to_string(),
        kind,
    }
}

/// The inputs a live project corresponds to. Anything missing reads as
/// empty (or zero), which check rejects and the next update restores.
fn live_inputs(project: &Project, inputs: &BuildProjectInputs) -> BuildProjectInputs {
    let environment = project.environment();
    let logs = project.logs_config().and_then(LogsConfig::cloud_watch_logs);
    let minutes = |value: Option<i32>| value.map_or(0, |m| m.max(0) as u32);
    BuildProjectInputs {
        name_prefix: inputs.name_prefix.clone(),
        project_name: project.name().map(str::to_string),
        region: inputs.region.clone(),
        description: project.description().unwrap_or_default().to_string(),
        service_role_arn: project.service_role().unwrap_or_default().to_string(),
        kms_key_arn: project.encryption_key().unwrap_or_default().to_string(),
        log_group_name: logs
            .filter(|l| *l.status() == LogsConfigStatusType::Enabled)
            .and_then(CloudWatchLogsConfig::group_name)
            .unwrap_or_default()
            .to_string(),
        image: environment
            .map(ProjectEnvironment::image)
            .unwrap_or_default()
            .to_string(),
        compute_type: environment
            .map(|e| e.compute_type().as_str())
            .unwrap_or_default()
            .to_string(),
        privileged_mode: environment
            .and_then(ProjectEnvironment::privileged_mode)
            .unwrap_or(false),
        timeout_in_minutes: minutes(project.timeout_in_minutes()),
        queued_timeout_in_minutes: minutes(project.queued_timeout_in_minutes()),
        buildspec: project
            .source()
            .and_then(ProjectSource::buildspec)
            .unwrap_or_default()
            .to_string(),
        environment_variables: environment
            .map(|e| {
                e.environment_variables()
                    .iter()
                    .map(project_variable)
                    .collect()
            })
            .unwrap_or_default(),
        tags: inputs.tags.clone(),
    }
}

/// A just-created service role may not yet be assumable by CodeBuild.
const ROLE_PROPAGATION: [Transient; 1] = [Transient::Propagation {
    code: "InvalidInputException",
    message_contains: "not authorized to perform: sts:AssumeRole",
}];

#[async_trait]
impl CustomResource for BuildProject {
    const TYPE: &'static str = "securepipeline:aws:BuildProject";
    type Inputs = BuildProjectInputs;
    type Outputs = BuildProjectOutputs;
    const OUTPUT_KEYS: &'static [&'static str] = &["arn"];
    const REPLACE_KEYS: &'static [&'static str] = &[];
    const NAME: AutoName = AutoName::new(
        "projectName",
        &naming::CODEBUILD_PROJECT,
        "build project",
        NameScope::Region,
    );
    const PLACEMENT: Placement = Placement::Regional;

    fn validate(
        ctx: &CheckContext<'_>,
        _olds: Option<&Self::Inputs>,
        news: &mut Self::Inputs,
        failures: &mut Failures,
    ) {
        if news.description.chars().count() > MAX_DESCRIPTION {
            failures.push(
                "description",
                format!("must be at most {MAX_DESCRIPTION} characters; shorten it"),
            );
        }
        failures.extend(check_arn(
            ctx,
            "serviceRoleArn",
            &news.service_role_arn,
            &["iam"],
            "role/",
            "arn:aws:iam::123456789012:role/build",
            false,
        ));
        let region = match news.region.as_deref() {
            Some(region) if is_unknown(region) => None,
            Some(region) if !is_region(region) => {
                failures.push(
                    "region",
                    format!("`{region}` is not an AWS region; for example eu-west-1"),
                );
                None
            }
            Some(region) => Some(region),
            None => ctx.aws.map(|aws| aws.region.as_str()),
        };
        failures.extend(
            check_kms_key_arn(ctx, "kmsKeyArn", &news.kms_key_arn)
                .or_else(|| check_same_region("kmsKeyArn", &news.kms_key_arn, region, "key")),
        );
        failures.extend(naming::check(
            "logGroupName",
            &news.log_group_name,
            &naming::LOG_GROUP,
        ));
        check_choice::<BuildImage>(failures, "image", &news.image, "CodeBuild image");
        check_choice::<ComputeType>(failures, "computeType", &news.compute_type, "compute type");
        check_range(
            failures,
            "timeoutInMinutes",
            news.timeout_in_minutes,
            BUILD_TIMEOUT,
        );
        check_range(
            failures,
            "queuedTimeoutInMinutes",
            news.queued_timeout_in_minutes,
            QUEUED_TIMEOUT,
        );
        failures.extend(check_buildspec(&news.buildspec));
        check_variables(ctx, &news.environment_variables, region, failures);
    }

    async fn create_resource(
        ctx: &Op<'_>,
        inputs: &Self::Inputs,
        token: &CreateToken,
    ) -> Result<(String, Self::Outputs), ResourceError> {
        let codebuild = &ctx.clients().codebuild;
        let name = ctx.name()?;
        let spec = spec(inputs)
            .map_err(|err| ResourceError::failed(format!("describing project {name}"), err))?;
        let tags = project_tags(&token.mark(&inputs.tags));
        let created = ctx
            .create_once(
                format!("creating build project {name}"),
                name,
                &ROLE_PROPAGATION,
                &["ResourceAlreadyExistsException"],
                || {
                    codebuild
                        .create_project()
                        .name(name)
                        .description(&inputs.description)
                        .source(spec.source.clone())
                        .artifacts(spec.artifacts.clone())
                        .environment(spec.environment.clone())
                        .service_role(&inputs.service_role_arn)
                        .timeout_in_minutes(inputs.timeout_in_minutes as i32)
                        .queued_timeout_in_minutes(inputs.queued_timeout_in_minutes as i32)
                        .encryption_key(&inputs.kms_key_arn)
                        .logs_config(spec.logs.clone())
                        .set_tags(Some(tags.clone()))
                        .customize()
                        .config_override(
                            aws_sdk_codebuild::config::Builder::default().retry_config(once()),
                        )
                        .send()
                },
                || async {
                    let project = get_project(ctx, name).await?;
                    Ok(project.filter(|project| token.is_on(&live_tags(project))))
                },
            )
            .await?;
        let project = match &created {
            Created::New(output) => output.project(),
            Created::Found(project) => Some(project),
        };
        let arn = project
            .and_then(Project::arn)
            .map_or_else(|| ctx.arns().codebuild_project(name), str::to_string);
        Ok((name.to_string(), BuildProjectOutputs { arn }))
    }

    async fn read_resource(
        ctx: &Op<'_>,
        id: &str,
        inputs: &Self::Inputs,
    ) -> Result<Option<(Self::Inputs, Self::Outputs)>, ResourceError> {
        let Some(project) = get_project(ctx, id).await? else {
            return Ok(None);
        };
        let arn = project
            .arn()
            .map_or_else(|| ctx.arns().codebuild_project(id), str::to_string);
        Ok(Some((
            live_inputs(&project, inputs),
            BuildProjectOutputs { arn },
        )))
    }

    async fn update_resource(
        ctx: &Op<'_>,
        id: &str,
        _olds: &Self::Inputs,
        news: &Self::Inputs,
        outputs: &Self::Outputs,
    ) -> Result<Self::Outputs, ResourceError> {
        let codebuild = &ctx.clients().codebuild;
        let spec = spec(news)
            .map_err(|err| ResourceError::failed(format!("describing project {id}"), err))?;
        // UpdateProject replaces every field given, so the whole desired
        // configuration is sent; the tags, which it also takes, go with
        // `write_tags`.
        ctx.call_waiting(
            format!("updating build project {id}"),
            &ROLE_PROPAGATION,
            || {
                codebuild
                    .update_project()
                    .name(id)
                    .description(&news.description)
                    .source(spec.source.clone())
                    .artifacts(spec.artifacts.clone())
                    .environment(spec.environment.clone())
                    .service_role(&news.service_role_arn)
                    .timeout_in_minutes(news.timeout_in_minutes as i32)
                    .queued_timeout_in_minutes(news.queued_timeout_in_minutes as i32)
                    .encryption_key(&news.kms_key_arn)
                    .logs_config(spec.logs.clone())
                    .send()
            },
        )
        .await?;
        Ok(outputs.clone())
    }

    async fn delete_resource(
        ctx: &Op<'_>,
        id: &str,
        _inputs: &Self::Inputs,
        _outputs: &Self::Outputs,
    ) -> Result<(), ResourceError> {
        let codebuild = &ctx.clients().codebuild;
        ctx.delete(
            format!("deleting build project {id}"),
            &["ResourceNotFoundException"],
            || codebuild.delete_project().name(id).send(),
        )
        .await?;
        Ok(())
    }

    async fn read_tags(ctx: &Op<'_>, id: &str) -> Result<Option<Tags>, AwsFailure> {
        Ok(get_project(ctx, id)
            .await?
            .map(|project| live_tags(&project)))
    }

    /// CodeBuild sets a project's tags as a whole, with UpdateProject.
    async fn write_tags(ctx: &Op<'_>, id: &str, change: &TagChange) -> Result<(), ResourceError> {
        let codebuild = &ctx.clients().codebuild;
        let tags = project_tags(&change.all);
        ctx.call(format!("tagging build project {id}"), || {
            codebuild
                .update_project()
                .name(id)
                .set_tags(Some(tags.clone()))
                .send()
        })
        .await?;
        Ok(())
    }
}

fn live_tags(project: &Project) -> Tags {
    from_sdk_tags(project.tags(), |tag| {
        (
            tag.key().unwrap_or_default(),
            tag.value().unwrap_or_default(),
        )
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::aws::{AwsContext, Endpoints};
    use crate::resource::Lifecycle;
    use crate::tags;

    const SECRET: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:npm-token-AbCdEf";

    pub(crate) fn inputs() -> BuildProjectInputs {
        BuildProjectInputs {
            name_prefix: "app-build".into(),
            project_name: None,
            region: None,
            description: "Build stage of pipeline app".into(),
            service_role_arn: "arn:aws:iam::123456789012:role/app-build-abcdefgh".into(),
            kms_key_arn:
                "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab".into(),
            log_group_name: "/securepipeline/app-build-abcdefgh".into(),
            image: "aws/codebuild/standard:7.0".into(),
            compute_type: "BUILD_GENERAL1_SMALL".into(),
            privileged_mode: false,
            timeout_in_minutes: 60,
            queued_timeout_in_minutes: 60,
            buildspec: "buildspec.yml".into(),
            environment_variables: vec![
                ProjectVariable {
                    name: "NODE_ENV".into(),
                    value: "production".into(),
                    kind: VariableType::Plaintext,
                },
                ProjectVariable {
                    name: "NPM_TOKEN".into(),
                    value: format!("{SECRET}:token"),
                    kind: VariableType::SecretsManager,
                },
                ProjectVariable {
                    name: "DB_PASSWORD".into(),
                    value: "/app/prod/db-password".into(),
                    kind: VariableType::ParameterStore,
                },
            ],
            tags: Tags::new(),
        }
    }

    fn check(
        olds: Option<&BuildProjectInputs>,
        news: BuildProjectInputs,
    ) -> Result<BuildProjectInputs, Vec<CheckFailure>> {
        let ctx = CheckContext {
            name: "build",
            random_seed: b"seed",
            aws: None,
        };
        BuildProject::check(&ctx, olds, news)
    }

    fn properties(news: BuildProjectInputs) -> Vec<String> {
        check(None, news)
            .unwrap_err()
            .into_iter()
            .map(|f| f.property)
            .collect()
    }

    fn variable(name: &str, value: &str, kind: VariableType) -> ProjectVariable {
        ProjectVariable {
            name: name.into(),
            value: value.into(),
            kind,
        }
    }

    #[test]
    fn chooses_a_name_and_adds_managed_tags() {
        let checked = check(None, inputs()).unwrap();
        let name = checked.project_name.clone().unwrap();
        assert!(name.starts_with("app-build-"), "{name}");
        assert_eq!(checked.tags[tags::MANAGED_BY_KEY], tags::MANAGED_BY_VALUE);
        let again = check(Some(&checked), inputs()).unwrap();
        assert_eq!(again.project_name, checked.project_name);
    }

    #[test]
    fn timeouts_must_be_in_range() {
        let failures = check(
            None,
            BuildProjectInputs {
                timeout_in_minutes: 4,
                queued_timeout_in_minutes: 481,
                ..inputs()
            },
        )
        .unwrap_err();
        assert_eq!(failures[0].property, "timeoutInMinutes");
        assert!(
            failures[0].reason.contains("5 to 2160"),
            "{}",
            failures[0].reason
        );
        assert_eq!(failures[1].property, "queuedTimeoutInMinutes");
        assert!(
            failures[1].reason.contains("5 to 480"),
            "{}",
            failures[1].reason
        );
        assert!(check(
            None,
            BuildProjectInputs {
                timeout_in_minutes: 2160,
                queued_timeout_in_minutes: 5,
                ..inputs()
            }
        )
        .is_ok());
    }

    #[test]
    fn image_and_compute_type_are_validated_choices() {
        let failures = check(
            None,
            BuildProjectInputs {
                image: "ubuntu:latest".into(),
                compute_type: "HUGE".into(),
                ..inputs()
            },
        )
        .unwrap_err();
        assert_eq!(failures[0].property, "image");
        assert!(
            failures[0].reason.contains("aws/codebuild/standard:7.0"),
            "{}",
            failures[0].reason
        );
        assert_eq!(failures[1].property, "computeType");
        assert!(
            failures[1].reason.contains("BUILD_GENERAL1_MEDIUM"),
            "{}",
            failures[1].reason
        );
        let other = BuildProjectInputs {
            image: "aws/codebuild/amazonlinux-x86_64-standard:5.0".into(),
            compute_type: "BUILD_GENERAL1_2XLARGE".into(),
            ..inputs()
        };
        assert!(check(None, other).is_ok());
    }

    #[test]
    fn role_key_and_log_group_are_checked() {
        let news = BuildProjectInputs {
            service_role_arn: "arn:aws:iam::123456789012:user/admin".into(),
            kms_key_arn: "alias/aws/s3".into(),
            log_group_name: String::new(),
            ..inputs()
        };
        assert_eq!(
            properties(news),
            vec!["serviceRoleArn", "kmsKeyArn", "logGroupName"]
        );
    }

    #[test]
    fn role_must_be_in_the_callers_account() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let aws = AwsContext::new(
            sdk,
            Endpoints::default(),
            "123456789012".into(),
            "aws".into(),
            "eu-west-1".into(),
            Default::default(),
        );
        let ctx = CheckContext {
            name: "build",
            random_seed: b"seed",
            aws: Some(&aws),
        };
        let news = BuildProjectInputs {
            service_role_arn: "arn:aws:iam::210987654321:role/build".into(),
            ..inputs()
        };
        let failures = BuildProject::check(&ctx, None, news).unwrap_err();
        assert_eq!(failures[0].property, "serviceRoleArn");
        assert!(
            failures[0].reason.contains("account"),
            "{}",
            failures[0].reason
        );
        // A secret in another region cannot be read by the build.
        let news = BuildProjectInputs {
            environment_variables: vec![variable(
                "TOKEN",
                &SECRET.replace("eu-west-1", "us-east-1"),
                VariableType::SecretsManager,
            )],
            ..inputs()
        };
        let failures = BuildProject::check(&ctx, None, news).unwrap_err();
        assert_eq!(failures[0].property, "environmentVariables[0].value");
        // A project in another region reads its key and secrets there.
        let west = BuildProjectInputs {
            region: Some("us-west-2".into()),
            kms_key_arn: inputs().kms_key_arn.replace("eu-west-1", "us-west-2"),
            environment_variables: vec![variable(
                "TOKEN",
                &SECRET.replace("eu-west-1", "us-west-2"),
                VariableType::SecretsManager,
            )],
            ..inputs()
        };
        assert!(BuildProject::check(&ctx, None, west.clone()).is_ok());
        let home_key = BuildProjectInputs {
            kms_key_arn: inputs().kms_key_arn,
            ..west
        };
        let failures = BuildProject::check(&ctx, None, home_key).unwrap_err();
        assert_eq!(failures[0].property, "kmsKeyArn");
        assert!(
            failures[0].reason.contains("use one in us-west-2"),
            "{}",
            failures[0].reason
        );
    }

    #[test]
    fn buildspec_is_a_repository_path_or_valid_yaml() {
        assert!(check(
            None,
            BuildProjectInputs {
                buildspec: "ci/build.yaml".into(),
                ..inputs()
            }
        )
        .is_ok());
        let inline = "version: 0.2\nphases:\n  build:\n    commands:\n      - make test\n";
        assert!(check(
            None,
            BuildProjectInputs {
                buildspec: inline.into(),
                ..inputs()
            }
        )
        .is_ok());
        for bad in [
            "../secrets/build.yml",
            "/etc/build.yml",
            "version: 0.1\nphases: {}\n",
            "not: [valid",
        ] {
            assert_eq!(
                properties(BuildProjectInputs {
                    buildspec: bad.into(),
                    ..inputs()
                }),
                vec!["buildspec"],
                "{bad}"
            );
        }
    }

    #[test]
    fn rejects_bad_variables_without_echoing_values() {
        let news = BuildProjectInputs {
            environment_variables: vec![
                variable("1BAD", "x", VariableType::Plaintext),
                variable("CODEBUILD_SRC_DIR", "x", VariableType::Plaintext),
                variable("GITHUB_TOKEN", "ghp_abcdef123456", VariableType::Plaintext),
                variable("NODE_ENV", "a", VariableType::Plaintext),
                variable("NODE_ENV", "b", VariableType::Plaintext),
                variable(
                    "NPM",
                    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x:key:extra",
                    VariableType::SecretsManager,
                ),
                variable(
                    "DB",
                    "arn:aws:ssm:eu-west-1:123456789012:parameter/db",
                    VariableType::ParameterStore,
                ),
                variable(
                    "KEY",
                    "arn:aws:kms:eu-west-1:123456789012:key/k:x",
                    VariableType::SecretsManager,
                ),
            ],
            ..inputs()
        };
        let failures = check(None, news).unwrap_err();
        let properties: Vec<_> = failures.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(
            properties,
            vec![
                "environmentVariables[0].name",
                "environmentVariables[1].name",
                "environmentVariables[2].value",
                "environmentVariables[4].name",
                "environmentVariables[5].value",
                "environmentVariables[6].value",
                "environmentVariables[7].value",
            ]
        );
        assert!(failures
            .iter()
            .all(|f| !f.reason.contains("ghp_abcdef123456")));
    }

    #[test]
    fn splits_secret_references() {
        assert_eq!(
            split_secret_reference(SECRET),
            Some((SECRET.to_string(), None))
        );
        assert_eq!(
            split_secret_reference(&format!("{SECRET}:token")),
            Some((SECRET.to_string(), Some("token")))
        );
        assert_eq!(split_secret_reference(&format!("{SECRET}:")), None);
        assert_eq!(split_secret_reference("npm-token"), None);
    }

    #[test]
    fn the_request_pins_source_environment_and_logs() {
        let spec = spec(&inputs()).unwrap();
        assert_eq!(*spec.source.r#type(), SourceType::Codepipeline);
        assert_eq!(spec.source.buildspec(), Some("buildspec.yml"));
        assert_eq!(*spec.artifacts.r#type(), ArtifactsType::Codepipeline);
        assert_eq!(*spec.environment.r#type(), EnvironmentType::LinuxContainer);
        assert_eq!(
            spec.environment.image_pull_credentials_type(),
            Some(&ImagePullCredentialsType::Codebuild)
        );
        assert_eq!(spec.environment.privileged_mode(), Some(false));
        let types: Vec<_> = spec
            .environment
            .environment_variables()
            .iter()
            .map(|v| v.r#type().cloned())
            .collect();
        assert_eq!(
            types,
            vec![
                Some(EnvironmentVariableType::Plaintext),
                Some(EnvironmentVariableType::SecretsManager),
                Some(EnvironmentVariableType::ParameterStore),
            ]
        );
        let logs = spec.logs.cloud_watch_logs().unwrap();
        assert_eq!(*logs.status(), LogsConfigStatusType::Enabled);
        assert_eq!(
            logs.group_name(),
            Some("/securepipeline/app-build-abcdefgh")
        );
        assert_eq!(
            *spec.logs.s3_logs().unwrap().status(),
            LogsConfigStatusType::Disabled
        );
    }

    #[test]
    fn a_live_project_reads_back_as_its_inputs() {
        let desired = check(
            None,
            BuildProjectInputs {
                privileged_mode: true,
                ..inputs()
            },
        )
        .unwrap();
        let spec = spec(&desired).unwrap();
        let project = Project::builder()
            .name(desired.project_name.clone().unwrap())
            .description(&desired.description)
            .source(spec.source)
            .environment(spec.environment)
            .service_role(&desired.service_role_arn)
            .timeout_in_minutes(60)
            .queued_timeout_in_minutes(60)
            .encryption_key(&desired.kms_key_arn)
            .logs_config(spec.logs)
            .set_tags(Some(project_tags(&desired.tags)))
            .build();
        assert_eq!(live_inputs(&project, &desired), desired);
        assert_eq!(live_tags(&project), desired.tags);
        // Logs switched off in the console read as no log group.
        let disabled = Project::builder()
            .logs_config(
                LogsConfig::builder()
                    .cloud_watch_logs(
                        CloudWatchLogsConfig::builder()
                            .status(LogsConfigStatusType::Disabled)
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .build();
        let drifted = live_inputs(&disabled, &desired);
        assert_eq!(drifted.log_group_name, "");
        assert_eq!(drifted.timeout_in_minutes, 0);
    }
}
