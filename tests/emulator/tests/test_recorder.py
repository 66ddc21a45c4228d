"""The call recorder: what the provider did, as the emulator saw it."""

from __future__ import annotations

import pytest
import requests

from conftest import Emulator
from securepipeline_emulator.recorder import is_write
from securepipeline_emulator.s3names import operation_name


def test_records_service_operation_and_kind(fresh_emulator: Emulator) -> None:
    # An emulator of its own: the log must hold exactly this test's calls.
    emulator = fresh_emulator
    emulator.client("sts").get_caller_identity()
    kms = emulator.client("kms", region="eu-west-1")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.describe_key(KeyId=key_id)
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket="recorded")
    s3.put_bucket_policy(Bucket="recorded", Policy='{"Version":"2012-10-17","Statement":[]}')
    s3.head_bucket(Bucket="recorded")
    codestar = emulator.client("codestar-connections")
    codestar.list_connections()
    emulator.client("codebuild").batch_get_projects(names=["none"])
    emulator.json_call("codestar-connections", "CodeStar_connections_20191201.DeleteConnection", {"ConnectionArn": "x"})

    calls = emulator.calls()
    assert [_without_times(c) for c in calls] == [
        {"service": "sts", "operation": "GetCallerIdentity", "write": False, "region": "us-east-1", "fault": None, "retry": False, "subject": None},
        {"service": "kms", "operation": "CreateKey", "write": True, "region": "eu-west-1", "fault": None, "retry": False, "subject": None},
        {"service": "kms", "operation": "DescribeKey", "write": False, "region": "eu-west-1", "fault": None, "retry": False, "subject": key_id},
        {"service": "s3", "operation": "CreateBucket", "write": True, "region": "us-east-1", "fault": None, "retry": False, "subject": "recorded"},
        {"service": "s3", "operation": "PutBucketPolicy", "write": True, "region": "us-east-1", "fault": None, "retry": False, "subject": "recorded"},
        {"service": "s3", "operation": "HeadBucket", "write": False, "region": "us-east-1", "fault": None, "retry": False, "subject": "recorded"},
        {"service": "codestar-connections", "operation": "ListConnections", "write": False, "region": "us-east-1", "fault": None, "retry": False, "subject": None},
        {"service": "codebuild", "operation": "BatchGetProjects", "write": False, "region": "us-east-1", "fault": None, "retry": False, "subject": "none"},
        {"service": "codestar-connections", "operation": "DeleteConnection", "write": True, "region": "us-east-1", "fault": None, "retry": False, "subject": "x"},
    ]
    # Each call has its times, in order; no latency model, no modelled time.
    starts = [c["start"] for c in calls]
    assert starts == sorted(starts)
    assert all(c["start"] <= c["end"] and c["latency"] == 0.0 for c in calls)


def _without_times(call: dict) -> dict:
    return {k: v for k, v in call.items() if k not in ("start", "end", "latency")}


def test_reset_and_admin_calls_are_not_recorded(emulator: Emulator) -> None:
    emulator.client("sts").get_caller_identity()
    emulator.reset_calls()
    assert emulator.calls() == []

    requests.get(f"{emulator.endpoint}/_emulator/calls")
    emulator.client("sns").list_topics()
    assert [c["operation"] for c in emulator.calls()] == ["ListTopics"]


def test_failed_calls_are_recorded_too(fresh_emulator: Emulator) -> None:
    logs = fresh_emulator.client("logs")
    with pytest.raises(Exception):
        logs.delete_log_group(logGroupName="/never/created")
    assert [_without_times(c) for c in fresh_emulator.calls()] == [
        {"service": "logs", "operation": "DeleteLogGroup", "write": True, "region": "us-east-1", "fault": None, "retry": False, "subject": "/never/created"}
    ]


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("PUT", "/b", {}, "CreateBucket"),
        ("HEAD", "/b", {}, "HeadBucket"),
        ("DELETE", "/b", {}, "DeleteBucket"),
        ("GET", "/", {}, "ListBuckets"),
        ("PUT", "/b", {"policy": [""]}, "PutBucketPolicy"),
        ("DELETE", "/b", {"policy": [""]}, "DeleteBucketPolicy"),
        ("GET", "/b", {"versioning": [""]}, "GetBucketVersioning"),
        ("PUT", "/b", {"encryption": [""]}, "PutBucketEncryption"),
        ("PUT", "/b", {"publicAccessBlock": [""]}, "PutPublicAccessBlock"),
        ("DELETE", "/b", {"publicAccessBlock": [""]}, "DeletePublicAccessBlock"),
        ("PUT", "/b", {"ownershipControls": [""]}, "PutBucketOwnershipControls"),
        ("PUT", "/b", {"lifecycle": [""]}, "PutBucketLifecycleConfiguration"),
        ("GET", "/b", {"lifecycle": [""]}, "GetBucketLifecycleConfiguration"),
        ("PUT", "/b", {"tagging": [""]}, "PutBucketTagging"),
        ("GET", "/b", {"versions": [""], "prefix": ["x"]}, "ListObjectVersions"),
        ("POST", "/b", {"delete": [""]}, "DeleteObjects"),
        ("GET", "/b", {"list-type": ["2"]}, "ListObjectsV2"),
        ("PUT", "/b/k/with/slashes", {}, "PutObject"),
        ("GET", "/b/k", {"tagging": [""]}, "GetObjectTagging"),
        ("PUT", "/b/k", {"partNumber": ["1"], "uploadId": ["u"]}, "UploadPart"),
    ],
)
def test_s3_operation_names(method: str, path: str, query: dict, expected: str) -> None:
    assert operation_name(method, path, query, {}) == expected


def test_copy_is_told_from_put() -> None:
    assert operation_name("PUT", "/b/k", {}, {"x-amz-copy-source": "/a/k"}) == "CopyObject"


@pytest.mark.parametrize(
    ("operation", "write"),
    [
        ("GetRole", False),
        ("ListTagsForResource", False),
        ("DescribeLogGroups", False),
        ("HeadBucket", False),
        ("BatchGetProjects", False),
        ("CreateRole", True),
        ("PutBucketPolicy", True),
        ("TagResource", True),
        ("UpdatePipeline", True),
        ("ScheduleKeyDeletion", True),
        ("Subscribe", True),
    ],
)
def test_read_write_classification(operation: str, write: bool) -> None:
    assert is_write(operation) is write
