//! Buildspecs: checking the ones users write, writing the ones the
//! provider generates. Both are parsed as YAML, so an invalid buildspec
//! fails at preview, not half-way through a pipeline run.

use serde_yaml_ng::{Mapping, Value as Yaml};

const PHASES: &[&str] = &["install", "pre_build", "build", "post_build"];

/// Checks an inline buildspec: version 0.2, known phases, string commands,
/// no plaintext credentials in `env.variables`.
pub fn validate(spec: &str) -> Result<(), String> {
    let doc: Yaml =
        serde_yaml_ng::from_str(spec).map_err(|err| format!("is not valid YAML: {err}"))?;
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
            return Err(format!(
                "has unknown phase `{name}`; phases are {}",
                PHASES.join(", ")
            ));
        }
        let commands = phase.as_mapping().and_then(|p| p.get("commands"));
        match commands {
            Some(Yaml::Sequence(items)) if items.iter().all(|i| i.is_string()) => {}
            Some(_) => {
                return Err(format!(
                    "phase `{name}`: `commands` must be a list of strings"
                ))
            }
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
            if [
                "TOKEN",
                "SECRET",
                "PASSWORD",
                "API_KEY",
                "PRIVATE_KEY",
                "ACCESS_KEY",
            ]
            .iter()
            .any(|w| upper.contains(w))
            {
                return Err(format!(
                    "env.variables.{key} looks like a credential in plaintext; use env.secrets-manager, or build.environment with secretArn"
                ));
            }
        }
    }
    Ok(())
}

/// A buildspec the provider writes. Rendered as YAML (so quoting is always
/// right) with keys in the order CodeBuild documents them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spec {
    /// `env.variables`: plain, non-secret defaults. Project and action
    /// variables of the same name take precedence over these.
    pub variables: Vec<(String, String)>,
    /// `env.secrets-manager`: variable name to a Secrets Manager reference;
    /// the value never appears in the buildspec, the project or the logs.
    pub secrets: Vec<(String, String)>,
    /// `env.exported-variables`: variables later pipeline actions can read.
    pub exported: Vec<String>,
    /// Phases in order, each with its commands.
    pub phases: Vec<(&'static str, Vec<String>)>,
    /// `artifacts.files`; no artifacts section when empty.
    pub artifact_files: Vec<String>,
    /// `artifacts.base-directory`, relative to the source root.
    pub base_directory: Option<String>,
    /// `artifacts.exclude-paths`.
    pub excluded_files: Vec<String>,
}

/// Files that hold credentials a build may write or check out (package
/// manager tokens, dotenv files, git remotes with tokens, private keys):
/// they never leave the build in its output artifact.
pub const CREDENTIAL_FILES: &[&str] = &[
    "**/.npmrc",
    "**/.yarnrc",
    "**/.yarnrc.yml",
    "**/.pypirc",
    "**/pip.conf",
    "**/.netrc",
    "**/.git-credentials",
    "**/.git/**/*",
    "**/.env",
    "**/.env.*",
    "**/.aws/**/*",
    "**/.docker/config.json",
    "**/.ssh/**/*",
    "**/*.pem",
    "**/*.key",
    "**/id_rsa*",
    "**/id_ed25519*",
];

fn strings(items: &[String]) -> Yaml {
    Yaml::Sequence(items.iter().map(|i| Yaml::String(i.clone())).collect())
}

fn pairs(items: &[(String, String)]) -> Yaml {
    Yaml::Mapping(
        items
            .iter()
            .map(|(k, v)| (Yaml::String(k.clone()), Yaml::String(v.clone())))
            .collect(),
    )
}

impl Spec {
    pub fn render(&self) -> String {
        let mut root = Mapping::new();
        root.insert("version".into(), Yaml::String("0.2".into()));
        let mut env = Mapping::new();
        if !self.variables.is_empty() {
            env.insert("variables".into(), pairs(&self.variables));
        }
        if !self.secrets.is_empty() {
            env.insert("secrets-manager".into(), pairs(&self.secrets));
        }
        if !self.exported.is_empty() {
            env.insert("exported-variables".into(), strings(&self.exported));
        }
        if !env.is_empty() {
            root.insert("env".into(), Yaml::Mapping(env));
        }
        let mut phase_map = Mapping::new();
        for (name, commands) in &self.phases {
            let mut phase = Mapping::new();
            phase.insert("commands".into(), strings(commands));
            phase_map.insert((*name).into(), Yaml::Mapping(phase));
        }
        root.insert("phases".into(), Yaml::Mapping(phase_map));
        if !self.artifact_files.is_empty() {
            let mut artifacts = Mapping::new();
            artifacts.insert("files".into(), strings(&self.artifact_files));
            if let Some(dir) = &self.base_directory {
                artifacts.insert("base-directory".into(), Yaml::String(dir.clone()));
            }
            if !self.excluded_files.is_empty() {
                artifacts.insert("exclude-paths".into(), strings(&self.excluded_files));
            }
            root.insert("artifacts".into(), Yaml::Mapping(artifacts));
        }
        serde_yaml_ng::to_string(&Yaml::Mapping(root)).unwrap_or_default()
    }
}

