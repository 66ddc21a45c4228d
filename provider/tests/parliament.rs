//! Every permissions policy SecurePipeline can write, for a configuration
//! that exercises every grant (build secrets and parameters, a dev stage in
//! the same account, a staging stage in another region, a production stage
//! that assumes another account's role behind an approval with an S3
//! backend, the pipeline's role, the schedule's role), checked by
//! Parliament, an independent IAM linter. It must find nothing, apart from
//! the false positives listed below with their reasons.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use securepipeline::aws::arn::Arns;
use securepipeline::component::args::SecurePipelineArgs;
use securepipeline::component::deploy::{self, Protected, Store};
use securepipeline::component::plan;
use securepipeline::iam::{lint, PolicyDocument};
use serde_json::{json, Value as Json};

const HOME: &str = "eu-west-1";
const ARNS: Arns<'static> = Arns {
    partition: "aws",
    account: "123456789012",
    region: HOME,
};

/// Findings Parliament reports that are not problems: (role, issue,
/// actions, why). Matched exactly, so any other finding still fails.
const FALSE_POSITIVES: &[(&str, &str, &[&str], &str)] = &[
    (
        "deploy-prod",
        "CREDENTIALS_EXPOSURE",
        &["sts:assumerole"],
        "the community auditor flags every sts:AssumeRole; assuming exactly the stage's assumeRoleArn is the \
         feature (G17), and the deployment reaches the credentials through a profile, never printed",
    ),
    (
        "preview-prod",
        "CREDENTIALS_EXPOSURE",
        &["sts:assumerole"],
        "as for deploy-prod: the preview assumes exactly the stage's read-only previewRoleArn (G26), through a \
         profile, never printed",
    ),
];

fn parliament() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/parliament");
    assert!(
        path.exists(),
        "Parliament is not installed: run scripts/install-toolchain.sh"
    );
    path
}

fn args() -> SecurePipelineArgs {
    serde_json::from_value(json!({
        "source": {"repository": "example-org/web"},
        "build": {"commands": ["make"], "environment": {
            "NPM_TOKEN": {"secretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:npm-token-AbCdEf", "secretJsonKey": "token"},
            "DB_PASSWORD": {"parameterName": "/web/db-password"}
        }},
        "deployments": [
            {"name": "dev", "pulumiStack": {"stack": "web-infra/dev", "workDir": "infra", "backendUrl": "s3://web-state/pulumi",
                "passphraseSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dev-passphrase-AbCdEf"},
             "environment": {"API_KEY": {"secretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dev-api-AbCdEf"}}},
            {"name": "staging", "region": "us-west-2", "commands": ["./deploy.sh staging"],
             "environment": {"DB": {"parameterName": "/web/staging/db"},
                             "TOKEN": {"secretArn": "arn:aws:secretsmanager:us-west-2:123456789012:secret:staging-AbCdEf"}}},
            {"name": "prod", "production": true, "assumeRoleArn": "arn:aws:iam::210987654321:role/deployer",
             "previewRoleArn": "arn:aws:iam::210987654321:role/reader",
             "pulumiStack": {"stack": "organization/web-infra/prod", "backendUrl": "s3://web-state/pulumi",
                "accessTokenSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pulumi-token-AbCdEf",
                "passphraseSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod-passphrase-AbCdEf"}}
        ],
        "schedule": "rate(1 day)"
    }))
    .unwrap()
}

const PIPELINE: &str = "web-x1y2-pipeline-abcdefgh";

