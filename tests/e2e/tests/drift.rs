//! Out-of-band weakening through the real engine against the emulator: a
//! pipeline is deployed once, then each weakening is made with the AWS SDK
//! as someone with console access would. A preview without refresh does not
//! see it; `refresh` reads it, so the next preview plans an update of
//! exactly the weakened property; `up` restores it, as read back from AWS.
//!
//! The weakenings come in two rounds of several at once on different
//! properties, so that the test stays short while every weakening has its
//! own assertions: first those of properties the kinds declare as inputs,
//! then those of configuration no input names (a disabled key, the bucket
//! key, pipeline variables and an extra pull-request trigger).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_codepipeline::types::{
    GitBranchFilterCriteria, GitPullRequestEventType, GitPullRequestFilter, PipelineDeclaration,
    PipelineVariableDeclaration,
};
use securepipeline::iam::PolicyDocument;
use securepipeline_e2e::readback::{self, policy, text};
use securepipeline_e2e::{Clients, Emulator, Stack};
use serde_json::{json, Value as Json};

/// A single-region pipeline with a schedule, so that every kind is there.
const PROGRAM: &str = r#"
resources:
  web:
    type: securepipeline:index:SecurePipeline
    properties:
      source:
        repository: example-org/web
        branch: main
      build:
        commands: ["npm ci", "npm test"]
        timeoutMinutes: 30
        queuedTimeoutMinutes: 20
      notifications:
        emails: [team@example.com]
      schedule: rate(1 day)
      logRetentionDays: 14
      artifactRetentionDays: 14
outputs:
  pipelineName: ${web.pipelineName}
  artifactBucketName: ${web.artifactBucketName}
  kmsKeyArn: ${web.kmsKeyArn}
  notificationTopicArn: ${web.notificationTopicArn}
  buildProjectNames: ${web.buildProjectNames}
  logGroupNames: ${web.logGroupNames}
  roleArns: ${web.roleArns}
"#;

/// What an outsider points the pipeline's artifacts at.
const FOREIGN_BUCKET: &str = "someone-elses-artifacts";

/// The emulator's clients, with the reads and writes this test repeats.
struct Aws(Clients);

impl std::ops::Deref for Aws {
    type Target = Clients;
    fn deref(&self) -> &Clients {
        &self.0
    }
}

impl Aws {
    async fn new(emulator: &Emulator) -> Self {
        Self(Clients::new(&emulator.sdk().await))
    }

    async fn pipeline(&self, name: &str) -> PipelineDeclaration {
        self.codepipeline
            .get_pipeline()
            .name(name)
            .send()
            .await
            .unwrap()
            .pipeline()
            .unwrap()
            .clone()
    }

    /// Replaces the pipeline's declaration as the console would.
    async fn put_pipeline(&self, mut declaration: PipelineDeclaration) {
        declaration.version = None;
        self.codepipeline
            .update_pipeline()
            .pipeline(declaration)
            .send()
            .await
            .unwrap();
    }

    async fn role_policies(&self, arn: &str) -> (PolicyDocument, BTreeMap<String, PolicyDocument>) {
        let live = readback::role(&self.iam, arn).await;
        (live.trust, live.policies)
    }

    async fn topic_policy(&self, arn: &str) -> PolicyDocument {
        let attributes = self
            .sns
            .get_topic_attributes()
            .topic_arn(arn)
            .send()
            .await
            .unwrap();
        policy(&attributes.attributes().unwrap()["Policy"])
    }

    async fn notification_rule(&self) -> String {
        let rules = self.events.list_rules().send().await.unwrap();
        rules
            .rules()
            .iter()
            .find(|r| r.event_pattern().is_some())
            .and_then(|r| r.name())
            .expect("the notification rule")
            .to_string()
    }

    async fn project(&self, name: &str) -> aws_sdk_codebuild::types::Project {
        self.codebuild
            .batch_get_projects()
            .names(name)
            .send()
            .await
            .unwrap()
            .projects()[0]
            .clone()
    }
}

