//! Watch a pipeline run (`make run-pipeline`): starts the AWS emulator with
//! IAM enforced, deploys a SecurePipeline through the Pulumi engine (a build
//! that runs the fixture app's tests with a secret, a dev stage and a
//! production stage deploying the fixture's `infra/` program from an
//! `s3://` backend), pushes the fixture repository, and prints each stage's
//! and action's progress as the emulator runs it. Production's approval is
//! given as a reviewer would give it. It ends with where every action's
//! log is.

use std::time::Duration;

use securepipeline_e2e::execution::{build_log, build_log_lines, Run};
use securepipeline_e2e::scenario::{
    happy_path_program, repository, World, REPOSITORY, RUN_TIMEOUT,
};

#[tokio::main]
async fn main() {
    let logs = securepipeline_e2e::repo_root().join("target/run-pipeline");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs).expect("the log directory");
    let logs = logs.canonicalize().expect("the log directory");

    println!("Deploying a SecurePipeline to the emulator (IAM enforced) with `pulumi up`...");
    let world = World::start(happy_path_program).await;
    let name = world.out("app", "pipelineName");
    println!("Pipeline {name}: Source, Build, dev (Deploy), prod (Preview, Approve, Deploy).");

    let repo = repository(&world.emulator, REPOSITORY);
    println!(
        "Pushing main of {REPOSITORY} (the fixture app, at {})...\n",
        repo.path().display()
    );
    let push = world.emulator.push(&repo, "main");
    let started = world.started_one(&push.started, "app");
    let mut run = Run::new(&world.clients, &started, true);
    let token = run.approval_token("prod", "Approve", RUN_TIMEOUT).await;
    eprintln!("          prod     Approve    approving, as a reviewer who read the preview does");
    run.review("prod", "Approve", &token, true).await;
    let done = run.finish(RUN_TIMEOUT).await;

    println!("\nExecution {} {}.", started.execution_id, done.status);
    println!(
        "Logs (CloudWatch Logs in the emulator, copied to {}):",
        logs.display()
    );
    for action in &done.actions {
        let Some(build_id) = action
            .external_id
            .as_deref()
            .filter(|_| action.provider == "CodeBuild")
        else {
            continue;
        };
        let Ok(lines) = tokio::time::timeout(
            Duration::from_secs(30),
            build_log_lines(&world.clients, build_id),
        )
        .await
        else {
            continue;
        };
        let (group, stream) = build_log(&world.clients, build_id).await;
        let file = logs.join(format!("{}-{}.log", action.stage, action.action));
        std::fs::write(&file, lines.join("\n") + "\n").expect("write the log copy");
        println!(
            "  {:<8} {:<8} {:<10} {group} {stream}\n{:>30}{}",
            action.stage,
            action.action,
            action.status,
            "",
            file.display()
        );
    }
    let decisions = world.emulator.decisions();
    println!(
        "{} enforcement decisions, {} refused.",
        decisions.len(),
        world.denials().len()
    );
    if done.status != "Succeeded" {
        std::process::exit(1);
    }
}
