//! Checks and helpers shared by the resource kinds.

use crate::aws::arn::{has_wildcard, is_complete_secret_arn, Arn};
use crate::resource::{is_unknown, CheckContext, CheckFailure, ResourceError};
use crate::tags::Tags;

/// The default of an invariant input that is always true.
pub fn enabled() -> bool {
    true
}

/// Leaves an invariant that holds out of the serialized inputs, so that
/// state written before the invariant was an input has no diff; only a
/// live resource that breaks it shows (as `false`) after refresh.
pub fn is_enabled(value: &bool) -> bool {
    *value
}

/// Tags in a service's own type, each built by `one` (the SDKs' builders
/// check that key and value are set).
pub fn sdk_tags<T, E: std::fmt::Display>(
    tags: &Tags,
    one: impl Fn(&str, &str) -> Result<T, E>,
) -> Result<Vec<T>, ResourceError> {
    tags.iter()
        .map(|(key, value)| {
            one(key, value).map_err(|err| ResourceError::failed(format!("tag {key}"), err))
        })
        .collect()
}

/// Tags from a service's own type.
pub fn from_sdk_tags<'a, T: 'a>(
    tags: impl IntoIterator<Item = &'a T>,
    pair: impl Fn(&'a T) -> (&'a str, &'a str),
) -> Tags {
    tags.into_iter()
        .map(|tag| {
            let (key, value) = pair(tag);
            (key.to_string(), value.to_string())
        })
        .collect()
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

/// [`check_arn`] for an ARN that must name exactly one resource: a user's
/// secret, key, connection or host. A wildcard would make every grant built
/// from it cover whatever else matches, now or later.
pub fn check_exact_arn(
    ctx: &CheckContext<'_>,
    property: &str,
    value: &str,
    services: &[&str],
    resource_prefix: &str,
    example: &str,
    regional: bool,
) -> Option<CheckFailure> {
    if !is_unknown(value) && has_wildcard(value) {
        return Some(CheckFailure::new(
            property,
            format!("`{value}` has a wildcard (`*` or `?`), so it names more than one resource; give the exact ARN, for example {example}"),
        ));
    }
    check_arn(
        ctx,
        property,
        value,
        services,
        resource_prefix,
        example,
        regional,
    )
}

/// A complete Secrets Manager secret ARN, random suffix included.
pub fn check_secret_arn(
    ctx: &CheckContext<'_>,
    property: &str,
    value: &str,
    example: &str,
    regional: bool,
) -> Option<CheckFailure> {
    if let Some(failure) = check_exact_arn(
        ctx,
        property,
        value,
        &["secretsmanager"],
        "secret:",
        example,
        regional,
    ) {
        return Some(failure);
    }
    let arn = value.parse::<Arn>().ok()?;
    (!is_complete_secret_arn(&arn)).then(|| {
        CheckFailure::new(
            property,
            format!("`{value}` is a partial secret ARN (it lacks the `-` and 6 characters Secrets Manager appends), which IAM treats as a prefix; use the full ARN from the console or `aws secretsmanager describe-secret`, for example {example}"),
        )
    })
}

pub fn check_kms_key_arn(
    ctx: &CheckContext<'_>,
    property: &str,
    value: &str,
) -> Option<CheckFailure> {
    check_exact_arn(
        ctx,
        property,
        value,
        &["kms"],
        "key/",
        "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: CheckContext<'static> = CheckContext {
        name: "app",
        random_seed: &[],
        aws: None,
    };
    const SECRET_EXAMPLE: &str =
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:npm-token-AbCdEf";

    fn secret(value: &str) -> Option<String> {
        check_secret_arn(&CTX, "secretArn", value, SECRET_EXAMPLE, true).map(|f| f.reason)
    }

    #[test]
    fn secret_arns_name_exactly_one_secret() {
        assert_eq!(secret(SECRET_EXAMPLE), None);
        let partial =
            secret("arn:aws:secretsmanager:eu-west-1:123456789012:secret:npm-token").unwrap();
        assert!(partial.contains("partial secret ARN"), "{partial}");
        assert!(partial.contains("describe-secret"), "{partial}");
        for wild in [
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:npm-*",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:npm-token-AbCdE?",
            "arn:aws:secretsmanager:*:123456789012:secret:npm-token-AbCdEf",
        ] {
            assert!(secret(wild).unwrap().contains("wildcard"), "{wild}");
        }
        assert_eq!(secret(crate::protocol::json::UNKNOWN), None);
    }

    #[test]
    fn keys_connections_and_hosts_take_no_wildcards() {
        assert!(check_kms_key_arn(
            &CTX,
            "kmsKeyArn",
            "arn:aws:kms:eu-west-1:123456789012:key/*"
        )
        .unwrap()
        .reason
        .contains("wildcard"));
        let host = |value: &str| {
            check_exact_arn(
                &CTX,
                "hostArn",
                value,
                &["codeconnections"],
                "host/",
                "arn:aws:codeconnections:eu-west-1:123456789012:host/h-1",
                true,
            )
        };
        assert!(host("arn:aws:codeconnections:eu-west-1:123456789012:host/h-1").is_none());
        assert!(
            host("arn:aws:codeconnections:eu-west-1:123456789012:host/h-?")
                .is_some_and(|f| f.property == "hostArn" && f.reason.contains("wildcard"))
        );
    }
}
