"""CodeStar Connections and CodeConnections, which the emulator adds to moto."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, Emulator

ARN_PREFIX = f"arn:aws:codestar-connections:{REGION}:{ACCOUNT}:connection/"


def set_status(emulator: Emulator, arn: str, status: str) -> requests.Response:
    return requests.post(
        f"{emulator.endpoint}/_emulator/connections/{quote(arn, safe='')}/status",
        json={"status": status},
    )


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    response = excinfo.value.response
    return (
        response["Error"]["Code"],
        response["Error"]["Message"],
        response["ResponseMetadata"]["HTTPStatusCode"],
    )


def test_lifecycle(emulator: Emulator, unique) -> None:
    client = emulator.client("codestar-connections")
    name = unique("gh")[:32]

    created = client.create_connection(
        ProviderType="GitHub", ConnectionName=name, Tags=[{"Key": "team", "Value": "ci"}]
    )
    arn = created["ConnectionArn"]
    assert arn.startswith(ARN_PREFIX)
    assert created["Tags"] == [{"Key": "team", "Value": "ci"}]

    assert client.get_connection(ConnectionArn=arn)["Connection"] == {
        "ConnectionName": name,
        "ConnectionArn": arn,
        "ProviderType": "GitHub",
        "OwnerAccountId": ACCOUNT,
        "ConnectionStatus": "PENDING",
    }

    client.delete_connection(ConnectionArn=arn)
    with pytest.raises(ClientError) as excinfo:
        client.get_connection(ConnectionArn=arn)
    assert error_of(excinfo) == ("ResourceNotFoundException", f"Resource not found: {arn}", 400)


def test_errors_are_shaped_like_aws(emulator: Emulator) -> None:
    missing = ARN_PREFIX + "00000000-0000-0000-0000-000000000000"
    response = emulator.json_call(
        "codestar-connections",
        "CodeStar_connections_20191201.GetConnection",
        {"ConnectionArn": missing},
    )
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/x-amz-json-1.0"
    assert response.json() == {
        "__type": "ResourceNotFoundException",
        "Message": f"Resource not found: {missing}",
    }


def test_rust_sdk_target_without_namespace(emulator: Emulator, unique) -> None:
    # The Rust SDK sends the bare service shape name as the target prefix;
    # boto3 sends it qualified with the Smithy namespace. Both must work.
    response = emulator.json_call(
        "codestar-connections",
        "CodeStar_connections_20191201.CreateConnection",
        {"ProviderType": "GitLab", "ConnectionName": unique("rs")[:32]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["ConnectionArn"].startswith(ARN_PREFIX)


def test_validation_errors_follow_the_model(emulator: Emulator) -> None:
    client = emulator.client("codestar-connections", parameter_validation=False)

    with pytest.raises(ClientError) as excinfo:
        client.create_connection(ProviderType="GitHub", ConnectionName="x" * 33)
    code, message, status = error_of(excinfo)
    assert (code, status) == ("ValidationException", 400)
    assert message == (
        f"1 validation error detected: Value '{'x' * 33}' at 'connectionName' failed to "
        "satisfy constraint: Member must have length less than or equal to 32"
    )

    with pytest.raises(ClientError) as excinfo:
        client.create_connection(ProviderType="SourceForge", ConnectionName="bad")
    code, message, _ = error_of(excinfo)
    assert code == "ValidationException"
    assert "Member must satisfy enum value set: [Bitbucket, GitHub" in message

    with pytest.raises(ClientError) as excinfo:
        client.create_connection(ConnectionName="neither")
    assert error_of(excinfo)[0] == "ValidationException"

    with pytest.raises(ClientError) as excinfo:
        client.get_connection()
    assert error_of(excinfo)[1] == (
        "1 validation error detected: Value null at 'connectionArn' failed to satisfy "
        "constraint: Member must not be null"
    )


def test_list_filters_and_pages(emulator: Emulator, unique) -> None:
    region = "ap-southeast-2"  # a region of this test's own, so counts are exact
    client = emulator.client("codestar-connections", region=region)
    host = f"arn:aws:codestar-connections:{region}:{ACCOUNT}:host/ghes-1234"
    github = [client.create_connection(ProviderType="GitHub", ConnectionName=unique("g")[:32]) for _ in range(3)]
    client.create_connection(ProviderType="Bitbucket", ConnectionName=unique("b")[:32])
    on_host = client.create_connection(HostArn=host, ConnectionName=unique("h")[:32])

    assert len(client.list_connections()["Connections"]) == 5
    listed = client.list_connections(ProviderTypeFilter="GitHub")["Connections"]
    assert [c["ConnectionArn"] for c in listed] == [c["ConnectionArn"] for c in github]
    by_host = client.list_connections(HostArnFilter=host)["Connections"]
    assert [c["ConnectionArn"] for c in by_host] == [on_host["ConnectionArn"]]
    assert by_host[0]["HostArn"] == host

    first = client.list_connections(MaxResults=2)
    second = client.list_connections(MaxResults=2, NextToken=first["NextToken"])
    third = client.list_connections(MaxResults=2, NextToken=second["NextToken"])
    assert "NextToken" not in third
    pages = first["Connections"] + second["Connections"] + third["Connections"]
    assert len({c["ConnectionArn"] for c in pages}) == 5

    # Other regions' connections are not listed here.
    assert emulator.client("codestar-connections", region="sa-east-1").list_connections()["Connections"] == []


def test_tags(emulator: Emulator, unique) -> None:
    client = emulator.client("codestar-connections")
    arn = client.create_connection(
        ProviderType="GitHub", ConnectionName=unique("t")[:32], Tags=[{"Key": "a", "Value": "1"}]
    )["ConnectionArn"]

    client.tag_resource(ResourceArn=arn, Tags=[{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "3"}])
    client.untag_resource(ResourceArn=arn, TagKeys=["b", "never-set"])
    assert client.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "a", "Value": "3"}]

    too_many = [{"Key": f"k{i}", "Value": "v"} for i in range(50)]
    with pytest.raises(ClientError) as excinfo:
        client.tag_resource(ResourceArn=arn, Tags=too_many)
    assert error_of(excinfo)[0] == "LimitExceededException"

    client.delete_connection(ConnectionArn=arn)
    with pytest.raises(ClientError) as excinfo:
        client.list_tags_for_resource(ResourceArn=arn)
    assert error_of(excinfo)[0] == "ResourceNotFoundException"


def test_connection_limit(emulator: Emulator) -> None:
    region = "ca-central-1"
    for index in range(250):
        response = emulator.json_call(
            "codestar-connections",
            "CodeStar_connections_20191201.CreateConnection",
            {"ProviderType": "GitHub", "ConnectionName": f"c{index}"},
            region=region,
        )
        assert response.status_code == 200, response.text
    client = emulator.client("codestar-connections", region=region)
    with pytest.raises(ClientError) as excinfo:
        client.create_connection(ProviderType="GitHub", ConnectionName="one-too-many")
    assert error_of(excinfo)[0] == "LimitExceededException"


def test_status_can_be_set_as_if_activated_in_the_console(emulator: Emulator, unique) -> None:
    client = emulator.client("codestar-connections")
    arn = client.create_connection(ProviderType="GitHub", ConnectionName=unique("s")[:32])["ConnectionArn"]

    flipped = set_status(emulator, arn, "AVAILABLE")
    assert flipped.status_code == 200
    assert flipped.json()["ConnectionStatus"] == "AVAILABLE"
    assert client.get_connection(ConnectionArn=arn)["Connection"]["ConnectionStatus"] == "AVAILABLE"

    # The ARN may also be sent unencoded: it is everything up to /status.
    raw = requests.post(f"{emulator.endpoint}/_emulator/connections/{arn}/status", json={"status": "ERROR"})
    assert raw.status_code == 200
    assert client.get_connection(ConnectionArn=arn)["Connection"]["ConnectionStatus"] == "ERROR"

    assert set_status(emulator, arn, "ACTIVE").status_code == 400
    assert set_status(emulator, ARN_PREFIX + "missing", "AVAILABLE").status_code == 404


def test_codeconnections_is_the_same_service_renamed(emulator: Emulator, unique) -> None:
    renamed = emulator.client("codeconnections")
    legacy = emulator.client("codestar-connections")

    arn = renamed.create_connection(ProviderType="GitLab", ConnectionName=unique("cc")[:32])["ConnectionArn"]
    assert arn.startswith(f"arn:aws:codeconnections:{REGION}:{ACCOUNT}:connection/")
    assert legacy.get_connection(ConnectionArn=arn)["Connection"]["ProviderType"] == "GitLab"

    old_arn = legacy.create_connection(ProviderType="GitHub", ConnectionName=unique("cs")[:32])["ConnectionArn"]
    assert renamed.get_connection(ConnectionArn=old_arn)["Connection"]["ConnectionArn"] == old_arn

    renamed.delete_connection(ConnectionArn=arn)
    # CodeConnections models ResourceNotFoundException as HTTP 404.
    with pytest.raises(ClientError) as excinfo:
        renamed.get_connection(ConnectionArn=arn)
    assert error_of(excinfo)[::2] == ("ResourceNotFoundException", 404)

    response = emulator.json_call(
        "codeconnections", "CodeConnections_20231201.GetConnection", {"ConnectionArn": old_arn}
    )
    assert response.status_code == 200
    assert response.json()["Connection"]["ConnectionArn"] == old_arn


def test_unimplemented_operations_say_so(emulator: Emulator) -> None:
    response = emulator.json_call(
        "codestar-connections", "CodeStar_connections_20191201.ListHosts", {}
    )
    assert response.status_code == 400
    assert response.json()["__type"] == "UnknownOperationException"
