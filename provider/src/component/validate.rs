//! Every rule SecurePipeline's inputs must meet, checked before any child
//! is registered. All failures are collected so that one preview shows
//! every problem, each with its property path and what to do instead.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use super::args::{
    Build, Deployment, EnvironmentVariable, Notifications, PulumiCloudOidc, PulumiDeployment,
    SecurePipelineArgs, Source, SourceProvider,
};
use super::deploy;
use super::pulumi_cli;
use super::triggers;
use super::variables;
use crate::aws::arn::{has_wildcard, is_region, Arn, Arns};
use crate::buildspec;
use crate::credentials;
use crate::protocol::value::PropertyMap;
use crate::resource::{
    is_unknown, parse, to_typed, CheckContext, CheckFailure, Failures, TypedInputs,
};
use crate::resources::build_project::{BUILD_TIMEOUT, QUEUED_TIMEOUT};
use crate::resources::common::{check_exact_arn, check_kms_key_arn, check_secret_arn};
use crate::resources::event_rule::check_schedule;
use crate::resources::log_group::check_retention;
use crate::resources::pipeline::{check_branch, APPROVAL_TIMEOUT};
use crate::resources::topic;
use crate::tags;

pub const ARTIFACT_RETENTION: (u32, u32) = (1, 3650);

/// SecurePipeline's input check, as Construct runs it: types the engine's
/// property map, then applies every rule. The component has no Diff of its
/// own (the engine diffs its children), so this is its whole input surface.
pub fn check(
    ctx: &CheckContext<'_>,
    inputs: &PropertyMap,
) -> Result<(SecurePipelineArgs, TypedInputs), Vec<CheckFailure>> {
    let typed = to_typed(inputs);
    let reserved = reserved_characters(&typed.json, String::new());
    if !reserved.is_empty() {
        return Err(reserved);
    }
    let args: SecurePipelineArgs = parse(&typed.json).map_err(|failure| vec![failure])?;
    validate(ctx, &args, &typed.secret_paths).into_result((args, typed))
}

