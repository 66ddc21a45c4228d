//! What every S3 bucket this provider owns shares, whatever it holds:
//! creation marked with the create token, the protections each kind keeps
//! on (public access blocked, owner-enforced, versioned, expiring), reading
//! them back, tags, and deletion (emptied only when asked).

use aws_sdk_s3::error::BuildError;
use aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint,
    BucketVersioningStatus, CreateBucketConfiguration, Delete, ExpirationStatus,
    LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, NoncurrentVersionExpiration,
    ObjectIdentifier, ObjectOwnership, OwnershipControls, OwnershipControlsRule,
    PublicAccessBlockConfiguration, ServerSideEncryptionConfiguration, Tag, Tagging,
    VersioningConfiguration,
};

use super::common::{from_sdk_tags, sdk_tags};
use crate::aws::failure::AwsFailure;
use crate::aws::retry::{once, Transient};
use crate::iam::policy::Conditions;
use crate::iam::{Effect, PolicyDocument, Statement};
use crate::naming;
use crate::resource::{
    is_unknown, AutoName, CheckFailure, CreateToken, Failures, Op, ResourceError, TagChange,
};
use crate::tags::{self, Tags};

pub const MAX_EXPIRE_DAYS: u32 = 3650;

/// Uploads a build abandoned halfway stop costing money after a week.
const ABORT_MULTIPART_DAYS: i32 = 7;

/// The one region where CreateBucket takes no location constraint.
const DEFAULT_S3_REGION: &str = "us-east-1";

/// DeleteObjects takes at most this many keys per request.
const DELETE_BATCH: usize = 1000;

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

/// S3 bucket configuration is eventually consistent: a bucket just created
/// may briefly be missing for the calls that configure it.
pub(crate) const JUST_CREATED: [Transient; 1] = [Transient::Propagation {
    code: "NoSuchBucket",
    message_contains: "does not exist",
}];

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

/// S3's answers for a bucket that does not exist.
pub(crate) const GONE: &[&str] = &["NotFound", "NoSuchBucket"];

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

/// One piece of a bucket's configuration, as a kind writes it.
pub(crate) enum BucketSetting {
    PublicAccessBlock,
    Ownership,
    Versioning,
    Encryption(Result<ServerSideEncryptionConfiguration, BuildError>),
    Policy(PolicyDocument),
    /// The one lifecycle rule: `rule_id`, expiring after `days`.
    Lifecycle {
        rule_id: &'static str,
        days: u32,
    },
}

/// Writes `setting` to bucket `name`, waiting out a bucket just created.
pub(crate) async fn put(
    ctx: &Op<'_>,
    name: &str,
    setting: BucketSetting,
) -> Result<(), ResourceError> {
    let s3 = &ctx.clients().s3;
    let what = |what: &str| format!("{what} of bucket {name}");
    let built = |what: &str, err: BuildError| {
        ResourceError::failed(format!("{what} of bucket {name}"), err)
    };
    match setting {
        BucketSetting::PublicAccessBlock => {
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
        BucketSetting::Ownership => {
            let controls = ownership_controls().map_err(|err| built("setting ownership", err))?;
            ctx.call_waiting(what("setting ownership"), &JUST_CREATED, || {
                s3.put_bucket_ownership_controls()
                    .bucket(name)
                    .ownership_controls(controls.clone())
                    .send()
            })
            .await?;
        }
        BucketSetting::Versioning => {
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
        BucketSetting::Encryption(config) => {
            let config = config.map_err(|err| built("setting encryption", err))?;
            ctx.call_waiting(what("setting encryption"), &JUST_CREATED, || {
                s3.put_bucket_encryption()
                    .bucket(name)
                    .server_side_encryption_configuration(config.clone())
                    .send()
            })
            .await?;
        }
        BucketSetting::Policy(policy) => {
            let policy = policy.to_compact_json();
            ctx.call_waiting(what("setting the policy"), &JUST_CREATED, || {
                s3.put_bucket_policy().bucket(name).policy(&policy).send()
            })
            .await?;
        }
        BucketSetting::Lifecycle { rule_id, days } => {
            let config =
                lifecycle(rule_id, days).map_err(|err| built("setting the lifecycle", err))?;
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

/// What a bucket's protections read back as, for each kind to compare with
/// what it writes.
pub(crate) struct LiveBucket {
    pub region: Option<String>,
    pub fully_blocked: bool,
    pub owner_enforced: bool,
    pub versioned: bool,
    pub encryption: Option<ServerSideEncryptionConfiguration>,
    pub policy: Option<PolicyDocument>,
    pub expire_after_days: u32,
}

/// Reads bucket `id`'s protections; `None` when the account owns no such
/// bucket.
pub(crate) async fn read_bucket(
    ctx: &Op<'_>,
    id: &str,
) -> Result<Option<LiveBucket>, ResourceError> {
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
    Ok(Some(LiveBucket {
        region: head.bucket_region().map(str::to_string),
        fully_blocked: public_access
            .as_ref()
            .and_then(|out| out.public_access_block_configuration())
            .is_some_and(is_fully_blocked),
        owner_enforced: ownership
            .as_ref()
            .and_then(|out| out.ownership_controls())
            .is_some_and(|controls| {
                !controls.rules().is_empty()
                    && controls.rules().iter().all(|rule| {
                        rule.object_ownership() == &ObjectOwnership::BucketOwnerEnforced
                    })
            }),
        versioned: versioning.status() == Some(&BucketVersioningStatus::Enabled),
        encryption: encryption.and_then(|out| out.server_side_encryption_configuration().cloned()),
        policy: policy
            .as_ref()
            .and_then(|out| out.policy())
            .and_then(|text| PolicyDocument::parse_aws(text).ok()),
        expire_after_days: lifecycle.as_ref().map_or(0, |out| expire_days(out.rules())),
    }))
}

/// A protection a bucket kind keeps on: its property, its value, and why it
/// cannot be turned off.
pub(crate) type Invariant = (&'static str, bool, &'static str);

/// Check failures every bucket kind shares: the expiry out of range, or a
/// protection turned off.
pub(crate) fn check_protections(
    expire_after_days: u32,
    invariants: &[Invariant],
    failures: &mut Failures,
) {
    if !(1..=MAX_EXPIRE_DAYS).contains(&expire_after_days) {
        failures.push(
            "expireAfterDays",
            format!("{expire_after_days} is out of range; use 1 to {MAX_EXPIRE_DAYS} days"),
        );
    }
    for (property, value, why) in invariants {
        if !value {
            failures.push(
                *property,
                format!("{why}; remove the setting (it is always true)"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_round_trips_and_other_rules_read_as_drift() {
        let config = lifecycle("expire-artifacts", 30).unwrap();
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
}
