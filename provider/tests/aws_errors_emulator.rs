//! An AWS refusal reaches the engine through the provider's gRPC service
//! with a fitting gRPC code, and with the AWS error code and request id in
//! its message.

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use securepipeline::engine_log::EngineLog;
use securepipeline::proto::pulumirpc::{self, resource_provider_server::ResourceProvider};
use securepipeline::protocol::server::Provider;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request};

const URN: &str = "urn:pulumi:test::securepipeline::securepipeline:aws:LogGroup::logs";

/// A role anyone in the account may assume, with no permissions at all.
async fn role_without_permissions(iam: &aws_sdk_iam::Client) -> String {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#;
    iam.create_role()
        .role_name("may-do-nothing")
        .assume_role_policy_document(trust)
        .send()
        .await
        .expect("create the role")
        .role()
        .expect("a role")
        .arn()
        .to_string()
}

#[tokio::test]
async fn an_access_denied_create_reaches_the_engine_as_permission_denied() {
    let emulator = support::Emulator::start();
    let admin = emulator.context().await;
    let role_arn = role_without_permissions(&admin.clients().iam).await;
    emulator.enforce_iam(true);

    let provider = Provider::new(
        "0.0.0-test",
        Arc::new(EngineLog::default()),
        CancellationToken::new(),
    );
    let variables = HashMap::from([
        (
            "securepipeline:config:region".to_string(),
            support::REGION.to_string(),
        ),
        (
            "securepipeline:config:endpoints".to_string(),
            format!(r#"{{"default":"{}"}}"#, emulator.endpoint),
        ),
        (
            "securepipeline:config:assumeRole".to_string(),
            format!(r#"{{"roleArn":"{role_arn}"}}"#),
        ),
    ]);
    provider
        .configure(Request::new(pulumirpc::ConfigureRequest {
            variables,
            ..Default::default()
        }))
        .await
        .expect("configure with the role's credentials");

    let program = serde_json::json!({
        "namePrefix": "app-test-logs",
        "retentionInDays": 30,
        "kmsKeyArn": format!("arn:aws:kms:{}:123456789012:key/00000000-0000-0000-0000-000000000000", support::REGION),
    });
    let news = securepipeline::resource::from_typed(&program, &Default::default());
    let checked = provider
        .check(Request::new(pulumirpc::CheckRequest {
            urn: URN.into(),
            news: Some(securepipeline::protocol::value::encode_struct(&news)),
            random_seed: b"aws-errors".to_vec(),
            ..Default::default()
        }))
        .await
        .expect("check")
        .into_inner();
    assert!(checked.failures.is_empty(), "{:?}", checked.failures);

    let status = provider
        .create(Request::new(pulumirpc::CreateRequest {
            urn: URN.into(),
            properties: checked.inputs,
            ..Default::default()
        }))
        .await
        .expect_err("a role without permissions may not create a log group");

    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let message = status.message();
    assert!(
        message.starts_with("creating log group /securepipeline/app-test-logs-"),
        "{message}"
    );
    assert!(message.contains(": AccessDeniedException: "), "{message}");
    let request_id = message
        .split_once("(request id: ")
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no request id in {message}"));
    assert!(!request_id.is_empty(), "{message}");
}
