"""S3 as the provider's artifact buckets use it, with the Rust SDK's checksums."""

from __future__ import annotations

import base64
import json
import zlib

from conftest import Emulator

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def deny_insecure_transport(bucket: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def aws_chunked(data: bytes) -> tuple[bytes, dict[str, str]]:
    """A body framed the way SDKs stream it: one chunk plus a checksum trailer."""
    body = b"%x\r\n%s\r\n0\r\nx-amz-checksum-crc32:%s\r\n\r\n" % (len(data), data, crc32(data).encode())
    headers = {
        "Content-Encoding": "aws-chunked",
        "X-Amz-Content-SHA256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "X-Amz-Decoded-Content-Length": str(len(data)),
        "X-Amz-Trailer": "x-amz-checksum-crc32",
        "X-Amz-Sdk-Checksum-Algorithm": "CRC32",
    }
    return body, headers


def test_artifact_bucket_configuration_round_trips(emulator: Emulator, unique) -> None:
    s3 = emulator.client("s3", region="eu-west-1")
    bucket = unique("artifacts")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert s3.head_bucket(Bucket=bucket)["BucketRegion"] == "eu-west-1"

    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    encryption = {
        "Rules": [
            {
                "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY},
                "BucketKeyEnabled": True,
            }
        ]
    }
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=encryption)
    block = {key: True for key in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")}
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=block)
    ownership = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=ownership)
    policy = deny_insecure_transport(bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=policy)
    lifecycle = [
        {
            "ID": "expire-old-artifacts",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "Expiration": {"Days": 30},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 7},
        }
    ]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": lifecycle})
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "ci"}]})

    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"] == encryption
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == block
    assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"] == ownership
    assert s3.get_bucket_policy(Bucket=bucket)["Policy"] == policy
    assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == lifecycle
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "ci"}]

    s3.delete_public_access_block(Bucket=bucket)
    s3.delete_bucket_policy(Bucket=bucket)
    assert _error_code(lambda: s3.get_public_access_block(Bucket=bucket)) == "NoSuchPublicAccessBlockConfiguration"
    assert _error_code(lambda: s3.get_bucket_policy(Bucket=bucket)) == "NoSuchBucketPolicy"


def test_conditional_deny_does_not_lock_out_the_owner(emulator: Emulator, unique) -> None:
    # moto alone ignores the condition and denies every object operation, so
    # a bucket with this standard policy could never be emptied or deleted.
    s3 = emulator.client("s3")
    bucket = unique("locked")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_policy(Bucket=bucket, Policy=deny_insecure_transport(bucket))

    s3.put_object(Bucket=bucket, Key="artifact.zip", Body=b"v1")
    s3.put_object(Bucket=bucket, Key="artifact.zip", Body=b"v2")
    s3.delete_object(Bucket=bucket, Key="artifact.zip")

    listed = s3.list_object_versions(Bucket=bucket)
    versions = listed.get("Versions", []) + listed.get("DeleteMarkers", [])
    assert len(versions) == 3
    deleted = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions]},
    )
    assert deleted.get("Errors", []) == []
    assert "Versions" not in s3.list_object_versions(Bucket=bucket)
    s3.delete_bucket(Bucket=bucket)
    assert _error_code(lambda: s3.head_bucket(Bucket=bucket)) == "404"


