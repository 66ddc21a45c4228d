//! The gRPC `ResourceProvider` service. This is the only place that knows
//! the wire protocol's request and response shapes: it decodes them,
//! dispatches to the resource kind named by the type token, and encodes
//! results and errors back.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use prost::Message;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::in_flight::InFlight;
use super::secrets::SecretValues;
use super::value::{decode_struct, encode_struct, PropertyMap};
use crate::aws::failure::FailureKind;
use crate::aws::{AwsContext, ConnectError, ProviderConfig};
use crate::component;
use crate::engine_log::EngineLog;
use crate::proto::pulumirpc::{
    self, diff_response::DiffChanges, property_diff::Kind,
    resource_provider_server::ResourceProvider,
};
use crate::resource::{
    diff_inputs, to_typed, CheckContext, CheckFailure, DiffKind, DiffResult, OpContext,
    ResourceError, ResourceHandler,
};
use crate::resources;
use crate::schema;

/// Provider config keys whose change moves resources elsewhere.
const CONFIG_REPLACE_KEYS: &[&str] = &["region"];

pub struct Provider {
    version: String,
    resources: HashMap<&'static str, Box<dyn ResourceHandler>>,
    aws: RwLock<Option<Arc<AwsContext>>>,
    log: Arc<EngineLog>,
    cancel: CancellationToken,
    in_flight: Arc<InFlight>,
}

impl Provider {
    pub fn new(version: &str, log: Arc<EngineLog>, cancel: CancellationToken) -> Self {
        Self {
            version: version.to_string(),
            resources: resources::registry(),
            aws: RwLock::new(None),
            log,
            cancel,
            in_flight: Arc::default(),
        }
    }

    /// The operations changing AWS right now; the process waits for them
    /// before it exits.
    pub fn in_flight(&self) -> Arc<InFlight> {
        Arc::clone(&self.in_flight)
    }

    /// Runs an operation that changes AWS to its end, cancellation or not:
    /// dropping it midway would leave what it created unknown to the
    /// engine. Once cancelled, no new one starts.
    async fn to_completion<T>(
        &self,
        operation: impl std::future::Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        let _running = self.in_flight.enter();
        if self.cancel.is_cancelled() {
            return Err(Status::cancelled(
                "the update was cancelled before this operation started",
            ));
        }
        operation.await
    }

    fn aws(&self) -> Option<Arc<AwsContext>> {
        match self.aws.read() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn configured(&self) -> Result<Arc<AwsContext>, Status> {
        self.aws().ok_or_else(|| {
            Status::failed_precondition("the securepipeline provider has not been configured")
        })
    }

    fn handler(&self, type_token: &str) -> Result<&dyn ResourceHandler, Status> {
        self.resources
            .get(type_token)
            .map(Box::as_ref)
            .ok_or_else(|| {
                Status::invalid_argument(format!("unknown resource type `{type_token}`"))
            })
    }

    /// Runs an operation that only reads unless the engine cancels first;
    /// a cancelled operation is reported as failed, never as done.
    async fn cancellable<T>(
        &self,
        operation: impl std::future::Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        tokio::select! {
            result = operation => result,
            () = self.cancel.cancelled() => Err(Status::cancelled("the operation was cancelled")),
        }
    }
}

/// Type token and name from a URN: `urn:pulumi:stack::project::[parent$]type::name`.
pub fn parse_urn(urn: &str) -> (&str, &str) {
    let mut parts = urn.splitn(4, "::");
    let _stack = parts.next();
    let _project = parts.next();
    let qualified_type = parts.next().unwrap_or_default();
    let name = parts.next().unwrap_or_default();
    let type_token = qualified_type.rsplit('$').next().unwrap_or_default();
    (type_token, name)
}

fn resolve<'a>(given_type: &'a str, given_name: &'a str, urn: &'a str) -> (&'a str, &'a str) {
    let (type_token, name) = parse_urn(urn);
    (
        if given_type.is_empty() {
            type_token
        } else {
            given_type
        },
        if given_name.is_empty() {
            name
        } else {
            given_name
        },
    )
}

fn decode(value: Option<&prost_types::Struct>) -> Result<PropertyMap, Status> {
    match value {
        Some(value) => {
            decode_struct(value).map_err(|err| Status::invalid_argument(err.to_string()))
        }
        None => Ok(PropertyMap::new()),
    }
}

