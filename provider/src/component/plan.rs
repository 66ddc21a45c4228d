//! What SecurePipeline's children look like, as pure functions of the
//! inputs, the caller identity and the ARNs of children already created:
//! names, the grants each role gets, and the pipeline declaration.

use std::collections::BTreeMap;

use super::args::{
    Build, BuildImage, ComputeType, EnvironmentVariable, NotificationEvent, SecurePipelineArgs,
};
use super::deploy::{Protected, Store};
use crate::aws::arn::Arns;
use crate::buildspec;
use crate::iam::grants::{document, BucketLookups, Grant, LogGroup, StoredValues, Topic};
use crate::iam::PolicyDocument;
use crate::naming;
use crate::resources::build_project::{ProjectVariable, VariableType};
use crate::resources::event_rule::PipelineStateChange;
use crate::resources::pipeline::{Action, Stage, Trigger};

pub const DEFAULT_BRANCH: &str = "main";
/// A year: what the common one-year log retention controls (Security Hub,
/// Config's `cw-loggroup-retention-period-check`, Checkov CKV_AWS_338) ask.
pub const DEFAULT_LOG_RETENTION_DAYS: u32 = 365;
/// S3 server access logs are kept as long as build logs by default.
pub const DEFAULT_ACCESS_LOG_RETENTION_DAYS: u32 = 365;
pub const DEFAULT_ARTIFACT_RETENTION_DAYS: u32 = 30;
pub const DEFAULT_TIMEOUT_MINUTES: u32 = 60;
pub const DEFAULT_QUEUED_TIMEOUT_MINUTES: u32 = 60;
pub const SOURCE_ACTION: &str = "Source";
pub const SOURCE_ARTIFACT: &str = "SourceOutput";
pub const BUILD_ARTIFACT: &str = "BuildOutput";

/// Child names: the component's name plus a short tag of its project and
/// stack, so that two stacks of one program in one account never share a
/// prefix.
#[derive(Debug, Clone)]
pub struct Names {
    base: String,
    /// `project/stack/component`: what the names' suffixes derive from.
    identity: String,
}

impl Names {
    pub fn new(project: &str, stack: &str, component: &str) -> Self {
        let identity = format!("{project}/{stack}/{component}");
        let tag: String = naming::suffix(identity.as_bytes())
            .chars()
            .take(4)
            .collect();
        let short: String = component.chars().take(24).collect();
        Self {
            base: format!("{short}-{tag}"),
            identity,
        }
    }

    /// The prefix of one child's name, e.g. `app-x1y2-build`.
    pub fn prefix(&self, purpose: &str) -> String {
        format!("{}-{purpose}", self.base)
    }

    /// The exact name of the child with this purpose, e.g.
    /// `app-x1y2-build-k3j9a0qz`. Chosen here, before anything is
    /// registered, so that trust and resource policies can name each other
    /// exactly (a `<prefix>-*` pattern for stage `dev` would also match
    /// stage `dev-eu`). The suffix derives from the stack's identity and the
    /// purpose, so the name is the same on every update.
    pub fn name(&self, purpose: &str, rule: &naming::NameRule) -> String {
        self.choose(&self.prefix(purpose), purpose, rule)
    }

    /// The exact name of a log group, under `/securepipeline/`.
    pub fn log_group(&self, purpose: &str) -> String {
        self.choose(
            &format!("/securepipeline/{}", self.prefix(purpose)),
            purpose,
            &naming::LOG_GROUP,
        )
    }

    fn choose(&self, prefix: &str, purpose: &str, rule: &naming::NameRule) -> String {
        let seed = format!("{}/{purpose}", self.identity);
        naming::choose(None, None, prefix, rule, seed.as_bytes())
    }
}

/// CodePipeline keeps an artifact at `<pipeline>/<artifact>/<object>` in
/// the artifact bucket, with the pipeline and artifact names each cut to
/// their first 20 characters (AWS: "Pipeline artifact folder names appear
/// to be truncated", CodePipeline User Guide, Troubleshooting,
/// https://docs.aws.amazon.com/codepipeline/latest/userguide/troubleshooting.html;
/// https://repost.aws/questions/QUI91tw7A9SUOMohJurNqmgA).
const ARTIFACT_FOLDER_CHARS: usize = 20;

