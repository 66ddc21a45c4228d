"""Management calls under enforcement: a deployer role (the kind a Pulumi
stage assumes) creating and reading back pipeline resources is authorised
per action and exact resource, handing a role to a service needs
iam:PassRole for that service, and CopyObject needs both of its objects."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, Emulator, start_emulator

ACCOUNT_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]})
SERVICE_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "codebuild.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


@pytest.fixture(scope="module")
def enforcing() -> Iterator[Emulator]:
    instance = start_emulator("--enforce-iam")
    yield instance
    instance.stop()
    instance.log_path.unlink()


def role_session(emulator: Emulator, name: str, statements: list[dict[str, Any]]) -> Callable[[str], Any]:
    """Clients signed by a session of a new role `name` holding `statements`."""
    iam = emulator.client("iam")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=ACCOUNT_TRUST)
    iam.put_role_policy(RoleName=name, PolicyName="grants",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    credentials = emulator.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{name}", RoleSessionName="deploy")["Credentials"]

    def client(service: str) -> Any:
        return boto3.client(
            service, endpoint_url=emulator.endpoint, region_name=REGION,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
        )

    return client


def decisions(emulator: Emulator, principal_role: str) -> list[dict[str, Any]]:
    return [d for d in requests.get(f"{emulator.endpoint}/_emulator/decisions").json()
            if f"assumed-role/{principal_role}/" in d["principal"]]


def denied_message(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as denied:
        call()
    assert denied.value.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException"), denied.value
    return str(denied.value.response["Error"]["Message"])


def test_roles_are_created_only_where_the_policy_names_them(enforcing: Emulator) -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/app-*"
    client = role_session(enforcing, "iam-deployer", [
        {"Effect": "Allow", "Action": ["iam:CreateRole", "iam:PutRolePolicy", "iam:GetRole"], "Resource": role}])
    iam = client("iam")
    iam.create_role(RoleName="app-build", AssumeRolePolicyDocument=SERVICE_TRUST)
    iam.put_role_policy(RoleName="app-build", PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}))
    assert iam.get_role(RoleName="app-build")["Role"]["RoleName"] == "app-build"
    message = denied_message(lambda: iam.create_role(RoleName="other", AssumeRolePolicyDocument=SERVICE_TRUST))
    assert f"iam:CreateRole on resource: arn:aws:iam::{ACCOUNT}:role/other" in message
    seen = [(d["action"], d["resource"], d["allowed"]) for d in decisions(enforcing, "iam-deployer")]
    assert seen == [
        ("iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/app-build", True),
        ("iam:PutRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/app-build", True),
        ("iam:GetRole", f"arn:aws:iam::{ACCOUNT}:role/app-build", True),
        ("iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/other", False),
    ]


def test_handing_a_role_to_codebuild_needs_pass_role_for_codebuild(enforcing: Emulator) -> None:
    iam = enforcing.client("iam")
    service_role = iam.create_role(RoleName="project-role", AssumeRolePolicyDocument=SERVICE_TRUST)["Role"]["Arn"]
    project = f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/app"
    create = {"Effect": "Allow", "Action": ["codebuild:CreateProject", "codebuild:BatchGetProjects"],
              "Resource": project}
    pass_to_pipeline = {"Effect": "Allow", "Action": "iam:PassRole", "Resource": service_role,
                        "Condition": {"StringEquals": {"iam:PassedToService": "codepipeline.amazonaws.com"}}}
    codebuild = role_session(enforcing, "cb-deployer", [create, pass_to_pipeline])("codebuild")
    project_input = {"name": "app", "source": {"type": "NO_SOURCE", "buildspec": "version: 0.2"},
                     "artifacts": {"type": "NO_ARTIFACTS"}, "serviceRole": service_role,
                     "environment": {"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
                                     "computeType": "BUILD_GENERAL1_SMALL"}}
    message = denied_message(lambda: codebuild.create_project(**project_input))
    assert f"iam:PassRole on resource: {service_role}" in message

    pass_to_codebuild = {**pass_to_pipeline, "Condition": {
        "StringEquals": {"iam:PassedToService": "codebuild.amazonaws.com"}}}
    codebuild = role_session(enforcing, "cb-deployer-2", [create, pass_to_codebuild])("codebuild")
    codebuild.create_project(**project_input)
    assert [p["name"] for p in codebuild.batch_get_projects(names=["app"])["projects"]] == ["app"]
    assert [(d["action"], d["resource"]) for d in decisions(enforcing, "cb-deployer-2")] == [
        ("codebuild:CreateProject", project),
        ("iam:PassRole", service_role),
        ("codebuild:BatchGetProjects", project),
    ]


def test_bucket_settings_are_authorised_under_s3s_own_action_names(enforcing: Emulator) -> None:
    bucket = "arn:aws:s3:::deployed-artifacts"
    s3 = role_session(enforcing, "s3-deployer", [{"Effect": "Allow", "Resource": bucket, "Action": [
        "s3:CreateBucket", "s3:PutEncryptionConfiguration", "s3:GetEncryptionConfiguration"]}])("s3")
    s3.create_bucket(Bucket="deployed-artifacts")
    s3.put_bucket_encryption(Bucket="deployed-artifacts", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    assert s3.get_bucket_encryption(Bucket="deployed-artifacts")["ServerSideEncryptionConfiguration"]
    message = denied_message(lambda: s3.put_public_access_block(
        Bucket="deployed-artifacts", PublicAccessBlockConfiguration={"BlockPublicAcls": True}))
    assert f"s3:PutBucketPublicAccessBlock on resource: {bucket}" in message


def test_an_alias_needs_the_alias_and_its_key(enforcing: Emulator) -> None:
    kms = role_session(enforcing, "kms-deployer", [
        {"Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*"},
        {"Effect": "Allow", "Action": "kms:CreateAlias",
         "Resource": f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/app"}])("kms")
    # The default key policy delegates to the account's IAM policies.
    key = kms.create_key()["KeyMetadata"]["Arn"]
    message = denied_message(lambda: kms.create_alias(AliasName="alias/app", TargetKeyId=key))
    assert f"kms:CreateAlias on resource: {key}" in message
    assert [(d["action"], d["resource"], d["allowed"]) for d in decisions(enforcing, "kms-deployer")] == [
        ("kms:CreateKey", "*", True),
        ("kms:CreateAlias", f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/app", True),
        ("kms:CreateAlias", key, False),
    ]


def test_a_rule_target_role_is_passed_to_eventbridge(enforcing: Emulator) -> None:
    target_role = enforcing.client("iam").create_role(
        RoleName="schedule-role", AssumeRolePolicyDocument=SERVICE_TRUST)["Role"]["Arn"]
    rule = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/nightly"
    events = role_session(enforcing, "events-deployer", [
        {"Effect": "Allow", "Action": ["events:PutRule", "events:PutTargets"], "Resource": rule}])("events")
    events.put_rule(Name="nightly", ScheduleExpression="rate(1 day)")
    target = {"Id": "pipeline", "Arn": f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:app", "RoleArn": target_role}
    message = denied_message(lambda: events.put_targets(Rule="nightly", Targets=[target]))
    assert f"iam:PassRole on resource: {target_role}" in message


def test_copy_object_reads_its_source_and_writes_its_destination(enforcing: Emulator) -> None:
    admin = enforcing.client("s3")
    admin.create_bucket(Bucket="copies")
    for key in ("stacks/dev.json", "stacks/prod.json"):
        admin.put_object(Bucket="copies", Key=key, Body=b"{}")
    s3 = role_session(enforcing, "copier", [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": "arn:aws:s3:::copies/stacks/dev.json*"}])("s3")
    s3.copy_object(Bucket="copies", Key="stacks/dev.json.bak", CopySource="copies/stacks/dev.json")
    assert admin.get_object(Bucket="copies", Key="stacks/dev.json.bak")["Body"].read() == b"{}"
    message = denied_message(lambda: s3.copy_object(
        Bucket="copies", Key="stacks/dev.json.bak", CopySource="copies/stacks/prod.json"))
    assert "s3:GetObject on resource: arn:aws:s3:::copies/stacks/prod.json" in message
    message = denied_message(lambda: s3.copy_object(
        Bucket="copies", Key="stacks/prod.json", CopySource="copies/stacks/dev.json"))
    assert "s3:PutObject on resource: arn:aws:s3:::copies/stacks/prod.json" in message