def test_unconditional_deny_is_still_enforced(emulator: Emulator, unique) -> None:
    s3 = emulator.client("s3")
    bucket = unique("denied")
    s3.create_bucket(Bucket=bucket)
    policy = json.loads(deny_insecure_transport(bucket))
    del policy["Statement"][0]["Condition"]
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert _error_code(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x")) == "403"


def test_put_bucket_policy_answers_204_without_a_body(emulator: Emulator, unique) -> None:
    s3 = emulator.client("s3")
    bucket = unique("policy")
    s3.create_bucket(Bucket=bucket)
    policy = deny_insecure_transport(bucket).encode()
    response = emulator.signed(
        "s3", "PUT", f"/{bucket}?policy", policy, {"x-amz-checksum-crc32": crc32(policy)}
    )
    assert response.status_code == 204
    assert response.content == b""


def test_checksummed_and_aws_chunked_bodies_are_accepted(emulator: Emulator, unique) -> None:
    s3 = emulator.client("s3")
    bucket = unique("chunked")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a", Body=b"1")
    s3.put_object(Bucket=bucket, Key="b", Body=b"2")

    policy = deny_insecure_transport(bucket).encode()
    encryption = (
        f'<ServerSideEncryptionConfiguration xmlns="{S3_NS}"><Rule><ApplyServerSideEncryptionByDefault>'
        f"<SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>{KEY}</KMSMasterKeyID>"
        "</ApplyServerSideEncryptionByDefault><BucketKeyEnabled>true</BucketKeyEnabled></Rule>"
        "</ServerSideEncryptionConfiguration>"
    ).encode()
    lifecycle = (
        f'<LifecycleConfiguration xmlns="{S3_NS}"><Rule><ID>r</ID><Filter><Prefix></Prefix></Filter>'
        "<Status>Enabled</Status><Expiration><Days>9</Days></Expiration></Rule></LifecycleConfiguration>"
    ).encode()
    for query, data in (("policy", policy), ("encryption", encryption), ("lifecycle", lifecycle)):
        body, headers = aws_chunked(data)
        response = emulator.signed("s3", "PUT", f"/{bucket}?{query}", body, headers)
        assert response.status_code in (200, 204), (query, response.text)

    delete = f'<Delete xmlns="{S3_NS}"><Object><Key>a</Key></Object></Delete>'.encode()
    body, headers = aws_chunked(delete)
    assert emulator.signed("s3", "POST", f"/{bucket}?delete", body, headers).status_code == 200
    delete = f'<Delete xmlns="{S3_NS}"><Object><Key>b</Key></Object></Delete>'.encode()
    response = emulator.signed(
        "s3", "POST", f"/{bucket}?delete", delete,
        {"x-amz-checksum-crc32": crc32(delete), "x-amz-sdk-checksum-algorithm": "CRC32"},
    )
    assert response.status_code == 200

    assert s3.get_bucket_policy(Bucket=bucket)["Policy"].encode() == policy
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == KEY
    assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]["Expiration"] == {"Days": 9}
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def _error_code(call) -> str:
    try:
        call()
    except Exception as error:  # botocore ClientError
        return error.response["Error"]["Code"]  # type: ignore[attr-defined]
    raise AssertionError("expected an error")


def test_tags_given_to_create_bucket_are_kept(emulator: Emulator, unique) -> None:
    # The provider marks each bucket at creation; without this a create
    # whose answer was lost could not recognise its own bucket.
    s3 = emulator.client("s3", region="us-west-2")
    name = unique("created-tagged")
    s3.create_bucket(
        Bucket=name,
        CreateBucketConfiguration={
            "LocationConstraint": "us-west-2",
            "Tags": [{"Key": "securepipeline:create-token", "Value": "t1"}, {"Key": "team", "Value": "a"}],
        },
    )
    assert s3.get_bucket_tagging(Bucket=name)["TagSet"] == [
        {"Key": "securepipeline:create-token", "Value": "t1"},
        {"Key": "team", "Value": "a"},
    ]


def _delivery_policy(target: str, source: str, prefix: str) -> str:
    """The access-log bucket's policy as the provider writes it: lists
    everywhere, TLS only, delivery only from the source."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                json.loads(deny_insecure_transport(target))["Statement"][0],
                {
                    "Sid": "AllowAccessLogDelivery0",
                    "Effect": "Allow",
                    "Principal": {"Service": ["logging.s3.amazonaws.com"]},
                    "Action": ["s3:PutObject"],
                    "Resource": [f"arn:aws:s3:::{target}/{prefix}*"],
                    "Condition": {
                        "ArnEquals": {"aws:SourceArn": [f"arn:aws:s3:::{source}"]},
                        "StringEquals": {"aws:SourceAccount": ["123456789012"]},
                    },
                },
            ],
        }
    )


def test_logging_to_an_owner_enforced_bucket_is_granted_by_a_policy_written_with_lists(
    emulator: Emulator, unique
) -> None:
    s3 = emulator.client("s3")
    source, target = unique("artifacts"), unique("access-logs")
    for bucket in (source, target):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_ownership_controls(
        Bucket=target, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    )
    prefix = f"{source}/"
    status = {"LoggingEnabled": {"TargetBucket": target, "TargetPrefix": prefix}}
    # Without the grant S3 refuses to log there.
    assert _error_code(lambda: s3.put_bucket_logging(Bucket=source, BucketLoggingStatus=status)) == (
        "InvalidTargetBucketForLogging"
    )
    s3.put_bucket_policy(Bucket=target, Policy=_delivery_policy(target, source, prefix))
    s3.put_bucket_logging(Bucket=source, BucketLoggingStatus=status)
    assert s3.get_bucket_logging(Bucket=source)["LoggingEnabled"] == status["LoggingEnabled"]
    # A grant for another prefix does not cover this one.
    other = unique("other")
    s3.create_bucket(Bucket=other)
    s3.put_bucket_policy(Bucket=other, Policy=_delivery_policy(other, source, "elsewhere/"))
    moved = {"LoggingEnabled": {"TargetBucket": other, "TargetPrefix": prefix}}
    assert _error_code(lambda: s3.put_bucket_logging(Bucket=source, BucketLoggingStatus=moved)) == (
        "InvalidTargetBucketForLogging"
    )
    s3.put_bucket_logging(Bucket=source, BucketLoggingStatus={})
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=source)
