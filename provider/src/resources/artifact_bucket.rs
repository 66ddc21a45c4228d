//! `securepipeline:aws:ArtifactBucket`: the pipeline's artifact store:
//! versioned, SSE-KMS with the pipeline's key, fully public-access-blocked,
//! owner-enforced, TLS-only, and expiring old artifacts.

use async_trait::async_trait;
use aws_sdk_s3::error::BuildError;
use aws_sdk_s3::types::{
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule,
};
use serde::{Deserialize, Serialize};

use super::bucket::{
    check_bucket_name, check_protections, create_bucket, delete_bucket, deny, put, read_bucket,
    read_bucket_tags, write_bucket_tags, BucketSetting, Invariant,
};
use super::common::{check_kms_key_arn, enabled, is_enabled};
use crate::aws::arn::{is_region, Arn};
use crate::aws::failure::AwsFailure;
use crate::iam::PolicyDocument;
use crate::naming;
use crate::resource::{
    is_unknown, AutoName, CheckContext, CreateToken, CustomResource, Failures, NameScope, Op,
    Placement, ResourceError, TagChange,
};
use crate::tags::Tags;

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

const LIFECYCLE_RULE_ID: &str = "expire-artifacts";
const SSE_HEADER: &str = "s3:x-amz-server-side-encryption";
const SSE_KEY_HEADER: &str = "s3:x-amz-server-side-encryption-aws-kms-key-id";

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

async fn apply(
    ctx: &Op<'_>,
    name: &str,
    inputs: &ArtifactBucketInputs,
    setting: Setting,
) -> Result<(), ResourceError> {
    let setting = match setting {
        Setting::PublicAccessBlock => BucketSetting::PublicAccessBlock,
        Setting::Ownership => BucketSetting::Ownership,
        Setting::Versioning => BucketSetting::Versioning,
        Setting::Encryption => BucketSetting::Encryption(encryption(&inputs.kms_key_arn)),
        Setting::Policy => BucketSetting::Policy(bucket_policy(
            &ctx.arns().s3_bucket(name),
            &inputs.kms_key_arn,
        )),
        Setting::Lifecycle => BucketSetting::Lifecycle {
            rule_id: LIFECYCLE_RULE_ID,
            days: inputs.expire_after_days,
        },
    };
    put(ctx, name, setting).await
}

/// Each invariant input, the property that names it, and why it stays on.
fn invariants(inputs: &ArtifactBucketInputs) -> [Invariant; 5] {
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
        check_protections(news.expire_after_days, &invariants(news), failures);
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
        let Some(bucket) = read_bucket(ctx, id).await? else {
            return Ok(None);
        };
        let arn = ctx.arns().s3_bucket(id);
        let expected_policy = bucket_policy(&arn, &inputs.kms_key_arn);
        let mut live = inputs.clone();
        live.bucket_name = Some(id.to_string());
        live.region = Some(bucket.region.unwrap_or_else(|| ctx.region.clone()));
        live.block_public_access = bucket.fully_blocked;
        live.bucket_owner_enforced = bucket.owner_enforced;
        live.versioning = bucket.versioned;
        let encryption = bucket.encryption.as_ref();
        live.kms_key_arn = encryption.map(encryption_key).unwrap_or_default();
        live.bucket_key_enabled = encryption.is_some_and(bucket_key_enabled);
        // Anything but exactly the policy this kind writes is drift.
        live.secure_transport_policy = bucket.policy == Some(expected_policy);
        live.expire_after_days = bucket.expire_after_days;
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::aws::{AwsContext, Endpoints};
    use crate::resource::{to_json, CheckFailure, Lifecycle};
    use crate::tags;

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
