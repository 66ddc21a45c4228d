//! `securepipeline:aws:Pipeline`: a CodePipeline V2 pipeline.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use aws_sdk_codepipeline::types::{
    ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId,
    ArtifactStore as AwsArtifactStore, ArtifactStoreType, EncryptionKey, EncryptionKeyType,
    ExecutionMode, FailureConditions, GitBranchFilterCriteria, GitConfiguration,
    GitFilePathFilterCriteria, GitPushFilter, GitTagFilterCriteria, InputArtifact, OutputArtifact,
    PipelineDeclaration, PipelineTriggerDeclaration, PipelineTriggerProviderType, PipelineType,
    PipelineVariableDeclaration, Result as FailureResult, StageDeclaration, Tag,
};
use aws_smithy_types::error::operation::BuildError;
use serde::{Deserialize, Serialize};

use super::common::{check_arn, check_exact_arn, check_kms_key_arn, from_sdk_tags, sdk_tags};
use super::stage_conditions::{self, Condition, Moment};
use crate::aws::arn::{is_region, Arn};
use crate::aws::failure::AwsFailure;
use crate::aws::retry::{once, Transient};
use crate::credentials;
use crate::naming;
use crate::resource::{
    is_unknown, AutoName, CheckContext, CreateToken, CustomResource, Failures, NameScope, Op,
    Placement, ResourceError, TagChange,
};
use crate::tags::Tags;

/// CodePipeline's limits on a manual approval's timeout, in minutes.
pub const APPROVAL_TIMEOUT: (u32, u32) = (5, 10080);

/// Git branch names a push trigger can match.
pub fn check_branch(branch: &str) -> Result<(), String> {
    if is_unknown(branch) {
        return Ok(());
    }
    let bad = branch.is_empty()
        || branch.starts_with('/')
        || branch.ends_with('/')
        || branch.ends_with(".lock")
        || branch.contains("..")
        || branch.contains("//")
        || branch
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c));
    if let Some(name) = branch.strip_prefix("refs/heads/") {
        return Err(format!(
            "`{branch}` is a ref, and pipeline triggers match branch names only, so it would never start; use `{name}`"
        ));
    }
    if branch.starts_with("refs/") {
        return Err(format!(
            "`{branch}` is a ref, not a branch; pipeline triggers match branch names such as `main`"
        ));
    }
    if bad {
        Err(format!("`{branch}` is not a valid git branch name"))
    } else {
        Ok(())
    }
}

pub struct Pipeline;

/// Where one region's artifacts live.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactStore {
    pub bucket_name: String,
    pub kms_key_arn: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub name: String,
    /// Source, Build, Approval, Deploy, Test, Invoke.
    pub category: String,
    /// AWS (ThirdParty sources such as GitHub v1 are not accepted).
    pub owner: String,
    pub provider: String,
    pub version: String,
    pub run_order: u32,
    #[serde(default)]
    pub configuration: BTreeMap<String, String>,
    #[serde(default)]
    pub input_artifacts: Vec<String>,
    #[serde(default)]
    pub output_artifacts: Vec<String>,
    /// Set when the action runs in another region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Manual approvals only: how long the approval waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_in_minutes: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub name: String,
    pub actions: Vec<Action>,
    /// Roll the stage back when it fails (V2 `onFailure: ROLLBACK`).
    #[serde(default)]
    pub rollback_on_failure: bool,
    /// Rules that must pass before the stage is entered (V2 `beforeEntry`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before_entry: Vec<Condition>,
    /// Rules checked after the stage succeeds (V2 `onSuccess`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_success: Vec<Condition>,
}

/// One V2 push filter on a source action: a push of a branch matching
/// `branches` (and not `excludeBranches`) touching the paths, or a push of
/// a tag matching `tags` (and not `excludeTags`). A filter is either on
/// branches or on tags; the triggers of one action become one trigger.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    pub source_action_name: String,
    #[serde(default)]
    pub branches: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_branches: Vec<String>,
    #[serde(default)]
    pub include_paths: Vec<String>,
    #[serde(default)]
    pub exclude_paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_tags: Vec<String>,
}

impl Trigger {
    /// A filter on branch pushes.
    pub fn on_branches(source_action_name: &str, branches: Vec<String>) -> Self {
        Self {
            source_action_name: source_action_name.to_string(),
            branches,
            exclude_branches: Vec::new(),
            include_paths: Vec::new(),
            exclude_paths: Vec::new(),
            tags: Vec::new(),
            exclude_tags: Vec::new(),
        }
    }

    fn on_tags(&self) -> bool {
        !self.tags.is_empty() || !self.exclude_tags.is_empty()
    }
}

