//! `securepipeline:aws:Key` against the AWS emulator: create, read back
//! every guarantee, drift, restore, rename the alias, delete.

mod support;

use aws_sdk_kms::types::{KeySpec, KeyState, KeyUsageType, Tag};
use securepipeline::engine_log::EngineLog;
use securepipeline::iam::PolicyDocument;
use securepipeline::resource::{CheckContext, Lifecycle};
use securepipeline::resources::key::{key_policy, lint_key_policy, Key, KeyInputs};
use securepipeline::tags::{self, Tags};

const URN: &str = "urn:pulumi:test::securepipeline::securepipeline:aws:Key::key";

fn program_inputs() -> KeyInputs {
    KeyInputs {
        name_prefix: "app-test-key".into(),
        alias_name: None,
        description: "Encrypts the artifacts, logs and notifications of pipeline app".into(),
        existing_arn: None,
        region: None,
        enable_key_rotation: true,
        enabled: true,
        service_principals: vec![
            format!("logs.{}.amazonaws.com", support::REGION),
            "events.amazonaws.com".into(),
        ],
        service_scopes: Default::default(),
        policy: None,
        tags: Tags::from([("team".to_string(), "platform".to_string())]),
    }
}

/// Live tags as the program states them: the create's ownership token aside.
async fn live_tags(kms: &aws_sdk_kms::Client, id: &str) -> Tags {
    kms.list_resource_tags()
        .key_id(id)
        .send()
        .await
        .unwrap()
        .tags()
        .iter()
        .map(|t| (t.tag_key().to_string(), t.tag_value().to_string()))
        .filter(|(key, _)| key != tags::CREATE_TOKEN_KEY)
        .collect()
}