/// A child of the stack: its URN by its id, from the checkpoint.
fn urns_by_id(stack: &Stack) -> BTreeMap<String, String> {
    let export: Json = serde_json::from_str(&stack.export()).expect("the checkpoint is JSON");
    export["deployment"]["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| {
            Some((
                r["id"].as_str()?.to_string(),
                r["urn"].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// The planned steps of `pulumi preview --json`: URN to the properties
/// whose difference makes the step, for every step that is not `same`.
fn planned_changes(stack: &Stack) -> BTreeMap<String, (String, BTreeSet<String>)> {
    let run = stack.pulumi(&["preview", "--json"]).success();
    let plan: Json = serde_json::from_str(&run.stdout()).expect("preview --json is JSON");
    plan["steps"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|step| step["op"] != "same")
        .map(|step| {
            let mut properties: BTreeSet<String> = step["diffReasons"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect();
            if let Some(detailed) = step["detailedDiff"].as_object() {
                properties.extend(detailed.keys().cloned());
            }
            (
                step["urn"].as_str().unwrap_or_default().to_string(),
                (
                    step["op"].as_str().unwrap_or_default().to_string(),
                    properties,
                ),
            )
        })
        .collect()
}

/// One weakening: what was done, to which resource (its id), and the input
/// property the next preview must plan to update because of it.
struct Weakening {
    what: &'static str,
    id: String,
    property: &'static str,
}

/// Each weakening was invisible before refresh, and after it the plan
/// updates (never replaces) its resource because of its property. Every
/// weakening refresh missed is reported, not only the first.
fn assert_refresh_sees(stack: &Stack, weakenings: &[Weakening]) {
    let before = planned_changes(stack);
    assert!(
        before.is_empty(),
        "without refresh the engine cannot know of the weakening, yet: {before:?}"
    );
    stack.refresh().success();
    let urns = urns_by_id(stack);
    let after = planned_changes(stack);
    let mut missed = Vec::new();
    for weakening in weakenings {
        let urn = urns
            .get(&weakening.id)
            .unwrap_or_else(|| panic!("{}: no resource with id {}", weakening.what, weakening.id));
        match after.get(urn) {
            Some((op, properties)) if op == "update" && properties.contains(weakening.property) => {
            }
            planned => missed.push(format!(
                "{}: expected an update of `{}` on {urn}, planned {planned:?}",
                weakening.what, weakening.property
            )),
        }
    }
    assert!(
        missed.is_empty(),
        "refresh missed:\n{}\nall planned: {after:?}",
        missed.join("\n")
    );
}

fn with_statement(document: &PolicyDocument, statement: Json) -> String {
    let mut json: Json = serde_json::from_str(&document.to_compact_json()).unwrap();
    json["Statement"].as_array_mut().unwrap().push(statement);
    json.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_sees_every_weakening_and_up_restores_it() {
    let emulator = Emulator::start();
    let stack = Stack::yaml(&emulator, "drift", PROGRAM);
    stack.up().success();
    let out = stack.outputs();
    let aws = Aws::new(&emulator).await;

    let pipeline = text(&out, "pipelineName");
    let bucket = text(&out, "artifactBucketName");
    let key_arn = text(&out, "kmsKeyArn");
    let key_id = key_arn.rsplit('/').next().unwrap().to_string();
    let topic = text(&out, "notificationTopicArn");
    let project = out["buildProjectNames"][0].as_str().unwrap().to_string();
    let log_group = out["logGroupNames"][0].as_str().unwrap().to_string();
    let build_role = out["roleArns"]["build"].as_str().unwrap().to_string();
    let pipeline_role = out["roleArns"]["pipeline"].as_str().unwrap().to_string();
    let role_name = |arn: &str| arn.rsplit('/').next().unwrap().to_string();
    let rule = aws.notification_rule().await;

    // What was deployed, to compare the restored configuration with.
    let declared = aws.pipeline(&pipeline).await;
    let (_, build_policies) = aws.role_policies(&build_role).await;
    let (pipeline_trust, _) = aws.role_policies(&pipeline_role).await;
    let topic_policy = aws.topic_policy(&topic).await;

    // Round 1: every weakening of a property a kind declares as an input.
    aws.logs
        .delete_retention_policy()
        .log_group_name(&log_group)
        .send()
        .await
        .unwrap();
    aws.kms
        .disable_key_rotation()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    aws.s3
        .put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .unwrap();
    aws.s3
        .delete_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    aws.s3
        .delete_bucket_policy()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let (widened_policy, widened) = build_policies.iter().next().expect("a build role policy");
    aws.iam
        .put_role_policy()
        .role_name(role_name(&build_role))
        .policy_name(widened_policy)
        .policy_document(with_statement(
            widened,
            json!({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}),
        ))
        .send()
        .await
        .unwrap();
    aws.iam
        .update_assume_role_policy()
        .role_name(role_name(&pipeline_role))
        .policy_document(with_statement(
            &pipeline_trust,
            json!({
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
                "Action": "sts:AssumeRole"
            }),
        ))
        .send()
        .await
        .unwrap();
    let environment = aws.project(&project).await.environment().unwrap().clone();
    aws.codebuild
        .update_project()
        .name(&project)
        .timeout_in_minutes(480)
        .queued_timeout_in_minutes(480)
        .environment(
            aws_sdk_codebuild::types::ProjectEnvironment::builder()
                .r#type(environment.r#type().clone())
                .image(environment.image())
                .compute_type(environment.compute_type().clone())
                .privileged_mode(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    aws.sns
        .set_topic_attributes()
        .topic_arn(&topic)
        .attribute_name("Policy")
        .attribute_value(with_statement(
            &topic_policy,
            json!({
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["sns:Publish", "sns:Subscribe"],
                "Resource": topic
            }),
        ))
        .send()
        .await
        .unwrap();
    aws.events.disable_rule().name(&rule).send().await.unwrap();
    aws.s3
        .create_bucket()
        .bucket(FOREIGN_BUCKET)
        .send()
        .await
        .unwrap();
    let mut weakened = declared.clone();
    let trigger = weakened.triggers.as_mut().unwrap()[0]
        .git_configuration
        .as_mut()
        .unwrap();
    trigger.push.as_mut().unwrap()[0].branches =
        Some(GitBranchFilterCriteria::builder().includes("*").build());
    weakened.artifact_store.as_mut().unwrap().location = FOREIGN_BUCKET.to_string();
    aws.put_pipeline(weakened).await;

    let weakenings = [
        ("retention removed", &log_group, "retentionInDays"),
        ("rotation off", &key_id, "enableKeyRotation"),
        ("versioning suspended", &bucket, "versioning"),
        ("public access block removed", &bucket, "blockPublicAccess"),
        ("bucket policy deleted", &bucket, "secureTransportPolicy"),
        ("role policy widened", &role_name(&build_role), "policies"),
        (
            "trust policy widened",
            &role_name(&pipeline_role),
            "trustPolicy",
        ),
        ("build timeout raised", &project, "timeoutInMinutes"),
        ("queue timeout raised", &project, "queuedTimeoutInMinutes"),
        ("privileged mode on", &project, "privilegedMode"),
        ("topic policy opened", &topic, "policy"),
        ("notification rule disabled", &rule, "enabled"),
        ("trigger widened to every branch", &pipeline, "triggers"),
        ("artifact store moved", &pipeline, "artifactStores"),
    ]
    .map(|(what, id, property)| Weakening {
        what,
        id: id.clone(),
        property,
    });
    assert_refresh_sees(&stack, &weakenings);
    stack.up().success();

    let groups = aws
        .logs
        .describe_log_groups()
        .log_group_name_prefix(&log_group)
        .send()
        .await
        .unwrap();
    assert_eq!(
        groups.log_groups()[0].retention_in_days(),
        Some(14),
        "retention"
    );
    assert!(
        aws.kms
            .get_key_rotation_status()
            .key_id(&key_id)
            .send()
            .await
            .unwrap()
            .key_rotation_enabled(),
        "rotation"
    );
    // Versioning, public access block and encryption in one check.
    readback::assert_bucket_encrypted_and_private(&aws.s3, &bucket, &key_arn).await;
    let bucket_policy = aws.s3.get_bucket_policy().bucket(&bucket).send().await;
    assert!(
        bucket_policy.is_ok_and(|p| p.policy().is_some_and(|p| !p.is_empty())),
        "bucket policy"
    );
    let (_, restored_policies) = aws.role_policies(&build_role).await;
    assert_eq!(restored_policies, build_policies, "role policy");
    let (restored_trust, _) = aws.role_policies(&pipeline_role).await;
    assert_eq!(restored_trust, pipeline_trust, "trust policy");
    let restored_project = aws.project(&project).await;
    assert_eq!(restored_project.timeout_in_minutes(), Some(30), "timeout");
    assert_eq!(
        restored_project.queued_timeout_in_minutes(),
        Some(20),
        "queue timeout"
    );
    assert_eq!(
        restored_project.environment().unwrap().privileged_mode(),
        Some(false),
        "privileged mode"
    );
    assert_eq!(aws.topic_policy(&topic).await, topic_policy, "topic policy");
    let described = aws.events.describe_rule().name(&rule).send().await.unwrap();
    assert_eq!(
        described.state().map(|s| s.as_str()),
        Some("ENABLED"),
        "notification rule"
    );
    let restored = aws.pipeline(&pipeline).await;
    assert_eq!(restored.triggers, declared.triggers, "triggers");
    assert_eq!(
        restored.artifact_store, declared.artifact_store,
        "artifact store"
    );

    // Round 2: weakenings of configuration that no input names.
    aws.kms.disable_key().key_id(&key_id).send().await.unwrap();
    aws.s3
        .put_bucket_encryption()
        .bucket(&bucket)
        .server_side_encryption_configuration(
            aws_sdk_s3::types::ServerSideEncryptionConfiguration::builder()
                .rules(
                    aws_sdk_s3::types::ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            aws_sdk_s3::types::ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
                                .kms_master_key_id(&key_arn)
                                .build()
                                .unwrap(),
                        )
                        .bucket_key_enabled(false)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let mut weakened = restored.clone();
    weakened.variables = Some(vec![PipelineVariableDeclaration::builder()
        .name("DEPLOY_TARGET")
        .default_value("prod")
        .build()
        .unwrap()]);
    let source = weakened.triggers.as_mut().unwrap()[0]
        .git_configuration
        .as_mut()
        .unwrap();
    source.pull_request = Some(vec![GitPullRequestFilter::builder()
        .events(GitPullRequestEventType::Open)
        .events(GitPullRequestEventType::Updated)
        .branches(GitBranchFilterCriteria::builder().includes("*").build())
        .build()]);
    aws.put_pipeline(weakened).await;

    let weakenings = [
        ("key disabled", &key_id, "enabled"),
        ("bucket key off", &bucket, "bucketKeyEnabled"),
        ("pipeline variable added", &pipeline, "variables"),
        (
            "pull-request trigger added",
            &pipeline,
            "pullRequestTriggers",
        ),
    ]
    .map(|(what, id, property)| Weakening {
        what,
        id: id.clone(),
        property,
    });
    assert_refresh_sees(&stack, &weakenings);
    stack.up().success();

    let key = aws.kms.describe_key().key_id(&key_id).send().await.unwrap();
    let key = key.key_metadata().unwrap();
    assert_eq!(
        key.key_state().map(|s| s.as_str()),
        Some("Enabled"),
        "key state"
    );
    let encryption = aws
        .s3
        .get_bucket_encryption()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let rule = &encryption
        .server_side_encryption_configuration()
        .unwrap()
        .rules()[0];
    assert_eq!(rule.bucket_key_enabled(), Some(true), "bucket key");
    let restored = aws.pipeline(&pipeline).await;
    assert!(
        restored.variables().is_empty(),
        "pipeline variables: {:?}",
        restored.variables()
    );
    assert_eq!(restored.triggers, declared.triggers, "pull-request trigger");

    // Nothing is left for a refresh to find.
    let converged = stack
        .pulumi(&["preview", "--refresh", "--json"])
        .success()
        .stdout();
    let plan: Json = serde_json::from_str(&converged).unwrap();
    let changed: Vec<&Json> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["op"] != "same" && s["op"] != "refresh")
        .collect();
    assert!(changed.is_empty(), "not converged: {changed:?}");
}
