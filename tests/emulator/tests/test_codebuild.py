"""CodeBuild projects: UpdateProject, and read-back of everything written."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, Emulator

ROLE = f"arn:aws:iam::{ACCOUNT}:role/build"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def project_input(name: str) -> dict[str, Any]:
    # What a pipeline's build project looks like: source and artifacts come
    # from CodePipeline and so have no location, which moto alone rejects.
    return {
        "name": name,
        "description": "builds the app",
        "source": {"type": "CODEPIPELINE", "buildspec": "version: 0.2\nphases:\n  build:\n    commands: [make]\n"},
        "artifacts": {"type": "CODEPIPELINE"},
        "environment": {
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
            "privilegedMode": False,
            "imagePullCredentialsType": "CODEBUILD",
            "environmentVariables": [
                {"name": "STAGE", "value": "prod", "type": "PLAINTEXT"},
                {"name": "TOKEN", "value": "/ci/token", "type": "PARAMETER_STORE"},
                {"name": "DB", "value": "arn:aws:secretsmanager:x", "type": "SECRETS_MANAGER"},
            ],
        },
        "serviceRole": ROLE,
        "timeoutInMinutes": 30,
        "queuedTimeoutInMinutes": 120,
        "encryptionKey": KEY,
        "logsConfig": {
            "cloudWatchLogs": {"status": "ENABLED", "groupName": f"/aws/codebuild/{name}"},
            "s3Logs": {"status": "DISABLED", "encryptionDisabled": False},
        },
        "tags": [{"key": "team", "value": "ci"}],
    }


def read_back(client: Any, name: str) -> dict[str, Any]:
    found = client.batch_get_projects(names=[name])
    assert found["projectsNotFound"] == []
    (project,) = found["projects"]
    return project


def assert_carries(project: dict[str, Any], written: dict[str, Any]) -> None:
    for key, value in written.items():
        assert project[key] == value, key


def test_create_reads_back_every_field(emulator: Emulator, unique) -> None:
    client = emulator.client("codebuild")
    written = project_input(unique("build"))

    created = client.create_project(**written)["project"]
    assert_carries(created, written)
    assert created["arn"] == f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{written['name']}"
    assert created["created"] == created["lastModified"]

    assert_carries(read_back(client, written["name"]), written)


def test_timeouts_not_given_are_codebuilds_defaults(emulator: Emulator, unique) -> None:
    client = emulator.client("codebuild")
    written = project_input(unique("build"))
    del written["timeoutInMinutes"], written["queuedTimeoutInMinutes"]
    client.create_project(**written)
    project = read_back(client, written["name"])
    assert (project["timeoutInMinutes"], project["queuedTimeoutInMinutes"]) == (60, 480)


def test_update_project_changes_every_field_it_carries(emulator: Emulator, unique) -> None:
    client = emulator.client("codebuild")
    name = unique("build")
    before = client.create_project(**project_input(name))["project"]

    changes = {
        "description": "builds and tests the app",
        "source": {"type": "CODEPIPELINE", "buildspec": "buildspec.yml"},
        "artifacts": {"type": "NO_ARTIFACTS"},
        "environment": {
            "type": "ARM_CONTAINER",
            "image": "aws/codebuild/amazonlinux2-aarch64-standard:3.0",
            "computeType": "BUILD_GENERAL1_LARGE",
            "privilegedMode": True,
            "environmentVariables": [{"name": "STAGE", "value": "dev", "type": "PLAINTEXT"}],
        },
        "serviceRole": f"arn:aws:iam::{ACCOUNT}:role/other-build",
        "timeoutInMinutes": 60,
        "queuedTimeoutInMinutes": 30,
        "encryptionKey": f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/builds",
        "logsConfig": {"cloudWatchLogs": {"status": "DISABLED"}},
        "tags": [{"key": "team", "value": "platform"}, {"key": "cost", "value": "42"}],
    }
    updated = client.update_project(name=name, **changes)["project"]
    assert_carries(updated, changes)
    assert updated["created"] == before["created"]
    assert updated["lastModified"] >= before["lastModified"]
    assert_carries(read_back(client, name), changes)


def test_update_leaves_fields_it_does_not_carry(emulator: Emulator, unique) -> None:
    client = emulator.client("codebuild")
    written = project_input(unique("build"))
    client.create_project(**written)

    client.update_project(name=written["name"], timeoutInMinutes=90)
    project = read_back(client, written["name"])
    assert project["timeoutInMinutes"] == 90
    assert_carries(project, {k: v for k, v in written.items() if k != "timeoutInMinutes"})


def test_update_by_arn_badge_and_concurrency(emulator: Emulator, unique) -> None:
    client = emulator.client("codebuild")
    name = unique("build")
    arn = client.create_project(**project_input(name))["project"]["arn"]

    client.update_project(name=arn, badgeEnabled=True, concurrentBuildLimit=2)
    project = read_back(client, name)
    assert project["badge"]["badgeEnabled"] is True
    assert project["concurrentBuildLimit"] == 2

    client.update_project(name=name, concurrentBuildLimit=-1)  # -1 removes the limit
    assert "concurrentBuildLimit" not in read_back(client, name)


def test_update_unknown_project(emulator: Emulator) -> None:
    client = emulator.client("codebuild")
    with pytest.raises(ClientError) as excinfo:
        client.update_project(name="no-such-project", timeoutInMinutes=10)
    error = excinfo.value.response["Error"]
    assert error["Code"] == "ResourceNotFoundException"
    assert error["Message"].endswith(f"project/no-such-project")


def test_input_is_validated_against_the_model(emulator: Emulator, unique) -> None:
    client = emulator.client("codebuild", parameter_validation=False)
    name = unique("build")
    client.create_project(**project_input(name))

    with pytest.raises(ClientError) as excinfo:
        client.update_project(name=name, timeoutInMinutes=1)
    error = excinfo.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "at 'timeoutInMinutes' failed to satisfy constraint: Member must have value " \
        "greater than or equal to 5" in error["Message"]

    with pytest.raises(ClientError) as excinfo:
        client.create_project(**{**project_input(unique("build")), "environment": {"type": "LINUX_CONTAINER"}})
    assert excinfo.value.response["Error"]["Code"] == "ValidationException"


def test_create_twice_and_delete(emulator: Emulator, unique) -> None:
    client = emulator.client("codebuild")
    written = project_input(unique("build"))
    client.create_project(**written)

    with pytest.raises(ClientError) as excinfo:
        client.create_project(**written)
    assert excinfo.value.response["Error"]["Code"] == "ResourceAlreadyExistsException"

    client.delete_project(name=written["name"])
    found = client.batch_get_projects(names=[written["name"]])
    assert found["projects"] == []
    assert found["projectsNotFound"] == [written["name"]]
