//! Every rule SecurePipeline's inputs must meet, checked before any child
//! is registered. All failures are collected so that one preview shows
//! every problem, each with its property path and what to do instead.

use std::collections::BTreeSet;

use super::args::{
    Build, Deployment, EnvironmentVariable, Notifications, PulumiDeployment, SecurePipelineArgs,
    Source, SourceProvider,
};
use super::buildspec;
use super::deploy;
use crate::aws::arn::{is_region, Arn, Arns};
use crate::resource::{is_unknown, CheckContext, CheckFailure, Failures};
use crate::resources::common::{check_arn, check_kms_key_arn};
use crate::resources::log_group::check_retention;
use crate::tags;

pub const BUILD_TIMEOUT: (u32, u32) = (5, 2160);
pub const QUEUED_TIMEOUT: (u32, u32) = (5, 480);
pub const APPROVAL_TIMEOUT: (u32, u32) = (5, 10080);
pub const ARTIFACT_RETENTION: (u32, u32) = (1, 3650);

pub fn validate(ctx: &CheckContext<'_>, args: &SecurePipelineArgs) -> Failures {
    let mut failures = Failures::default();
    source(ctx, &args.source, &mut failures);
    build(ctx, &args.build, &mut failures);
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
        deploy(ctx, &path, deployment, &mut failures);
    }
    production_isolation(args, &mut failures);
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
        failures.extend(check_kms_key_arn(ctx, "kmsKeyArn", key));
    }
    if let Some(own) = &args.tags {
        failures.extend(tags::validate("tags", own));
    }
    failures
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
    let provider = source.provider.unwrap_or(SourceProvider::GitHub);
    let needs_host = matches!(
        provider,
        SourceProvider::GitHubEnterpriseServer | SourceProvider::GitLabSelfManaged
    );
    match (&source.connection_arn, &source.host_arn) {
        (Some(arn), host) => {
            failures.extend(check_arn(
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
            failures.extend(check_arn(
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
    if bad {
        Err(format!("`{branch}` is not a valid git branch name"))
    } else {
        Ok(())
    }
}

fn build(ctx: &CheckContext<'_>, build: &Build, failures: &mut Failures) {
    let given = [
        build.commands.is_some(),
        build.buildspec.is_some(),
        build.buildspec_path.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        failures.push(
            "build",
            "give only one of commands, buildspec and buildspecPath",
        );
    }
    if let Some(commands) = &build.commands {
        if commands.is_empty() {
            failures.push(
                "build.commands",
                "give at least one command, or use buildspecPath",
            );
        }
    }
    if let Some(spec) = &build.buildspec {
        if let Err(reason) = buildspec::validate(spec) {
            failures.push("build.buildspec", reason);
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
            env_var(
                ctx,
                &format!("build.environment.{name}"),
                name,
                variable,
                None,
                failures,
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

/// Names and values that must not be passed as plaintext.
pub(crate) fn looks_like_credential(name: &str, value: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let secret_name = [
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
        "ACCESS_KEY",
        "CREDENTIAL",
    ]
    .iter()
    .any(|word| upper.contains(word));
    let secret_value = [
        "AKIA",
        "ASIA",
        "ghp_",
        "gho_",
        "ghs_",
        "github_pat_",
        "glpat-",
        "xoxb-",
        "xoxp-",
        "npm_",
        "pul-",
        "sk_live_",
        "-----BEGIN",
    ]
    .iter()
    .any(|prefix| value.trim_start().starts_with(prefix));
    (secret_name && !value.is_empty()) || secret_value
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
        return check_arn(
            ctx,
            property,
            arn,
            &["secretsmanager"],
            "secret:",
            example,
            true,
        );
    };
    check_arn(ctx, property, arn, &["secretsmanager"], "secret:", example, false).or_else(|| {
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
    if let Some(value) = &variable.value {
        if looks_like_credential(name, value) {
            failures.push(
                format!("{path}.value"),
                "this looks like a credential; store it in Secrets Manager and use secretArn (or parameterName for a SecureString)",
            );
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

fn deploy(ctx: &CheckContext<'_>, path: &str, deployment: &Deployment, failures: &mut Failures) {
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
                "has no effect: only a Pulumi stage with an approval previews (a Pulumi Cloud stack also needs pulumiStack.previewAccessTokenSecretArn)",
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
            env_var(ctx, &variable_path, name, variable, region, failures);
            if deploy::RESERVED_VARIABLES.contains(&name.as_str()) {
                failures.push(
                    variable_path,
                    format!("`{name}` is set by the generated buildspec; use pulumiStack.accessTokenSecretArn / passphraseSecretArn or assumeRoleArn instead"),
                );
            }
        }
    }
}

/// An exact IAM role ARN.
fn role_arn(property: &str, role: &str, failures: &mut Failures) {
    match role.parse::<Arn>() {
        _ if is_unknown(role) => {}
        Ok(arn)
            if arn.service == "iam"
                && arn.resource.starts_with("role/")
                && !role.contains(['*', '?']) => {}
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
    if !self_managed && pulumi.access_token_secret_arn.is_none() {
        failures.push(
            format!("{path}.accessTokenSecretArn"),
            "Pulumi Cloud needs an access token; store it in Secrets Manager and set accessTokenSecretArn (or use an s3:// backendUrl)",
        );
    }
    if self_managed && pulumi.passphrase_secret_arn.is_none() {
        failures.push(
            format!("{path}.passphraseSecretArn"),
            "a self-managed backend needs the stack's config passphrase; store it in Secrets Manager and set passphraseSecretArn",
        );
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
        let valid = parts.len() == 3
            && parts[0] == "3"
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
    let production_parameter = |region: &str, variable: &super::args::EnvironmentVariable| {
        variable.parameter_name.as_ref().is_some_and(|name| {
            protected
                .parameters
                .contains(&arns.in_region(region).ssm_parameter(name))
        })
    };
    for (name, variable) in args.build.environment.iter().flatten() {
        if production_parameter("", variable) {
            failures.push(
                format!("build.environment.{name}.parameterName"),
                "is a production stage's parameter, which the build is denied; give the build its own parameter",
            );
        }
        if variable
            .secret_arn
            .as_ref()
            .is_some_and(|a| protected.secrets.contains(a))
        {
            failures.push(
                format!("build.environment.{name}.secretArn"),
                "is a production stage's secret, which the build is denied; give the build its own secret",
            );
        }
    }
    for (index, deployment) in deployments.iter().enumerate() {
        if deploy::is_production(deployment) {
            continue;
        }
        let path = format!("deployments[{index}]");
        let shares_state = deployment
            .pulumi
            .as_ref()
            .and_then(|p| deploy::stack_state(&arns, p))
            .is_some_and(|state| state.objects.iter().any(|o| protected.state.contains(o)));
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
        for (name, variable) in deployment.environment.iter().flatten() {
            if variable
                .secret_arn
                .as_ref()
                .is_some_and(|a| protected.secrets.contains(a))
            {
                failures.push(
                    format!("{path}.environment.{name}.secretArn"),
                    "is a production stage's secret, which non-production stages are denied; give this stage its own secret",
                );
            }
            if production_parameter(deploy::region(deployment, ""), variable) {
                failures.push(
                    format!("{path}.environment.{name}.parameterName"),
                    "is a production stage's parameter, which non-production stages are denied; give this stage its own parameter",
                );
            }
        }
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
    for (index, email) in notifications.emails.iter().flatten().enumerate() {
        let valid = email.split_once('@').is_some_and(|(user, domain)| {
            !user.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !email.contains(char::is_whitespace)
        });
        if !is_unknown(email) && !valid {
            failures.push(
                format!("notifications.emails[{index}]"),
                format!("`{email}` is not an email address"),
            );
        }
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

/// EventBridge schedule expressions: `rate(N unit)` or `cron(6 fields)`.
pub fn check_schedule(expression: &str) -> Result<(), String> {
    if is_unknown(expression) {
        return Ok(());
    }
    let help =
        "use rate(N minutes|hours|days) or cron(minutes hours day-of-month month day-of-week year)";
    if let Some(body) = expression
        .strip_prefix("rate(")
        .and_then(|s| s.strip_suffix(')'))
    {
        let mut parts = body.split_whitespace();
        let (Some(value), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("`{expression}` is not a valid rate; {help}"));
        };
        let Ok(n) = value.parse::<u32>() else {
            return Err(format!("`{expression}` needs a whole number; {help}"));
        };
        let unit_ok = match n {
            0 => false,
            1 => ["minute", "hour", "day"].contains(&unit),
            _ => ["minutes", "hours", "days"].contains(&unit),
        };
        return if unit_ok {
            Ok(())
        } else {
            Err(format!(
                "`{expression}` has unit `{unit}`; {help} (singular for 1)"
            ))
        };
    }
    if let Some(body) = expression
        .strip_prefix("cron(")
        .and_then(|s| s.strip_suffix(')'))
    {
        let fields: Vec<&str> = body.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(format!(
                "`{expression}` has {} fields; EventBridge cron takes 6: {help}",
                fields.len()
            ));
        }
        if fields[2] != "?" && fields[4] != "?" {
            return Err(format!(
                "`{expression}`: one of day-of-month and day-of-week must be `?`"
            ));
        }
        return Ok(());
    }
    Err(format!(
        "`{expression}` is not a schedule expression; {help}"
    ))
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
        match validate(&ctx, &args(value)).into_result(()) {
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
            "source": {"repository": "org/app"}, "build": {},
            "deployments": [
                {"name": "dev", "commands": ["./deploy"], "assumeRoleArn": "arn:aws:s3:::bucket"},
                {"name": "dev", "commands": ["./deploy"], "pulumiStack": {"stack": "dev", "backendUrl": "s3://state", "passphraseSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:p"}},
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

    const TOKEN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pulumi-token-AbCdEf";
    const PASSPHRASE: &str =
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:passphrase-AbCdEf";

    #[test]
    fn s3_backends_need_a_project_stack_and_an_exact_location() {
        let pulumi = |stack: &str, url: &str| {
            json!({"source": {"repository": "org/app"}, "build": {}, "deployments": [
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
        let bad_dir = json!({"source": {"repository": "org/app"}, "build": {}, "deployments": [
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
            json!({"source": {"repository": "org/app"}, "build": {}, "deployments": [
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
            json!({"source": {"repository": "org/app"}, "build": {}, "deployments": [
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
        "source": {"repository": "org/app"}, "build": {}, "deployments": [
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
            "source": {"repository": "org/app"}, "build": {}, "deployments": [
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
        "build": {"environment": {"DB": {"parameterName": "/app/prod/db"}}},
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
                json!({"source": {"repository": "org/app"}, "build": {}, "deployments": [d]}),
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
            "build": {"environment": {"TOKEN": {"secretArn": TOKEN}}},
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
            "build": {"environment": {
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

    #[test]
    fn self_hosted_providers_need_a_host() {
        assert_eq!(
            properties(
                json!({"source": {"repository": "org/app", "provider": "GitLabSelfManaged"}, "build": {}})
            ),
            vec!["source.hostArn"]
        );
        assert_eq!(
            properties(
                json!({"source": {"repository": "org/app", "hostArn": "arn:aws:codeconnections:eu-west-1:123456789012:host/h"}, "build": {}})
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
}
