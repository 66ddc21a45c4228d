//! Pipeline variables: values each execution resolves from its default or
//! from the value its start gives (`aws codepipeline
//! start-pipeline-execution --variables name=N,value=V`), handed to every
//! CodeBuild action as an environment variable of the same name.
//!
//! Whoever may start the pipeline sets them, and anyone who may read the
//! pipeline or its executions reads them: they are plain text by nature, so
//! nothing that looks like a credential is accepted, and no name may steer
//! how a build reaches AWS or runs Pulumi.

use std::collections::BTreeMap;

use serde_json::json;

use super::args::{EnvironmentVariable, PipelineVariable, SecurePipelineArgs};
use crate::credentials;
use crate::resource::{is_unknown, Failures};
use crate::resources::pipeline::{
    Stage, Variable, MAX_VARIABLES, MAX_VARIABLE_DESCRIPTION, MAX_VARIABLE_NAME, MAX_VARIABLE_VALUE,
};

/// Names whose variables steer the build's credentials, CodeBuild itself,
/// the Pulumi CLI or this provider's buildspecs.
const RESERVED_PREFIXES: &[&str] = &["AWS_", "CODEBUILD_", "PULUMI_", "SECUREPIPELINE_"];

/// `_`-separated words that, beyond [`credentials::is_credential_name`],
/// say a name holds a credential.
const CREDENTIAL_WORDS: &[&str] = &["KEY", "AUTH", "PASS", "PWD", "COOKIE", "PAT"];

/// Whether a variable name says it holds a credential: it contains TOKEN,
/// SECRET, PASSWORD, PASSWD, API_KEY, PRIVATE_KEY, ACCESS_KEY or
/// CREDENTIAL, or one of its `_`-separated words is KEY, AUTH, PASS, PWD,
/// COOKIE or PAT.
pub fn names_a_credential(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    credentials::is_credential_name(name)
        || upper
            .split('_')
            .any(|word| CREDENTIAL_WORDS.contains(&word))
}

const FIX: &str = "pipeline variables are plain text to whoever can start or read the pipeline; give credentials to builds by reference instead (`environment` with secretArn or parameterName)";

/// Checks `variables`; `is_secret` says whether a property path holds a
/// Pulumi secret.
pub fn check(args: &SecurePipelineArgs, is_secret: impl Fn(&str) -> bool, failures: &mut Failures) {
    let Some(variables) = &args.variables else {
        return;
    };
    if variables.len() > MAX_VARIABLES {
        failures.push(
            "variables",
            format!(
                "{} variables; CodePipeline accepts at most {MAX_VARIABLES}",
                variables.len()
            ),
        );
    }
    let environments = environments(args);
    for (name, variable) in variables {
        let path = format!("variables.{name}");
        check_name(&path, name, &environments, failures);
        check_value(&path, variable, &is_secret, failures);
    }
}

/// Every `environment` a CodeBuild action's project has, by property path.
fn environments(
    args: &SecurePipelineArgs,
) -> Vec<(String, &BTreeMap<String, EnvironmentVariable>)> {
    let mut found = Vec::new();
    if let Some(environment) = &args.build.environment {
        found.push(("build.environment".to_string(), environment));
    }
    for (index, deployment) in args.deployments.iter().flatten().enumerate() {
        if let Some(environment) = &deployment.environment {
            found.push((format!("deployments[{index}].environment"), environment));
        }
    }
    found
}

fn check_name(
    path: &str,
    name: &str,
    environments: &[(String, &BTreeMap<String, EnvironmentVariable>)],
    failures: &mut Failures,
) {
    let valid = name.len() <= MAX_VARIABLE_NAME
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        failures.push(
            path,
            format!("`{name}` cannot be both a pipeline variable and an environment variable; use 1 to {MAX_VARIABLE_NAME} of letters, digits and _, not starting with a digit"),
        );
        return;
    }
    let upper = name.to_ascii_uppercase();
    if let Some(prefix) = RESERVED_PREFIXES.iter().find(|p| upper.starts_with(*p)) {
        failures.push(
            path,
            format!("names starting with {prefix} steer how builds reach AWS, CodeBuild or Pulumi, which no one starting the pipeline may change; choose another name"),
        );
    } else if names_a_credential(name) {
        failures.push(path, format!("`{name}` names a credential; {FIX}"));
    }
    for (property, environment) in environments {
        if environment.contains_key(name) {
            failures.push(
                path,
                format!("`{name}` is also set in {property}; the execution's value would replace it there, so rename one of them"),
            );
        }
    }
}

