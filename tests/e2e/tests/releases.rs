//! Releases and many branches (issue 14, capability 1): a SecurePipeline
//! whose source names more branches and release tags, deployed through the
//! engine. Its one V2 trigger is read back from the emulator; a release tag
//! starts a run that builds exactly the tagged commit, a branch matching a
//! glob starts one, and excluded tags and branches start nothing. Filters
//! that contradict each other are rejected at preview with the property
//! and the reason.

use securepipeline_e2e::execution::{Push, Repository, Run};
use securepipeline_e2e::scenario::{outputs_of, pipeline, World, RUN_TIMEOUT};
use serde_json::json;

const REPOSITORY: &str = "fixture-org/releases";

fn program(source: serde_json::Value) -> String {
    let app = pipeline(
        "app",
        REPOSITORY,
        json!({"source": source, "build": {"commands": ["ls -la"]}}),
    );
    format!("resources:{app}{}", outputs_of(&["app"]))
}

fn source() -> serde_json::Value {
    json!({"branch": "main",
           "branches": ["release/*"], "excludeBranches": ["release/old-*"],
           "tags": ["v*"], "excludeTags": ["v*-rc*"]})
}

fn skipped_reason(push: &Push) -> String {
    assert!(push.started.is_empty(), "{push:?}");
    assert_eq!(push.skipped.len(), 1, "{push:?}");
    push.skipped[0].reason.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn release_tags_and_branch_globs_start_the_pipeline_and_nothing_else() {
    let world = World::start(|_| program(source())).await;
    let name = world.out("app", "pipelineName");

    // One trigger on the Source action: the branches, then the tags.
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
    let [trigger] = declaration.triggers() else {
        panic!(
            "one trigger per source action: {:?}",
            declaration.triggers()
        )
    };
    let git = trigger.git_configuration().unwrap();
    assert_eq!(git.source_action_name(), "Source");
    let [on_branches, on_tags] = git.push() else {
        panic!("a branch filter and a tag filter: {:?}", git.push())
    };
    let branches = on_branches.branches().unwrap();
    assert_eq!(
        (branches.includes(), branches.excludes()),
        (
            &["main".to_string(), "release/*".to_string()][..],
            &["release/old-*".to_string()][..]
        )
    );
    assert!(on_branches.tags().is_none());
    let tags = on_tags.tags().unwrap();
    assert_eq!(
        (tags.includes(), tags.excludes()),
        (&["v*".to_string()][..], &["v*-rc*".to_string()][..])
    );
    assert!(on_tags.branches().is_none() && on_tags.file_paths().is_none());

    let repo = Repository::fixture(REPOSITORY);
    world.emulator.register_repository(&repo);

    // A release tag on an older commit: the run builds the tagged commit.
    repo.write("CHANGELOG.md", "# 1.0.0\n\nFirst release.\n");
    let released = repo.commit("Release 1.0.0");
    repo.tag("v1.0.0");
    repo.write("NEXT.md", "Work after the release.\n");
    repo.commit("Work after the release");
    let push = world.emulator.push_tag(&repo, "v1.0.0");
    let started = world.started_one(&push.started, "app");
    let mut run = Run::new(&world.clients, &started, true);
    let finished = run.finish(RUN_TIMEOUT).await;
    assert_eq!(finished.status, "Succeeded", "{finished:#?}");
    let execution = world
        .clients
        .codepipeline
        .get_pipeline_execution()
        .pipeline_name(&name)
        .pipeline_execution_id(&started.execution_id)
        .send()
        .await
        .unwrap()
        .pipeline_execution
        .unwrap();
    let revisions: Vec<&str> = execution
        .artifact_revisions()
        .iter()
        .filter_map(|r| r.revision_id())
        .collect();
    assert_eq!(revisions, vec![released.as_str()], "{execution:?}");
    assert_eq!(
        execution
            .trigger()
            .and_then(|t| t.trigger_type())
            .map(|t| t.as_str()),
        Some("WebhookV2")
    );

    // A release candidate tag is excluded; the answer says why.
    repo.tag("v1.1.0-rc1");
    let reason = skipped_reason(&world.emulator.push_tag(&repo, "v1.1.0-rc1"));
    assert!(
        reason.contains("tag v1.1.0-rc1 does not match includes v* and excludes v*-rc*"),
        "{reason}"
    );

    // A branch matching `release/*` starts the pipeline on its head ...
    repo.branch("release/2");
    repo.write("RELEASE.md", "Release 2.\n");
    repo.commit("Release 2");
    let push = world.emulator.push(&repo, "release/2");
    world.started_one(&push.started, "app");
    // ... an excluded one does not, nor does a branch no pattern names.
    repo.branch("release/old-1");
    repo.write("OLD.md", "An old line.\n");
    repo.commit("Old release line");
    let reason = skipped_reason(&world.emulator.push(&repo, "release/old-1"));
    assert!(
        reason.contains("branch release/old-1 does not match includes main, release/* and excludes release/old-*"),
        "{reason}"
    );
    repo.branch("feature/x");
    repo.write("FEATURE.md", "A feature.\n");
    repo.commit("A feature");
    skipped_reason(&world.emulator.push(&repo, "feature/x"));

    // Filters that contradict each other never reach AWS: preview names
    // each property and why.
    let contradictory = json!({"branch": "release/1", "branches": ["release/1", "hotfix/*"],
                               "excludeBranches": ["release/*"],
                               "tags": ["v*"], "excludeTags": ["v*"]});
    world
        .stack
        .set_program("app-delivery", &program(contradictory));
    let rejected = world.stack.preview().failure().text();
    for expected in [
        "source.branches[0]",
        "`release/1` is already given in source.branch",
        "source.excludeBranches[0]",
        "`release/*` excludes `release/1` (source.branch), which could then never start the pipeline",
        "source.excludeTags[0]",
    ] {
        assert!(rejected.contains(expected), "{expected} not in {rejected}");
    }
}
