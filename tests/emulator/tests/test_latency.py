"""The latency model: AWS's pace, quotas and eventual consistency, seeded.

Nothing here asserts a duration: only what the model decides (replayably),
what a client sees (errors in AWS's shapes) and that a retrying client gets
through throttling.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import Emulator, start_emulator
from securepipeline_emulator.latency import LatencyModel, LatencyPlan, LatencySpecError, quota

# Short latencies keep the tests quick; the decisions do not depend on scale.
FAST = "seed=3,scale=0.02"
# Generous windows: the first use must fall inside them on a loaded machine.
DEADLINE_S = 20

CODEBUILD_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "codebuild.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def _error(call: Callable[[], Any]) -> ClientError:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value


def _until_ok(call: Callable[[], Any]) -> Any:
    """Polls a call that fails while AWS propagates, up to a deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        try:
            return call()
        except ClientError:
            if time.monotonic() > deadline:
                raise


def test_spec_is_parsed_and_bad_specs_are_named() -> None:
    assert LatencyPlan.parse("") == LatencyPlan()
    assert not LatencyPlan.parse("").enabled
    plan = LatencyPlan.parse("seed=4,scale=0.5,throttle=0,role=3,key=1.5,topic=2")
    assert plan == LatencyPlan(enabled=True, seed=4, scale=0.5, throttle=False, role=3, key=1.5, topic=2)
    assert LatencyPlan.parse("seed=1").enabled
    for bad, reason in [
        ("scale=-1", "at least 0"),
        ("throttle=yes", "throttle is 1"),
        ("speed=1", "unknown key `speed`"),
        ("seed=x", "`seed=x`"),
        ("seed", "not key=value"),
    ]:
        with pytest.raises(LatencySpecError, match=reason):
            LatencyPlan.parse(bad)


def test_latencies_replay_by_seed_and_vary_around_each_operations_figure() -> None:
    def run(spec: str) -> list[float]:
        model = LatencyModel(LatencyPlan.parse(spec))
        calls = [
            SimpleNamespace(service=service, operation=operation, region="us-east-1")
            for _ in range(50)
            for service, operation in [("kms", "CreateKey"), ("iam", "GetRole"), ("s3", "CreateBucket")]
        ]
        return [model.latency(call) for call in calls]

    first = run("seed=7")
    assert first == run("seed=7")
    assert first != run("seed=8")
    creates, reads = first[2::3], first[1::3]
    assert len(set(creates)) == len(creates), "jitter: no two draws alike"
    assert sorted(creates)[25] > sorted(reads)[25], "CreateBucket is slower than GetRole"
    assert run("seed=7,scale=0.5") == pytest.approx([t / 2 for t in first])
    assert run("") == [0.0] * len(first)


def test_quotas_name_the_published_rates() -> None:
    assert quota("kms", "CreateKey").rate == 5
    assert quota("logs", "CreateLogGroup").rate == 5
    assert quota("kms", "DescribeKey").rate > 1000


def test_calls_take_their_modelled_time_and_record_it(fresh_emulator: Emulator) -> None:
    fresh_emulator.set_latency("seed=1,scale=0.2")
    fresh_emulator.client("kms").create_key()
    fresh_emulator.client("sts").get_caller_identity()
    calls = fresh_emulator.calls()
    assert [c["operation"] for c in calls] == ["CreateKey", "GetCallerIdentity"]
    for call in calls:
        assert call["latency"] > 0
        assert call["end"] - call["start"] >= call["latency"]


def _burst(count: int, call: Callable[[int], Any]) -> list[tuple[str, int] | None]:
    """`count` calls at once; each one's error code and HTTP status, or None."""

    def one(index: int) -> tuple[str, int] | None:
        try:
            call(index)
        except ClientError as error:
            return error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]
        return None

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_above_its_rate_an_api_is_throttled_in_each_protocol(fresh_emulator: Emulator) -> None:
    fresh_emulator.set_latency(FAST)
    logs = fresh_emulator.client("logs")
    # CreateLogGroup: 5 a second; IAM writes 15; S3 CreateBucket 10.
    answers = _burst(30, lambda i: logs.create_log_group(logGroupName=f"/throttle/{i}"))
    assert set(answers) == {None, ("ThrottlingException", 400)}, answers
    created = logs.describe_log_groups(logGroupNamePrefix="/throttle/")["logGroups"]
    assert len(created) == answers.count(None), "a throttled call does nothing"

    iam = fresh_emulator.client("iam")
    answers = _burst(
        40, lambda i: iam.create_role(RoleName=f"throttled-{i}", AssumeRolePolicyDocument=CODEBUILD_TRUST)
    )
    assert set(answers) == {None, ("Throttling", 400)}, answers

    s3 = fresh_emulator.client("s3")
    answers = _burst(30, lambda i: s3.create_bucket(Bucket=f"throttled-{i}"))
    assert set(answers) == {None, ("SlowDown", 503)}, answers
    throttled = [c for c in fresh_emulator.calls() if c["fault"] == "throttle"]
    assert {c["operation"] for c in throttled} == {"CreateLogGroup", "CreateRole", "CreateBucket"}


