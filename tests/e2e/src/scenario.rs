//! The scenarios' common ground, shared by the end-to-end scenarios
//! (`tests/execution.rs`) and `run-pipeline` (the pipeline run one can
//! watch): what exists before a pipeline (secrets, parameters, deployer
//! roles, the Pulumi state backend), the fixture repository with its
//! stacks, the SecurePipeline programs, and a world with all of it
//! deployed through the engine.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value as Json};

use crate::execution::{
    build_image_environment, ActionRun, PulumiRelease, Repository, Snapshot, Started, StateAdmin,
};
use crate::readback::text;
use crate::{Clients, Emulator, Stack, ACCOUNT, REGION};

pub const REPOSITORY: &str = "fixture-org/app";
pub const STATE_BUCKET: &str = "app-state";
pub const BACKEND: &str = "s3://app-state/pulumi";
pub const DEV_PASSPHRASE: &str = "dev-config-passphrase";
pub const PROD_PASSPHRASE: &str = "prod-config-passphrase";
/// The build's secret: the app's tests sign receipts with it.
pub const SIGNING_KEY: &str = "receipt-signing-key-5d1c";
pub const EVENTS: &str = "events.amazonaws.com";
/// One execution of the whole pipeline, on 2 busy cores.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(360);

pub fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

pub fn parameter_arn(name: &str) -> String {
    format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{name}")
}

/// What exists before the pipeline: the secrets and parameters stages read,
/// the deployer roles a team gives its stages, the state backend.
pub struct Fixtures {
    pub signing_key: String,
    pub dev_passphrase: String,
    pub prod_passphrase: String,
    pub unrelated_secret: String,
}

pub async fn fixtures(emulator: &Emulator, clients: &Clients) -> Fixtures {
    let mut arns = BTreeMap::new();
    for (name, value) in [
        ("app/signing-key", SIGNING_KEY),
        ("app/dev-passphrase", DEV_PASSPHRASE),
        ("app/prod-passphrase", PROD_PASSPHRASE),
        ("app/unrelated", "unrelated-value"),
    ] {
        let created = clients
            .secrets
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .unwrap();
        arns.insert(name, created.arn().unwrap().to_string());
    }
    for stage in ["dev", "prod", "qa"] {
        clients
            .ssm
            .put_parameter()
            .name(format!("/app/{stage}/db-url"))
            .value(format!("postgres://db.{stage}.internal/app"))
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .unwrap();
    }
    // Deployer roles trust the account: the stage's own policy decides who
    // may assume them. Production's preview gets a read-only one.
    let account_trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
        "Action": "sts:AssumeRole"}]})
    .to_string();
    for (name, managed) in [
        ("dev-deployer", "AdministratorAccess"),
        ("prod-deployer", "AdministratorAccess"),
        ("prod-reader", "ReadOnlyAccess"),
    ] {
        clients
            .iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(&account_trust)
            .send()
            .await
            .unwrap();
        clients
            .iam
            .attach_role_policy()
            .role_name(name)
            .policy_arn(format!("arn:aws:iam::aws:policy/{managed}"))
            .send()
            .await
            .unwrap();
    }
    clients
        .s3
        .create_bucket()
        .bucket(STATE_BUCKET)
        .send()
        .await
        .unwrap();
    // The backend is used once before any stage runs, so its metadata
    // exists (README, Deployments).
    let admin = StateAdmin::new(emulator);
    admin.pulumi(&std::env::temp_dir(), DEV_PASSPHRASE, &["login", BACKEND]);
    Fixtures {
        signing_key: arns["app/signing-key"].clone(),
        dev_passphrase: arns["app/dev-passphrase"].clone(),
        prod_passphrase: arns["app/prod-passphrase"].clone(),
        unrelated_secret: arns["app/unrelated"].clone(),
    }
}

/// The fixture repository with the infrastructure's stacks created in the
/// backend and their settings committed, as a team does once.
pub fn repository(emulator: &Emulator, full_id: &str) -> Repository {
    let repo = Repository::fixture(full_id);
    let admin = StateAdmin::new(emulator);
    let infra = repo.path().join("infra");
    for (stack, passphrase) in [("dev", DEV_PASSPHRASE), ("prod", PROD_PASSPHRASE)] {
        admin.pulumi(&infra, passphrase, &["login", BACKEND]);
        admin.pulumi(
            &infra,
            passphrase,
            &["stack", "init", &format!("organization/app-infra/{stack}")],
        );
    }
    repo.commit("Stacks dev and prod of the infrastructure");
    emulator.register_repository(&repo);
    repo
}

/// A SecurePipeline named `name` building `repository`.
pub fn pipeline(name: &str, repository: &str, properties: Json) -> String {
    let mut properties = properties;
    properties["source"]["repository"] = json!(repository);
    format!(
        r#"
  {name}:
    type: securepipeline:index:SecurePipeline
    properties: {properties}"#
    )
}

pub fn outputs_of(names: &[&str]) -> String {
    let mut outputs = String::from("\noutputs:\n");
    for name in names {
        for output in [
            "pipelineName",
            "pipelineArn",
            "connectionArn",
            "artifactBucketName",
            "kmsKeyArn",
            "notificationTopicArn",
            "buildProjectNames",
            "logGroupNames",
            "roleArns",
        ] {
            outputs.push_str(&format!("  {name}_{output}: ${{{name}.{output}}}\n"));
        }
    }
    outputs
}

