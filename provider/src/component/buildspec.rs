//! Buildspecs: checking the ones users write, writing the ones the
//! provider generates. Both are parsed as YAML, so an invalid buildspec
//! fails at preview, not half-way through a pipeline run.

use serde_yaml_ng::{Mapping, Value as Yaml};

const PHASES: &[&str] = &["install", "pre_build", "build", "post_build"];

/// Checks an inline buildspec: version 0.2, known phases, string commands,
/// no plaintext credentials in `env.variables`.
pub fn validate(spec: &str) -> Result<(), String> {
    let doc: Yaml = serde_yaml_ng::from_str(spec).map_err(|err| format!("is not valid YAML: {err}"))?;
    let Some(root) = doc.as_mapping() else {
        return Err("must be a YAML mapping with `version` and `phases`".into());
    };
    let version_ok = match root.get("version") {
        Some(Yaml::Number(n)) => n.as_f64() == Some(0.2),
        Some(Yaml::String(s)) => s == "0.2",
        _ => false,
    };
    if !version_ok {
        return Err("must declare `version: 0.2`".into());
    }
    let Some(phases) = root.get("phases").and_then(Yaml::as_mapping) else {
        return Err("must have a `phases` mapping (install, pre_build, build, post_build)".into());
    };
    for (name, phase) in phases {
        let name = name.as_str().unwrap_or_default();
        if !PHASES.contains(&name) {
            return Err(format!("has unknown phase `{name}`; phases are {}", PHASES.join(", ")));
        }
        let commands = phase.as_mapping().and_then(|p| p.get("commands"));
        match commands {
            Some(Yaml::Sequence(items)) if items.iter().all(|i| i.is_string()) => {}
            Some(_) => return Err(format!("phase `{name}`: `commands` must be a list of strings")),
            None => return Err(format!("phase `{name}` has no `commands`")),
        }
    }
    if let Some(variables) = root
        .get("env")
        .and_then(|env| env.get("variables"))
        .and_then(Yaml::as_mapping)
    {
        for (key, _) in variables {
            let key = key.as_str().unwrap_or_default();
            let upper = key.to_ascii_uppercase();
            if ["TOKEN", "SECRET", "PASSWORD", "API_KEY", "PRIVATE_KEY", "ACCESS_KEY"].iter().any(|w| upper.contains(w)) {
                return Err(format!(
                    "env.variables.{key} looks like a credential in plaintext; use env.secrets-manager, or build.environment with secretArn"
                ));
            }
        }
    }
    Ok(())
}

/// Writes a buildspec from phases, optional exported variables and the
/// files to keep as the output artifact.
pub fn render(phases: &[(&str, Vec<String>)], artifact_files: &[&str]) -> String {
    let mut root = Mapping::new();
    root.insert("version".into(), Yaml::String("0.2".into()));
    let mut phase_map = Mapping::new();
    for (name, commands) in phases {
        let mut phase = Mapping::new();
        phase.insert(
            "commands".into(),
            Yaml::Sequence(commands.iter().map(|c| Yaml::String(c.clone())).collect()),
        );
        phase_map.insert((*name).into(), Yaml::Mapping(phase));
    }
    root.insert("phases".into(), Yaml::Mapping(phase_map));
    if !artifact_files.is_empty() {
        let mut artifacts = Mapping::new();
        artifacts.insert(
            "files".into(),
            Yaml::Sequence(artifact_files.iter().map(|f| Yaml::String((*f).into())).collect()),
        );
        root.insert("artifacts".into(), Yaml::Mapping(artifacts));
    }
    serde_yaml_ng::to_string(&Yaml::Mapping(root)).unwrap_or_default()
}

/// The build stage's buildspec for plain commands.
pub fn for_commands(commands: &[String]) -> String {
    render(&[("build", commands.to_vec())], &["**/*"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_buildspecs_are_valid_and_keep_commands() {
        let spec = for_commands(&["npm ci".into(), "npm test -- --grep 'a: b'".into()]);
        validate(&spec).unwrap();
        let doc: Yaml = serde_yaml_ng::from_str(&spec).unwrap();
        assert_eq!(doc["phases"]["build"]["commands"][1], Yaml::String("npm test -- --grep 'a: b'".into()));
        assert_eq!(doc["artifacts"]["files"][0], Yaml::String("**/*".into()));
    }

    #[test]
    fn rejects_broken_buildspecs_with_a_reason() {
        assert!(validate("version: 0.2\nphases: [").unwrap_err().contains("not valid YAML"));
        assert!(validate("phases: {}").unwrap_err().contains("version: 0.2"));
        assert!(validate("version: 0.2\nphases:\n  test:\n    commands: [x]").unwrap_err().contains("unknown phase"));
        assert!(validate("version: 0.2\nphases:\n  build:\n    commands: x").unwrap_err().contains("list of strings"));
        assert!(validate("version: 0.2\nenv:\n  variables:\n    NPM_TOKEN: abc\nphases:\n  build:\n    commands: [x]")
            .unwrap_err()
            .contains("credential"));
    }
}