fn artifact_folder(name: &str) -> String {
    name.chars().take(ARTIFACT_FOLDER_CHARS).collect()
}

/// The key pattern of every object of one artifact of one pipeline.
pub fn artifact_keys(pipeline_name: &str, artifact: &str) -> String {
    format!(
        "{}/{}/*",
        artifact_folder(pipeline_name),
        artifact_folder(artifact)
    )
}

/// The key pattern of every artifact of one pipeline.
pub fn pipeline_artifact_keys(pipeline_name: &str) -> String {
    format!("{}/*", artifact_folder(pipeline_name))
}

pub fn branch(args: &SecurePipelineArgs) -> &str {
    args.source.branch.as_deref().unwrap_or(DEFAULT_BRANCH)
}

pub fn image(build: &Build) -> BuildImage {
    build.image.unwrap_or(BuildImage::Standard7)
}

pub fn compute_type(build: &Build) -> ComputeType {
    build
        .compute_type
        .unwrap_or(ComputeType::BuildGeneral1Small)
}

/// The value CodeBuild expects for an enum we serialize by its wire name.
pub fn wire_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// What the component decides when an input that says where code comes from
/// or how it is built is left out, so that preview states it.
pub fn defaulted_notes(args: &SecurePipelineArgs) -> Vec<String> {
    let mut notes = Vec::new();
    if args.source.branch.is_none() {
        notes.push(format!(
            "source.branch is not set: the pipeline starts on pushes to `{DEFAULT_BRANCH}` and builds it; set source.branch to use another branch"
        ));
    }
    notes
}

/// The build's buildspec: generated from commands, the inline one, or a
/// path in the repository. Check requires exactly one of the three, so
/// nothing falls back to a file in the repository the user did not name.
pub fn build_buildspec(build: &Build) -> String {
    match (&build.commands, &build.buildspec) {
        (Some(commands), _) => buildspec::for_commands(commands, build.output_files.as_deref()),
        (None, Some(inline)) => inline.clone(),
        (None, None) => build.buildspec_path.clone().unwrap_or_default(),
    }
}

