//! `securepipeline:aws:EventRule` against the AWS emulator: a notification
//! rule and a schedule are created, read back, drifted (widened pattern,
//! disabled, extra or missing targets, tags removed), restored and deleted.

mod support;

use aws_sdk_eventbridge::types::{RuleState, Target};
use securepipeline::aws::AwsContext;
use securepipeline::engine_log::EngineLog;
use securepipeline::resource::{CheckContext, Lifecycle, OpContext};
use securepipeline::resources::event_rule::{
    EventRule, EventRuleInputs, EventRuleOutputs, PipelineStateChange, RuleTarget,
};
use securepipeline::tags::{self, Tags};
use serde_json::{json, Value as Json};

const URN: &str = "urn:pulumi:test::securepipeline::securepipeline:aws:EventRule::notify";

fn notify_inputs(topic_arn: &str) -> EventRuleInputs {
    EventRuleInputs {
        name_prefix: "app-test-notify".into(),
        rule_name: None,
        description: "Notifies on executions of pipeline app".into(),
        schedule_expression: None,
        pipeline_state_change: Some(PipelineStateChange::of_executions(
            "app-pipeline-abcd1234",
            vec!["SUCCEEDED".into(), "FAILED".into()],
        )),
        event_pattern: None,
        targets: vec![RuleTarget {
            id: "notification-topic".into(),
            arn: topic_arn.into(),
            role_arn: None,
        }],
        enabled: true,
        tags: Tags::from([("team".to_string(), "platform".to_string())]),
    }
}

fn check(aws: &AwsContext, seed: &[u8], news: EventRuleInputs) -> EventRuleInputs {
    let ctx = CheckContext {
        name: "notify",
        random_seed: seed,
        aws: Some(aws),
    };
    EventRule::check(&ctx, None, news).unwrap()
}

async fn live_targets(aws: &AwsContext, rule: &str) -> Vec<RuleTarget> {
    let listed = aws
        .clients()
        .events
        .list_targets_by_rule()
        .rule(rule)
        .send()
        .await
        .unwrap();
    let mut targets: Vec<RuleTarget> = listed
        .targets()
        .iter()
        .map(|t| RuleTarget {
            id: t.id().into(),
            arn: t.arn().into(),
            role_arn: t.role_arn().map(Into::into),
        })
        .collect();
    targets.sort_by(|a, b| a.id.cmp(&b.id));
    targets
}

