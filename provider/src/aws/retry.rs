//! Retry policy for every AWS call, in one place.
//!
//! Two layers. The SDK clients retry throttling, 5xx answers, timeouts and
//! resets of every call themselves ([`sdk_retry_config`]), bounded by
//! attempt and operation timeouts ([`sdk_timeouts`]): that is safe for reads,
//! puts, tags and deletes, which do the same thing when repeated. Creates
//! that are not idempotent opt out ([`once`]) and go through
//! [`create_once`], which sends them again only when AWS said it did nothing,
//! and after an answer that leaves it open (a timeout, a reset, a 5xx) first
//! looks for the resource by the ownership marker the create tagged it with.
//! [`retry`] waits out errors that are not transient to the SDK but are to
//! us (a just-created role or key not yet visible), with a deadline and
//! jitter, on the [`Schedule`] their kind of error calls for.

use std::time::Duration;

use aws_sdk_sts::error::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use rand::Rng;
use tokio::time::Instant;

use super::failure::AwsFailure;
use crate::engine_log::EngineLog;

/// Attempts per call the SDK makes on throttling and transient failures.
const SDK_MAX_ATTEMPTS: u32 = 10;

/// The SDK's own retries of calls that are safe to repeat: exponential
/// backoff with full jitter, capped at 20 s a wait.
pub fn sdk_retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(SDK_MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(500))
        .with_max_backoff(Duration::from_secs(20))
}

/// No call waits forever: connecting, each attempt, and the whole operation
/// with its retries are bounded.
pub fn sdk_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .operation_attempt_timeout(Duration::from_secs(60))
        .operation_timeout(Duration::from_secs(300))
        .build()
}

/// For one call that must not be repeated blindly: the SDK sends it once and
/// [`create_once`] decides what happens after a failure. Used as
/// `.customize().config_override(Builder::default().retry_config(once()))`.
pub fn once() -> RetryConfig {
    RetryConfig::disabled()
}

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

/// Errors every AWS call may wait out.
pub const AWS_TRANSIENT: [Transient; 2] = [Transient::Throttling, Transient::ServerError];

pub(crate) const THROTTLING_CODES: &[&str] = &[
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

impl Backoff {
    /// The same, giving up by `deadline` at the latest: the engine's
    /// timeout of the operation bounds every wait within it.
    pub fn until(self, deadline: Option<Instant>) -> Self {
        let Some(deadline) = deadline else {
            return self;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        Self {
            give_up_after: self.give_up_after.min(left),
            ..self
        }
    }
}

/// How often a call refused because something just created has not
/// propagated yet is sent again. Such a refusal costs AWS no work and ends
/// at a moment no backoff can predict (some 5-10 s after CreateRole for a
/// service assuming the role), so a short fixed interval notices it within
/// half a second, where a doubling backoff would sleep seconds past it.
/// Jittered to between half and all of it.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// What a failed call waits before it is sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// AWS refused the rate or failed: back off, doubling each time.
    Backoff,
    /// Something just created is not visible yet: poll at
    /// [`POLL_INTERVAL`].
    Poll,
}

impl Transient {
    fn wait(self) -> Wait {
        match self {
            Self::Throttling | Self::ServerError => Wait::Backoff,
            Self::Propagation { .. } => Wait::Poll,
        }
    }
}

/// The waits between the attempts of one call, by the kind of each error.
/// Polls do not grow the backoff, and backoffs do not slow the polls: a
/// call throttled once while waiting for a role keeps polling the role.
#[derive(Debug)]
pub struct Schedule {
    backoff: Backoff,
    next_backoff: Duration,
    deadline: Instant,
}

impl Schedule {
    pub fn new(backoff: Backoff, start: Instant) -> Self {
        Self {
            backoff,
            next_backoff: backoff.first_delay,
            deadline: start + backoff.give_up_after,
        }
    }

    /// The longest wait (before jitter) after an error calling for `wait`
    /// at `now`, or `None` when it would end past the deadline: then the
    /// error is final.
    pub fn next(&mut self, wait: Wait, now: Instant) -> Option<Duration> {
        let delay = match wait {
            Wait::Poll => POLL_INTERVAL,
            Wait::Backoff => self.next_backoff,
        };
        if now + delay >= self.deadline {
            return None;
        }
        if wait == Wait::Backoff {
            self.next_backoff = (self.next_backoff * 2).min(self.backoff.max_delay);
        }
        Some(delay)
    }
}

/// Where to report that a call is being retried.
#[derive(Clone, Copy)]
pub struct Progress<'a> {
    pub log: &'a EngineLog,
    pub urn: &'a str,
}