async fn aliases_of(kms: &aws_sdk_kms::Client, id: &str) -> Vec<String> {
    kms.list_aliases()
        .key_id(id)
        .send()
        .await
        .unwrap()
        .aliases()
        .iter()
        .filter_map(|a| a.alias_name().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn key_is_created_read_back_restored_and_deleted() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, URN);
    let check_ctx = CheckContext {
        name: "key",
        random_seed: b"key-emulator",
        aws: Some(&aws),
    };
    let inputs = Key::check(&check_ctx, None, program_inputs()).unwrap();
    let alias = inputs.alias_name.clone().unwrap();
    assert_eq!(
        inputs.policy,
        Some(key_policy(
            &aws.arns(),
            &inputs.service_principals,
            &inputs.service_scopes
        ))
    );

    let (id, outputs) = Key::create(&ctx, &inputs).await.unwrap();
    assert_eq!(outputs.key_id, id);
    assert_eq!(outputs.arn, aws.arns().kms_key(&id));
    assert_eq!(
        outputs.alias_arn,
        format!("arn:aws:kms:{}:{}:{alias}", support::REGION, aws.account_id)
    );

    // Every guarantee, read straight from KMS.
    let kms = &aws.clients().kms;
    let metadata = kms
        .describe_key()
        .key_id(&id)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(metadata.key_state(), Some(&KeyState::Enabled));
    assert_eq!(metadata.key_usage(), Some(&KeyUsageType::EncryptDecrypt));
    assert_eq!(metadata.key_spec(), Some(&KeySpec::SymmetricDefault));
    assert_eq!(metadata.description(), Some(inputs.description.as_str()));
    let rotation = kms
        .get_key_rotation_status()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    assert!(rotation.key_rotation_enabled(), "G7: rotation is on");
    let policy_text = kms
        .get_key_policy()
        .key_id(&id)
        .policy_name("default")
        .send()
        .await
        .unwrap()
        .policy
        .unwrap();
    assert_eq!(PolicyDocument::parse_aws(&policy_text).ok(), inputs.policy);
    assert_eq!(aliases_of(kms, &id).await, vec![alias.clone()]);
    let tags = live_tags(kms, &id).await;
    assert_eq!(tags, inputs.tags);
    assert_eq!(tags[tags::MANAGED_BY_KEY], tags::MANAGED_BY_VALUE);

    // Read returns exactly what was asked for.
    let (live, live_outputs) = Key::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(live, inputs);
    assert_eq!(live_outputs, outputs);

    // Drift: rotation off, the key disabled, the policy widened to
    // everyone, a tag removed, the description rewritten.
    kms.disable_key_rotation().key_id(&id).send().await.unwrap();
    kms.disable_key().key_id(&id).send().await.unwrap();
    let mut widened = inputs.policy.clone().unwrap();
    let mut everyone = widened.statements[1].clone();
    everyone.sid = Some("Everyone".into());
    everyone.principal = Some([("AWS".to_string(), vec!["*".to_string()])].into());
    everyone.conditions.clear();
    widened.statements.push(everyone);
    kms.put_key_policy()
        .key_id(&id)
        .policy_name("default")
        .policy(widened.to_compact_json())
        .send()
        .await
        .unwrap();
    kms.untag_resource()
        .key_id(&id)
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    kms.update_key_description()
        .key_id(&id)
        .description("changed by hand")
        .send()
        .await
        .unwrap();

    let (drifted, _) = Key::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert!(!drifted.enable_key_rotation);
    assert!(!drifted.enabled);
    assert_eq!(drifted.policy, Some(widened));
    assert!(!drifted.tags.contains_key("team"));
    assert_eq!(drifted.description, "changed by hand");
    // Refresh would record the drifted state; a check of it names the problem.
    let failures = Key::check(
        &check_ctx,
        Some(&inputs),
        KeyInputs {
            policy: None,
            ..drifted.clone()
        },
    )
    .unwrap_err();
    assert_eq!(failures[0].property, "enableKeyRotation");
    assert_eq!(failures[1].property, "enabled");

    // The next update restores everything.
    let restored_outputs = Key::update(&ctx, &id, &drifted, &inputs, &outputs)
        .await
        .unwrap();
    assert_eq!(restored_outputs, outputs);
    let (restored, _) = Key::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(restored, inputs);

    // Tags added and removed in place.
    let mut retagged = inputs.clone();
    retagged.tags.remove("team");
    retagged.tags.insert("owner".into(), "ci".into());
    Key::update(&ctx, &id, &inputs, &retagged, &outputs)
        .await
        .unwrap();
    assert_eq!(live_tags(kms, &id).await, retagged.tags);

    // A new prefix renames the alias in place: the key (and what it
    // encrypted) stays.
    let renamed = Key::check(
        &check_ctx,
        Some(&retagged),
        KeyInputs {
            name_prefix: "app-renamed-key".into(),
            ..program_inputs()
        },
    )
    .unwrap();
    let new_alias = renamed.alias_name.clone().unwrap();
    assert!(
        new_alias.starts_with("alias/app-renamed-key-"),
        "{new_alias}"
    );
    let renamed_outputs = Key::update(&ctx, &id, &retagged, &renamed, &outputs)
        .await
        .unwrap();
    assert!(renamed_outputs.alias_arn.ends_with(&new_alias));
    assert_eq!(aliases_of(kms, &id).await, vec![new_alias.clone()]);
    let (live, _) = Key::read(&ctx, &id, &renamed).await.unwrap().unwrap();
    assert_eq!(live, renamed);

    // An alias deleted by hand reads as missing and is put back.
    kms.delete_alias()
        .alias_name(&new_alias)
        .send()
        .await
        .unwrap();
    let (no_alias, _) = Key::read(&ctx, &id, &renamed).await.unwrap().unwrap();
    assert_eq!(no_alias.alias_name, None);
    let rechecked = Key::check(
        &check_ctx,
        Some(&no_alias),
        KeyInputs {
            name_prefix: "app-renamed-key".into(),
            ..program_inputs()
        },
    )
    .unwrap();
    assert_eq!(
        rechecked.alias_name, renamed.alias_name,
        "the same seed chooses the same alias"
    );
    Key::update(&ctx, &id, &no_alias, &rechecked, &renamed_outputs)
        .await
        .unwrap();
    assert_eq!(aliases_of(kms, &id).await, vec![new_alias.clone()]);

    // Delete schedules deletion; the key then reads as gone; deleting
    // again succeeds.
    Key::delete(&ctx, &id, &renamed, &renamed_outputs)
        .await
        .unwrap();
    let metadata = kms
        .describe_key()
        .key_id(&id)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(metadata.key_state(), Some(&KeyState::PendingDeletion));
    let days_left = (metadata.deletion_date().unwrap().secs()
        - aws_smithy_types::DateTime::from(std::time::SystemTime::now()).secs())
        as f64
        / 86_400.0;
    assert!(
        (6.9..=7.0).contains(&days_left),
        "deletion in {days_left} days, expected the 7-day minimum"
    );
    assert!(aliases_of(kms, &id).await.is_empty());
    assert!(Key::read(&ctx, &id, &renamed).await.unwrap().is_none());
    Key::delete(&ctx, &id, &renamed, &renamed_outputs)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_policy_rewritten_by_hand_is_replaced() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, URN);
    let check_ctx = CheckContext {
        name: "key",
        random_seed: b"policy-emulator",
        aws: Some(&aws),
    };
    let inputs = Key::check(&check_ctx, None, program_inputs()).unwrap();
    let (id, outputs) = Key::create(&ctx, &inputs).await.unwrap();
    let kms = &aws.clients().kms;

    // A key opened to everyone with the bare `"Principal": "*"` reads back
    // as such, and the key-policy lint names it.
    let root = aws.arns().account_root();
    let everyone = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{root}"}},"Action":"kms:*","Resource":"*"}},{{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}}]}}"#
    );
    kms.put_key_policy()
        .key_id(&id)
        .policy_name("default")
        .policy(everyone)
        .send()
        .await
        .unwrap();
    let (drifted, _) = Key::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    let widened = drifted.policy.clone().unwrap();
    assert_eq!(
        widened.statements[1].principal.as_ref().unwrap()["AWS"],
        vec!["*"]
    );
    let problems = lint_key_policy(&widened, &aws.arns(), &inputs.service_principals);
    assert!(
        problems.iter().any(|p| p.contains("wildcard")),
        "{problems:?}"
    );

    // A statement shape this provider never writes (`NotAction`) cannot be
    // read into a policy at all: it reads as unset, and the update that
    // follows replaces it.
    let not_action = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{root}"}},"Action":"kms:*","Resource":"*"}},{{"Effect":"Allow","Principal":"*","NotAction":"kms:ScheduleKeyDeletion","Resource":"*"}}]}}"#
    );
    kms.put_key_policy()
        .key_id(&id)
        .policy_name("default")
        .policy(not_action)
        .send()
        .await
        .unwrap();
    let (unreadable, _) = Key::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(unreadable.policy, None);
    Key::update(&ctx, &id, &unreadable, &inputs, &outputs)
        .await
        .unwrap();
    let policy_text = kms
        .get_key_policy()
        .key_id(&id)
        .policy_name("default")
        .send()
        .await
        .unwrap()
        .policy
        .unwrap();
    assert_eq!(PolicyDocument::parse_aws(&policy_text).ok(), inputs.policy);

    // A tag added by hand reads back and the next update removes it.
    let tag = Tag::builder()
        .tag_key("extra")
        .tag_value("1")
        .build()
        .unwrap();
    kms.tag_resource()
        .key_id(&id)
        .tags(tag)
        .send()
        .await
        .unwrap();
    let (tagged, _) = Key::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(tagged.tags.get("extra").map(String::as_str), Some("1"));
    Key::update(&ctx, &id, &tagged, &inputs, &outputs)
        .await
        .unwrap();
    assert_eq!(live_tags(kms, &id).await, inputs.tags);

    Key::delete(&ctx, &id, &inputs, &outputs).await.unwrap();
}

