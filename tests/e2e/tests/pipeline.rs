//! SecurePipeline through the real engine against the emulator: create,
//! read every guarantee back from AWS, no-op update, targeted update,
//! drift repair, destroy.

use std::collections::{BTreeMap, BTreeSet};

use securepipeline::iam::{lint, PolicyDocument};
use securepipeline_e2e::readback::{self, policy, text};
use securepipeline_e2e::{repo_root, Clients, Emulator, Stack, ACCOUNT, REGION};
use serde_json::Value as Json;

const SECRET_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:npm-token-AbCdEf";

/// The richest single-region configuration. The notification address is a
/// secret, retention comes from stack config so that changing it is a
/// one-input change. tests/e2e/programs/guarantees-typescript declares the
/// same pipeline through the TypeScript SDK.
const PROGRAM: &str = r#"
config:
  logRetentionDays:
    type: integer
    default: 14
resources:
  web:
    type: securepipeline:index:SecurePipeline
    properties:
      source:
        repository: example-org/web
        branch: main
        includePaths: ["src/**"]
      build:
        commands: ["npm ci", "npm test"]
        image: aws/codebuild/standard:7.0
        computeType: BUILD_GENERAL1_MEDIUM
        timeoutMinutes: 30
        queuedTimeoutMinutes: 20
        environment:
          NODE_ENV:
            value: test
          NPM_TOKEN:
            secretArn: arn:aws:secretsmanager:us-east-1:123456789012:secret:npm-token-AbCdEf
            secretJsonKey: token
          DB_PASSWORD:
            parameterName: /web/db-password
      notifications:
        emails:
          - fn::secret: team@example.com
        events: [FAILED, SUCCEEDED]
      schedule: rate(1 day)
      logRetentionDays: ${logRetentionDays}
      artifactRetentionDays: 14
      tags:
        team: platform
outputs:
  pipelineName: ${web.pipelineName}
  pipelineArn: ${web.pipelineArn}
  pipelineUrl: ${web.pipelineUrl}
  connectionArn: ${web.connectionArn}
  connectionStatus: ${web.connectionStatus}
  artifactBucketName: ${web.artifactBucketName}
  kmsKeyArn: ${web.kmsKeyArn}
  notificationTopicArn: ${web.notificationTopicArn}
  eventBridgeRoleArn: ${web.eventBridgeRoleArn}
  buildProjectNames: ${web.buildProjectNames}
  logGroupNames: ${web.logGroupNames}
  roleArns: ${web.roleArns}
"#;

/// The secret notification address both programs pass.
const SECRET_EMAIL: &str = "team@example.com";

/// The emulator's clients, with the reads this test repeats.
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

    async fn role(
        &self,
        arn: &str,
    ) -> (
        PolicyDocument,
        BTreeMap<String, PolicyDocument>,
        BTreeMap<String, String>,
    ) {
        let live = readback::role(&self.iam, arn).await;
        (live.trust, live.policies, live.tags)
    }
}

