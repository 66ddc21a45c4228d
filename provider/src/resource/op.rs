//! One lifecycle operation of one resource: AWS in the resource's region,
//! the engine's deadline, and the only way a kind calls AWS, so that every
//! call is retried, bounded and reported the same way.

use std::future::Future;
use std::sync::Arc;

use aws_sdk_sts::error::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tokio::time::Instant;

use super::kind::AutoName;
use super::{OpContext, ResourceError};
use crate::aws::arn::Arns;
use crate::aws::failure::AwsFailure;
use crate::aws::retry::{
    self, create_once, Backoff, CreateError, Created, HttpResponse, Progress, Transient,
    AWS_TRANSIENT,
};
use crate::aws::{AwsContext, Clients};
use crate::engine_log::EngineLog;

/// What a kind's lifecycle methods get.
pub struct Op<'a> {
    pub aws: &'a AwsContext,
    pub urn: &'a str,
    pub log: &'a EngineLog,
    /// The resource's region: its `region` input, or the provider's.
    pub region: String,
    /// How the kind names its resources, and the name `check` chose (none
    /// for a resource the kind adopts).
    naming: Option<&'static AutoName>,
    name: Option<String>,
    clients: Arc<Clients>,
    /// When the engine wants the operation over (its custom timeout).
    deadline: Option<Instant>,
}

impl<'a> Op<'a> {
    /// An operation on a resource in `region` (the provider's when none).
    pub fn new(ctx: &OpContext<'a>, region: Option<&str>, deadline: Option<Instant>) -> Self {
        let region = region.unwrap_or(&ctx.aws.region).to_string();
        Self {
            aws: ctx.aws,
            urn: ctx.urn,
            log: ctx.log,
            clients: ctx.aws.clients_in(&region),
            region,
            naming: None,
            name: None,
            deadline,
        }
    }

    /// The same operation on a resource named as `naming` says, `name`.
    pub(super) fn named(self, naming: &'static AutoName, name: Option<String>) -> Self {
        Self {
            naming: Some(naming),
            name,
            ..self
        }
    }

    /// The resource's name, which `check` chose.
    pub fn name(&self) -> Result<&str, ResourceError> {
        self.name.as_deref().ok_or_else(|| {
            let property = self.naming.map_or("the name", |naming| naming.property);
            ResourceError::Failed(format!("{property} was not set by check"))
        })
    }

    /// Clients for the resource's region.
    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// ARNs in the resource's region, account and partition.
    pub fn arns(&self) -> Arns<'_> {
        Arns {
            partition: &self.aws.partition,
            account: &self.aws.account_id,
            region: &self.region,
        }
    }

    pub fn progress(&self) -> Progress<'_> {
        Progress {
            log: self.log,
            urn: self.urn,
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff::default().until(self.deadline)
    }

    /// A call that is safe to repeat (a read, a put, a tag): throttling and
    /// server errors are waited out until the deadline; a failure is named
    /// by `operation`, e.g. `reading role app-build-k3j9a0qz`.
    pub async fn call<T, E, R, F, Fut>(
        &self,
        operation: impl Into<String>,
        op: F,
    ) -> Result<T, AwsFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + HttpResponse,
    {
        self.call_waiting(operation, &[], op).await
    }

    /// [`Op::call`], also waiting out `propagation`: errors that say
    /// something just created is not visible to the service yet.
    pub async fn call_waiting<T, E, R, F, Fut>(
        &self,
        operation: impl Into<String>,
        propagation: &[Transient],
        op: F,
    ) -> Result<T, AwsFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + HttpResponse,
    {
        let operation = operation.into();
        let retry_on: Vec<Transient> = AWS_TRANSIENT.iter().chain(propagation).copied().collect();
        retry::retry(self.progress(), &operation, &retry_on, self.backoff(), op)
            .await
            .map_err(|err| AwsFailure::of(operation, &err))
    }

    /// A read of something that may not exist: `None` when AWS answers
    /// with one of `missing`.
    pub async fn find<T, E, R, F, Fut>(
        &self,
        operation: impl Into<String>,
        missing: &[&str],
        op: F,
    ) -> Result<Option<T>, AwsFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + HttpResponse,
    {
        match self.call(operation, op).await {
            Ok(found) => Ok(Some(found)),
            Err(failure) if failure.is(missing) => Ok(None),
            Err(failure) => Err(failure),
        }
    }

    /// A delete: done too when AWS answers with one of `gone`.
    pub async fn delete<T, E, R, F, Fut>(
        &self,
        operation: impl Into<String>,
        gone: &[&str],
        op: F,
    ) -> Result<(), AwsFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + HttpResponse,
    {
        self.find(operation, gone, op).await.map(drop)
    }

    /// A create AWS does not make idempotent, sent once per attempt (see
    /// [`retry::create_once`]): `op` carries this create's ownership marker,
    /// `find_own` finds what an attempt whose answer was lost made.
    /// `propagation` and throttling are refusals and are waited out;
    /// `name_taken` codes mean that `name` belongs to someone else, unless
    /// `find_own` finds ours: it is never adopted.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_once<T, E, R, F, Fut, Found, L, LFut>(
        &self,
        operation: impl Into<String>,
        name: &str,
        propagation: &[Transient],
        name_taken: &[&str],
        op: F,
        find_own: L,
    ) -> Result<Created<T, Found>, ResourceError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        L: FnMut() -> LFut,
        LFut: Future<Output = Result<Option<Found>, AwsFailure>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + HttpResponse,
    {
        let retry_on: Vec<Transient> = AWS_TRANSIENT.iter().chain(propagation).copied().collect();
        let operation = operation.into();
        create_once(
            self.progress(),
            &operation,
            &retry_on,
            name_taken,
            self.backoff(),
            op,
            find_own,
        )
        .await
        .map_err(|err| match (err, self.naming) {
            (CreateError::Taken, Some(naming)) => ResourceError::Failed(naming.taken(name)),
            (CreateError::Taken, None) => {
                ResourceError::Failed(format!("{operation}: {}", CreateError::Taken))
            }
            (CreateError::Aws(failure), _) => ResourceError::Aws(failure),
        })
    }
}