def test_throttling_never_becomes_a_failure_for_a_retrying_client(fresh_emulator: Emulator) -> None:
    fresh_emulator.set_latency(FAST)
    logs = fresh_emulator.client("logs", retries={"mode": "standard", "max_attempts": 10})
    for index in range(20):
        logs.create_log_group(logGroupName=f"/retried/{index}")
    calls = fresh_emulator.calls()
    throttled = [c for c in calls if c["fault"] == "throttle"]
    assert throttled, "20 creates at 5 a second must meet the quota"
    assert sum(c["fault"] is None for c in calls) == 20
    # Every throttled request came back (as a retry) until it got through.
    assert sum(c["retry"] for c in calls) >= len(throttled)


def test_a_new_key_is_not_found_at_once(fresh_emulator: Emulator) -> None:
    fresh_emulator.set_latency(f"{FAST},key=5")
    kms = fresh_emulator.client("kms")
    key = kms.create_key()["KeyMetadata"]
    error = _error(lambda: kms.enable_key_rotation(KeyId=key["KeyId"]))
    assert error.response["Error"]["Code"] == "NotFoundException"
    assert error.response["Error"]["Message"] == f"Key '{key['Arn']}' does not exist"
    logs = fresh_emulator.client("logs")
    denied = _error(lambda: logs.create_log_group(logGroupName="/young/key", kmsKeyId=key["Arn"]))
    assert denied.response["Error"]["Code"] == "AccessDeniedException"
    assert "The specified KMS key does not exist or is not allowed to be used with Arn" in (
        denied.response["Error"]["Message"]
    )
    _until_ok(lambda: kms.enable_key_rotation(KeyId=key["KeyId"]))
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"]
    faults = [(c["operation"], c["fault"]) for c in fresh_emulator.calls()]
    assert faults[:3] == [("CreateKey", None), ("EnableKeyRotation", "propagation"), ("CreateLogGroup", "propagation")]


def test_a_new_topic_is_not_found_at_once_when_asked(fresh_emulator: Emulator) -> None:
    fresh_emulator.set_latency(f"{FAST},topic=4")
    sns = fresh_emulator.client("sns")
    arn = sns.create_topic(Name="young")["TopicArn"]
    error = _error(lambda: sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="a@example.com"))
    assert (error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]) == ("NotFound", 404)
    _until_ok(lambda: sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="a@example.com"))


def test_a_new_role_is_not_assumable_by_codebuild_at_once(fresh_emulator: Emulator) -> None:
    fresh_emulator.set_latency(f"{FAST},role=4")
    role = fresh_emulator.client("iam").create_role(
        RoleName="young-build", AssumeRolePolicyDocument=CODEBUILD_TRUST
    )["Role"]["Arn"]
    codebuild = fresh_emulator.client("codebuild")
    project = {
        "name": "young",
        "source": {"type": "NO_SOURCE", "buildspec": "version: 0.2"},
        "artifacts": {"type": "NO_ARTIFACTS"},
        "environment": {"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0", "computeType": "BUILD_GENERAL1_SMALL"},
        "serviceRole": role,
    }
    error = _error(lambda: codebuild.create_project(**project))
    assert error.response["Error"]["Message"] == f"CodeBuild is not authorized to perform: sts:AssumeRole on {role}"
    assert _until_ok(lambda: codebuild.create_project(**project))["project"]["serviceRole"] == role


def test_the_model_is_set_by_flag_environment_or_admin_call() -> None:
    for emulator in (
        start_emulator("--latency", "seed=2,scale=0.01"),
        start_emulator(env_extra={"SECUREPIPELINE_EMULATOR_LATENCY": "seed=2,scale=0.01"}),
    ):
        try:
            state = requests.get(f"{emulator.endpoint}/_emulator/latency").json()
            assert (state["enabled"], state["seed"], state["scale"]) == (True, 2, 0.01)
            emulator.client("sts").get_caller_identity()
            assert emulator.calls()[0]["latency"] > 0
            emulator.set_latency("")
            assert requests.get(f"{emulator.endpoint}/_emulator/latency").json()["enabled"] is False
        finally:
            emulator.stop()
            emulator.log_path.unlink()


def test_bad_admin_specs_are_rejected(emulator: Emulator) -> None:
    response = requests.post(f"{emulator.endpoint}/_emulator/latency", json={"spec": "throttle=maybe"})
    assert response.status_code == 400
    assert "throttle is 1" in response.json()["message"]
