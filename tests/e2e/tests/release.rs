//! Release artifacts as users get them: the plugin tarball's layout,
//! checksum and reproducibility, and the engine downloading the plugin a
//! program's SDK names from the release host (one on loopback here).
//!
//! `make release` also runs the ignored test against what it built
//! (SECUREPIPELINE_RELEASE_DIR, default dist/): every platform's tarball
//! checked, the linux-amd64 one installed and previewed.

use std::path::{Path, PathBuf};
use std::process::Command;

use securepipeline_e2e::release::{check_plugin_tarball, tarball_name, ReleaseHost, PLATFORMS};
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
fn engine_downloads_the_plugin_its_sdk_names_from_the_release_host() {
    // The release layout: v<version>/<tarball> under the repository's
    // releases/download/, as the schema's pluginDownloadURL names it.
    let host_root = tempfile::tempdir().expect("temporary directory");
    let release_dir = host_root.path().join(format!(
        "securepipeline/pulumi-securepipeline/releases/download/v{VERSION}"
    ));
    let tarball = pack(&release_dir);
    let host = ReleaseHost::serve(host_root.path());

    let emulator = Emulator::start();
    let stack = Stack::example(&emulator, "python");
    stack.drop_plugin_paths();
    assert!(
        installed_versions(&stack).is_empty(),
        "the plugin cache must start empty"
    );

    // The engine's own override points the SDK's pluginDownloadURL (the
    // GitHub release host) at the loopback host, path for path.
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("schema/schema.json")).expect("schema"),
    )
    .expect("schema is JSON");
    let url = schema["pluginDownloadURL"]
        .as_str()
        .expect("pluginDownloadURL");
    let prefix = "https://github.com/";
    assert!(url.starts_with(prefix), "{url}");
    let redirect = format!(
        "^https://github\\.com/={}/{}",
        host.url(),
        &url[prefix.len()..]
    );
    let run = stack
        .pulumi_with_env(
            &["preview"],
            &[
                ("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "false"),
                ("PULUMI_PLUGIN_DOWNLOAD_URL_OVERRIDES", redirect.as_str()),
            ],
        )
        .success();
    assert!(
        run.stdout().contains("securepipeline:index:SecurePipeline"),
        "{}",
        run.stdout()
    );

    let wanted = format!(
        "/securepipeline/pulumi-securepipeline/releases/download/v{VERSION}/{}",
        tarball
            .file_name()
            .and_then(|n| n.to_str())
            .expect("tarball name")
    );
    assert!(
        host.requests().contains(&wanted),
        "the engine did not fetch {wanted}: {:?}",
        host.requests()
    );
    assert_eq!(installed_versions(&stack), vec![VERSION.to_string()]);
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