/// Every permissions policy of the configuration, by role.
fn policies() -> BTreeMap<String, PolicyDocument> {
    let args = args();
    let deployments = args.deployments.as_deref().unwrap();
    let protected = Protected::of(&ARNS, deployments);
    let home_key = ARNS.kms_key("1234abcd-12ab-34cd-56ef-1234567890ab");
    let west = ARNS.in_region("us-west-2");
    let west_key = west.kms_key("5678abcd-12ab-34cd-56ef-1234567890ab");
    let stores = BTreeMap::from([
        (
            HOME.to_string(),
            Store {
                bucket_arn: "arn:aws:s3:::web-x1y2-artifacts-abcdefgh",
                key_arn: &home_key,
                pipeline_name: PIPELINE,
            },
        ),
        (
            "us-west-2".to_string(),
            Store {
                bucket_arn: "arn:aws:s3:::web-x1y2-artifacts-us-west-2-abcdefgh",
                key_arn: &west_key,
                pipeline_name: PIPELINE,
            },
        ),
    ]);
    let mut policies = BTreeMap::from([(
        "build".to_string(),
        plan::build_role_policy(
            &ARNS,
            stores[HOME],
            "/securepipeline/web-x1y2-build-abcdefgh",
            args.build.environment.as_ref(),
            &protected,
        ),
    )]);
    let mut projects = vec![ARNS.codebuild_project("web-x1y2-build-abcdefgh")];
    for (index, deployment) in deployments.iter().enumerate() {
        let region = deploy::region(deployment, HOME);
        let arns = ARNS.in_region(region);
        let name = format!("web-x1y2-{}-abcdefgh", deploy::purpose(deployment));
        projects.push(arns.codebuild_project(&name));
        policies.insert(
            deploy::purpose(deployment),
            deploy::role_policy(
                &arns,
                stores[region],
                &format!("/securepipeline/{name}"),
                (index, deployment),
                &protected,
            ),
        );
        if deploy::has_preview(deployment) {
            let name = format!("web-x1y2-{}-abcdefgh", deploy::preview_purpose(deployment));
            projects.push(arns.codebuild_project(&name));
            policies.insert(
                deploy::preview_purpose(deployment),
                deploy::preview_role_policy(
                    &arns,
                    stores[region],
                    &format!("/securepipeline/{name}"),
                    deployment,
                    &protected,
                ),
            );
        }
    }
    policies.insert(
        "pipeline".into(),
        plan::pipeline_role_policy(
            HOME,
            &stores,
            "arn:aws:codeconnections:eu-west-1:123456789012:connection/0a1b2c3d-1234-5678-9abc-def012345678",
            &args.source.repository,
            projects,
            &ARNS.sns_topic("web-x1y2-notify-abcdefgh"),
            // A gate alarm, so the linter judges DescribeAlarms on its ARN.
            vec![ARNS.cloudwatch_alarm("web-api-5xx")],
        ),
    );
    policies.insert(
        "events".into(),
        plan::events_role_policy(&ARNS.codepipeline(PIPELINE)),
    );
    policies
}

/// Parliament's findings for one policy, as JSON objects. (`--files`, not
/// `--file`: Parliament refuses `--file` when stdin is not a terminal.)
fn findings(file: &Path) -> Vec<Json> {
    let output = Command::new(parliament())
        .arg("--files")
        .arg(file)
        .arg("--json")
        // Strictest settings: every severity, community auditors too.
        .args(["--minimum_severity", "INFO", "--include-community-auditors"])
        .stdin(Stdio::null())
        .output()
        .expect("run parliament");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() || !stdout.trim().is_empty(),
        "parliament failed on {}: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|err| panic!("parliament printed {l:?}: {err}"))
        })
        .collect()
}

#[test]
fn parliament_finds_nothing_in_any_policy() {
    let dir =
        std::env::temp_dir().join(format!("securepipeline-parliament-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policies = policies();
    assert_eq!(
        policies.keys().collect::<Vec<_>>(),
        vec![
            "build",
            "deploy-dev",
            "deploy-prod",
            "deploy-staging",
            "events",
            "pipeline",
            "preview-prod"
        ]
    );
    let mut problems = Vec::new();
    for (role, policy) in &policies {
        assert!(
            lint::permissions(policy).is_empty(),
            "{role}: {:?}",
            lint::permissions(policy)
        );
        let file = dir.join(format!("{role}.json"));
        std::fs::write(&file, serde_json::to_string_pretty(policy).unwrap()).unwrap();
        for finding in findings(&file) {
            let actions: Vec<&str> = finding["location"]["actions"]
                .as_array()
                .map(|a| a.iter().filter_map(Json::as_str).collect())
                .unwrap_or_default();
            let known = FALSE_POSITIVES.iter().any(|(r, issue, a, _)| {
                r == role && finding["issue"] == *issue && *a == actions.as_slice()
            });
            if !known {
                problems.push(format!("{role}: {finding}"));
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        problems.is_empty(),
        "Parliament found:\n{}",
        problems.join("\n")
    );
}

#[test]
fn parliament_catches_what_it_should() {
    // The check is live: a widened policy is reported.
    let dir = std::env::temp_dir().join(format!(
        "securepipeline-parliament-bad-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("wide.json");
    let wide = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::bucket"]}
    ]});
    std::fs::write(&file, wide.to_string()).unwrap();
    let found = findings(&file);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        found.iter().any(|f| f["issue"] == "RESOURCE_MISMATCH"),
        "{found:?}"
    );
}