#[tokio::test]
async fn an_existing_alias_is_neither_moved_nor_adopted() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, URN);
    let check_ctx = CheckContext {
        name: "key",
        random_seed: b"taken-alias",
        aws: Some(&aws),
    };
    let inputs = Key::check(&check_ctx, None, program_inputs()).unwrap();
    let alias = inputs.alias_name.clone().unwrap();
    let kms = &aws.clients().kms;
    let theirs = kms.create_key().send().await.unwrap();
    let their_key = theirs.key_metadata().unwrap().key_id().to_string();
    kms.create_alias()
        .alias_name(&alias)
        .target_key_id(&their_key)
        .send()
        .await
        .unwrap();

    let err = Key::create(&ctx, &inputs).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&alias) && message.contains("already exists"),
        "{message}"
    );
    assert_eq!(aliases_of(kms, &their_key).await, vec![alias]);
}

#[tokio::test]
async fn a_users_key_is_checked_given_the_pipelines_statements_and_kept() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, URN);
    let kms = &aws.clients().kms;
    let users = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Admin","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{}:root"}},"Action":"kms:*","Resource":"*"}}]}}"#,
        aws.account_id
    );
    let metadata = kms
        .create_key()
        .policy(&users)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    let arn = metadata.arn().unwrap().to_string();
    let check_ctx = CheckContext {
        name: "key",
        random_seed: b"key-emulator",
        aws: Some(&aws),
    };
    let inputs = Key::check(
        &check_ctx,
        None,
        KeyInputs {
            existing_arn: Some(arn.clone()),
            ..program_inputs()
        },
    )
    .unwrap();

    // Rotation off: refused, and the policy is left alone.
    let refused = Key::create(&ctx, &inputs).await.unwrap_err().to_string();
    assert!(
        refused.contains("kmsKeyArn") && refused.contains("rotation off"),
        "{refused}"
    );
    let policy_of = || async {
        kms.get_key_policy()
            .key_id(&arn)
            .send()
            .await
            .unwrap()
            .policy
            .unwrap()
    };
    assert_eq!(policy_of().await, users);

    kms.enable_key_rotation().key_id(&arn).send().await.unwrap();
    let (id, outputs) = Key::create(&ctx, &inputs).await.unwrap();
    assert_eq!(
        (outputs.arn.as_str(), outputs.key_id.as_str()),
        (arn.as_str(), id.as_str())
    );
    let merged = PolicyDocument::parse_aws(&policy_of().await).unwrap();
    let ours = inputs.policy.clone().unwrap().statements;
    assert_eq!(merged.statements[1..], ours[..]);
    let (live, _) = Key::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(live, inputs);

    // Someone puts the user's policy back: read shows it, update restores.
    kms.put_key_policy()
        .key_id(&id)
        .policy(&users)
        .send()
        .await
        .unwrap();
    let (drifted, _) = Key::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(drifted.policy, None);
    Key::update(&ctx, &id, &drifted, &inputs, &outputs)
        .await
        .unwrap();
    assert_eq!(
        PolicyDocument::parse_aws(&policy_of().await)
            .unwrap()
            .statements[1..],
        ours[..]
    );

    // Delete takes only the pipeline's statements and keeps the key.
    Key::delete(&ctx, &id, &inputs, &outputs).await.unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&policy_of().await).unwrap(),
        serde_json::from_str::<serde_json::Value>(&users).unwrap()
    );
    let state = kms.describe_key().key_id(&id).send().await.unwrap();
    assert_eq!(
        state.key_metadata().unwrap().key_state(),
        Some(&KeyState::Enabled)
    );
}
