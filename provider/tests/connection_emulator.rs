//! `securepipeline:aws:Connection` against the AWS emulator: create (pending
//! until a person activates it), read back, tag drift, activation, delete;
//! adopting an existing connection, which is never changed or deleted.

mod support;

use std::process::Command;

use aws_sdk_codestarconnections::types::{ConnectionStatus, ProviderType, Tag};
use securepipeline::component::args::SourceProvider;
use securepipeline::engine_log::EngineLog;
use securepipeline::resource::{CheckContext, Lifecycle, ResourceError};
use securepipeline::resources::connection::{Connection, ConnectionInputs};
use securepipeline::tags::{self, Tags};

const URN: &str = "urn:pulumi:test::securepipeline::securepipeline:aws:Connection::source";
const ACTIVATION_URL: &str =
    "https://us-east-1.console.aws.amazon.com/codesuite/settings/connections?region=us-east-1";

fn program_inputs() -> ConnectionInputs {
    ConnectionInputs {
        name_prefix: "app-x1y2-source".into(),
        connection_name: None,
        provider_type: SourceProvider::GitHub,
        host_arn: None,
        existing_arn: None,
        tags: Tags::from([("team".to_string(), "platform".to_string())]),
    }
}

async fn live_tags(client: &aws_sdk_codestarconnections::Client, arn: &str) -> Tags {
    client
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap()
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

/// What a person does in the console, through the emulator's admin endpoint.
fn activate(emulator: &support::Emulator, arn: &str) {
    let url = format!(
        "{}/_emulator/connections/{}/status",
        emulator.endpoint,
        urlencoding::encode(arn)
    );
    let output = Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
        ])
        .args(["-d", r#"{"status":"AVAILABLE"}"#, &url])
        .output()
        .expect("run curl");
    assert!(
        output.status.success(),
        "activation failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn connection_is_created_pending_activated_restored_and_deleted() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, URN);
    let check_ctx = CheckContext {
        name: "source",
        random_seed: b"connection-emulator",
        aws: Some(&aws),
    };
    let inputs = Connection::check(&check_ctx, None, program_inputs()).unwrap();
    let name = inputs.connection_name.clone().unwrap();
    assert!(name.len() <= 32, "{name}");

    let (id, outputs) = Connection::create(&ctx, &inputs).await.unwrap();
    let arn_prefix = format!(
        "arn:aws:codestar-connections:{}:{}:connection/",
        support::REGION,
        aws.account_id
    );
    assert!(id.starts_with(&arn_prefix), "{id}");
    assert_eq!(outputs.arn, id);
    assert_eq!(
        outputs.status, "PENDING",
        "G2: a new connection waits for a person"
    );
    assert_eq!(outputs.activation_url, ACTIVATION_URL);

    // Read straight from CodeConnections.
    let client = &aws.clients().connections;
    let live = client
        .get_connection()
        .connection_arn(&id)
        .send()
        .await
        .unwrap()
        .connection
        .unwrap();
    assert_eq!(live.connection_name(), Some(name.as_str()));
    assert_eq!(live.provider_type(), Some(&ProviderType::Github));
    assert_eq!(live.connection_status(), Some(&ConnectionStatus::Pending));
    assert_eq!(live.host_arn(), None);
    let tags = live_tags(client, &id).await;
    assert_eq!(tags, inputs.tags);
    assert_eq!(tags[tags::MANAGED_BY_KEY], tags::MANAGED_BY_VALUE);

    // Read returns exactly what was asked for.
    let (live_inputs, live_outputs) = Connection::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(live_inputs, inputs);
    assert_eq!(live_outputs, outputs);

    // Creating again (an interrupted earlier attempt) finds the same one.
    let (again, _) = Connection::create(&ctx, &inputs).await.unwrap();
    assert_eq!(again, id);

    // Drift: a tag removed, one added.
    client
        .untag_resource()
        .resource_arn(&id)
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    let extra = Tag::builder().key("extra").value("1").build().unwrap();
    client
        .tag_resource()
        .resource_arn(&id)
        .tags(extra)
        .send()
        .await
        .unwrap();
    let (drifted, _) = Connection::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert!(!drifted.tags.contains_key("team"));
    assert_eq!(drifted.tags.get("extra").map(String::as_str), Some("1"));

    // The next update restores them.
    let restored_outputs = Connection::update(&ctx, &id, &drifted, &inputs, &outputs)
        .await
        .unwrap();
    assert_eq!(restored_outputs, outputs);
    assert_eq!(live_tags(client, &id).await, inputs.tags);
    let (restored, _) = Connection::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(restored, inputs);

    // A person activates it in the console: read and update report it.
    activate(&emulator, &id);
    let (_, activated) = Connection::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(activated.status, "AVAILABLE");
    let updated = Connection::update(&ctx, &id, &inputs, &inputs, &outputs)
        .await
        .unwrap();
    assert_eq!(updated.status, "AVAILABLE");

    // Delete; the connection then reads as gone; deleting again succeeds.
    Connection::delete(&ctx, &id, &inputs, &activated)
        .await
        .unwrap();
    assert!(client
        .get_connection()
        .connection_arn(&id)
        .send()
        .await
        .is_err());
    assert!(Connection::read(&ctx, &id, &inputs)
        .await
        .unwrap()
        .is_none());
    Connection::delete(&ctx, &id, &inputs, &activated)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_self_hosted_connection_is_created_through_its_host() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, URN);
    let check_ctx = CheckContext {
        name: "source",
        random_seed: b"ghes-connection",
        aws: Some(&aws),
    };
    // The CodeStar Connections API takes only hosts in its own namespace.
    let host = format!(
        "arn:aws:codestar-connections:{}:{}:host/ghes-0a1b2c3d",
        support::REGION,
        aws.account_id
    );
    let news = ConnectionInputs {
        provider_type: SourceProvider::GitHubEnterpriseServer,
        host_arn: Some(host.clone()),
        ..program_inputs()
    };
    let inputs = Connection::check(&check_ctx, None, news).unwrap();
    let (id, outputs) = Connection::create(&ctx, &inputs).await.unwrap();
    let live = aws
        .clients()
        .connections
        .get_connection()
        .connection_arn(&id)
        .send()
        .await
        .unwrap()
        .connection
        .unwrap();
    assert_eq!(live.host_arn(), Some(host.as_str()));
    let (live_inputs, _) = Connection::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(live_inputs, inputs);
    Connection::delete(&ctx, &id, &inputs, &outputs)
        .await
        .unwrap();
    assert!(Connection::read(&ctx, &id, &inputs)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn an_adopted_connection_is_validated_and_never_changed_or_deleted() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, URN);
    let check_ctx = CheckContext {
        name: "source",
        random_seed: b"adopted-connection",
        aws: Some(&aws),
    };
    let client = &aws.clients().connections;
    let theirs = Tag::builder()
        .key("owner")
        .value("someone-else")
        .build()
        .unwrap();
    let existing = client
        .create_connection()
        .connection_name("made-by-hand")
        .provider_type(ProviderType::Bitbucket)
        .tags(theirs)
        .send()
        .await
        .unwrap()
        .connection_arn()
        .to_string();

    // An ARN in another account is refused at preview.
    let foreign = existing.replace(&aws.account_id, "210987654321");
    let adopt = |arn: &str| ConnectionInputs {
        provider_type: SourceProvider::Bitbucket,
        existing_arn: Some(arn.to_string()),
        ..program_inputs()
    };
    let failures = Connection::check(&check_ctx, None, adopt(&foreign)).unwrap_err();
    assert_eq!(failures[0].property, "existingArn");

    // One that does not exist fails at create, saying what to do.
    let missing = format!(
        "{}/00000000-0000-0000-0000-000000000000",
        existing.rsplit_once('/').unwrap().0
    );
    let inputs = Connection::check(&check_ctx, None, adopt(&missing)).unwrap();
    match Connection::create(&ctx, &inputs).await {
        Err(ResourceError::Failed(message)) => {
            assert!(message.contains("does not exist"), "{message}");
            assert!(message.contains("remove connectionArn"), "{message}");
        }
        other => panic!("adopting a missing connection must fail: {other:?}"),
    }

    // The existing one is adopted as it is.
    let inputs = Connection::check(&check_ctx, None, adopt(&existing)).unwrap();
    let (id, outputs) = Connection::create(&ctx, &inputs).await.unwrap();
    assert_eq!(id, existing);
    assert_eq!(outputs.status, "PENDING");
    assert_eq!(outputs.activation_url, ACTIVATION_URL);
    let (live_inputs, live_outputs) = Connection::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(live_inputs, inputs);
    assert_eq!(live_outputs, outputs);

    // Its tags are not ours to manage.
    let mut retagged = inputs.clone();
    retagged.tags.insert("extra".into(), "1".into());
    Connection::update(&ctx, &id, &inputs, &retagged, &outputs)
        .await
        .unwrap();
    let tags = live_tags(client, &id).await;
    assert_eq!(
        tags,
        Tags::from([("owner".to_string(), "someone-else".to_string())])
    );

    // Deleting the resource forgets the connection and leaves it in place.
    Connection::delete(&ctx, &id, &retagged, &outputs)
        .await
        .unwrap();
    let live = client
        .get_connection()
        .connection_arn(&existing)
        .send()
        .await
        .unwrap()
        .connection
        .unwrap();
    assert_eq!(live.connection_name(), Some("made-by-hand"));
}
