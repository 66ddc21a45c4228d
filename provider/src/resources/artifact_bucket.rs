//! `securepipeline:aws:ArtifactBucket`: the pipeline's artifact store:
//! versioned, SSE-KMS with the pipeline's key, fully public-access-blocked,
//! owner-enforced, TLS-only, and expiring old artifacts.

use async_trait::async_trait;
use aws_sdk_s3::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint,
    BucketVersioningStatus, CreateBucketConfiguration, Delete, ExpirationStatus,
    LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, NoncurrentVersionExpiration,
    ObjectIdentifier, ObjectOwnership, OwnershipControls, OwnershipControlsRule,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
    VersioningConfiguration,
};
use serde::{Deserialize, Serialize};

use super::common::{
    check_kms_key_arn, effective_tags, enabled, is_enabled, progress, AWS_TRANSIENT,
};
use crate::aws::arn::{is_region, Arn};
use crate::aws::retry::{
    create_once, describe, is_code, once, retry, Backoff, CreateError, HttpResponse, Transient,
};
use crate::iam::policy::Conditions;
use crate::iam::{Effect, PolicyDocument, Statement};
use crate::naming;
use crate::resource::{
    is_unknown, to_json, CheckContext, CheckFailure, CustomResource, Failures, OpContext,
    ResourceError,
};
use crate::tags::{self, Tags};

pub struct ArtifactBucket;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactBucketInputs {
    pub name_prefix: String,
    /// Chosen by `check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_name: Option<String>,
    /// The region the bucket lives in (cross-region pipelines have one per
    /// region); defaults to the provider's region in `check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub kms_key_arn: String,
    pub expire_after_days: u32,
    #[serde(default)]
    pub force_destroy: bool,
    /// Always true; inputs so that refresh shows drift on each.
    #[serde(default = "enabled")]
    pub versioning: bool,
    #[serde(default = "enabled")]
    pub block_public_access: bool,
    #[serde(default = "enabled")]
    pub bucket_owner_enforced: bool,
    #[serde(default = "enabled")]
    pub secure_transport_policy: bool,
    /// S3 Bucket Keys on the default encryption.
    #[serde(default = "enabled", skip_serializing_if = "is_enabled")]
    pub bucket_key_enabled: bool,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactBucketOutputs {
    pub arn: String,
}

pub const MAX_EXPIRE_DAYS: u32 = 3650;
/// Uploads a build abandoned halfway stop costing money after a week.
const ABORT_MULTIPART_DAYS: i32 = 7;
const LIFECYCLE_RULE_ID: &str = "expire-artifacts";
/// The one region where CreateBucket takes no location constraint.
const DEFAULT_S3_REGION: &str = "us-east-1";
/// DeleteObjects takes at most this many keys per request.
const DELETE_BATCH: usize = 1000;
const SSE_HEADER: &str = "s3:x-amz-server-side-encryption";
const SSE_KEY_HEADER: &str = "s3:x-amz-server-side-encryption-aws-kms-key-id";

/// The name, once `check` has chosen it.
fn name(inputs: &ArtifactBucketInputs) -> Result<&str, ResourceError> {
    inputs
        .bucket_name
        .as_deref()
        .ok_or_else(|| ResourceError::Failed("bucketName was not set by check".into()))
}

/// The bucket's region: the input, or the provider's when `check` ran
/// before the provider was configured.
fn region<'a>(ctx: &'a OpContext<'_>, inputs: &'a ArtifactBucketInputs) -> &'a str {
    inputs.region.as_deref().unwrap_or(&ctx.aws.region)
}

fn deny(
    sid: &str,
    actions: &[&str],
    resources: Vec<String>,
    operator: &str,
    key: &str,
    value: &str,
) -> Statement {
    Statement {
        sid: Some(sid.into()),
        effect: Effect::Deny,
        // `{"AWS": "*"}` is everyone, like `"*"`, in a bucket policy.
        principal: Some([("AWS".to_string(), vec!["*".to_string()])].into()),
        actions: actions.iter().map(|a| (*a).to_string()).collect(),
        resources,
        conditions: Conditions::from([(
            operator.to_string(),
            [(key.to_string(), vec![value.to_string()])].into(),
        )]),
    }
}

/// The bucket policy: TLS only, and every object written with this key.
///
/// Writers must name the key. S3 applies the bucket's default encryption
/// only to a put that sends no encryption header at all; a put that sends
/// `x-amz-server-side-encryption: aws:kms` without a key id is encrypted
/// with the AWS managed key `aws/s3`, which this key policy does not
/// govern. So, as CodePipeline documents for artifact buckets, a put must
/// say `aws:kms`; and, as S3 documents for requiring one key, the key id
/// must be present (`Null` = false) and, when present, be this key's ARN
/// (`StringNotEqualsIfExists`). CodePipeline sends the artifact store's key
/// and CodeBuild its project's key, both this ARN, on every put. Default
/// encryption names the same key, so the bucket also reports it as its key.
pub fn bucket_policy(bucket_arn: &str, key_arn: &str) -> PolicyDocument {
    let objects = format!("{bucket_arn}/*");
    PolicyDocument::new(vec![
        deny(
            "DenyInsecureTransport",
            &["s3:*"],
            vec![bucket_arn.to_string(), objects.clone()],
            "Bool",
            "aws:SecureTransport",
            "false",
        ),
        deny(
            "DenyUnencryptedObjectUploads",
            &["s3:PutObject"],
            vec![objects.clone()],
            "StringNotEquals",
            SSE_HEADER,
            "aws:kms",
        ),
        deny(
            "DenyUploadsWithoutArtifactKey",
            &["s3:PutObject"],
            vec![objects.clone()],
            "Null",
            SSE_KEY_HEADER,
            "true",
        ),
        deny(
            "DenyUploadsWithOtherKeys",
            &["s3:PutObject"],
            vec![objects],
            "StringNotEqualsIfExists",
            SSE_KEY_HEADER,
            key_arn,
        ),
    ])
}

