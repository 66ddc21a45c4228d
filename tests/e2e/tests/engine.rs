//! The real engine loads the provider: schema, configuration, preview.

use securepipeline_e2e::{Emulator, Stack, ACCOUNT};

const MINIMAL: &str = r#"
resources:
  app:
    type: securepipeline:index:SecurePipeline
    properties:
      source:
        repository: example-org/app
      build:
        commands: ["make test"]
outputs:
  pipelineName: ${app.pipelineName}
"#;

#[test]
fn get_schema_returns_the_committed_schema() {
    let emulator = Emulator::start();
    let stack = Stack::yaml(&emulator, "schema-check", "resources: {}\n");
    let run = stack
        .pulumi(&[
            "package",
            "get-schema",
            &securepipeline_e2e::provider_dir()
                .join("pulumi-resource-securepipeline")
                .display()
                .to_string(),
        ])
        .success();
    let served: serde_json::Value = serde_json::from_str(&run.stdout()).expect("schema is JSON");
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(securepipeline_e2e::repo_root().join("schema/schema.json"))
            .expect("schema/schema.json"),
    )
    .expect("committed schema is JSON");
    assert_eq!(served["resources"], committed["resources"]);
    assert_eq!(served["types"], committed["types"]);
    assert_eq!(served["config"], committed["config"]);
    assert_eq!(served["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn engine_configures_the_provider_against_the_emulator() {
    let emulator = Emulator::start();
    let stack = Stack::yaml(&emulator, "configure-check", MINIMAL);
    emulator.reset_calls();
    let run = stack.preview().success();
    assert!(
        run.stdout().contains("securepipeline:index:SecurePipeline"),
        "{}",
        run.stdout()
    );
    let calls = emulator.calls();
    assert!(
        calls
            .iter()
            .any(|c| c.service == "sts" && c.operation == "GetCallerIdentity"),
        "the provider never asked STS who it is: {calls:?}"
    );
    assert!(
        calls.iter().all(|c| !c.write),
        "a preview must not write: {calls:?}"
    );
    let _ = ACCOUNT;
}

#[test]
fn invalid_configuration_is_rejected_naming_the_key() {
    let emulator = Emulator::start();
    let stack = Stack::yaml(&emulator, "bad-config", MINIMAL);
    stack
        .pulumi(&["config", "set", "securepipeline:region", "europe"])
        .success();
    let run = stack.preview().failure();
    assert!(run.text().contains("region"), "{}", run.text());
    assert!(run.text().contains("eu-west-1"), "{}", run.text());
}

#[test]
fn plugin_installs_from_the_release_tarball() {
    let emulator = Emulator::start();
    let packaged = std::process::Command::new("bash")
        .arg(securepipeline_e2e::repo_root().join("scripts/package.sh"))
        .arg("debug")
        .output()
        .expect("run scripts/package.sh");
    assert!(
        packaged.status.success(),
        "{}",
        String::from_utf8_lossy(&packaged.stderr)
    );
    let tarball = String::from_utf8_lossy(&packaged.stdout).trim().to_string();
    let version = env!("CARGO_PKG_VERSION");
    let stack = Stack::yaml(&emulator, "from-tarball", "resources: {}\n");
    stack
        .pulumi(&[
            "plugin",
            "install",
            "resource",
            "securepipeline",
            version,
            "--file",
            &tarball,
        ])
        .success();
    let listed = stack.pulumi(&["plugin", "ls", "--json"]).success();
    let plugins: serde_json::Value =
        serde_json::from_str(&listed.stdout()).expect("plugin list is JSON");
    assert!(
        plugins
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "securepipeline"
                && p["kind"] == "resource"
                && p["version"] == version),
        "{plugins}"
    );
    // The installed plugin serves a program that names no plugin path.
    stack.set_program_without_plugin_path("from-tarball", MINIMAL);
    stack.preview().success();
}