fn assert_managed_tags(what: &str, tags: &BTreeMap<String, String>) {
    assert_eq!(
        tags.get("ManagedBy").map(String::as_str),
        Some("pulumi-securepipeline"),
        "{what}: {tags:?}"
    );
    assert_eq!(
        tags.get("securepipeline:pipeline").map(String::as_str),
        Some("web"),
        "{what}: {tags:?}"
    );
    assert_eq!(
        tags.get("team").map(String::as_str),
        Some("platform"),
        "{what}: {tags:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn yaml_pipeline_holds_every_guarantee() {
    let emulator = Emulator::start();
    let stack = Stack::yaml(&emulator, "web-pipeline", PROGRAM);
    holds_every_guarantee(&emulator, &stack).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn typescript_pipeline_holds_every_guarantee() {
    let emulator = Emulator::start();
    let program = repo_root().join("tests/e2e/programs/guarantees-typescript");
    let stack = Stack::project(&emulator, &program, "test");
    stack
        .pulumi(&["config", "set", "securepipeline:region", REGION])
        .success();
    holds_every_guarantee(&emulator, &stack).await;
}

/// The children of component `web` in a checkpoint, by purpose (a child
/// is named `web-<purpose>`), each with the purposes of the children the
/// engine recorded it as depending on.
fn child_dependencies(checkpoint: &str) -> BTreeMap<String, BTreeSet<String>> {
    let state: Json = serde_json::from_str(checkpoint).expect("stack export is JSON");
    let purpose = |urn: &str| {
        urn.rsplit("::")
            .next()
            .and_then(|name| name.strip_prefix("web-"))
            .map(str::to_string)
    };
    state["deployment"]["resources"]
        .as_array()
        .expect("the checkpoint lists resources")
        .iter()
        .filter(|r| {
            r["parent"]
                .as_str()
                .is_some_and(|parent| parent.ends_with("SecurePipeline::web"))
        })
        .filter_map(|r| {
            let child = purpose(r["urn"].as_str()?)?;
            let depends_on = r["dependencies"]
                .as_array()
                .map(|urns| {
                    urns.iter()
                        .filter_map(|urn| purpose(urn.as_str()?))
                        .collect()
                })
                .unwrap_or_default();
            Some((child, depends_on))
        })
        .collect()
}

/// Creates the pipeline and reads every guarantee back from the emulator,
/// then a no-op update, a one-input change, drift repair and destroy.
async fn holds_every_guarantee(emulator: &Emulator, stack: &Stack) {
    let created = stack.up().success();
    assert!(
        !created.text().contains(SECRET_EMAIL),
        "a secret input reached the engine's output:\n{}",
        created.text()
    );
    let out = stack.outputs();
    let aws = Aws::new(emulator).await;

    // G1: every ARN is in the caller's account and region.
    let pipeline_arn = text(&out, "pipelineArn");
    assert_eq!(
        pipeline_arn,
        format!(
            "arn:aws:codepipeline:{REGION}:{ACCOUNT}:{}",
            text(&out, "pipelineName")
        )
    );
    for (purpose, arn) in out["roleArns"].as_object().unwrap() {
        assert!(
            arn.as_str()
                .unwrap()
                .starts_with(&format!("arn:aws:iam::{ACCOUNT}:role/")),
            "{purpose}: {arn}"
        );
    }

    // G2, G3, G5: connection source, push trigger, single-region store.
    let pipeline_name = text(&out, "pipelineName");
    let declaration = aws
        .codepipeline
        .get_pipeline()
        .name(&pipeline_name)
        .send()
        .await
        .unwrap();
    let declaration = declaration.pipeline().unwrap();
    let source = &declaration.stages()[0].actions()[0];
    assert_eq!(
        source.action_type_id().unwrap().provider(),
        "CodeStarSourceConnection"
    );
    let config = source.configuration().unwrap();
    assert_eq!(config["ConnectionArn"], text(&out, "connectionArn"));
    assert_eq!(config["FullRepositoryId"], "example-org/web");
    assert_eq!(text(&out, "connectionStatus"), "PENDING");
    let connection = aws
        .connections
        .get_connection()
        .connection_arn(text(&out, "connectionArn"))
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
    let trigger = &declaration.triggers()[0];
    let git = trigger.git_configuration().unwrap();
    assert_eq!(git.source_action_name(), "Source");
    let push = &git.push()[0];
    assert_eq!(push.branches().unwrap().includes(), ["main"]);
    assert_eq!(push.file_paths().unwrap().includes(), ["src/**"]);
    assert_eq!(declaration.pipeline_type().unwrap().as_str(), "V2");
    let store = declaration
        .artifact_store()
        .expect("single-region pipelines use artifactStore");
    assert!(declaration.artifact_stores().is_none());
    assert_eq!(store.location(), text(&out, "artifactBucketName"));

    // G7: the created key rotates and encrypts artifacts, builds and logs.
    let key_arn = text(&out, "kmsKeyArn");
    let rotation = aws
        .kms
        .get_key_rotation_status()
        .key_id(&key_arn)
        .send()
        .await
        .unwrap();
    assert!(rotation.key_rotation_enabled());
    assert_eq!(store.encryption_key().unwrap().id(), key_arn);

    // G6: the artifact bucket.
    let bucket = text(&out, "artifactBucketName");
    readback::assert_bucket_encrypted_and_private(&aws.s3, &bucket, &key_arn).await;
    let ownership = aws
        .s3
        .get_bucket_ownership_controls()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(
        ownership.ownership_controls().unwrap().rules()[0]
            .object_ownership()
            .as_str(),
        "BucketOwnerEnforced"
    );
    let bucket_policy = policy(
        aws.s3
            .get_bucket_policy()
            .bucket(&bucket)
            .send()
            .await
            .unwrap()
            .policy()
            .unwrap(),
    );
    let denies: Vec<_> = bucket_policy
        .statements
        .iter()
        .filter(|s| s.effect == securepipeline::iam::Effect::Deny)
        .collect();
    assert!(
        denies.iter().any(|s| s
            .conditions
            .get("Bool")
            .and_then(|c| c.get("aws:SecureTransport"))
            == Some(&vec!["false".to_string()])),
        "no TLS-only deny: {bucket_policy:?}"
    );
    assert!(
        denies.iter().any(|s| s
            .conditions
            .get("StringNotEquals")
            .and_then(|c| c.get("s3:x-amz-server-side-encryption"))
            == Some(&vec!["aws:kms".to_string()])),
        "no deny for unencrypted puts: {bucket_policy:?}"
    );
    let lifecycle = aws
        .s3
        .get_bucket_lifecycle_configuration()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let expiring = &lifecycle.rules()[0];
    assert_eq!(expiring.expiration().unwrap().days(), Some(14));
    assert_eq!(
        expiring
            .noncurrent_version_expiration()
            .unwrap()
            .noncurrent_days(),
        Some(14)
    );

    // G8, G9, G13, G24, G12: the build project.
    let project_name = out["buildProjectNames"][0].as_str().unwrap().to_string();
    let log_group = out["logGroupNames"][0].as_str().unwrap().to_string();
    let projects = aws
        .codebuild
        .batch_get_projects()
        .names(&project_name)
        .send()
        .await
        .unwrap();
    let project = &projects.projects()[0];
    assert_eq!(project.timeout_in_minutes(), Some(30));
    assert_eq!(project.queued_timeout_in_minutes(), Some(20));
    assert_eq!(project.encryption_key(), Some(key_arn.as_str()));
    let logs_config = project.logs_config().unwrap().cloud_watch_logs().unwrap();
    assert_eq!(logs_config.group_name(), Some(log_group.as_str()));
    let environment = project.environment().unwrap();
    assert_eq!(environment.privileged_mode(), Some(false));
    assert_eq!(environment.image(), "aws/codebuild/standard:7.0");
    assert_eq!(environment.compute_type().as_str(), "BUILD_GENERAL1_MEDIUM");
    let variables: BTreeMap<&str, (&str, &str)> = environment
        .environment_variables()
        .iter()
        .map(|v| {
            (
                v.name(),
                (
                    v.value(),
                    v.r#type().map(|t| t.as_str()).unwrap_or("PLAINTEXT"),
                ),
            )
        })
        .collect();
    assert_eq!(
        variables["NPM_TOKEN"],
        (format!("{SECRET_ARN}:token").as_str(), "SECRETS_MANAGER")
    );
    assert_eq!(
        variables["DB_PASSWORD"],
        ("/web/db-password", "PARAMETER_STORE")
    );
    assert_eq!(variables["NODE_ENV"], ("test", "PLAINTEXT"));
    let groups = aws
        .logs
        .describe_log_groups()
        .log_group_name_prefix(&log_group)
        .send()
        .await
        .unwrap();
    let group = &groups.log_groups()[0];
    assert_eq!(group.retention_in_days(), Some(14));
    assert_eq!(group.kms_key_id(), Some(key_arn.as_str()));

    // G10, G12, G4: every role is exact, trusts one service, and the build
    // role reads exactly the referenced secret and parameter.
    let roles = out["roleArns"].as_object().unwrap();
    for (purpose, arn) in roles {
        let (trust, policies, tags) = aws.role(arn.as_str().unwrap()).await;
        assert!(
            lint::trust(&trust).is_empty(),
            "{purpose} trust: {:?}",
            lint::trust(&trust)
        );
        for (name, doc) in &policies {
            assert!(
                lint::permissions(doc).is_empty(),
                "{purpose}/{name}: {:?}",
                lint::permissions(doc)
            );
        }
        assert_managed_tags(purpose, &tags);
    }
    let (_, build_policies, _) = aws.role(roles["build"].as_str().unwrap()).await;
    let build_statements: Vec<_> = build_policies
        .values()
        .flat_map(|d| d.statements.clone())
        .collect();
    let secrets = build_statements
        .iter()
        .find(|s| s.actions.contains(&"secretsmanager:GetSecretValue".into()))
        .unwrap();
    assert_eq!(secrets.resources, vec![SECRET_ARN]);
    let parameters = build_statements
        .iter()
        .find(|s| s.actions.contains(&"ssm:GetParameters".into()))
        .unwrap();
    assert_eq!(
        parameters.resources,
        vec![format!(
            "arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/web/db-password"
        )]
    );
    let events_role = text(&out, "eventBridgeRoleArn");
    let (trust, policies, _) = aws.role(&events_role).await;
    assert_eq!(
        trust.statements[0].principal.as_ref().unwrap()["Service"],
        vec!["events.amazonaws.com"]
    );
    let events_statements: Vec<_> = policies
        .values()
        .flat_map(|d| d.statements.clone())
        .collect();
    assert_eq!(events_statements.len(), 1);
    assert_eq!(
        events_statements[0].actions,
        vec!["codepipeline:StartPipelineExecution"]
    );
    assert_eq!(events_statements[0].resources, vec![pipeline_arn.clone()]);

    // G4, G14: the schedule goes through the role; failures reach the topic.
    let rules = aws.events.list_rules().send().await.unwrap();
    let mut saw_schedule = false;
    let mut saw_notify = false;
    for rule in rules.rules() {
        let name = rule.name().unwrap();
        let targets = aws
            .events
            .list_targets_by_rule()
            .rule(name)
            .send()
            .await
            .unwrap();
        let target = &targets.targets()[0];
        if let Some(schedule) = rule.schedule_expression() {
            assert_eq!(schedule, "rate(1 day)");
            assert_eq!(target.arn(), pipeline_arn);
            assert_eq!(target.role_arn(), Some(events_role.as_str()));
            saw_schedule = true;
        } else {
            let pattern: Json = serde_json::from_str(rule.event_pattern().unwrap()).unwrap();
            assert_eq!(pattern["source"][0], "aws.codepipeline");
            assert_eq!(
                pattern["detail-type"][0],
                "CodePipeline Pipeline Execution State Change"
            );
            assert_eq!(pattern["detail"]["pipeline"][0], pipeline_name.as_str());
            assert_eq!(
                pattern["detail"]["state"],
                serde_json::json!(["FAILED", "SUCCEEDED"])
            );
            assert_eq!(target.arn(), text(&out, "notificationTopicArn"));
            saw_notify = true;
        }
    }
    assert!(saw_schedule && saw_notify, "{rules:?}");
    let topic_arn = text(&out, "notificationTopicArn");
    let attributes = aws
        .sns
        .get_topic_attributes()
        .topic_arn(&topic_arn)
        .send()
        .await
        .unwrap();
    let attributes = attributes.attributes().unwrap();
    assert_eq!(attributes.get("KmsMasterKeyId"), Some(&key_arn));
    let topic_policy: Json = serde_json::from_str(&attributes["Policy"]).unwrap();
    let publish = topic_policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["Principal"]["Service"] == "events.amazonaws.com"
                || s["Principal"]["Service"][0] == "events.amazonaws.com"
        })
        .expect("EventBridge may publish");
    assert!(
        publish["Condition"].to_string().contains("aws:SourceArn"),
        "{publish}"
    );
    let subscriptions = aws
        .sns
        .list_subscriptions_by_topic()
        .topic_arn(&topic_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        subscriptions.subscriptions()[0].subscription_arn(),
        Some("PendingConfirmation")
    );

    // G18: tags on the pipeline, project, bucket, key, log group, topic.
    let pipeline_tags = aws
        .codepipeline
        .list_tags_for_resource()
        .resource_arn(&pipeline_arn)
        .send()
        .await
        .unwrap();
    assert_managed_tags(
        "pipeline",
        &pipeline_tags
            .tags()
            .iter()
            .map(|t| (t.key().into(), t.value().into()))
            .collect(),
    );
    assert_managed_tags(
        "project",
        &project
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().into(),
                    t.value().unwrap_or_default().into(),
                )
            })
            .collect(),
    );
    let bucket_tags = aws
        .s3
        .get_bucket_tagging()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_managed_tags(
        "bucket",
        &bucket_tags
            .tag_set()
            .iter()
            .map(|t| (t.key().into(), t.value().into()))
            .collect(),
    );
    let key_tags = aws
        .kms
        .list_resource_tags()
        .key_id(&key_arn)
        .send()
        .await
        .unwrap();
    assert_managed_tags(
        "key",
        &key_tags
            .tags()
            .iter()
            .map(|t| (t.tag_key().into(), t.tag_value().into()))
            .collect(),
    );
    let topic_tags = aws
        .sns
        .list_tags_for_resource()
        .resource_arn(&topic_arn)
        .send()
        .await
        .unwrap();
    assert_managed_tags(
        "topic",
        &topic_tags
            .tags()
            .iter()
            .map(|t| (t.key().into(), t.value().into()))
            .collect(),
    );

    // G20: one naming scheme with a random suffix.
    assert!(pipeline_name.starts_with("web-"), "{pipeline_name}");
    assert!(
        project_name.starts_with("web-") && project_name.contains("-build-"),
        "{project_name}"
    );

    // G12: the secret input is not in plaintext state.
    let checkpoint = stack.export();
    assert!(
        !checkpoint.contains(SECRET_EMAIL),
        "a secret input is stored in plaintext state"
    );

    // Each child depends, in the engine's record, on exactly the children
    // it uses, so that the engine creates it after them and deletes it
    // before them.
    let set = |purposes: &[&str]| -> BTreeSet<String> {
        purposes.iter().map(|p| p.to_string()).collect()
    };
    let uses = ["key", "artifacts", "source", "build", "notifications"];
    let pipeline_uses = [&uses[..], &["pipeline-role"]].concat();
    assert_eq!(
        child_dependencies(&checkpoint),
        BTreeMap::from([
            ("key".to_string(), set(&[])),
            ("source".to_string(), set(&[])),
            ("artifacts".to_string(), set(&["key"])),
            ("access-logs".to_string(), set(&["artifacts"])),
            ("build-logs".to_string(), set(&["key"])),
            ("notifications".to_string(), set(&["key"])),
            (
                "build-role".to_string(),
                set(&["key", "artifacts", "build-logs"])
            ),
            (
                "build".to_string(),
                set(&["key", "build-role", "build-logs"])
            ),
            // The role names the projects by the ARNs the plan gives them,
            // so it need not wait for them.
            (
                "pipeline-role".to_string(),
                set(&["key", "artifacts", "source", "notifications"])
            ),
            ("pipeline".to_string(), set(&pipeline_uses)),
            ("notify".to_string(), set(&["pipeline", "notifications"])),
            ("events-role".to_string(), set(&["pipeline"])),
            ("schedule".to_string(), set(&["pipeline", "events-role"])),
        ])
    );

    // A second `up` changes nothing and writes nothing.
    emulator.reset_calls();
    let again = stack.up().success();
    assert!(
        !again.stdout().contains("updated") && !again.stdout().contains("created"),
        "{}",
        again.stdout()
    );
    let writes: Vec<_> = emulator.calls().into_iter().filter(|c| c.write).collect();
    assert!(writes.is_empty(), "a no-op update wrote to AWS: {writes:?}");

    // Changing one input updates only what depends on it.
    stack
        .pulumi(&["config", "set", "logRetentionDays", "30"])
        .success();
    let preview = stack.pulumi(&["preview", "--json"]).success();
    let steps: Json = serde_json::from_str(&preview.stdout()).unwrap();
    let changed: Vec<(String, String)> = steps["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["op"] != "same")
        .map(|s| {
            (
                s["op"].as_str().unwrap().into(),
                s["urn"]
                    .as_str()
                    .unwrap()
                    .rsplit("::")
                    .next()
                    .unwrap()
                    .into(),
            )
        })
        .collect();
    assert_eq!(
        changed,
        vec![("update".to_string(), "web-build-logs".to_string())]
    );
    stack.up().success();
    let groups = aws
        .logs
        .describe_log_groups()
        .log_group_name_prefix(&log_group)
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(30));

    // Drift: retention removed and rotation disabled out of band; refresh
    // sees it and the next `up` restores both.
    aws.logs
        .delete_retention_policy()
        .log_group_name(&log_group)
        .send()
        .await
        .unwrap();
    aws.kms
        .disable_key_rotation()
        .key_id(&key_arn)
        .send()
        .await
        .unwrap();
    stack.refresh().success();
    let repair = stack.preview().success();
    assert!(
        repair.stdout().contains("retentionInDays"),
        "{}",
        repair.stdout()
    );
    stack.up().success();
    let groups = aws
        .logs
        .describe_log_groups()
        .log_group_name_prefix(&log_group)
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(30));
    assert!(aws
        .kms
        .get_key_rotation_status()
        .key_id(&key_arn)
        .send()
        .await
        .unwrap()
        .key_rotation_enabled());

    // Destroy leaves nothing behind; the key waits out its deletion window.
    stack.destroy().success();
    let left = readback::leftovers(&emulator.sdk().await).await;
    assert!(left.is_empty(), "destroy left {left:?}");
    let key = aws
        .kms
        .describe_key()
        .key_id(&key_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        key.key_metadata().unwrap().key_state().unwrap().as_str(),
        "PendingDeletion"
    );
}

