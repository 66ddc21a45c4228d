//! `securepipeline:aws:AccessLogBucket`: the bucket that receives the S3
//! server access logs of the pipeline's artifact buckets in its region,
//! with the artifact bucket's protections: versioned, default-encrypted,
//! fully public-access-blocked, owner-enforced, TLS-only and expiring.
//!
//! It owns the delivery end to end: its policy lets only the S3 logging
//! service write, only for the named source buckets of this account, each
//! under its own prefix; and it turns on each source's logging after that
//! policy exists (and off again before it is deleted). The sources never
//! name it, so there is no cycle between the two.
//!
//! Its default encryption is SSE-S3: S3 server access log delivery writes
//! only to destination buckets whose default encryption is SSE-S3, not
//! SSE-KMS (Amazon S3 User Guide, "Enabling Amazon S3 server access
//! logging").

use async_trait::async_trait;
use aws_sdk_s3::error::BuildError;
use aws_sdk_s3::types::{
    BucketLoggingStatus, LoggingEnabled, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use serde::{Deserialize, Serialize};

use super::bucket::{
    check_bucket_name, check_protections, create_bucket, delete_bucket, deny, put, read_bucket,
    read_bucket_tags, write_bucket_tags, BucketSetting, Invariant, GONE, JUST_CREATED,
};
use super::common::enabled;
use crate::aws::arn::is_region;
use crate::aws::failure::AwsFailure;
use crate::iam::policy::Conditions;
use crate::iam::{Effect, PolicyDocument, Statement};
use crate::naming;
use crate::resource::{
    is_unknown, AutoName, CheckContext, CreateToken, CustomResource, Failures, NameScope, Op,
    Placement, ResourceError, TagChange,
};
use crate::tags::Tags;

pub struct AccessLogBucket;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AccessLogBucketInputs {
    pub name_prefix: String,
    /// Chosen by `check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_name: Option<String>,
    /// The region of the bucket and of its sources; defaults to the
    /// provider's region in `check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The buckets (names, this account, this region) whose server access
    /// logs this bucket receives, each under the prefix `<name>/`.
    pub source_buckets: Vec<String>,
    pub expire_after_days: u32,
    /// Always true; inputs so that refresh shows drift on each.
    #[serde(default = "enabled")]
    pub versioning: bool,
    #[serde(default = "enabled")]
    pub block_public_access: bool,
    #[serde(default = "enabled")]
    pub bucket_owner_enforced: bool,
    /// The policy: TLS only, and log delivery from the sources only.
    #[serde(default = "enabled")]
    pub delivery_policy: bool,
    #[serde(default = "enabled")]
    pub default_encryption: bool,
    /// Every source's server access logging points here.
    #[serde(default = "enabled")]
    pub sources_logging: bool,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AccessLogBucketOutputs {
    pub arn: String,
}

const LIFECYCLE_RULE_ID: &str = "expire-access-logs";
/// The service principal that delivers S3 server access logs.
const LOGGING_SERVICE: &str = "logging.s3.amazonaws.com";

/// Where one source's logs land: its own name, so sources never share keys.
pub fn target_prefix(source: &str) -> String {
    format!("{source}/")
}

/// The bucket policy: TLS only, and the logging service may put objects
/// only under each source's prefix, only for that source bucket of this
/// account (AWS's documented `aws:SourceArn` and `aws:SourceAccount`
/// conditions for server access log delivery).
pub fn delivery_policy(
    partition: &str,
    account: &str,
    bucket: &str,
    sources: &[String],
) -> PolicyDocument {
    let bucket_arn = format!("arn:{partition}:s3:::{bucket}");
    let mut statements = vec![deny(
        "DenyInsecureTransport",
        &["s3:*"],
        vec![bucket_arn.clone(), format!("{bucket_arn}/*")],
        "Bool",
        "aws:SecureTransport",
        "false",
    )];
    for (index, source) in sources.iter().enumerate() {
        statements.push(Statement {
            sid: Some(format!("AllowAccessLogDelivery{index}")),
            effect: Effect::Allow,
            principal: Some([("Service".to_string(), vec![LOGGING_SERVICE.to_string()])].into()),
            actions: vec!["s3:PutObject".into()],
            resources: vec![format!("{bucket_arn}/{}*", target_prefix(source))],
            conditions: Conditions::from([
                (
                    "ArnEquals".to_string(),
                    [(
                        "aws:SourceArn".to_string(),
                        vec![format!("arn:{partition}:s3:::{source}")],
                    )]
                    .into(),
                ),
                (
                    "StringEquals".to_string(),
                    [("aws:SourceAccount".to_string(), vec![account.to_string()])].into(),
                ),
            ]),
        });
    }
    PolicyDocument::new(statements)
}

fn encryption() -> Result<ServerSideEncryptionConfiguration, BuildError> {
    let default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::Aes256)
        .build()?;
    ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(default)
                .build(),
        )
        .build()
}

