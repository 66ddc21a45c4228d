//! A secret stays secret wherever a user puts it: through the real engine
//! against the emulator, secrets given in every kind of input that may hold
//! one (Pulumi stage fields, tags, notification addresses) never appear in
//! the engine's output or in plaintext state, while AWS gets the values; a
//! rejected secret input is never echoed. (A secret command is rejected:
//! CodeBuild keeps buildspecs as plain text; pipeline.rs proves that.)

use securepipeline_e2e::{Emulator, Stack};

/// Each secret given to the component, one per input path.
const STACK_NAME: &str = "web-infra/staging-4c9a2e";
const STACK_DIR: &str = "infra-9e4d0b";
const TAG_VALUE: &str = "cc-3b8f61";
const EMAIL: &str = "oncall-71d2@example.com";
const SECRETS: [&str; 4] = [STACK_NAME, STACK_DIR, TAG_VALUE, EMAIL];

fn program() -> String {
    format!(
        r#"
resources:
  web:
    type: securepipeline:index:SecurePipeline
    properties:
      source:
        repository: example-org/web
      build:
        commands: ["npm ci", "npm test"]
      deployments:
        - name: staging
          pulumiStack:
            stack:
              fn::secret: {STACK_NAME}
            workDir:
              fn::secret: {STACK_DIR}
            backendUrl: s3://web-state/pulumi
            passphraseSecretArn: arn:aws:secretsmanager:us-east-1:123456789012:secret:staging-passphrase-AbCdEf
      notifications:
        emails:
          - fn::secret: {EMAIL}
      tags:
        costCenter:
          fn::secret: {TAG_VALUE}
outputs:
  buildProjectNames: ${{web.buildProjectNames}}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_in_every_input_stay_secret() {
    let emulator = Emulator::start();
    let stack = Stack::yaml(&emulator, "secret-paths", &program());
    stack.preview().success();
    let created = stack.up().success();
    let checkpoint = stack.export();
    for secret in SECRETS {
        assert!(
            !created.text().contains(secret),
            "`{secret}` reached the engine's output:\n{}",
            created.text()
        );
        assert!(
            !checkpoint.contains(secret),
            "`{secret}` is stored in plaintext state"
        );
    }

    // AWS got the values themselves: the stage's buildspec selects the
    // secret stack in the secret directory.
    let sdk = emulator.sdk().await;
    let codebuild = aws_sdk_codebuild::Client::new(&sdk);
    let outputs = stack.outputs();
    let stage = outputs["buildProjectNames"][1]
        .as_str()
        .expect("the stage's project is named after the build's");
    let projects = codebuild
        .batch_get_projects()
        .names(stage)
        .send()
        .await
        .expect("BatchGetProjects");
    let buildspec = projects.projects()[0]
        .source()
        .and_then(|s| s.buildspec())
        .unwrap_or_default()
        .to_string();
    assert!(buildspec.contains(STACK_NAME), "{buildspec}");
    assert!(buildspec.contains(STACK_DIR), "{buildspec}");

    stack.destroy().success();
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_secret_inputs_are_not_echoed() {
    let emulator = Emulator::start();
    let region = "mars-north-9";
    let stack = Stack::yaml(
        &emulator,
        "secret-rejected",
        &format!(
            r#"
resources:
  web:
    type: securepipeline:index:SecurePipeline
    properties:
      source:
        repository: example-org/web
      build:
        commands: ["npm test"]
      deployments:
        - name: dev
          region:
            fn::secret: {region}
          commands: ["./deploy.sh"]
"#
        ),
    );
    let run = stack.preview().failure();
    assert!(
        run.text().contains("deployments[0].region"),
        "the rejection names the property:\n{}",
        run.text()
    );
    assert!(
        !run.text().contains(region),
        "a secret input was echoed:\n{}",
        run.text()
    );
}