/// Strings holding characters of Unicode's private use area, which the
/// plan reserves to stand for children's outputs until they exist: a value
/// a user writes must never be read as such a reference.
fn reserved_characters(value: &Json, path: String) -> Vec<CheckFailure> {
    match value {
        Json::String(text) if text.chars().any(is_private_use) => vec![CheckFailure::new(
            path,
            "holds a character of Unicode's private use area (U+E000 to U+F8FF), which no AWS name, ARN or command needs; remove it".to_string(),
        )],
        Json::Array(items) => items
            .iter()
            .enumerate()
            .flat_map(|(index, item)| reserved_characters(item, format!("{path}[{index}]")))
            .collect(),
        Json::Object(fields) => fields
            .iter()
            .flat_map(|(key, item)| {
                let inner = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                reserved_characters(item, inner)
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn is_private_use(c: char) -> bool {
    ('\u{E000}'..='\u{F8FF}').contains(&c)
}

/// `secret_paths` are the property paths the engine marked secret (see
/// [`is_secret`]).
pub fn validate(
    ctx: &CheckContext<'_>,
    args: &SecurePipelineArgs,
    secret_paths: &BTreeSet<String>,
) -> Failures {
    let mut failures = Failures::default();
    source(ctx, &args.source, &mut failures);
    build(ctx, &args.build, secret_paths, &mut failures);
    let deployments = args.deployments.as_deref().unwrap_or_default();
    let mut names = BTreeSet::new();
    for (index, deployment) in deployments.iter().enumerate() {
        let path = format!("deployments[{index}]");
        if !names.insert(deployment.name.as_str()) {
            failures.push(
                format!("{path}.name"),
                format!(
                    "stage name `{}` is used twice; give each deployment a unique name",
                    deployment.name
                ),
            );
        }
        deploy(ctx, &path, deployment, secret_paths, &mut failures);
    }
    for (index, deployment) in deployments.iter().enumerate() {
        if let Some(owner) = name_taken_by_children_of(&deployment.name, &names) {
            failures.push(
                format!("deployments[{index}].name"),
                format!(
                    "stage `{}` would share the names of stage `{owner}`'s log group and role, which are named after the stage with `-logs` and `-role`; choose another name",
                    deployment.name
                ),
            );
        }
    }
    production_isolation(args, &mut failures);
    variables::check(args, |path| is_secret(secret_paths, path), &mut failures);
    if let Some(notifications) = &args.notifications {
        notify(notifications, &mut failures);
    }
    if let Some(schedule) = &args.schedule {
        if let Err(reason) = check_schedule(schedule) {
            failures.push("schedule", reason);
        }
    }
    if let Some(days) = args.log_retention_days {
        failures.extend(check_retention("logRetentionDays", days));
    }
    if let Some(days) = args.access_log_retention_days {
        range(
            &mut failures,
            "accessLogRetentionDays",
            days,
            ARTIFACT_RETENTION,
            "days",
        );
    }
    if let Some(days) = args.artifact_retention_days {
        range(
            &mut failures,
            "artifactRetentionDays",
            days,
            ARTIFACT_RETENTION,
            "days",
        );
    }
    if let Some(key) = &args.kms_key_arn {
        failures
            .extend(check_kms_key_arn(ctx, "kmsKeyArn", key).or_else(|| key_in_region(ctx, key)));
    }
    if let Some(own) = &args.tags {
        failures.extend(tags::validate("tags", own));
    }
    failures
}

/// The user's key encrypts everything in the pipeline's region (stages in
/// other regions get keys of their own), so it must live there.
fn key_in_region(ctx: &CheckContext<'_>, key: &str) -> Option<CheckFailure> {
    let region = &ctx.aws?.region;
    let arn = key.parse::<Arn>().ok()?;
    (arn.region != *region).then(|| {
        CheckFailure::new(
            "kmsKeyArn",
            format!(
                "`{key}` is in region {}, but the pipeline runs in {region}; give a key in {region} (stages in other regions get keys of their own)",
                arn.region
            ),
        )
    })
}

fn range(failures: &mut Failures, property: &str, value: u32, (min, max): (u32, u32), unit: &str) {
    if value < min || value > max {
        failures.push(
            property,
            format!("{value} is out of range; use {min} to {max} {unit}"),
        );
    }
}

fn source(ctx: &CheckContext<'_>, source: &Source, failures: &mut Failures) {
    let repository = &source.repository;
    let parts: Vec<&str> = repository.split('/').collect();
    if !is_unknown(repository)
        && (parts.len() < 2
            || parts
                .iter()
                .any(|p| p.is_empty() || p.contains(char::is_whitespace)))
    {
        failures.push(
            "source.repository",
            format!("`{repository}` is not a full repository id; use `owner/repo`"),
        );
    }
    if let Some(branch) = &source.branch {
        if let Err(reason) = check_branch(branch) {
            failures.push("source.branch", reason);
        }
    }
    triggers::check(source, super::plan::DEFAULT_BRANCH, failures);
    let provider = source.provider.unwrap_or(SourceProvider::GitHub);
    let needs_host = matches!(
        provider,
        SourceProvider::GitHubEnterpriseServer | SourceProvider::GitLabSelfManaged
    );
    match (&source.connection_arn, &source.host_arn) {
        (Some(arn), host) => {
            failures.extend(check_exact_arn(
                ctx,
                "source.connectionArn",
                arn,
                &["codestar-connections", "codeconnections"],
                "connection/",
                "arn:aws:codeconnections:eu-west-1:123456789012:connection/0a1b2c3d-...",
                true,
            ));
            if host.is_some() {
                failures.push(
                    "source.hostArn",
                    "an existing connection already names its host; remove hostArn or connectionArn",
                );
            }
        }
        (None, Some(host)) if needs_host => {
            failures.extend(check_exact_arn(
                ctx,
                "source.hostArn",
                host,
                &["codestar-connections", "codeconnections"],
                "host/",
                "arn:aws:codeconnections:eu-west-1:123456789012:host/my-ghes-0a1b2c3d",
                true,
            ));
        }
        (None, Some(_)) => failures.push(
            "source.hostArn",
            "only GitHubEnterpriseServer and GitLabSelfManaged connections take a host; remove hostArn",
        ),
        (None, None) if needs_host => failures.push(
            "source.hostArn",
            format!("a {provider:?} connection needs the ARN of its host; set hostArn (or reuse a connection with connectionArn)"),
        ),
        (None, None) => {}
    }
    for (property, paths) in [
        ("source.includePaths", &source.include_paths),
        ("source.excludePaths", &source.exclude_paths),
    ] {
        for (index, path) in paths.iter().flatten().enumerate() {
            if path.trim().is_empty() || path.len() > 255 {
                failures.push(
                    format!("{property}[{index}]"),
                    "use a glob of 1 to 255 characters, e.g. `src/**`",
                );
            }
        }
        if paths.as_ref().is_some_and(|p| p.len() > 8) {
            failures.push(
                property,
                "CodePipeline triggers accept at most 8 file path patterns",
            );
        }
    }
}

fn build(
    ctx: &CheckContext<'_>,
    build: &Build,
    secret_paths: &BTreeSet<String>,
    failures: &mut Failures,
) {
    let given = [
        build.commands.is_some(),
        build.buildspec.is_some(),
        build.buildspec_path.is_some(),
    ];
    match given.iter().filter(|g| **g).count() {
        0 => failures.push(
            "build",
            "choose what the build runs: `commands` (the provider writes the buildspec), `buildspec` (inline YAML, checked at preview) or `buildspecPath` (a file in the repository, which anyone who can push can change); nothing defaults to the repository's buildspec.yml",
        ),
        1 => {}
        _ => failures.push(
            "build",
            "give only one of commands, buildspec and buildspecPath",
        ),
    }
    if let Some(commands) = &build.commands {
        if commands.is_empty() {
            failures.push(
                "build.commands",
                "give at least one command, or use buildspecPath",
            );
        }
        check_commands("build.commands", commands, secret_paths, failures);
    }
    if let Some(files) = &build.output_files {
        output_files(build.commands.is_some(), files, failures);
    }
    if let Some(spec) = &build.buildspec {
        if is_secret(secret_paths, "build.buildspec") {
            failures.push(
                "build.buildspec",
                format!("is a Pulumi secret, which CodeBuild would hold as plain text; {CREDENTIAL_FIX}"),
            );
        }
        if let Err(reason) = buildspec::validate(spec) {
            failures.push("build.buildspec", reason);
        }
        let mut found = false;
        for (index, line) in spec.lines().enumerate() {
            if let Some(reason) = command_problem(line) {
                found = true;
                failures.push("build.buildspec", format!("line {}: {reason}", index + 1));
            }
        }
        // A private key spans lines.
        if let Some(what) = credentials::find(spec).filter(|_| !found) {
            failures.push("build.buildspec", format!("holds {what}; {CREDENTIAL_FIX}"));
        }
    }
    if let Some(path) = &build.buildspec_path {
        if let Err(reason) = check_repo_path(path) {
            failures.push("build.buildspecPath", reason);
        }
    }
    if let Some(minutes) = build.timeout_minutes {
        range(
            failures,
            "build.timeoutMinutes",
            minutes,
            BUILD_TIMEOUT,
            "minutes",
        );
    }
    if let Some(minutes) = build.queued_timeout_minutes {
        range(
            failures,
            "build.queuedTimeoutMinutes",
            minutes,
            QUEUED_TIMEOUT,
            "minutes",
        );
    }
    if let Some(environment) = &build.environment {
        for (name, variable) in environment {
            let path = format!("build.environment.{name}");
            let secret = is_secret(secret_paths, &format!("{path}.value"));
            env_var(ctx, &path, name, variable, None, secret, failures);
        }
    }
}

/// `build.outputFiles`: relative globs, and only where the provider writes
/// the buildspec (a user's buildspec has its own `artifacts` section).
fn output_files(with_commands: bool, files: &[String], failures: &mut Failures) {
    if !with_commands {
        failures.push(
            "build.outputFiles",
            "applies to `commands` only; with buildspec or buildspecPath list the files in the buildspec's `artifacts` section",
        );
    }
    if files.is_empty() {
        failures.push(
            "build.outputFiles",
            "list at least one file or glob, or leave outputFiles out to hand on the whole workspace",
        );
    }
    for (index, file) in files.iter().enumerate() {
        if is_unknown(file) {
            continue;
        }
        if file.is_empty() || file.starts_with('/') || file.split('/').any(|part| part == "..") {
            failures.push(
                format!("build.outputFiles[{index}]"),
                format!("`{file}` must be a path or glob inside the source, e.g. `dist/**/*`"),
            );
        }
    }
}

fn check_repo_path(path: &str) -> Result<(), String> {
    if is_unknown(path) {
        return Ok(());
    }
    if path.is_empty() || path.starts_with('/') || path.split('/').any(|part| part == "..") {
        return Err(format!(
            "`{path}` must be a path inside the repository, e.g. `ci/buildspec.yml`"
        ));
    }
    if !(path.ends_with(".yml") || path.ends_with(".yaml")) {
        return Err(format!("`{path}` must be a YAML file (.yml or .yaml)"));
    }
    Ok(())
}

/// How to pass a credential a command needs.
const CREDENTIAL_FIX: &str = "never write a credential into a command or buildspec: store it in Secrets Manager, add it to `environment` with secretArn and use it as $NAME";

/// True when the engine marked the value at `path`, or anything containing
/// it, as secret.
pub(super) fn is_secret(secret_paths: &BTreeSet<String>, path: &str) -> bool {
    secret_paths.iter().any(|secret| {
        path == secret
            || path
                .strip_prefix(secret.as_str())
                .is_some_and(|rest| rest.starts_with(['.', '[']))
    })
}

/// A CodePipeline variable reference, `#{namespace.name}`: CodePipeline
/// resolves those only in action configuration, never in commands or in
/// a project's environment.
fn pipeline_variable(text: &str) -> bool {
    variable_references(text).next().is_some()
}

/// The `(namespace, name)` of each `#{namespace.name}` in `text`.
fn variable_references(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.match_indices("#{").filter_map(|(at, _)| {
        let rest = text.get(at + 2..).unwrap_or_default();
        let (inner, _) = rest.split_once('}')?;
        let (namespace, name) = inner.split_once('.')?;
        let part = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_@-".contains(c))
        };
        (part(namespace) && part(name)).then_some((namespace, name))
    })
}

/// What to write instead of `#{...}`: a pipeline variable (`variables`)
/// reaches builds as an environment variable of its name.
fn variable_fix(text: &str) -> String {
    match variable_references(text).find(|(namespace, _)| *namespace == "variables") {
        Some((_, name)) => format!("pipeline variables reach every build as environment variables: declare `{name}` in `variables` and use `${name}`"),
        None => "read the value from an environment variable instead".to_string(),
    }
}

/// Why one command (or buildspec line) can never work or leaks a secret.
/// Shell expansion (`$VAR`, `${VAR}`) is fine: the shell resolves it.
fn command_problem(command: &str) -> Option<String> {
    if let Some(what) = credentials::find(command) {
        return Some(format!("holds {what}; {CREDENTIAL_FIX}"));
    }
    pipeline_variable(command).then(|| {
        format!(
            "uses a CodePipeline variable `#{{namespace.name}}`, which is never resolved in commands; {}",
            variable_fix(command)
        )
    })
}

/// A command is written into the project's buildspec, which CodeBuild
/// stores and shows as plain text: it can hold neither a credential nor a
/// Pulumi secret.
fn check_commands(
    property: &str,
    commands: &[String],
    secret_paths: &BTreeSet<String>,
    failures: &mut Failures,
) {
    for (index, command) in commands.iter().enumerate() {
        let at = format!("{property}[{index}]");
        if is_secret(secret_paths, &at) {
            failures.push(
                at,
                format!("is a Pulumi secret, which the buildspec would hold as plain text; {CREDENTIAL_FIX}"),
            );
            continue;
        }
        if is_unknown(command) {
            continue;
        }
        if let Some(reason) = command_problem(command) {
            failures.push(at, reason);
        }
    }
}

/// Why a plain environment value is a placeholder nothing will fill in:
/// CodeBuild passes values as they are, without expanding them.
fn unresolved_in_value(value: &str) -> Option<String> {
    if pipeline_variable(value) {
        let fix = if variable_references(value).any(|(namespace, _)| namespace == "variables") {
            variable_fix(value)
        } else {
            "give the value itself".to_string()
        };
        return Some(format!("holds a CodePipeline variable `#{{namespace.name}}`, which CodeBuild never resolves in a project's environment; {fix}"));
    }
    let placeholder = value
        .find("${")
        .and_then(|at| value.get(at + 2..))
        .is_some_and(|rest| rest.contains('}'));
    placeholder.then(|| {
        "holds a `${...}` placeholder, which CodeBuild passes literally (values are not expanded); give the value itself, or build it in a command, e.g. export URL=\"https://$HOST\"".into()
    })
}

/// A Secrets Manager secret ARN in the caller's partition and account, and
/// in `region` (another region's stage), or the provider's region.
fn check_secret(
    ctx: &CheckContext<'_>,
    property: &str,
    arn: &str,
    region: Option<&str>,
    example: &str,
) -> Option<CheckFailure> {
    let Some(region) = region else {
        return check_secret_arn(ctx, property, arn, example, true);
    };
    check_secret_arn(ctx, property, arn, example, false).or_else(|| {
        let parsed = arn.parse::<Arn>().ok()?;
        (parsed.region != region).then(|| {
            CheckFailure::new(
                property,
                format!("`{arn}` is in region {}, but the stage runs in {region}; CodeBuild reads secrets in its own region", parsed.region),
            )
        })
    })
}

/// `region` is the stage's when it is not the provider's.
fn env_var(
    ctx: &CheckContext<'_>,
    path: &str,
    name: &str,
    variable: &EnvironmentVariable,
    region: Option<&str>,
    secret: bool,
    failures: &mut Failures,
) {
    let valid_name = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        failures.push(
            path,
            format!("`{name}` is not a valid environment variable name (letters, digits, _)"),
        );
    }
    if name.to_ascii_uppercase().starts_with("CODEBUILD_") {
        failures.push(
            path,
            "names starting with CODEBUILD_ are reserved by CodeBuild",
        );
    }
    let given = [
        variable.value.is_some(),
        variable.secret_arn.is_some(),
        variable.parameter_name.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        failures.push(
            path,
            "give exactly one of value, secretArn and parameterName",
        );
    }
    if variable.secret_json_key.is_some() && variable.secret_arn.is_none() {
        failures.push(
            format!("{path}.secretJsonKey"),
            "secretJsonKey reads a key of secretArn; set secretArn too",
        );
    }
    if [
        pulumi_cli::RELEASES_URL_VARIABLE,
        pulumi_cli::CHECKSUMS_URL_VARIABLE,
    ]
    .iter()
    .any(|v| v.eq_ignore_ascii_case(name))
    {
        failures.push(
            path,
            format!("`{name}` would move where deployments download the Pulumi CLI and its checksums; no input may, so remove it (pin a release with pulumiStack.pulumiVersion and pulumiCliSha256)"),
        );
    } else if credentials::is_reserved_variable(name) {
        failures.push(
            path,
            format!("`{name}` would replace the credentials the stage runs with; the build runs as the role the pipeline creates (use assumeRoleArn to deploy as another role, pulumiStack.accessTokenSecretArn / passphraseSecretArn for Pulumi)"),
        );
    }
    if let Some(value) = &variable.value {
        let property = format!("{path}.value");
        // The value is never echoed: it may be a secret.
        if secret {
            failures.push(
                property,
                "is a Pulumi secret, which a plain value would store in the CodeBuild project as PLAINTEXT; put it in Secrets Manager and use secretArn, or in Parameter Store (SecureString) and use parameterName",
            );
        } else if let Some(problem) = credentials::plaintext_variable_problem(name, value) {
            failures.push(
                property,
                format!("{problem}; store it in Secrets Manager and use secretArn (or parameterName for a SecureString)"),
            );
        } else if let Some(reason) = unresolved_in_value(value) {
            failures.push(property, reason);
        }
    }
    if let Some(arn) = &variable.secret_arn {
        failures.extend(check_secret(
            ctx,
            &format!("{path}.secretArn"),
            arn,
            region,
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:npm-token-AbCdEf",
        ));
    }
    if let Some(parameter) = &variable.parameter_name {
        let valid = !parameter.is_empty()
            && parameter.len() <= 2048
            && !parameter.starts_with("arn:")
            && parameter
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
        if !is_unknown(parameter) && !valid {
            failures.push(
                format!("{path}.parameterName"),
                format!("`{parameter}` is not a Parameter Store name; use a name such as /app/prod/db-password"),
            );
        }
    }
}

/// The stage whose log group or role (`<stage>-logs`, `<stage>-role`) a
/// stage of this name would collide with, if there is one.
fn name_taken_by_children_of<'a>(name: &str, stages: &BTreeSet<&'a str>) -> Option<&'a str> {
    ["-logs", "-role"]
        .iter()
        .filter_map(|suffix| name.strip_suffix(suffix))
        .find_map(|owner| stages.get(owner).copied())
}