fn is_s3_encrypted(config: &ServerSideEncryptionConfiguration) -> bool {
    config.rules().iter().any(|rule| {
        rule.apply_server_side_encryption_by_default()
            .is_some_and(|default| default.sse_algorithm() == &ServerSideEncryption::Aes256)
    })
}

fn logging_status(bucket: &str, source: &str) -> Result<BucketLoggingStatus, BuildError> {
    Ok(BucketLoggingStatus::builder()
        .logging_enabled(
            LoggingEnabled::builder()
                .target_bucket(bucket)
                .target_prefix(target_prefix(source))
                .build()?,
        )
        .build())
}

/// True when `logging` sends `source`'s logs to `bucket` under its prefix.
fn logs_here(logging: Option<&LoggingEnabled>, bucket: &str, source: &str) -> bool {
    logging
        .is_some_and(|l| l.target_bucket() == bucket && l.target_prefix() == target_prefix(source))
}

/// Each invariant input, the property that names it, and why it stays on.
fn invariants(inputs: &AccessLogBucketInputs) -> [Invariant; 6] {
    [
        ("versioning", inputs.versioning, "versioning cannot be turned off: access logs are evidence and must survive an overwrite or delete"),
        ("blockPublicAccess", inputs.block_public_access, "public access cannot be allowed to access logs"),
        ("bucketOwnerEnforced", inputs.bucket_owner_enforced, "ACLs cannot be enabled: log delivery is granted by the bucket policy"),
        ("deliveryPolicy", inputs.delivery_policy, "the policy denying plain HTTP and limiting delivery to the sources cannot be removed"),
        ("defaultEncryption", inputs.default_encryption, "default encryption cannot be turned off"),
        ("sourcesLogging", inputs.sources_logging, "the sources' server access logging cannot be turned off"),
    ]
}

async fn configure_bucket(
    ctx: &Op<'_>,
    name: &str,
    inputs: &AccessLogBucketInputs,
) -> Result<(), ResourceError> {
    let settings = [
        BucketSetting::PublicAccessBlock,
        BucketSetting::Ownership,
        BucketSetting::Versioning,
        BucketSetting::Encryption(encryption()),
        BucketSetting::Policy(delivery_policy(
            &ctx.aws.partition,
            &ctx.aws.account_id,
            name,
            &inputs.source_buckets,
        )),
        BucketSetting::Lifecycle {
            rule_id: LIFECYCLE_RULE_ID,
            days: inputs.expire_after_days,
        },
    ];
    for setting in settings {
        put(ctx, name, setting).await?;
    }
    let s3 = &ctx.clients().s3;
    let built = |what: &str, err: BuildError| {
        ResourceError::failed(format!("{what} of bucket {name}"), err)
    };
    // Last: S3 checks the policy above when logging is turned on.
    for source in &inputs.source_buckets {
        let status = logging_status(name, source)
            .map_err(|err| built(&format!("sending the access logs of {source}"), err))?;
        ctx.call_waiting(
            format!("sending the server access logs of bucket {source} to {name}"),
            &JUST_CREATED,
            || {
                s3.put_bucket_logging()
                    .bucket(source)
                    .expected_bucket_owner(&ctx.aws.account_id)
                    .bucket_logging_status(status.clone())
                    .send()
            },
        )
        .await?;
    }
    Ok(())
}

/// Turns off the logging of the sources that still log to `name`.
async fn stop_delivery(ctx: &Op<'_>, name: &str, sources: &[String]) -> Result<(), ResourceError> {
    let s3 = &ctx.clients().s3;
    for source in sources {
        let current = ctx
            .find(
                format!("reading the server access logging of bucket {source}"),
                GONE,
                || s3.get_bucket_logging().bucket(source).send(),
            )
            .await?;
        if !current.is_some_and(|c| logs_here(c.logging_enabled(), name, source)) {
            continue;
        }
        ctx.find(
            format!("turning off the server access logging of bucket {source}"),
            GONE,
            || {
                s3.put_bucket_logging()
                    .bucket(source)
                    .expected_bucket_owner(&ctx.aws.account_id)
                    .bucket_logging_status(BucketLoggingStatus::builder().build())
                    .send()
            },
        )
        .await?;
    }
    Ok(())
}

