"""The emulator's own services call it back with a role's session."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import boto3
import pytest
from moto.core.models import DEFAULT_ACCOUNT_ID
from werkzeug.serving import make_server

from securepipeline_emulator.app import EmulatorApp
from securepipeline_emulator.loopback import Loopback
from securepipeline_emulator.wire import AwsError

TRUST_CODEBUILD = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "codebuild.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


@pytest.fixture()
def app() -> Iterator[EmulatorApp]:
    emulator = EmulatorApp(enforce_iam=True)
    server = make_server("127.0.0.1", 0, emulator, threaded=True)
    emulator.loopback.bind(f"http://127.0.0.1:{server.server_port}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield emulator
    server.shutdown()


def admin_iam(app: EmulatorApp) -> object:
    return boto3.client(
        "iam",
        endpoint_url=app.loopback.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_a_service_session_calls_back_as_the_assumed_role(app: EmulatorApp) -> None:
    role = admin_iam(app).create_role(
        RoleName="loopback-build", AssumeRolePolicyDocument=json.dumps(TRUST_CODEBUILD)
    )["Role"]["Arn"]
    session = app.loopback.assume("codebuild.amazonaws.com", role, "build-1")
    identity = app.loopback.client("sts", "eu-west-1", session).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{DEFAULT_ACCOUNT_ID}:assumed-role/loopback-build/build-1"
    # The role has no policy: enforcement denies it what it was not granted.
    logs = app.loopback.client("logs", "eu-west-1", session)
    with pytest.raises(logs.exceptions.ClientError) as denied:
        logs.create_log_group(logGroupName="not-granted")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"


def test_a_service_the_trust_policy_does_not_name_is_refused(app: EmulatorApp) -> None:
    role = admin_iam(app).create_role(
        RoleName="loopback-refused", AssumeRolePolicyDocument=json.dumps(TRUST_CODEBUILD)
    )["Role"]["Arn"]
    with pytest.raises(AwsError) as refused:
        app.loopback.assume("codepipeline.amazonaws.com", role, "pipeline")
    assert refused.value.code == "AccessDenied"


def test_clients_need_the_server_to_listen_first() -> None:
    loopback = Loopback(EmulatorApp().enforcer)
    with pytest.raises(AwsError):
        loopback.client("sts", "us-east-1", None)  # type: ignore[arg-type]
