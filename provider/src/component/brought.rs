//! What the user brings, checked against AWS before any child is
//! registered, at preview as at update: a key given as `kmsKeyArn` must be
//! one the pipeline can use, a connection given as `source.connectionArn`
//! must exist. These checks only read; the key child writes the pipeline's
//! statements into the key's policy when the update runs.

use std::collections::BTreeSet;

use super::args::SecurePipelineArgs;
use super::validate::is_secret;
use crate::resource::{is_unknown, CheckFailure, OpContext};
use crate::resources::{connection, user_key};

const KEY: &str = "kmsKeyArn";
const CONNECTION: &str = "source.connectionArn";

/// `secret_paths` are the input paths the engine marked secret: an ARN
/// given as a secret is not repeated in a failure.
pub async fn check(
    ctx: &OpContext<'_>,
    args: &SecurePipelineArgs,
    secret_paths: &BTreeSet<String>,
) -> Vec<CheckFailure> {
    let known = |arn: &Option<String>| arn.clone().filter(|a| !is_unknown(a));
    let failure = |property: &str, arn: &str, reason: String| {
        let reason = if is_secret(secret_paths, property) {
            reason
                .replace(&format!("`{arn}`"), "the secret ARN")
                .replace(arn, "<the secret ARN>")
        } else {
            reason
        };
        CheckFailure::new(property, reason)
    };
    let key = async {
        let Some(arn) = known(&args.kms_key_arn) else {
            return Vec::new();
        };
        let kms = &ctx.aws.clients().kms;
        match user_key::verify(kms, &arn, &ctx.aws.region).await {
            Ok(_) => Vec::new(),
            Err(problems) => problems
                .into_iter()
                .map(|problem| failure(KEY, &arn, problem))
                .collect(),
        }
    };
    let source = async {
        let arn = known(&args.source.connection_arn)?;
        connection::verify_existing(ctx, &arn)
            .await
            .err()
            .map(|reason| failure(CONNECTION, &arn, reason))
    };
    let (mut failures, source) = tokio::join!(key, source);
    failures.extend(source);
    failures
}