/// A V2 pipeline variable: every execution resolves it, from the value the
/// start gives or from its default. Its value is plain text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Variable {
    pub name: String,
    pub default_value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PipelineInputs {
    pub name_prefix: String,
    /// Chosen by `check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_name: Option<String>,
    pub role_arn: String,
    /// Artifact stores by region. With one region only, the pipeline is
    /// declared with `artifactStore` (no region); with more, with
    /// `artifactStores` keyed by region.
    pub artifact_stores: BTreeMap<String, ArtifactStore>,
    pub stages: Vec<Stage>,
    pub triggers: Vec<Trigger>,
    /// Always empty: an input so that refresh shows pull-request triggers
    /// added outside Pulumi, which no input declares.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pull_request_triggers: Vec<Trigger>,
    /// Pipeline-level variables, each with its default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<Variable>,
    /// QUEUED, SUPERSEDED or PARALLEL.
    pub execution_mode: String,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PipelineOutputs {
    pub arn: String,
    /// The pipeline in the AWS console.
    pub url: String,
}

const EXECUTION_MODES: &[&str] = &["QUEUED", "SUPERSEDED", "PARALLEL"];
const CATEGORIES: &[&str] = &[
    "Source", "Build", "Test", "Deploy", "Approval", "Invoke", "Compute",
];
const OWNERS: &[&str] = &["AWS", "ThirdParty", "Custom"];
const SOURCE_PROVIDER: &str = "CodeStarSourceConnection";
/// CodePipeline's limits on trigger filters.
const MAX_FILTER_PATTERNS: usize = 8;
/// CodePipeline's limits on pipeline variables.
pub const MAX_VARIABLES: usize = 50;
pub const MAX_VARIABLE_NAME: usize = 128;
pub const MAX_VARIABLE_VALUE: usize = 1000;
pub const MAX_VARIABLE_DESCRIPTION: usize = 200;
const MAX_PUSH_FILTERS: usize = 3;

/// The pipeline in the AWS console.
pub fn console_url(region: &str, name: &str) -> String {
    format!("https://{region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/{name}/view?region={region}")
}

/// Stage, action and namespace names: 1 to 100 of `allowed`.
fn check_label(failures: &mut Failures, property: &str, value: &str, allowed: &str, what: &str) {
    let valid = !value.is_empty()
        && value.chars().count() <= 100
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || allowed.contains(c));
    if !is_unknown(value) && !valid {
        failures.push(
            property,
            format!(
                "`{value}` is not a valid {what}; use 1 to 100 of A-Z a-z 0-9 {}",
                allowed
                    .chars()
                    .map(String::from)
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        );
    }
}

fn check_stores(
    ctx: &CheckContext<'_>,
    stores: &BTreeMap<String, ArtifactStore>,
    failures: &mut Failures,
) {
    if stores.is_empty() {
        failures.push(
            "artifactStores",
            "give one artifact store (bucket and KMS key) per region, keyed by region",
        );
    }
    if let Some(aws) = ctx.aws {
        if !stores.is_empty() && !stores.contains_key(&aws.region) {
            failures.push(
                "artifactStores",
                format!(
                    "the pipeline runs in {}, which has no artifact store; add one keyed `{}`",
                    aws.region, aws.region
                ),
            );
        }
    }
    for (region, store) in stores {
        let path = format!("artifactStores.{region}");
        if !is_region(region) {
            failures.push(
                &path,
                format!("`{region}` is not an AWS region; key stores by region, e.g. eu-west-1"),
            );
        }
        let bucket = &store.bucket_name;
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-".contains(c));
        if !is_unknown(bucket) && !valid_bucket {
            failures.push(
                format!("{path}.bucketName"),
                format!("`{bucket}` is not an S3 bucket name"),
            );
        }
        let key_property = format!("{path}.kmsKeyArn");
        match check_kms_key_arn(ctx, &key_property, &store.kms_key_arn) {
            Some(failure) => failures.extend([failure]),
            None => {
                // Artifacts in a region can only be encrypted with a key there.
                if let Ok(arn) = store.kms_key_arn.parse::<Arn>() {
                    if &arn.region != region {
                        failures.push(
                            key_property,
                            format!("the key is in region {}, but this store is in {region}; use a key in {region}", arn.region),
                        );
                    }
                }
            }
        }
    }
}

fn check_source(
    ctx: &CheckContext<'_>,
    path: &str,
    action: &Action,
    region: Option<&str>,
    failures: &mut Failures,
) {
    if action.provider == "GitHub" || action.owner == "ThirdParty" {
        failures.push(
            format!("{path}.provider"),
            "GitHub version 1 (ThirdParty) sources authenticate with OAuth tokens; use owner AWS, provider CodeStarSourceConnection and a CodeConnections connection in configuration.ConnectionArn",
        );
        return;
    }
    if action.owner != "AWS" {
        failures.push(
            format!("{path}.owner"),
            "source actions must be owned by AWS",
        );
    }
    if action.provider != SOURCE_PROVIDER {
        failures.push(
            format!("{path}.provider"),
            format!("`{}` is not accepted; sources come through a connection: use provider {SOURCE_PROVIDER}", action.provider),
        );
        return;
    }
    let config = |key: &str| action.configuration.get(key).map(String::as_str);
    match config("ConnectionArn") {
        None => failures.push(
            format!("{path}.configuration.ConnectionArn"),
            "set the ARN of the connection to the repository",
        ),
        Some(arn) => {
            let property = format!("{path}.configuration.ConnectionArn");
            let example = "arn:aws:codeconnections:eu-west-1:123456789012:connection/0a1b2c3d-...";
            let services = ["codestar-connections", "codeconnections"];
            match check_exact_arn(
                ctx,
                &property,
                arn,
                &services,
                "connection/",
                example,
                false,
            ) {
                Some(failure) => failures.extend([failure]),
                None => {
                    // A connection serves the region it was created in.
                    if let (Ok(parsed), Some(region)) = (arn.parse::<Arn>(), region) {
                        if parsed.region != region {
                            failures.push(
                                property,
                                format!("the connection is in region {}, but the action runs in {region}; use a connection in {region}", parsed.region),
                            );
                        }
                    }
                }
            }
        }
    }
    match config("FullRepositoryId") {
        Some(id) if is_unknown(id) => {}
        Some(id) if id.split('/').count() >= 2 && id.split('/').all(|p| !p.is_empty()) => {}
        _ => failures.push(
            format!("{path}.configuration.FullRepositoryId"),
            "set the full repository id, `owner/repo`",
        ),
    }
    match config("BranchName") {
        None => failures.push(
            format!("{path}.configuration.BranchName"),
            "set the branch the source reads",
        ),
        Some(branch) => {
            if let Err(reason) = check_branch(branch) {
                failures.push(format!("{path}.configuration.BranchName"), reason);
            }
        }
    }
}

/// Checks one action; `home` is the provider's region once known.
fn check_action(
    ctx: &CheckContext<'_>,
    path: &str,
    action: &Action,
    stores: &BTreeMap<String, ArtifactStore>,
    home: Option<&str>,
    failures: &mut Failures,
) {
    check_label(
        failures,
        &format!("{path}.name"),
        &action.name,
        ".@_-",
        "action name",
    );
    if !CATEGORIES.contains(&action.category.as_str()) {
        failures.push(
            format!("{path}.category"),
            format!(
                "`{}` is not an action category; use one of {CATEGORIES:?}",
                action.category
            ),
        );
    }
    if !OWNERS.contains(&action.owner.as_str()) {
        failures.push(
            format!("{path}.owner"),
            format!(
                "`{}` is not an action owner; use one of {OWNERS:?}",
                action.owner
            ),
        );
    }
    if action.provider.is_empty() || action.provider.len() > 35 {
        failures.push(
            format!("{path}.provider"),
            "give the action provider, e.g. CodeBuild",
        );
    }
    if action.version.is_empty() || action.version.len() > 9 {
        failures.push(
            format!("{path}.version"),
            "give the action type version, e.g. 1",
        );
    }
    if !(1..=999).contains(&action.run_order) {
        failures.push(
            format!("{path}.runOrder"),
            format!("{} is out of range; use 1 to 999", action.run_order),
        );
    }
    if let Some(key) = action
        .configuration
        .keys()
        .find(|k| k.eq_ignore_ascii_case("OAuthToken"))
    {
        failures.push(
            format!("{path}.configuration.{key}"),
            "OAuth tokens are not accepted; reach the repository through a CodeConnections connection",
        );
    }
    let region = match &action.region {
        Some(region) if is_unknown(region) => None,
        Some(region) => {
            if !is_region(region) {
                failures.push(
                    format!("{path}.region"),
                    format!("`{region}` is not an AWS region; use a name such as eu-west-1"),
                );
            } else if !stores.contains_key(region) {
                failures.push(
                    format!("{path}.region"),
                    format!("the action runs in {region}, which has no artifact store; add one to artifactStores keyed `{region}`"),
                );
            }
            Some(region.as_str())
        }
        None => home,
    };
    if action.category == "Source" {
        check_source(ctx, path, action, region, failures);
    }
    let manual_approval = action.category == "Approval" && action.provider == "Manual";
    match action.timeout_in_minutes {
        Some(minutes) if manual_approval => {
            let (min, max) = APPROVAL_TIMEOUT;
            if !(min..=max).contains(&minutes) {
                failures.push(
                    format!("{path}.timeoutInMinutes"),
                    format!("{minutes} is out of range; use {min} to {max} minutes"),
                );
            }
        }
        None if manual_approval => failures.push(
            format!("{path}.timeoutInMinutes"),
            format!(
                "approvals must be time-bound; set {} to {} minutes",
                APPROVAL_TIMEOUT.0, APPROVAL_TIMEOUT.1
            ),
        ),
        Some(_) => failures.push(
            format!("{path}.timeoutInMinutes"),
            "only manual approvals take a timeout; remove it",
        ),
        None => {}
    }
    if let Some(namespace) = &action.namespace {
        check_label(
            failures,
            &format!("{path}.namespace"),
            namespace,
            "@_-",
            "variable namespace",
        );
    }
    for (index, artifact) in action
        .input_artifacts
        .iter()
        .chain(&action.output_artifacts)
        .enumerate()
    {
        let property = if index < action.input_artifacts.len() {
            format!("{path}.inputArtifacts[{index}]")
        } else {
            format!(
                "{path}.outputArtifacts[{}]",
                index - action.input_artifacts.len()
            )
        };
        check_label(failures, &property, artifact, "_-", "artifact name");
    }
}

fn check_stages(
    ctx: &CheckContext<'_>,
    stages: &[Stage],
    stores: &BTreeMap<String, ArtifactStore>,
    home: Option<&str>,
    failures: &mut Failures,
) {
    if stages.len() < 2 {
        failures.push(
            "stages",
            "a pipeline needs at least 2 stages: the Source stage, then the stages that use it",
        );
    }
    let mut stage_names = BTreeSet::new();
    // Artifacts produced by earlier stages, and every output name so far.
    let mut produced = BTreeSet::new();
    let mut outputs = BTreeSet::new();
    for (index, stage) in stages.iter().enumerate() {
        let path = format!("stages[{index}]");
        check_label(
            failures,
            &format!("{path}.name"),
            &stage.name,
            ".@_-",
            "stage name",
        );
        if !stage_names.insert(stage.name.as_str()) {
            failures.push(
                format!("{path}.name"),
                format!(
                    "stage name `{}` is used twice; give each stage a unique name",
                    stage.name
                ),
            );
        }
        stage_conditions::check_conditions(
            failures,
            &path,
            Moment::BeforeEntry,
            &stage.before_entry,
        );
        stage_conditions::check_conditions(failures, &path, Moment::OnSuccess, &stage.on_success);
        if stage.actions.is_empty() {
            failures.push(
                format!("{path}.actions"),
                "a stage needs at least one action",
            );
        }
        let mut action_names = BTreeSet::new();
        for (position, action) in stage.actions.iter().enumerate() {
            let action_path = format!("{path}.actions[{position}]");
            if !action_names.insert(action.name.as_str()) {
                failures.push(
                    format!("{action_path}.name"),
                    format!("action name `{}` is used twice in stage {}; give each action a unique name", action.name, stage.name),
                );
            }
            let is_source = action.category == "Source";
            if index == 0 && !is_source {
                failures.push(
                    format!("{action_path}.category"),
                    "the first stage holds only Source actions; move this action to a later stage",
                );
            }
            if index > 0 && is_source {
                failures.push(
                    format!("{action_path}.category"),
                    "Source actions belong in the first stage only",
                );
            }
            check_action(ctx, &action_path, action, stores, home, failures);
            for (k, input) in action.input_artifacts.iter().enumerate() {
                let earlier_in_stage = stage.actions.iter().any(|other| {
                    other.run_order < action.run_order && other.output_artifacts.contains(input)
                });
                if !is_unknown(input) && !produced.contains(input.as_str()) && !earlier_in_stage {
                    failures.push(
                        format!("{action_path}.inputArtifacts[{k}]"),
                        format!("no earlier action produces `{input}`; name an output artifact of an earlier action"),
                    );
                }
            }
            for (k, output) in action.output_artifacts.iter().enumerate() {
                if !outputs.insert(output.as_str()) {
                    failures.push(
                        format!("{action_path}.outputArtifacts[{k}]"),
                        format!(
                            "`{output}` is produced twice; give each output artifact a unique name"
                        ),
                    );
                }
            }
        }
        produced.extend(
            stage
                .actions
                .iter()
                .flat_map(|a| a.output_artifacts.iter().map(String::as_str)),
        );
    }
}

fn check_triggers(stages: &[Stage], triggers: &[Trigger], failures: &mut Failures) {
    if triggers.is_empty() {
        failures.push(
            "triggers",
            "a pipeline must start on push; add a trigger naming its Source action and branch",
        );
    }
    let sources: BTreeSet<&str> = stages
        .iter()
        .flat_map(|s| &s.actions)
        .filter(|a| a.category == "Source")
        .map(|a| a.name.as_str())
        .collect();
    let mut per_action: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, trigger) in triggers.iter().enumerate() {
        let path = format!("triggers[{index}]");
        let action = trigger.source_action_name.as_str();
        if !sources.contains(action) {
            failures.push(
                format!("{path}.sourceActionName"),
                format!("`{action}` is not a Source action of this pipeline; name one"),
            );
        }
        let count = per_action.entry(action).or_default();
        *count += 1;
        if *count == MAX_PUSH_FILTERS + 1 {
            failures.push(
                format!("{path}.sourceActionName"),
                format!("CodePipeline accepts at most {MAX_PUSH_FILTERS} push filters per source action; merge the triggers of `{action}`"),
            );
        }
        let on_branches = !trigger.branches.is_empty()
            || !trigger.exclude_branches.is_empty()
            || !trigger.include_paths.is_empty()
            || !trigger.exclude_paths.is_empty();
        if trigger.on_tags() && on_branches {
            failures.push(
                format!("{path}.tags"),
                "a filter is on branches (and their paths) or on tags, not both; give the tags their own trigger",
            );
        } else if trigger.on_tags() && trigger.tags.is_empty() {
            failures.push(
                format!("{path}.tags"),
                "give at least one tag pattern whose pushes start the pipeline",
            );
        } else if !trigger.on_tags() && trigger.branches.is_empty() {
            failures.push(
                format!("{path}.branches"),
                "give at least one branch whose pushes start the pipeline",
            );
        }
        for (property, patterns) in [
            ("branches", &trigger.branches),
            ("excludeBranches", &trigger.exclude_branches),
            ("includePaths", &trigger.include_paths),
            ("excludePaths", &trigger.exclude_paths),
            ("tags", &trigger.tags),
            ("excludeTags", &trigger.exclude_tags),
        ] {
            if patterns.len() > MAX_FILTER_PATTERNS {
                failures.push(
                    format!("{path}.{property}"),
                    format!("CodePipeline accepts at most {MAX_FILTER_PATTERNS} patterns"),
                );
            }
            for (k, pattern) in patterns.iter().enumerate() {
                if pattern.trim().is_empty() || pattern.len() > 255 {
                    failures.push(
                        format!("{path}.{property}[{k}]"),
                        "use a glob of 1 to 255 characters, e.g. `main` or `src/**`",
                    );
                }
            }
        }
    }
}

