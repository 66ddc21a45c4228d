//! Compliance by default, through the real engine against the emulator: a
//! pipeline deployed with no settings beyond the required ones keeps build
//! logs a year, sends its artifact bucket's server access logs to a bucket
//! it owns with the same protections, and what it created, read back from
//! the emulator and rendered as a Terraform plan, passes Checkov's checks
//! except the findings `tests/compliance/accepted.json` lists with why.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use securepipeline_e2e::readback::text;
use securepipeline_e2e::{repo_root, Emulator, Stack, REGION};
use serde_json::Value as Json;

const PROGRAM: &str = r#"
resources:
  web:
    type: securepipeline:index:SecurePipeline
    properties:
      source: {repository: example-org/web}
      build: {commands: ["npm ci", "npm test"]}
outputs:
  artifactBucketName: ${web.artifactBucketName}
  accessLogBucketName: ${web.accessLogBucketName}
  kmsKeyArn: ${web.kmsKeyArn}
  logGroupNames: ${web.logGroupNames}
  buildProjectNames: ${web.buildProjectNames}
  pipelineName: ${web.pipelineName}
  notificationTopicArn: ${web.notificationTopicArn}
  roleArns: ${web.roleArns}
"#;

/// Checkov, installed by `scripts/install-toolchain.sh` into a venv of its
/// own (its pins conflict with moto's).
fn checkov() -> PathBuf {
    let path = repo_root().join(".tools/checkov-venv/bin/checkov");
    assert!(
        path.exists(),
        "Checkov is missing: run scripts/install-toolchain.sh (it creates .tools/checkov-venv)"
    );
    path
}

/// Checkov's failed and passed checks, as (check id, resource address).
struct Scan {
    failed: BTreeSet<(String, String)>,
    passed: BTreeSet<(String, String)>,
}

fn scan(plan: &Path, out: &Path) -> Scan {
    let run = Command::new(checkov())
        .args(["-f"])
        .arg(plan)
        .args([
            "--framework",
            "terraform_plan",
            "--skip-download",
            "-o",
            "json",
            "--output-file-path",
        ])
        .arg(out)
        // Offline: no download of the vendor's guideline mappings.
        .env("BC_SKIP_MAPPING", "TRUE")
        .output()
        .expect("run checkov");
    let report = out.join("results_json.json");
    assert!(
        report.exists(),
        "checkov wrote no report: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: Json =
        serde_json::from_str(&std::fs::read_to_string(report).expect("read report")).expect("JSON");
    let pairs = |kind: &str| -> BTreeSet<(String, String)> {
        report["results"][kind]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["check_id"].as_str().unwrap_or_default().to_string(),
                    c["resource"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    Scan {
        failed: pairs("failed_checks"),
        passed: pairs("passed_checks"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn defaults_pass_the_scanners_checks_except_those_documented() {
    let emulator = Emulator::start();
    let stack = Stack::yaml(&emulator, "compliance-defaults", PROGRAM);
    stack.up().success();
    let outputs = stack.outputs();
    let sdk = emulator.sdk().await;
    let s3 = aws_sdk_s3::Client::new(&sdk);
    let artifacts = text(&outputs, "artifactBucketName");
    let access_logs = text(&outputs, "accessLogBucketName");

    // The artifact bucket logs to the access-log bucket, under its own name.
    let logging = s3
        .get_bucket_logging()
        .bucket(&artifacts)
        .send()
        .await
        .unwrap();
    let enabled = logging.logging_enabled().expect("access logging is on");
    assert_eq!(enabled.target_bucket(), access_logs);
    assert_eq!(enabled.target_prefix(), format!("{artifacts}/"));
    // The access-log bucket has the artifact bucket's protections.
    let versioning = s3
        .get_bucket_versioning()
        .bucket(&access_logs)
        .send()
        .await
        .unwrap();
    assert_eq!(versioning.status().map(|s| s.as_str()), Some("Enabled"));
    let encryption = s3
        .get_bucket_encryption()
        .bucket(&access_logs)
        .send()
        .await
        .unwrap();
    let rule = &encryption
        .server_side_encryption_configuration()
        .unwrap()
        .rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .unwrap()
            .sse_algorithm()
            .as_str(),
        "AES256"
    );
    let lifecycle = s3
        .get_bucket_lifecycle_configuration()
        .bucket(&access_logs)
        .send()
        .await
        .unwrap();
    assert_eq!(
        lifecycle.rules()[0].expiration().and_then(|e| e.days()),
        Some(365)
    );
    // Build logs are kept a year.
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    for name in outputs["logGroupNames"].as_array().unwrap() {
        let name = name.as_str().unwrap();
        let groups = logs
            .describe_log_groups()
            .log_group_name_prefix(name)
            .send()
            .await
            .unwrap();
        let group = groups
            .log_groups()
            .iter()
            .find(|g| g.log_group_name() == Some(name))
            .unwrap();
        assert_eq!(group.retention_in_days(), Some(365), "{name}");
    }

    // Render what exists and scan it.
    let work = tempfile::tempdir().unwrap();
    let outputs_path = work.path().join("outputs.json");
    std::fs::write(&outputs_path, outputs.to_string()).unwrap();
    let plan = work.path().join("plan.json");
    let render = Command::new(repo_root().join(".tools/venv/bin/python"))
        .arg(repo_root().join("tests/compliance/render_plan.py"))
        .arg(emulator.endpoint())
        .arg(REGION)
        .arg(&outputs_path)
        .arg(&plan)
        .output()
        .expect("run the renderer");
    assert!(
        render.status.success(),
        "{}",
        String::from_utf8_lossy(&render.stderr)
    );
    let scan = scan(&plan, &work.path().join("checkov"));
    let mut by_check: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (check, resource) in &scan.failed {
        by_check.entry(check).or_default().push(resource);
    }
    println!(
        "checkov: {} passed, {} failed",
        scan.passed.len(),
        scan.failed.len()
    );
    for (check, resources) in &by_check {
        println!("checkov finding {check}: {}", resources.join(", "));
    }
    let accepted: BTreeMap<String, String> = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/compliance/accepted.json")).unwrap(),
    )
    .unwrap();
    let unexplained: Vec<&&str> = by_check
        .keys()
        .filter(|check| !accepted.contains_key(**check))
        .collect();
    assert!(
        unexplained.is_empty(),
        "findings neither fixed nor documented: {unexplained:?}"
    );
    // What the defaults changed is now checked and passes.
    let passed = |check: &str, kind: &str| {
        scan.passed
            .iter()
            .filter(|(c, r)| c == check && r.starts_with(kind))
            .count()
    };
    assert!(passed("CKV_AWS_338", "aws_cloudwatch_log_group.") >= 1);
    assert_eq!(
        passed("CKV_AWS_18", "aws_s3_bucket."),
        1,
        "the artifact bucket logs its access"
    );

    // The access-log bucket fills with logs of every request to the
    // artifact bucket; destroy still removes it, without forceDestroy.
    stack.destroy().success();
    let left = s3.list_buckets().send().await.unwrap();
    assert!(
        left.buckets().is_empty(),
        "destroy left buckets: {:?}",
        left.buckets()
    );
}