#[async_trait]
impl CustomResource for AccessLogBucket {
    const TYPE: &'static str = "securepipeline:aws:AccessLogBucket";
    type Inputs = AccessLogBucketInputs;
    type Outputs = AccessLogBucketOutputs;
    const OUTPUT_KEYS: &'static [&'static str] = &["arn"];
    const REPLACE_KEYS: &'static [&'static str] = &[];
    const NAME: AutoName = AutoName::new(
        "bucketName",
        &naming::S3_BUCKET,
        "bucket",
        NameScope::Account,
    );
    const PLACEMENT: Placement = Placement::Regional;
    const TAGS_ON_CREATE: bool = false;

    fn validate(
        ctx: &CheckContext<'_>,
        olds: Option<&Self::Inputs>,
        news: &mut Self::Inputs,
        failures: &mut Failures,
    ) {
        if let Some(name) = &news.bucket_name {
            failures.extend(check_bucket_name("bucketName", name));
        }
        if news.region.is_none() {
            news.region = ctx
                .aws
                .map(|aws| aws.region.clone())
                .or_else(|| olds.and_then(|o| o.region.clone()));
        }
        if let Some(region) = news
            .region
            .as_deref()
            .filter(|r| !is_unknown(r) && !is_region(r))
        {
            failures.push(
                "region",
                format!("`{region}` is not an AWS region; for example eu-west-1"),
            );
        }
        if news.source_buckets.is_empty() {
            failures.push(
                "sourceBuckets",
                "name at least one bucket whose server access logs this bucket receives",
            );
        }
        for (index, source) in news.source_buckets.iter().enumerate() {
            let property = format!("sourceBuckets[{index}]");
            match naming::check(&property, source, &naming::S3_BUCKET) {
                Some(failure) => failures.extend([failure]),
                None => failures.extend(check_bucket_name(&property, source)),
            }
        }
        check_protections(news.expire_after_days, &invariants(news), failures);
    }

    async fn create_resource(
        ctx: &Op<'_>,
        _inputs: &Self::Inputs,
        token: &CreateToken,
    ) -> Result<(String, Self::Outputs), ResourceError> {
        let name = ctx.name()?;
        create_bucket(ctx, name, token, &Self::NAME).await?;
        let outputs = AccessLogBucketOutputs {
            arn: ctx.arns().s3_bucket(name),
        };
        Ok((name.to_string(), outputs))
    }

    async fn configure(
        ctx: &Op<'_>,
        id: &str,
        inputs: &Self::Inputs,
        _outputs: &mut Self::Outputs,
    ) -> Result<(), ResourceError> {
        configure_bucket(ctx, id, inputs).await
    }

    async fn read_resource(
        ctx: &Op<'_>,
        id: &str,
        inputs: &Self::Inputs,
    ) -> Result<Option<(Self::Inputs, Self::Outputs)>, ResourceError> {
        let s3 = &ctx.clients().s3;
        let Some(bucket) = read_bucket(ctx, id).await? else {
            return Ok(None);
        };
        let mut sources_logging = true;
        for source in &inputs.source_buckets {
            let logging = ctx
                .find(
                    format!("reading the server access logging of bucket {source}"),
                    GONE,
                    || s3.get_bucket_logging().bucket(source).send(),
                )
                .await?;
            sources_logging &= logging.is_some_and(|l| logs_here(l.logging_enabled(), id, source));
        }
        let expected_policy = delivery_policy(
            &ctx.aws.partition,
            &ctx.aws.account_id,
            id,
            &inputs.source_buckets,
        );
        let mut live = inputs.clone();
        live.bucket_name = Some(id.to_string());
        live.region = Some(bucket.region.unwrap_or_else(|| ctx.region.clone()));
        live.block_public_access = bucket.fully_blocked;
        live.bucket_owner_enforced = bucket.owner_enforced;
        live.versioning = bucket.versioned;
        live.default_encryption = bucket.encryption.as_ref().is_some_and(is_s3_encrypted);
        live.delivery_policy = bucket.policy == Some(expected_policy);
        live.expire_after_days = bucket.expire_after_days;
        live.sources_logging = sources_logging;
        let outputs = AccessLogBucketOutputs {
            arn: ctx.arns().s3_bucket(id),
        };
        Ok(Some((live, outputs)))
    }

    async fn update_resource(
        ctx: &Op<'_>,
        id: &str,
        olds: &Self::Inputs,
        news: &Self::Inputs,
        outputs: &Self::Outputs,
    ) -> Result<Self::Outputs, ResourceError> {
        let dropped: Vec<String> = olds
            .source_buckets
            .iter()
            .filter(|source| !news.source_buckets.contains(source))
            .cloned()
            .collect();
        stop_delivery(ctx, id, &dropped).await?;
        // Every setting is idempotent and cheap; re-applying all of them is
        // what repairs drift in any one.
        configure_bucket(ctx, id, news).await?;
        Ok(outputs.clone())
    }

    async fn delete_resource(
        ctx: &Op<'_>,
        id: &str,
        inputs: &Self::Inputs,
        _outputs: &Self::Outputs,
    ) -> Result<(), ResourceError> {
        stop_delivery(ctx, id, &inputs.source_buckets).await?;
        // Unlike artifacts, access logs arrive from every request to the
        // sources, the provider's own included, so a bucket kept while it
        // holds any would make every destroy fail. The logs go with the
        // pipeline they describe; until then the lifecycle keeps them.
        delete_bucket(ctx, id, true).await
    }

    async fn read_tags(ctx: &Op<'_>, id: &str) -> Result<Option<Tags>, AwsFailure> {
        read_bucket_tags(ctx, id).await
    }

    async fn write_tags(ctx: &Op<'_>, id: &str, change: &TagChange) -> Result<(), ResourceError> {
        write_bucket_tags(ctx, id, change).await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::resource::{to_json, Lifecycle};

    pub(crate) fn inputs() -> AccessLogBucketInputs {
        AccessLogBucketInputs {
            name_prefix: "app-access-logs".into(),
            bucket_name: None,
            region: None,
            source_buckets: vec!["app-artifacts-abc123".into()],
            expire_after_days: 365,
            versioning: true,
            block_public_access: true,
            bucket_owner_enforced: true,
            delivery_policy: true,
            default_encryption: true,
            sources_logging: true,
            tags: Tags::new(),
        }
    }

    fn check(inputs: serde_json::Value) -> Vec<String> {
        let ctx = CheckContext {
            name: "access-logs",
            random_seed: b"seed",
            aws: None,
        };
        let Ok(inputs) = serde_json::from_value::<AccessLogBucketInputs>(inputs) else {
            return vec!["<not the inputs' shape>".into()];
        };
        match AccessLogBucket::check(&ctx, None, inputs) {
            Ok(_) => Vec::new(),
            Err(failures) => failures.into_iter().map(|f| f.property).collect(),
        }
    }

    #[test]
    fn delivery_is_allowed_only_from_each_source_under_its_prefix() {
        let sources = vec!["art-one".to_string(), "art-two".to_string()];
        let policy = delivery_policy("aws", "123456789012", "logs-b", &sources);
        let json = serde_json::to_value(&policy).unwrap();
        let statements = json["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 3);
        assert_eq!(statements[0]["Effect"], "Deny");
        assert_eq!(
            statements[0]["Condition"]["Bool"]["aws:SecureTransport"],
            serde_json::json!(["false"])
        );
        for (statement, source) in statements[1..].iter().zip(&sources) {
            assert_eq!(statement["Effect"], "Allow");
            assert_eq!(
                statement["Principal"]["Service"],
                serde_json::json!([LOGGING_SERVICE])
            );
            assert_eq!(statement["Action"], serde_json::json!(["s3:PutObject"]));
            assert_eq!(
                statement["Resource"],
                serde_json::json!([format!("arn:aws:s3:::logs-b/{source}/*")])
            );
            assert_eq!(
                statement["Condition"]["ArnEquals"]["aws:SourceArn"],
                serde_json::json!([format!("arn:aws:s3:::{source}")])
            );
            assert_eq!(
                statement["Condition"]["StringEquals"]["aws:SourceAccount"],
                serde_json::json!(["123456789012"])
            );
        }
    }

    #[test]
    fn logging_points_at_this_bucket_under_the_sources_prefix() {
        let status = logging_status("logs-b", "art-one").unwrap();
        let enabled = status.logging_enabled();
        assert!(logs_here(enabled, "logs-b", "art-one"));
        assert!(!logs_here(enabled, "logs-c", "art-one"));
        assert!(!logs_here(enabled, "logs-b", "art-two"));
        assert!(!logs_here(None, "logs-b", "art-one"));
    }

    #[test]
    fn encryption_is_sse_s3() {
        assert!(is_s3_encrypted(&encryption().unwrap()));
    }

    #[test]
    fn rejects_missing_sources_bad_names_and_switched_off_protections() {
        assert!(check(to_json(&inputs())).is_empty());
        let mut bad = to_json(&inputs());
        bad["sourceBuckets"] = serde_json::json!([]);
        bad["expireAfterDays"] = serde_json::json!(0);
        bad["versioning"] = serde_json::json!(false);
        bad["sourcesLogging"] = serde_json::json!(false);
        assert_eq!(
            check(bad),
            [
                "sourceBuckets",
                "expireAfterDays",
                "versioning",
                "sourcesLogging"
            ]
        );
        let mut bad = to_json(&inputs());
        bad["sourceBuckets"] = serde_json::json!(["Not_A_Bucket"]);
        assert_eq!(check(bad), ["sourceBuckets[0]"]);
    }
}
