//! `securepipeline:aws:Topic` against the AWS emulator: an encrypted topic
//! only the notification rules may publish to is created, read back,
//! drifted (encryption removed, policy widened, subscribers changed, tags
//! removed), restored and deleted.

mod support;

use securepipeline::aws::AwsContext;
use securepipeline::engine_log::EngineLog;
use securepipeline::iam::PolicyDocument;
use securepipeline::resource::{CheckContext, Lifecycle, OpContext};
use securepipeline::resources::topic::{
    topic_policy, Subscription, Topic, TopicInputs, TopicOutputs, CONFIRMED, PENDING,
};
use securepipeline::tags::{self, Tags};

const URN: &str = "urn:pulumi:test::securepipeline::securepipeline:aws:Topic::notifications";
const OPS: &str = "ops@example.com";
const DEV: &str = "dev@example.com";
const INTRUDER: &str = "intruder@example.net";

async fn key(aws: &AwsContext) -> String {
    let created = aws.clients().kms.create_key().send().await.unwrap();
    created.key_metadata.unwrap().arn.unwrap()
}

fn program_inputs(aws: &AwsContext, key_arn: &str) -> TopicInputs {
    TopicInputs {
        name_prefix: "app-test-notify".into(),
        topic_name: None,
        kms_key_arn: key_arn.into(),
        publisher_rule_arns: vec![aws.arns().events_rule("app-test-notify-k3j9a0qz")],
        emails: vec![OPS.into(), DEV.into()],
        policy: None,
        tags: Tags::from([("team".to_string(), "platform".to_string())]),
    }
}

/// Email subscriptions as AWS lists them: endpoint and subscription ARN.
async fn live_subscriptions(aws: &AwsContext, topic_arn: &str) -> Vec<(String, String)> {
    let listed = aws
        .clients()
        .sns
        .list_subscriptions_by_topic()
        .topic_arn(topic_arn)
        .send()
        .await
        .unwrap();
    let mut subscriptions: Vec<(String, String)> = listed
        .subscriptions()
        .iter()
        .map(|s| {
            assert_eq!(s.protocol(), Some("email"));
            (
                s.endpoint().unwrap().to_string(),
                s.subscription_arn().unwrap().to_string(),
            )
        })
        .collect();
    subscriptions.sort();
    subscriptions
}

/// What SNS says of a subscription: its ARN withheld, or the attribute.
async fn is_pending(aws: &AwsContext, subscription_arn: &str) -> bool {
    if subscription_arn == PENDING {
        return true;
    }
    let found = aws
        .clients()
        .sns
        .get_subscription_attributes()
        .subscription_arn(subscription_arn)
        .send()
        .await
        .unwrap();
    found.attributes().unwrap()["PendingConfirmation"] == "true"
}

/// Asserts the topic as AWS holds it is exactly what the inputs say.
async fn assert_live(ctx: &OpContext<'_>, inputs: &TopicInputs, outputs: &TopicOutputs) {
    let sns = &ctx.aws.clients().sns;
    let name = inputs.topic_name.as_deref().unwrap();
    let found = sns
        .get_topic_attributes()
        .topic_arn(&outputs.arn)
        .send()
        .await
        .unwrap();
    let attributes = found.attributes().unwrap();
    assert_eq!(attributes["KmsMasterKeyId"], inputs.kms_key_arn);
    let policy = PolicyDocument::parse_aws(&attributes["Policy"]).unwrap();
    assert_eq!(
        policy,
        topic_policy(&ctx.aws.arns(), name, &inputs.publisher_rule_arns)
    );
    assert_eq!(Some(&policy), inputs.policy.as_ref());
    assert_eq!(Some(&policy), outputs.policy.as_ref());
    let statement = &policy.statements[1];
    assert_eq!(
        statement.conditions["ArnEquals"]["aws:SourceArn"],
        inputs.publisher_rule_arns
    );
    assert_eq!(
        statement.conditions["StringEquals"]["aws:SourceAccount"],
        vec![ctx.aws.account_id.clone()]
    );

    let live = live_subscriptions(ctx.aws, &outputs.arn).await;
    for email in &inputs.emails {
        assert!(
            live.iter().any(|(endpoint, _)| endpoint == email),
            "{email} is not subscribed"
        );
    }
    let mut reported = Vec::new();
    for email in &inputs.emails {
        let (_, arn) = live.iter().find(|(endpoint, _)| endpoint == email).unwrap();
        let status = if is_pending(ctx.aws, arn).await {
            PENDING
        } else {
            CONFIRMED
        };
        reported.push(Subscription {
            endpoint: email.clone(),
            status: status.into(),
        });
    }
    assert_eq!(outputs.subscriptions, reported);

    let listed = sns
        .list_tags_for_resource()
        .resource_arn(&outputs.arn)
        .send()
        .await
        .unwrap();
    let tags: Tags = listed
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    assert_eq!(tags, inputs.tags);
    assert_eq!(tags[tags::MANAGED_BY_KEY], tags::MANAGED_BY_VALUE);
}

