//! Richer notifications (issue 14, capability 8, its events): a
//! SecurePipeline notifying on failed executions and failed stages,
//! deployed through the engine. Its one rule, read back from the emulator,
//! matches those state changes of this pipeline and nothing else; a run
//! whose build fails reaches the topic twice, once naming the stage.

use std::time::{Duration, Instant};

use securepipeline_e2e::execution::{Repository, Run};
use securepipeline_e2e::scenario::{outputs_of, pipeline, World, RUN_TIMEOUT};
use securepipeline_e2e::Emulator;
use serde_json::{json, Value as Json};

const REPOSITORY: &str = "fixture-org/notifications";

/// Waits until EventBridge has handled the pipeline's final event of
/// `execution`, so that what the topic received is final.
async fn final_event_handled(emulator: &Emulator, execution: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let handled = emulator.events().into_iter().any(|e| {
            let event = &e["event"];
            event["detail-type"] == json!("CodePipeline Pipeline Execution State Change")
                && event["detail"]["execution-id"] == json!(execution)
                && event["detail"]["state"] == json!("FAILED")
        });
        if handled {
            return;
        }
        assert!(Instant::now() < deadline, "no FAILED event for {execution}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_stage_and_the_failed_execution_each_notify_the_topic() {
    let world = World::start(|_| {
        let app = pipeline(
            "app",
            REPOSITORY,
            json!({"build": {"commands": ["echo the tests fail", "false"]},
                   "notifications": {"events": ["FAILED", "STAGE_FAILED"]}}),
        );
        format!("resources:{app}{}", outputs_of(&["app"]))
    })
    .await;
    let name = world.out("app", "pipelineName");
    let topic = world.out("app", "notificationTopicArn");

    // One rule, targeting the topic, matching this pipeline's failed
    // executions and stages.
    let rules = world.clients.events.list_rules().send().await.unwrap();
    let patterns: Vec<Json> = rules
        .rules()
        .iter()
        .filter_map(|r| r.event_pattern())
        .map(|p| serde_json::from_str(p).unwrap())
        .filter(|p: &Json| p.to_string().contains(&name))
        .collect();
    let branch = |kind: &str| {
        json!({"detail-type": [format!("CodePipeline {kind} Execution State Change")],
               "detail": {"pipeline": [name], "state": ["FAILED"]}})
    };
    assert_eq!(
        patterns,
        vec![json!({"source": ["aws.codepipeline"],
                    "$or": [branch("Pipeline"), branch("Stage")]})]
    );

    let repo = Repository::fixture(REPOSITORY);
    world.emulator.register_repository(&repo);
    world.emulator.reset_published();
    let push = world.emulator.push(&repo, "main");
    let started = world.started_one(&push.started, "app");
    let mut run = Run::new(&world.clients, &started, true);
    let failed = run.finish(RUN_TIMEOUT).await;
    assert_eq!(failed.status, "Failed", "{failed:#?}");
    final_event_handled(&world.emulator, &started.execution_id).await;

    let mut heard: Vec<(String, Option<String>)> = world
        .emulator
        .published()
        .into_iter()
        .filter(|m| m.topic_arn == topic)
        .map(|m| {
            let event: Json = serde_json::from_str(&m.message).unwrap();
            assert_eq!(event["detail"]["execution-id"], json!(started.execution_id));
            (
                event["detail-type"].as_str().unwrap().to_string(),
                event["detail"]["stage"].as_str().map(str::to_string),
            )
        })
        .collect();
    heard.sort();
    assert_eq!(
        heard,
        vec![
            (
                "CodePipeline Pipeline Execution State Change".to_string(),
                None
            ),
            (
                "CodePipeline Stage Execution State Change".to_string(),
                Some("Build".to_string())
            ),
        ]
    );
}