fn deploy(
    ctx: &CheckContext<'_>,
    path: &str,
    deployment: &Deployment,
    secret_paths: &BTreeSet<String>,
    failures: &mut Failures,
) {
    super::gates::check(ctx, path, deployment, failures);
    let name = &deployment.name;
    let valid_name = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".@_-".contains(c));
    if !valid_name {
        failures.push(
            format!("{path}.name"),
            format!("`{name}` is not a valid stage name (1 to 100 of A-Z a-z 0-9 . @ _ -)"),
        );
    }
    if ["Source", "Build"].contains(&name.as_str()) {
        failures.push(
            format!("{path}.name"),
            format!("`{name}` is the name of a built-in stage; choose another"),
        );
    }
    match (&deployment.pulumi, &deployment.commands) {
        (Some(_), Some(_)) => failures.push(
            path.to_string(),
            "give either pulumiStack or commands, not both",
        ),
        (None, None) => failures.push(
            path.to_string(),
            "give pulumiStack (a stack to deploy) or commands",
        ),
        (None, Some(commands)) if commands.is_empty() => {
            failures.push(format!("{path}.commands"), "give at least one command")
        }
        (None, Some(commands)) => check_commands(
            &format!("{path}.commands"),
            commands,
            secret_paths,
            failures,
        ),
        _ => {}
    }
    // The stage's region when it differs from the provider's, which its
    // secrets must be in.
    let mut region = None;
    if let Some(value) = &deployment.region {
        if !is_unknown(value) && !is_region(value) {
            failures.push(
                format!("{path}.region"),
                format!("`{value}` is not an AWS region; use a name such as eu-west-1"),
            );
        } else if !is_unknown(value) && ctx.aws.is_none_or(|aws| aws.region != *value) {
            region = Some(value.as_str());
        }
    }
    if let Some(pulumi) = &deployment.pulumi {
        pulumi_stage(
            ctx,
            &format!("{path}.pulumiStack"),
            pulumi,
            region,
            failures,
        );
    }
    if let Some(role) = &deployment.assume_role_arn {
        role_arn(&format!("{path}.assumeRoleArn"), role, failures);
    }
    let preview_token = deployment
        .pulumi
        .as_ref()
        .is_some_and(|p| p.preview_access_token_secret_arn.is_some());
    if preview_token && !deploy::requires_approval(deployment) {
        failures.push(
            format!("{path}.pulumiStack.previewAccessTokenSecretArn"),
            "has no effect without an approval (only the pre-approval Preview action uses it); remove it, or set requireApproval",
        );
    }
    let preview_team = deployment
        .pulumi
        .as_ref()
        .and_then(|p| p.pulumi_cloud_oidc.as_ref())
        .is_some_and(|o| o.preview_team.is_some());
    if preview_team && !deploy::requires_approval(deployment) {
        failures.push(
            format!("{path}.pulumiStack.pulumiCloudOidc.previewTeam"),
            "has no effect without an approval (only the pre-approval Preview action uses it); remove it, or set requireApproval",
        );
    }
    if let Some(role) = &deployment.preview_role_arn {
        let property = format!("{path}.previewRoleArn");
        role_arn(&property, role, failures);
        if deployment.assume_role_arn.as_ref() == Some(role) && !is_unknown(role) {
            failures.push(
                property.clone(),
                "is the deploy role (assumeRoleArn), which nothing before the approval may hold; name a role that can only read",
            );
        }
        if !deploy::has_preview(deployment) {
            failures.push(
                property,
                "has no effect: only a Pulumi stage with an approval previews (a Pulumi Cloud stack also needs read-only credentials: pulumiStack.previewAccessTokenSecretArn or pulumiStack.pulumiCloudOidc.previewTeam)",
            );
        }
    }
    if let Some(minutes) = deployment.approval_timeout_minutes {
        range(
            failures,
            &format!("{path}.approvalTimeoutMinutes"),
            minutes,
            APPROVAL_TIMEOUT,
            "minutes",
        );
        if !deploy::requires_approval(deployment) {
            failures.push(
                format!("{path}.approvalTimeoutMinutes"),
                "has no effect without an approval; remove it, or set requireApproval (production stages require it by default)",
            );
        }
    }
    if let Some(approvers) = &deployment.approvers {
        check_approvers(
            ctx,
            &format!("{path}.approvers"),
            approvers,
            deploy::requires_approval(deployment),
            failures,
        );
    }
    if let Some(minutes) = deployment.timeout_minutes {
        range(
            failures,
            &format!("{path}.timeoutMinutes"),
            minutes,
            BUILD_TIMEOUT,
            "minutes",
        );
    }
    if let Some(environment) = &deployment.environment {
        for (name, variable) in environment {
            let variable_path = format!("{path}.environment.{name}");
            let secret = is_secret(secret_paths, &format!("{variable_path}.value"));
            env_var(
                ctx,
                &variable_path,
                name,
                variable,
                region,
                secret,
                failures,
            );
        }
    }
}

/// Approvers: exact IAM users or roles of the caller's partition, on a
/// stage that has an approval, few enough to be shown in full.
fn check_approvers(
    ctx: &CheckContext<'_>,
    property: &str,
    approvers: &[String],
    has_approval: bool,
    failures: &mut Failures,
) {
    const EXAMPLE: &str = "arn:aws:iam::123456789012:role/release-approvers";
    if !has_approval {
        failures.push(
            property,
            "the stage has no approval, so nobody approves it; set requireApproval: true (production stages have one unless requireApproval is false), or remove approvers",
        );
    }
    if approvers.is_empty() {
        failures.push(property, "list at least one principal, or remove approvers");
    }
    for (index, approver) in approvers.iter().enumerate() {
        let at = format!("{property}[{index}]");
        if is_unknown(approver) {
            continue;
        }
        if has_wildcard(approver) {
            failures.push(
                at,
                format!("`{approver}` has a wildcard (`*` or `?`); name each user or role by its exact ARN, e.g. {EXAMPLE}"),
            );
            continue;
        }
        match approver.parse::<Arn>() {
            Err(reason) => failures.push(at, format!("{reason}; for example {EXAMPLE}")),
            Ok(arn)
                if arn.service != "iam"
                    || !(arn.resource.starts_with("user/")
                        || arn.resource.starts_with("role/"))
                    || arn.account.is_empty() =>
            {
                failures.push(
                    at,
                    format!("`{approver}` is not an IAM user or role ARN; for example {EXAMPLE}"),
                );
            }
            Ok(arn) => {
                if let Some(aws) = ctx.aws.filter(|aws| aws.partition != arn.partition) {
                    failures.push(
                        &at,
                        format!(
                            "`{approver}` is in partition `{}`, but the pipeline is in `{}`",
                            arn.partition, aws.partition
                        ),
                    );
                }
                if let Some(first) = approvers[..index].iter().position(|a| a == approver) {
                    failures.push(
                        at,
                        format!("repeats {property}[{first}]; list each principal once"),
                    );
                }
            }
        }
    }
    if deploy::approvers_note(approvers).chars().count() > deploy::MAX_CUSTOM_DATA {
        failures.push(
            property,
            format!("too long to show in the approval, which holds {} characters; grant approval to one role and list that role", deploy::MAX_CUSTOM_DATA),
        );
    }
}

/// An exact IAM role ARN.
fn role_arn(property: &str, role: &str, failures: &mut Failures) {
    match role.parse::<Arn>() {
        _ if is_unknown(role) => {}
        _ if has_wildcard(role) => failures.push(
            property,
            format!("`{role}` has a wildcard (`*` or `?`), so the stage could assume every matching role; give the exact role ARN, e.g. arn:aws:iam::123456789012:role/deployer"),
        ),
        Ok(arn) if arn.service == "iam" && arn.resource.starts_with("role/") => {}
        Ok(_) => failures.push(
            property,
            format!("`{role}` is not an IAM role ARN; use arn:aws:iam::123456789012:role/deployer"),
        ),
        Err(reason) => failures.push(property, reason),
    }
}

fn pulumi_stage(
    ctx: &CheckContext<'_>,
    path: &str,
    pulumi: &PulumiDeployment,
    region: Option<&str>,
    failures: &mut Failures,
) {
    let stack = &pulumi.stack;
    let segments: Vec<&str> = stack.split('/').collect();
    let valid_stack = !stack.is_empty()
        && segments.len() <= 3
        && segments.iter().all(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        });
    if !is_unknown(stack) && !valid_stack {
        failures.push(
            format!("{path}.stack"),
            format!("`{stack}` is not a stack name; use `org/project/stack` or `stack`"),
        );
    }
    if let Some(dir) = &pulumi.work_dir {
        let valid = !dir.starts_with('/')
            && !dir.split('/').any(|p| p == "..")
            && dir
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
        if !is_unknown(dir) && !valid {
            failures.push(format!("{path}.workDir"), "must be a directory inside the repository (letters, digits, - _ . /), e.g. `infra`");
        }
    }
    let self_managed = match &pulumi.backend_url {
        Some(url) if is_unknown(url) => false,
        Some(url) if url.starts_with("s3://") => {
            s3_backend(&format!("{path}.backendUrl"), url, failures);
            if valid_stack && deploy::project_and_stack(stack).is_none() {
                failures.push(
                    format!("{path}.stack"),
                    format!("with an s3:// backend, name the stack `project/stack` (as `pulumi stack ls` shows it) so the stage's role can be limited to that stack's state, not `{stack}`"),
                );
            }
            if let [org, _, _] = segments[..] {
                if org != "organization" {
                    failures.push(
                        format!("{path}.stack"),
                        format!("self-managed backends only know the organization `organization`; use `project/stack` instead of `{stack}`"),
                    );
                }
            }
            true
        }
        Some(url) if url.starts_with("https://") => false,
        Some(url) => {
            failures.push(
                format!("{path}.backendUrl"),
                format!("`{url}` is not a supported backend; use s3://bucket/prefix, or omit it for Pulumi Cloud"),
            );
            true
        }
        None => false,
    };
    if !self_managed
        && pulumi.access_token_secret_arn.is_none()
        && pulumi.pulumi_cloud_oidc.is_none()
    {
        failures.push(
            format!("{path}.accessTokenSecretArn"),
            "Pulumi Cloud needs a login; set pulumiCloudOidc to log in without a stored token, or store a token in Secrets Manager and set accessTokenSecretArn (or use an s3:// backendUrl)",
        );
    }
    if self_managed
        && pulumi.passphrase_secret_arn.is_none()
        && pulumi.secrets_kms_key_arn.is_none()
    {
        failures.push(
            format!("{path}.passphraseSecretArn"),
            "a self-managed backend needs a secrets provider; set secretsKmsKeyArn to keep the stack's secrets with a KMS key, or store the config passphrase in Secrets Manager and set passphraseSecretArn",
        );
    }
    secrets_provider(ctx, path, pulumi, failures);
    if let Some(oidc) = &pulumi.pulumi_cloud_oidc {
        pulumi_cloud_oidc(path, pulumi, oidc, self_managed, failures);
    }
    if let Some(hash) = &pulumi.pulumi_cli_sha256 {
        let property = format!("{path}.pulumiCliSha256");
        let is_sha256 = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        if !is_unknown(hash) && !is_sha256 {
            failures.push(
                property.clone(),
                "is not a SHA-256; give the 64 hex digits `sha256sum pulumi-v<version>-linux-x64.tar.gz` prints",
            );
        }
        if pulumi.pulumi_version.is_none() {
            failures.push(
                property,
                "pins one release's tarball, so set pulumiVersion to that release too (the default version changes with the provider)",
            );
        }
    }
    if let Some(preview) = &pulumi.preview_access_token_secret_arn {
        let property = format!("{path}.previewAccessTokenSecretArn");
        if self_managed {
            failures.push(
                property.clone(),
                "is for Pulumi Cloud stacks; a self-managed backend previews with read-only state grants and no token",
            );
        }
        if pulumi.access_token_secret_arn.as_ref() == Some(preview) && !is_unknown(preview) {
            failures.push(
                property,
                "is the deploy token (accessTokenSecretArn), which can write the stack; use a token that can only read it",
            );
        }
    }
    for (key, arn) in [
        ("accessTokenSecretArn", &pulumi.access_token_secret_arn),
        (
            "previewAccessTokenSecretArn",
            &pulumi.preview_access_token_secret_arn,
        ),
        ("passphraseSecretArn", &pulumi.passphrase_secret_arn),
    ] {
        if let Some(arn) = arn {
            failures.extend(check_secret(
                ctx,
                &format!("{path}.{key}"),
                arn,
                region,
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pulumi-token-AbCdEf",
            ));
        }
    }
    if let Some(version) = &pulumi.pulumi_version {
        let parts: Vec<&str> = version.split('.').collect();
        let valid = matches!(parts.as_slice(), ["3", _, _])
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !valid {
            failures.push(
                format!("{path}.pulumiVersion"),
                format!("`{version}` is not a Pulumi 3 version; use one like 3.248.0"),
            );
        }
    }
}

