//! `securepipeline:aws:ArtifactBucket`: the pipeline's artifact store:
//! versioned, SSE-KMS with the pipeline's key, fully public-access-blocked,
//! owner-enforced, TLS-only, and expiring old artifacts.

use async_trait::async_trait;
use aws_sdk_s3::error::BuildError;
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

use super::common::{check_kms_key_arn, enabled, from_sdk_tags, is_enabled, sdk_tags};
use crate::aws::arn::{is_region, Arn};
use crate::aws::failure::AwsFailure;
use crate::aws::retry::{once, Transient};
use crate::iam::policy::Conditions;
use crate::iam::{Effect, PolicyDocument, Statement};
use crate::naming;
use crate::resource::{
    is_unknown, AutoName, CheckContext, CheckFailure, CreateToken, CustomResource, Failures,
    NameScope, Op, Placement, ResourceError, TagChange,
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

pub(crate) fn deny(
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

pub(crate) fn public_access_block() -> PublicAccessBlockConfiguration {
    PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build()
}

pub(crate) fn is_fully_blocked(config: &PublicAccessBlockConfiguration) -> bool {
    config.block_public_acls() == Some(true)
        && config.ignore_public_acls() == Some(true)
        && config.block_public_policy() == Some(true)
        && config.restrict_public_buckets() == Some(true)
}

pub(crate) fn ownership_controls() -> Result<OwnershipControls, BuildError> {
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

pub(crate) fn lifecycle(id: &str, days: u32) -> Result<BucketLifecycleConfiguration, BuildError> {
    let days = i32::try_from(days).unwrap_or(i32::MAX);
    let rule = LifecycleRule::builder()
        .id(id)
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
pub(crate) fn expire_days(rules: &[LifecycleRule]) -> u32 {
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

/// True when the account already owns a bucket of this name. Any other
/// answer (not found, someone else's, an error) leaves it to CreateBucket.
async fn bucket_exists(ctx: &Op<'_>, name: &str) -> bool {
    let s3 = &ctx.clients().s3;
    ctx.call(format!("looking for bucket {name}"), || {
        s3.head_bucket()
            .bucket(name)
            .expected_bucket_owner(&ctx.aws.account_id)
            .send()
    })
    .await
    .is_ok()
}

/// The bucket's tags; none too when it has none.
pub(crate) fn tagging(tags: &Tags) -> Result<Tagging, ResourceError> {
    let tag_set = sdk_tags(tags, |key, value| {
        Tag::builder().key(key).value(value).build()
    })?;
    Tagging::builder()
        .set_tag_set(Some(tag_set))
        .build()
        .map_err(|err| ResourceError::failed("building the bucket's tags", err))
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
}

const ALL_SETTINGS: [Setting; 6] = [
    Setting::PublicAccessBlock,
    Setting::Ownership,
    Setting::Versioning,
    Setting::Encryption,
    Setting::Policy,
    Setting::Lifecycle,
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
        })
        .collect()
}

/// S3 bucket configuration is eventually consistent: a bucket just created
/// may briefly be missing for the calls that configure it.
pub(crate) const JUST_CREATED: [Transient; 1] = [Transient::Propagation {
    code: "NoSuchBucket",
    message_contains: "does not exist",
}];

async fn apply(
    ctx: &Op<'_>,
    name: &str,
    inputs: &ArtifactBucketInputs,
    setting: Setting,
) -> Result<(), ResourceError> {
    let s3 = &ctx.clients().s3;
    let built = |what: &str, err: BuildError| {
        ResourceError::failed(format!("{what} of bucket {name}"), err)
    };
    let what = |what: &str| format!("{what} of bucket {name}");
    match setting {
        Setting::PublicAccessBlock => {
            ctx.call_waiting(
                what("setting the public access block"),
                &JUST_CREATED,
                || {
                    s3.put_public_access_block()
                        .bucket(name)
                        .public_access_block_configuration(public_access_block())
                        .send()
                },
            )
            .await?;
        }
        Setting::Ownership => {
            let controls = ownership_controls().map_err(|err| built("setting ownership", err))?;
            ctx.call_waiting(what("setting ownership"), &JUST_CREATED, || {
                s3.put_bucket_ownership_controls()
                    .bucket(name)
                    .ownership_controls(controls.clone())
                    .send()
            })
            .await?;
        }
        Setting::Versioning => {
            ctx.call_waiting(what("enabling versioning"), &JUST_CREATED, || {
                s3.put_bucket_versioning()
                    .bucket(name)
                    .versioning_configuration(
                        VersioningConfiguration::builder()
                            .status(BucketVersioningStatus::Enabled)
                            .build(),
                    )
                    .send()
            })
            .await?;
        }
        Setting::Encryption => {
            let config =
                encryption(&inputs.kms_key_arn).map_err(|err| built("setting encryption", err))?;
            ctx.call_waiting(what("setting encryption"), &JUST_CREATED, || {
                s3.put_bucket_encryption()
                    .bucket(name)
                    .server_side_encryption_configuration(config.clone())
                    .send()
            })
            .await?;
        }
        Setting::Policy => {
            let policy =
                bucket_policy(&ctx.arns().s3_bucket(name), &inputs.kms_key_arn).to_compact_json();
            ctx.call_waiting(what("setting the policy"), &JUST_CREATED, || {
                s3.put_bucket_policy().bucket(name).policy(&policy).send()
            })
            .await?;
        }
        Setting::Lifecycle => {
            let config = lifecycle(LIFECYCLE_RULE_ID, inputs.expire_after_days)
                .map_err(|err| built("setting the lifecycle", err))?;
            ctx.call_waiting(what("setting the lifecycle"), &JUST_CREATED, || {
                s3.put_bucket_lifecycle_configuration()
                    .bucket(name)
                    .lifecycle_configuration(config.clone())
                    .send()
            })
            .await?;
        }
    }
    Ok(())
}

/// S3 rules on bucket names beyond characters and length, which the
/// lifecycle checks first.
pub(crate) fn check_bucket_name(property: &str, name: &str) -> Vec<CheckFailure> {
    if is_unknown(name) || naming::check(property, name, &naming::S3_BUCKET).is_some() {
        return Vec::new();
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

/// S3's answers for a bucket that does not exist.
pub(crate) const GONE: &[&str] = &["NotFound", "NoSuchBucket"];

#[async_trait]
impl CustomResource for ArtifactBucket {
    const TYPE: &'static str = "securepipeline:aws:ArtifactBucket";
    type Inputs = ArtifactBucketInputs;
    type Outputs = ArtifactBucketOutputs;
    const OUTPUT_KEYS: &'static [&'static str] = &["arn"];
    const REPLACE_KEYS: &'static [&'static str] = &[];
    // S3 names are global; the account owning one is what a create can see.
    const NAME: AutoName = AutoName::new(
        "bucketName",
        &naming::S3_BUCKET,
        "bucket",
        NameScope::Account,
    );
    const PLACEMENT: Placement = Placement::Regional;
    // CreateBucket carries only the ownership marker; the bucket's tags are
    // set last, replacing it.
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
        for (property, value, why) in invariants(news) {
            if !value {
                failures.push(
                    property,
                    format!("{why}; remove the setting (it is always true)"),
                );
            }
        }
    }

    async fn create_resource(
        ctx: &Op<'_>,
        _inputs: &Self::Inputs,
        token: &CreateToken,
    ) -> Result<(String, Self::Outputs), ResourceError> {
        let name = ctx.name()?;
        create_bucket(ctx, name, token, &Self::NAME).await?;
        let outputs = ArtifactBucketOutputs {
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
        for setting in ALL_SETTINGS {
            apply(ctx, id, inputs, setting).await?;
        }
        Ok(())
    }

    async fn read_resource(
        ctx: &Op<'_>,
        id: &str,
        inputs: &Self::Inputs,
    ) -> Result<Option<(Self::Inputs, Self::Outputs)>, ResourceError> {
        let s3 = &ctx.clients().s3;
        let what = |what: &str| format!("reading {what} of bucket {id}");
        let Some(head) = ctx
            .find(format!("reading bucket {id}"), GONE, || {
                s3.head_bucket()
                    .bucket(id)
                    .expected_bucket_owner(&ctx.aws.account_id)
                    .send()
            })
            .await?
        else {
            return Ok(None);
        };
        let public_access = ctx
            .find(
                what("the public access block"),
                &["NoSuchPublicAccessBlockConfiguration"],
                || s3.get_public_access_block().bucket(id).send(),
            )
            .await?;
        let ownership = ctx
            .find(
                what("ownership"),
                &["OwnershipControlsNotFoundError"],
                || s3.get_bucket_ownership_controls().bucket(id).send(),
            )
            .await?;
        let versioning = ctx
            .call(what("versioning"), || {
                s3.get_bucket_versioning().bucket(id).send()
            })
            .await?;
        let encryption = ctx
            .find(
                what("encryption"),
                &["ServerSideEncryptionConfigurationNotFoundError"],
                || s3.get_bucket_encryption().bucket(id).send(),
            )
            .await?;
        let policy = ctx
            .find(what("the policy"), &["NoSuchBucketPolicy"], || {
                s3.get_bucket_policy().bucket(id).send()
            })
            .await?;
        let lifecycle = ctx
            .find(
                what("the lifecycle"),
                &["NoSuchLifecycleConfiguration"],
                || s3.get_bucket_lifecycle_configuration().bucket(id).send(),
            )
            .await?;

        let arn = ctx.arns().s3_bucket(id);
        let expected_policy = bucket_policy(&arn, &inputs.kms_key_arn);
        let mut live = inputs.clone();
        live.bucket_name = Some(id.to_string());
        live.region = Some(head.bucket_region().unwrap_or(&ctx.region).to_string());
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
        Ok(Some((live, ArtifactBucketOutputs { arn })))
    }

    async fn update_resource(
        ctx: &Op<'_>,
        id: &str,
        olds: &Self::Inputs,
        news: &Self::Inputs,
        outputs: &Self::Outputs,
    ) -> Result<Self::Outputs, ResourceError> {
        for setting in changed_settings(olds, news) {
            apply(ctx, id, news, setting).await?;
        }
        Ok(outputs.clone())
    }

    async fn delete_resource(
        ctx: &Op<'_>,
        id: &str,
        inputs: &Self::Inputs,
        _outputs: &Self::Outputs,
    ) -> Result<(), ResourceError> {
        delete_bucket(ctx, id, inputs.force_destroy).await
    }

    async fn read_tags(ctx: &Op<'_>, id: &str) -> Result<Option<Tags>, AwsFailure> {
        read_bucket_tags(ctx, id).await
    }

    /// S3 has no tag or untag: the whole set is replaced at once.
    async fn write_tags(ctx: &Op<'_>, id: &str, change: &TagChange) -> Result<(), ResourceError> {
        write_bucket_tags(ctx, id, change).await
    }
}

/// Creates bucket `name` in the operation's region, marked with the
/// create token so that a create retried after a lost answer recognises
/// its own bucket. Shared by every bucket kind.
pub(crate) async fn create_bucket(
    ctx: &Op<'_>,
    name: &str,
    token: &CreateToken,
    auto_name: &AutoName,
) -> Result<(), ResourceError> {
    let s3 = &ctx.clients().s3;
    // In us-east-1 S3 answers the create of a bucket the account already
    // owns with success, so an existing bucket is looked for first.
    if bucket_exists(ctx, name).await {
        return Err(ResourceError::Failed(auto_name.taken(name)));
    }
    // Tags given to CreateBucket exist from the first moment, so a create
    // retried after a lost response can recognise its own bucket.
    let marker = Tag::builder()
        .key(tags::CREATE_TOKEN_KEY)
        .value(token.as_str())
        .build()
        .map_err(|err| ResourceError::failed(format!("creating bucket {name}"), err))?;
    let configuration = CreateBucketConfiguration::builder()
        .set_location_constraint(
            (ctx.region != DEFAULT_S3_REGION)
                .then(|| BucketLocationConstraint::from(ctx.region.as_str())),
        )
        .tags(marker)
        .build();
    ctx.create_once(
        format!("creating bucket {name}"),
        name,
        &[],
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
            let tags = read_bucket_tags(ctx, name).await?;
            Ok(tags.filter(|tags| token.is_on(tags)).map(drop))
        },
    )
    .await?;
    Ok(())
}

/// Deletes bucket `id`: emptied first when `force_destroy`, otherwise
/// refused while it holds artifacts.
pub(crate) async fn delete_bucket(
    ctx: &Op<'_>,
    id: &str,
    force_destroy: bool,
) -> Result<(), ResourceError> {
    let exists = if force_destroy {
        empty(ctx, id).await?
    } else {
        match holds_artifacts(ctx, id).await? {
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
    let s3 = &ctx.clients().s3;
    ctx.delete(format!("deleting bucket {id}"), &["NoSuchBucket"], || {
        s3.delete_bucket()
            .bucket(id)
            .expected_bucket_owner(&ctx.aws.account_id)
            .send()
    })
    .await?;
    Ok(())
}

pub(crate) async fn read_bucket_tags(ctx: &Op<'_>, id: &str) -> Result<Option<Tags>, AwsFailure> {
    let s3 = &ctx.clients().s3;
    match ctx
        .call(format!("reading tags of bucket {id}"), || {
            s3.get_bucket_tagging().bucket(id).send()
        })
        .await
    {
        Ok(tagging) => Ok(Some(from_sdk_tags(tagging.tag_set(), |tag| {
            (tag.key(), tag.value())
        }))),
        Err(failure) if failure.is(&["NoSuchTagSet"]) => Ok(Some(Tags::new())),
        Err(failure) if failure.is(&["NoSuchBucket"]) => Ok(None),
        Err(failure) => Err(failure),
    }
}

pub(crate) async fn write_bucket_tags(
    ctx: &Op<'_>,
    id: &str,
    change: &TagChange,
) -> Result<(), ResourceError> {
    let s3 = &ctx.clients().s3;
    let tag_set = tagging(&change.all)?;
    ctx.call_waiting(format!("tagging bucket {id}"), &JUST_CREATED, || {
        s3.put_bucket_tagging()
            .bucket(id)
            .tagging(tag_set.clone())
            .send()
    })
    .await?;
    Ok(())
}

/// Whether any object version or delete marker is left; `None` when the
/// bucket is already gone.
async fn holds_artifacts(ctx: &Op<'_>, name: &str) -> Result<Option<bool>, AwsFailure> {
    let s3 = &ctx.clients().s3;
    let page = ctx
        .find(
            format!("listing artifacts in bucket {name}"),
            &["NoSuchBucket"],
            || {
                s3.list_object_versions()
                    .bucket(name)
                    .expected_bucket_owner(&ctx.aws.account_id)
                    .max_keys(1)
                    .send()
            },
        )
        .await?;
    Ok(page.map(|page| !page.versions().is_empty() || !page.delete_markers().is_empty()))
}

async fn list_versions(
    ctx: &Op<'_>,
    name: &str,
    key_marker: Option<&str>,
    version_marker: Option<&str>,
) -> Result<Option<ListObjectVersionsOutput>, AwsFailure> {
    let s3 = &ctx.clients().s3;
    ctx.find(
        format!("listing artifacts in bucket {name}"),
        &["NoSuchBucket"],
        || {
            s3.list_object_versions()
                .bucket(name)
                .expected_bucket_owner(&ctx.aws.account_id)
                .set_key_marker(key_marker.map(str::to_string))
                .set_version_id_marker(version_marker.map(str::to_string))
                .send()
        },
    )
    .await
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
    ctx: &Op<'_>,
    name: &str,
    objects: &[ObjectIdentifier],
) -> Result<(), ResourceError> {
    let s3 = &ctx.clients().s3;
    for batch in objects.chunks(DELETE_BATCH) {
        let delete = Delete::builder()
            .set_objects(Some(batch.to_vec()))
            .quiet(true)
            .build()
            .map_err(|err| ResourceError::failed(format!("emptying bucket {name}"), err))?;
        let result = ctx
            .call(format!("emptying bucket {name}"), || {
                s3.delete_objects()
                    .bucket(name)
                    .expected_bucket_owner(&ctx.aws.account_id)
                    .delete(delete.clone())
                    .send()
            })
            .await?;
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
async fn empty(ctx: &Op<'_>, name: &str) -> Result<bool, ResourceError> {
    let Some(mut page) = list_versions(ctx, name, None, None).await? else {
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
                name,
                page.next_key_marker(),
                page.next_version_id_marker(),
            )
            .await?
        } else {
            None
        };
        delete_versions(ctx, name, &objects).await?;
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
    use crate::resource::{to_json, Lifecycle};

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
        let config = lifecycle(LIFECYCLE_RULE_ID, 30).unwrap();
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