impl Progress<'_> {
    /// Tells the engine that a call failed transiently and is waited out.
    fn waiting(&self, attempt: u32, failure: &AwsFailure) {
        self.log.status(
            self.urn,
            &format!("waiting for AWS (attempt {attempt}): {failure}"),
        );
    }
}

/// The error code AWS returned, if the call reached AWS.
fn error_code<E, R>(err: &SdkError<E, R>) -> Option<&str>
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
    R: HttpResponse,
{
    transient_wait(err, retry_on).is_some()
}

/// How to wait out `err`, when it is one of `retry_on`.
fn transient_wait<E, R>(err: &SdkError<E, R>, retry_on: &[Transient]) -> Option<Wait>
where
    E: ProvideErrorMetadata,
    R: HttpResponse,
{
    let matches = |rule: &Transient| match (rule, err) {
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
    };
    retry_on
        .iter()
        .find(|rule| matches(rule))
        .map(|rule| rule.wait())
}

/// What an error needs from the raw HTTP response AWS sent.
pub trait HttpResponse {
    fn status_code(&self) -> u16;
    /// The request id header, when AWS answered.
    fn request_id(&self) -> Option<&str>;
}

impl HttpResponse for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }

    fn request_id(&self) -> Option<&str> {
        aws_sdk_sts::operation::RequestId::request_id(self)
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
    R: std::fmt::Debug + HttpResponse,
{
    let mut schedule = Schedule::new(backoff, Instant::now());
    let mut attempt = 1u32;
    loop {
        let err = match op().await {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        let delay =
            transient_wait(&err, retry_on).and_then(|wait| schedule.next(wait, Instant::now()));
        let Some(delay) = delay else {
            return Err(err);
        };
        progress.waiting(attempt, &AwsFailure::of(action, &err));
        tokio::time::sleep(jittered(delay)).await;
        attempt += 1;
    }
}

/// Between half the delay and all of it, so that calls failing together do
/// not all come back at once.
fn jittered(delay: Duration) -> Duration {
    let half = delay / 2;
    half + half.mul_f64(rand::rng().random::<f64>())
}

/// A create that did not fail: it made the resource, or found the one an
/// earlier attempt of this same create made.
#[derive(Debug)]
pub enum Created<T, F> {
    New(T),
    Found(F),
}

/// Why a create failed.
#[derive(Debug)]
pub enum CreateError {
    /// The name is taken by a resource this create did not make (it lacks
    /// this create's ownership marker). Never adopted.
    Taken,
    /// AWS refused, or kept failing until the deadline, or looking for
    /// what an earlier attempt made failed; the operation names the call.
    Aws(AwsFailure),
}

impl std::fmt::Display for CreateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Taken => f.write_str("the name is taken by a resource this create did not make"),
            Self::Aws(failure) => failure.fmt(f),
        }
    }
}

/// What AWS answered, as far as a repeat of the call is concerned.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// AWS said it did nothing (throttling, a role still propagating): send
    /// the call again after waiting as said.
    Refused(Wait),
    /// No answer, or a 5xx: the call may or may not have taken effect.
    Unknown,
    /// The name is taken (by this create's earlier attempt, or by another).
    NameTaken,
    /// Any other error: final.
    Failed,
}