fn public_access_block() -> PublicAccessBlockConfiguration {
    PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build()
}

fn is_fully_blocked(config: &PublicAccessBlockConfiguration) -> bool {
    config.block_public_acls() == Some(true)
        && config.ignore_public_acls() == Some(true)
        && config.block_public_policy() == Some(true)
        && config.restrict_public_buckets() == Some(true)
}

fn ownership_controls() -> Result<OwnershipControls, BuildError> {
    OwnershipControls::builder()
        .rules(
            OwnershipControlsRule::builder()
                .object_ownership(ObjectOwnership::BucketOwnerEnforced)
                .build()?,
        )
        .build()
}

fn encryption(key_arn: &str) -> Result<ServerSideEncryptionConfiguration, BuildError> {
    let default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::AwsKms)
        .kms_master_key_id(key_arn)
        .build()?;
    ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(default)
                // One data key per bucket instead of one KMS call per object.
                .bucket_key_enabled(true)
                .build(),
        )
        .build()
}

/// The bucket's SSE-KMS default encryption rule, if it has one.
fn kms_rule(config: &ServerSideEncryptionConfiguration) -> Option<&ServerSideEncryptionRule> {
    config.rules().iter().find(|rule| {
        rule.apply_server_side_encryption_by_default()
            .is_some_and(|default| default.sse_algorithm() == &ServerSideEncryption::AwsKms)
    })
}

/// The key the bucket encrypts with by default; empty when it is not
/// SSE-KMS.
fn encryption_key(config: &ServerSideEncryptionConfiguration) -> String {
    kms_rule(config)
        .and_then(|rule| rule.apply_server_side_encryption_by_default())
        .and_then(|default| default.kms_master_key_id())
        .unwrap_or_default()
        .to_string()
}

/// True when SSE-KMS encryption uses a bucket key.
fn bucket_key_enabled(config: &ServerSideEncryptionConfiguration) -> bool {
    kms_rule(config).is_some_and(|rule| rule.bucket_key_enabled() == Some(true))
}

fn lifecycle(days: u32) -> Result<BucketLifecycleConfiguration, BuildError> {
    let days = i32::try_from(days).unwrap_or(i32::MAX);
    let rule = LifecycleRule::builder()
        .id(LIFECYCLE_RULE_ID)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .status(ExpirationStatus::Enabled)
        .expiration(LifecycleExpiration::builder().days(days).build())
        .noncurrent_version_expiration(
            NoncurrentVersionExpiration::builder()
                .noncurrent_days(days)
                .build(),
        )
        .abort_incomplete_multipart_upload(
            AbortIncompleteMultipartUpload::builder()
                .days_after_initiation(ABORT_MULTIPART_DAYS)
                .build(),
        )
        .build()?;
    BucketLifecycleConfiguration::builder().rules(rule).build()
}

/// The expiry the live lifecycle enforces, or 0 (which `check` rejects and
/// the next update restores) unless it is exactly the one rule this kind
/// writes: any other rule may delete artifacts early or keep them forever.
fn expire_days(rules: &[LifecycleRule]) -> u32 {
    let [rule] = rules else {
        return 0;
    };
    let whole_bucket = rule.filter().is_none_or(|filter| {
        filter.prefix().unwrap_or_default().is_empty()
            && filter.tag().is_none()
            && filter.and().is_none()
            && filter.object_size_greater_than().is_none()
            && filter.object_size_less_than().is_none()
    });
    let days = rule.expiration().and_then(|e| e.days());
    let exact = rule.status() == &ExpirationStatus::Enabled
        && whole_bucket
        && legacy_prefix(rule).is_empty()
        && rule.transitions().is_empty()
        && rule.noncurrent_version_transitions().is_empty()
        && days.is_some()
        && rule
            .noncurrent_version_expiration()
            .and_then(|e| e.noncurrent_days())
            == days
        && rule
            .abort_incomplete_multipart_upload()
            .and_then(|a| a.days_after_initiation())
            == Some(ABORT_MULTIPART_DAYS);
    match days {
        Some(days) if exact => u32::try_from(days).unwrap_or(0),
        _ => 0,
    }
}

/// The top-level `Prefix` that rules written by older tools still use in
/// place of a filter; it narrows the rule just the same.
#[allow(deprecated)]
fn legacy_prefix(rule: &LifecycleRule) -> &str {
    rule.prefix().unwrap_or_default()
}

fn already_exists(name: &str) -> String {
    format!(
        "bucket {name} already exists in this account and is not adopted; \
         choose another bucketName, or delete the bucket if nothing uses it"
    )
}

/// True when the account already owns a bucket of this name. Any other
/// answer (not found, someone else's, an error) leaves it to CreateBucket.
async fn bucket_exists(s3: &aws_sdk_s3::Client, name: &str, account_id: &str) -> bool {
    s3.head_bucket()
        .bucket(name)
        .expected_bucket_owner(account_id)
        .send()
        .await
        .is_ok()
}

/// The create token a bucket was tagged with, if any; None too when there
/// is no such bucket.
async fn create_token_of(
    s3: &aws_sdk_s3::Client,
    name: &str,
) -> Result<Option<String>, ResourceError> {
    let tagging = unless_missing(
        s3.get_bucket_tagging().bucket(name).send().await,
        &["NoSuchTagSet", "NoSuchBucket"],
        &format!("reading tags of bucket {name}"),
    )?;
    Ok(tagging.and_then(|out| {
        out.tag_set()
            .iter()
            .find(|tag| tag.key() == tags::CREATE_TOKEN_KEY)
            .map(|tag| tag.value().to_string())
    }))
}

