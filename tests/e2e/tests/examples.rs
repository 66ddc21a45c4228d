//! The example stacks deploy as a user runs them, through the real engine
//! and each language's host: prepared as `make example` prepares them,
//! previewed, deployed, read back from the emulator, updated without
//! changes, and destroyed without leaving anything.

use std::collections::BTreeSet;
use std::time::Instant;

use securepipeline::iam::lint;
use securepipeline_e2e::readback::{self, text};
use securepipeline_e2e::{Emulator, Stack};
use serde_json::Value as Json;

/// Every example declares the same pipeline: a build, a staging stage and a
/// production stage with approval.
async fn assert_example_pipeline(emulator: &Emulator, out: &Json) {
    let sdk = emulator.sdk().await;
    let pipeline_name = text(out, "pipelineName");
    let key_arn = text(out, "kmsKeyArn");

    // The source is a connection the component created, waiting for a person.
    assert_eq!(text(out, "connectionStatus"), "PENDING");
    assert!(text(out, "pipelineUrl")
        .starts_with("https://us-east-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/"));
    assert!(text(out, "connectionActivationUrl").contains("settings/connections"));
    let declaration = aws_sdk_codepipeline::Client::new(&sdk)
        .get_pipeline()
        .name(&pipeline_name)
        .send()
        .await
        .unwrap();
    let declaration = declaration.pipeline().unwrap();
    let stages: Vec<(&str, Vec<&str>)> = declaration
        .stages()
        .iter()
        .map(|s| (s.name(), s.actions().iter().map(|a| a.name()).collect()))
        .collect();
    assert_eq!(
        stages,
        vec![
            ("Source", vec!["Source"]),
            ("Build", vec!["Build"]),
            ("staging", vec!["Deploy"]),
            // A Pulumi Cloud stage without a read-only token has no preview:
            // the deploy token never runs before the approval.
            ("production", vec!["Approve", "Deploy"]),
        ]
    );
    let source = declaration.stages()[0].actions()[0]
        .configuration()
        .unwrap();
    assert_eq!(source["FullRepositoryId"], "example-org/web-app");
    let connection = aws_sdk_codestarconnections::Client::new(&sdk)
        .get_connection()
        .connection_arn(&source["ConnectionArn"])
        .send()
        .await
        .unwrap();
    assert_eq!(
        connection
            .connection()
            .unwrap()
            .connection_status()
            .unwrap()
            .as_str(),
        "PENDING"
    );
    let push = &declaration.triggers()[0]
        .git_configuration()
        .unwrap()
        .push()[0];
    assert_eq!(push.branches().unwrap().includes(), ["main"]);

    // Roles: exact, lint-clean, trusted by one service each.
    let iam = aws_sdk_iam::Client::new(&sdk);
    let roles = out["roleArns"].as_object().expect("roleArns");
    let purposes: BTreeSet<&str> = roles.keys().map(String::as_str).collect();
    for purpose in ["pipeline", "build", "events"] {
        assert!(
            purposes.contains(purpose),
            "no {purpose} role: {purposes:?}"
        );
    }
    for (purpose, arn) in roles {
        let role = readback::role(&iam, arn.as_str().unwrap()).await;
        assert!(lint::trust(&role.trust).is_empty(), "{purpose} trust");
        for (name, doc) in &role.policies {
            assert!(
                lint::permissions(doc).is_empty(),
                "{purpose}/{name}: {:?}",
                lint::permissions(doc)
            );
        }
    }

    // A log group per project, with the configured retention, encrypted.
    let projects = out["buildProjectNames"].as_array().unwrap();
    let groups = out["logGroupNames"].as_array().unwrap();
    assert_eq!(
        projects.len(),
        3,
        "build, staging, production: {projects:?}"
    );
    assert_eq!(groups.len(), projects.len());
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    for group in groups {
        let name = group.as_str().unwrap();
        let found = logs
            .describe_log_groups()
            .log_group_name_prefix(name)
            .send()
            .await
            .unwrap();
        let found = &found.log_groups()[0];
        assert_eq!(found.retention_in_days(), Some(14), "{name}");
        assert_eq!(found.kms_key_id(), Some(key_arn.as_str()), "{name}");
    }

    // The artifact bucket: versioned, SSE-KMS with the key, no public access.
    let s3 = readback::s3(&sdk);
    let bucket = text(out, "artifactBucketName");
    readback::assert_bucket_encrypted_and_private(&s3, &bucket, &key_arn).await;

    // The topic: encrypted with the key, the team's address pending.
    let sns = aws_sdk_sns::Client::new(&sdk);
    let topic = text(out, "notificationTopicArn");
    let attributes = sns
        .get_topic_attributes()
        .topic_arn(&topic)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attributes.attributes().unwrap().get("KmsMasterKeyId"),
        Some(&key_arn)
    );
    let subscriptions = sns
        .list_subscriptions_by_topic()
        .topic_arn(&topic)
        .send()
        .await
        .unwrap();
    let subscription = &subscriptions.subscriptions()[0];
    assert_eq!(subscription.endpoint(), Some("team@example.com"));
    assert_eq!(subscription.subscription_arn(), Some("PendingConfirmation"));
}

async fn example_deploys_and_destroys(language: &str) {
    let emulator = Emulator::start();
    let stack = Stack::example(&emulator, language);
    stack.preview().success();
    let started = Instant::now();
    stack.up().success();
    println!(
        "examples/{language}: pulumi up took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_example_pipeline(&emulator, &stack.outputs()).await;

    emulator.reset_calls();
    stack.up().success();
    let writes: Vec<_> = emulator.calls().into_iter().filter(|c| c.write).collect();
    assert!(writes.is_empty(), "a no-op update wrote to AWS: {writes:?}");

    stack.destroy().success();
    let left = readback::leftovers(&emulator.sdk().await).await;
    assert!(
        left.is_empty(),
        "examples/{language}: destroy left {left:?}"
    );

    // A value the SDK's types allow but CloudWatch Logs rejects fails at
    // preview, naming the property, through this language's host.
    let project = text(
        &serde_yaml_ng::from_str::<Json>(
            &std::fs::read_to_string(stack.path().join("Pulumi.yaml")).unwrap(),
        )
        .unwrap(),
        "name",
    );
    stack
        .pulumi(&[
            "config",
            "set",
            &format!("{project}:logRetentionDays"),
            "10",
        ])
        .success();
    let rejected = stack.preview().failure();
    assert!(
        rejected.text().contains("logRetentionDays") && rejected.text().contains("10"),
        "examples/{language}: {}",
        rejected.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn yaml_example_deploys_and_destroys() {
    example_deploys_and_destroys("yaml").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn typescript_example_deploys_and_destroys() {
    example_deploys_and_destroys("typescript").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_example_deploys_and_destroys() {
    example_deploys_and_destroys("python").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn go_example_deploys_and_destroys() {
    example_deploys_and_destroys("go").await;
}
