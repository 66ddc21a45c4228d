//! What SecurePipeline's children look like, as pure functions of the
//! inputs, the caller identity and the ARNs of children already created:
//! names, the grants each role gets, and the pipeline declaration.

use std::collections::BTreeMap;

use super::args::{Build, BuildImage, ComputeType, EnvironmentVariable, NotificationEvent, SecurePipelineArgs};
use super::buildspec;
use crate::aws::arn::Arns;
use crate::iam::grants::{document, Grant};
use crate::iam::PolicyDocument;
use crate::naming;
use crate::resources::build_project::{ProjectVariable, VariableType};
use crate::resources::pipeline::{Action, Stage, Trigger};

pub const DEFAULT_BRANCH: &str = "main";
pub const DEFAULT_LOG_RETENTION_DAYS: u32 = 30;
pub const DEFAULT_ARTIFACT_RETENTION_DAYS: u32 = 30;
pub const DEFAULT_TIMEOUT_MINUTES: u32 = 60;
pub const DEFAULT_QUEUED_TIMEOUT_MINUTES: u32 = 60;
pub const DEFAULT_BUILDSPEC_PATH: &str = "buildspec.yml";
pub const SOURCE_ACTION: &str = "Source";
pub const SOURCE_ARTIFACT: &str = "SourceOutput";
pub const BUILD_ARTIFACT: &str = "BuildOutput";

/// Prefixes all child names start with: the component's name plus a short
/// tag of its project and stack, so that two stacks of one program in one
/// account never share a prefix (trust conditions match on it).
#[derive(Debug, Clone)]
pub struct Names {
    base: String,
}

impl Names {
    pub fn new(project: &str, stack: &str, component: &str) -> Self {
        let tag: String = naming::suffix(format!("{project}/{stack}/{component}").as_bytes())
            .chars()
            .take(4)
            .collect();
        let short: String = component.chars().take(24).collect();
        Self {
            base: format!("{short}-{tag}"),
        }
    }

    /// The prefix of one child's name, e.g. `app-x1y2-build`.
    pub fn prefix(&self, purpose: &str) -> String {
        format!("{}-{purpose}", self.base)
    }

    /// The pattern every name made from `prefix` under `rule` matches.
    pub fn pattern(&self, purpose: &str, rule: &naming::NameRule) -> String {
        format!("{}-*", naming::sanitize_prefix(&self.prefix(purpose), rule))
    }
}

pub fn branch(args: &SecurePipelineArgs) -> &str {
    args.source.branch.as_deref().unwrap_or(DEFAULT_BRANCH)
}

pub fn image(build: &Build) -> BuildImage {
    build.image.unwrap_or(BuildImage::Standard7)
}

pub fn compute_type(build: &Build) -> ComputeType {
    build.compute_type.unwrap_or(ComputeType::BuildGeneral1Small)
}

/// The value CodeBuild expects for an enum we serialize by its wire name.
pub fn wire_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The build's buildspec: generated from commands, the inline one, or a
/// path in the repository.
pub fn build_buildspec(build: &Build) -> String {
    match (&build.commands, &build.buildspec, &build.buildspec_path) {
        (Some(commands), _, _) => buildspec::for_commands(commands),
        (None, Some(inline), _) => inline.clone(),
        (None, None, Some(path)) => path.clone(),
        (None, None, None) => DEFAULT_BUILDSPEC_PATH.into(),
    }
}

/// CodeBuild environment variables from the user's, with secrets by
/// reference only.
pub fn project_variables(environment: Option<&BTreeMap<String, EnvironmentVariable>>) -> Vec<ProjectVariable> {
    environment
        .into_iter()
        .flatten()
        .filter_map(|(name, variable)| {
            let (value, kind) = match variable {
                EnvironmentVariable { secret_arn: Some(arn), secret_json_key, .. } => (
                    match secret_json_key {
                        Some(key) => format!("{arn}:{key}"),
                        None => arn.clone(),
                    },
                    VariableType::SecretsManager,
                ),
                EnvironmentVariable { parameter_name: Some(parameter), .. } => {
                    (parameter.clone(), VariableType::ParameterStore)
                }
                EnvironmentVariable { value: Some(value), .. } => (value.clone(), VariableType::Plaintext),
                _ => return None,
            };
            Some(ProjectVariable {
                name: name.clone(),
                value,
                kind,
            })
        })
        .collect()
}

