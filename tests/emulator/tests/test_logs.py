"""CloudWatch Logs groups: KMS association, retention, tags."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, Emulator

KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/99999999-12ab-34cd-56ef-1234567890ab"


def describe(logs, name: str) -> dict:
    (group,) = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    return group


def test_group_round_trips(emulator: Emulator, unique) -> None:
    logs = emulator.client("logs")
    name = f"/aws/codebuild/{unique('app')}"
    logs.create_log_group(logGroupName=name, kmsKeyId=KEY, tags={"team": "ci"})
    logs.put_retention_policy(logGroupName=name, retentionInDays=30)

    group = describe(logs, name)
    assert (group["kmsKeyId"], group["retentionInDays"]) == (KEY, 30)
    arn = group["logGroupArn"]
    assert arn == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}"

    logs.delete_retention_policy(logGroupName=name)
    assert "retentionInDays" not in describe(logs, name)

    logs.tag_resource(resourceArn=arn, tags={"cost": "7"})
    logs.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"cost": "7"}
    # The ARN DescribeLogGroups shows, with its ":*", names the same group.
    assert logs.list_tags_for_resource(resourceArn=group["arn"])["tags"] == {"cost": "7"}


def test_associate_and_disassociate_kms_key(emulator: Emulator, unique) -> None:
    logs = emulator.client("logs")
    name = f"/aws/codebuild/{unique('app')}"
    logs.create_log_group(logGroupName=name)

    logs.associate_kms_key(logGroupName=name, kmsKeyId=KEY)
    assert describe(logs, name)["kmsKeyId"] == KEY
    arn = describe(logs, name)["logGroupArn"]
    logs.associate_kms_key(resourceIdentifier=arn, kmsKeyId=OTHER_KEY)
    assert describe(logs, name)["kmsKeyId"] == OTHER_KEY
    logs.disassociate_kms_key(logGroupName=name)
    assert "kmsKeyId" not in describe(logs, name)

    with pytest.raises(ClientError) as excinfo:
        logs.associate_kms_key(logGroupName=name + "-missing", kmsKeyId=KEY)
    assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_retention_accepts_only_aws_values(emulator: Emulator, unique) -> None:
    logs = emulator.client("logs")
    name = f"/aws/codebuild/{unique('app')}"
    logs.create_log_group(logGroupName=name)

    with pytest.raises(ClientError) as excinfo:
        logs.put_retention_policy(logGroupName=name, retentionInDays=31)
    error = excinfo.value.response["Error"]
    assert error["Code"] == "InvalidParameterException"
    assert "Member must satisfy enum value set: [1, 3, 5, 7, 14, 30," in error["Message"]
    assert "retentionInDays" not in describe(logs, name)


def test_deleted_group_takes_its_tags_with_it(emulator: Emulator, unique) -> None:
    logs = emulator.client("logs")
    name = f"/aws/codebuild/{unique('app')}"
    logs.create_log_group(logGroupName=name, tags={"old": "yes"})
    arn = describe(logs, name)["logGroupArn"]
    logs.delete_log_group(logGroupName=name)

    for call in (
        lambda: logs.list_tags_for_resource(resourceArn=arn),
        lambda: logs.tag_resource(resourceArn=arn, tags={"a": "b"}),
        lambda: logs.untag_resource(resourceArn=arn, tagKeys=["old"]),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"

    logs.create_log_group(logGroupName=name)
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {}
