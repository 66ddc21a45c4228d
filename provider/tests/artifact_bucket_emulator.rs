//! `securepipeline:aws:ArtifactBucket` against the AWS emulator: create,
//! read back every guarantee, drift, restore, refuse to destroy artifacts,
//! empty and delete.

mod support;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, ObjectOwnership, OwnershipControls, OwnershipControlsRule,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule, Tag, Tagging, VersioningConfiguration,
};
use futures::stream::{self, StreamExt, TryStreamExt};
use securepipeline::aws::AwsContext;
use securepipeline::engine_log::EngineLog;
use securepipeline::iam::PolicyDocument;
use securepipeline::resource::{CheckContext, Lifecycle, OpContext};
use securepipeline::resources::artifact_bucket::{
    bucket_policy, ArtifactBucket, ArtifactBucketInputs,
};
use securepipeline::tags::{self, Tags};

const URN: &str = "urn:pulumi:test::securepipeline::securepipeline:aws:ArtifactBucket::artifacts";

async fn key_in(aws: &AwsContext, region: &str) -> String {
    let created = aws
        .clients_in(region)
        .kms
        .create_key()
        .send()
        .await
        .unwrap();
    created.key_metadata.unwrap().arn.unwrap()
}

fn program_inputs(key_arn: &str) -> ArtifactBucketInputs {
    ArtifactBucketInputs {
        name_prefix: "app-test-artifacts".into(),
        bucket_name: None,
        region: None,
        kms_key_arn: key_arn.into(),
        expire_after_days: 30,
        force_destroy: false,
        versioning: true,
        block_public_access: true,
        bucket_owner_enforced: true,
        secure_transport_policy: true,
        bucket_key_enabled: true,
        tags: Tags::from([("team".to_string(), "platform".to_string())]),
    }
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, key_arn: &str) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from_static(b"artifact"))
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(key_arn)
        .send()
        .await
        .unwrap();
}

/// Asserts every guarantee of G6 on the live bucket.
async fn assert_guarantees(
    ctx: &OpContext<'_>,
    s3: &aws_sdk_s3::Client,
    inputs: &ArtifactBucketInputs,
) {
    let name = inputs.bucket_name.as_deref().unwrap();
    let versioning = s3
        .get_bucket_versioning()
        .bucket(name)
        .send()
        .await
        .unwrap();
    assert_eq!(versioning.status(), Some(&BucketVersioningStatus::Enabled));

    let block = s3
        .get_public_access_block()
        .bucket(name)
        .send()
        .await
        .unwrap();
    let block = block.public_access_block_configuration().unwrap();
    assert_eq!(block.block_public_acls(), Some(true));
    assert_eq!(block.ignore_public_acls(), Some(true));
    assert_eq!(block.block_public_policy(), Some(true));
    assert_eq!(block.restrict_public_buckets(), Some(true));

    let ownership = s3
        .get_bucket_ownership_controls()
        .bucket(name)
        .send()
        .await
        .unwrap();
    let rules = ownership.ownership_controls().unwrap().rules();
    assert_eq!(rules.len(), 1);
    assert_eq!(
        rules[0].object_ownership(),
        &ObjectOwnership::BucketOwnerEnforced
    );

    let encryption = s3
        .get_bucket_encryption()
        .bucket(name)
        .send()
        .await
        .unwrap();
    let rule = &encryption
        .server_side_encryption_configuration()
        .unwrap()
        .rules()[0];
    let default = rule.apply_server_side_encryption_by_default().unwrap();
    assert_eq!(default.sse_algorithm(), &ServerSideEncryption::AwsKms);
    assert_eq!(
        default.kms_master_key_id(),
        Some(inputs.kms_key_arn.as_str())
    );
    assert_eq!(rule.bucket_key_enabled(), Some(true));

    let policy = s3.get_bucket_policy().bucket(name).send().await.unwrap();
    let policy = PolicyDocument::parse_aws(policy.policy().unwrap()).unwrap();
    assert_eq!(
        policy,
        bucket_policy(&ctx.aws.arns().s3_bucket(name), &inputs.kms_key_arn)
    );

    let lifecycle = s3
        .get_bucket_lifecycle_configuration()
        .bucket(name)
        .send()
        .await
        .unwrap();
    let [rule] = lifecycle.rules() else {
        panic!("expected one lifecycle rule, found {:?}", lifecycle.rules());
    };
    let days = i32::try_from(inputs.expire_after_days).unwrap();
    assert_eq!(rule.expiration().and_then(|e| e.days()), Some(days));
    assert_eq!(
        rule.noncurrent_version_expiration()
            .and_then(|e| e.noncurrent_days()),
        Some(days)
    );
    assert_eq!(
        rule.abort_incomplete_multipart_upload()
            .and_then(|a| a.days_after_initiation()),
        Some(7)
    );

    let tagging = s3.get_bucket_tagging().bucket(name).send().await.unwrap();
    let live_tags: Tags = tagging
        .tag_set()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    assert_eq!(live_tags, inputs.tags);
    assert_eq!(live_tags[tags::MANAGED_BY_KEY], tags::MANAGED_BY_VALUE);
}

