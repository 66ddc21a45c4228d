//! Release artifacts as users get them: the plugin tarball's layout,
//! checksum and reproducibility.
//!
//! `make release` also runs the ignored test against what it built
//! (SECUREPIPELINE_RELEASE_DIR, default dist/): every platform's tarball
//! checked, the linux-amd64 one installed and previewed.

use std::path::{Path, PathBuf};
use std::process::Command;

use securepipeline_e2e::release::{check_plugin_tarball, tarball_name, PLATFORMS};
use securepipeline_e2e::{provider_dir, repo_root, Emulator, Stack};

const VERSION: &str = env!("CARGO_PKG_VERSION");

const MINIMAL: &str = r#"
resources:
  app:
    type: securepipeline:index:SecurePipeline
    properties:
      source:
        repository: example-org/app
      build:
        commands: ["make test"]
"#;

/// Packs the cargo-built provider as the linux-amd64 release tarball into
/// `out` with scripts/pack-plugin.sh.
fn pack(out: &Path) -> PathBuf {
    let output = Command::new("bash")
        .arg(repo_root().join("scripts/pack-plugin.sh"))
        .arg(provider_dir().join("pulumi-resource-securepipeline"))
        .args(["linux", "amd64"])
        .arg(out)
        .output()
        .expect("run scripts/pack-plugin.sh");
    assert!(
        output.status.success(),
        "pack-plugin.sh: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

fn installed_versions(stack: &Stack) -> Vec<String> {
    let listed = stack.pulumi(&["plugin", "ls", "--json"]).success();
    let plugins: serde_json::Value =
        serde_json::from_str(&listed.stdout()).expect("plugin list is JSON");
    plugins
        .as_array()
        .map(|plugins| {
            plugins
                .iter()
                .filter(|p| p["name"] == "securepipeline" && p["kind"] == "resource")
                .filter_map(|p| p["version"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn plugin_tarball_is_reproducible_with_its_checksum_and_layout() {
    let first = tempfile::tempdir().expect("temporary directory");
    let second = tempfile::tempdir().expect("temporary directory");
    let a = pack(first.path());
    let b = pack(second.path());
    assert_eq!(
        a.file_name().and_then(|n| n.to_str()),
        Some(tarball_name(VERSION, "linux-amd64").as_str())
    );
    assert!(
        std::fs::read(&a).expect("first tarball") == std::fs::read(&b).expect("second tarball"),
        "two packs of one binary differ"
    );
    let scratch = tempfile::tempdir().expect("temporary directory");
    let binary = check_plugin_tarball(&a, "linux-amd64", scratch.path())
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        std::fs::read(binary).expect("unpacked binary"),
        std::fs::read(provider_dir().join("pulumi-resource-securepipeline")).expect("built binary"),
        "the tarball's binary is not the one packed"
    );
}

#[test]
#[ignore = "needs `make release`, which runs it on the artifacts it built"]
fn release_artifacts_are_complete_and_the_linux_one_previews() {
    let dist = std::env::var_os("SECUREPIPELINE_RELEASE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("dist"));
    let platforms: Vec<String> = match std::env::var("SECUREPIPELINE_RELEASE_PLATFORMS") {
        Ok(list) => list.split(',').map(str::to_string).collect(),
        Err(_) => PLATFORMS.iter().map(|p| p.to_string()).collect(),
    };
    let scratch = tempfile::tempdir().expect("temporary directory");
    for platform in &platforms {
        let tarball = dist.join(tarball_name(VERSION, platform));
        check_plugin_tarball(&tarball, platform, scratch.path())
            .unwrap_or_else(|err| panic!("{platform}: {err}"));
        eprintln!("{platform}: {} ok", tarball.display());
    }
    if !platforms.iter().any(|p| p == "linux-amd64") {
        return;
    }

    let emulator = Emulator::start();
    let stack = Stack::yaml(&emulator, "released-plugin", "resources: {}\n");
    let tarball = dist.join(tarball_name(VERSION, "linux-amd64"));
    stack
        .pulumi(&[
            "plugin",
            "install",
            "resource",
            "securepipeline",
            VERSION,
            "--file",
            &tarball.display().to_string(),
        ])
        .success();
    assert_eq!(installed_versions(&stack), vec![VERSION.to_string()]);
    stack.set_program_without_plugin_path("released-plugin", MINIMAL);
    let run = stack.preview().success();
    assert!(
        run.stdout().contains("securepipeline:index:SecurePipeline"),
        "{}",
        run.stdout()
    );
}