/// The exact secrets and parameters a project's variables reference.
pub fn secret_grants(arns: &Arns<'_>, environment: Option<&BTreeMap<String, EnvironmentVariable>>) -> Vec<Grant> {
    let mut secrets = Vec::new();
    let mut parameters = Vec::new();
    for variable in environment.into_iter().flatten().map(|(_, v)| v) {
        if let Some(arn) = &variable.secret_arn {
            secrets.push(arn.clone());
        }
        if let Some(name) = &variable.parameter_name {
            parameters.push(arns.ssm_parameter(name));
        }
    }
    secrets.sort();
    secrets.dedup();
    parameters.sort();
    parameters.dedup();
    let mut grants = Vec::new();
    if !secrets.is_empty() {
        grants.push(Grant::secrets_read("ReadReferencedSecrets", secrets));
    }
    if !parameters.is_empty() {
        grants.push(Grant::parameters_read("ReadReferencedParameters", parameters));
    }
    grants
}

/// What a CodeBuild project's role may do: write its own log group, use
/// the artifacts and the key, read exactly the secrets it references.
pub fn build_role_policy(
    arns: &Arns<'_>,
    bucket_arn: &str,
    key_arn: &str,
    log_group_name: &str,
    environment: Option<&BTreeMap<String, EnvironmentVariable>>,
) -> PolicyDocument {
    let mut grants = vec![Grant::logs_write("WriteOwnLogs", &arns.log_group(log_group_name))];
    grants.extend(Grant::artifacts_read_write("Artifacts", bucket_arn));
    grants.push(Grant::key_use("UseArtifactKey", key_arn));
    grants.extend(secret_grants(arns, environment));
    document(&grants)
}

/// What the pipeline's role may do: read the source through the
/// connection (for this repository only), run its own projects, use the
/// artifacts and the key, notify the topic.
pub fn pipeline_role_policy(
    bucket_arn: &str,
    key_arn: &str,
    connection_arn: &str,
    repository: &str,
    project_arns: Vec<String>,
    topic_arn: &str,
) -> PolicyDocument {
    let mut grants = vec![Grant::connection_use("UseSourceConnection", connection_arn, repository)];
    grants.extend(Grant::artifacts_read_write("Artifacts", bucket_arn));
    grants.push(Grant::key_use("UseArtifactKey", key_arn));
    grants.push(Grant::builds_run("RunOwnBuilds", project_arns));
    grants.push(Grant::topic_publish("NotifyApprovers", topic_arn));
    document(&grants)
}

/// EventBridge may start this pipeline and nothing else.
pub fn events_role_policy(pipeline_arn: &str) -> PolicyDocument {
    document(&[Grant::pipeline_start("StartThisPipeline", pipeline_arn)])
}

/// Source and build stages.
pub fn stages(args: &SecurePipelineArgs, connection_arn: &str, build_project_name: &str) -> Vec<Stage> {
    let source = Action {
        name: SOURCE_ACTION.into(),
        category: "Source".into(),
        owner: "AWS".into(),
        provider: "CodeStarSourceConnection".into(),
        version: "1".into(),
        run_order: 1,
        configuration: BTreeMap::from([
            ("ConnectionArn".into(), connection_arn.into()),
            ("FullRepositoryId".into(), args.source.repository.clone()),
            ("BranchName".into(), branch(args).into()),
            ("OutputArtifactFormat".into(), "CODE_ZIP".into()),
            // Pushes start the pipeline through V2 triggers instead.
            ("DetectChanges".into(), "false".into()),
        ]),
        input_artifacts: Vec::new(),
        output_artifacts: vec![SOURCE_ARTIFACT.into()],
        region: None,
        namespace: Some("SourceVariables".into()),
        timeout_in_minutes: None,
    };
    let build = Action {
        name: "Build".into(),
        category: "Build".into(),
        owner: "AWS".into(),
        provider: "CodeBuild".into(),
        version: "1".into(),
        run_order: 1,
        configuration: BTreeMap::from([("ProjectName".into(), build_project_name.into())]),
        input_artifacts: vec![SOURCE_ARTIFACT.into()],
        output_artifacts: vec![BUILD_ARTIFACT.into()],
        region: None,
        namespace: Some("BuildVariables".into()),
        timeout_in_minutes: None,
    };
    vec![
        Stage { name: "Source".into(), actions: vec![source], rollback_on_failure: false },
        Stage { name: "Build".into(), actions: vec![build], rollback_on_failure: false },
    ]
}

/// The push trigger every pipeline has: its branch, its path filters.
pub fn trigger(args: &SecurePipelineArgs) -> Trigger {
    Trigger {
        source_action_name: SOURCE_ACTION.into(),
        branches: vec![branch(args).into()],
        include_paths: args.source.include_paths.clone().unwrap_or_default(),
        exclude_paths: args.source.exclude_paths.clone().unwrap_or_default(),
    }
}