/// A bucket the account already owns is ours only when it carries this
/// create's token.
fn is_our_bucket(token: &str, live_token: Option<&str>) -> bool {
    live_token == Some(token)
}

fn tagging(tags: &Tags) -> Result<Tagging, BuildError> {
    let tag_set = tags
        .iter()
        .map(|(key, value)| Tag::builder().key(key).value(value).build())
        .collect::<Result<Vec<_>, _>>()?;
    Tagging::builder().set_tag_set(Some(tag_set)).build()
}

/// One piece of bucket configuration, applied in this order on create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setting {
    PublicAccessBlock,
    Ownership,
    Versioning,
    Encryption,
    Policy,
    Lifecycle,
    Tags,
}

const ALL_SETTINGS: [Setting; 7] = [
    Setting::PublicAccessBlock,
    Setting::Ownership,
    Setting::Versioning,
    Setting::Encryption,
    Setting::Policy,
    Setting::Lifecycle,
    Setting::Tags,
];

/// The settings to re-apply to go from `olds` (last written or read back)
/// to `news`.
fn changed_settings(olds: &ArtifactBucketInputs, news: &ArtifactBucketInputs) -> Vec<Setting> {
    ALL_SETTINGS
        .into_iter()
        .filter(|setting| match setting {
            Setting::PublicAccessBlock => olds.block_public_access != news.block_public_access,
            Setting::Ownership => olds.bucket_owner_enforced != news.bucket_owner_enforced,
            Setting::Versioning => olds.versioning != news.versioning,
            Setting::Encryption => {
                olds.kms_key_arn != news.kms_key_arn
                    || olds.bucket_key_enabled != news.bucket_key_enabled
            }
            // The policy names the key, so a new key needs a new policy.
            Setting::Policy => {
                olds.secure_transport_policy != news.secure_transport_policy
                    || olds.kms_key_arn != news.kms_key_arn
            }
            Setting::Lifecycle => olds.expire_after_days != news.expire_after_days,
            Setting::Tags => olds.tags != news.tags,
        })
        .collect()
}

/// S3 bucket configuration is eventually consistent: a bucket just created
/// may briefly be missing for the calls that configure it.
const S3_RETRY_ON: [Transient; 3] = [
    AWS_TRANSIENT[0],
    AWS_TRANSIENT[1],
    Transient::Propagation {
        code: "NoSuchBucket",
        message_contains: "does not exist",
    },
];

async fn apply(
    ctx: &OpContext<'_>,
    s3: &aws_sdk_s3::Client,
    name: &str,
    inputs: &ArtifactBucketInputs,
    setting: Setting,
) -> Result<(), String> {
    let built = |what: &str, err: BuildError| format!("{what} of bucket {name}: {err}");
    let sent = |what: &str, err: String| format!("{what} of bucket {name}: {err}");
    match setting {
        Setting::PublicAccessBlock => retry(
            progress(ctx),
            "blocking public access",
            &S3_RETRY_ON,
            Backoff::default(),
            || {
                s3.put_public_access_block()
                    .bucket(name)
                    .public_access_block_configuration(public_access_block())
                    .send()
            },
        )
        .await
        .map(|_| ())
        .map_err(|err| sent("setting the public access block", describe(&err))),
        Setting::Ownership => {
            let controls = ownership_controls().map_err(|err| built("setting ownership", err))?;
            retry(
                progress(ctx),
                "enforcing bucket ownership",
                &S3_RETRY_ON,
                Backoff::default(),
                || {
                    s3.put_bucket_ownership_controls()
                        .bucket(name)
                        .ownership_controls(controls.clone())
                        .send()
                },
            )
            .await
            .map(|_| ())
            .map_err(|err| sent("setting ownership", describe(&err)))
        }
        Setting::Versioning => retry(
            progress(ctx),
            "enabling versioning",
            &S3_RETRY_ON,
            Backoff::default(),
            || {
                s3.put_bucket_versioning()
                    .bucket(name)
                    .versioning_configuration(
                        VersioningConfiguration::builder()
                            .status(BucketVersioningStatus::Enabled)
                            .build(),
                    )
                    .send()
            },
        )
        .await
        .map(|_| ())
        .map_err(|err| sent("enabling versioning", describe(&err))),
        Setting::Encryption => {
            let config =
                encryption(&inputs.kms_key_arn).map_err(|err| built("setting encryption", err))?;
            retry(
                progress(ctx),
                "setting default encryption",
                &S3_RETRY_ON,
                Backoff::default(),
                || {
                    s3.put_bucket_encryption()
                        .bucket(name)
                        .server_side_encryption_configuration(config.clone())
                        .send()
                },
            )
            .await
            .map(|_| ())
            .map_err(|err| sent("setting encryption", describe(&err)))
        }
        Setting::Policy => {
            let policy = bucket_policy(&ctx.aws.arns().s3_bucket(name), &inputs.kms_key_arn)
                .to_compact_json();
            retry(
                progress(ctx),
                "setting bucket policy",
                &S3_RETRY_ON,
                Backoff::default(),
                || s3.put_bucket_policy().bucket(name).policy(&policy).send(),
            )
            .await
            .map(|_| ())
            .map_err(|err| sent("setting the policy", describe(&err)))
        }
        Setting::Lifecycle => {
            let config = lifecycle(inputs.expire_after_days)
                .map_err(|err| built("setting the lifecycle", err))?;
            retry(
                progress(ctx),
                "setting artifact expiry",
                &S3_RETRY_ON,
                Backoff::default(),
                || {
                    s3.put_bucket_lifecycle_configuration()
                        .bucket(name)
                        .lifecycle_configuration(config.clone())
                        .send()
                },
            )
            .await
            .map(|_| ())
            .map_err(|err| sent("setting the lifecycle", describe(&err)))
        }
        Setting::Tags => {
            // S3 has no tag/untag: the whole tag set is replaced at once.
            let tag_set = tagging(&inputs.tags).map_err(|err| built("tagging", err))?;
            retry(
                progress(ctx),
                "tagging bucket",
                &S3_RETRY_ON,
                Backoff::default(),
                || {
                    s3.put_bucket_tagging()
                        .bucket(name)
                        .tagging(tag_set.clone())
                        .send()
                },
            )
            .await
            .map(|_| ())
            .map_err(|err| sent("tagging", describe(&err)))
        }
    }
}