/// Check failures for the engine; a reason never echoes a secret input.
fn failures_to_proto(
    failures: Vec<CheckFailure>,
    secrets: &SecretValues,
) -> Vec<pulumirpc::CheckFailure> {
    failures
        .into_iter()
        .map(|f| pulumirpc::CheckFailure {
            property: f.property,
            reason: secrets.redact(&f.reason),
        })
        .collect()
}

fn diff_to_proto(diff: DiffResult) -> pulumirpc::DiffResponse {
    let detailed_diff = diff
        .detailed
        .iter()
        .map(|(key, kind)| {
            let kind = match kind {
                DiffKind::Add => Kind::Add,
                DiffKind::AddReplace => Kind::AddReplace,
                DiffKind::Delete => Kind::Delete,
                DiffKind::DeleteReplace => Kind::DeleteReplace,
                DiffKind::Update => Kind::Update,
                DiffKind::UpdateReplace => Kind::UpdateReplace,
            };
            (
                key.clone(),
                pulumirpc::PropertyDiff {
                    kind: kind as i32,
                    input_diff: true,
                },
            )
        })
        .collect();
    pulumirpc::DiffResponse {
        changes: if diff.changed.is_empty() {
            DiffChanges::DiffNone
        } else {
            DiffChanges::DiffSome
        } as i32,
        replaces: diff.replaces,
        diffs: diff.changed,
        detailed_diff,
        has_detailed_diff: true,
        ..Default::default()
    }
}

/// When an operation with the engine's timeout (seconds; 0 for none, as
/// without `customTimeouts`) must be over.
fn deadline(timeout: f64) -> Option<tokio::time::Instant> {
    let timeout = std::time::Duration::try_from_secs_f64(timeout).ok()?;
    (!timeout.is_zero()).then(|| tokio::time::Instant::now() + timeout)
}

/// Encodes a resource error; a partial failure carries the state the
/// engine must record so that nothing is orphaned.
fn error_to_status(err: ResourceError, inputs: &PropertyMap) -> Status {
    let secrets = SecretValues::of(inputs);
    match err {
        ResourceError::Partial { id, state, cause } => {
            let code = status_code(&cause);
            let message = secrets.redact(&cause.to_string());
            // The state holds the inputs: what was secret there stays
            // secret, and so does anything derived from it.
            let mut secret_keys = crate::resource::to_typed(inputs).secret_keys;
            secret_keys.extend(secrets.tainted_keys(&state));
            let properties = crate::resource::from_typed(&state, &secret_keys);
            let details = pulumirpc::ErrorResourceInitFailed {
                id,
                properties: Some(encode_struct(&properties)),
                reasons: vec![message.clone()],
                inputs: Some(encode_struct(inputs)),
                // What a failed step left undone is only visible in the
                // live resource: the next `up` reads it before diffing, so
                // the update repairs it without a manual refresh.
                refresh_before_update: true,
            };
            let status = RpcStatus {
                code: code as i32,
                message: message.clone(),
                details: vec![prost_types::Any {
                    type_url: "type.googleapis.com/pulumirpc.ErrorResourceInitFailed".into(),
                    value: details.encode_to_vec(),
                }],
            };
            Status::with_details(code, message, status.encode_to_vec().into())
        }
        other => Status::new(status_code(&other), secrets.redact(&other.to_string())),
    }
}

/// The gRPC code of a failure: a fitting one for AWS's, else `Unknown`.
/// A partial failure has its cause's code; the engine recognises it by
/// its details.
fn status_code(err: &ResourceError) -> tonic::Code {
    match err {
        ResourceError::Aws(failure) => grpc_code(failure.kind),
        ResourceError::Partial { cause, .. } => status_code(cause),
        ResourceError::Failed(_) => tonic::Code::Unknown,
    }
}

