"""Calls the provider makes that moto already answers faithfully.

Nothing here is ours; these tests pin the read-back behaviour the provider
relies on, so a moto upgrade that breaks it fails here first.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, Emulator


def trust(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
            ],
        }
    )


def test_caller_identity(emulator: Emulator) -> None:
    identity = emulator.client("sts").get_caller_identity()
    assert identity["Account"] == ACCOUNT


def test_iam_role_round_trips(emulator: Emulator, unique) -> None:
    iam = emulator.client("iam")
    name = unique("build-role")
    iam.create_role(
        RoleName=name, AssumeRolePolicyDocument=trust("codebuild.amazonaws.com"), Tags=[{"Key": "team", "Value": "ci"}]
    )
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust("codepipeline.amazonaws.com"))
    role = iam.get_role(RoleName=name)["Role"]
    assert role["AssumeRolePolicyDocument"] == json.loads(trust("codepipeline.amazonaws.com"))

    inline = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    iam.put_role_policy(RoleName=name, PolicyName="artifacts", PolicyDocument=json.dumps(inline))
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["artifacts"]
    assert iam.get_role_policy(RoleName=name, PolicyName="artifacts")["PolicyDocument"] == inline

    iam.tag_role(RoleName=name, Tags=[{"Key": "cost", "Value": "7"}])
    iam.untag_role(RoleName=name, TagKeys=["team"])
    assert iam.list_role_tags(RoleName=name)["Tags"] == [{"Key": "cost", "Value": "7"}]

    iam.update_role(RoleName=name, Description="runs builds", MaxSessionDuration=7200)
    role = iam.get_role(RoleName=name)["Role"]
    assert (role["Description"], role["MaxSessionDuration"]) == ("runs builds", 7200)

    with pytest.raises(ClientError) as excinfo:
        iam.delete_role(RoleName=name)
    assert excinfo.value.response["Error"]["Code"] == "DeleteConflict"
    iam.delete_role_policy(RoleName=name, PolicyName="artifacts")
    iam.delete_role(RoleName=name)
    with pytest.raises(ClientError) as excinfo:
        iam.get_role(RoleName=name)
    assert excinfo.value.response["Error"]["Code"] == "NoSuchEntity"


def test_aws_managed_policies_exist(emulator: Emulator, unique) -> None:
    # Loaded on purpose (fixes/iam.py): moto leaves them out by default.
    iam = emulator.client("iam")
    name = unique("role")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust("codebuild.amazonaws.com"))
    managed = "arn:aws:iam::aws:policy/ReadOnlyAccess"

    iam.attach_role_policy(RoleName=name, PolicyArn=managed)
    attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    assert attached == [{"PolicyName": "ReadOnlyAccess", "PolicyArn": managed}]
    iam.detach_role_policy(RoleName=name, PolicyArn=managed)
    assert iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"] == []


def pipeline_declaration(name: str, role_arn: str) -> dict[str, Any]:
    connection = f"arn:aws:codestar-connections:{REGION}:{ACCOUNT}:connection/abc"
    return {
        "name": name,
        "roleArn": role_arn,
        "pipelineType": "V2",
        "executionMode": "QUEUED",
        "artifactStores": {
            REGION: {
                "type": "S3",
                "location": "artifacts-home",
                "encryptionKey": {"id": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k1", "type": "KMS"},
            },
            "eu-west-1": {
                "type": "S3",
                "location": "artifacts-eu",
                "encryptionKey": {"id": f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/k2", "type": "KMS"},
            },
        },
        "stages": [
            {
                "name": "Source",
                "actions": [
                    {
                        "name": "Checkout",
                        "actionTypeId": {
                            "category": "Source",
                            "owner": "AWS",
                            "provider": "CodeStarSourceConnection",
                            "version": "1",
                        },
                        "configuration": {
                            "ConnectionArn": connection,
                            "FullRepositoryId": "org/app",
                            "BranchName": "main",
                            "DetectChanges": "false",
                        },
                        "outputArtifacts": [{"name": "source"}],
                        "inputArtifacts": [],
                        "runOrder": 1,
                        "namespace": "SourceVariables",
                    }
                ],
            },
            {
                "name": "Build",
                "onFailure": {"result": "RETRY", "retryConfiguration": {"retryMode": "FAILED_ACTIONS"}},
                "actions": [
                    {
                        "name": "BuildEu",
                        "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
                        "configuration": {"ProjectName": "app-build"},
                        "inputArtifacts": [{"name": "source"}],
                        "outputArtifacts": [{"name": "built"}],
                        "region": "eu-west-1",
                        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/cross-region-action",
                        "runOrder": 1,
                    }
                ],
            },
        ],
        "triggers": [
            {
                "providerType": "CodeStarSourceConnection",
                "gitConfiguration": {
                    "sourceActionName": "Checkout",
                    "push": [
                        {
                            "branches": {"includes": ["main", "release/*"], "excludes": ["wip/*"]},
                            "filePaths": {"includes": ["src/**"], "excludes": ["docs/**"]},
                        }
                    ],
                },
            }
        ],
        "variables": [{"name": "Stage", "defaultValue": "prod", "description": "deployment stage"}],
    }


def test_pipeline_v2_round_trips_exactly(emulator: Emulator, unique) -> None:
    iam = emulator.client("iam")
    role_name = unique("pipeline-role")
    role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=trust("codepipeline.amazonaws.com"))[
        "Role"
    ]["Arn"]
    codepipeline = emulator.client("codepipeline")
    declaration = pipeline_declaration(unique("app"), role_arn)

    created = codepipeline.create_pipeline(pipeline=declaration, tags=[{"key": "team", "value": "ci"}])
    assert created["pipeline"] == {**declaration, "version": 1}
    got = codepipeline.get_pipeline(name=declaration["name"])
    assert got["pipeline"] == {**declaration, "version": 1}
    arn = got["metadata"]["pipelineArn"]
    assert arn == f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:{declaration['name']}"

    changed = copy.deepcopy(declaration)
    changed["executionMode"] = "SUPERSEDED"
    changed["variables"].append({"name": "Region", "defaultValue": "eu-west-1"})
    changed["triggers"][0]["gitConfiguration"]["push"][0]["branches"]["includes"] = ["main"]
    changed["stages"][1]["onFailure"] = {"result": "ROLLBACK"}
    codepipeline.update_pipeline(pipeline=changed)
    assert codepipeline.get_pipeline(name=declaration["name"])["pipeline"] == {**changed, "version": 2}

    codepipeline.tag_resource(resourceArn=arn, tags=[{"key": "cost", "value": "7"}])
    codepipeline.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert codepipeline.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "cost", "value": "7"}]

    codepipeline.delete_pipeline(name=declaration["name"])
    with pytest.raises(ClientError) as excinfo:
        codepipeline.get_pipeline(name=declaration["name"])
    assert excinfo.value.response["Error"]["Code"] == "PipelineNotFoundException"


def test_pipeline_role_may_list_its_service_principals(emulator: Emulator, unique) -> None:
    # IAM reads ["codepipeline.amazonaws.com"] as the plain string; moto alone
    # refused such a role (fixes/codepipeline.py).
    iam = emulator.client("iam")
    listed = json.loads(trust("codepipeline.amazonaws.com"))
    listed["Statement"][0]["Principal"]["Service"] = ["codepipeline.amazonaws.com"]
    role = iam.create_role(RoleName=unique("pipeline-role"), AssumeRolePolicyDocument=json.dumps(listed))["Role"]
    declaration = pipeline_declaration(unique("app"), role["Arn"])

    codepipeline = emulator.client("codepipeline")
    assert codepipeline.create_pipeline(pipeline=declaration)["pipeline"]["version"] == 1
    # The role's own document is left as written.
    assert iam.get_role(RoleName=role["RoleName"])["Role"]["AssumeRolePolicyDocument"] == listed

    unrelated = iam.create_role(RoleName=unique("other"), AssumeRolePolicyDocument=trust("codebuild.amazonaws.com"))
    with pytest.raises(ClientError) as excinfo:
        codepipeline.create_pipeline(pipeline=pipeline_declaration(unique("app"), unrelated["Role"]["Arn"]))
    assert excinfo.value.response["Error"]["Code"] == "InvalidStructureException"


def test_event_rule_and_targets_round_trip(emulator: Emulator, unique) -> None:
    events = emulator.client("events")
    name = unique("pipeline-failed")
    pattern = json.dumps(
        {
            "source": ["aws.codepipeline"],
            "detail-type": ["CodePipeline Pipeline Execution State Change"],
            "detail": {"state": ["FAILED"]},
        }
    )
    role = f"arn:aws:iam::{ACCOUNT}:role/events"
    arn = events.put_rule(Name=name, EventPattern=pattern, RoleArn=role, Tags=[{"Key": "team", "Value": "ci"}])[
        "RuleArn"
    ]
    rule = events.describe_rule(Name=name)
    assert (rule["EventPattern"], rule["RoleArn"], rule["State"]) == (pattern, role, "ENABLED")

    scheduled = unique("nightly")
    events.put_rule(Name=scheduled, ScheduleExpression="cron(0 3 * * ? *)")
    assert events.describe_rule(Name=scheduled)["ScheduleExpression"] == "cron(0 3 * * ? *)"

    target = {
        "Id": "notify",
        "Arn": f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts",
        "RoleArn": role,
        "InputTransformer": {
            "InputPathsMap": {"pipeline": "$.detail.pipeline"},
            "InputTemplate": '"Pipeline <pipeline> failed"',
        },
    }
    assert events.put_targets(Rule=name, Targets=[target])["FailedEntryCount"] == 0
    assert events.list_targets_by_rule(Rule=name)["Targets"] == [target]

    events.tag_resource(ResourceARN=arn, Tags=[{"Key": "cost", "Value": "7"}])
    events.untag_resource(ResourceARN=arn, TagKeys=["team"])
    assert events.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "cost", "Value": "7"}]

    events.remove_targets(Rule=name, Ids=["notify"])
    events.delete_rule(Name=name)
    with pytest.raises(ClientError) as excinfo:
        events.describe_rule(Name=name)
    assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"
