//! An AWS call that failed, kept as values (what we were doing, the AWS
//! error code, its message and request id) so that the engine gets a
//! fitting gRPC code and a user can quote the request id to AWS support.

use aws_sdk_sts::error::SdkError;
use aws_sdk_sts::operation::RequestId;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::retry::{HttpResponse, THROTTLING_CODES};

/// What kind of failure AWS reported, as far as the caller can act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The credentials may not do this (or are not valid).
    AccessDenied,
    /// The resource does not exist.
    NotFound,
    /// The name is taken.
    AlreadyExists,
    /// The resource is in a state that does not allow this now (in use,
    /// being modified by another call).
    Conflict,
    /// Request rate or a quota exceeded.
    Throttled,
    /// AWS rejected the request's parameters.
    InvalidInput,
    /// No answer in time: the call may or may not have taken effect.
    Timeout,
    /// AWS failed (5xx) or could not be reached.
    Unavailable,
    Other,
}

/// One failed AWS call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsFailure {
    /// What we were doing, e.g. `creating KMS key alias/app`.
    pub operation: String,
    /// The AWS error code, when AWS answered.
    pub code: Option<String>,
    pub message: String,
    /// The id AWS gave the request, when AWS answered.
    pub request_id: Option<String>,
    pub kind: FailureKind,
    /// What the user can do about it, when the caller knows (boxed: it is
    /// rare, and every failure carries the field).
    pub advice: Option<Box<str>>,
}

impl AwsFailure {
    pub fn of<E, R>(operation: impl Into<String>, err: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + HttpResponse,
    {
        let operation = operation.into();
        match err {
            SdkError::ServiceError(service) => {
                let inner = service.err();
                let code = inner.code().map(str::to_string);
                let message = match inner.message() {
                    Some(message) => message.to_string(),
                    None if code.is_some() => String::new(),
                    None => inner.to_string(),
                };
                // Query and XML protocols carry the id in the body, JSON ones in
                // a header.
                let request_id = inner
                    .meta()
                    .request_id()
                    .or_else(|| service.raw().request_id())
                    .map(str::to_string);
                let kind = classify(code.as_deref(), service.raw().status_code());
                Self {
                    operation,
                    code,
                    message,
                    request_id,
                    kind,
                    advice: None,
                }
            }
            SdkError::ResponseError(response) => Self {
                operation,
                code: None,
                message: transport_message(err),
                request_id: response.raw().request_id().map(str::to_string),
                kind: classify(None, response.raw().status_code()),
                advice: None,
            },
            SdkError::TimeoutError(_) => Self::unanswered(operation, err, FailureKind::Timeout),
            SdkError::DispatchFailure(_) => {
                Self::unanswered(operation, err, FailureKind::Unavailable)
            }
            _ => Self::unanswered(operation, err, FailureKind::Other),
        }
    }

    /// The same failure, named by what the caller was doing.
    pub fn during(self, operation: impl Into<String>) -> Self {
        Self {
            operation: operation.into(),
            ..self
        }
    }

    /// The same failure, with what the user can do about it.
    pub fn advise(self, advice: impl Into<String>) -> Self {
        Self {
            advice: Some(advice.into().into_boxed_str()),
            ..self
        }
    }

    /// True when AWS answered with one of `codes`.
    pub fn is(&self, codes: &[&str]) -> bool {
        self.code
            .as_deref()
            .is_some_and(|code| codes.contains(&code))
    }

    /// What AWS said (`code: message`), or why nothing was heard.
    pub fn reason(&self) -> String {
        match (&self.code, self.message.is_empty()) {
            (Some(code), true) => code.clone(),
            (Some(code), false) => format!("{code}: {}", self.message),
            (None, _) => self.message.clone(),
        }
    }

    fn unanswered<E, R>(operation: String, err: &SdkError<E, R>, kind: FailureKind) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        Self {
            operation,
            code: None,
            message: transport_message(err),
            request_id: None,
            kind,
            advice: None,
        }
    }
}

/// Why a call got no answer from AWS: the SDK's error and each of its
/// causes, since the outermost alone ("dispatch failure") says little.
fn transport_message<E, R>(err: &SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl std::fmt::Display for AwsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.operation, self.reason())?;
        if let Some(id) = &self.request_id {
            write!(f, " (request id: {id})")?;
        }
        if let Some(advice) = &self.advice {
            write!(f, "; {advice}")?;
        }
        Ok(())
    }
}

/// Classifies by AWS error code first (services disagree on HTTP statuses,
/// e.g. IAM answers a throttle with 400), then by HTTP status.
pub fn classify(code: Option<&str>, status: u16) -> FailureKind {
    if let Some(code) = code {
        if let Some(kind) = classify_code(code) {
            return kind;
        }
    }
    match status {
        401 | 403 => FailureKind::AccessDenied,
        404 => FailureKind::NotFound,
        409 => FailureKind::Conflict,
        429 => FailureKind::Throttled,
        400 | 422 => FailureKind::InvalidInput,
        504 => FailureKind::Timeout,
        500..=599 => FailureKind::Unavailable,
        _ => FailureKind::Other,
    }
}