const BAD_INPUTS: &[(&str, &str, &str)] = &[
    (
        "plaintext token",
        "environment: {GITHUB_TOKEN: {value: ghp_abcdef1234567890}}",
        "build.environment.GITHUB_TOKEN.value",
    ),
    (
        "invalid buildspec",
        "buildspec: \"version: 0.2\\nphases: [\"",
        "build.buildspec",
    ),
    (
        "build timeout out of range",
        "timeoutMinutes: 5000",
        "build.timeoutMinutes",
    ),
    (
        "queue timeout out of range",
        "queuedTimeoutMinutes: 1",
        "build.queuedTimeoutMinutes",
    ),
    (
        "secret that is not a Secrets Manager ARN",
        "environment: {T: {secretArn: \"arn:aws:ssm:us-east-1:123456789012:parameter/x\"}}",
        "build.environment.T.secretArn",
    ),
    (
        "two buildspec sources",
        "buildspecPath: ci/build.yml",
        "build",
    ),
    (
        "wildcard secret ARN",
        "environment: {T: {secretArn: \"arn:aws:secretsmanager:us-east-1:123456789012:secret:npm-*\"}}",
        "build.environment.T.secretArn",
    ),
    (
        "partial secret ARN",
        "environment: {T: {secretArn: \"arn:aws:secretsmanager:us-east-1:123456789012:secret:npm-token\"}}",
        "build.environment.T.secretArn",
    ),
    (
        "Pulumi secret as a plain value",
        "environment: {DB_URL: {value: {fn::secret: \"db-8c1f.internal:5432\"}}}",
        "build.environment.DB_URL.value",
    ),
    (
        "variable that replaces the role's credentials",
        "environment: {AWS_ACCESS_KEY_ID: {parameterName: /ci/key}}",
        "build.environment.AWS_ACCESS_KEY_ID",
    ),
    (
        "placeholder CodeBuild never expands",
        "environment: {URL: {value: \"https://$${HOST}/api\"}}",
        "build.environment.URL.value",
    ),
    (
        "pipeline variable in an environment value",
        "environment: {COMMIT: {value: \"#{SourceVariables.CommitId}\"}}",
        "build.environment.COMMIT.value",
    ),
];

