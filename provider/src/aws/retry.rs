//! Retries for AWS calls: only on named transient errors, with exponential
//! backoff bounded in total time, reporting progress to the engine.

use std::time::Duration;

use aws_sdk_sts::error::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tokio::time::Instant;

use crate::engine_log::EngineLog;

/// An error worth waiting out.
#[derive(Debug, Clone, Copy)]
pub enum Transient {
    /// Request rate exceeded.
    Throttling,
    /// The service failed (HTTP 5xx) or could not be reached.
    ServerError,
    /// A just-created IAM role or policy is not yet visible to the service
    /// (eventual consistency); matched by error code and message text.
    Propagation {
        code: &'static str,
        message_contains: &'static str,
    },
}

const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "RequestThrottled",
    "PriorRequestNotComplete",
];

/// How long and how often to retry.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub give_up_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
            give_up_after: Duration::from_secs(120),
        }
    }
}

/// Where to report that a call is being retried.
#[derive(Clone, Copy)]
pub struct Progress<'a> {
    pub log: &'a EngineLog,
    pub urn: &'a str,
}

/// `code: message` of an AWS error, or the transport failure.
pub fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            match (inner.code(), inner.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_string(),
                _ => inner.to_string(),
            }
        }
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}

/// The error code AWS returned, if the call reached AWS.
pub fn error_code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

/// True when AWS answered with one of `codes`.
pub fn is_code<E, R>(err: &SdkError<E, R>, codes: &[&str]) -> bool
where
    E: ProvideErrorMetadata,
{
    error_code(err).is_some_and(|code| codes.contains(&code))
}

fn is_transient<E, R>(err: &SdkError<E, R>, retry_on: &[Transient]) -> bool
where
    E: ProvideErrorMetadata,
    R: HttpStatus,
{
    retry_on.iter().any(|rule| match (rule, err) {
        (Transient::Throttling, SdkError::ServiceError(service)) => service
            .err()
            .code()
            .is_some_and(|code| THROTTLING_CODES.contains(&code)),
        (Transient::ServerError, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_)) => true,
        (Transient::ServerError, SdkError::ResponseError(_)) => true,
        (Transient::ServerError, SdkError::ServiceError(service)) => {
            service.raw().status_code() >= 500
        }
        (
            Transient::Propagation {
                code,
                message_contains,
            },
            SdkError::ServiceError(service),
        ) => {
            service.err().code() == Some(*code)
                && service
                    .err()
                    .message()
                    .is_some_and(|message| message.contains(message_contains))
        }
        _ => false,
    })
}

/// Responses that carry an HTTP status.
pub trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// Calls `op` until it succeeds, fails with an error not in `retry_on`, or
/// `backoff.give_up_after` has passed. Each wait is reported to the engine.
pub async fn retry<T, E, R, F, Fut>(
    progress: Progress<'_>,
    action: &str,
    retry_on: &[Transient],
    backoff: Backoff,
    mut op: F,
) -> Result<T, SdkError<E, R>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, R>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpStatus,
{
    let deadline = Instant::now() + backoff.give_up_after;
    let mut delay = backoff.first_delay;
    let mut attempt = 1u32;
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(err) if is_transient(&err, retry_on) && Instant::now() + delay < deadline => {
                progress.log.status(
                    progress.urn,
                    &format!(
                        "{action}: waiting for AWS (attempt {attempt}): {}",
                        describe(&err)
                    ),
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(backoff.max_delay);
                attempt += 1;
            }
            Err(err) => return Err(err),
        }
    }
}
