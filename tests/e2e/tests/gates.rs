//! Gates (issue 14, capability 3): a SecurePipeline whose production stage
//! has a deployment window, CloudWatch alarms and a bake time, deployed
//! through the engine. The pipeline read back from the emulator declares
//! them as the stage's `beforeEntry` and `onSuccess` conditions, production
//! rolls back on failure by default, the pipeline's role may describe
//! exactly those alarms, and bad gates are rejected at preview with the
//! property path.

use securepipeline_e2e::readback;
use securepipeline_e2e::scenario::{outputs_of, pipeline, World};
use securepipeline_e2e::{ACCOUNT, REGION};
use serde_json::{json, Value as Json};

const REPOSITORY: &str = "fixture-org/gates";

fn program(gates: Json) -> String {
    let app = pipeline(
        "app",
        REPOSITORY,
        json!({"build": {"commands": ["ls -la"]},
               "deployments": [
                   {"name": "dev", "commands": ["echo dev"]},
                   {"name": "prod", "production": true, "commands": ["echo prod"],
                    "gates": gates}]}),
    );
    format!("resources:{app}{}", outputs_of(&["app"]))
}

/// Each rule of the conditions: name, provider and configuration.
fn rules(conditions: &[aws_sdk_codepipeline::types::Condition]) -> Vec<(String, String, Json)> {
    conditions
        .iter()
        .flat_map(|c| c.rules())
        .map(|r| {
            (
                r.name().to_string(),
                r.rule_type_id().unwrap().provider().to_string(),
                json!(r.configuration().unwrap()),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn production_gates_are_stage_conditions_with_an_exact_alarm_grant() {
    let alarm_arn = format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:latency-p99");
    let world = World::start(|_| {
        program(json!({
            "deploymentWindow": {"cron": "* * 9-16 ? * MON-FRI", "timeZone": "Europe/Berlin"},
            "alarms": ["errors", alarm_arn],
            "bakeTimeMinutes": 30
        }))
    })
    .await;
    let name = world.out("app", "pipelineName");
    let declaration = world
        .clients
        .codepipeline
        .get_pipeline()
        .name(&name)
        .send()
        .await
        .unwrap()
        .pipeline
        .unwrap();
    let prod = declaration
        .stages()
        .iter()
        .find(|s| s.name() == "prod")
        .unwrap();
    let before = prod.before_entry().unwrap().conditions();
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].result().map(|r| r.as_str()), Some("FAIL"));
    assert_eq!(
        rules(before),
        vec![
            (
                "DeploymentWindow".into(),
                "DeploymentWindow".into(),
                json!({"Cron": "* * 9-16 ? * MON-FRI", "TimeZone": "Europe/Berlin"})
            ),
            (
                "Alarm1".into(),
                "CloudWatchAlarm".into(),
                json!({"AlarmName": "errors"})
            ),
            (
                "Alarm2".into(),
                "CloudWatchAlarm".into(),
                json!({"AlarmName": "latency-p99"})
            ),
        ]
    );
    let after = prod.on_success().unwrap().conditions();
    assert_eq!(after[0].result().map(|r| r.as_str()), Some("ROLLBACK"));
    assert_eq!(
        rules(after),
        vec![
            (
                "Alarm1".into(),
                "CloudWatchAlarm".into(),
                json!({"AlarmName": "errors", "WaitTime": "30"})
            ),
            (
                "Alarm2".into(),
                "CloudWatchAlarm".into(),
                json!({"AlarmName": "latency-p99", "WaitTime": "30"})
            ),
        ]
    );
    // Production rolls back by default; dev has no conditions at all.
    assert_eq!(
        prod.on_failure()
            .and_then(|f| f.result())
            .map(|r| r.as_str()),
        Some("ROLLBACK")
    );
    let dev = declaration
        .stages()
        .iter()
        .find(|s| s.name() == "dev")
        .unwrap();
    assert!(
        dev.before_entry().is_none() && dev.on_success().is_none() && dev.on_failure().is_none()
    );

    // The pipeline's role describes exactly these alarms.
    let role = readback::role(&world.clients.iam, &world.roles("app")["pipeline"]).await;
    let grants: Vec<_> = role
        .policies
        .values()
        .flat_map(|doc| doc.statements.iter())
        .filter(|s| s.actions.iter().any(|a| a.starts_with("cloudwatch:")))
        .collect();
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(grants[0].actions, vec!["cloudwatch:DescribeAlarms"]);
    assert_eq!(
        grants[0].resources,
        vec![
            format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:errors"),
            alarm_arn.clone()
        ]
    );

    // A bake time without alarms, and an alarm of another account, are
    // rejected at preview by property path.
    world.stack.set_program(
        "app-delivery",
        &program(json!({
            "alarms": ["arn:aws:cloudwatch:us-east-1:999999999999:alarm:errors"],
            "deploymentWindow": {"cron": "0 9 * * MON-FRI"}
        })),
    );
    let rejected = world.stack.preview().failure().text();
    for expected in [
        "deployments[1].gates.alarms[0]",
        "account 999999999999",
        "deployments[1].gates.deploymentWindow.cron",
    ] {
        assert!(rejected.contains(expected), "{expected} not in {rejected}");
    }
    world
        .stack
        .set_program("app-delivery", &program(json!({"bakeTimeMinutes": 30})));
    let rejected = world.stack.preview().failure().text();
    for expected in ["deployments[1].gates.bakeTimeMinutes", "give `alarms` too"] {
        assert!(rejected.contains(expected), "{expected} not in {rejected}");
    }
}
