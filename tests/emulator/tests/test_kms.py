"""KMS keys as the provider manages them."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, Emulator


def key_policy(principal: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdmin",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:{principal}"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        },
        indent=2,
    )


def test_policy_name_defaults_to_default(emulator: Emulator) -> None:
    # PolicyName is optional in the API; moto alone answers NotFoundException.
    kms = emulator.client("kms")
    key_id = kms.create_key(Policy=key_policy("root"))["KeyMetadata"]["KeyId"]

    assert kms.get_key_policy(KeyId=key_id)["Policy"] == key_policy("root")
    kms.put_key_policy(KeyId=key_id, Policy=key_policy("role/admin"))
    assert kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"] == key_policy("role/admin")


def test_key_lifecycle_round_trips(emulator: Emulator, unique) -> None:
    kms = emulator.client("kms")
    metadata = kms.create_key(
        Policy=key_policy("root"), Description="pipeline key", Tags=[{"TagKey": "team", "TagValue": "ci"}]
    )["KeyMetadata"]
    key_id, arn = metadata["KeyId"], metadata["Arn"]

    kms.enable_key_rotation(KeyId=key_id)
    assert kms.get_key_rotation_status(KeyId=arn)["KeyRotationEnabled"] is True
    kms.disable_key_rotation(KeyId=key_id)
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False

    alias = f"alias/{unique('pipeline')}"
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    assert [a["AliasName"] for a in kms.list_aliases(KeyId=key_id)["Aliases"]] == [alias]
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"] == arn
    kms.delete_alias(AliasName=alias)
    assert kms.list_aliases(KeyId=key_id)["Aliases"] == []

    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "cost", "TagValue": "7"}])
    kms.untag_resource(KeyId=key_id, TagKeys=["team"])
    assert kms.list_resource_tags(KeyId=arn)["Tags"] == [{"TagKey": "cost", "TagValue": "7"}]

    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_json_responses_carry_the_protocol_content_type(emulator: Emulator) -> None:
    # moto labels these text/html or application/json; clients that dispatch
    # on the content type need the protocol's own.
    key_id = emulator.client("kms").create_key()["KeyMetadata"]["KeyId"]
    response = emulator.json_call(
        "kms", "TrentService.GetKeyRotationStatus", {"KeyId": key_id}, version="1.1"
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert response.json()["KeyRotationEnabled"] is False

    response = emulator.json_call(
        "kms", "TrentService.DescribeKey", {"KeyId": "alias/none"}, version="1.1"
    )
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert response.json()["__type"] == "NotFoundException"
    with pytest.raises(ClientError):
        emulator.client("kms").describe_key(KeyId="alias/none")


def deny_put_key_policy(action: str = "kms:PutKeyPolicy") -> str:
    document = json.loads(key_policy("root"))
    document["Statement"].append(
        {
            "Sid": "NobodyRewritesThisPolicy",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": action,
            "Resource": "*",
        }
    )
    return json.dumps(document)


@pytest.mark.parametrize("action", ["kms:PutKeyPolicy", "kms:Put*", "kms:*"])
def test_put_key_policy_honours_an_explicit_deny(emulator: Emulator, action: str) -> None:
    kms = emulator.client("kms")
    metadata = kms.create_key(Policy=deny_put_key_policy(action))["KeyMetadata"]

    with pytest.raises(ClientError) as denied:
        kms.put_key_policy(KeyId=metadata["Arn"], Policy=key_policy("root"))
    error = denied.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert "kms:PutKeyPolicy" in error["Message"] and metadata["Arn"] in error["Message"]
    assert kms.get_key_policy(KeyId=metadata["KeyId"])["Policy"] == deny_put_key_policy(action)


def test_a_deny_of_other_actions_or_with_a_condition_leaves_put_key_policy_alone(
    emulator: Emulator,
) -> None:
    kms = emulator.client("kms")
    conditional = json.loads(deny_put_key_policy())
    conditional["Statement"][1]["Condition"] = {"Bool": {"aws:ViaAWSService": "true"}}
    for policy in (deny_put_key_policy("kms:ScheduleKeyDeletion"), json.dumps(conditional)):
        key_id = kms.create_key(Policy=policy)["KeyMetadata"]["KeyId"]
        kms.put_key_policy(KeyId=key_id, Policy=key_policy("role/admin"))
        assert kms.get_key_policy(KeyId=key_id)["Policy"] == key_policy("role/admin")


def test_keys_behind_aws_aliases_are_aws_managed(emulator: Emulator) -> None:
    kms = emulator.client("kms", region="eu-west-1")
    assert kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]["KeyManager"] == "AWS"
    created = kms.create_key()["KeyMetadata"]
    assert created["KeyManager"] == "CUSTOMER"


def test_key_usage_defaults_to_encrypt_decrypt(emulator: Emulator) -> None:
    kms = emulator.client("kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyUsage"] == "ENCRYPT_DECRYPT"
    signing = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]
    assert signing["KeyUsage"] == "SIGN_VERIFY"