/// The build stage's buildspec for plain commands: its output artifact is
/// `output_files` (default everything), never a credential file.
pub fn for_commands(commands: &[String], output_files: Option<&[String]>) -> String {
    Spec {
        phases: vec![("build", commands.to_vec())],
        artifact_files: output_files
            .map(<[String]>::to_vec)
            .unwrap_or_else(|| vec!["**/*".into()]),
        excluded_files: CREDENTIAL_FILES.iter().map(|f| (*f).to_string()).collect(),
        ..Spec::default()
    }
    .render()
}

/// Quotes a word for the POSIX shell CodeBuild runs commands in, when it
/// holds anything beyond characters the shell treats literally.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_artifact_never_carries_credential_files() {
        let everything: Yaml =
            serde_yaml_ng::from_str(&for_commands(&["make".into()], None)).unwrap();
        let chosen: Yaml = serde_yaml_ng::from_str(&for_commands(
            &["make".into()],
            Some(&["dist/**/*".into(), ".npmrc".into()]),
        ))
        .unwrap();
        assert_eq!(
            everything["artifacts"]["files"][0],
            Yaml::String("**/*".into())
        );
        assert_eq!(
            chosen["artifacts"]["files"][0],
            Yaml::String("dist/**/*".into())
        );
        for doc in [&everything, &chosen] {
            let excluded: Vec<&str> = doc["artifacts"]["exclude-paths"]
                .as_sequence()
                .expect("exclude-paths")
                .iter()
                .filter_map(Yaml::as_str)
                .collect();
            for file in [
                "**/.npmrc",
                "**/.env",
                "**/.netrc",
                "**/.git/**/*",
                "**/*.pem",
            ] {
                assert!(
                    excluded.contains(&file),
                    "{file} not excluded: {excluded:?}"
                );
            }
        }
    }

    #[test]
    fn generated_buildspecs_are_valid_and_keep_commands() {
        let spec = for_commands(&["npm ci".into(), "npm test -- --grep 'a: b'".into()], None);
        validate(&spec).unwrap();
        let doc: Yaml = serde_yaml_ng::from_str(&spec).unwrap();
        assert_eq!(
            doc["phases"]["build"]["commands"][1],
            Yaml::String("npm test -- --grep 'a: b'".into())
        );
        assert_eq!(doc["artifacts"]["files"][0], Yaml::String("**/*".into()));
    }

    #[test]
    fn rejects_broken_buildspecs_with_a_reason() {
        assert!(validate("version: 0.2\nphases: [")
            .unwrap_err()
            .contains("not valid YAML"));
        assert!(validate("phases: {}").unwrap_err().contains("version: 0.2"));
        assert!(
            validate("version: 0.2\nphases:\n  test:\n    commands: [x]")
                .unwrap_err()
                .contains("unknown phase")
        );
        assert!(validate("version: 0.2\nphases:\n  build:\n    commands: x")
            .unwrap_err()
            .contains("list of strings"));
        assert!(validate("version: 0.2\nenv:\n  variables:\n    NPM_TOKEN: abc\nphases:\n  build:\n    commands: [x]")
            .unwrap_err()
            .contains("credential"));
    }

    #[test]
    fn specs_render_env_phases_and_artifacts_in_order() {
        let spec = Spec {
            variables: vec![("MODE".into(), "true".into())],
            secrets: vec![(
                "PULUMI_ACCESS_TOKEN".into(),
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:t-AbC".into(),
            )],
            exported: vec!["OUT".into()],
            phases: vec![
                ("install", vec!["echo 'a: b' # c".into()]),
                ("build", vec!["make".into()]),
            ],
            artifact_files: vec!["out.json".into()],
            base_directory: Some("infra".into()),
            excluded_files: vec!["**/.env".into()],
        }
        .render();
        validate(&spec).unwrap();
        let doc: Yaml = serde_yaml_ng::from_str(&spec).unwrap();
        // `true` stays a string: CodeBuild variables are strings.
        assert_eq!(doc["env"]["variables"]["MODE"], Yaml::String("true".into()));
        assert_eq!(
            doc["env"]["secrets-manager"]["PULUMI_ACCESS_TOKEN"],
            Yaml::String("arn:aws:secretsmanager:eu-west-1:123456789012:secret:t-AbC".into())
        );
        assert_eq!(
            doc["env"]["exported-variables"][0],
            Yaml::String("OUT".into())
        );
        assert_eq!(
            doc["phases"]["install"]["commands"][0],
            Yaml::String("echo 'a: b' # c".into())
        );
        let keys: Vec<&str> = doc
            .as_mapping()
            .unwrap()
            .keys()
            .filter_map(Yaml::as_str)
            .collect();
        assert_eq!(keys, vec!["version", "env", "phases", "artifacts"]);
        let phases: Vec<&str> = doc["phases"]
            .as_mapping()
            .unwrap()
            .keys()
            .filter_map(Yaml::as_str)
            .collect();
        assert_eq!(phases, vec!["install", "build"]);
        assert_eq!(
            doc["artifacts"]["base-directory"],
            Yaml::String("infra".into())
        );
        assert_eq!(
            doc["artifacts"]["exclude-paths"][0],
            Yaml::String("**/.env".into())
        );
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("s3://bucket/prefix"), "s3://bucket/prefix");
        assert_eq!(shell_quote("org/app/dev"), "org/app/dev");
        assert_eq!(
            shell_quote("s3://b?region=x&profile=p"),
            "'s3://b?region=x&profile=p'"
        );
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
