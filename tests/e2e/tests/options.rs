//! Resource options set on a SecurePipeline reach its children, through
//! the real engine against the emulator: protect, retainOnDelete and
//! customTimeouts are recorded on every child; renaming the component with
//! an alias keeps every child as it is; ignoreChanges on `tags` leaves the
//! children's tags alone; a retained pipeline outlives `destroy`;
//! transforms on the component reach its children, and a transform that
//! weakens a child is rejected by that child's own check.

use securepipeline_e2e::readback::{leftovers, text};
use securepipeline_e2e::{repo_root, Emulator, Stack, REGION};
use serde_json::Value as Json;

const PROJECT: &str = "pipeline-options";

fn program(name: &str, options: &str, team: &str) -> String {
    format!(
        r#"
resources:
  {name}:
    type: securepipeline:index:SecurePipeline
    properties:
      source:
        repository: example-org/web
      build:
        commands: ["npm test"]
      tags:
        team: {team}
    options:
{options}
"#
    )
}

/// The children of the component in the checkpoint.
fn children(stack: &Stack) -> Vec<Json> {
    let checkpoint: Json = serde_json::from_str(&stack.export()).expect("checkpoint is JSON");
    let resources = checkpoint["deployment"]["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let children: Vec<Json> = resources
        .into_iter()
        .filter(|r| {
            r["custom"] == true
                && r["type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("securepipeline:aws:"))
        })
        .collect();
    assert!(children.len() >= 8, "too few children: {children:?}");
    children
}

/// Operations `pulumi preview --json` plans other than `same`.
fn planned_changes(stack: &Stack) -> Vec<String> {
    let preview = stack.pulumi(&["preview", "--json"]).success();
    let plan: Json = serde_json::from_str(&preview.stdout()).expect("preview JSON");
    plan["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|step| step["op"] != "same")
        .map(|step| format!("{} {}", step["op"], step["urn"]))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn children_follow_the_components_options() {
    let emulator = Emulator::start();
    let options = "      protect: true\n      retainOnDelete: true\n      customTimeouts:\n        create: 7m\n        delete: 9m\n      ignoreChanges: [tags]";
    let stack = Stack::yaml(&emulator, PROJECT, &program("web", options, "platform"));
    stack.up().success();

    for child in children(&stack) {
        let urn = &child["urn"];
        assert_eq!(child["protect"], true, "{urn} is not protected");
        assert_eq!(child["retainOnDelete"], true, "{urn} is not retained");
        assert_eq!(child["customTimeouts"]["create"], 420.0, "{urn}: {child}");
        assert_eq!(child["customTimeouts"]["delete"], 540.0, "{urn}: {child}");
    }

    // ignoreChanges: [tags] on the component: a tag change writes nothing.
    stack.set_program(PROJECT, &program("web", options, "payments"));
    emulator.reset_calls();
    stack.up().success();
    let writes: Vec<_> = emulator.calls().into_iter().filter(|c| c.write).collect();
    assert!(writes.is_empty(), "an ignored tag change wrote: {writes:?}");

    // Protected children stop `destroy`.
    let refused = stack.destroy().failure();
    assert!(refused.text().contains("protected"), "{}", refused.text());

    // Unprotected but retained: `destroy` forgets them and AWS keeps them.
    let retained = "      retainOnDelete: true";
    stack.set_program(PROJECT, &program("web", retained, "platform"));
    stack.up().success();
    stack.destroy().success();
    let kept = leftovers(&emulator.sdk().await).await;
    assert!(
        kept.iter().any(|r| r.contains("pipeline")),
        "retained children were deleted: {kept:?}"
    );
}

#[test]
fn renaming_the_component_with_an_alias_keeps_its_children() {
    let emulator = Emulator::start();
    let stack = Stack::yaml(&emulator, PROJECT, &program("web", "      {}", "platform"));
    stack.up().success();

    let alias = format!("      aliases:\n        - urn:pulumi:test::{PROJECT}::securepipeline:index:SecurePipeline::web");
    stack.set_program(PROJECT, &program("site", &alias, "platform"));
    let changes = planned_changes(&stack);
    assert!(
        changes.is_empty(),
        "renaming changed children: {changes:#?}"
    );
    emulator.reset_calls();
    stack.up().success();
    let writes: Vec<_> = emulator.calls().into_iter().filter(|c| c.write).collect();
    assert!(writes.is_empty(), "renaming wrote to AWS: {writes:?}");

    stack.destroy().success();
}

#[tokio::test(flavor = "multi_thread")]
async fn transforms_reach_children_and_cannot_weaken_them() {
    let emulator = Emulator::start();
    let program = repo_root().join("tests/e2e/programs/transforms-typescript");
    let stack = Stack::project(&emulator, &program, "test");
    stack
        .pulumi(&["config", "set", "securepipeline:region", REGION])
        .success();
    stack.up().success();

    let outputs = stack.outputs();
    let pipeline_arn = text(&outputs, "pipelineArn");
    let sdk = emulator.sdk().await;
    let tags = aws_sdk_codepipeline::Client::new(&sdk)
        .list_tags_for_resource()
        .resource_arn(&pipeline_arn)
        .send()
        .await
        .expect("ListTagsForResource");
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == "transformed" && t.value() == "yes"),
        "the transform's tag did not reach the pipeline: {tags:?}"
    );

    stack.pulumi(&["config", "set", "weaken", "true"]).success();
    let rejected = stack.preview().failure();
    assert!(
        rejected.text().contains("retentionInDays")
            && rejected.text().contains("0 is not a retention"),
        "{}",
        rejected.text()
    );

    stack
        .pulumi(&["config", "set", "weaken", "false"])
        .success();
    stack.destroy().success();
}