/// The gRPC code for a kind of AWS failure. The engine treats `Unknown`
/// (with `Internal` and `DataLoss`) as "the resource's state is unknown"
/// and any other code as a well-understood failure; partial failures are
/// recognised by their details, not by the code. A call that timed out or
/// met a server error may still have taken effect, so its state is unknown.
fn grpc_code(kind: FailureKind) -> tonic::Code {
    match kind {
        FailureKind::AccessDenied => tonic::Code::PermissionDenied,
        FailureKind::NotFound => tonic::Code::NotFound,
        FailureKind::AlreadyExists => tonic::Code::AlreadyExists,
        FailureKind::Conflict => tonic::Code::FailedPrecondition,
        FailureKind::Throttled => tonic::Code::ResourceExhausted,
        FailureKind::InvalidInput => tonic::Code::InvalidArgument,
        FailureKind::Timeout | FailureKind::Unavailable | FailureKind::Other => {
            tonic::Code::Unknown
        }
    }
}

/// `google.rpc.Status`, the envelope gRPC error details travel in.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

fn config_from(request: &pulumirpc::ConfigureRequest) -> Result<ProviderConfig, Status> {
    let json = match &request.args {
        Some(args) => to_typed(&decode(Some(args))?).json,
        None => serde_json::Value::Object(
            request
                .variables
                .iter()
                .map(|(key, value)| {
                    let key = key.rsplit(':').next().unwrap_or(key).to_string();
                    (key, serde_json::Value::String(value.clone()))
                })
                .collect(),
        ),
    };
    ProviderConfig::from_json(&json).map_err(|failures| {
        let reasons: Vec<String> = failures
            .iter()
            .map(|f| format!("securepipeline:{}: {}", f.property, f.reason))
            .collect();
        Status::invalid_argument(reasons.join("; "))
    })
}

#[tonic::async_trait]
impl ResourceProvider for Provider {
    async fn handshake(
        &self,
        request: Request<pulumirpc::ProviderHandshakeRequest>,
    ) -> Result<Response<pulumirpc::ProviderHandshakeResponse>, Status> {
        let request = request.into_inner();
        if !request.engine_address.is_empty() {
            self.log
                .connect(&request.engine_address)
                .map_err(Status::invalid_argument)?;
        }
        Ok(Response::new(pulumirpc::ProviderHandshakeResponse {
            accept_secrets: true,
            accept_resources: true,
            accept_outputs: true,
            ..Default::default()
        }))
    }

    async fn get_plugin_info(
        &self,
        _request: Request<()>,
    ) -> Result<Response<pulumirpc::PluginInfo>, Status> {
        Ok(Response::new(pulumirpc::PluginInfo {
            version: self.version.clone(),
        }))
    }

    async fn get_schema(
        &self,
        _request: Request<pulumirpc::GetSchemaRequest>,
    ) -> Result<Response<pulumirpc::GetSchemaResponse>, Status> {
        let schema = serde_json::to_string(&schema::served_schema(&self.version))
            .map_err(|err| Status::internal(err.to_string()))?;
        Ok(Response::new(pulumirpc::GetSchemaResponse { schema }))
    }

    async fn check_config(
        &self,
        request: Request<pulumirpc::CheckRequest>,
    ) -> Result<Response<pulumirpc::CheckResponse>, Status> {
        let request = request.into_inner();
        let news = request.news.clone();
        let config = decode(news.as_ref())?;
        let failures = match ProviderConfig::from_json(&to_typed(&config).json) {
            Ok(_) => Vec::new(),
            Err(failures) => failures,
        };
        Ok(Response::new(pulumirpc::CheckResponse {
            inputs: news,
            failures: failures_to_proto(failures, &SecretValues::of(&config)),
        }))
    }

    async fn diff_config(
        &self,
        request: Request<pulumirpc::DiffRequest>,
    ) -> Result<Response<pulumirpc::DiffResponse>, Status> {
        let request = request.into_inner();
        let olds = decode(request.old_inputs.as_ref().or(request.olds.as_ref()))?;
        let news = decode(request.news.as_ref())?;
        let diff = diff_inputs(
            &to_typed(&olds).json,
            &to_typed(&news).json,
            CONFIG_REPLACE_KEYS,
        );
        Ok(Response::new(diff_to_proto(diff)))
    }