fn classify_code(code: &str) -> Option<FailureKind> {
    const ACCESS_DENIED: &[&str] = &[
        "AccessDenied",
        "AccessDeniedException",
        "AuthorizationError",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
        "KMSAccessDeniedException",
    ];
    const CONFLICT: &[&str] = &[
        "ConflictException",
        "ConcurrentModification",
        "ConcurrentModificationException",
        "OperationAbortedException",
        "OperationAborted",
        "ResourceInUseException",
        "DeleteConflict",
        "KMSInvalidStateException",
        "InvalidStateException",
    ];
    let kind = if ACCESS_DENIED.contains(&code) {
        FailureKind::AccessDenied
    } else if THROTTLING_CODES.contains(&code)
        || code.starts_with("LimitExceeded")
        || code == "TooManyBuckets"
    {
        FailureKind::Throttled
    } else if CONFLICT.contains(&code) {
        FailureKind::Conflict
    } else if code.contains("AlreadyExists") || code == "BucketAlreadyOwnedByYou" {
        FailureKind::AlreadyExists
    } else if code.contains("NotFound") || code.starts_with("NoSuch") {
        FailureKind::NotFound
    } else if code.contains("Validation")
        || code.starts_with("Invalid")
        || code.starts_with("Malformed")
    {
        FailureKind::InvalidInput
    } else if matches!(
        code,
        "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "InternalFailure"
            | "InternalError"
            | "InternalServerError"
            | "ServiceFailure"
    ) {
        FailureKind::Unavailable
    } else if code == "RequestTimeout" || code == "RequestTimeoutException" {
        FailureKind::Timeout
    } else {
        return None;
    };
    Some(kind)
}

#[cfg(test)]
mod tests {
    use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;

    fn service_error(
        status: u16,
        code: &str,
        message: &str,
        header_id: Option<&str>,
    ) -> SdkError<GetCallerIdentityError, Response> {
        let err = GetCallerIdentityError::generic(
            ErrorMetadata::builder().code(code).message(message).build(),
        );
        let mut response = Response::new(
            StatusCode::try_from(status).expect("a valid status"),
            SdkBody::empty(),
        );
        if let Some(id) = header_id {
            response
                .headers_mut()
                .insert("x-amzn-requestid", id.to_string());
        }
        SdkError::service_error(err, response)
    }

    #[test]
    fn keeps_operation_code_message_and_request_id() {
        let err = service_error(
            400,
            "AccessDeniedException",
            "not authorized to perform kms:CreateKey",
            Some("req-123"),
        );
        let failure = AwsFailure::of("creating KMS key alias/app", &err);
        assert_eq!(failure.code.as_deref(), Some("AccessDeniedException"));
        assert_eq!(failure.request_id.as_deref(), Some("req-123"));
        assert_eq!(failure.kind, FailureKind::AccessDenied);
        assert_eq!(
            failure.to_string(),
            "creating KMS key alias/app: AccessDeniedException: not authorized to perform \
             kms:CreateKey (request id: req-123)"
        );
    }

    #[test]
    fn classifies_by_code_before_status() {
        let cases = [
            ("AccessDenied", 403, FailureKind::AccessDenied),
            ("AuthorizationError", 403, FailureKind::AccessDenied),
            ("NoSuchEntity", 404, FailureKind::NotFound),
            ("ResourceNotFoundException", 400, FailureKind::NotFound),
            ("EntityAlreadyExists", 409, FailureKind::AlreadyExists),
            ("BucketAlreadyExists", 409, FailureKind::AlreadyExists),
            (
                "ResourceAlreadyExistsException",
                400,
                FailureKind::AlreadyExists,
            ),
            (
                "ConcurrentModificationException",
                400,
                FailureKind::Conflict,
            ),
            ("Throttling", 400, FailureKind::Throttled),
            ("ThrottlingException", 400, FailureKind::Throttled),
            ("ValidationException", 400, FailureKind::InvalidInput),
            ("InvalidParameterValue", 400, FailureKind::InvalidInput),
            ("MalformedPolicyDocument", 400, FailureKind::InvalidInput),
            ("ServiceUnavailable", 503, FailureKind::Unavailable),
            ("LimitExceeded", 409, FailureKind::Throttled),
            ("SomethingNew", 500, FailureKind::Unavailable),
            ("SomethingNew", 418, FailureKind::Other),
        ];
        for (code, status, kind) in cases {
            assert_eq!(classify(Some(code), status), kind, "{code} {status}");
        }
    }

    #[test]
    fn a_call_without_an_answer_is_a_timeout_without_request_id() {
        let err: SdkError<GetCallerIdentityError, Response> =
            SdkError::timeout_error("the answer never came");
        let failure = AwsFailure::of("creating role app", &err);
        assert_eq!(failure.kind, FailureKind::Timeout);
        assert_eq!((&failure.code, &failure.request_id), (&None, &None));
        assert!(failure.to_string().starts_with("creating role app: "));
    }
}