/// Execution states that notify, as EventBridge names them.
pub fn notification_states(args: &SecurePipelineArgs) -> Vec<String> {
    let mut events: Vec<NotificationEvent> = args
        .notifications
        .as_ref()
        .and_then(|n| n.events.clone())
        .unwrap_or_else(|| vec![NotificationEvent::Failed]);
    events.sort();
    events.iter().map(wire_name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::lint;
    use serde_json::json;

    const ARNS: Arns<'static> = Arns { partition: "aws", account: "123456789012", region: "eu-west-1" };

    fn args(value: serde_json::Value) -> SecurePipelineArgs {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn names_differ_between_stacks_and_fit_patterns() {
        let dev = Names::new("app", "dev", "web");
        let prod = Names::new("app", "prod", "web");
        assert_ne!(dev.prefix("build"), prod.prefix("build"));
        let pattern = dev.pattern("build", &naming::CODEBUILD_PROJECT);
        let name = naming::choose(None, None, &dev.prefix("build"), &naming::CODEBUILD_PROJECT, b"s");
        assert!(name.starts_with(pattern.trim_end_matches('*')), "{name} vs {pattern}");
    }

    #[test]
    fn build_role_reads_only_referenced_secrets() {
        let a = args(json!({"source": {"repository": "o/r"}, "build": {"environment": {
            "TOKEN": {"secretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:t-AbC", "secretJsonKey": "token"},
            "DB": {"parameterName": "/app/db"},
            "MODE": {"value": "ci"}
        }}}));
        let policy = build_role_policy(
            &ARNS,
            "arn:aws:s3:::bucket",
            "arn:aws:kms:eu-west-1:123456789012:key/k",
            "/securepipeline/app-build-x",
            a.build.environment.as_ref(),
        );
        assert!(lint::permissions(&policy).is_empty(), "{:?}", lint::permissions(&policy));
        let secrets = policy.statements.iter().find(|s| s.sid.as_deref() == Some("ReadReferencedSecrets")).unwrap();
        assert_eq!(secrets.resources, vec!["arn:aws:secretsmanager:eu-west-1:123456789012:secret:t-AbC"]);
        let params = policy.statements.iter().find(|s| s.sid.as_deref() == Some("ReadReferencedParameters")).unwrap();
        assert_eq!(params.resources, vec!["arn:aws:ssm:eu-west-1:123456789012:parameter/app/db"]);
        let variables = project_variables(a.build.environment.as_ref());
        assert_eq!(variables[2].value, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:t-AbC:token");
        assert_eq!(variables[2].kind, VariableType::SecretsManager);
    }

    #[test]
    fn pipeline_and_events_roles_pass_the_linter() {
        let pipeline = pipeline_role_policy(
            "arn:aws:s3:::bucket",
            "arn:aws:kms:eu-west-1:123456789012:key/k",
            "arn:aws:codestar-connections:eu-west-1:123456789012:connection/c",
            "org/app",
            vec![ARNS.codebuild_project("p")],
            &ARNS.sns_topic("t"),
        );
        assert!(lint::permissions(&pipeline).is_empty());
        let events = events_role_policy(&ARNS.codepipeline("pipe"));
        assert_eq!(events.statements.len(), 1);
        assert_eq!(events.statements[0].actions, vec!["codepipeline:StartPipelineExecution"]);
        assert_eq!(events.statements[0].resources, vec!["arn:aws:codepipeline:eu-west-1:123456789012:pipe"]);
    }

    #[test]
    fn source_uses_the_connection_and_triggers_on_the_branch() {
        let a = args(json!({"source": {"repository": "org/app", "branch": "release", "includePaths": ["src/**"]}, "build": {}}));
        let stages = stages(&a, "arn:aws:codeconnections:eu-west-1:123456789012:connection/c", "build-proj");
        let source = &stages[0].actions[0];
        assert_eq!(source.provider, "CodeStarSourceConnection");
        assert_eq!(source.configuration["BranchName"], "release");
        assert_eq!(stages[1].actions[0].configuration["ProjectName"], "build-proj");
        let t = trigger(&a);
        assert_eq!(t.branches, vec!["release"]);
        assert_eq!(t.include_paths, vec!["src/**"]);
        assert_eq!(build_buildspec(&a.build), DEFAULT_BUILDSPEC_PATH);
    }

    #[test]
    fn notifications_default_to_failures() {
        let a = args(json!({"source": {"repository": "o/r"}, "build": {}}));
        assert_eq!(notification_states(&a), vec!["FAILED"]);
        let a = args(json!({"source": {"repository": "o/r"}, "build": {}, "notifications": {"events": ["SUCCEEDED", "FAILED"]}}));
        assert_eq!(notification_states(&a), vec!["FAILED", "SUCCEEDED"]);
    }
}
