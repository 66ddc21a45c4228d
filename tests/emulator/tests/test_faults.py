"""Fault injection: calls fail as AWS fails them, replayably, and recorded."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import EMULATOR_DIR, Emulator, start_emulator
from securepipeline_emulator.faults import FaultInjector, FaultPlan, FaultSpecError

CODEBUILD_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "codebuild.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def _error(call) -> ClientError:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value


def _create_key(emulator: Emulator) -> requests.Response:
    return emulator.json_call("kms", "TrentService.CreateKey", {"Description": "fault test"}, version="1.1")


def test_spec_is_parsed_and_bad_specs_are_named() -> None:
    plan = FaultPlan.parse("rate=0.2,seed=7,kinds=throttle+lost,only=kms+iam:CreateRole,limit=3,propagation=2.5")
    assert plan == FaultPlan(
        rate=0.2,
        seed=7,
        kinds=("throttle", "lost"),
        only=("kms", "iam:CreateRole"),
        limit=3,
        propagation_seconds=2.5,
    )
    assert plan.applies_to("kms", "ListKeys")
    assert plan.applies_to("iam", "CreateRole")
    assert not plan.applies_to("iam", "GetRole")
    assert FaultPlan.parse("") == FaultPlan()
    for bad, reason in [
        ("rate=2", "between 0 and 1"),
        ("kinds=slow", "kinds are"),
        ("speed=1", "unknown key `speed`"),
        ("seed=x", "`seed=x`"),
        ("rate", "not key=value"),
    ]:
        with pytest.raises(FaultSpecError, match=reason):
            FaultPlan.parse(bad)


def test_a_seed_replays_the_same_faults_at_the_chosen_rate() -> None:
    def run(spec: str) -> list[str | None]:
        injector = FaultInjector(FaultPlan.parse(spec))
        calls = [
            SimpleNamespace(service=service, operation=operation, region="us-east-1")
            for _ in range(200)
            for service, operation in [("kms", "CreateKey"), ("iam", "CreateRole"), ("s3", "PutBucketPolicy")]
        ]
        return [decision.kind if (decision := injector.decide(call)) else None for call in calls]

    first = run("rate=0.2,seed=7")
    assert first == run("rate=0.2,seed=7")
    assert first != run("rate=0.2,seed=8")
    share = sum(kind is not None for kind in first) / len(first)
    assert 0.15 < share < 0.25, share
    assert {kind for kind in first if kind} == {"throttle", "error", "reset", "lost"}
    assert sum(kind is not None for kind in run("rate=1,limit=5")) == 5


def test_throttling_speaks_each_protocol(fresh_emulator: Emulator) -> None:
    fresh_emulator.set_faults("rate=1,kinds=throttle")

    kms = _error(lambda: fresh_emulator.client("kms").list_keys())
    assert kms.response["Error"]["Code"] == "ThrottlingException"
    assert kms.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    raw = fresh_emulator.json_call("logs", "Logs_20140328.DescribeLogGroups", {}, version="1.1")
    assert raw.headers["x-amzn-ErrorType"] == "ThrottlingException"
    assert raw.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert raw.json()["__type"] == "ThrottlingException"

    iam = _error(lambda: fresh_emulator.client("iam").list_roles())
    assert iam.response["Error"]["Code"] == "Throttling"
    raw = fresh_emulator.signed("sns", "POST", "/", b"Action=ListTopics&Version=2010-03-31",
                                {"Content-Type": "application/x-www-form-urlencoded"})
    assert raw.status_code == 400
    assert "<ErrorResponse" in raw.text and "<Code>Throttling</Code>" in raw.text

    s3 = _error(lambda: fresh_emulator.client("s3").list_buckets())
    assert s3.response["Error"]["Code"] == "SlowDown"
    assert s3.response["ResponseMetadata"]["HTTPStatusCode"] == 503


def test_server_errors_are_5xx_in_each_protocol(fresh_emulator: Emulator) -> None:
    fresh_emulator.set_faults("rate=1,kinds=error,seed=3")
    seen = set()
    for _ in range(6):
        for service, call in [
            ("kms", lambda: fresh_emulator.client("kms").list_keys()),
            ("iam", lambda: fresh_emulator.client("iam").list_roles()),
            ("s3", lambda: fresh_emulator.client("s3").list_buckets()),
            ("codebuild", lambda: fresh_emulator.client("codebuild").list_projects()),
        ]:
            error = _error(call)
            status = error.response["ResponseMetadata"]["HTTPStatusCode"]
            assert status in (500, 503), (service, status)
            seen.add((service, error.response["Error"]["Code"], status))
    codes = {code for _, code, _ in seen}
    assert {"KMSInternalException", "ServiceFailure", "InternalError", "ServiceUnavailable"} <= codes, seen


def test_a_reset_call_never_reaches_the_service(fresh_emulator: Emulator) -> None:
    fresh_emulator.set_faults("rate=1,kinds=reset,only=kms:CreateKey")
    with pytest.raises(requests.ConnectionError):
        _create_key(fresh_emulator)
    fresh_emulator.set_faults("")
    assert fresh_emulator.client("kms").list_keys()["Keys"] == []
    assert [c["fault"] for c in fresh_emulator.calls()] == ["reset", None]


def test_a_lost_response_still_carries_out_the_write(fresh_emulator: Emulator) -> None:
    fresh_emulator.set_faults("rate=1,kinds=lost,only=kms:CreateKey,limit=1")
    with pytest.raises(requests.ConnectionError):
        _create_key(fresh_emulator)
    # The client cannot tell; a blind retry makes a second key.
    assert _create_key(fresh_emulator).status_code == 200
    assert len(fresh_emulator.client("kms").list_keys()["Keys"]) == 2
    calls = fresh_emulator.calls()
    assert [(c["operation"], c["fault"], c["retry"]) for c in calls] == [
        ("CreateKey", "lost", False),
        ("CreateKey", None, True),
        ("ListKeys", None, False),
    ]


def test_a_new_role_is_not_usable_by_codebuild_or_codepipeline_at_once(fresh_emulator: Emulator) -> None:
    fresh_emulator.set_faults("propagation=1.5")
    iam = fresh_emulator.client("iam")
    role = iam.create_role(RoleName="fresh-build", AssumeRolePolicyDocument=CODEBUILD_TRUST)["Role"]["Arn"]
    codebuild = fresh_emulator.client("codebuild")
    project = {
        "name": "fresh",
        "source": {"type": "NO_SOURCE", "buildspec": "version: 0.2"},
        "artifacts": {"type": "NO_ARTIFACTS"},
        "environment": {"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0", "computeType": "BUILD_GENERAL1_SMALL"},
        "serviceRole": role,
    }
    error = _error(lambda: codebuild.create_project(**project))
    assert error.response["Error"]["Code"] == "InvalidInputException"
    assert error.response["Error"]["Message"] == f"CodeBuild is not authorized to perform: sts:AssumeRole on {role}"

    pipeline = fresh_emulator.json_call(
        "codepipeline",
        "CodePipeline_20150709.CreatePipeline",
        {"pipeline": {"name": "fresh", "roleArn": role, "stages": []}},
        version="1.1",
    )
    assert pipeline.status_code == 400
    assert pipeline.json() == {
        "__type": "InvalidStructureException",
        "Message": f"CodePipeline is not authorized to perform AssumeRole on role {role}",
    }
    assert [c["fault"] for c in fresh_emulator.calls()] == [None, "propagation", "propagation"]

    time.sleep(1.6)
    assert codebuild.create_project(**project)["project"]["serviceRole"] == role


def test_faults_are_set_by_flag_or_environment() -> None:
    for emulator in (
        start_emulator("--faults", "rate=1,kinds=throttle,only=sts"),
        start_emulator(env_extra={"SECUREPIPELINE_EMULATOR_FAULTS": "rate=1,kinds=throttle,only=sts"}),
    ):
        try:
            error = _error(lambda: emulator.client("sts").get_caller_identity())
            assert error.response["Error"]["Code"] == "Throttling"
            assert emulator.client("kms").list_keys()["Keys"] == []
        finally:
            emulator.stop()
            emulator.log_path.unlink()


def test_a_bad_flag_stops_the_emulator_with_the_reason() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "securepipeline_emulator", "--faults", "rate=high"],
        cwd=EMULATOR_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--faults: `rate=high`" in result.stderr


def test_bad_admin_specs_are_rejected(emulator: Emulator) -> None:
    response = requests.post(f"{emulator.endpoint}/_emulator/faults", json={"spec": "kinds=slow"})
    assert response.status_code == 400
    assert "kinds are" in response.json()["message"]