/// Variables as CodePipeline accepts them, and never a credential: whoever
/// may start the pipeline reads and sets them in plain text.
fn check_variables(variables: &[Variable], failures: &mut Failures) {
    if variables.len() > MAX_VARIABLES {
        failures.push(
            "variables",
            format!("CodePipeline accepts at most {MAX_VARIABLES} variables"),
        );
    }
    let mut seen = BTreeSet::new();
    for (index, variable) in variables.iter().enumerate() {
        let path = format!("variables[{index}]");
        let name = &variable.name;
        let valid = !name.is_empty()
            && name.len() <= MAX_VARIABLE_NAME
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "@-_".contains(c));
        if !is_unknown(name) && !valid {
            failures.push(
                format!("{path}.name"),
                format!("`{name}` is not a variable name; use 1 to {MAX_VARIABLE_NAME} of A-Z a-z 0-9 @ - _"),
            );
        }
        if !seen.insert(name.as_str()) {
            failures.push(
                format!("{path}.name"),
                format!("`{name}` is declared twice; declare each variable once"),
            );
        }
        let value = &variable.default_value;
        if value.is_empty() || value.chars().count() > MAX_VARIABLE_VALUE {
            failures.push(
                format!("{path}.defaultValue"),
                format!("use 1 to {MAX_VARIABLE_VALUE} characters: executions started by a push or the schedule take the default"),
            );
        }
        // Never echo the value: it may be a credential.
        if let Some(problem) = credentials::plaintext_variable_problem(name, value) {
            failures.push(
                format!("{path}.defaultValue"),
                format!("{problem}, and pipeline variables are plain text to whoever can start or read the pipeline; pass credentials to builds by Secrets Manager reference"),
            );
        }
        if variable
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_VARIABLE_DESCRIPTION)
        {
            failures.push(
                format!("{path}.description"),
                format!("use at most {MAX_VARIABLE_DESCRIPTION} characters"),
            );
        }
    }
}

/// Orders triggers so those of one source action are adjacent, as
/// CodePipeline declares them (one trigger, several push filters).
fn group_triggers(triggers: Vec<Trigger>) -> Vec<Trigger> {
    let mut order: Vec<String> = Vec::new();
    for trigger in &triggers {
        if !order.contains(&trigger.source_action_name) {
            order.push(trigger.source_action_name.clone());
        }
    }
    let mut grouped = triggers;
    grouped.sort_by_key(|t| order.iter().position(|name| *name == t.source_action_name));
    grouped
}

fn artifact_store(store: &ArtifactStore) -> Result<AwsArtifactStore, BuildError> {
    AwsArtifactStore::builder()
        .r#type(ArtifactStoreType::S3)
        .location(&store.bucket_name)
        .encryption_key(
            EncryptionKey::builder()
                .id(&store.kms_key_arn)
                .r#type(EncryptionKeyType::Kms)
                .build()?,
        )
        .build()
}