/// Values in BAD_INPUTS and the programs below that no message may repeat.
const NEVER_ECHOED: &[&str] = &["db-8c1f.internal", "abcdefgh12345678"];

#[test]
fn bad_inputs_fail_at_preview_naming_the_property() {
    let emulator = Emulator::start();
    for (what, build_extra, property) in BAD_INPUTS {
        let program = format!(
            "resources:\n  web:\n    type: securepipeline:index:SecurePipeline\n    properties:\n      source: {{repository: example-org/web}}\n      build:\n        commands: [make]\n        {build_extra}\n"
        );
        let stack = Stack::yaml(&emulator, "bad-inputs", &program);
        let run = stack.preview().failure();
        assert!(
            run.text().contains(property),
            "{what}: expected `{property}` in:\n{}",
            run.text()
        );
        for secret in NEVER_ECHOED {
            assert!(!run.text().contains(secret), "{what}: `{secret}` echoed");
        }
    }
    let source = "{repository: example-org/web}";
    for (what, source, extra, property) in [
        (
            "log retention CloudWatch rejects",
            source,
            "logRetentionDays: 10",
            "logRetentionDays",
        ),
        ("schedule syntax", source, "schedule: every day", "schedule"),
        (
            "key in another account",
            source,
            "kmsKeyArn: arn:aws:kms:us-east-1:999999999999:key/k",
            "kmsKeyArn",
        ),
        (
            "wildcard key",
            source,
            "kmsKeyArn: \"arn:aws:kms:us-east-1:123456789012:key/*\"",
            "kmsKeyArn",
        ),
        (
            "wildcard deploy role",
            source,
            "deployments: [{name: dev, commands: [./deploy], assumeRoleArn: \"arn:aws:iam::123456789012:role/deploy-*\"}]",
            "deployments[0].assumeRoleArn: `arn:aws:iam::123456789012:role/deploy-*` has a wildcard",
        ),
        (
            "credential in a deployment command",
            source,
            "deployments: [{name: dev, commands: [\"curl -H 'Authorization: Bearer abcdefgh12345678' https://hooks.example.com\"]}]",
            "deployments[0].commands[0]",
        ),
        (
            "branch written as a ref",
            "{repository: example-org/web, branch: refs/heads/main}",
            "",
            "source.branch",
        ),
        (
            "address listed twice, at the component's path",
            source,
            "notifications: {emails: [ops@example.com, OPS@example.com]}",
            "notifications.emails[1]",
        ),
    ] {
        let program = format!(
            "resources:\n  web:\n    type: securepipeline:index:SecurePipeline\n    properties:\n      source: {source}\n      build: {{commands: [make]}}\n      {extra}\n"
        );
        let stack = Stack::yaml(&emulator, "bad-inputs", &program);
        let run = stack.preview().failure();
        assert!(
            run.text().contains(property),
            "{what}: expected `{property}` in:\n{}",
            run.text()
        );
        for secret in NEVER_ECHOED {
            assert!(!run.text().contains(secret), "{what}: `{secret}` echoed");
        }
    }
}