#[tokio::test]
async fn bucket_is_created_read_back_restored_and_kept_until_forced() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, URN);
    let key_arn = key_in(&aws, support::REGION).await;
    let check_ctx = CheckContext {
        name: "artifacts",
        random_seed: b"bucket-emulator",
        aws: Some(&aws),
    };
    let inputs = ArtifactBucket::check(&check_ctx, None, program_inputs(&key_arn)).unwrap();
    assert_eq!(inputs.region.as_deref(), Some(support::REGION));
    let name = inputs.bucket_name.clone().unwrap();

    let (id, outputs) = ArtifactBucket::create(&ctx, &inputs).await.unwrap();
    assert_eq!(id, name);
    assert_eq!(outputs.arn, format!("arn:aws:s3:::{name}"));
    let s3 = &aws.clients().s3;
    assert_guarantees(&ctx, s3, &inputs).await;

    let (live, live_outputs) = ArtifactBucket::read(&ctx, &id, &inputs)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live, inputs);
    assert_eq!(live_outputs, outputs);

    // Drift on every setting: each reads back as the invariant broken.
    s3.delete_public_access_block()
        .bucket(&name)
        .send()
        .await
        .unwrap();
    s3.put_bucket_versioning()
        .bucket(&name)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .unwrap();
    s3.put_bucket_ownership_controls()
        .bucket(&name)
        .ownership_controls(
            OwnershipControls::builder()
                .rules(
                    OwnershipControlsRule::builder()
                        .object_ownership(ObjectOwnership::ObjectWriter)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    s3.delete_bucket_encryption()
        .bucket(&name)
        .send()
        .await
        .unwrap();
    s3.delete_bucket_policy()
        .bucket(&name)
        .send()
        .await
        .unwrap();
    s3.delete_bucket_lifecycle()
        .bucket(&name)
        .send()
        .await
        .unwrap();
    s3.delete_bucket_tagging()
        .bucket(&name)
        .send()
        .await
        .unwrap();

    let (drifted, _) = ArtifactBucket::read(&ctx, &id, &inputs)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        drifted,
        ArtifactBucketInputs {
            kms_key_arn: String::new(),
            expire_after_days: 0,
            versioning: false,
            block_public_access: false,
            bucket_owner_enforced: false,
            secure_transport_policy: false,
            bucket_key_enabled: false,
            tags: Tags::new(),
            ..inputs.clone()
        }
    );
    ArtifactBucket::update(&ctx, &id, &drifted, &inputs, &outputs)
        .await
        .unwrap();
    assert_guarantees(&ctx, s3, &inputs).await;
    // A policy with the TLS deny removed is drift too.
    let mut widened = bucket_policy(&outputs.arn, &key_arn);
    widened.statements.remove(0);
    s3.put_bucket_policy()
        .bucket(&name)
        .policy(widened.to_compact_json())
        .send()
        .await
        .unwrap();
    let (drifted, _) = ArtifactBucket::read(&ctx, &id, &inputs)
        .await
        .unwrap()
        .unwrap();
    assert!(!drifted.secure_transport_policy);
    assert_eq!(
        drifted,
        ArtifactBucketInputs {
            secure_transport_policy: false,
            ..inputs.clone()
        }
    );
    ArtifactBucket::update(&ctx, &id, &drifted, &inputs, &outputs)
        .await
        .unwrap();
    let (restored, _) = ArtifactBucket::read(&ctx, &id, &inputs)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(restored, inputs);
    // The same key without a bucket key is drift too.
    s3.put_bucket_encryption()
        .bucket(&name)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(ServerSideEncryption::AwsKms)
                                .kms_master_key_id(&key_arn)
                                .build()
                                .unwrap(),
                        )
                        .bucket_key_enabled(false)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let (drifted, _) = ArtifactBucket::read(&ctx, &id, &inputs)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        drifted,
        ArtifactBucketInputs {
            bucket_key_enabled: false,
            ..inputs.clone()
        }
    );
    ArtifactBucket::update(&ctx, &id, &drifted, &inputs, &outputs)
        .await
        .unwrap();
    assert_guarantees(&ctx, s3, &inputs).await;

    // Expiry and tags change in place.
    let mut changed = inputs.clone();
    changed.expire_after_days = 90;
    changed.tags.remove("team");
    ArtifactBucket::update(&ctx, &id, &inputs, &changed, &outputs)
        .await
        .unwrap();
    assert_guarantees(&ctx, s3, &changed).await;

    // Artifacts are never deleted by default.
    put(s3, &name, "pipeline/SourceOutput/a.zip", &key_arn).await;
    let refused = ArtifactBucket::delete(&ctx, &id, &changed, &outputs)
        .await
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        format!(
            "bucket {name} still holds artifacts; set forceDestroy: true on the SecurePipeline to let destroy empty it (artifacts are never deleted by default)"
        )
    );
    assert!(ArtifactBucket::read(&ctx, &id, &changed)
        .await
        .unwrap()
        .is_some());
    // A deleted object leaves versions and a delete marker: still artifacts.
    s3.delete_object()
        .bucket(&name)
        .key("pipeline/SourceOutput/a.zip")
        .send()
        .await
        .unwrap();
    assert!(ArtifactBucket::delete(&ctx, &id, &changed, &outputs)
        .await
        .is_err());

    let forced = ArtifactBucketInputs {
        force_destroy: true,
        ..changed
    };
    ArtifactBucket::delete(&ctx, &id, &forced, &outputs)
        .await
        .unwrap();
    assert!(ArtifactBucket::read(&ctx, &id, &forced)
        .await
        .unwrap()
        .is_none());
    ArtifactBucket::delete(&ctx, &id, &forced, &outputs)
        .await
        .unwrap();
    ArtifactBucket::delete(&ctx, &id, &inputs, &outputs)
        .await
        .unwrap();
}