/// `secretsKmsKeyArn`: one exact key, instead of a passphrase.
fn secrets_provider(
    ctx: &CheckContext<'_>,
    path: &str,
    pulumi: &PulumiDeployment,
    failures: &mut Failures,
) {
    let Some(key) = &pulumi.secrets_kms_key_arn else {
        return;
    };
    let property = format!("{path}.secretsKmsKeyArn");
    if pulumi.passphrase_secret_arn.is_some() {
        failures.push(
            property.clone(),
            "give either secretsKmsKeyArn or passphraseSecretArn, not both: the stack has one secrets provider; remove passphraseSecretArn to keep its secrets with the key",
        );
    }
    failures.extend(check_exact_arn(
        ctx,
        &property,
        key,
        &["kms"],
        "key/",
        "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        false,
    ));
}

/// Pulumi Cloud names: organizations, teams and users.
fn is_pulumi_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// `pulumiCloudOidc`: Pulumi Cloud only, instead of a stored token, with a
/// CLI that can exchange tokens.
fn pulumi_cloud_oidc(
    path: &str,
    pulumi: &PulumiDeployment,
    oidc: &PulumiCloudOidc,
    self_managed: bool,
    failures: &mut Failures,
) {
    let property = format!("{path}.pulumiCloudOidc");
    if pulumi.access_token_secret_arn.is_some() {
        failures.push(
            property.clone(),
            "give either pulumiCloudOidc or accessTokenSecretArn, not both; remove accessTokenSecretArn to log in without a stored token",
        );
    }
    if self_managed {
        failures.push(
            property.clone(),
            "logs in to Pulumi Cloud, but backendUrl is a self-managed backend; remove pulumiCloudOidc, or remove backendUrl to use Pulumi Cloud",
        );
    }
    for (key, name) in [
        ("organization", Some(&oidc.organization)),
        ("team", oidc.team.as_ref()),
        ("user", oidc.user.as_ref()),
        ("previewTeam", oidc.preview_team.as_ref()),
    ] {
        if let Some(name) = name.filter(|n| !is_unknown(n) && !is_pulumi_name(n)) {
            failures.push(
                format!("{property}.{key}"),
                format!("`{name}` is not a Pulumi Cloud name (letters, digits, - _ .)"),
            );
        }
    }
    if oidc.team.is_some() && oidc.user.is_some() {
        failures.push(
            format!("{property}.user"),
            "give at most one of team and user: the token is a team token or a personal token",
        );
    }
    if let Some(preview_team) = &oidc.preview_team {
        let at = format!("{property}.previewTeam");
        if oidc.team.as_ref() == Some(preview_team) && !is_unknown(preview_team) {
            failures.push(
                at.clone(),
                "is the deploy team, which can write the stack; name a team that can only read it",
            );
        }
        if pulumi.preview_access_token_secret_arn.is_some() {
            failures.push(
                at,
                "give either previewTeam or previewAccessTokenSecretArn, not both",
            );
        }
    }
    let version = deploy::pulumi_version(pulumi);
    let (major, minor, patch) = pulumi_cli::OIDC_MIN_PULUMI_VERSION;
    if pulumi_cli::parse_version(version).is_some_and(|v| v < pulumi_cli::OIDC_MIN_PULUMI_VERSION) {
        failures.push(
            format!("{path}.pulumiVersion"),
            format!("`{version}` cannot log in with pulumiCloudOidc: `pulumi login --oidc-token` came in {major}.{minor}.{patch}; use that version or later"),
        );
    }
}

/// `s3://bucket[/prefix][?query]`: a bucket name S3 accepts, and a prefix
/// and query the stage's grants can be built from exactly.
fn s3_backend(property: &str, url: &str, failures: &mut Failures) {
    let Some(backend) = deploy::S3Backend::parse(url) else {
        failures.push(
            property,
            format!("`{url}` names no bucket; use s3://bucket/prefix"),
        );
        return;
    };
    let bucket = &backend.bucket;
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-".contains(c))
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid_bucket {
        failures.push(
            property,
            format!("`{bucket}` is not an S3 bucket name; use s3://bucket/prefix"),
        );
    }
    if !backend
        .prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    {
        failures.push(
            property,
            format!("the prefix `{}` may only hold letters, digits and - _ . / (the stage's state grants are built from it)", backend.prefix),
        );
    }
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let valid_query = query.split('&').filter(|p| !p.is_empty()).all(|p| {
        p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.=".contains(c))
    });
    if !valid_query {
        failures.push(
            property,
            "query parameters may only hold letters, digits and - _ . =, e.g. ?region=eu-west-1",
        );
    }
    if query
        .split('&')
        .any(|p| p.split('=').next() == Some("profile"))
    {
        failures.push(
            property,
            "remove `profile`: the state is read with the stage's own role",
        );
    }
}

/// Non-production roles are denied what production stages own, so nothing
/// a non-production stage (or the build) uses may be owned by production.
fn production_isolation(args: &SecurePipelineArgs, failures: &mut Failures) {
    let deployments = args.deployments.as_deref().unwrap_or_default();
    // Only whether two stages' paths coincide matters, not the partition.
    let arns = Arns {
        partition: "aws",
        account: "",
        region: "",
    };
    let protected = deploy::Protected::of(&arns, deployments);
    // Pulumi Cloud stacks production deploys: (backend URL, stack).
    let production_cloud_stacks: Vec<(Option<&str>, &str)> = deployments
        .iter()
        .filter(|d| deploy::is_production(d))
        .filter_map(|d| d.pulumi.as_ref())
        .filter(|p| deploy::pulumi_cloud(p))
        .map(|p| (p.backend_url.as_deref(), p.stack.as_str()))
        .collect();
    // Parameters are per region: the same name elsewhere is another one.
    let production_parameter = |region: &str, variable: &EnvironmentVariable| {
        variable.parameter_name.as_ref().is_some_and(|name| {
            protected
                .parameters
                .contains(&arns.in_region(region).ssm_parameter(name))
        })
    };
    // `denied` says who is denied production's secrets and parameters,
    // `owner` who should have its own.
    let shared_environment = |path: &str,
                              environment: Option<&BTreeMap<String, EnvironmentVariable>>,
                              region: &str,
                              (denied, owner): (&str, &str),
                              failures: &mut Failures| {
        for (name, variable) in environment.into_iter().flatten() {
            if variable
                .secret_arn
                .as_ref()
                .is_some_and(|a| protected.secrets.contains(a))
            {
                failures.push(
                    format!("{path}.environment.{name}.secretArn"),
                    format!("is a production stage's secret, which {denied} denied; give {owner} its own secret"),
                );
            }
            if production_parameter(region, variable) {
                failures.push(
                    format!("{path}.environment.{name}.parameterName"),
                    format!("is a production stage's parameter, which {denied} denied; give {owner} its own parameter"),
                );
            }
        }
    };
    if args
        .kms_key_arn
        .as_ref()
        .is_some_and(|k| protected.keys.contains(k))
    {
        failures.push(
            "kmsKeyArn",
            "is a production stack's secrets key (pulumiStack.secretsKmsKeyArn), which every non-production role is denied, yet every role uses the pipeline's key; give the pipeline or the stack another key",
        );
    }
    shared_environment(
        "build",
        args.build.environment.as_ref(),
        "",
        ("the build is", "the build"),
        failures,
    );
    for (index, deployment) in deployments.iter().enumerate() {
        if deploy::is_production(deployment) {
            continue;
        }
        let path = format!("deployments[{index}]");
        let shares_state = deployment
            .pulumi
            .as_ref()
            .and_then(|p| deploy::stack_state(&arns, p))
            .is_some_and(|state| state.objects().iter().any(|o| protected.state.contains(o)));
        let shares_cloud_stack = deployment.pulumi.as_ref().is_some_and(|p| {
            deploy::pulumi_cloud(p)
                && production_cloud_stacks.contains(&(p.backend_url.as_deref(), p.stack.as_str()))
        });
        if shares_state || shares_cloud_stack {
            failures.push(
                format!("{path}.pulumiStack.stack"),
                "is a production stage's stack, whose state non-production stages are denied; deploy another stack here",
            );
        }
        if let Some(pulumi) = &deployment.pulumi {
            if pulumi
                .secrets_kms_key_arn
                .as_ref()
                .is_some_and(|k| protected.keys.contains(k))
            {
                failures.push(
                    format!("{path}.pulumiStack.secretsKmsKeyArn"),
                    "is a production stack's secrets key, which non-production stages are denied; give this stage its own key",
                );
            }
            for (key, arn) in [
                ("accessTokenSecretArn", &pulumi.access_token_secret_arn),
                ("passphraseSecretArn", &pulumi.passphrase_secret_arn),
            ] {
                if arn.as_ref().is_some_and(|a| protected.secrets.contains(a)) {
                    failures.push(
                        format!("{path}.pulumiStack.{key}"),
                        "is a production stage's secret, which non-production stages are denied; give this stage its own secret",
                    );
                }
            }
        }
        shared_environment(
            &path,
            deployment.environment.as_ref(),
            deploy::region(deployment, ""),
            ("non-production stages are", "this stage"),
            failures,
        );
        if deployment
            .preview_role_arn
            .as_ref()
            .is_some_and(|r| protected.roles.contains(r))
        {
            failures.push(
                format!("{path}.previewRoleArn"),
                "is a role a production stage uses, which non-production stages are denied; give this stage its own role",
            );
        }
        if deployment
            .assume_role_arn
            .as_ref()
            .is_some_and(|r| protected.roles.contains(r))
        {
            failures.push(
                format!("{path}.assumeRoleArn"),
                "is a role a production stage uses (its assumeRoleArn or previewRoleArn), which non-production stages are denied; give this stage its own role",
            );
        }
    }
}