#[test]
fn a_build_that_chooses_nothing_is_rejected_and_a_defaulted_branch_is_stated_at_preview() {
    let emulator = Emulator::start();
    let program = "resources:\n  web:\n    type: securepipeline:index:SecurePipeline\n    properties:\n      source: {repository: example-org/web}\n      build: {}\n";
    let stack = Stack::yaml(&emulator, "defaults", program);
    // No silent fallback to a buildspec.yml anyone who can push controls.
    let run = stack.preview().failure();
    assert!(
        run.text().contains("build: choose what the build runs")
            && run
                .text()
                .contains("nothing defaults to the repository's buildspec.yml"),
        "{}",
        run.text()
    );
    stack.set_program(
        "defaults",
        "resources:\n  web:\n    type: securepipeline:index:SecurePipeline\n    properties:\n      source: {repository: example-org/web}\n      build: {commands: [make]}\n",
    );
    let run = stack.preview().success();
    let note = "source.branch is not set: the pipeline starts on pushes to `main`";
    assert!(
        run.text().contains(note),
        "expected `{note}` in:\n{}",
        run.text()
    );
    stack.set_program(
        "defaults",
        "resources:\n  web:\n    type: securepipeline:index:SecurePipeline\n    properties:\n      source: {repository: example-org/web, branch: main}\n      build: {commands: [make]}\n",
    );
    let run = stack.preview().success();
    assert!(!run.text().contains("is not set"), "{}", run.text());
}
