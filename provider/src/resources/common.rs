//! Checks and helpers shared by the resource kinds.

use crate::aws::arn::Arn;
use crate::aws::retry::{Progress, Transient};
use crate::resource::{is_unknown, CheckContext, CheckFailure, OpContext};
use crate::tags::{self, Tags};

/// Errors every AWS call may wait out.
pub const AWS_TRANSIENT: [Transient; 2] = [Transient::Throttling, Transient::ServerError];

pub fn progress<'a>(ctx: &'a OpContext<'_>) -> Progress<'a> {
    Progress {
        log: ctx.log,
        urn: ctx.urn,
    }
}

/// The resource's own tags plus the provider's defaults and `ManagedBy`.
pub fn effective_tags(ctx: &CheckContext<'_>, own: &Tags) -> Tags {
    let defaults = ctx
        .aws
        .map(|aws| aws.default_tags.clone())
        .unwrap_or_default();
    tags::effective(&defaults, own)
}

/// Checks that `value` is an ARN of `service` whose resource starts with
/// `resource_prefix`, in the caller's partition and account (and region,
/// for regional services) once the provider knows them.
pub fn check_arn(
    ctx: &CheckContext<'_>,
    property: &str,
    value: &str,
    services: &[&str],
    resource_prefix: &str,
    example: &str,
    regional: bool,
) -> Option<CheckFailure> {
    if is_unknown(value) {
        return None;
    }
    let arn = match value.parse::<Arn>() {
        Ok(arn) => arn,
        Err(reason) => {
            return Some(CheckFailure::new(
                property,
                format!("{reason}; for example {example}"),
            ))
        }
    };
    if !services.contains(&arn.service.as_str()) || !arn.resource.starts_with(resource_prefix) {
        return Some(CheckFailure::new(
            property,
            format!(
                "`{value}` is not a {} `{resource_prefix}` ARN; for example {example}",
                services.join("/")
            ),
        ));
    }
    let aws = ctx.aws?;
    if arn.partition != aws.partition {
        return Some(CheckFailure::new(
            property,
            format!(
                "`{value}` is in partition `{}`, but the provider runs in `{}`",
                arn.partition, aws.partition
            ),
        ));
    }
    if arn.account != aws.account_id {
        return Some(CheckFailure::new(
            property,
            format!(
                "`{value}` belongs to account {}, but the provider runs as account {}",
                arn.account, aws.account_id
            ),
        ));
    }
    if regional && arn.region != aws.region {
        return Some(CheckFailure::new(
            property,
            format!(
                "`{value}` is in region {}, but the provider runs in {}",
                arn.region, aws.region
            ),
        ));
    }
    None
}

pub fn check_kms_key_arn(
    ctx: &CheckContext<'_>,
    property: &str,
    value: &str,
) -> Option<CheckFailure> {
    check_arn(
        ctx,
        property,
        value,
        &["kms"],
        "key/",
        "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        false,
    )
}