/// The deployments of the app's pipeline: dev, then production behind a
/// preview and an approval, both deploying `infra/` under their deployer.
pub fn deployments(f: &Fixtures) -> Json {
    json!([
        {"name": "dev", "assumeRoleArn": role_arn("dev-deployer"),
         "environment": {"DB_URL": {"parameterName": "/app/dev/db-url"}},
         "pulumiStack": {"stack": "app-infra/dev", "workDir": "infra", "backendUrl": BACKEND,
                         "passphraseSecretArn": f.dev_passphrase}},
        {"name": "prod", "production": true,
         "assumeRoleArn": role_arn("prod-deployer"), "previewRoleArn": role_arn("prod-reader"),
         "environment": {"DB_URL": {"parameterName": "/app/prod/db-url"}},
         "pulumiStack": {"stack": "app-infra/prod", "workDir": "infra", "backendUrl": BACKEND,
                         "passphraseSecretArn": f.prod_passphrase}}
    ])
}

/// The happy path's program: the app's pipeline, whose build runs the
/// fixture app's unit tests with its secret and whose dev and production
/// stages deploy `infra/` ([`deployments`]), telling the team by email;
/// commits touching only `docs/` start nothing.
pub fn happy_path_program(f: &Fixtures) -> String {
    let app = pipeline(
        "app",
        REPOSITORY,
        json!({"source": {"excludePaths": ["docs/**"]},
               "build": build(f, &["python3 -m unittest discover -s tests -v"]),
               "deployments": deployments(f),
               "notifications": {"emails": ["team@example.com"]}}),
    );
    format!("resources:{app}{}", outputs_of(&["app"]))
}

pub fn build(f: &Fixtures, commands: &[&str]) -> Json {
    json!({"commands": commands,
           "environment": {"APP_SIGNING_KEY": {"secretArn": f.signing_key}}})
}

/// The emulator, the fixtures, the program deployed through the engine and
/// its connections activated; enforcement on from here.
pub struct World {
    pub emulator: Emulator,
    pub clients: Clients,
    pub fixtures: Fixtures,
    pub outputs: Json,
    pub stack: Stack,
}

impl World {
    pub async fn start(program: impl FnOnce(&Fixtures) -> String) -> Self {
        let release = PulumiRelease::local();
        let emulator = Emulator::start();
        let clients = Clients::new(&emulator.sdk().await);
        let fixtures = fixtures(&emulator, &clients).await;
        emulator.set_build_environment(&build_image_environment(&release));
        let stack = Stack::yaml(&emulator, "app-delivery", &program(&fixtures));
        stack.up().success();
        let outputs = stack.outputs();
        for (key, arn) in outputs.as_object().unwrap() {
            if key.ends_with("_connectionArn") {
                // What a person does once in the console.
                emulator.activate_connection(arn.as_str().unwrap());
            }
        }
        emulator.enforce_iam(true);
        emulator.reset_decisions();
        Self {
            emulator,
            clients,
            fixtures,
            outputs,
            stack,
        }
    }

    pub fn out(&self, pipeline: &str, output: &str) -> String {
        text(&self.outputs, &format!("{pipeline}_{output}"))
    }

    pub fn roles(&self, pipeline: &str) -> BTreeMap<String, String> {
        self.outputs[format!("{pipeline}_roleArns")]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect()
    }

    pub fn started_one(&self, started: &[Started], pipeline: &str) -> Started {
        let name = self.out(pipeline, "pipelineName");
        assert_eq!(
            started
                .iter()
                .map(|s| s.pipeline.as_str())
                .collect::<Vec<_>>(),
            vec![name.as_str()],
            "{started:?}"
        );
        started[0].clone()
    }

    /// Denied decisions so far, one per line.
    pub fn denials(&self) -> Vec<String> {
        self.emulator
            .decisions()
            .iter()
            .filter(|d| d["allowed"] != json!(true))
            .map(|d| {
                format!(
                    "{} {} {} ({}): {}",
                    d["principal"], d["action"], d["resource"], d["reason"], d["message"]
                )
            })
            .collect()
    }
}

pub fn action<'a>(snapshot: &'a Snapshot, stage: &str, name: &str) -> &'a ActionRun {
    snapshot
        .action(stage, name)
        .unwrap_or_else(|| panic!("{stage}/{name} never ran: {:#?}", snapshot.actions))
}

/// The stack outputs a Pulumi stage exported, read from its output
/// artifact where the execution put it.
pub async fn stack_outputs(clients: &Clients, deploy: &ActionRun) -> Json {
    let (name, bucket, key) = deploy
        .outputs
        .first()
        .unwrap_or_else(|| panic!("{}/{} exported nothing", deploy.stage, deploy.action));
    assert!(name.starts_with("StackOutputs"), "{name}");
    let object = clients
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|err| panic!("artifact {bucket}/{key}: {err:?}"));
    let zip = object.body.collect().await.unwrap().into_bytes();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("artifact.zip"), &zip).unwrap();
    let unzipped = std::process::Command::new("unzip")
        .args(["-p", "artifact.zip", "stack-outputs.json"])
        .current_dir(dir.path())
        .output()
        .expect("unzip");
    assert!(unzipped.status.success(), "{unzipped:?}");
    serde_json::from_slice(&unzipped.stdout)
        .unwrap_or_else(|err| panic!("stack-outputs.json: {err}: {unzipped:?}"))
}
