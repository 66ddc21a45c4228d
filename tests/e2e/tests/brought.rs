//! A key (`kmsKeyArn`) or connection (`source.connectionArn`) the user
//! brings, through the real engine against the emulator: checked at
//! preview, never trusted; a good key gets exactly the statements the
//! pipeline needs, and loses them again on destroy.

use aws_sdk_kms::types::KeyState;
use securepipeline::iam::Statement;
use securepipeline_e2e::readback::text;
use securepipeline_e2e::{Emulator, Stack, ACCOUNT, REGION};
use serde_json::Value as Json;

const OTHER_REGION: &str = "eu-west-1";

fn program(extra: &str) -> String {
    format!(
        "resources:\n  web:\n    type: securepipeline:index:SecurePipeline\n    properties:\n      source: {{repository: example-org/web, branch: main{connection}}}\n      build: {{commands: [make]}}\n      notifications: {{emails: [team@example.com]}}\n      {key}\noutputs:\n  kmsKeyArn: ${{web.kmsKeyArn}}\n  logGroupNames: ${{web.logGroupNames}}\n  artifactBucketName: ${{web.artifactBucketName}}\n  pipelineName: ${{web.pipelineName}}\n  connectionArn: ${{web.connectionArn}}\n",
        connection = extra
            .strip_prefix("connectionArn: ")
            .map(|arn| format!(", connectionArn: \"{arn}\""))
            .unwrap_or_default(),
        key = extra
            .strip_prefix("kmsKeyArn: ")
            .map(|arn| format!("kmsKeyArn: \"{arn}\""))
            .unwrap_or_default(),
    )
}

/// The user's own policy: the account administers the key, and a
/// statement of theirs that the provider must leave alone.
fn users_policy(extra: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Id":"team-key","Statement":[{{"Sid":"Admin","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"kms:*","Resource":"*"}},{{"Sid":"AuditorsRead","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:role/auditor"}},"Action":["kms:DescribeKey","kms:GetKeyPolicy"],"Resource":"*"}}{extra}]}}"#
    )
}

/// A key no one may rewrite the policy of.
const DENY_PUT_KEY_POLICY: &str = r#",{"Sid":"PolicyIsFrozen","Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:PutKeyPolicy","Resource":"*"}"#;

async fn kms(emulator: &Emulator, region: &str) -> aws_sdk_kms::Client {
    let sdk = emulator.sdk().await;
    aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::config::Builder::from(&sdk)
            .region(aws_sdk_kms::config::Region::new(region.to_string()))
            .build(),
    )
}

/// A customer managed key with `policy`, rotation as given.
async fn key(kms: &aws_sdk_kms::Client, policy: &str, rotation: bool) -> String {
    let metadata = kms
        .create_key()
        .policy(policy)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    if rotation {
        kms.enable_key_rotation()
            .key_id(metadata.key_id())
            .send()
            .await
            .unwrap();
    }
    metadata.arn.unwrap()
}

