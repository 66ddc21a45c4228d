//! Pipeline variables (issue 14, capability 9): a SecurePipeline declaring
//! a variable, deployed through the engine. The pipeline read back from the
//! emulator declares it with its default and hands it to the build and the
//! deployment as an environment variable; a run started with a value uses
//! that value, a run started by a push uses the default, in both stages.
//! A variable that looks like a credential is rejected at preview.

use aws_sdk_codepipeline::types::PipelineVariable;
use securepipeline_e2e::execution::{build_log_lines, Repository, Run, Started};
use securepipeline_e2e::scenario::{action, outputs_of, pipeline, World, RUN_TIMEOUT};
use serde_json::{json, Value as Json};

const REPOSITORY: &str = "fixture-org/variables";

fn program(variables: Json) -> String {
    let app = pipeline(
        "app",
        REPOSITORY,
        json!({"build": {"commands": ["echo \"building for $DEPLOY_TARGET\""]},
               "deployments": [{"name": "dev", "commands": ["echo \"deploying to $DEPLOY_TARGET\""]}],
               "variables": variables}),
    );
    format!("resources:{app}{}", outputs_of(&["app"]))
}

/// The lines of the stage's build log that name the target.
async fn target_lines(world: &World, run: &mut Run<'_>) -> Vec<String> {
    let done = run.finish(RUN_TIMEOUT).await;
    assert_eq!(done.status, "Succeeded", "{done:#?}");
    let mut lines = Vec::new();
    for (stage, name) in [("Build", "Build"), ("dev", "Deploy")] {
        let id = action(&done, stage, name).external_id.clone().unwrap();
        let log = build_log_lines(&world.clients, &id).await;
        lines.extend(
            log.into_iter()
                .filter(|l| l.starts_with("building for") || l.starts_with("deploying to")),
        );
    }
    lines
}

#[tokio::test(flavor = "multi_thread")]
async fn a_variable_reaches_every_stage_from_its_default_or_the_runs_value() {
    let world = World::start(|_| {
        program(json!({"DEPLOY_TARGET": {"defaultValue": "blue",
                                          "description": "The fleet this run deploys to"}}))
    })
    .await;
    let name = world.out("app", "pipelineName");
    let codepipeline = &world.clients.codepipeline;

    // Declared with its default; every CodeBuild action reads it.
    let declaration = codepipeline
        .get_pipeline()
        .name(&name)
        .send()
        .await
        .unwrap()
        .pipeline
        .unwrap();
    let declared: Vec<(&str, Option<&str>, Option<&str>)> = declaration
        .variables()
        .iter()
        .map(|v| (v.name(), v.default_value(), v.description()))
        .collect();
    assert_eq!(
        declared,
        vec![(
            "DEPLOY_TARGET",
            Some("blue"),
            Some("The fleet this run deploys to")
        )]
    );
    let codebuild_actions: Vec<(&str, Json)> = declaration
        .stages()
        .iter()
        .flat_map(|s| s.actions())
        .filter(|a| a.action_type_id().map(|t| t.provider()) == Some("CodeBuild"))
        .map(|a| {
            let text = &a.configuration().unwrap()["EnvironmentVariables"];
            (a.name(), serde_json::from_str(text).unwrap())
        })
        .collect();
    let expected = json!([{"name": "DEPLOY_TARGET", "type": "PLAINTEXT",
                           "value": "#{variables.DEPLOY_TARGET}"}]);
    assert_eq!(
        codebuild_actions,
        vec![("Build", expected.clone()), ("Deploy", expected)]
    );

    let repo = Repository::fixture(REPOSITORY);
    world.emulator.register_repository(&repo);

    // A run started with a value: both stages see it.
    let started = codepipeline
        .start_pipeline_execution()
        .name(&name)
        .variables(
            PipelineVariable::builder()
                .name("DEPLOY_TARGET")
                .value("green")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let started = Started {
        pipeline: name.clone(),
        execution_id: started.pipeline_execution_id().unwrap().to_string(),
    };
    let mut run = Run::new(&world.clients, &started, true);
    assert_eq!(
        target_lines(&world, &mut run).await,
        vec!["building for green", "deploying to green"]
    );
    let execution = codepipeline
        .get_pipeline_execution()
        .pipeline_name(&name)
        .pipeline_execution_id(&started.execution_id)
        .send()
        .await
        .unwrap()
        .pipeline_execution
        .unwrap();
    let resolved: Vec<(&str, Option<&str>)> = execution
        .variables()
        .iter()
        .map(|v| (v.name().unwrap_or_default(), v.resolved_value()))
        .collect();
    assert_eq!(resolved, vec![("DEPLOY_TARGET", Some("green"))]);

    // A run started by a push takes the default.
    let push = world.emulator.push(&repo, "main");
    let started = world.started_one(&push.started, "app");
    let mut run = Run::new(&world.clients, &started, true);
    assert_eq!(
        target_lines(&world, &mut run).await,
        vec!["building for blue", "deploying to blue"]
    );

    // Something that looks like a credential never becomes a variable.
    world.stack.set_program(
        "app-delivery",
        &program(json!({"GITHUB_TOKEN": {"defaultValue": "abc"},
                         "AWS_REGION": {"defaultValue": "us-east-1"}})),
    );
    let rejected = world.stack.preview().failure().text();
    for expected in [
        "variables.GITHUB_TOKEN",
        "`GITHUB_TOKEN` names a credential",
        "secretArn",
        "variables.AWS_REGION",
        "names starting with AWS_",
    ] {
        assert!(rejected.contains(expected), "{expected} not in {rejected}");
    }
}