#[tokio::test]
async fn topic_is_created_read_back_restored_and_deleted() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, URN);
    let key_arn = key(&aws).await;
    let check_ctx = CheckContext {
        name: "notifications",
        random_seed: b"topic-emulator",
        aws: Some(&aws),
    };
    let inputs = Topic::check(&check_ctx, None, program_inputs(&aws, &key_arn)).unwrap();
    let name = inputs.topic_name.clone().unwrap();

    let (id, outputs) = Topic::create(&ctx, &inputs).await.unwrap();
    assert_eq!(
        id,
        format!("arn:aws:sns:{}:{}:{name}", support::REGION, aws.account_id)
    );
    assert_eq!(outputs.arn, id);
    assert_live(&ctx, &inputs, &outputs).await;
    let (live, live_outputs) = Topic::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(live, inputs);
    assert_eq!(live_outputs, outputs);

    // Drift: encryption removed, anyone allowed to publish, a subscriber
    // added, a tag removed.
    let sns = &aws.clients().sns;
    sns.set_topic_attributes()
        .topic_arn(&id)
        .attribute_name("KmsMasterKeyId")
        .attribute_value("")
        .send()
        .await
        .unwrap();
    let mut widened = inputs.policy.clone().unwrap();
    widened.statements[1].conditions.clear();
    sns.set_topic_attributes()
        .topic_arn(&id)
        .attribute_name("Policy")
        .attribute_value(widened.to_compact_json())
        .send()
        .await
        .unwrap();
    let intruder = sns
        .subscribe()
        .topic_arn(&id)
        .protocol("email")
        .endpoint(INTRUDER)
        .return_subscription_arn(true)
        .send()
        .await
        .unwrap();
    let intruder_pending = is_pending(&aws, intruder.subscription_arn().unwrap()).await;
    sns.untag_resource()
        .resource_arn(&id)
        .tag_keys("team")
        .send()
        .await
        .unwrap();

    let (drifted, _) = Topic::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    let mut drifted_tags = inputs.tags.clone();
    drifted_tags.remove("team");
    assert_eq!(
        drifted,
        TopicInputs {
            kms_key_arn: String::new(),
            policy: Some(widened),
            emails: vec![OPS.into(), DEV.into(), INTRUDER.into()],
            tags: drifted_tags,
            ..inputs.clone()
        }
    );
    let restored_outputs = Topic::update(&ctx, &id, &drifted, &inputs, &outputs)
        .await
        .unwrap();
    assert_live(&ctx, &inputs, &restored_outputs).await;
    let (restored, _) = Topic::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    if intruder_pending {
        // SNS cannot unsubscribe a pending subscription; it deletes it when
        // nobody confirms it within three days.
        assert_eq!(
            restored,
            TopicInputs {
                emails: vec![OPS.into(), DEV.into(), INTRUDER.into()],
                ..inputs.clone()
            }
        );
    } else {
        assert_eq!(restored, inputs);
    }

    // Subscribers change in place.
    let changed = Topic::check(
        &check_ctx,
        Some(&inputs),
        TopicInputs {
            emails: vec![DEV.into()],
            ..program_inputs(&aws, &key_arn)
        },
    )
    .unwrap();
    assert_eq!(changed.topic_name, inputs.topic_name);
    let changed_outputs = Topic::update(&ctx, &id, &inputs, &changed, &restored_outputs)
        .await
        .unwrap();
    assert_live(&ctx, &changed, &changed_outputs).await;

    Topic::delete(&ctx, &id, &changed, &changed_outputs)
        .await
        .unwrap();
    assert!(Topic::read(&ctx, &id, &changed).await.unwrap().is_none());
    Topic::delete(&ctx, &id, &changed, &changed_outputs)
        .await
        .unwrap();
}

/// G14: a subscription shows as pending until its recipient confirms it.
#[tokio::test]
async fn email_subscriptions_are_pending_until_confirmed() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, URN);
    let key_arn = key(&aws).await;
    let check_ctx = CheckContext {
        name: "notifications",
        random_seed: b"pending-topic",
        aws: Some(&aws),
    };
    let inputs = Topic::check(&check_ctx, None, program_inputs(&aws, &key_arn)).unwrap();
    let (id, outputs) = Topic::create(&ctx, &inputs).await.unwrap();
    let pending = vec![
        Subscription {
            endpoint: OPS.into(),
            status: PENDING.into(),
        },
        Subscription {
            endpoint: DEV.into(),
            status: PENDING.into(),
        },
    ];
    assert_eq!(outputs.subscriptions, pending);
    let (live, live_outputs) = Topic::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(live, inputs);
    assert_eq!(live_outputs.subscriptions, pending);
    Topic::delete(&ctx, &id, &inputs, &outputs).await.unwrap();
}

#[tokio::test]
async fn a_topic_that_already_exists_is_never_taken_over() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, URN);
    let key_arn = key(&aws).await;
    let check_ctx = CheckContext {
        name: "notifications",
        random_seed: b"taken-topic",
        aws: Some(&aws),
    };
    let inputs = Topic::check(&check_ctx, None, program_inputs(&aws, &key_arn)).unwrap();
    let name = inputs.topic_name.clone().unwrap();
    let sns = &aws.clients().sns;
    let existing = sns.create_topic().name(&name).send().await.unwrap();
    let arn = existing.topic_arn().unwrap();

    let err = Topic::create(&ctx, &inputs).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!("topic {name} already exists")),
        "{err}"
    );
    // Left as it was: no policy, key or subscriptions of ours.
    let attributes = sns
        .get_topic_attributes()
        .topic_arn(arn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    assert!(!attributes.contains_key("KmsMasterKeyId"), "{attributes:?}");
    assert!(live_subscriptions(&aws, arn).await.is_empty());
}
