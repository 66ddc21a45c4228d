//! The example stacks deploy as they are, through the real engine.

use securepipeline_e2e::{Emulator, Stack};

#[test]
fn yaml_example_deploys_and_destroys() {
    let emulator = Emulator::start();
    let stack = Stack::example(&emulator, "yaml");
    stack.preview().success();
    stack.up().success();
    let outputs = stack.outputs();
    assert_eq!(outputs["connectionStatus"], "PENDING");
    let url = outputs["pipelineUrl"].as_str().expect("pipelineUrl");
    assert!(
        url.starts_with(
            "https://us-east-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/"
        ),
        "{url}"
    );
    assert!(outputs["connectionActivationUrl"]
        .as_str()
        .is_some_and(|u| u.contains("settings/connections")));
    stack.destroy().success();
    let writes_after: Vec<_> = emulator
        .calls()
        .into_iter()
        .filter(|c| c.operation == "CreatePipeline")
        .collect();
    assert_eq!(writes_after.len(), 1, "the example created one pipeline");
}