fn action_declaration(action: &Action, home_region: &str) -> Result<ActionDeclaration, BuildError> {
    let type_id = ActionTypeId::builder()
        .category(ActionCategory::from(action.category.as_str()))
        .owner(ActionOwner::from(action.owner.as_str()))
        .provider(&action.provider)
        .version(&action.version)
        .build()?;
    let configuration: HashMap<String, String> = action.configuration.clone().into_iter().collect();
    ActionDeclaration::builder()
        .name(&action.name)
        .action_type_id(type_id)
        .run_order(action.run_order as i32)
        .set_configuration((!configuration.is_empty()).then_some(configuration))
        .set_input_artifacts(Some(
            action
                .input_artifacts
                .iter()
                .map(|a| InputArtifact::builder().name(a).build())
                .collect::<Result<_, _>>()?,
        ))
        .set_output_artifacts(Some(
            action
                .output_artifacts
                .iter()
                .map(|a| OutputArtifact::builder().name(a).build())
                .collect::<Result<_, _>>()?,
        ))
        .set_region(action.region.clone().filter(|r| r != home_region))
        .set_namespace(action.namespace.clone())
        .set_timeout_in_minutes(action.timeout_in_minutes.map(|m| m as i32))
        .build()
}

fn trigger_declarations(
    triggers: &[Trigger],
) -> Result<Vec<PipelineTriggerDeclaration>, BuildError> {
    // An empty list is "no criterion", never "match nothing".
    let listed = |patterns: &[String]| (!patterns.is_empty()).then(|| patterns.to_vec());
    let mut by_action: Vec<(&str, Vec<GitPushFilter>)> = Vec::new();
    for trigger in triggers {
        let filter = if trigger.on_tags() {
            GitPushFilter::builder()
                .tags(
                    GitTagFilterCriteria::builder()
                        .set_includes(listed(&trigger.tags))
                        .set_excludes(listed(&trigger.exclude_tags))
                        .build(),
                )
                .build()
        } else {
            let file_paths = (!trigger.include_paths.is_empty()
                || !trigger.exclude_paths.is_empty())
            .then(|| {
                GitFilePathFilterCriteria::builder()
                    .set_includes(listed(&trigger.include_paths))
                    .set_excludes(listed(&trigger.exclude_paths))
                    .build()
            });
            GitPushFilter::builder()
                .branches(
                    GitBranchFilterCriteria::builder()
                        .set_includes(Some(trigger.branches.clone()))
                        .set_excludes(listed(&trigger.exclude_branches))
                        .build(),
                )
                .set_file_paths(file_paths)
                .build()
        };
        match by_action
            .iter_mut()
            .find(|(name, _)| *name == trigger.source_action_name)
        {
            Some((_, filters)) => filters.push(filter),
            None => by_action.push((&trigger.source_action_name, vec![filter])),
        }
    }
    by_action
        .into_iter()
        .map(|(action, filters)| {
            PipelineTriggerDeclaration::builder()
                .provider_type(PipelineTriggerProviderType::CodeStarSourceConnection)
                .git_configuration(
                    GitConfiguration::builder()
                        .source_action_name(action)
                        .set_push(Some(filters))
                        .build()?,
                )
                .build()
        })
        .collect()
}