fn check_value(
    path: &str,
    variable: &PipelineVariable,
    is_secret: &impl Fn(&str) -> bool,
    failures: &mut Failures,
) {
    let property = format!("{path}.defaultValue");
    let value = &variable.default_value;
    if is_secret(&property) {
        failures.push(property, format!("is a Pulumi secret; {FIX}"));
        return;
    }
    if is_unknown(value) {
        return;
    }
    if value.is_empty() || value.chars().count() > MAX_VARIABLE_VALUE {
        failures.push(
            &property,
            format!("use 1 to {MAX_VARIABLE_VALUE} characters: executions started by a push or the schedule take the default"),
        );
    }
    // The value is never echoed: it may be a credential.
    if let Some(what) = credentials::find(value) {
        failures.push(&property, format!("holds {what}; {FIX}"));
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

/// The pipeline's variable declarations.
pub fn declarations(args: &SecurePipelineArgs) -> Vec<Variable> {
    args.variables
        .iter()
        .flatten()
        .map(|(name, variable)| Variable {
            name: name.clone(),
            default_value: variable.default_value.clone(),
            description: variable.description.clone(),
        })
        .collect()
}

/// Hands every variable to every CodeBuild action, as the action's
/// `EnvironmentVariables` (PLAINTEXT, `#{variables.NAME}`), which
/// CodePipeline resolves per execution.
pub fn expose(args: &SecurePipelineArgs, stages: &mut [Stage]) {
    let Some(variables) = args.variables.as_ref().filter(|v| !v.is_empty()) else {
        return;
    };
    let environment: Vec<serde_json::Value> = variables
        .keys()
        .map(|name| json!({"name": name, "type": "PLAINTEXT", "value": format!("#{{variables.{name}}}")}))
        .collect();
    let environment = serde_json::Value::Array(environment).to_string();
    for action in stages
        .iter_mut()
        .flat_map(|s| s.actions.iter_mut())
        .filter(|a| a.provider == "CodeBuild")
    {
        action
            .configuration
            .insert("EnvironmentVariables".into(), environment.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::plan;
    use serde_json::json;

    fn args(value: serde_json::Value) -> SecurePipelineArgs {
        serde_json::from_value(value).unwrap()
    }

    fn failures(value: serde_json::Value) -> Vec<(String, String)> {
        let mut failures = Failures::default();
        check(
            &args(value),
            |path| path == "variables.RELEASE_NOTE.defaultValue",
            &mut failures,
        );
        failures
            .into_result(())
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|f| (f.property, f.reason))
            .collect()
    }

    fn pipeline(variables: serde_json::Value) -> serde_json::Value {
        json!({"source": {"repository": "org/app"},
               "build": {"commands": ["make"], "environment": {"NODE_ENV": {"value": "test"}}},
               "deployments": [{"name": "dev", "commands": ["make deploy"],
                                "environment": {"STAGE": {"value": "dev"}}}],
               "variables": variables})
    }

    #[test]
    fn what_looks_like_a_credential_is_rejected_without_echoing_it() {
        for name in [
            "GITHUB_TOKEN",
            "DB_PASSWORD",
            "SIGNING_KEY",
            "client_secret",
            "BASIC_AUTH",
            "NPM_PAT",
        ] {
            assert!(names_a_credential(name), "{name}");
        }
        for name in ["DEPLOY_TARGET", "MONKEY_MODE", "KEYBOARD", "RELEASE_NOTE"] {
            assert!(!names_a_credential(name), "{name}");
        }
        let token = "ghp_0123456789abcdefABCDEF0123456789abcd";
        let found = failures(pipeline(json!({
            "GITHUB_TOKEN": {"defaultValue": "x"},
            "NOTE": {"defaultValue": token},
            "RELEASE_NOTE": {"defaultValue": "kept secret in Pulumi"},
        })));
        let properties: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            properties,
            vec![
                "variables.GITHUB_TOKEN",
                "variables.NOTE.defaultValue",
                "variables.RELEASE_NOTE.defaultValue"
            ]
        );
        assert!(found.iter().all(|(_, reason)| !reason.contains(token)));
        assert!(found[1].1.contains("a GitHub token"), "{}", found[1].1);
        assert!(found.iter().all(|(_, reason)| reason.contains("secretArn")));
    }

    #[test]
    fn names_are_environment_names_that_steer_nothing_and_collide_with_nothing() {
        let found = failures(pipeline(json!({
            "deploy-target": {"defaultValue": "blue"},
            "1ST": {"defaultValue": "x"},
            "AWS_REGION": {"defaultValue": "us-east-1"},
            "pulumi_home": {"defaultValue": "/tmp"},
            "NODE_ENV": {"defaultValue": "production"},
            "STAGE": {"defaultValue": "prod"},
        })));
        let properties: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            properties,
            vec![
                "variables.1ST",
                "variables.AWS_REGION",
                "variables.NODE_ENV",
                "variables.STAGE",
                "variables.deploy-target",
                "variables.pulumi_home",
            ]
        );
        assert!(found[2].1.contains("build.environment"), "{}", found[2].1);
        assert!(
            found[3].1.contains("deployments[0].environment"),
            "{}",
            found[3].1
        );
    }

    #[test]
    fn values_and_descriptions_follow_codepipelines_limits() {
        let found = failures(pipeline(json!({
            "EMPTY": {"defaultValue": ""},
            "LONG": {"defaultValue": "x".repeat(1001), "description": "d".repeat(201)},
        })));
        let properties: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            properties,
            vec![
                "variables.EMPTY.defaultValue",
                "variables.LONG.defaultValue",
                "variables.LONG.description"
            ]
        );
        let many: serde_json::Map<String, serde_json::Value> = (0..51)
            .map(|i| (format!("V{i}"), json!({"defaultValue": "x"})))
            .collect();
        assert_eq!(failures(pipeline(json!(many)))[0].0, "variables");
    }

    #[test]
    fn every_codebuild_action_reads_every_variable_from_the_execution() {
        let a = args(pipeline(json!({
            "DEPLOY_TARGET": {"defaultValue": "blue", "description": "The fleet"},
            "LOG_LEVEL": {"defaultValue": "info"},
        })));
        let declared = declarations(&a);
        assert_eq!(
            declared
                .iter()
                .map(|v| (
                    v.name.as_str(),
                    v.default_value.as_str(),
                    v.description.as_deref()
                ))
                .collect::<Vec<_>>(),
            vec![
                ("DEPLOY_TARGET", "blue", Some("The fleet")),
                ("LOG_LEVEL", "info", None)
            ]
        );
        let mut stages = plan::stages(&a, "arn:aws:codeconnections:eu-west-1:1:connection/c", "b");
        expose(&a, &mut stages);
        let source = &stages[0].actions[0];
        assert!(!source.configuration.contains_key("EnvironmentVariables"));
        let build = &stages[1].actions[0];
        let environment: serde_json::Value =
            serde_json::from_str(&build.configuration["EnvironmentVariables"]).unwrap();
        assert_eq!(
            environment,
            json!([
                {"name": "DEPLOY_TARGET", "type": "PLAINTEXT", "value": "#{variables.DEPLOY_TARGET}"},
                {"name": "LOG_LEVEL", "type": "PLAINTEXT", "value": "#{variables.LOG_LEVEL}"}
            ])
        );
        // Without variables, actions keep their configuration as it was.
        let none = args(pipeline(serde_json::Value::Null));
        let mut stages = plan::stages(
            &none,
            "arn:aws:codeconnections:eu-west-1:1:connection/c",
            "b",
        );
        expose(&none, &mut stages);
        assert!(!stages[1].actions[0]
            .configuration
            .contains_key("EnvironmentVariables"));
    }
}