fn assert_rejected_at_preview(emulator: &Emulator, what: &str, extra: &str, expected: &[&str]) {
    let stack = Stack::yaml(emulator, "brought", &program(extra));
    let run = stack.preview().failure();
    for needle in expected {
        assert!(
            run.text().contains(needle),
            "{what}: expected `{needle}` in:\n{}",
            run.text()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_the_pipeline_cannot_use_is_rejected_at_preview() {
    let emulator = Emulator::start();
    let home = kms(&emulator, REGION).await;
    let disabled = key(&home, &users_policy(""), true).await;
    // moto's DisableKey takes a key id only (AWS also takes the ARN).
    let disabled_id = disabled.rsplit('/').next().unwrap();
    home.disable_key().key_id(disabled_id).send().await.unwrap();
    let not_rotating = key(&home, &users_policy(""), false).await;
    let aws_managed = home
        .describe_key()
        .key_id("alias/aws/s3")
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .arn
        .unwrap();
    let elsewhere = key(&kms(&emulator, OTHER_REGION).await, &users_policy(""), true).await;
    let missing =
        format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/0a1b2c3d-0000-4000-8000-000000000000");
    for (what, arn, reason) in [
        ("disabled key", &disabled, "is Disabled, not Enabled"),
        (
            "key with rotation off",
            &not_rotating,
            "automatic rotation off",
        ),
        ("AWS managed key", &aws_managed, "is an AWS managed key"),
        (
            "key in another region",
            &elsewhere,
            "is in region eu-west-1, but the pipeline runs in us-east-1",
        ),
        ("key that does not exist", &missing, "does not exist"),
    ] {
        assert_rejected_at_preview(
            &emulator,
            what,
            &format!("kmsKeyArn: {arn}"),
            &["kmsKeyArn", arn, reason],
        );
    }
    // Given as a secret, the key is checked all the same but not echoed.
    let secret = program(&format!("kmsKeyArn: {disabled}")).replace(
        &format!("kmsKeyArn: \"{disabled}\""),
        &format!("kmsKeyArn: {{fn::secret: \"{disabled}\"}}"),
    );
    assert!(secret.contains("fn::secret"), "{secret}");
    let run = Stack::yaml(&emulator, "brought", &secret)
        .preview()
        .failure();
    assert!(
        run.text().contains("kmsKeyArn: the secret ARN is Disabled"),
        "{}",
        run.text()
    );
    assert!(!run.text().contains(disabled_id), "{}", run.text());

    // Fixed, the same key passes.
    home.enable_key_rotation()
        .key_id(&not_rotating)
        .send()
        .await
        .unwrap();
    let stack = Stack::yaml(
        &emulator,
        "brought",
        &program(&format!("kmsKeyArn: {not_rotating}")),
    );
    stack.preview().success();
}

/// The statements of `policy`, as JSON.
fn statements(policy: &str) -> Vec<Json> {
    serde_json::from_str::<Json>(policy).unwrap()["Statement"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_good_key_gets_exactly_the_pipelines_statements_and_loses_them_on_destroy() {
    let emulator = Emulator::start();
    let home = kms(&emulator, REGION).await;
    let original = users_policy("");
    let arn = key(&home, &original, true).await;
    let stack = Stack::yaml(&emulator, "brought", &program(&format!("kmsKeyArn: {arn}")));
    stack.up().success();
    let out = stack.outputs();
    assert_eq!(text(&out, "kmsKeyArn"), arn);
    let s3 = securepipeline_e2e::readback::s3(&emulator.sdk().await);
    securepipeline_e2e::readback::assert_bucket_encrypted_and_private(
        &s3,
        &text(&out, "artifactBucketName"),
        &arn,
    )
    .await;

    let live = home
        .get_key_policy()
        .key_id(&arn)
        .send()
        .await
        .unwrap()
        .policy
        .unwrap();
    let all = statements(&live);
    // The user's statements stay exactly as they were, first.
    assert_eq!(all[..2], statements(&original)[..]);
    assert_eq!(
        serde_json::from_str::<Json>(&live).unwrap()["Id"],
        "team-key"
    );
    // Then one statement per service, each only for this pipeline.
    let ours: Vec<Statement> = all[2..]
        .iter()
        .map(|s| serde_json::from_value(s.clone()).unwrap())
        .collect();
    assert_eq!(ours.len(), 2, "{live}");
    let log_groups: Vec<String> = out["logGroupNames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| {
            format!(
                "arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{}",
                name.as_str().unwrap()
            )
        })
        .collect();
    let rules = aws_sdk_eventbridge::Client::new(&emulator.sdk().await)
        .list_rules()
        .send()
        .await
        .unwrap();
    let notify_rule = rules
        .rules()
        .iter()
        .filter_map(|r| r.arn())
        .find(|r| r.contains("notify"))
        .unwrap()
        .to_string();
    let logs_service = format!("logs.{REGION}.amazonaws.com");
    for (statement, service, condition, scope) in [
        (
            &ours[0],
            logs_service.as_str(),
            "kms:EncryptionContext:aws:logs:arn",
            log_groups.clone(),
        ),
        (
            &ours[1],
            "events.amazonaws.com",
            "aws:SourceArn",
            vec![notify_rule.clone()],
        ),
    ] {
        let sid = statement.sid.as_deref().unwrap();
        assert!(sid.starts_with("SecurePipelineWeb"), "{sid}");
        assert_eq!(
            statement.principal.as_ref().unwrap()["Service"],
            [service.to_string()]
        );
        assert_eq!(statement.resources, ["*"]);
        assert!(!statement
            .actions
            .iter()
            .any(|a| a.contains('*') || a == "kms:PutKeyPolicy" || a == "kms:CreateGrant"));
        assert_eq!(
            statement.conditions["StringEquals"]["aws:SourceAccount"],
            [ACCOUNT]
        );
        let mut granted = statement.conditions["ArnEquals"][condition].clone();
        granted.sort();
        let mut expected = scope;
        expected.sort();
        assert_eq!(granted, expected, "{sid}");
    }
    // A no-op update leaves the policy alone.
    stack.preview().success();
    emulator.reset_calls();
    stack.up().success();
    assert!(
        !emulator
            .calls()
            .iter()
            .any(|c| c.operation == "PutKeyPolicy"),
        "a no-op update rewrote the key policy"
    );

    stack.destroy().success();
    let after = home
        .get_key_policy()
        .key_id(&arn)
        .send()
        .await
        .unwrap()
        .policy
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Json>(&after).unwrap(),
        serde_json::from_str::<Json>(&original).unwrap()
    );
    let state = home
        .describe_key()
        .key_id(&arn)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_state;
    assert_eq!(
        state,
        Some(KeyState::Enabled),
        "the user's key was not kept"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_whose_policy_cannot_be_written_fails_up_naming_the_statements() {
    let emulator = Emulator::start();
    let home = kms(&emulator, REGION).await;
    let arn = key(&home, &users_policy(DENY_PUT_KEY_POLICY), true).await;
    let stack = Stack::yaml(&emulator, "brought", &program(&format!("kmsKeyArn: {arn}")));
    emulator.reset_calls();
    let run = stack.up().failure();
    for needle in [
        "kmsKeyArn",
        arn.as_str(),
        "AccessDeniedException",
        "kms:PutKeyPolicy",
        "SecurePipelineWeb",
        &format!("logs.{REGION}.amazonaws.com"),
        "kms:EncryptionContext:aws:logs:arn",
        "events.amazonaws.com",
        "aws:SourceArn",
    ] {
        assert!(
            run.text().contains(needle),
            "expected `{needle}` in:\n{}",
            run.text()
        );
    }
    // Nothing that would use the key was created.
    let created: Vec<String> = emulator
        .calls()
        .iter()
        .filter(|c| c.write && c.service != "kms" && !c.service.contains("connections"))
        .map(|c| format!("{} {}", c.service, c.operation))
        .collect();
    assert!(created.is_empty(), "created before failing: {created:?}");

    // Added by hand as printed, the statements are only checked.
    let printed = printed_statements(&run.text());
    let frozen_with_ours = key(
        &home,
        &users_policy(&format!(
            "{DENY_PUT_KEY_POLICY},{}",
            printed.trim().trim_start_matches('[').trim_end_matches(']')
        )),
        true,
    )
    .await;
    stack.set_program(
        "brought",
        &program(&format!("kmsKeyArn: {frozen_with_ours}")),
    );
    emulator.reset_calls();
    stack.up().success();
    assert!(
        !emulator
            .calls()
            .iter()
            .any(|c| c.operation == "PutKeyPolicy"),
        "the provider rewrote a policy that already held its statements"
    );
}

/// The JSON list of statements an `up` error prints, as printed.
fn printed_statements(text: &str) -> String {
    let marker = "(the provider then only checks them):";
    let after = &text[text.rfind(marker).expect("no statements printed") + marker.len()..];
    let start = after.find('[').expect("no statement list printed");
    let mut depth = 0;
    let mut end = start;
    for (index, c) in after[start..].char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            end = start + index + 1;
            break;
        }
    }
    let printed = &after[start..end];
    serde_json::from_str::<Vec<Statement>>(printed).expect("the printed statements parse");
    printed.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_must_exist_in_the_account_and_region() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let connections = |region: &str| {
        aws_sdk_codestarconnections::Client::from_conf(
            aws_sdk_codestarconnections::config::Builder::from(&sdk)
                .region(aws_sdk_codestarconnections::config::Region::new(
                    region.to_string(),
                ))
                .build(),
        )
    };
    let create = |region: &'static str| {
        let client = connections(region);
        async move {
            client
                .create_connection()
                .connection_name(format!("web-{region}"))
                .provider_type(aws_sdk_codestarconnections::types::ProviderType::Github)
                .send()
                .await
                .unwrap()
                .connection_arn
        }
    };
    let good = create(REGION).await;
    let elsewhere = create(OTHER_REGION).await;
    let missing = good.replace(
        good.rsplit('/').next().unwrap(),
        "0a1b2c3d-0000-4000-8000-000000000000",
    );
    let foreign = good.replace(ACCOUNT, "999999999999");
    for (what, arn, reason) in [
        ("connection that does not exist", &missing, "does not exist"),
        (
            "connection in another region",
            &elsewhere,
            "is in region eu-west-1",
        ),
        (
            "connection of another account",
            &foreign,
            "belongs to account 999999999999",
        ),
    ] {
        assert_rejected_at_preview(
            &emulator,
            what,
            &format!("connectionArn: {arn}"),
            &["source.connectionArn", arn, reason],
        );
    }
    let stack = Stack::yaml(
        &emulator,
        "brought",
        &program(&format!("connectionArn: {good}")),
    );
    stack.preview().success();
}