/// The V2 declaration of a pipeline. One region: `artifactStore` without a
/// region; several: `artifactStores` keyed by region. Actions carry a
/// region only when it is not the pipeline's.
pub fn declaration(
    name: &str,
    home_region: &str,
    inputs: &PipelineInputs,
    version: Option<i32>,
) -> Result<PipelineDeclaration, BuildError> {
    let stores = inputs
        .artifact_stores
        .iter()
        .map(|(region, store)| Ok((region.clone(), artifact_store(store)?)))
        .collect::<Result<HashMap<_, _>, BuildError>>()?;
    let builder = PipelineDeclaration::builder()
        .name(name)
        .role_arn(&inputs.role_arn)
        .pipeline_type(PipelineType::V2)
        .execution_mode(ExecutionMode::from(inputs.execution_mode.as_str()))
        .set_version(version);
    let builder = if stores.len() == 1 {
        builder.set_artifact_store(stores.into_values().next())
    } else {
        builder.set_artifact_stores(Some(stores))
    };
    let stages = inputs
        .stages
        .iter()
        .map(|stage| {
            StageDeclaration::builder()
                .name(&stage.name)
                .set_actions(Some(
                    stage
                        .actions
                        .iter()
                        .map(|a| action_declaration(a, home_region))
                        .collect::<Result<_, _>>()?,
                ))
                .set_on_failure(stage.rollback_on_failure.then(|| {
                    FailureConditions::builder()
                        .result(FailureResult::Rollback)
                        .build()
                }))
                .set_before_entry(stage_conditions::before_entry(&stage.before_entry)?)
                .set_on_success(stage_conditions::on_success(&stage.on_success)?)
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let variables = inputs
        .variables
        .iter()
        .map(|v| {
            PipelineVariableDeclaration::builder()
                .name(&v.name)
                .default_value(&v.default_value)
                .set_description(v.description.clone())
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    builder
        .set_stages(Some(stages))
        .set_triggers(Some(trigger_declarations(&inputs.triggers)?))
        .set_variables((!variables.is_empty()).then_some(variables))
        .build()
}

fn store_inputs(store: &AwsArtifactStore) -> ArtifactStore {
    ArtifactStore {
        bucket_name: store.location().to_string(),
        kms_key_arn: store
            .encryption_key()
            .map(EncryptionKey::id)
            .unwrap_or_default()
            .to_string(),
    }
}

fn action_inputs(action: &ActionDeclaration, home_region: &str) -> Action {
    let type_id = action.action_type_id();
    Action {
        name: action.name().to_string(),
        category: type_id
            .map(|t| t.category().as_str())
            .unwrap_or_default()
            .to_string(),
        owner: type_id
            .map(|t| t.owner().as_str())
            .unwrap_or_default()
            .to_string(),
        provider: type_id
            .map(ActionTypeId::provider)
            .unwrap_or_default()
            .to_string(),
        version: type_id
            .map(ActionTypeId::version)
            .unwrap_or_default()
            .to_string(),
        run_order: action.run_order().map_or(1, |r| r.max(0) as u32),
        configuration: action
            .configuration()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        input_artifacts: action
            .input_artifacts()
            .iter()
            .map(|a| a.name().to_string())
            .collect(),
        output_artifacts: action
            .output_artifacts()
            .iter()
            .map(|a| a.name().to_string())
            .collect(),
        region: action
            .region()
            .filter(|r| *r != home_region)
            .map(str::to_string),
        namespace: action.namespace().map(str::to_string),
        timeout_in_minutes: action.timeout_in_minutes().map(|m| m.max(0) as u32),
    }
}

/// A live push or pull-request filter as a trigger input.
fn trigger_inputs(
    source_action_name: &str,
    branches: Option<&GitBranchFilterCriteria>,
    file_paths: Option<&GitFilePathFilterCriteria>,
    tags: Option<&GitTagFilterCriteria>,
) -> Trigger {
    Trigger {
        source_action_name: source_action_name.to_string(),
        branches: branches.map(|b| b.includes().to_vec()).unwrap_or_default(),
        exclude_branches: branches.map(|b| b.excludes().to_vec()).unwrap_or_default(),
        include_paths: file_paths
            .map(|f| f.includes().to_vec())
            .unwrap_or_default(),
        exclude_paths: file_paths
            .map(|f| f.excludes().to_vec())
            .unwrap_or_default(),
        tags: tags.map(|t| t.includes().to_vec()).unwrap_or_default(),
        exclude_tags: tags.map(|t| t.excludes().to_vec()).unwrap_or_default(),
    }
}

/// The inputs a live pipeline corresponds to: the inverse of
/// [`declaration`], so drift in any part of it shows on refresh.
pub fn live_inputs(
    pipeline: &PipelineDeclaration,
    home_region: &str,
    inputs: &PipelineInputs,
) -> PipelineInputs {
    let artifact_stores = match (pipeline.artifact_stores(), pipeline.artifact_store()) {
        (Some(stores), _) if !stores.is_empty() => stores
            .iter()
            .map(|(region, store)| (region.clone(), store_inputs(store)))
            .collect(),
        (_, Some(store)) => BTreeMap::from([(home_region.to_string(), store_inputs(store))]),
        _ => BTreeMap::new(),
    };
    let stages = pipeline
        .stages()
        .iter()
        .map(|stage| Stage {
            name: stage.name().to_string(),
            actions: stage
                .actions()
                .iter()
                .map(|a| action_inputs(a, home_region))
                .collect(),
            rollback_on_failure: stage
                .on_failure()
                .and_then(FailureConditions::result)
                .is_some_and(|r| *r == FailureResult::Rollback),
            before_entry: stage
                .before_entry()
                .map(|c| stage_conditions::live_conditions(c.conditions()))
                .unwrap_or_default(),
            on_success: stage
                .on_success()
                .map(|c| stage_conditions::live_conditions(c.conditions()))
                .unwrap_or_default(),
        })
        .collect();
    let git = || {
        pipeline
            .triggers()
            .iter()
            .filter_map(PipelineTriggerDeclaration::git_configuration)
    };
    let triggers = git()
        .flat_map(|git| {
            git.push().iter().map(|push| {
                trigger_inputs(
                    git.source_action_name(),
                    push.branches(),
                    push.file_paths(),
                    push.tags(),
                )
            })
        })
        .collect();
    let pull_request_triggers = git()
        .flat_map(|git| {
            git.pull_request().iter().map(|pull| {
                trigger_inputs(
                    git.source_action_name(),
                    pull.branches(),
                    pull.file_paths(),
                    None,
                )
            })
        })
        .collect();
    PipelineInputs {
        name_prefix: inputs.name_prefix.clone(),
        pipeline_name: Some(pipeline.name().to_string()),
        role_arn: pipeline.role_arn().to_string(),
        artifact_stores,
        stages,
        triggers,
        pull_request_triggers,
        variables: pipeline
            .variables()
            .iter()
            .map(|v| Variable {
                name: v.name().to_string(),
                default_value: v.default_value().unwrap_or_default().to_string(),
                description: v.description().map(str::to_string),
            })
            .collect(),
        // CodePipeline runs executions SUPERSEDED when no mode is declared.
        execution_mode: pipeline
            .execution_mode()
            .map_or("SUPERSEDED", ExecutionMode::as_str)
            .to_string(),
        tags: inputs.tags.clone(),
    }
}

/// A just-created pipeline role may not yet be assumable by CodePipeline.
const ROLE_PROPAGATION: [Transient; 1] = [Transient::Propagation {
    code: "InvalidStructureException",
    message_contains: "not authorized to perform AssumeRole",
}];

/// CodePipeline's answers for a pipeline that does not exist.
const GONE: &[&str] = &["PipelineNotFoundException", "ResourceNotFoundException"];

fn outputs(ctx: &Op<'_>, name: &str, arn: Option<&str>) -> PipelineOutputs {
    PipelineOutputs {
        arn: arn.map_or_else(|| ctx.arns().codepipeline(name), str::to_string),
        url: console_url(&ctx.region, name),
    }
}

fn aws_tags(tags: &Tags) -> Result<Vec<Tag>, ResourceError> {
    sdk_tags(tags, |key, value| {
        Tag::builder().key(key).value(value).build()
    })
}

#[async_trait]
impl CustomResource for Pipeline {
    const TYPE: &'static str = "securepipeline:aws:Pipeline";
    type Inputs = PipelineInputs;
    type Outputs = PipelineOutputs;
    const OUTPUT_KEYS: &'static [&'static str] = &["arn", "url"];
    const REPLACE_KEYS: &'static [&'static str] = &[];
    const NAME: AutoName = AutoName::new(
        "pipelineName",
        &naming::PIPELINE,
        "pipeline",
        NameScope::Region,
    );
    const PLACEMENT: Placement = Placement::Regional;

    fn validate(
        ctx: &CheckContext<'_>,
        _olds: Option<&Self::Inputs>,
        news: &mut Self::Inputs,
        failures: &mut Failures,
    ) {
        failures.extend(check_arn(
            ctx,
            "roleArn",
            &news.role_arn,
            &["iam"],
            "role/",
            "arn:aws:iam::123456789012:role/pipeline",
            false,
        ));
        let home = ctx.aws.map(|aws| aws.region.as_str());
        check_stores(ctx, &news.artifact_stores, failures);
        check_stages(ctx, &news.stages, &news.artifact_stores, home, failures);
        check_triggers(&news.stages, &news.triggers, failures);
        if !news.pull_request_triggers.is_empty() {
            failures.push(
                "pullRequestTriggers",
                "pull requests cannot start the pipeline: their code would run with the build's role and secrets before anyone reviewed it; remove the setting (the pipeline starts on push)",
            );
        }
        check_variables(&news.variables, failures);
        let mode = &news.execution_mode;
        if !is_unknown(mode) && !EXECUTION_MODES.contains(&mode.as_str()) {
            failures.push(
                "executionMode",
                format!("`{mode}` is not an execution mode; use one of {EXECUTION_MODES:?}"),
            );
        }
        // Actions in the pipeline's own region are declared without one, so
        // that what is read back compares equal.
        if let Some(home) = home {
            for action in news.stages.iter_mut().flat_map(|s| s.actions.iter_mut()) {
                if action.region.as_deref() == Some(home) {
                    action.region = None;
                }
            }
        }
        news.triggers = group_triggers(std::mem::take(&mut news.triggers));
    }

    async fn create_resource(
        ctx: &Op<'_>,
        inputs: &Self::Inputs,
        token: &CreateToken,
    ) -> Result<(String, Self::Outputs), ResourceError> {
        let codepipeline = &ctx.clients().codepipeline;
        let name = ctx.name()?;
        let pipeline = declaration(name, &ctx.region, inputs, None)
            .map_err(|err| ResourceError::failed(format!("describing pipeline {name}"), err))?;
        let tags = aws_tags(&token.mark(&inputs.tags))?;
        ctx.create_once(
            format!("creating pipeline {name}"),
            name,
            &ROLE_PROPAGATION,
            &["PipelineNameInUseException"],
            || {
                codepipeline
                    .create_pipeline()
                    .pipeline(pipeline.clone())
                    .set_tags(Some(tags.clone()))
                    .customize()
                    .config_override(
                        aws_sdk_codepipeline::config::Builder::default().retry_config(once()),
                    )
                    .send()
            },
            || async {
                let tags = Self::read_tags(ctx, name).await?;
                Ok(tags.filter(|tags| token.is_on(tags)).map(drop))
            },
        )
        .await?;
        Ok((name.to_string(), outputs(ctx, name, None)))
    }

    async fn read_resource(
        ctx: &Op<'_>,
        id: &str,
        inputs: &Self::Inputs,
    ) -> Result<Option<(Self::Inputs, Self::Outputs)>, ResourceError> {
        let Some(found) = get_pipeline(ctx, id).await? else {
            return Ok(None);
        };
        let Some(pipeline) = found.pipeline() else {
            return Ok(None);
        };
        let outputs = outputs(ctx, id, found.metadata().and_then(|m| m.pipeline_arn()));
        Ok(Some((live_inputs(pipeline, &ctx.region, inputs), outputs)))
    }

    async fn update_resource(
        ctx: &Op<'_>,
        id: &str,
        olds: &Self::Inputs,
        news: &Self::Inputs,
        outputs: &Self::Outputs,
    ) -> Result<Self::Outputs, ResourceError> {
        let codepipeline = &ctx.clients().codepipeline;
        let untagged = |inputs: &PipelineInputs| PipelineInputs {
            tags: Tags::new(),
            ..inputs.clone()
        };
        if untagged(olds) != untagged(news) {
            // UpdatePipeline takes the whole declaration at the live version.
            let version = get_pipeline(ctx, id)
                .await?
                .ok_or_else(|| {
                    ResourceError::Failed(format!(
                        "pipeline {id} no longer exists; run `pulumi refresh`"
                    ))
                })?
                .pipeline()
                .and_then(PipelineDeclaration::version);
            let pipeline = declaration(id, &ctx.region, news, version)
                .map_err(|err| ResourceError::failed(format!("describing pipeline {id}"), err))?;
            ctx.call_waiting(format!("updating pipeline {id}"), &ROLE_PROPAGATION, || {
                codepipeline
                    .update_pipeline()
                    .pipeline(pipeline.clone())
                    .send()
            })
            .await?;
        }
        Ok(outputs.clone())
    }

    async fn delete_resource(
        ctx: &Op<'_>,
        id: &str,
        _inputs: &Self::Inputs,
        _outputs: &Self::Outputs,
    ) -> Result<(), ResourceError> {
        let codepipeline = &ctx.clients().codepipeline;
        ctx.delete(format!("deleting pipeline {id}"), GONE, || {
            codepipeline.delete_pipeline().name(id).send()
        })
        .await?;
        Ok(())
    }

    async fn read_tags(ctx: &Op<'_>, id: &str) -> Result<Option<Tags>, AwsFailure> {
        let codepipeline = &ctx.clients().codepipeline;
        let arn = ctx.arns().codepipeline(id);
        let listed = ctx
            .find(format!("reading tags of pipeline {id}"), GONE, || {
                codepipeline
                    .list_tags_for_resource()
                    .resource_arn(&arn)
                    .into_paginator()
                    .items()
                    .send()
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(listed.map(|tags| from_sdk_tags(&tags, |tag| (tag.key(), tag.value()))))
    }

    async fn write_tags(ctx: &Op<'_>, id: &str, change: &TagChange) -> Result<(), ResourceError> {
        let codepipeline = &ctx.clients().codepipeline;
        let arn = ctx.arns().codepipeline(id);
        let arn = &arn;
        let set = aws_tags(&change.set)?;
        change
            .by_key(
                |keys| {
                    ctx.call(format!("untagging pipeline {id}"), move || {
                        codepipeline
                            .untag_resource()
                            .resource_arn(arn)
                            .set_tag_keys(Some(keys.clone()))
                            .send()
                    })
                },
                |_| {
                    ctx.call(format!("tagging pipeline {id}"), || {
                        codepipeline
                            .tag_resource()
                            .resource_arn(arn)
                            .set_tags(Some(set.clone()))
                            .send()
                    })
                },
            )
            .await?;
        Ok(())
    }
}

/// The pipeline as CodePipeline declares it; `None` when it does not exist.
async fn get_pipeline(
    ctx: &Op<'_>,
    name: &str,
) -> Result<Option<aws_sdk_codepipeline::operation::get_pipeline::GetPipelineOutput>, AwsFailure> {
    let codepipeline = &ctx.clients().codepipeline;
    ctx.find(format!("reading pipeline {name}"), GONE, || {
        codepipeline.get_pipeline().name(name).send()
    })
    .await
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::aws::{AwsContext, Endpoints};
    use crate::resource::{CheckFailure, Lifecycle};
    use crate::tags;
    use aws_sdk_codepipeline::types::{GitPullRequestEventType, GitPullRequestFilter};

    const HOME: &str = "eu-west-1";
    const KEY: &str = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const OTHER_KEY: &str =
        "arn:aws:kms:us-east-1:123456789012:key/9876abcd-12ab-34cd-56ef-1234567890ab";
    const CONNECTION: &str = "arn:aws:codeconnections:eu-west-1:123456789012:connection/0a1b2c3d";

    fn action(name: &str, category: &str, provider: &str) -> Action {
        Action {
            name: name.into(),
            category: category.into(),
            owner: "AWS".into(),
            provider: provider.into(),
            version: "1".into(),
            run_order: 1,
            configuration: BTreeMap::new(),
            input_artifacts: Vec::new(),
            output_artifacts: Vec::new(),
            region: None,
            namespace: None,
            timeout_in_minutes: None,
        }
    }

    fn source() -> Action {
        Action {
            configuration: BTreeMap::from([
                ("ConnectionArn".into(), CONNECTION.into()),
                ("FullRepositoryId".into(), "org/app".into()),
                ("BranchName".into(), "main".into()),
            ]),
            output_artifacts: vec!["SourceOutput".into()],
            namespace: Some("SourceVariables".into()),
            ..action("Source", "Source", SOURCE_PROVIDER)
        }
    }

    fn build() -> Action {
        Action {
            configuration: BTreeMap::from([("ProjectName".into(), "app-build-abcdefgh".into())]),
            input_artifacts: vec!["SourceOutput".into()],
            output_artifacts: vec!["BuildOutput".into()],
            ..action("Build", "Build", "CodeBuild")
        }
    }

    fn approval(timeout: Option<u32>) -> Action {
        Action {
            timeout_in_minutes: timeout,
            ..action("Approve", "Approval", "Manual")
        }
    }

    fn stage(name: &str, actions: Vec<Action>) -> Stage {
        Stage {
            name: name.into(),
            actions,
            rollback_on_failure: false,
            before_entry: Vec::new(),
            on_success: Vec::new(),
        }
    }

    fn store(bucket: &str, key: &str) -> ArtifactStore {
        ArtifactStore {
            bucket_name: bucket.into(),
            kms_key_arn: key.into(),
        }
    }

    pub(crate) fn inputs() -> PipelineInputs {
        PipelineInputs {
            name_prefix: "app-pipeline".into(),
            pipeline_name: None,
            role_arn: "arn:aws:iam::123456789012:role/app-pipeline-abcdefgh".into(),
            artifact_stores: BTreeMap::from([(HOME.into(), store("app-artifacts-abcdefgh", KEY))]),
            stages: vec![
                stage("Source", vec![source()]),
                stage("Build", vec![build()]),
            ],
            triggers: vec![Trigger::on_branches("Source", vec!["main".into()])],
            pull_request_triggers: Vec::new(),
            variables: Vec::new(),
            execution_mode: "QUEUED".into(),
            tags: Tags::new(),
        }
    }

    /// Deploys in us-east-1 with a manual approval that rolls back.
    fn cross_region() -> PipelineInputs {
        let mut inputs = inputs();
        inputs.artifact_stores.insert(
            "us-east-1".into(),
            store("app-artifacts-us-abcdefgh", OTHER_KEY),
        );
        let deploy = Action {
            region: Some("us-east-1".into()),
            input_artifacts: vec!["BuildOutput".into()],
            run_order: 2,
            ..action("Deploy", "Build", "CodeBuild")
        };
        inputs.stages.push(Stage {
            rollback_on_failure: true,
            ..stage("prod", vec![approval(Some(1440)), deploy])
        });
        inputs
    }

    fn aws() -> AwsContext {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        AwsContext::new(
            sdk,
            Endpoints::default(),
            "123456789012".into(),
            "aws".into(),
            HOME.into(),
            Default::default(),
        )
    }

    fn check(news: PipelineInputs) -> Result<PipelineInputs, Vec<CheckFailure>> {
        let ctx = CheckContext {
            name: "pipeline",
            random_seed: b"seed",
            aws: None,
        };
        Pipeline::check(&ctx, None, news)
    }

    fn check_with_aws(news: PipelineInputs) -> Result<PipelineInputs, Vec<CheckFailure>> {
        let aws = aws();
        let ctx = CheckContext {
            name: "pipeline",
            random_seed: b"seed",
            aws: Some(&aws),
        };
        Pipeline::check(&ctx, None, news)
    }

    fn properties(news: PipelineInputs) -> Vec<String> {
        check(news)
            .unwrap_err()
            .into_iter()
            .map(|f| f.property)
            .collect()
    }

    #[test]
    fn chooses_a_name_and_adds_managed_tags() {
        let checked = check(inputs()).unwrap();
        let name = checked.pipeline_name.clone().unwrap();
        assert!(name.starts_with("app-pipeline-"), "{name}");
        assert_eq!(checked.tags[tags::MANAGED_BY_KEY], tags::MANAGED_BY_VALUE);
        let ctx = CheckContext {
            name: "pipeline",
            random_seed: b"other",
            aws: None,
        };
        let again = Pipeline::check(&ctx, Some(&checked), inputs()).unwrap();
        assert_eq!(again.pipeline_name, checked.pipeline_name);
    }

    #[test]
    fn one_region_declares_a_single_store_without_region() {
        let declaration = declaration("p", HOME, &inputs(), None).unwrap();
        assert_eq!(*declaration.pipeline_type().unwrap(), PipelineType::V2);
        assert_eq!(declaration.execution_mode(), Some(&ExecutionMode::Queued));
        assert!(declaration.artifact_stores().is_none());
        let store = declaration.artifact_store().unwrap();
        assert_eq!(*store.r#type(), ArtifactStoreType::S3);
        assert_eq!(store.location(), "app-artifacts-abcdefgh");
        let key = store.encryption_key().unwrap();
        assert_eq!((key.id(), key.r#type()), (KEY, &EncryptionKeyType::Kms));
        assert!(declaration
            .stages()
            .iter()
            .flat_map(|s| s.actions())
            .all(|a| a.region().is_none()));
    }

    #[test]
    fn several_regions_declare_a_store_per_region() {
        let mut inputs = cross_region();
        // An action in the home region is declared without one.
        inputs.stages[1].actions[0].region = Some(HOME.into());
        let declaration = declaration("p", HOME, &inputs, Some(3)).unwrap();
        assert!(declaration.artifact_store().is_none());
        let stores = declaration.artifact_stores().unwrap();
        assert_eq!(stores.len(), 2);
        assert_eq!(
            stores["us-east-1"].encryption_key().unwrap().id(),
            OTHER_KEY
        );
        assert_eq!(declaration.version(), Some(3));
        let regions: Vec<_> = declaration
            .stages()
            .iter()
            .flat_map(|s| s.actions())
            .map(|a| a.region())
            .collect();
        assert_eq!(regions, vec![None, None, None, Some("us-east-1")]);
        let prod = &declaration.stages()[2];
        assert_eq!(
            prod.on_failure().and_then(FailureConditions::result),
            Some(&FailureResult::Rollback)
        );
        assert_eq!(prod.actions()[0].timeout_in_minutes(), Some(1440));
        assert!(declaration.stages()[0].on_failure().is_none());
    }

    #[test]
    fn triggers_are_push_filters_on_the_source_action() {
        let mut inputs = inputs();
        inputs.triggers.push(Trigger {
            exclude_branches: vec!["release/old-*".into()],
            include_paths: vec!["src/**".into()],
            ..Trigger::on_branches("Source", vec!["release/*".into()])
        });
        inputs.triggers.push(Trigger {
            tags: vec!["v*".into()],
            exclude_tags: vec!["v*-rc*".into()],
            ..Trigger::on_branches("Source", Vec::new())
        });
        let declaration = declaration("p", HOME, &inputs, None).unwrap();
        let [trigger] = declaration.triggers() else {
            panic!("one trigger per source action")
        };
        let push = trigger.git_configuration().unwrap().push();
        assert_eq!(push.len(), 3);
        assert_eq!(
            push[1].branches().unwrap().excludes(),
            ["release/old-*".to_string()]
        );
        // A tag filter carries no branch or path criterion.
        let tags = push[2].tags().unwrap();
        assert_eq!(
            (tags.includes(), tags.excludes()),
            (&["v*".to_string()][..], &["v*-rc*".to_string()][..])
        );
        assert!(push[2].branches().is_none() && push[2].file_paths().is_none());
        // And reads back as the inputs it came from.
        let live = live_inputs(&declaration, HOME, &inputs);
        assert_eq!(live.triggers, inputs.triggers);
        assert_eq!(
            *trigger.provider_type(),
            PipelineTriggerProviderType::CodeStarSourceConnection
        );
        let git = trigger.git_configuration().unwrap();
        assert_eq!(git.source_action_name(), "Source");
        let push = git.push();
        assert_eq!(push[0].branches().unwrap().includes(), ["main"]);
        assert!(push[0].file_paths().is_none());
        assert_eq!(push[1].branches().unwrap().includes(), ["release/*"]);
        let paths = push[1].file_paths().unwrap();
        assert_eq!(
            (paths.includes(), paths.excludes()),
            (&["src/**".to_string()][..], &[][..])
        );
    }

    #[test]
    fn a_live_declaration_reads_back_as_its_inputs() {
        for desired in [inputs(), cross_region()] {
            let desired = check_with_aws(desired).unwrap();
            let declaration = declaration(
                desired.pipeline_name.as_deref().unwrap(),
                HOME,
                &desired,
                Some(1),
            )
            .unwrap();
            assert_eq!(live_inputs(&declaration, HOME, &desired), desired);
        }
    }

    #[test]
    fn drift_in_the_declaration_shows() {
        let desired = check_with_aws(inputs()).unwrap();
        let mut drifted = desired.clone();
        drifted.triggers.clear();
        drifted.execution_mode = "SUPERSEDED".into();
        drifted.stages[1].rollback_on_failure = true;
        let declaration = declaration("p", HOME, &drifted, Some(2)).unwrap();
        let live = live_inputs(&declaration, HOME, &desired);
        assert!(live.triggers.is_empty());
        assert_eq!(live.execution_mode, "SUPERSEDED");
        assert!(live.stages[1].rollback_on_failure);
    }

    #[test]
    fn pull_request_triggers_and_variables_added_outside_read_as_drift() {
        let desired = check_with_aws(inputs()).unwrap();
        let mut declaration = declaration("p", HOME, &desired, Some(2)).unwrap();
        declaration.variables = Some(vec![PipelineVariableDeclaration::builder()
            .name("TARGET")
            .default_value("prod")
            .build()
            .unwrap()]);
        let git = declaration.triggers.as_mut().unwrap()[0]
            .git_configuration
            .as_mut()
            .unwrap();
        git.pull_request = Some(vec![GitPullRequestFilter::builder()
            .events(GitPullRequestEventType::Open)
            .branches(
                GitBranchFilterCriteria::builder()
                    .includes("feature/*")
                    .build(),
            )
            .build()]);
        let live = live_inputs(&declaration, HOME, &desired);
        assert_eq!(
            live.variables,
            vec![Variable {
                name: "TARGET".into(),
                default_value: "prod".into(),
                description: None
            }]
        );
        assert_eq!(live.triggers, desired.triggers);
        assert_eq!(live.pull_request_triggers.len(), 1);
        assert_eq!(live.pull_request_triggers[0].branches, vec!["feature/*"]);
        // The declaration written back has neither.
        let restored = super::declaration("p", HOME, &desired, Some(3)).unwrap();
        assert!(restored.variables().is_empty());
        assert!(restored.triggers()[0]
            .git_configuration()
            .unwrap()
            .pull_request()
            .is_empty());
    }

    #[test]
    fn pull_request_triggers_are_rejected() {
        let mut news = inputs();
        news.pull_request_triggers = news.triggers.clone();
        assert_eq!(properties(news), vec!["pullRequestTriggers"]);
    }

    fn variable(name: &str, default_value: &str) -> Variable {
        Variable {
            name: name.into(),
            default_value: default_value.into(),
            description: None,
        }
    }

    #[test]
    fn variables_are_declared_with_their_defaults_and_read_back() {
        let mut desired = check_with_aws(inputs()).unwrap();
        desired.variables = vec![
            Variable {
                description: Some("Which fleet the deployment targets".into()),
                ..variable("DEPLOY_TARGET", "blue")
            },
            variable("LOG_LEVEL", "info"),
        ];
        let name = desired.pipeline_name.clone().unwrap();
        let declaration = declaration(&name, HOME, &desired, Some(1)).unwrap();
        let declared: Vec<(&str, Option<&str>, Option<&str>)> = declaration
            .variables()
            .iter()
            .map(|v| (v.name(), v.default_value(), v.description()))
            .collect();
        assert_eq!(
            declared,
            vec![
                (
                    "DEPLOY_TARGET",
                    Some("blue"),
                    Some("Which fleet the deployment targets")
                ),
                ("LOG_LEVEL", Some("info"), None)
            ]
        );
        assert_eq!(live_inputs(&declaration, HOME, &desired), desired);
    }

    #[test]
    fn variables_follow_codepipelines_limits_and_never_hold_credentials() {
        let mut news = inputs();
        news.variables = vec![
            variable("bad name", ""),
            variable("TARGET", "a"),
            variable("TARGET", &"x".repeat(1001)),
            variable("GITHUB_TOKEN", "abc"),
            variable("NOTE", "ghp_0123456789abcdefABCDEF0123456789abcd"),
            Variable {
                description: Some("d".repeat(201)),
                ..variable("D", "x")
            },
        ];
        let failures = check(news).unwrap_err();
        let found: Vec<&str> = failures.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(
            found,
            vec![
                "variables[0].name",
                "variables[0].defaultValue",
                "variables[2].name",
                "variables[2].defaultValue",
                "variables[3].defaultValue",
                "variables[4].defaultValue",
                "variables[5].description",
            ]
        );
        // The credential itself is never echoed.
        assert!(failures.iter().all(|f| !f.reason.contains("ghp_")));
        assert!(
            failures[5].reason.contains("a GitHub token"),
            "{}",
            failures[5].reason
        );
        let mut news = inputs();
        news.variables = (0..51).map(|i| variable(&format!("V{i}"), "x")).collect();
        assert_eq!(properties(news), vec!["variables"]);
    }

    #[test]
    fn sources_come_only_through_connections() {
        let mut github = action("Source", "Source", "GitHub");
        github.owner = "ThirdParty".into();
        github.configuration = BTreeMap::from([("OAuthToken".into(), "x".into())]);
        github.output_artifacts = vec!["SourceOutput".into()];
        let mut news = inputs();
        news.stages[0].actions = vec![github];
        let failures = check(news).unwrap_err();
        let rejected: Vec<_> = failures.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(
            rejected,
            vec![
                "stages[0].actions[0].configuration.OAuthToken",
                "stages[0].actions[0].provider"
            ]
        );
        assert!(
            failures[1].reason.contains("CodeStarSourceConnection"),
            "{}",
            failures[1].reason
        );

        let mut news = inputs();
        news.stages[0].actions[0].configuration.clear();
        assert_eq!(
            properties(news),
            vec![
                "stages[0].actions[0].configuration.ConnectionArn",
                "stages[0].actions[0].configuration.FullRepositoryId",
                "stages[0].actions[0].configuration.BranchName",
            ]
        );
        let mut news = inputs();
        news.stages[0].actions[0].configuration.insert(
            "ConnectionArn".into(),
            "arn:aws:codeconnections:eu-west-1:210987654321:connection/x".into(),
        );
        let failures = check_with_aws(news).unwrap_err();
        assert_eq!(
            failures[0].property,
            "stages[0].actions[0].configuration.ConnectionArn"
        );
        assert!(
            failures[0].reason.contains("account"),
            "{}",
            failures[0].reason
        );
    }

    #[test]
    fn approvals_are_time_bound() {
        let with = |timeout| {
            let mut news = inputs();
            news.stages.push(stage("prod", vec![approval(timeout)]));
            properties(news)
        };
        assert_eq!(with(None), vec!["stages[2].actions[0].timeoutInMinutes"]);
        assert_eq!(with(Some(4)), vec!["stages[2].actions[0].timeoutInMinutes"]);
        assert_eq!(
            with(Some(10081)),
            vec!["stages[2].actions[0].timeoutInMinutes"]
        );
        let mut news = inputs();
        news.stages.push(stage("prod", vec![approval(Some(10080))]));
        assert!(check(news).is_ok());
        let mut news = inputs();
        news.stages[1].actions[0].timeout_in_minutes = Some(60);
        assert_eq!(
            properties(news),
            vec!["stages[1].actions[0].timeoutInMinutes"]
        );
    }

    #[test]
    fn stage_structure_is_checked() {
        let mut news = inputs();
        news.stages.truncate(1);
        assert_eq!(properties(news), vec!["stages"]);

        let mut news = inputs();
        news.stages[0].actions.push(Action {
            input_artifacts: Vec::new(),
            output_artifacts: vec!["Other".into()],
            ..build()
        });
        news.stages[1].name = "Source".into();
        news.stages[1].actions.push(Action {
            name: "Build".into(),
            input_artifacts: vec!["Missing".into()],
            output_artifacts: Vec::new(),
            ..build()
        });
        news.stages[1].actions.push(Action {
            name: "bad name!".into(),
            output_artifacts: vec!["BuildOutput".into()],
            ..source()
        });
        assert_eq!(
            properties(news),
            vec![
                "stages[0].actions[1].category",
                "stages[1].name",
                "stages[1].actions[1].name",
                "stages[1].actions[1].inputArtifacts[0]",
                "stages[1].actions[2].category",
                "stages[1].actions[2].name",
                "stages[1].actions[2].outputArtifacts[0]",
            ]
        );
    }

    #[test]
    fn triggers_start_the_pipeline_on_push() {
        let mut news = inputs();
        news.triggers.clear();
        assert_eq!(properties(news), vec!["triggers"]);
        let mut news = inputs();
        news.triggers[0].source_action_name = "Build".into();
        news.triggers[0].branches.clear();
        news.triggers[0].include_paths = vec![String::new()];
        assert_eq!(
            properties(news),
            vec![
                "triggers[0].sourceActionName",
                "triggers[0].branches",
                "triggers[0].includePaths[0]"
            ]
        );
    }

    #[test]
    fn a_filter_is_on_branches_or_on_tags() {
        let mut news = inputs();
        news.triggers.push(Trigger {
            tags: vec!["v*".into()],
            ..Trigger::on_branches("Source", vec!["main".into()])
        });
        news.triggers.push(Trigger {
            exclude_tags: vec!["v0*".into()],
            ..Trigger::on_branches("Source", Vec::new())
        });
        assert_eq!(
            properties(news),
            vec!["triggers[1].tags", "triggers[2].tags"]
        );
        let mut news = inputs();
        news.triggers.push(Trigger {
            tags: vec!["v*".into()],
            ..Trigger::on_branches("Source", Vec::new())
        });
        assert!(check(news).is_ok());
    }

    #[test]
    fn stores_follow_regions() {
        let mut news = cross_region();
        news.artifact_stores.remove("us-east-1");
        news.artifact_stores
            .insert("useast1".into(), store("Bad_Bucket", OTHER_KEY));
        news.execution_mode = "SERIAL".into();
        assert_eq!(
            properties(news),
            vec![
                "artifactStores.useast1",
                "artifactStores.useast1.bucketName",
                "artifactStores.useast1.kmsKeyArn",
                "stages[2].actions[1].region",
                "executionMode",
            ]
        );
        // The pipeline's own region always has a store.
        let mut news = inputs();
        news.artifact_stores =
            BTreeMap::from([("us-east-1".into(), store("app-artifacts-us", OTHER_KEY))]);
        let failures = check_with_aws(news).unwrap_err();
        assert_eq!(failures[0].property, "artifactStores");
        assert!(failures[0].reason.contains(HOME), "{}", failures[0].reason);
        assert_eq!(
            properties(PipelineInputs {
                artifact_stores: BTreeMap::new(),
                ..inputs()
            }),
            vec!["artifactStores"]
        );
    }

    #[test]
    fn role_must_be_in_the_callers_account() {
        let news = PipelineInputs {
            role_arn: "arn:aws:iam::210987654321:role/pipeline".into(),
            ..inputs()
        };
        let failures = check_with_aws(news).unwrap_err();
        assert_eq!(failures[0].property, "roleArn");
    }

    #[test]
    fn triggers_of_one_action_are_grouped_in_order() {
        let trigger =
            |action: &str, branch: &str| Trigger::on_branches(action, vec![branch.into()]);
        let grouped = group_triggers(vec![
            trigger("A", "1"),
            trigger("B", "2"),
            trigger("A", "3"),
        ]);
        assert_eq!(
            grouped,
            vec![trigger("A", "1"), trigger("A", "3"), trigger("B", "2")]
        );
    }

    #[test]
    fn console_url_names_the_region_twice() {
        assert_eq!(
            console_url("eu-west-1", "app"),
            "https://eu-west-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/app/view?region=eu-west-1"
        );
    }
}