/// A create stopped after CreateBucket leaves the bucket with only its
/// ownership marker, which the bucket's tags replace last. Read shows the
/// program's tags without the marker, as for every kind, and the next
/// update sets them.
#[tokio::test]
async fn a_leftover_ownership_marker_is_not_read_as_a_tag() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, URN);
    let key_arn = key_in(&aws, support::REGION).await;
    let check_ctx = CheckContext {
        name: "artifacts",
        random_seed: b"leftover-marker",
        aws: Some(&aws),
    };
    let inputs = ArtifactBucket::check(&check_ctx, None, program_inputs(&key_arn)).unwrap();
    let (id, outputs) = ArtifactBucket::create(&ctx, &inputs).await.unwrap();
    let s3 = &aws.clients().s3;
    let marker = Tag::builder()
        .key(tags::CREATE_TOKEN_KEY)
        .value("0123456789abcdef")
        .build()
        .unwrap();
    s3.put_bucket_tagging()
        .bucket(&id)
        .tagging(Tagging::builder().tag_set(marker).build().unwrap())
        .send()
        .await
        .unwrap();

    let (live, _) = ArtifactBucket::read(&ctx, &id, &inputs)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live.tags, Tags::new());
    ArtifactBucket::update(&ctx, &id, &live, &inputs, &outputs)
        .await
        .unwrap();
    let (restored, _) = ArtifactBucket::read(&ctx, &id, &inputs)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(restored, inputs);
    let tagging = s3.get_bucket_tagging().bucket(&id).send().await.unwrap();
    assert!(
        tagging
            .tag_set()
            .iter()
            .all(|tag| tag.key() != tags::CREATE_TOKEN_KEY),
        "{tagging:?}"
    );
    ArtifactBucket::delete(&ctx, &id, &inputs, &outputs)
        .await
        .unwrap();
}

