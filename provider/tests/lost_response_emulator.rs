//! A create whose answer is lost (the emulator carries the call out, then
//! closes the connection) makes exactly one resource, and the create goes
//! on with it; a name taken by something else is never adopted.

mod support;

use std::collections::BTreeMap;

use securepipeline::engine_log::EngineLog;
use securepipeline::iam::{grants, Grant};
use securepipeline::resource::{CheckContext, Lifecycle};
use securepipeline::resources::key::{Key, KeyInputs};
use securepipeline::resources::log_group::{LogGroup, LogGroupInputs};
use securepipeline::resources::role::{Role, RoleInputs};
use securepipeline::tags::Tags;

const KEY_URN: &str = "urn:pulumi:test::securepipeline::securepipeline:aws:Key::key";
const ROLE_URN: &str = "urn:pulumi:test::securepipeline::securepipeline:aws:Role::role";
const LOGS_URN: &str = "urn:pulumi:test::securepipeline::securepipeline:aws:LogGroup::logs";

fn check_ctx<'a>(aws: &'a securepipeline::aws::AwsContext, seed: &'a [u8]) -> CheckContext<'a> {
    CheckContext {
        name: "lost",
        random_seed: seed,
        aws: Some(aws),
    }
}

fn key_inputs() -> KeyInputs {
    KeyInputs {
        name_prefix: "app-lost-key".into(),
        existing_arn: None,
        alias_name: None,
        description: "Encrypts pipeline app".into(),
        region: None,
        enable_key_rotation: true,
        enabled: true,
        service_principals: vec!["events.amazonaws.com".into()],
        service_scopes: Default::default(),
        policy: None,
        tags: Tags::from([("team".to_string(), "platform".to_string())]),
    }
}

fn role_inputs() -> RoleInputs {
    RoleInputs {
        name_prefix: "app-lost-events".into(),
        role_name: None,
        description: "Lets EventBridge start pipeline app".into(),
        service: "events.amazonaws.com".into(),
        source_arn: None,
        trust_policy: None,
        policies: BTreeMap::from([(
            "start-pipeline".to_string(),
            grants::document(&[Grant::pipeline_start(
                "StartPipeline",
                "arn:aws:codepipeline:us-east-1:123456789012:app-lost-pipeline-abcdefgh",
            )]),
        )]),
        managed_policy_arns: Vec::new(),
        tags: Tags::new(),
    }
}

#[tokio::test]
async fn a_key_whose_create_answer_is_lost_is_made_once() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let inputs = Key::check(&check_ctx(&aws, b"lost-key"), None, key_inputs()).unwrap();
    emulator.set_faults("rate=1,kinds=lost,only=kms:CreateKey,limit=1");

    let (id, outputs) = Key::create(&support::op(&aws, &log, KEY_URN), &inputs)
        .await
        .expect("the create goes on with the key it made");

    let kms = &aws.clients().kms;
    let keys = kms.list_keys().send().await.unwrap();
    let ids: Vec<_> = keys.keys().iter().filter_map(|k| k.key_id()).collect();
    assert_eq!(ids, vec![id.as_str()], "exactly one key");
    assert_eq!(outputs.key_id, id);
    // The create finished its work on that key, and the marker is not drift.
    let (live, _) = Key::read(&support::op(&aws, &log, KEY_URN), &id, &inputs)
        .await
        .unwrap()
        .expect("the key exists");
    assert_eq!(live.alias_name, inputs.alias_name);
    assert_eq!(live.tags, inputs.tags);
    assert!(!live.tags.contains_key("securepipeline:create-token"));
}

#[tokio::test]
async fn a_role_whose_create_answer_is_lost_is_made_once_and_another_is_never_adopted() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, ROLE_URN);
    let inputs = Role::check(&check_ctx(&aws, b"lost-role"), None, role_inputs()).unwrap();
    let name = inputs.role_name.clone().unwrap();
    emulator.set_faults("rate=1,kinds=lost,only=iam:CreateRole,limit=1");

    let (id, outputs) = Role::create(&ctx, &inputs)
        .await
        .expect("the create goes on with the role it made");
    assert_eq!(id, name);
    assert!(outputs.arn.ends_with(&format!(":role/{name}")));
    let iam = &aws.clients().iam;
    let policies = iam
        .list_role_policies()
        .role_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(policies.policy_names(), ["start-pipeline"]);
    let (live, _) = Role::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(live.tags, inputs.tags);

    // A second create of the same name (another stack's, say) meets a role
    // without its marker: never adopted, even after a lost answer.
    emulator.set_faults("rate=1,kinds=lost,only=iam:CreateRole,limit=1");
    let err = Role::create(&ctx, &inputs).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!("role {name} already exists")),
        "{err}"
    );
}

#[tokio::test]
async fn a_log_group_whose_create_answer_is_lost_is_made_once() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let key = Key::check(&check_ctx(&aws, b"lost-logs-key"), None, key_inputs()).unwrap();
    let (_, key) = Key::create(&support::op(&aws, &log, KEY_URN), &key)
        .await
        .unwrap();
    let inputs = LogGroup::check(
        &check_ctx(&aws, b"lost-logs"),
        None,
        LogGroupInputs {
            name_prefix: "/securepipeline/app-lost".into(),
            log_group_name: None,
            region: None,
            retention_in_days: 30,
            kms_key_arn: key.arn,
            tags: Tags::new(),
        },
    )
    .unwrap();
    emulator.set_faults("rate=1,kinds=lost,only=logs:CreateLogGroup,limit=1");

    let ctx = support::op(&aws, &log, LOGS_URN);
    let (id, _) = LogGroup::create(&ctx, &inputs)
        .await
        .expect("goes on with its group");
    let groups = aws
        .clients()
        .logs
        .describe_log_groups()
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups().len(), 1);
    let (live, _) = LogGroup::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(live.retention_in_days, 30);
    assert_eq!(live.tags, inputs.tags);
}