fn answer<E, R>(err: &SdkError<E, R>, retry_on: &[Transient], name_taken: &[&str]) -> Answer
where
    E: ProvideErrorMetadata,
    R: HttpResponse,
{
    let refusals: Vec<Transient> = retry_on
        .iter()
        .copied()
        .filter(|rule| !matches!(rule, Transient::ServerError))
        .collect();
    if let Some(wait) = transient_wait(err, &refusals) {
        Answer::Refused(wait)
    } else if is_code(err, name_taken) {
        Answer::NameTaken
    } else if is_transient(err, &[Transient::ServerError]) {
        Answer::Unknown
    } else {
        Answer::Failed
    }
}

/// Runs a create that AWS does not make idempotent, so that one create
/// makes at most one resource and never adopts another's.
///
/// `op` must carry this create's ownership marker (a tag with a token only
/// this create knows) and be sent without SDK retries ([`once`]);
/// `find_own` looks the resource up by that marker. Errors in `retry_on`
/// other than [`Transient::ServerError`] are refusals and are waited out;
/// after a timeout, reset or 5xx the resource is looked for before the call
/// is sent again; `name_taken` codes (e.g. `EntityAlreadyExists`) after
/// such an unknown answer mean our own earlier attempt if `find_own` finds
/// it, and [`CreateError::Taken`] otherwise.
#[allow(clippy::too_many_arguments)]
pub async fn create_once<T, E, R, F, Fut, Found, L, LFut>(
    progress: Progress<'_>,
    action: &str,
    retry_on: &[Transient],
    name_taken: &[&str],
    backoff: Backoff,
    mut op: F,
    mut find_own: L,
) -> Result<Created<T, Found>, CreateError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, R>>>,
    L: FnMut() -> LFut,
    LFut: std::future::Future<Output = Result<Option<Found>, AwsFailure>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpResponse,
{
    let mut schedule = Schedule::new(backoff, Instant::now());
    let mut attempt = 1u32;
    // Whether an earlier attempt may have made the resource.
    let mut maybe_made = false;
    loop {
        let err = match op().await {
            Ok(value) => return Ok(Created::New(value)),
            Err(err) => err,
        };
        let answer = answer(&err, retry_on, name_taken);
        if answer == Answer::Unknown {
            maybe_made = true;
        }
        if matches!(answer, Answer::Unknown | Answer::NameTaken) && maybe_made {
            if let Some(found) = find_own().await.map_err(CreateError::Aws)? {
                progress.log.status(
                    progress.urn,
                    &format!("{action}: found what the attempt whose answer was lost created"),
                );
                return Ok(Created::Found(found));
            }
        }
        let wait = match answer {
            Answer::NameTaken => return Err(CreateError::Taken),
            Answer::Failed => return Err(CreateError::Aws(AwsFailure::of(action, &err))),
            Answer::Refused(wait) => wait,
            Answer::Unknown => Wait::Backoff,
        };
        let Some(delay) = schedule.next(wait, Instant::now()) else {
            return Err(CreateError::Aws(AwsFailure::of(action, &err)));
        };
        progress.waiting(attempt, &AwsFailure::of(action, &err));
        tokio::time::sleep(jittered(delay)).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;

    type Error = SdkError<GetCallerIdentityError, Response>;

    fn aws_error(status: u16, code: &str) -> Error {
        let err = GetCallerIdentityError::generic(ErrorMetadata::builder().code(code).build());
        let status = StatusCode::try_from(status).expect("a valid status");
        SdkError::service_error(err, Response::new(status, SdkBody::empty()))
    }

    fn lost() -> Error {
        SdkError::timeout_error("the answer never came")
    }

    const PROPAGATION: Transient = Transient::Propagation {
        code: "InvalidInputException",
        message_contains: "sts:AssumeRole",
    };
    const RETRY_ON: [Transient; 3] = [Transient::Throttling, Transient::ServerError, PROPAGATION];

    /// Runs `create_once` over scripted answers; returns the outcome, how
    /// often the call was sent and how often the resource was looked for.
    async fn run(
        answers: Vec<Result<&'static str, Error>>,
        found: Option<&'static str>,
    ) -> (
        Result<Created<&'static str, &'static str>, CreateError>,
        usize,
        usize,
    ) {
        let log = EngineLog::default();
        let progress = Progress {
            log: &log,
            urn: "urn",
        };
        let answers = std::cell::RefCell::new(answers.into_iter());
        let (sent, looked) = (Cell::new(0), Cell::new(0));
        let outcome = create_once(
            progress,
            "creating",
            &RETRY_ON,
            &["EntityAlreadyExists"],
            Backoff::default(),
            || {
                sent.set(sent.get() + 1);
                let answer = answers
                    .borrow_mut()
                    .next()
                    .expect("no more answers scripted");
                async move { answer }
            },
            || {
                looked.set(looked.get() + 1);
                async move { Ok(found) }
            },
        )
        .await;
        (outcome, sent.get(), looked.get())
    }

    #[tokio::test]
    async fn a_lost_answer_finds_what_it_made_instead_of_making_another() {
        let (outcome, sent, looked) = run(vec![Err(lost())], Some("mine")).await;
        assert!(matches!(outcome, Ok(Created::Found("mine"))), "{outcome:?}");
        assert_eq!((sent, looked), (1, 1));
    }

    #[tokio::test]
    async fn after_a_lost_answer_a_taken_name_is_ours_only_with_our_marker() {
        let (outcome, sent, looked) = run(
            vec![
                Err(aws_error(503, "ServiceUnavailable")),
                Err(aws_error(409, "EntityAlreadyExists")),
            ],
            None,
        )
        .await;
        assert!(matches!(outcome, Err(CreateError::Taken)), "{outcome:?}");
        assert_eq!((sent, looked), (2, 2));
    }

    #[tokio::test]
    async fn a_name_taken_at_the_first_attempt_is_never_adopted() {
        let (outcome, sent, looked) =
            run(vec![Err(aws_error(409, "EntityAlreadyExists"))], Some("x")).await;
        assert!(matches!(outcome, Err(CreateError::Taken)), "{outcome:?}");
        assert_eq!((sent, looked), (1, 0));
    }

    #[tokio::test]
    async fn refusals_are_sent_again_without_looking() {
        let (outcome, sent, looked) = run(
            vec![
                Err(aws_error(400, "ThrottlingException")),
                Err(SdkError::service_error(
                    GetCallerIdentityError::generic(
                        ErrorMetadata::builder()
                            .code("InvalidInputException")
                            .message(
                                "CodeBuild is not authorized to perform: sts:AssumeRole on arn",
                            )
                            .build(),
                    ),
                    Response::new(StatusCode::try_from(400).expect("400"), SdkBody::empty()),
                )),
                Ok("made"),
            ],
            None,
        )
        .await;
        assert!(matches!(outcome, Ok(Created::New("made"))), "{outcome:?}");
        assert_eq!((sent, looked), (3, 0));
    }

    #[tokio::test]
    async fn nothing_found_after_a_lost_answer_sends_again_and_other_errors_are_final() {
        let (outcome, sent, looked) = run(vec![Err(lost()), Ok("made")], None).await;
        assert!(matches!(outcome, Ok(Created::New("made"))), "{outcome:?}");
        assert_eq!((sent, looked), (2, 1));

        let (outcome, sent, _) = run(vec![Err(aws_error(400, "ValidationException"))], None).await;
        assert!(
            matches!(&outcome, Err(CreateError::Aws(failure)) if failure.code.as_deref() == Some("ValidationException")),
            "{outcome:?}"
        );
        assert_eq!(sent, 1);
    }

    #[tokio::test]
    async fn no_wait_starts_past_the_deadline() {
        let log = EngineLog::default();
        let progress = Progress {
            log: &log,
            urn: "urn",
        };
        let sent = Cell::new(0);
        let backoff = Backoff::default().until(Some(Instant::now()));
        let outcome: Result<(), Error> = retry(progress, "reading", &RETRY_ON, backoff, || {
            sent.set(sent.get() + 1);
            async { Err(aws_error(400, "ThrottlingException")) }
        })
        .await;
        assert!(outcome.is_err());
        assert_eq!(sent.get(), 1);
        // Without a deadline the same answers are waited out.
        assert_eq!(
            Backoff::default().until(None).give_up_after,
            Duration::from_secs(120)
        );
    }

    fn propagation_error() -> Error {
        SdkError::service_error(
            GetCallerIdentityError::generic(
                ErrorMetadata::builder()
                    .code("InvalidInputException")
                    .message("CodeBuild is not authorized to perform: sts:AssumeRole on arn")
                    .build(),
            ),
            Response::new(StatusCode::try_from(400).expect("400"), SdkBody::empty()),
        )
    }

    /// The waits `schedule` gives for `errors` in turn, each attempt
    /// starting when the previous wait ends (the longest, unjittered).
    fn waits(schedule: &mut Schedule, start: Instant, errors: &[Wait]) -> Vec<Option<Duration>> {
        let mut now = start;
        errors
            .iter()
            .map(|wait| {
                let delay = schedule.next(*wait, now);
                now += delay.unwrap_or_default();
                delay
            })
            .collect()
    }

    #[test]
    fn each_error_is_waited_out_as_its_kind_says() {
        let kind = |err: &Error| transient_wait(err, &RETRY_ON);
        assert_eq!(kind(&propagation_error()), Some(Wait::Poll));
        assert_eq!(
            kind(&aws_error(400, "ThrottlingException")),
            Some(Wait::Backoff)
        );
        assert_eq!(
            kind(&aws_error(503, "ServiceUnavailable")),
            Some(Wait::Backoff)
        );
        assert_eq!(kind(&lost()), Some(Wait::Backoff));
        assert_eq!(kind(&aws_error(400, "ValidationException")), None);
        // A propagation error is retried only where the call names it.
        assert_eq!(transient_wait(&propagation_error(), &AWS_TRANSIENT), None);
    }

    #[test]
    fn a_role_still_propagating_is_polled_at_a_short_fixed_interval() {
        let start = Instant::now();
        let mut schedule = Schedule::new(Backoff::default(), start);
        // Ten seconds of a role not yet assumable: twenty polls, none
        // longer than the interval, so the call goes through at most half
        // a second after the role can be assumed.
        let polls = waits(&mut schedule, start, &[Wait::Poll; 20]);
        assert!(polls.iter().all(|d| *d == Some(POLL_INTERVAL)), "{polls:?}");
        assert!(POLL_INTERVAL <= Duration::from_millis(500));
    }

    #[test]
    fn throttling_backs_off_doubling_and_polls_neither_grow_nor_reset_it() {
        let start = Instant::now();
        let mut schedule = Schedule::new(Backoff::default(), start);
        let (poll, backoff) = (Wait::Poll, Wait::Backoff);
        let ms = |n: u64| Some(Duration::from_millis(n));
        assert_eq!(
            waits(
                &mut schedule,
                start,
                &[backoff, poll, poll, backoff, poll, backoff, backoff, backoff, backoff, backoff]
            ),
            [
                ms(500),
                ms(500),
                ms(500),
                ms(1000),
                ms(500),
                ms(2000),
                ms(4000),
                ms(8000),
                ms(10_000),
                ms(10_000)
            ]
        );
    }

    #[test]
    fn no_poll_or_backoff_is_scheduled_past_the_deadline() {
        let start = Instant::now();
        let backoff = Backoff {
            give_up_after: Duration::from_millis(1800),
            ..Backoff::default()
        };
        let mut schedule = Schedule::new(backoff, start);
        // 500 + 500 + 500 ms of polls, then neither a poll nor a backoff fits.
        let polls = waits(&mut schedule, start, &[Wait::Poll; 4]);
        assert_eq!(polls.iter().flatten().count(), 3, "{polls:?}");
        assert_eq!(polls[3], None);
        let after = start + Duration::from_millis(1500);
        assert_eq!(schedule.next(Wait::Backoff, after), None);
    }

    #[test]
    fn waits_are_jittered_within_half_to_all_of_the_delay() {
        let delay = Duration::from_millis(800);
        let waits: Vec<_> = (0..50).map(|_| jittered(delay)).collect();
        assert!(waits.iter().all(|w| *w >= delay / 2 && *w <= delay));
        assert!(waits.iter().any(|w| *w != waits[0]));
    }
}