fn notify(notifications: &Notifications, failures: &mut Failures) {
    // The topic's own rules, reported at this component's property path.
    if let Some(emails) = &notifications.emails {
        failures.extend(topic::check_emails("notifications.emails", emails));
    }
    if let Some(events) = &notifications.events {
        if events.is_empty() {
            failures.push(
                "notifications.events",
                "give at least one event, or omit events for FAILED",
            );
        }
        if events.iter().collect::<BTreeSet<_>>().len() != events.len() {
            failures.push("notifications.events", "an event is listed twice");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(value: serde_json::Value) -> SecurePipelineArgs {
        serde_json::from_value(value).unwrap()
    }

    fn properties(value: serde_json::Value) -> Vec<String> {
        let ctx = CheckContext {
            name: "app",
            random_seed: &[],
            aws: None,
        };
        match validate(&ctx, &args(value), &BTreeSet::new()).into_result(()) {
            Ok(()) => Vec::new(),
            Err(failures) => failures.into_iter().map(|f| f.property).collect(),
        }
    }

    #[test]
    fn a_minimal_pipeline_is_valid() {
        assert!(properties(
            json!({"source": {"repository": "org/app"}, "build": {"commands": ["make test"]}})
        )
        .is_empty());
    }

    #[test]
    fn the_build_must_choose_what_it_runs() {
        let found = failures(json!({"source": {"repository": "org/app"}, "build": {}}));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].property, "build");
        assert!(found[0]
            .reason
            .contains("nothing defaults to the repository's buildspec.yml"));
        for chosen in [
            json!({"commands": ["make"]}),
            json!({"buildspec": "version: 0.2\nphases:\n  build:\n    commands: [make]\n"}),
            json!({"buildspecPath": "ci/build.yml"}),
        ] {
            assert!(
                properties(json!({"source": {"repository": "org/app"}, "build": chosen}))
                    .is_empty()
            );
        }
    }

    #[test]
    fn access_log_retention_is_in_range() {
        let base = json!({"source": {"repository": "org/app"}, "build": {"commands": ["make"]}});
        for (days, ok) in [
            (0, false),
            (1, true),
            (365, true),
            (3650, true),
            (3651, false),
        ] {
            let mut input = base.clone();
            input["accessLogRetentionDays"] = json!(days);
            let found = properties(input);
            assert_eq!(found.is_empty(), ok, "{days}: {found:?}");
            if !ok {
                assert_eq!(found, vec!["accessLogRetentionDays"]);
            }
        }
    }

    #[test]
    fn reports_every_failure_at_once() {
        let failed = properties(json!({
            "source": {"repository": "app", "branch": "bad branch"},
            "build": {"commands": ["x"], "buildspecPath": "b.yml", "timeoutMinutes": 3000,
                      "environment": {"GITHUB_TOKEN": {"value": "ghp_abc"}}},
            "logRetentionDays": 10,
            "schedule": "every day"
        }));
        assert_eq!(
            failed,
            vec![
                "source.repository",
                "source.branch",
                "build",
                "build.timeoutMinutes",
                "build.environment.GITHUB_TOKEN.value",
                "schedule",
                "logRetentionDays",
            ]
        );
    }

    #[test]
    fn deployments_need_unique_names_and_one_kind() {
        let failed = properties(json!({
            "source": {"repository": "org/app"}, "build": {"commands": ["make"]},
            "deployments": [
                {"name": "dev", "commands": ["./deploy"], "assumeRoleArn": "arn:aws:s3:::bucket"},
                {"name": "dev", "commands": ["./deploy"], "pulumiStack": {"stack": "dev", "backendUrl": "s3://state", "passphraseSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:p-AbCdEf"}},
                {"name": "prod", "region": "mars-1", "pulumiStack": {"stack": "org/app/prod"}}
            ]
        }));
        assert_eq!(
            failed,
            vec![
                "deployments[0].assumeRoleArn",
                "deployments[1].name",
                "deployments[1]",
                "deployments[1].pulumiStack.stack",
                "deployments[2].region",
                "deployments[2].pulumiStack.accessTokenSecretArn",
            ]
        );
    }

    #[test]
    fn a_stage_cannot_take_the_names_of_another_stages_log_group_or_role() {
        let stages = |names: &[&str]| {
            let deployments: Vec<serde_json::Value> = names
                .iter()
                .map(|name| json!({"name": name, "commands": ["./deploy"]}))
                .collect();
            properties(json!({
                "source": {"repository": "org/app"}, "build": {"commands": ["make"]},
                "deployments": deployments,
            }))
        };
        assert_eq!(
            stages(&["dev", "dev-logs", "dev-role"]),
            vec!["deployments[1].name", "deployments[2].name"]
        );
        assert!(stages(&["dev-logs", "prod-role"]).is_empty());
    }

    const TOKEN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pulumi-token-AbCdEf";
    const PASSPHRASE: &str =
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:passphrase-AbCdEf";

    #[test]
    fn s3_backends_need_a_project_stack_and_an_exact_location() {
        let pulumi = |stack: &str, url: &str| {
            json!({"source": {"repository": "org/app"}, "build": {"commands": ["make"]}, "deployments": [
                {"name": "dev", "pulumiStack": {"stack": stack, "backendUrl": url, "passphraseSecretArn": PASSPHRASE}}
            ]})
        };
        assert!(properties(pulumi("app/dev", "s3://state/pulumi?region=eu-west-1")).is_empty());
        assert!(properties(pulumi("organization/app/dev", "s3://state")).is_empty());
        assert_eq!(
            properties(pulumi("dev", "s3://state")),
            vec!["deployments[0].pulumiStack.stack"]
        );
        assert_eq!(
            properties(pulumi("acme/app/dev", "s3://state")),
            vec!["deployments[0].pulumiStack.stack"]
        );
        for url in [
            "s3://state/*",
            "s3://St",
            "s3://state?profile=admin",
            "s3://state?x=$(id)",
            "s3://",
        ] {
            assert_eq!(
                properties(pulumi("app/dev", url)),
                vec!["deployments[0].pulumiStack.backendUrl"],
                "{url}"
            );
        }
        let bad_dir = json!({"source": {"repository": "org/app"}, "build": {"commands": ["make"]}, "deployments": [
            {"name": "dev", "pulumiStack": {"stack": "app/dev", "workDir": "infra; rm -rf /", "backendUrl": "s3://state", "passphraseSecretArn": PASSPHRASE}}
        ]});
        assert_eq!(
            properties(bad_dir),
            vec!["deployments[0].pulumiStack.workDir"]
        );
    }

    #[test]
    fn a_stage_in_another_region_reads_secrets_there() {
        let failed = properties(
            json!({"source": {"repository": "org/app"}, "build": {"commands": ["make"]}, "deployments": [
                {"name": "staging", "region": "us-west-2", "pulumiStack": {"stack": "org/app/staging", "accessTokenSecretArn": TOKEN},
                 "environment": {"DB": {"secretArn": TOKEN.replace("eu-west-1", "us-west-2")}}}
            ]}),
        );
        assert_eq!(
            failed,
            vec!["deployments[0].pulumiStack.accessTokenSecretArn"]
        );
    }

    #[test]
    fn generated_variables_cannot_be_overridden() {
        let failed = properties(
            json!({"source": {"repository": "org/app"}, "build": {"commands": ["make"]}, "deployments": [
                {"name": "dev", "commands": ["x"], "environment": {"AWS_PROFILE": {"value": "admin"}, "PULUMI_CONFIG_PASSPHRASE": {"value": "x"}}}
            ]}),
        );
        assert_eq!(
            failed,
            vec![
                "deployments[0].environment.AWS_PROFILE",
                "deployments[0].environment.PULUMI_CONFIG_PASSPHRASE"
            ]
        );
    }

    #[test]
    fn preview_credentials_are_never_the_deploy_credentials() {
        let deployer = "arn:aws:iam::210987654321:role/deployer";
        let read_token = TOKEN.replace("pulumi-token", "pulumi-read-token");
        let failed = properties(json!({
        "source": {"repository": "org/app"}, "build": {"commands": ["make"]}, "deployments": [
            {"name": "prod", "production": true, "assumeRoleArn": deployer, "previewRoleArn": deployer,
             "pulumiStack": {"stack": "org/app/prod", "accessTokenSecretArn": TOKEN, "previewAccessTokenSecretArn": TOKEN}},
            {"name": "qa", "previewRoleArn": "arn:aws:iam::210987654321:user/previewer",
             "pulumiStack": {"stack": "org/app/qa", "accessTokenSecretArn": TOKEN.replace("pulumi-token", "qa-token"),
               "previewAccessTokenSecretArn": read_token}},
            {"name": "dev", "requireApproval": true, "pulumiStack": {"stack": "app/dev", "backendUrl": "s3://state",
               "passphraseSecretArn": TOKEN.replace("pulumi-token", "dev-pass"), "previewAccessTokenSecretArn": read_token}}
        ]}));
        assert_eq!(
            failed,
            vec![
                "deployments[0].pulumiStack.previewAccessTokenSecretArn",
                "deployments[0].previewRoleArn",
                "deployments[1].pulumiStack.previewAccessTokenSecretArn",
                "deployments[1].previewRoleArn",
                "deployments[1].previewRoleArn",
                "deployments[2].pulumiStack.previewAccessTokenSecretArn",
            ]
        );
        // A read-only role and token are accepted.
        assert!(properties(json!({
            "source": {"repository": "org/app"}, "build": {"commands": ["make"]}, "deployments": [
                {"name": "prod", "production": true, "assumeRoleArn": deployer,
                 "previewRoleArn": "arn:aws:iam::210987654321:role/previewer",
                 "pulumiStack": {"stack": "org/app/prod", "accessTokenSecretArn": TOKEN, "previewAccessTokenSecretArn": read_token}}
            ]}))
        .is_empty());
    }

    #[test]
    fn production_stacks_parameters_and_roles_are_not_shared() {
        let failed = properties(json!({
        "source": {"repository": "org/app"},
        "build": {"commands": ["make"], "environment": {"DB": {"parameterName": "/app/prod/db"}}},
        "deployments": [
            {"name": "qa", "assumeRoleArn": "arn:aws:iam::210987654321:role/previewer",
             "environment": {"DB": {"parameterName": "/app/prod/db"}},
             "pulumiStack": {"stack": "org/app/prod", "accessTokenSecretArn": TOKEN.replace("pulumi-token", "qa-token")}},
            {"name": "qa-west", "region": "us-west-2", "commands": ["x"],
             "environment": {"DB": {"parameterName": "/app/prod/db"}}},
            {"name": "prod", "production": true, "assumeRoleArn": "arn:aws:iam::210987654321:role/deployer",
             "previewRoleArn": "arn:aws:iam::210987654321:role/previewer",
             "environment": {"DB": {"parameterName": "/app/prod/db"}},
             "pulumiStack": {"stack": "org/app/prod", "accessTokenSecretArn": TOKEN,
               "previewAccessTokenSecretArn": TOKEN.replace("pulumi-token", "read-token")}}
        ]}));
        // The same parameter name in another region is another parameter.
        assert_eq!(
            failed,
            vec![
                "build.environment.DB.parameterName",
                "deployments[0].pulumiStack.stack",
                "deployments[0].environment.DB.parameterName",
                "deployments[0].assumeRoleArn",
            ]
        );
    }

    #[test]
    fn approval_timeouts_need_an_approval() {
        let stage = |extra: serde_json::Value| {
            let mut d = json!({"name": "dev", "commands": ["x"], "approvalTimeoutMinutes": 60});
            d.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            properties(
                json!({"source": {"repository": "org/app"}, "build": {"commands": ["make"]}, "deployments": [d]}),
            )
        };
        assert_eq!(
            stage(json!({})),
            vec!["deployments[0].approvalTimeoutMinutes"]
        );
        assert!(stage(json!({"production": true})).is_empty());
        assert!(stage(json!({"requireApproval": true})).is_empty());
        assert_eq!(
            stage(json!({"production": true, "requireApproval": false})),
            vec!["deployments[0].approvalTimeoutMinutes"]
        );
    }

    #[test]
    fn nothing_production_owns_is_shared_with_other_stages() {
        let failed = properties(json!({
            "source": {"repository": "org/app"},
            "build": {"commands": ["make"], "environment": {"TOKEN": {"secretArn": TOKEN}}},
            "deployments": [
                {"name": "dev", "assumeRoleArn": "arn:aws:iam::210987654321:role/deployer",
                 "pulumiStack": {"stack": "org/app/dev", "accessTokenSecretArn": TOKEN}},
                {"name": "staging", "pulumiStack": {"stack": "app/prod", "backendUrl": "s3://state", "passphraseSecretArn": PASSPHRASE}},
                {"name": "prod", "production": true, "assumeRoleArn": "arn:aws:iam::210987654321:role/deployer",
                 "pulumiStack": {"stack": "organization/app/prod", "backendUrl": "s3://state", "accessTokenSecretArn": TOKEN, "passphraseSecretArn": PASSPHRASE}}
            ]
        }));
        assert_eq!(
            failed,
            vec![
                "build.environment.TOKEN.secretArn",
                "deployments[0].pulumiStack.accessTokenSecretArn",
                "deployments[0].assumeRoleArn",
                "deployments[1].pulumiStack.stack",
                "deployments[1].pulumiStack.passphraseSecretArn",
            ]
        );
    }

    #[test]
    fn secrets_must_be_references() {
        let failed = properties(json!({
            "source": {"repository": "org/app"},
            "build": {"commands": ["make"], "environment": {
                "NPM_TOKEN": {"secretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:npm-AbCdEf", "secretJsonKey": "token"},
                "DB": {"parameterName": "/app/db"},
                "AWS_KEY": {"value": "AKIAIOSFODNN7EXAMPLE"},
                "BOTH": {"value": "x", "parameterName": "/p"},
                "ORPHAN_KEY": {"parameterName": "/p", "secretJsonKey": "k"},
                "WRONG": {"secretArn": "arn:aws:ssm:eu-west-1:123456789012:parameter/p"}
            }}
        }));
        assert_eq!(
            failed,
            vec![
                "build.environment.AWS_KEY.value",
                "build.environment.BOTH",
                "build.environment.ORPHAN_KEY.secretJsonKey",
                "build.environment.WRONG.secretArn",
            ]
        );
    }

    fn failures(value: serde_json::Value) -> Vec<CheckFailure> {
        let ctx = CheckContext {
            name: "app",
            random_seed: &[],
            aws: None,
        };
        validate(&ctx, &args(value), &BTreeSet::new())
            .into_result(())
            .err()
            .unwrap_or_default()
    }

    const SECRETS_KEY: &str =
        "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    /// A pipeline with one Pulumi stage `stage`, and failures as
    /// (property, reason).
    fn stage_failures(stage: serde_json::Value) -> Vec<(String, String)> {
        failures(json!({"source": {"repository": "org/app"}, "build": {"commands": ["make"]}, "deployments": [stage]}))
            .into_iter()
            .map(|f| (f.property, f.reason))
            .collect()
    }

    fn only_property(found: &[(String, String)], property: &str, mentions: &[&str]) {
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].0, property, "{found:#?}");
        for word in mentions {
            assert!(found[0].1.contains(word), "`{word}` not in {found:#?}");
        }
    }

    #[test]
    fn a_stack_keeps_its_secrets_with_one_kms_key_or_a_passphrase() {
        let s3 = |extra: serde_json::Value| {
            let mut stack = json!({"stack": "app/dev", "backendUrl": "s3://state"});
            stack
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            stage_failures(json!({"name": "dev", "pulumiStack": stack}))
        };
        assert_eq!(s3(json!({"secretsKmsKeyArn": SECRETS_KEY})), vec![]);
        only_property(
            &s3(json!({"secretsKmsKeyArn": SECRETS_KEY, "passphraseSecretArn": PASSPHRASE})),
            "deployments[0].pulumiStack.secretsKmsKeyArn",
            &["secretsKmsKeyArn", "passphraseSecretArn", "not both"],
        );
        only_property(
            &s3(json!({})),
            "deployments[0].pulumiStack.passphraseSecretArn",
            &["secretsKmsKeyArn", "passphraseSecretArn"],
        );
        only_property(
            &s3(json!({"secretsKmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/*"})),
            "deployments[0].pulumiStack.secretsKmsKeyArn",
            &["wildcard"],
        );
        only_property(
            &s3(json!({"secretsKmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:alias/pulumi"})),
            "deployments[0].pulumiStack.secretsKmsKeyArn",
            &["key/"],
        );
    }

    #[test]
    fn production_secrets_keys_are_not_shared() {
        let prod = json!({"name": "prod", "production": true, "pulumiStack": {
            "stack": "app/prod", "backendUrl": "s3://state", "secretsKmsKeyArn": SECRETS_KEY}});
        let found = failures(
            json!({"source": {"repository": "org/app"}, "build": {"commands": ["make"]},
            "kmsKeyArn": SECRETS_KEY,
            "deployments": [
                {"name": "dev", "pulumiStack": {"stack": "app/dev", "backendUrl": "s3://state", "secretsKmsKeyArn": SECRETS_KEY}},
                prod
            ]}),
        );
        let properties: Vec<&str> = found.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(
            properties,
            vec!["kmsKeyArn", "deployments[0].pulumiStack.secretsKmsKeyArn"]
        );
        assert!(
            found[1].reason.contains("production stack's secrets key"),
            "{found:#?}"
        );
    }

    #[test]
    fn oidc_logs_in_to_pulumi_cloud_only_with_a_cli_that_can() {
        let cloud = |stack: serde_json::Value| {
            let mut pulumi = json!({"stack": "acme/app/dev", "pulumiCloudOidc": {"organization": "acme", "team": "deployers"}});
            pulumi
                .as_object_mut()
                .unwrap()
                .extend(stack.as_object().unwrap().clone());
            stage_failures(json!({"name": "dev", "pulumiStack": pulumi}))
        };
        assert_eq!(cloud(json!({})), vec![]);
        assert_eq!(cloud(json!({"pulumiVersion": "3.209.0"})), vec![]);
        only_property(
            &cloud(json!({"pulumiVersion": "3.208.0"})),
            "deployments[0].pulumiStack.pulumiVersion",
            &["3.208.0", "3.209.0", "pulumiCloudOidc"],
        );
        only_property(
            &cloud(json!({"accessTokenSecretArn": TOKEN})),
            "deployments[0].pulumiStack.pulumiCloudOidc",
            &["accessTokenSecretArn", "not both"],
        );
        only_property(
            &cloud(
                json!({"backendUrl": "s3://state", "stack": "app/dev", "passphraseSecretArn": PASSPHRASE}),
            ),
            "deployments[0].pulumiStack.pulumiCloudOidc",
            &["backendUrl", "Pulumi Cloud"],
        );
        only_property(
            &cloud(
                json!({"pulumiCloudOidc": {"organization": "acme", "team": "deployers", "user": "alice"}}),
            ),
            "deployments[0].pulumiStack.pulumiCloudOidc.user",
            &["team and user"],
        );
        only_property(
            &cloud(json!({"pulumiCloudOidc": {"organization": "acme corp"}})),
            "deployments[0].pulumiStack.pulumiCloudOidc.organization",
            &["acme corp"],
        );
        // The preview's team has no effect without an approval.
        only_property(
            &cloud(json!({"pulumiCloudOidc": {"organization": "acme", "previewTeam": "readers"}})),
            "deployments[0].pulumiStack.pulumiCloudOidc.previewTeam",
            &["approval"],
        );
        let prod = |oidc: serde_json::Value, extra: serde_json::Value| {
            let mut pulumi = json!({"stack": "acme/app/prod", "pulumiCloudOidc": oidc});
            pulumi
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            stage_failures(json!({"name": "prod", "production": true, "pulumiStack": pulumi}))
        };
        assert_eq!(
            prod(
                json!({"organization": "acme", "team": "deployers", "previewTeam": "readers"}),
                json!({})
            ),
            vec![]
        );
        only_property(
            &prod(
                json!({"organization": "acme", "team": "deployers", "previewTeam": "deployers"}),
                json!({}),
            ),
            "deployments[0].pulumiStack.pulumiCloudOidc.previewTeam",
            &["deploy team"],
        );
        only_property(
            &prod(
                json!({"organization": "acme", "previewTeam": "readers"}),
                json!({"previewAccessTokenSecretArn": TOKEN}),
            ),
            "deployments[0].pulumiStack.pulumiCloudOidc.previewTeam",
            &["previewAccessTokenSecretArn"],
        );
    }

    #[test]
    fn a_pinned_cli_hash_is_a_sha256_of_a_pinned_release() {
        let hash = "a".repeat(64);
        let pinned = |extra: serde_json::Value| {
            let mut stack = json!({"stack": "app/dev", "backendUrl": "s3://state", "passphraseSecretArn": PASSPHRASE});
            stack
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            stage_failures(json!({"name": "dev", "pulumiStack": stack}))
        };
        assert_eq!(
            pinned(json!({"pulumiCliSha256": hash, "pulumiVersion": "3.248.0"})),
            vec![]
        );
        only_property(
            &pinned(json!({"pulumiCliSha256": "abc", "pulumiVersion": "3.248.0"})),
            "deployments[0].pulumiStack.pulumiCliSha256",
            &["SHA-256"],
        );
        only_property(
            &pinned(json!({"pulumiCliSha256": hash})),
            "deployments[0].pulumiStack.pulumiCliSha256",
            &["pulumiVersion"],
        );
        // Where the CLI comes from is no input.
        let found = properties(
            json!({"source": {"repository": "org/app"}, "build": {"commands": ["make"]}, "deployments": [
                {"name": "dev", "commands": ["x"], "environment": {
                    "SECUREPIPELINE_PULUMI_RELEASES_URL": {"value": "https://mirror.example.com"},
                    "SECUREPIPELINE_PULUMI_CHECKSUMS_URL": {"value": "https://mirror.example.com"}
                }}
            ]}),
        );
        assert_eq!(
            found,
            vec![
                "deployments[0].environment.SECUREPIPELINE_PULUMI_CHECKSUMS_URL",
                "deployments[0].environment.SECUREPIPELINE_PULUMI_RELEASES_URL"
            ]
        );
    }

    #[test]
    fn a_users_key_must_be_in_the_pipelines_region() {
        let aws = crate::resources::event_rule::tests::aws();
        let ctx = CheckContext {
            name: "app",
            random_seed: &[],
            aws: Some(&aws),
        };
        let with_key = |key: &str| {
            args(
                json!({"source": {"repository": "org/app"}, "build": {"commands": ["make"]}, "kmsKeyArn": key}),
            )
        };
        let region = &aws.region;
        let elsewhere = if region == "eu-west-1" {
            "us-west-2"
        } else {
            "eu-west-1"
        };
        let here = format!("arn:aws:kms:{region}:{}:key/k-1", aws.account_id);
        assert!(validate(&ctx, &with_key(&here), &BTreeSet::new())
            .into_result(())
            .is_ok());
        let failures = validate(
            &ctx,
            &with_key(&here.replace(region.as_str(), elsewhere)),
            &BTreeSet::new(),
        )
        .into_result(())
        .unwrap_err();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(failures[0].property, "kmsKeyArn");
        assert!(
            failures[0].reason.contains(&format!(
                "is in region {elsewhere}, but the pipeline runs in {region}"
            )),
            "{}",
            failures[0].reason
        );
    }

    #[test]
    fn every_user_arn_names_exactly_one_thing() {
        let found = failures(json!({
            "source": {"repository": "org/app", "connectionArn": "arn:aws:codeconnections:eu-west-1:123456789012:connection/*"},
            "build": {"commands": ["make"], "environment": {
                "NPM": {"secretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:npm-*"},
                "PARTIAL": {"secretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:npm-token"}
            }},
            "kmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/?bcd",
            "deployments": [
                {"name": "prod", "commands": ["x"], "assumeRoleArn": "arn:aws:iam::210987654321:role/deploy*"},
                {"name": "dev", "pulumiStack": {"stack": "org/app/dev", "accessTokenSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pulumi-token"}}
            ]
        }));
        let at: Vec<(&str, &str)> = found
            .iter()
            .map(|f| (f.property.as_str(), f.reason.as_str()))
            .collect();
        let expect = [
            ("source.connectionArn", "wildcard"),
            ("build.environment.NPM.secretArn", "wildcard"),
            ("build.environment.PARTIAL.secretArn", "describe-secret"),
            ("deployments[0].assumeRoleArn", "wildcard"),
            (
                "deployments[1].pulumiStack.accessTokenSecretArn",
                "partial secret ARN",
            ),
            ("kmsKeyArn", "wildcard"),
        ];
        assert_eq!(at.len(), expect.len(), "{at:?}");
        for ((property, reason), (want_property, want_reason)) in at.iter().zip(expect) {
            assert_eq!(*property, want_property);
            assert!(reason.contains(want_reason), "{property}: {reason}");
        }
    }

    #[test]
    fn a_secret_value_must_be_passed_by_reference() {
        let ctx = CheckContext {
            name: "app",
            random_seed: &[],
            aws: None,
        };
        let pipeline = args(json!({
            "source": {"repository": "org/app"},
            "build": {"commands": ["make"], "environment": {"DB_URL": {"value": "postgres-host"}, "MODE": {"value": "ci"}}},
            "deployments": [{"name": "dev", "commands": ["x"], "environment": {"HOOK": {"value": "h"}}}]
        }));
        let secrets = BTreeSet::from([
            "build.environment.DB_URL.value".to_string(),
            "deployments[0].environment".to_string(),
        ]);
        let found = validate(&ctx, &pipeline, &secrets)
            .into_result(())
            .unwrap_err();
        let at: Vec<&str> = found.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(
            at,
            vec![
                "build.environment.DB_URL.value",
                "deployments[0].environment.HOOK.value"
            ]
        );
        assert!(found[0].reason.contains("secretArn"), "{}", found[0].reason);
        assert!(!found[0].reason.contains("postgres-host"));
        assert!(validate(&ctx, &pipeline, &BTreeSet::new()).is_empty());
    }

    #[test]
    fn a_secret_command_is_rejected_because_the_buildspec_is_plain_text() {
        let ctx = CheckContext {
            name: "app",
            random_seed: &[],
            aws: None,
        };
        let pipeline = args(json!({
            "source": {"repository": "org/app"},
            "build": {"commands": ["make", "deploy --key k3y"]},
            "deployments": [{"name": "dev", "commands": ["./deploy"]}]
        }));
        let secrets = BTreeSet::from([
            "build.commands[1]".to_string(),
            "deployments[0].commands".to_string(),
        ]);
        let found = validate(&ctx, &pipeline, &secrets)
            .into_result(())
            .unwrap_err();
        let at: Vec<&str> = found.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(at, vec!["build.commands[1]", "deployments[0].commands[0]"]);
        assert!(found.iter().all(|f| !f.reason.contains("k3y")));
        let inline = args(json!({
            "source": {"repository": "org/app"},
            "build": {"buildspec": "version: 0.2\nphases:\n  build:\n    commands: [make]\n"}
        }));
        let found = validate(&ctx, &inline, &BTreeSet::from(["build".to_string()]))
            .into_result(())
            .unwrap_err();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].property, "build.buildspec");
    }

    #[test]
    fn credentials_in_commands_are_rejected_without_echoing_them() {
        let token = "ghp_0123456789abcdefABCDEF0123456789abcd";
        let found = failures(json!({
            "source": {"repository": "org/app"},
            "build": {"commands": ["npm ci", format!("git clone https://x:{token}@github.com/o/r"), "echo $TOKEN"]},
            "deployments": [
                {"name": "dev", "commands": ["./deploy", "curl -H 'Authorization: Bearer abcdefgh12345678' https://hooks"]},
                {"name": "qa", "commands": ["aws configure set aws_access_key_id AKIAIOSFODNN7EXAMPLE"]}
            ]
        }));
        let at: Vec<(&str, &str)> = found
            .iter()
            .map(|f| (f.property.as_str(), f.reason.as_str()))
            .collect();
        assert_eq!(
            at.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            vec![
                "build.commands[1]",
                "deployments[0].commands[1]",
                "deployments[1].commands[0]"
            ]
        );
        assert!(at[0].1.contains("a GitHub token"), "{}", at[0].1);
        assert!(at[1].1.contains("Authorization header"), "{}", at[1].1);
        assert!(at[2].1.contains("AWS access key id"), "{}", at[2].1);
        for (_, reason) in &at {
            for secret in [token, "abcdefgh12345678", "AKIAIOSFODNN7EXAMPLE"] {
                assert!(!reason.contains(secret), "{reason}");
            }
        }
    }

    #[test]
    fn inline_buildspecs_are_scanned_line_by_line() {
        let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - make\n      - npm publish --//registry.npmjs.org/:_authToken=npm_0123456789abcdefghijABCDEFGHIJ0123\n";
        let found =
            failures(json!({"source": {"repository": "org/app"}, "build": {"buildspec": spec}}));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].property, "build.buildspec");
        assert!(
            found[0].reason.starts_with("line 6: holds an npm token"),
            "{}",
            found[0].reason
        );
        let key = "version: 0.2\nphases:\n  build:\n    commands:\n      - |\n        cat > k <<EOF\n        -----BEGIN EC PRIVATE KEY-----\n        MHcC\n        -----END EC PRIVATE KEY-----\n        EOF\n";
        let found =
            failures(json!({"source": {"repository": "org/app"}, "build": {"buildspec": key}}));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].reason.contains("private key"),
            "{}",
            found[0].reason
        );
    }

    #[test]
    fn variables_that_replace_the_role_are_reserved_everywhere() {
        let failed = properties(json!({
            "source": {"repository": "org/app"},
            "build": {"commands": ["x"], "environment": {
                "AWS_ACCESS_KEY_ID": {"secretArn": TOKEN},
                "PULUMI_BACKEND_URL": {"value": "s3://elsewhere"},
                "AWS_REGION": {"value": "eu-west-1"}
            }},
            "deployments": [{"name": "dev", "commands": ["x"], "environment": {
                "AWS_WEB_IDENTITY_TOKEN_FILE": {"parameterName": "/p"},
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": {"value": "http://169.254.170.2/creds"}
            }}]
        }));
        assert_eq!(
            failed,
            vec![
                "build.environment.AWS_ACCESS_KEY_ID",
                "build.environment.PULUMI_BACKEND_URL",
                "deployments[0].environment.AWS_CONTAINER_CREDENTIALS_FULL_URI",
                // Its name also says it is a credential.
                "deployments[0].environment.AWS_CONTAINER_CREDENTIALS_FULL_URI.value",
                "deployments[0].environment.AWS_WEB_IDENTITY_TOKEN_FILE",
            ]
        );
    }

    #[test]
    fn placeholders_nothing_resolves_are_rejected() {
        let found = failures(json!({
            "source": {"repository": "org/app"},
            "build": {"commands": ["echo ${HOME}", "echo $HOME", "git checkout #{SourceVariables.CommitId}", "ruby -e 'puts 1' # {not.a} var"], "environment": {
                "URL": {"value": "https://${HOST}/api"},
                "COMMIT": {"value": "#{SourceVariables.CommitId}"},
                "PRICE": {"value": "$5"}
            }}
        }));
        let at: Vec<(&str, &str)> = found
            .iter()
            .map(|f| (f.property.as_str(), f.reason.as_str()))
            .collect();
        assert_eq!(
            at.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            vec![
                "build.commands[2]",
                "build.environment.COMMIT.value",
                "build.environment.URL.value"
            ]
        );
        assert!(at[0].1.contains("CodePipeline variable"));
        assert!(at[0]
            .1
            .ends_with("read the value from an environment variable instead"));
        assert!(at[1].1.contains("CodePipeline variable"));
        assert!(at[2].1.contains("passes literally"));
    }

    #[test]
    fn a_pipeline_variable_written_as_a_reference_points_to_its_environment_variable() {
        let found = failures(json!({
            "source": {"repository": "org/app"},
            "build": {"commands": ["./deploy.sh #{variables.DEPLOY_TARGET}"], "environment": {
                "TARGET": {"value": "#{variables.DEPLOY_TARGET}"}
            }}
        }));
        let reasons: Vec<(&str, &str)> = found
            .iter()
            .map(|f| (f.property.as_str(), f.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        for (_, reason) in reasons {
            assert!(
                reason.ends_with("declare `DEPLOY_TARGET` in `variables` and use `$DEPLOY_TARGET`"),
                "{reason}"
            );
        }
    }

    #[test]
    fn a_branch_written_as_a_ref_is_rejected_with_its_name() {
        let found = failures(
            json!({"source": {"repository": "org/app", "branch": "refs/heads/release/1.x"}, "build": {"commands": ["make"]}}),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].property, "source.branch");
        assert!(
            found[0].reason.contains("use `release/1.x`"),
            "{}",
            found[0].reason
        );
        assert_eq!(
            properties(
                json!({"source": {"repository": "org/app", "branch": "refs/tags/v1"}, "build": {"commands": ["make"]}})
            ),
            vec!["source.branch"]
        );
        assert!(check_branch("release/refs").is_ok());
    }

    #[test]
    fn notification_addresses_are_checked_at_the_component_path() {
        let emails: Vec<String> = (0..21).map(|i| format!("dev{i}@example.com")).collect();
        assert_eq!(
            properties(
                json!({"source": {"repository": "org/app"}, "build": {"commands": ["make"]},
                "notifications": {"emails": emails}})
            ),
            vec!["notifications.emails"]
        );
        let found = failures(
            json!({"source": {"repository": "org/app"}, "build": {"commands": ["make"]},
            "notifications": {"emails": ["ops@example.com", "not-an-address", "OPS@example.com", "x@example."]}}),
        );
        let at: Vec<&str> = found.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(
            at,
            vec![
                "notifications.emails[1]",
                "notifications.emails[2]",
                "notifications.emails[3]"
            ]
        );
        assert!(found[1].reason.contains("repeats notifications.emails[0]"));
        assert!(
            found
                .iter()
                .all(|f| !f.reason.contains("not-an-address") && !f.reason.contains("OPS@")),
            "{found:?}"
        );
    }

    #[test]
    fn approvers_are_exact_principals_of_a_stage_with_an_approval() {
        let stage = |extra: serde_json::Value| {
            let mut d = json!({"name": "prod", "commands": ["x"], "production": true});
            d.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            failures(
                json!({"source": {"repository": "org/app"}, "build": {"commands": ["make"]}, "deployments": [d]}),
            )
        };
        assert!(stage(json!({"approvers": [
            "arn:aws:iam::123456789012:role/release-managers",
            "arn:aws:iam::210987654321:user/alice"
        ]}))
        .is_empty());
        let found = stage(json!({"approvers": [
            "arn:aws:iam::123456789012:role/*",
            "arn:aws:iam::123456789012:group/admins",
            "arn:aws:s3:::bucket",
            "alice",
            "arn:aws:iam::123456789012:user/bob",
            "arn:aws:iam::123456789012:user/bob"
        ]}));
        let at: Vec<(&str, &str)> = found
            .iter()
            .map(|f| (f.property.as_str(), f.reason.as_str()))
            .collect();
        assert_eq!(
            at.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            vec![
                "deployments[0].approvers[0]",
                "deployments[0].approvers[1]",
                "deployments[0].approvers[2]",
                "deployments[0].approvers[3]",
                "deployments[0].approvers[5]"
            ]
        );
        assert!(at[0].1.contains("wildcard"));
        assert!(at[4].1.contains("repeats deployments[0].approvers[4]"));
        let without = stage(
            json!({"requireApproval": false, "approvers": ["arn:aws:iam::123456789012:user/bob"]}),
        );
        assert_eq!(without.len(), 1);
        assert_eq!(without[0].property, "deployments[0].approvers");
        assert!(without[0].reason.contains("requireApproval"));
        let many: Vec<String> = (0..20)
            .map(|i| format!("arn:aws:iam::123456789012:user/approver-number-{i}"))
            .collect();
        assert_eq!(
            stage(json!({"approvers": many}))
                .iter()
                .map(|f| f.property.as_str())
                .collect::<Vec<_>>(),
            vec!["deployments[0].approvers"]
        );
    }

    #[test]
    fn self_hosted_providers_need_a_host() {
        assert_eq!(
            properties(
                json!({"source": {"repository": "org/app", "provider": "GitLabSelfManaged"}, "build": {"commands": ["make"]}})
            ),
            vec!["source.hostArn"]
        );
        assert_eq!(
            properties(
                json!({"source": {"repository": "org/app", "hostArn": "arn:aws:codeconnections:eu-west-1:123456789012:host/h"}, "build": {"commands": ["make"]}})
            ),
            vec!["source.hostArn"]
        );
    }

    #[test]
    fn schedules_follow_eventbridge_syntax() {
        assert!(check_schedule("rate(1 day)").is_ok());
        assert!(check_schedule("rate(5 minutes)").is_ok());
        assert!(check_schedule("cron(0 6 * * ? *)").is_ok());
        assert!(check_schedule("rate(1 days)").is_err());
        assert!(check_schedule("rate(0 minutes)").is_err());
        assert!(check_schedule("cron(0 6 * * *)").is_err());
        assert!(check_schedule("cron(0 6 1 * MON *)").is_err());
    }

    #[test]
    fn output_files_are_relative_and_only_for_commands() {
        assert!(properties(json!({"source": {"repository": "org/app"},
            "build": {"commands": ["make"], "outputFiles": ["dist/**/*", "infra/**/*"]}}))
        .is_empty());
        assert_eq!(
            properties(json!({"source": {"repository": "org/app"},
                "build": {"commands": ["make"], "outputFiles": ["/etc/passwd", "../x", "ok/*"]}})),
            vec!["build.outputFiles[0]", "build.outputFiles[1]"]
        );
        assert_eq!(
            properties(json!({"source": {"repository": "org/app"},
                "build": {"buildspecPath": "ci/b.yml", "outputFiles": []}})),
            vec!["build.outputFiles", "build.outputFiles"]
        );
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::protocol::json::json_to_property;
    use crate::protocol::value::tests::{any_map, fuzz_config, near};
    use crate::protocol::value::PropertyValue;
    use proptest::prelude::*;
    use serde_json::json;

    const PASSPHRASE: &str =
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:passphrase-AbCdEf";

    /// Valid inputs using every part of the contract.
    fn valid() -> Vec<PropertyMap> {
        let full = json!({
            "source": {"repository": "org/app", "branch": "main", "provider": "GitHub",
                       "includePaths": ["src/**"], "excludePaths": ["docs/**"]},
            "build": {"commands": ["make test"], "image": "aws/codebuild/standard:7.0",
                      "computeType": "BUILD_GENERAL1_SMALL", "docker": false,
                      "timeoutMinutes": 60, "queuedTimeoutMinutes": 60,
                      "environment": {"STAGE": {"value": "ci"}}},
            "deployments": [
                {"name": "dev", "commands": ["make deploy"], "region": "eu-west-1",
                 "timeoutMinutes": 30, "environment": {"TARGET": {"value": "dev"}}},
                {"name": "prod", "production": true, "requireApproval": true,
                 "approvalTimeoutMinutes": 60, "approvers": ["arn:aws:iam::123456789012:role/releasers"],
                 "rollbackOnFailure": true,
                 "pulumiStack": {"stack": "app/prod", "workDir": "infra",
                                 "backendUrl": "s3://state", "passphraseSecretArn": PASSPHRASE,
                                 "refresh": true, "previewOnly": false}}
            ],
            "notifications": {"emails": ["ops@example.com"], "events": ["FAILED", "SUCCEEDED"]},
            "schedule": "rate(1 day)",
            "logRetentionDays": 30,
            "artifactRetentionDays": 30,
            "executionMode": "QUEUED",
            "forceDestroy": false,
            "tags": {"team": "platform"}
        });
        let minimal = json!({"source": {"repository": "org/app"}, "build": {"commands": ["make"]}});
        [full, minimal]
            .iter()
            .map(|value| match json_to_property(value) {
                PropertyValue::Object(map) => map,
                _ => PropertyMap::new(),
            })
            .collect()
    }

    fn ctx() -> CheckContext<'static> {
        CheckContext {
            name: "app",
            random_seed: &[],
            aws: None,
        }
    }

    #[test]
    fn the_fuzzed_inputs_start_valid() {
        for inputs in valid() {
            if let Err(failures) = check(&ctx(), &inputs) {
                panic!("{failures:?}");
            }
        }
    }

    #[test]
    fn a_value_cannot_pose_as_a_reference_to_a_childs_output() {
        let token = crate::protocol::graph::OutputRef::new("bucket", "arn").token();
        let inputs = json!({
            "source": {"repository": "org/app"},
            "build": {"commands": ["make test", format!("aws s3 cp x {token}")]}
        });
        let PropertyValue::Object(inputs) = json_to_property(&inputs) else {
            panic!("an object converts to an object");
        };
        let failures = check(&ctx(), &inputs).err().unwrap_or_default();
        let properties: Vec<&str> = failures.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(properties, ["build.commands[1]"]);
        assert!(
            failures[0].reason.contains("private use area"),
            "{failures:?}"
        );
    }

    fn inputs() -> impl Strategy<Value = PropertyMap> {
        let valid = valid();
        let names = valid
            .iter()
            .flat_map(|map| map.keys().cloned())
            .collect::<Vec<_>>();
        prop_oneof![
            1 => any_map(names),
            3 => proptest::sample::select(valid).prop_flat_map(near),
        ]
    }

    proptest! {
        #![proptest_config(fuzz_config())]

        /// Whatever a program passes, Construct's check answers without
        /// panicking, and every rejection names the property at fault.
        #[test]
        fn bad_inputs_are_rejected_by_name(inputs in inputs()) {
            let aws = crate::resources::event_rule::tests::aws();
            // Before Configure, and after it (which adds account checks).
            for aws in [None, Some(&aws)] {
                let ctx = CheckContext { name: "app", random_seed: &[], aws };
                if let Err(failures) = check(&ctx, &inputs) {
                    prop_assert!(!failures.is_empty());
                    for failure in failures {
                        prop_assert!(!failure.property.is_empty(), "{failure:?}");
                    }
                }
            }
        }
    }
}