    async fn configure(
        &self,
        request: Request<pulumirpc::ConfigureRequest>,
    ) -> Result<Response<pulumirpc::ConfigureResponse>, Status> {
        let config = config_from(request.get_ref())?;
        let context = self
            .cancellable(async {
                config.connect().await.map_err(|err| match err {
                    ConnectError::Aws(failure) => {
                        Status::new(grpc_code(failure.kind), failure.to_string())
                    }
                    ConnectError::Config(reason) => Status::failed_precondition(reason),
                })
            })
            .await?;
        tracing::debug!(account = %context.account_id, region = %context.region, "configured");
        match self.aws.write() {
            Ok(mut slot) => *slot = Some(Arc::new(context)),
            Err(poisoned) => *poisoned.into_inner() = Some(Arc::new(context)),
        }
        Ok(Response::new(pulumirpc::ConfigureResponse {
            accept_secrets: true,
            supports_preview: true,
            accept_resources: true,
            accept_outputs: true,
            ..Default::default()
        }))
    }

    async fn check(
        &self,
        request: Request<pulumirpc::CheckRequest>,
    ) -> Result<Response<pulumirpc::CheckResponse>, Status> {
        let request = request.into_inner();
        let (type_token, name) = resolve(&request.r#type, &request.name, &request.urn);
        let handler = self.handler(type_token)?;
        let olds = request.olds.as_ref().map(|o| decode(Some(o))).transpose()?;
        let olds = olds.filter(|o| !o.is_empty());
        let news = decode(request.news.as_ref())?;
        let aws = self.aws();
        let ctx = CheckContext {
            name,
            random_seed: &request.random_seed,
            aws: aws.as_deref(),
        };
        let response = match handler.check(&ctx, olds.as_ref(), &news) {
            Ok(inputs) => pulumirpc::CheckResponse {
                inputs: Some(encode_struct(&inputs)),
                failures: Vec::new(),
            },
            Err(failures) => pulumirpc::CheckResponse {
                inputs: request.news,
                failures: failures_to_proto(failures, &SecretValues::of(&news)),
            },
        };
        Ok(Response::new(response))
    }

    async fn diff(
        &self,
        request: Request<pulumirpc::DiffRequest>,
    ) -> Result<Response<pulumirpc::DiffResponse>, Status> {
        let request = request.into_inner();
        let (type_token, _) = resolve(&request.r#type, &request.name, &request.urn);
        let handler = self.handler(type_token)?;
        let olds = decode(request.old_inputs.as_ref().or(request.olds.as_ref()))?;
        let news = decode(request.news.as_ref())?;
        Ok(Response::new(diff_to_proto(handler.diff(&olds, &news))))
    }

    async fn create(
        &self,
        request: Request<pulumirpc::CreateRequest>,
    ) -> Result<Response<pulumirpc::CreateResponse>, Status> {
        let request = request.into_inner();
        let (type_token, _) = resolve(&request.r#type, &request.name, &request.urn);
        let handler = self.handler(type_token)?;
        let inputs = decode(request.properties.as_ref())?;
        let aws = self.configured()?;
        let ctx = OpContext {
            aws: &aws,
            urn: &request.urn,
            log: &self.log,
        };
        let (id, state) = self
            .to_completion(async {
                handler
                    .create(&ctx, &inputs, request.preview, deadline(request.timeout))
                    .await
                    .map_err(|err| error_to_status(err, &inputs))
            })
            .await?;
        Ok(Response::new(pulumirpc::CreateResponse {
            id,
            properties: Some(encode_struct(&state)),
        }))
    }

    async fn read(
        &self,
        request: Request<pulumirpc::ReadRequest>,
    ) -> Result<Response<pulumirpc::ReadResponse>, Status> {
        let request = request.into_inner();
        let (type_token, _) = resolve(&request.r#type, &request.name, &request.urn);
        let handler = self.handler(type_token)?;
        let inputs = decode(request.inputs.as_ref())?;
        let state = decode(request.properties.as_ref())?;
        let aws = self.configured()?;
        let ctx = OpContext {
            aws: &aws,
            urn: &request.urn,
            log: &self.log,
        };
        let found = self
            .cancellable(async {
                handler
                    .read(&ctx, &request.id, &inputs, &state)
                    .await
                    .map_err(|err| error_to_status(err, &inputs))
            })
            .await?;
        let response = match found {
            Some((inputs, state)) => pulumirpc::ReadResponse {
                id: request.id,
                properties: Some(encode_struct(&state)),
                inputs: Some(encode_struct(&inputs)),
                ..Default::default()
            },
            // An empty id tells the engine the resource is gone.
            None => pulumirpc::ReadResponse::default(),
        };
        Ok(Response::new(response))
    }

    async fn update(
        &self,
        request: Request<pulumirpc::UpdateRequest>,
    ) -> Result<Response<pulumirpc::UpdateResponse>, Status> {
        let request = request.into_inner();
        let (type_token, _) = resolve(&request.r#type, &request.name, &request.urn);
        let handler = self.handler(type_token)?;
        let state = decode(request.olds.as_ref())?;
        let old_inputs = match &request.old_inputs {
            Some(old_inputs) => decode(Some(old_inputs))?,
            None => state.clone(),
        };
        let news = decode(request.news.as_ref())?;
        let aws = self.configured()?;
        let ctx = OpContext {
            aws: &aws,
            urn: &request.urn,
            log: &self.log,
        };
        let properties = self
            .to_completion(async {
                handler
                    .update(
                        &ctx,
                        &request.id,
                        &old_inputs,
                        &news,
                        &state,
                        request.preview,
                        deadline(request.timeout),
                    )
                    .await
                    .map_err(|err| error_to_status(err, &news))
            })
            .await?;
        Ok(Response::new(pulumirpc::UpdateResponse {
            properties: Some(encode_struct(&properties)),
        }))
    }

    async fn delete(
        &self,
        request: Request<pulumirpc::DeleteRequest>,
    ) -> Result<Response<()>, Status> {
        let request = request.into_inner();
        let (type_token, _) = resolve(&request.r#type, &request.name, &request.urn);
        let handler = self.handler(type_token)?;
        let state = decode(request.properties.as_ref())?;
        let inputs = decode(request.old_inputs.as_ref())?;
        let aws = self.configured()?;
        let ctx = OpContext {
            aws: &aws,
            urn: &request.urn,
            log: &self.log,
        };
        self.to_completion(async {
            handler
                .delete(
                    &ctx,
                    &request.id,
                    &inputs,
                    &state,
                    deadline(request.timeout),
                )
                .await
                .map_err(|err| error_to_status(err, &inputs))
        })
        .await?;
        Ok(Response::new(()))
    }

    async fn construct(
        &self,
        request: Request<pulumirpc::ConstructRequest>,
    ) -> Result<Response<pulumirpc::ConstructResponse>, Status> {
        let request = request.into_inner();
        if request.r#type != schema::COMPONENT_TYPE {
            return Err(Status::invalid_argument(format!(
                "unknown component type `{}`",
                request.r#type
            )));
        }
        let aws = self.aws();
        let response = self
            .cancellable(component::construct(request, aws, &self.version, &self.log))
            .await?;
        Ok(Response::new(response))
    }

    async fn cancel(&self, _request: Request<()>) -> Result<Response<()>, Status> {
        self.cancel.cancel();
        Ok(Response::new(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::value::PropertyValue;

    #[test]
    fn parses_type_and_name_from_urns() {
        assert_eq!(
            parse_urn("urn:pulumi:dev::app::securepipeline:index:SecurePipeline$securepipeline:aws:LogGroup::app-build"),
            ("securepipeline:aws:LogGroup", "app-build")
        );
        assert_eq!(
            parse_urn("urn:pulumi:dev::app::securepipeline:aws:Role::r::with::colons"),
            ("securepipeline:aws:Role", "r::with::colons")
        );
    }

    fn aws_failure(kind: FailureKind) -> ResourceError {
        ResourceError::Aws(crate::aws::failure::AwsFailure {
            operation: "creating KMS key alias/app".into(),
            code: Some("SomeCode".into()),
            message: "AWS said no".into(),
            request_id: Some("req-1".into()),
            kind,
            advice: None,
        })
    }

    #[test]
    fn aws_failures_reach_the_engine_with_a_fitting_code() {
        let cases = [
            (FailureKind::AccessDenied, tonic::Code::PermissionDenied),
            (FailureKind::NotFound, tonic::Code::NotFound),
            (FailureKind::AlreadyExists, tonic::Code::AlreadyExists),
            (FailureKind::Conflict, tonic::Code::FailedPrecondition),
            (FailureKind::Throttled, tonic::Code::ResourceExhausted),
            (FailureKind::InvalidInput, tonic::Code::InvalidArgument),
            (FailureKind::Timeout, tonic::Code::Unknown),
            (FailureKind::Unavailable, tonic::Code::Unknown),
            (FailureKind::Other, tonic::Code::Unknown),
        ];
        for (kind, code) in cases {
            let status = error_to_status(aws_failure(kind), &PropertyMap::new());
            assert_eq!(status.code(), code, "{kind:?}");
            assert_eq!(
                status.message(),
                "creating KMS key alias/app: SomeCode: AWS said no (request id: req-1)"
            );
        }
    }

    #[test]
    fn aws_failures_never_echo_a_secret_input() {
        let mut inputs = PropertyMap::new();
        inputs.insert(
            "token".into(),
            PropertyValue::Secret(Box::new(PropertyValue::String("AWS said no".into()))),
        );
        let status = error_to_status(aws_failure(FailureKind::InvalidInput), &inputs);
        assert!(!status.message().contains("AWS said no"), "{status:?}");
    }

    #[test]
    fn an_engine_timeout_is_a_deadline_and_none_is_none() {
        assert_eq!(deadline(0.0), None);
        assert_eq!(deadline(-1.0), None);
        assert_eq!(deadline(f64::NAN), None);
        let before = tokio::time::Instant::now();
        let due = deadline(420.0).unwrap();
        let after = tokio::time::Instant::now();
        let timeout = std::time::Duration::from_secs(420);
        assert!(due >= before + timeout && due <= after + timeout);
    }

    #[test]
    fn partial_failures_carry_init_failed_details() {
        let status = error_to_status(
            ResourceError::Partial {
                id: "bucket-1".into(),
                state: serde_json::json!({"name": "bucket-1"}),
                cause: Box::new(ResourceError::Failed("encryption could not be set".into())),
            },
            &PropertyMap::new(),
        );
        let envelope = RpcStatus::decode(status.details()).unwrap();
        assert_eq!(
            envelope.details[0].type_url,
            "type.googleapis.com/pulumirpc.ErrorResourceInitFailed"
        );
        let details =
            pulumirpc::ErrorResourceInitFailed::decode(envelope.details[0].value.as_slice())
                .unwrap();
        assert_eq!(details.id, "bucket-1");
        assert_eq!(details.reasons, vec!["encryption could not be set"]);
        assert!(details.refresh_before_update);
        assert_eq!(status.code(), tonic::Code::Unknown);
    }

    #[test]
    fn partial_failures_keep_the_code_of_the_aws_failure_that_stopped_them() {
        let status = error_to_status(
            ResourceError::Partial {
                id: "key-1".into(),
                state: serde_json::json!({"keyId": "key-1"}),
                cause: Box::new(aws_failure(FailureKind::AccessDenied)),
            },
            &PropertyMap::new(),
        );
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert_eq!(
            status.message(),
            "creating KMS key alias/app: SomeCode: AWS said no (request id: req-1)"
        );
        let envelope = RpcStatus::decode(status.details()).unwrap();
        let details =
            pulumirpc::ErrorResourceInitFailed::decode(envelope.details[0].value.as_slice())
                .unwrap();
        assert_eq!(details.id, "key-1");
    }

    #[test]
    fn partial_failures_keep_secret_inputs_secret() {
        let mut inputs = PropertyMap::new();
        inputs.insert(
            "endpoint".into(),
            PropertyValue::Secret(Box::new(PropertyValue::String("oncall@example.com".into()))),
        );
        let status = error_to_status(
            ResourceError::Partial {
                id: "topic-1".into(),
                state: serde_json::json!({"endpoint": "oncall@example.com", "arn": "arn"}),
                cause: Box::new(ResourceError::Failed("the policy could not be set".into())),
            },
            &inputs,
        );
        let envelope = RpcStatus::decode(status.details()).unwrap();
        let details =
            pulumirpc::ErrorResourceInitFailed::decode(envelope.details[0].value.as_slice())
                .unwrap();
        let properties =
            crate::protocol::value::decode_struct(details.properties.as_ref().unwrap()).unwrap();
        assert!(
            matches!(properties["endpoint"], PropertyValue::Secret(_)),
            "{properties:?}"
        );
        assert!(matches!(properties["arn"], PropertyValue::String(_)));
    }
}