async fn live_tags(aws: &AwsContext, arn: &str) -> Tags {
    let listed = aws
        .clients()
        .events
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap();
    listed
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

/// Asserts the rule as AWS holds it is exactly what the inputs say.
async fn assert_live(ctx: &OpContext<'_>, inputs: &EventRuleInputs, outputs: &EventRuleOutputs) {
    let name = inputs.rule_name.as_deref().unwrap();
    let rule = ctx
        .aws
        .clients()
        .events
        .describe_rule()
        .name(name)
        .send()
        .await
        .unwrap();
    assert_eq!(rule.state(), Some(&RuleState::Enabled));
    assert_eq!(rule.description(), Some(inputs.description.as_str()));
    assert_eq!(
        rule.schedule_expression().filter(|s| !s.is_empty()),
        inputs.schedule_expression.as_deref()
    );
    let pattern: Option<Json> = rule
        .event_pattern()
        .filter(|s| !s.is_empty())
        .map(|p| serde_json::from_str(p).unwrap());
    assert_eq!(pattern, inputs.event_pattern);
    assert_eq!(rule.arn(), Some(outputs.arn.as_str()));
    let mut wanted = inputs.targets.clone();
    wanted.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(live_targets(ctx.aws, name).await, wanted);
    let tags = live_tags(ctx.aws, &outputs.arn).await;
    assert_eq!(tags, inputs.tags);
    assert_eq!(tags[tags::MANAGED_BY_KEY], tags::MANAGED_BY_VALUE);
}

#[tokio::test]
async fn notification_rule_is_created_read_back_restored_and_deleted() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, URN);
    let topic = aws
        .clients()
        .sns
        .create_topic()
        .name("app-test-notify")
        .send()
        .await
        .unwrap();
    let topic_arn = topic.topic_arn().unwrap().to_string();
    let inputs = check(&aws, b"notify-rule", notify_inputs(&topic_arn));
    let name = inputs.rule_name.clone().unwrap();

    let (id, outputs) = EventRule::create(&ctx, &inputs).await.unwrap();
    assert_eq!(id, name);
    assert_eq!(
        outputs.arn,
        format!(
            "arn:aws:events:{}:{}:rule/{name}",
            support::REGION,
            aws.account_id
        )
    );
    assert_eq!(
        inputs.event_pattern,
        Some(json!({
            "source": ["aws.codepipeline"],
            "detail-type": ["CodePipeline Pipeline Execution State Change"],
            "detail": {"pipeline": ["app-pipeline-abcd1234"], "state": ["FAILED", "SUCCEEDED"]},
        }))
    );
    assert_live(&ctx, &inputs, &outputs).await;

    let (live, live_outputs) = EventRule::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(live, inputs);
    assert_eq!(live_outputs, outputs);

    // Drift: a pattern matching every pipeline event, the rule disabled, a
    // target added, a tag removed.
    let events = &aws.clients().events;
    let wider = json!({"source": ["aws.codepipeline"]});
    events
        .put_rule()
        .name(&name)
        .description(&inputs.description)
        .event_pattern(wider.to_string())
        .state(RuleState::Disabled)
        .send()
        .await
        .unwrap();
    let extra = RuleTarget {
        id: "extra".into(),
        arn: topic_arn.replace("app-test-notify", "elsewhere"),
        role_arn: None,
    };
    events
        .put_targets()
        .rule(&name)
        .targets(
            Target::builder()
                .id(&extra.id)
                .arn(&extra.arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    events
        .untag_resource()
        .resource_arn(&outputs.arn)
        .tag_keys("team")
        .send()
        .await
        .unwrap();

    let (drifted, _) = EventRule::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    let mut drifted_tags = inputs.tags.clone();
    drifted_tags.remove("team");
    assert_eq!(
        drifted,
        EventRuleInputs {
            event_pattern: Some(wider),
            enabled: false,
            targets: vec![inputs.targets[0].clone(), extra],
            tags: drifted_tags,
            ..inputs.clone()
        }
    );
    EventRule::update(&ctx, &id, &drifted, &inputs, &outputs)
        .await
        .unwrap();
    assert_live(&ctx, &inputs, &outputs).await;
    let (restored, _) = EventRule::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(restored, inputs);

    // States and description change in place.
    let mut changed = notify_inputs(&topic_arn);
    changed.rule_name = Some(name.clone());
    changed.description = "Notifies on failures of pipeline app".into();
    changed.pipeline_state_change.as_mut().unwrap().states = vec!["FAILED".into()];
    let changed = check(&aws, b"notify-rule", changed);
    EventRule::update(&ctx, &id, &inputs, &changed, &outputs)
        .await
        .unwrap();
    assert_live(&ctx, &changed, &outputs).await;

    EventRule::delete(&ctx, &id, &changed, &outputs)
        .await
        .unwrap();
    assert!(EventRule::read(&ctx, &id, &changed)
        .await
        .unwrap()
        .is_none());
    EventRule::delete(&ctx, &id, &changed, &outputs)
        .await
        .unwrap();
}

#[tokio::test]
async fn schedule_starts_the_pipeline_through_its_role() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, URN);
    let arns = aws.arns();
    let pipeline = RuleTarget {
        id: "pipeline".into(),
        arn: arns.codepipeline("app-pipeline-abcd1234"),
        role_arn: Some(arns.iam_role("app-events-abcd1234")),
    };
    let inputs = check(
        &aws,
        b"schedule-rule",
        EventRuleInputs {
            name_prefix: "app-test-schedule".into(),
            description: "Starts pipeline app on a schedule".into(),
            schedule_expression: Some("rate(1 day)".into()),
            pipeline_state_change: None,
            targets: vec![pipeline.clone()],
            ..notify_inputs("unused")
        },
    );
    assert_eq!(inputs.event_pattern, None);
    let (id, outputs) = EventRule::create(&ctx, &inputs).await.unwrap();
    assert_live(&ctx, &inputs, &outputs).await;
    let (live, _) = EventRule::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(live, inputs);

    // Drift: the schedule changed and the pipeline target removed.
    let events = &aws.clients().events;
    events
        .put_rule()
        .name(&id)
        .description(&inputs.description)
        .schedule_expression("rate(1 minute)")
        .state(RuleState::Enabled)
        .send()
        .await
        .unwrap();
    events
        .remove_targets()
        .rule(&id)
        .ids("pipeline")
        .send()
        .await
        .unwrap();
    let (drifted, _) = EventRule::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(
        drifted,
        EventRuleInputs {
            schedule_expression: Some("rate(1 minute)".into()),
            targets: vec![],
            ..inputs.clone()
        }
    );
    EventRule::update(&ctx, &id, &drifted, &inputs, &outputs)
        .await
        .unwrap();
    assert_live(&ctx, &inputs, &outputs).await;

    // A rule deleted out of band reads as gone, and deleting it is done.
    events
        .remove_targets()
        .rule(&id)
        .ids("pipeline")
        .send()
        .await
        .unwrap();
    events.delete_rule().name(&id).send().await.unwrap();
    assert!(EventRule::read(&ctx, &id, &inputs).await.unwrap().is_none());
    EventRule::delete(&ctx, &id, &inputs, &outputs)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_rule_that_already_exists_is_never_taken_over() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, URN);
    let inputs = check(
        &aws,
        b"taken-rule",
        notify_inputs("arn:aws:sns:us-east-1:123456789012:app-test-notify"),
    );
    let name = inputs.rule_name.clone().unwrap();
    let events = &aws.clients().events;
    events
        .put_rule()
        .name(&name)
        .schedule_expression("rate(1 hour)")
        .description("someone else's")
        .send()
        .await
        .unwrap();

    let err = EventRule::create(&ctx, &inputs)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("event rule {name} already exists")),
        "{err}"
    );
    let rule = events.describe_rule().name(&name).send().await.unwrap();
    assert_eq!(rule.description(), Some("someone else's"));
    assert_eq!(rule.schedule_expression(), Some("rate(1 hour)"));
}