/// `Ok(None)` when AWS answers with one of `missing` (the configuration is
/// not set), else the response or the error.
fn unless_missing<T, E, R>(
    result: Result<T, SdkError<E, R>>,
    missing: &[&str],
    what: &str,
) -> Result<Option<T>, ResourceError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpResponse,
{
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if is_code(&err, missing) => Ok(None),
        Err(err) => Err(ResourceError::aws(what, &err)),
    }
}

fn check_bucket_name(property: &str, name: &str) -> Vec<CheckFailure> {
    if is_unknown(name) {
        return Vec::new();
    }
    if let Some(failure) = naming::check(property, name, &naming::S3_BUCKET) {
        return vec![failure];
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let problem = if name.len() < 3 {
        Some("must be at least 3 characters".to_string())
    } else if !edge_ok(name.chars().next()) || !edge_ok(name.chars().last()) {
        Some("must start and end with a lowercase letter or digit".to_string())
    } else if let Some(reserved) = ["xn--", "sthree-", "amzn-s3-demo-"]
        .iter()
        .find(|p| name.starts_with(*p))
    {
        Some(format!(
            "must not start with `{reserved}`, which S3 reserves"
        ))
    } else {
        ["-s3alias", "--ol-s3", "--x-s3", "--table-s3"]
            .iter()
            .find(|s| name.ends_with(*s))
            .map(|reserved| format!("must not end with `{reserved}`, which S3 reserves"))
    };
    problem
        .map(|p| CheckFailure::new(property, format!("`{name}` {p}")))
        .into_iter()
        .collect()
}

/// Each invariant input, the property that names it, and why it stays on.
fn invariants(inputs: &ArtifactBucketInputs) -> [(&'static str, bool, &'static str); 5] {
    [
        (
            "versioning",
            inputs.versioning,
            "versioning cannot be turned off: the pipeline reads artifacts by version",
        ),
        (
            "blockPublicAccess",
            inputs.block_public_access,
            "public access cannot be allowed to pipeline artifacts",
        ),
        (
            "bucketOwnerEnforced",
            inputs.bucket_owner_enforced,
            "ACLs cannot be enabled: the bucket owner owns every artifact",
        ),
        (
            "secureTransportPolicy",
            inputs.secure_transport_policy,
            "the policy denying plain HTTP and unencrypted uploads cannot be removed",
        ),
        (
            "bucketKeyEnabled",
            inputs.bucket_key_enabled,
            "the bucket key cannot be turned off: without it every artifact read and write is a KMS request, and builds fail on KMS's request quota",
        ),
    ]
}

#[async_trait]
impl CustomResource for ArtifactBucket {
    const TYPE: &'static str = "securepipeline:aws:ArtifactBucket";
    type Inputs = ArtifactBucketInputs;
    type Outputs = ArtifactBucketOutputs;
    const OUTPUT_KEYS: &'static [&'static str] = &["arn"];
    const REPLACE_KEYS: &'static [&'static str] = &["namePrefix", "bucketName"];

    fn check(
        ctx: &CheckContext<'_>,
        olds: Option<&Self::Inputs>,
        mut news: Self::Inputs,
    ) -> Result<Self::Inputs, Vec<CheckFailure>> {
        let mut failures = Failures::default();
        let chosen = news.bucket_name.clone().unwrap_or_else(|| {
            naming::choose(
                olds.and_then(|o| o.bucket_name.as_deref()),
                olds.map(|o| o.name_prefix.as_str()),
                &news.name_prefix,
                &naming::S3_BUCKET,
                ctx.random_seed,
            )
        });
        failures.extend(check_bucket_name("bucketName", &chosen));
        news.bucket_name = Some(chosen);
        // Before the provider knows its region, the old one is kept: the
        // region replaces the bucket, and nothing here asked to move it.
        if news.region.is_none() {
            news.region = ctx
                .aws
                .map(|aws| aws.region.clone())
                .or_else(|| olds.and_then(|o| o.region.clone()));
        }
        let region = news.region.as_deref().filter(|r| !is_unknown(r));
        if let Some(region) = region.filter(|r| !is_region(r)) {
            failures.push(
                "region",
                format!("`{region}` is not an AWS region; for example eu-west-1"),
            );
        }
        let region = region.filter(|r| is_region(r));
        match check_kms_key_arn(ctx, "kmsKeyArn", &news.kms_key_arn) {
            Some(failure) => failures.extend([failure]),
            None => {
                // S3 only encrypts with a key in the bucket's own region.
                let key_region = news.kms_key_arn.parse::<Arn>().map(|arn| arn.region);
                if let (Ok(key_region), Some(region)) = (key_region, region) {
                    if key_region != region {
                        failures.push(
                            "kmsKeyArn",
                            format!("the key is in {key_region} but the bucket is in {region}; use a key in {region}"),
                        );
                    }
                }
            }
        }
        if !(1..=MAX_EXPIRE_DAYS).contains(&news.expire_after_days) {
            failures.push(
                "expireAfterDays",
                format!(
                    "{} is out of range; use 1 to {MAX_EXPIRE_DAYS} days",
                    news.expire_after_days
                ),
            );
        }
        for (property, value, why) in invariants(&news) {
            if !value {
                failures.push(
                    property,
                    format!("{why}; remove the setting (it is always true)"),
                );
            }
        }
        failures.extend(tags::validate("tags", &news.tags));
        news.tags = effective_tags(ctx, &news.tags);
        failures.into_result(news)
    }

    async fn create(
        ctx: &OpContext<'_>,
        inputs: &Self::Inputs,
    ) -> Result<(String, Self::Outputs), ResourceError> {
        let name = name(inputs)?;
        let region = region(ctx, inputs);
        let clients = ctx.aws.clients_in(region);
        let s3 = &clients.s3;
        // In us-east-1 S3 answers the create of a bucket the account already
        // owns with success, so an existing bucket is looked for first.
        if bucket_exists(s3, name, &ctx.aws.account_id).await {
            return Err(ResourceError::Failed(already_exists(name)));
        }
        // Tags given to CreateBucket exist from the first moment, so a create
        // retried after a lost response can recognise its own bucket. The
        // later tagging step replaces the token with the bucket's tags.
        let token = tags::new_create_token();
        let marker = Tag::builder()
            .key(tags::CREATE_TOKEN_KEY)
            .value(&token)
            .build()
            .map_err(|err| ResourceError::failed(format!("creating bucket {name}"), err))?;
        let configuration = CreateBucketConfiguration::builder()
            .set_location_constraint(
                (region != DEFAULT_S3_REGION).then(|| BucketLocationConstraint::from(region)),
            )
            .tags(marker)
            .build();
        create_once(
            progress(ctx),
            "creating bucket",
            &AWS_TRANSIENT,
            &["BucketAlreadyOwnedByYou"],
            || {
                s3.create_bucket()
                    .bucket(name)
                    .create_bucket_configuration(configuration.clone())
                    .customize()
                    .config_override(aws_sdk_s3::config::Builder::default().retry_config(once()))
                    .send()
            },
            || async {
                let live = create_token_of(s3, name)
                    .await
                    .map_err(|err| err.to_string())?;
                Ok(is_our_bucket(&token, live.as_deref()).then_some(()))
            },
        )
        .await
        .map_err(|err| match err {
            CreateError::Taken => ResourceError::Failed(already_exists(name)),
            other => ResourceError::create_failed(format!("creating bucket {name}"), other),
        })?;
        let outputs = ArtifactBucketOutputs {
            arn: ctx.aws.arns().s3_bucket(name),
        };
        // From here on the bucket exists: a failure must hand it to the engine.
        for setting in ALL_SETTINGS {
            apply(ctx, s3, name, inputs, setting)
                .await
                .map_err(|message| ResourceError::Partial {
                    id: name.to_string(),
                    state: to_json(&outputs),
                    message,
                })?;
        }
        Ok((name.to_string(), outputs))
    }

    async fn read(
        ctx: &OpContext<'_>,
        id: &str,
        inputs: &Self::Inputs,
    ) -> Result<Option<(Self::Inputs, Self::Outputs)>, ResourceError> {
        let region = region(ctx, inputs);
        let clients = ctx.aws.clients_in(region);
        let s3 = &clients.s3;
        let head = s3
            .head_bucket()
            .bucket(id)
            .expected_bucket_owner(&ctx.aws.account_id)
            .send()
            .await;
        let Some(head) = unless_missing(
            head,
            &["NotFound", "NoSuchBucket"],
            &format!("reading bucket {id}"),
        )?
        else {
            return Ok(None);
        };
        let public_access = unless_missing(
            s3.get_public_access_block().bucket(id).send().await,
            &["NoSuchPublicAccessBlockConfiguration"],
            &format!("reading the public access block of bucket {id}"),
        )?;
        let ownership = unless_missing(
            s3.get_bucket_ownership_controls().bucket(id).send().await,
            &["OwnershipControlsNotFoundError"],
            &format!("reading ownership of bucket {id}"),
        )?;
        let versioning = s3
            .get_bucket_versioning()
            .bucket(id)
            .send()
            .await
            .map_err(|err| {
                ResourceError::aws(format!("reading versioning of bucket {id}"), &err)
            })?;
        let encryption = unless_missing(
            s3.get_bucket_encryption().bucket(id).send().await,
            &["ServerSideEncryptionConfigurationNotFoundError"],
            &format!("reading encryption of bucket {id}"),
        )?;
        let policy = unless_missing(
            s3.get_bucket_policy().bucket(id).send().await,
            &["NoSuchBucketPolicy"],
            &format!("reading the policy of bucket {id}"),
        )?;
        let lifecycle = unless_missing(
            s3.get_bucket_lifecycle_configuration()
                .bucket(id)
                .send()
                .await,
            &["NoSuchLifecycleConfiguration"],
            &format!("reading the lifecycle of bucket {id}"),
        )?;
        let tagging = unless_missing(
            s3.get_bucket_tagging().bucket(id).send().await,
            &["NoSuchTagSet"],
            &format!("reading tags of bucket {id}"),
        )?;

        let arn = ctx.aws.arns().s3_bucket(id);
        let expected_policy = bucket_policy(&arn, &inputs.kms_key_arn);
        let mut live = inputs.clone();
        live.bucket_name = Some(id.to_string());
        live.region = Some(head.bucket_region().unwrap_or(region).to_string());
        live.block_public_access = public_access
            .as_ref()
            .and_then(|out| out.public_access_block_configuration())
            .is_some_and(is_fully_blocked);
        live.bucket_owner_enforced =
            ownership
                .as_ref()
                .and_then(|out| out.ownership_controls())
                .is_some_and(|controls| {
                    controls.rules().iter().all(|rule| {
                        rule.object_ownership() == &ObjectOwnership::BucketOwnerEnforced
                    }) && !controls.rules().is_empty()
                });
        live.versioning = versioning.status() == Some(&BucketVersioningStatus::Enabled);
        let encryption = encryption
            .as_ref()
            .and_then(|out| out.server_side_encryption_configuration());
        live.kms_key_arn = encryption.map(encryption_key).unwrap_or_default();
        live.bucket_key_enabled = encryption.is_some_and(bucket_key_enabled);
        // Anything but exactly the policy this kind writes is drift.
        live.secure_transport_policy = policy
            .as_ref()
            .and_then(|out| out.policy())
            .and_then(|text| PolicyDocument::parse_aws(text).ok())
            .is_some_and(|live_policy| live_policy == expected_policy);
        live.expire_after_days = lifecycle.as_ref().map_or(0, |out| expire_days(out.rules()));
        live.tags = tagging
            .as_ref()
            .map(|out| {
                out.tag_set()
                    .iter()
                    .map(|tag| (tag.key().to_string(), tag.value().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some((live, ArtifactBucketOutputs { arn })))
    }

    async fn update(
        ctx: &OpContext<'_>,
        id: &str,
        olds: &Self::Inputs,
        news: &Self::Inputs,
        outputs: &Self::Outputs,
    ) -> Result<Self::Outputs, ResourceError> {
        let clients = ctx.aws.clients_in(region(ctx, news));
        for setting in changed_settings(olds, news) {
            apply(ctx, &clients.s3, id, news, setting)
                .await
                .map_err(ResourceError::Failed)?;
        }
        Ok(outputs.clone())
    }

    async fn delete(
        ctx: &OpContext<'_>,
        id: &str,
        inputs: &Self::Inputs,
        _outputs: &Self::Outputs,
    ) -> Result<(), ResourceError> {
        let clients = ctx.aws.clients_in(region(ctx, inputs));
        let s3 = &clients.s3;
        let exists = if inputs.force_destroy {
            empty(ctx, s3, id).await?
        } else {
            match holds_artifacts(ctx, s3, id).await? {
                Some(true) => {
                    return Err(ResourceError::Failed(format!(
                        "bucket {id} still holds artifacts; set forceDestroy: true on the SecurePipeline to let destroy empty it (artifacts are never deleted by default)"
                    )))
                }
                Some(false) => true,
                None => false,
            }
        };
        if !exists {
            return Ok(());
        }
        let deleted = s3
            .delete_bucket()
            .bucket(id)
            .expected_bucket_owner(&ctx.aws.account_id)
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(err) if is_code(&err, &["NoSuchBucket"]) => Ok(()),
            Err(err) => Err(ResourceError::aws(format!("deleting bucket {id}"), &err)),
        }
    }
}

/// Whether any object version or delete marker is left; `None` when the
/// bucket is already gone.
async fn holds_artifacts(
    ctx: &OpContext<'_>,
    s3: &aws_sdk_s3::Client,
    name: &str,
) -> Result<Option<bool>, ResourceError> {
    let page = s3
        .list_object_versions()
        .bucket(name)
        .expected_bucket_owner(&ctx.aws.account_id)
        .max_keys(1)
        .send()
        .await;
    let page = unless_missing(
        page,
        &["NoSuchBucket"],
        &format!("listing artifacts in bucket {name}"),
    )?;
    Ok(page.map(|page| !page.versions().is_empty() || !page.delete_markers().is_empty()))
}

async fn list_versions(
    ctx: &OpContext<'_>,
    s3: &aws_sdk_s3::Client,
    name: &str,
    key_marker: Option<&str>,
    version_marker: Option<&str>,
) -> Result<Option<ListObjectVersionsOutput>, ResourceError> {
    let page = s3
        .list_object_versions()
        .bucket(name)
        .expected_bucket_owner(&ctx.aws.account_id)
        .set_key_marker(key_marker.map(str::to_string))
        .set_version_id_marker(version_marker.map(str::to_string))
        .send()
        .await;
    unless_missing(
        page,
        &["NoSuchBucket"],
        &format!("listing artifacts in bucket {name}"),
    )
}

/// Every object version and delete marker on one page of a listing.
fn identifiers(page: &ListObjectVersionsOutput) -> Result<Vec<ObjectIdentifier>, BuildError> {
    let versions = page.versions().iter().map(|v| (v.key(), v.version_id()));
    let markers = page
        .delete_markers()
        .iter()
        .map(|m| (m.key(), m.version_id()));
    versions
        .chain(markers)
        .filter_map(|(key, version)| {
            Some(
                ObjectIdentifier::builder()
                    .key(key?)
                    .set_version_id(version.map(str::to_string))
                    .build(),
            )
        })
        .collect()
}

async fn delete_versions(
    ctx: &OpContext<'_>,
    s3: &aws_sdk_s3::Client,
    name: &str,
    objects: &[ObjectIdentifier],
) -> Result<(), ResourceError> {
    for batch in objects.chunks(DELETE_BATCH) {
        let delete = Delete::builder()
            .set_objects(Some(batch.to_vec()))
            .quiet(true)
            .build()
            .map_err(|err| ResourceError::failed(format!("emptying bucket {name}"), err))?;
        let result = s3
            .delete_objects()
            .bucket(name)
            .expected_bucket_owner(&ctx.aws.account_id)
            .delete(delete)
            .send()
            .await
            .map_err(|err| ResourceError::aws(format!("emptying bucket {name}"), &err))?;
        if let Some(error) = result.errors().first() {
            return Err(ResourceError::Failed(format!(
                "emptying bucket {name}: {} deletions failed, the first of `{}`: {}",
                result.errors().len(),
                error.key().unwrap_or_default(),
                error.message().or(error.code()).unwrap_or("unknown error"),
            )));
        }
    }
    Ok(())
}

/// Deletes every object version and delete marker, page by page. Returns
/// false when the bucket is already gone.
async fn empty(
    ctx: &OpContext<'_>,
    s3: &aws_sdk_s3::Client,
    name: &str,
) -> Result<bool, ResourceError> {
    let Some(mut page) = list_versions(ctx, s3, name, None, None).await? else {
        return Ok(false);
    };
    loop {
        let objects = identifiers(&page)
            .map_err(|err| ResourceError::failed(format!("emptying bucket {name}"), err))?;
        // The next page is fetched before this one is deleted, so that its
        // markers always name an entry that still exists.
        let next = if page.is_truncated() == Some(true) {
            list_versions(
                ctx,
                s3,
                name,
                page.next_key_marker(),
                page.next_version_id_marker(),
            )
            .await?
        } else {
            None
        };
        delete_versions(ctx, s3, name, &objects).await?;
        match next {
            Some(next) => page = next,
            None => return Ok(true),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::aws::{AwsContext, Endpoints};

    const KEY: &str = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    pub(crate) fn inputs() -> ArtifactBucketInputs {
        ArtifactBucketInputs {
            name_prefix: "app-x1y2-artifacts".into(),
            bucket_name: None,
            region: None,
            kms_key_arn: KEY.into(),
            expire_after_days: 30,
            force_destroy: false,
            versioning: true,
            block_public_access: true,
            bucket_owner_enforced: true,
            secure_transport_policy: true,
            bucket_key_enabled: true,
            tags: Tags::new(),
        }
    }

    fn aws() -> AwsContext {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .build();
        AwsContext::new(
            sdk,
            Endpoints::default(),
            "123456789012".into(),
            "aws".into(),
            "eu-west-1".into(),
            Tags::new(),
        )
    }

    fn check(
        olds: Option<&ArtifactBucketInputs>,
        news: ArtifactBucketInputs,
    ) -> Result<ArtifactBucketInputs, Vec<CheckFailure>> {
        let ctx = CheckContext {
            name: "artifacts",
            random_seed: b"seed",
            aws: None,
        };
        ArtifactBucket::check(&ctx, olds, news)
    }

    fn properties(failures: &[CheckFailure]) -> Vec<&str> {
        failures.iter().map(|f| f.property.as_str()).collect()
    }

    #[test]
    fn chooses_a_lowercase_name_and_adds_managed_tags() {
        let checked = check(
            None,
            ArtifactBucketInputs {
                name_prefix: "App_X1Y2-Artifacts".into(),
                ..inputs()
            },
        )
        .unwrap();
        let name = checked.bucket_name.clone().unwrap();
        assert!(name.starts_with("app-x1y2-artifacts-"), "{name}");
        assert!(name.len() <= 63);
        assert_eq!(checked.tags[tags::MANAGED_BY_KEY], tags::MANAGED_BY_VALUE);
        let again = check(
            Some(&checked),
            ArtifactBucketInputs {
                name_prefix: "App_X1Y2-Artifacts".into(),
                ..inputs()
            },
        )
        .unwrap();
        assert_eq!(again.bucket_name, checked.bucket_name);
    }

    #[test]
    fn region_defaults_to_the_providers() {
        let aws = aws();
        let ctx = CheckContext {
            name: "artifacts",
            random_seed: b"seed",
            aws: Some(&aws),
        };
        let checked = ArtifactBucket::check(&ctx, None, inputs()).unwrap();
        assert_eq!(checked.region.as_deref(), Some("eu-west-1"));
        // A key in another region cannot encrypt this bucket.
        let failures = ArtifactBucket::check(
            &ctx,
            None,
            ArtifactBucketInputs {
                region: Some("us-west-2".into()),
                ..inputs()
            },
        )
        .unwrap_err();
        assert_eq!(properties(&failures), vec!["kmsKeyArn"]);
        assert!(failures[0].reason.contains("us-west-2"));
    }

    #[test]
    fn every_invariant_is_enforced_by_name() {
        let failures = check(
            None,
            ArtifactBucketInputs {
                versioning: false,
                block_public_access: false,
                bucket_owner_enforced: false,
                secure_transport_policy: false,
                bucket_key_enabled: false,
                ..inputs()
            },
        )
        .unwrap_err();
        assert_eq!(
            properties(&failures),
            vec![
                "versioning",
                "blockPublicAccess",
                "bucketOwnerEnforced",
                "secureTransportPolicy",
                "bucketKeyEnabled"
            ]
        );
        assert!(failures
            .iter()
            .all(|f| f.reason.contains("remove the setting")));
        // Held, the bucket key is left out of the inputs, so state written
        // before it was an input has no diff.
        assert!(to_json(&inputs()).get("bucketKeyEnabled").is_none());
    }

    #[test]
    fn rejects_out_of_range_expiry_bad_names_regions_and_keys() {
        for days in [0, 3651] {
            let failures = check(
                None,
                ArtifactBucketInputs {
                    expire_after_days: days,
                    ..inputs()
                },
            )
            .unwrap_err();
            assert_eq!(properties(&failures), vec!["expireAfterDays"]);
        }
        for bad in ["ab", "-abc", "xn--abc", "abc-s3alias", "Upper", "has.dots"] {
            let failures = check(
                None,
                ArtifactBucketInputs {
                    bucket_name: Some(bad.into()),
                    ..inputs()
                },
            )
            .unwrap_err();
            assert_eq!(properties(&failures), vec!["bucketName"], "{bad}");
        }
        let failures = check(
            None,
            ArtifactBucketInputs {
                region: Some("europe".into()),
                ..inputs()
            },
        )
        .unwrap_err();
        assert_eq!(properties(&failures), vec!["region"]);
        let failures = check(
            None,
            ArtifactBucketInputs {
                kms_key_arn: "alias/aws/s3".into(),
                ..inputs()
            },
        )
        .unwrap_err();
        assert_eq!(properties(&failures), vec!["kmsKeyArn"]);
    }

    #[test]
    fn bucket_policy_is_exact() {
        let policy = bucket_policy("arn:aws:s3:::b", KEY);
        let everyone = serde_json::json!({"AWS": ["*"]});
        let expected = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": everyone,
                    "Action": ["s3:*"], "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": ["false"]}}
                },
                {
                    "Sid": "DenyUnencryptedObjectUploads", "Effect": "Deny", "Principal": everyone,
                    "Action": ["s3:PutObject"], "Resource": ["arn:aws:s3:::b/*"],
                    "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": ["aws:kms"]}}
                },
                {
                    "Sid": "DenyUploadsWithoutArtifactKey", "Effect": "Deny", "Principal": everyone,
                    "Action": ["s3:PutObject"], "Resource": ["arn:aws:s3:::b/*"],
                    "Condition": {"Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": ["true"]}}
                },
                {
                    "Sid": "DenyUploadsWithOtherKeys", "Effect": "Deny", "Principal": everyone,
                    "Action": ["s3:PutObject"], "Resource": ["arn:aws:s3:::b/*"],
                    "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": [KEY]}}
                }
            ]
        });
        assert_eq!(serde_json::to_value(&policy).unwrap(), expected);
        // Read back from S3, it compares equal to what was written.
        assert_eq!(
            PolicyDocument::parse_aws(&policy.to_compact_json()).unwrap(),
            policy
        );
    }

    #[test]
    fn lifecycle_round_trips_and_other_rules_read_as_drift() {
        let config = lifecycle(30).unwrap();
        let rule = &config.rules()[0];
        assert_eq!(rule.expiration().and_then(|e| e.days()), Some(30));
        assert_eq!(
            rule.noncurrent_version_expiration()
                .and_then(|e| e.noncurrent_days()),
            Some(30)
        );
        assert_eq!(
            rule.abort_incomplete_multipart_upload()
                .and_then(|a| a.days_after_initiation()),
            Some(7)
        );
        assert_eq!(expire_days(config.rules()), 30);
        assert_eq!(expire_days(&[]), 0);
        assert_eq!(expire_days(&[rule.clone(), rule.clone()]), 0);
        let variant = |status: ExpirationStatus, prefix: &str, noncurrent: i32| {
            LifecycleRule::builder()
                .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
                .status(status)
                .expiration(LifecycleExpiration::builder().days(30).build())
                .noncurrent_version_expiration(
                    NoncurrentVersionExpiration::builder()
                        .noncurrent_days(noncurrent)
                        .build(),
                )
                .abort_incomplete_multipart_upload(
                    AbortIncompleteMultipartUpload::builder()
                        .days_after_initiation(7)
                        .build(),
                )
                .build()
                .unwrap()
        };
        assert_eq!(
            expire_days(&[variant(ExpirationStatus::Enabled, "", 30)]),
            30
        );
        assert_eq!(
            expire_days(&[variant(ExpirationStatus::Disabled, "", 30)]),
            0
        );
        assert_eq!(
            expire_days(&[variant(ExpirationStatus::Enabled, "tmp/", 30)]),
            0
        );
        assert_eq!(
            expire_days(&[variant(ExpirationStatus::Enabled, "", 3650)]),
            0
        );
    }

    #[test]
    fn encryption_reads_back_the_key() {
        let config = encryption(KEY).unwrap();
        assert_eq!(config.rules()[0].bucket_key_enabled(), Some(true));
        assert_eq!(encryption_key(&config), KEY);
        assert!(bucket_key_enabled(&config));
        let without_bucket_key = ServerSideEncryptionConfiguration::builder()
            .rules(
                ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(
                        config.rules()[0]
                            .apply_server_side_encryption_by_default()
                            .unwrap()
                            .clone(),
                    )
                    .bucket_key_enabled(false)
                    .build(),
            )
            .build()
            .unwrap();
        assert_eq!(encryption_key(&without_bucket_key), KEY);
        assert!(!bucket_key_enabled(&without_bucket_key));
        let sse_s3 = ServerSideEncryptionConfiguration::builder()
            .rules(
                ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(
                        ServerSideEncryptionByDefault::builder()
                            .sse_algorithm(ServerSideEncryption::Aes256)
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .build()
            .unwrap();
        assert_eq!(encryption_key(&sse_s3), "");
        assert!(!bucket_key_enabled(&sse_s3));
    }

    #[test]
    fn an_owned_bucket_is_ours_only_with_this_creates_token() {
        assert!(is_our_bucket("t1", Some("t1")));
        assert!(!is_our_bucket("t1", Some("t2")));
        assert!(!is_our_bucket("t1", None));
    }

    #[test]
    fn update_reapplies_only_what_differs() {
        let olds = inputs();
        assert!(changed_settings(&olds, &olds).is_empty());
        let drifted = ArtifactBucketInputs {
            block_public_access: false,
            versioning: false,
            expire_after_days: 0,
            ..inputs()
        };
        assert_eq!(
            changed_settings(&drifted, &inputs()),
            vec![
                Setting::PublicAccessBlock,
                Setting::Versioning,
                Setting::Lifecycle
            ]
        );
        let rekeyed = ArtifactBucketInputs {
            kms_key_arn: String::new(),
            ..inputs()
        };
        assert_eq!(
            changed_settings(&rekeyed, &inputs()),
            vec![Setting::Encryption, Setting::Policy]
        );
        let bucket_key_off = ArtifactBucketInputs {
            bucket_key_enabled: false,
            ..inputs()
        };
        assert_eq!(
            changed_settings(&bucket_key_off, &inputs()),
            vec![Setting::Encryption]
        );
    }
}