/// CodeBuild environment variables from the user's, with secrets by
/// reference only.
pub fn project_variables(
    environment: Option<&BTreeMap<String, EnvironmentVariable>>,
) -> Vec<ProjectVariable> {
    environment
        .into_iter()
        .flatten()
        .filter_map(|(name, variable)| {
            let (value, kind) = match variable {
                EnvironmentVariable {
                    secret_arn: Some(arn),
                    secret_json_key,
                    ..
                } => (
                    match secret_json_key {
                        Some(key) => format!("{arn}:{key}"),
                        None => arn.clone(),
                    },
                    VariableType::SecretsManager,
                ),
                EnvironmentVariable {
                    parameter_name: Some(parameter),
                    ..
                } => (parameter.clone(), VariableType::ParameterStore),
                EnvironmentVariable {
                    value: Some(value), ..
                } => (value.clone(), VariableType::Plaintext),
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

/// The exact secrets and parameters a project reads: those its variables
/// reference, plus `extra_secrets` (secrets its buildspec reads).
pub fn secret_grants(
    arns: &Arns<'_>,
    environment: Option<&BTreeMap<String, EnvironmentVariable>>,
    extra_secrets: Vec<String>,
) -> Vec<Grant> {
    let variables = || environment.into_iter().flatten().map(|(_, v)| v);
    let secrets = StoredValues::secrets(
        extra_secrets
            .into_iter()
            .chain(variables().filter_map(|v| v.secret_arn.clone())),
    );
    let parameters = StoredValues::parameters(variables().filter_map(|v| {
        v.parameter_name
            .as_ref()
            .map(|name| arns.ssm_parameter(name))
    }));
    secrets
        .grant_read("ReadReferencedSecrets")
        .into_iter()
        .chain(parameters.grant_read("ReadReferencedParameters"))
        .collect()
}

/// What every CodeBuild project's role starts with: writing its own log
/// group, and reading artifacts `reads` and writing artifacts `writes` of
/// its pipeline in its region's store, with the store's key. No other
/// artifact: nothing a project runs can change what a later action uses.
pub fn project_grants(
    arns: &Arns<'_>,
    store: Store<'_>,
    log_group_name: &str,
    reads: &[&str],
    writes: &[&str],
) -> Vec<Grant> {
    let keys = |artifacts: &[&str]| -> Vec<String> {
        artifacts
            .iter()
            .map(|a| artifact_keys(store.pipeline_name, a))
            .collect()
    };
    let mut grants =
        vec![LogGroup::new(&arns.log_group(log_group_name)).grant_write("WriteOwnLogs")];
    // CodeBuild looks up the store's region, never its versioning.
    grants.extend(store.bucket().grant_objects(
        "Artifacts",
        "UseArtifactKey",
        BucketLookups::Location,
        &keys(reads),
        &keys(writes),
    ));
    grants
}

/// What the build project's role may do: write its own log group, read
/// the source artifact and write the build artifact (no other), use the
/// key, read exactly the secrets it references; and nothing production
/// deployments own (the build is never production).
pub fn build_role_policy(
    arns: &Arns<'_>,
    store: Store<'_>,
    log_group_name: &str,
    environment: Option<&BTreeMap<String, EnvironmentVariable>>,
    protected: &Protected,
) -> PolicyDocument {
    let mut grants = project_grants(
        arns,
        store,
        log_group_name,
        &[SOURCE_ARTIFACT],
        &[BUILD_ARTIFACT],
    );
    grants.extend(secret_grants(arns, environment, Vec::new()));
    grants.extend(protected.denies(store));
    document(&grants)
}

/// `us-west-2` -> `UsWest2`, for statement ids.
fn region_sid(region: &str) -> String {
    region
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// What the pipeline's role may do: read the source through the
/// connection (for this repository only), run its own projects (in every
/// region), write this pipeline's artifacts in every region's store with
/// its key, notify the topic. It reads artifacts (and decrypts them) only
/// in a pipeline with a stage in another region, where it copies the home
/// store's artifacts to that region's store; otherwise CodeBuild reads
/// them under the projects' own roles and the pipeline role only writes
/// the source artifact. It describes the stages' gate alarms, if any.
/// `stores` are keyed by region; `home` is the pipeline's.
pub fn pipeline_role_policy(
    home: &str,
    stores: &BTreeMap<String, Store<'_>>,
    connection_arn: &str,
    repository: &str,
    project_arns: Vec<String>,
    topic_arn: &str,
    alarm_arns: Vec<String>,
) -> PolicyDocument {
    let mut grants = vec![Grant::connection_use(
        "UseSourceConnection",
        connection_arn,
        repository,
    )];
    let cross_region = stores.keys().any(|region| region != home);
    // The home region first, so a single-region pipeline reads as before.
    let ordered = stores
        .get_key_value(home)
        .into_iter()
        .chain(stores.iter().filter(|(r, _)| r.as_str() != home));
    for (region, store) in ordered {
        let suffix = if region == home {
            String::new()
        } else {
            region_sid(region)
        };
        // CodePipeline writes every artifact of this pipeline (and only
        // this pipeline's prefix) it moves; it reads only the home store's,
        // to copy them to the other regions.
        let keys = [pipeline_artifact_keys(store.pipeline_name)];
        let reads: &[String] = if cross_region && region == home {
            &keys
        } else {
            &[]
        };
        grants.extend(store.bucket().grant_objects(
            &format!("Artifacts{suffix}"),
            &format!("UseArtifactKey{suffix}"),
            BucketLookups::LocationAndVersioning,
            reads,
            &keys,
        ));
    }
    grants.push(Grant::builds_run("RunOwnBuilds", project_arns));
    grants.push(Topic::new(topic_arn).grant_publish("NotifyApprovers"));
    // Stage gates' CloudWatchAlarm rules read these alarms' states.
    if !alarm_arns.is_empty() {
        grants.push(Grant::alarms_describe("ReadGateAlarms", alarm_arns));
    }
    document(&grants)
}

/// EventBridge may start this pipeline and nothing else.
pub fn events_role_policy(pipeline_arn: &str) -> PolicyDocument {
    document(&[Grant::pipeline_start("StartThisPipeline", pipeline_arn)])
}

/// Source and build stages.
pub fn stages(
    args: &SecurePipelineArgs,
    connection_arn: &str,
    build_project_name: &str,
) -> Vec<Stage> {
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
        Stage {
            name: "Source".into(),
            actions: vec![source],
            rollback_on_failure: false,
            before_entry: Vec::new(),
            on_success: Vec::new(),
        },
        Stage {
            name: "Build".into(),
            actions: vec![build],
            rollback_on_failure: false,
            before_entry: Vec::new(),
            on_success: Vec::new(),
        },
    ]
}

/// The push filters of the pipeline's one trigger: its branch and any more
/// branches, with the path filters; then, for releases, its tags.
pub fn triggers(args: &SecurePipelineArgs) -> Vec<Trigger> {
    let source = &args.source;
    let mut branches = vec![branch(args).to_string()];
    branches.extend(source.branches.iter().flatten().cloned());
    let mut filters = vec![Trigger {
        exclude_branches: source.exclude_branches.clone().unwrap_or_default(),
        include_paths: source.include_paths.clone().unwrap_or_default(),
        exclude_paths: source.exclude_paths.clone().unwrap_or_default(),
        ..Trigger::on_branches(SOURCE_ACTION, branches)
    }];
    if let Some(tags) = source.tags.as_ref().filter(|t| !t.is_empty()) {
        filters.push(Trigger {
            tags: tags.clone(),
            exclude_tags: source.exclude_tags.clone().unwrap_or_default(),
            ..Trigger::on_branches(SOURCE_ACTION, Vec::new())
        });
    }
    filters
}

/// The pipeline, stage and action state changes that notify, as
/// EventBridge names their states.
pub fn notification_change(args: &SecurePipelineArgs, pipeline_name: &str) -> PipelineStateChange {
    let mut events: Vec<NotificationEvent> = args
        .notifications
        .as_ref()
        .and_then(|n| n.events.clone())
        .unwrap_or_else(|| vec![NotificationEvent::Failed]);
    events.sort();
    events.dedup();
    let mut change = PipelineStateChange::of_executions(pipeline_name, Vec::new());
    for event in events {
        match event {
            NotificationEvent::StageFailed => change.stage_states.push("FAILED".into()),
            NotificationEvent::ActionFailed => change.action_states.push("FAILED".into()),
            execution => change.states.push(wire_name(&execution)),
        }
    }
    change
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::lint;
    use serde_json::json;

    const ARNS: Arns<'static> = Arns {
        partition: "aws",
        account: "123456789012",
        region: "eu-west-1",
    };

    const PIPELINE: &str = "web-x1y2-pipeline-k3j9a0qz";
    const STORE: Store<'static> = Store {
        bucket_arn: "arn:aws:s3:::bucket",
        key_arn: "arn:aws:kms:eu-west-1:123456789012:key/k",
        pipeline_name: PIPELINE,
    };

    fn args(value: serde_json::Value) -> SecurePipelineArgs {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn names_are_exact_stable_and_differ_between_stacks_and_stages() {
        let dev = Names::new("app", "dev", "web");
        let prod = Names::new("app", "prod", "web");
        assert_ne!(dev.prefix("build"), prod.prefix("build"));
        let rule = &naming::CODEBUILD_PROJECT;
        let name = dev.name("deploy-dev", rule);
        assert!(
            name.starts_with(&format!("{}-", dev.prefix("deploy-dev"))),
            "{name}"
        );
        assert_eq!(
            name,
            Names::new("app", "dev", "web").name("deploy-dev", rule)
        );
        assert_ne!(name, prod.name("deploy-dev", rule));
        // Stage `dev-eu`'s name does not extend stage `dev`'s: each is
        // named exactly, never matched by a prefix.
        let dev_eu = dev.name("deploy-dev-eu", rule);
        assert_ne!(dev_eu.len(), name.len());
        assert!(dev
            .log_group("build")
            .starts_with(&format!("/securepipeline/{}-", dev.prefix("build"))));
    }

    #[test]
    fn artifact_keys_follow_codepipelines_truncation() {
        assert_eq!(
            artifact_keys("web-x1y2-pipeline-k3j9a0qz", "StackOutputs12-production-eu"),
            "web-x1y2-pipeline-k3/StackOutputs12-produ/*"
        );
        assert_eq!(artifact_keys("p", BUILD_ARTIFACT), "p/BuildOutput/*");
        assert_eq!(
            pipeline_artifact_keys("web-x1y2-pipeline-k3j9a0qz"),
            "web-x1y2-pipeline-k3/*"
        );
    }

    #[test]
    fn the_build_reads_only_the_source_and_writes_only_the_build_artifact() {
        let policy = build_role_policy(&ARNS, STORE, "/l", None, &Protected::default());
        let on = |action: &str| -> Vec<String> {
            policy
                .statements
                .iter()
                .filter(|s| s.actions.iter().any(|a| a == action))
                .flat_map(|s| s.resources.clone())
                .collect()
        };
        assert_eq!(
            on("s3:GetObject"),
            vec![format!(
                "arn:aws:s3:::bucket/web-x1y2-pipeline-k3/SourceOutput/*"
            )]
        );
        assert_eq!(
            on("s3:PutObject"),
            vec![format!(
                "arn:aws:s3:::bucket/web-x1y2-pipeline-k3/BuildOutput/*"
            )]
        );
        assert!(on("s3:ListBucket").is_empty());
        assert!(lint::permissions(&policy).is_empty());
    }

    #[test]
    fn build_role_reads_only_referenced_secrets() {
        let a = args(
            json!({"source": {"repository": "o/r"}, "build": {"commands": ["make"], "environment": {
                "TOKEN": {"secretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:t-AbC", "secretJsonKey": "token"},
                "DB": {"parameterName": "/app/db"},
                "MODE": {"value": "ci"}
            }}}),
        );
        let policy = build_role_policy(
            &ARNS,
            STORE,
            "/securepipeline/app-build-x",
            a.build.environment.as_ref(),
            &Protected::default(),
        );
        assert!(policy
            .statements
            .iter()
            .all(|s| s.effect == crate::iam::Effect::Allow));
        assert!(
            lint::permissions(&policy).is_empty(),
            "{:?}",
            lint::permissions(&policy)
        );
        let secrets = policy
            .statements
            .iter()
            .find(|s| s.sid.as_deref() == Some("ReadReferencedSecrets"))
            .unwrap();
        assert_eq!(
            secrets.resources,
            vec!["arn:aws:secretsmanager:eu-west-1:123456789012:secret:t-AbC"]
        );
        let params = policy
            .statements
            .iter()
            .find(|s| s.sid.as_deref() == Some("ReadReferencedParameters"))
            .unwrap();
        assert_eq!(
            params.resources,
            vec!["arn:aws:ssm:eu-west-1:123456789012:parameter/app/db"]
        );
        let variables = project_variables(a.build.environment.as_ref());
        assert_eq!(
            variables[2].value,
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:t-AbC:token"
        );
        assert_eq!(variables[2].kind, VariableType::SecretsManager);
    }

    #[test]
    fn pipeline_and_events_roles_pass_the_linter() {
        let pipeline = pipeline_role_policy(
            "eu-west-1",
            &BTreeMap::from([("eu-west-1".to_string(), STORE)]),
            "arn:aws:codestar-connections:eu-west-1:123456789012:connection/c",
            "org/app",
            vec![ARNS.codebuild_project("p")],
            &ARNS.sns_topic("t"),
            vec![ARNS.cloudwatch_alarm("errors")],
        );
        assert!(lint::permissions(&pipeline).is_empty());
        let sids: Vec<&str> = pipeline
            .statements
            .iter()
            .filter_map(|s| s.sid.as_deref())
            .collect();
        // One region: the role writes the source artifact and reads none
        // (CodeBuild reads under the projects' roles), so its key makes
        // data keys and decrypts nothing.
        assert_eq!(
            sids,
            vec![
                "UseSourceConnection",
                "ArtifactsBucket",
                "ArtifactsWrite",
                "UseArtifactKey",
                "RunOwnBuilds",
                "NotifyApprovers",
                "ReadGateAlarms"
            ]
        );
        let gate = pipeline.statements.last().unwrap();
        assert_eq!(gate.actions, vec!["cloudwatch:DescribeAlarms"]);
        assert_eq!(
            gate.resources,
            vec!["arn:aws:cloudwatch:eu-west-1:123456789012:alarm:errors"]
        );
        let actions = |sid: &str| -> Vec<String> {
            pipeline
                .statements
                .iter()
                .find(|s| s.sid.as_deref() == Some(sid))
                .map(|s| s.actions.clone())
                .unwrap_or_default()
        };
        assert_eq!(
            actions("UseArtifactKey"),
            vec!["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"]
        );
        // CodePipeline checks that its store is versioned.
        assert_eq!(
            actions("ArtifactsBucket"),
            vec!["s3:GetBucketLocation", "s3:GetBucketVersioning"]
        );
        let events = events_role_policy(&ARNS.codepipeline("pipe"));
        assert_eq!(events.statements.len(), 1);
        assert_eq!(
            events.statements[0].actions,
            vec!["codepipeline:StartPipelineExecution"]
        );
        assert_eq!(
            events.statements[0].resources,
            vec!["arn:aws:codepipeline:eu-west-1:123456789012:pipe"]
        );
    }

    #[test]
    fn source_uses_the_connection_and_triggers_on_the_branch() {
        let a = args(
            json!({"source": {"repository": "org/app", "branch": "release", "includePaths": ["src/**"]}, "build": {"buildspecPath": "ci/build.yml"}}),
        );
        let stages = stages(
            &a,
            "arn:aws:codeconnections:eu-west-1:123456789012:connection/c",
            "build-proj",
        );
        let source = &stages[0].actions[0];
        assert_eq!(source.provider, "CodeStarSourceConnection");
        assert_eq!(source.configuration["BranchName"], "release");
        assert_eq!(
            stages[1].actions[0].configuration["ProjectName"],
            "build-proj"
        );
        let [t] = &triggers(&a)[..] else {
            panic!("a branch filter only")
        };
        assert_eq!(t.branches, vec!["release"]);
        assert_eq!(t.include_paths, vec!["src/**"]);
        assert_eq!(build_buildspec(&a.build), "ci/build.yml");
    }

    #[test]
    fn releases_and_more_branches_are_filters_of_the_one_trigger() {
        let a = args(json!({
            "source": {"repository": "org/app", "branches": ["release/*"],
                       "excludeBranches": ["release/old-*"], "includePaths": ["src/**"],
                       "tags": ["v*"], "excludeTags": ["v*-rc*"]},
            "build": {"commands": ["make"]}}));
        let [on_branches, on_tags] = &triggers(&a)[..] else {
            panic!("a branch filter and a tag filter")
        };
        assert_eq!(on_branches.branches, vec!["main", "release/*"]);
        assert_eq!(on_branches.exclude_branches, vec!["release/old-*"]);
        assert_eq!(on_branches.include_paths, vec!["src/**"]);
        assert!(on_branches.tags.is_empty());
        assert_eq!(
            (on_tags.tags.clone(), on_tags.exclude_tags.clone()),
            (vec!["v*".to_string()], vec!["v*-rc*".to_string()])
        );
        // Path filters are for branch pushes only.
        assert!(on_tags.branches.is_empty() && on_tags.include_paths.is_empty());
        assert_eq!(on_tags.source_action_name, on_branches.source_action_name);
    }

    #[test]
    fn notifications_default_to_failures() {
        let a = args(json!({"source": {"repository": "o/r"}, "build": {"commands": ["make"]}}));
        assert_eq!(
            notification_change(&a, "p"),
            PipelineStateChange::of_executions("p", vec!["FAILED".into()])
        );
        let a = args(
            json!({"source": {"repository": "o/r"}, "build": {"commands": ["make"]}, "notifications": {"events": ["SUCCEEDED", "FAILED"]}}),
        );
        assert_eq!(
            notification_change(&a, "p").states,
            vec!["FAILED", "SUCCEEDED"]
        );
    }

    #[test]
    fn stage_and_action_failures_are_their_own_state_changes() {
        let a = args(
            json!({"source": {"repository": "o/r"}, "build": {"commands": ["make"]},
            "notifications": {"events": ["ACTION_FAILED", "STAGE_FAILED", "SUCCEEDED", "STAGE_FAILED"]}}),
        );
        let change = notification_change(&a, "p");
        assert_eq!(change.states, vec!["SUCCEEDED"]);
        assert_eq!(change.stage_states, vec!["FAILED"]);
        assert_eq!(change.action_states, vec!["FAILED"]);
    }

    #[test]
    fn cross_region_pipelines_reach_every_store_and_project() {
        let west = Store {
            bucket_arn: "arn:aws:s3:::bucket-west",
            key_arn: "arn:aws:kms:us-west-2:123456789012:key/w",
            pipeline_name: PIPELINE,
        };
        let stores = BTreeMap::from([
            ("eu-west-1".to_string(), STORE),
            ("us-west-2".to_string(), west),
        ]);
        let projects = vec![
            ARNS.codebuild_project("build"),
            ARNS.in_region("us-west-2")
                .codebuild_project("deploy-staging"),
        ];
        let pipeline = pipeline_role_policy(
            "eu-west-1",
            &stores,
            "arn:aws:codeconnections:eu-west-1:123456789012:connection/c",
            "org/app",
            projects.clone(),
            &ARNS.sns_topic("t"),
            Vec::new(),
        );
        assert!(lint::permissions(&pipeline).is_empty());
        let statement = |sid: &str| {
            pipeline
                .statements
                .iter()
                .find(|s| s.sid.as_deref() == Some(sid))
                .cloned()
        };
        let find = |sid: &str| statement(sid).unwrap().resources;
        assert_eq!(find("ArtifactsBucket"), vec!["arn:aws:s3:::bucket"]);
        assert_eq!(
            find("ArtifactsUsWest2Bucket"),
            vec!["arn:aws:s3:::bucket-west"]
        );
        assert_eq!(
            find("UseArtifactKeyUsWest2"),
            vec!["arn:aws:kms:us-west-2:123456789012:key/w"]
        );
        assert_eq!(find("RunOwnBuilds"), projects);
        // Artifacts of this pipeline only, in each region.
        assert_eq!(
            find("ArtifactsUsWest2Write"),
            vec!["arn:aws:s3:::bucket-west/web-x1y2-pipeline-k3/*"]
        );
        // The role copies the home store's artifacts to the other region:
        // it reads at home, and only writes there.
        assert_eq!(
            find("ArtifactsRead"),
            vec!["arn:aws:s3:::bucket/web-x1y2-pipeline-k3/*"]
        );
        assert_eq!(
            statement("UseArtifactKey").unwrap().actions,
            vec!["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"]
        );
        assert_eq!(statement("ArtifactsUsWest2Read"), None);
        assert_eq!(
            statement("UseArtifactKeyUsWest2").unwrap().actions,
            vec!["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"]
        );
    }

    #[test]
    fn the_build_role_is_denied_production() {
        let a = args(
            json!({"source": {"repository": "o/r"}, "build": {"commands": ["make"]}, "deployments": [
                {"name": "prod", "production": true, "assumeRoleArn": "arn:aws:iam::210987654321:role/deployer",
                 "pulumiStack": {"stack": "app/prod", "backendUrl": "s3://state", "passphraseSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:p-AbCdEf"}}
            ]}),
        );
        let protected = Protected::of(&ARNS, a.deployments.as_deref().unwrap());
        let policy = build_role_policy(&ARNS, STORE, "/securepipeline/b", None, &protected);
        let denied: Vec<&str> = policy
            .statements
            .iter()
            .filter(|s| s.effect == crate::iam::Effect::Deny)
            .filter_map(|s| s.sid.as_deref())
            .collect();
        assert_eq!(
            denied,
            vec![
                "DenyProductionArtifacts",
                "DenyProductionState",
                "DenyListingProductionState",
                "DenyProductionSecrets",
                "DenyProductionRoles"
            ]
        );
        assert!(lint::permissions(&policy).is_empty());
    }

    #[test]
    fn a_defaulted_branch_is_stated() {
        let notes = defaulted_notes(&args(
            json!({"source": {"repository": "o/r"}, "build": {"commands": ["make"]}}),
        ));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].starts_with("source.branch is not set") && notes[0].contains("`main`"));
        assert!(defaulted_notes(&args(
            json!({"source": {"repository": "o/r", "branch": "main"}, "build": {"commands": ["make"]}})
        ))
        .is_empty());
    }
}