#[tokio::test]
async fn bucket_in_another_region_is_emptied_page_by_page() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, URN);
    let region = "eu-west-1";
    let key_arn = key_in(&aws, region).await;
    let check_ctx = CheckContext {
        name: "artifacts",
        random_seed: b"regional-bucket",
        aws: Some(&aws),
    };
    let inputs = ArtifactBucket::check(
        &check_ctx,
        None,
        ArtifactBucketInputs {
            region: Some(region.into()),
            force_destroy: true,
            ..program_inputs(&key_arn)
        },
    )
    .unwrap();
    let (id, outputs) = ArtifactBucket::create(&ctx, &inputs).await.unwrap();
    let clients = aws.clients_in(region);
    let s3 = &clients.s3;
    let location = s3.get_bucket_location().bucket(&id).send().await.unwrap();
    assert_eq!(
        location.location_constraint().map(|c| c.as_str()),
        Some(region)
    );
    assert_guarantees(&ctx, s3, &inputs).await;
    let (live, _) = ArtifactBucket::read(&ctx, &id, &inputs)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live, inputs);

    // More versions and delete markers than one ListObjectVersions page or
    // one DeleteObjects batch holds.
    let (bucket, key_arn) = (id.as_str(), key_arn.as_str());
    stream::iter(0..1010)
        .map(|i| async move {
            put(s3, bucket, &format!("artifact-{}", i % 600), key_arn).await;
            Ok::<_, ()>(())
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    for i in 0..10 {
        s3.delete_object()
            .bucket(&id)
            .key(format!("artifact-{i}"))
            .send()
            .await
            .unwrap();
    }
    let page = s3.list_object_versions().bucket(&id).send().await.unwrap();
    assert_eq!(page.is_truncated(), Some(true));

    ArtifactBucket::delete(&ctx, &id, &inputs, &outputs)
        .await
        .unwrap();
    assert!(ArtifactBucket::read(&ctx, &id, &inputs)
        .await
        .unwrap()
        .is_none());
    ArtifactBucket::delete(&ctx, &id, &inputs, &outputs)
        .await
        .unwrap();
}

/// A bucket the account already owns under the chosen name, with its own
/// policy and tags: create fails, naming it, and leaves it as it was, both
/// in us-east-1 (where S3 answers such a create with success) and elsewhere
/// (where it answers BucketAlreadyOwnedByYou).
#[tokio::test]
async fn an_existing_bucket_is_never_adopted() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, URN);
    for region in [support::REGION, "eu-west-1"] {
        let key_arn = key_in(&aws, region).await;
        let check_ctx = CheckContext {
            name: "artifacts",
            random_seed: region.as_bytes(),
            aws: Some(&aws),
        };
        let mut program = program_inputs(&key_arn);
        program.region = Some(region.to_string());
        let inputs = ArtifactBucket::check(&check_ctx, None, program).unwrap();
        let name = inputs.bucket_name.clone().unwrap();
        let s3 = aws.clients_in(region).s3.clone();
        let mut create = s3.create_bucket().bucket(&name);
        if region != support::REGION {
            create = create.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(region.into())
                    .build(),
            );
        }
        create.send().await.unwrap();
        let policy = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{}:root"}},"Action":"s3:GetObject","Resource":"arn:aws:s3:::{name}/*"}}]}}"#,
            aws.account_id
        );
        s3.put_bucket_policy()
            .bucket(&name)
            .policy(&policy)
            .send()
            .await
            .unwrap();
        let theirs = aws_sdk_s3::types::Tag::builder()
            .key("owner")
            .value("someone-else")
            .build()
            .unwrap();
        s3.put_bucket_tagging()
            .bucket(&name)
            .tagging(
                aws_sdk_s3::types::Tagging::builder()
                    .tag_set(theirs.clone())
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();

        let err = ArtifactBucket::create(&ctx, &inputs).await.unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(&name) && message.contains("already exists in this account"),
            "{region}: {message}"
        );
        assert!(
            !matches!(err, securepipeline::resource::ResourceError::Partial { .. }),
            "{region}: the engine must not record the bucket as ours"
        );
        let live_policy = s3.get_bucket_policy().bucket(&name).send().await.unwrap();
        assert_eq!(live_policy.policy(), Some(policy.as_str()), "{region}");
        let live_tags = s3.get_bucket_tagging().bucket(&name).send().await.unwrap();
        assert_eq!(live_tags.tag_set(), [theirs], "{region}");
        let versioning = s3
            .get_bucket_versioning()
            .bucket(&name)
            .send()
            .await
            .unwrap();
        assert_eq!(versioning.status(), None, "{region}");
    }
}
