"""The critical path of a deployment, from a call record and a state."""

from __future__ import annotations

from typing import Any

import pytest

from securepipeline_emulator import critical_path


def _call(operation: str, service: str, subject: str | None, start: float, latency: float, fault: str | None = None) -> dict[str, Any]:
    return {
        "service": service,
        "operation": operation,
        "write": not operation.startswith(("Get", "Describe", "List", "Head")),
        "region": "us-east-1",
        "fault": fault,
        "retry": False,
        "subject": subject,
        "start": start,
        "end": start + latency,
        "latency": latency,
    }


URN = "urn:pulumi:s::p::securepipeline:index:SecurePipeline$securepipeline:aws:{}::{}"
KEY, LOGS, ROLE, PROJECT = (URN.format(kind, name) for kind, name in [
    ("Key", "p-key"), ("LogGroup", "p-logs"), ("Role", "p-role"), ("BuildProject", "p-build")
])
RESOURCES = [
    {"urn": KEY, "type": "securepipeline:aws:Key", "custom": True, "id": "k-1",
     "outputs": {"arn": "arn:aws:kms:us-east-1:123456789012:key/k-1"}, "dependencies": []},
    {"urn": LOGS, "type": "securepipeline:aws:LogGroup", "custom": True, "id": "/aws/codebuild/p",
     "outputs": {"kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/k-1"}, "dependencies": [KEY]},
    {"urn": ROLE, "type": "securepipeline:aws:Role", "custom": True, "id": "p-role-abc",
     "outputs": {"arn": "arn:aws:iam::123456789012:role/p-role-abc"}, "dependencies": [LOGS]},
    {"urn": PROJECT, "type": "securepipeline:aws:BuildProject", "custom": True, "id": "p-build-abc",
     "outputs": {}, "dependencies": [ROLE, LOGS]},
]


def test_the_longest_chain_of_needed_calls_with_the_role_window() -> None:
    calls = [
        _call("GetCallerIdentity", "sts", None, 0.0, 0.05),
        _call("CreateKey", "kms", None, 0.1, 0.25),  # names nothing: the key's, by what follows
        _call("EnableKeyRotation", "kms", "k-1", 0.4, 0.1),
        _call("CreateLogGroup", "logs", "/aws/codebuild/p", 0.6, 0.1),
        _call("CreateRole", "iam", "p-role-abc", 0.8, 0.2),
        _call("CreateProject", "codebuild", "p-build-abc", 1.1, 0.3, fault="propagation"),
        _call("CreateProject", "codebuild", "p-build-abc", 8.0, 0.3),
    ]
    path = critical_path.compute(calls, RESOURCES, role_window=6.0)
    assert path.unattributed == 1  # GetCallerIdentity: the deployment's own
    assert [s.kind for s in path.steps] == ["deployment", "Key", "LogGroup", "Role", "BuildProject"]
    # sts 0.05, key 0.35, logs 0.1, role 0.2, then the window, then the one needed CreateProject.
    assert path.seconds == pytest.approx(0.05 + 0.35 + 0.1 + 0.2 + 6.0 + 0.3)
    assert path.steps[-1].failed_calls == 1
    assert path.ratio(2 * path.seconds) == pytest.approx(2.0)


def test_independent_resources_overlap_and_a_key_waits_for_kms() -> None:
    resources = [dict(r, dependencies=[]) for r in RESOURCES[:2]]
    calls = [
        _call("CreateKey", "kms", None, 0.0, 0.3),
        _call("EnableKeyRotation", "kms", "k-1", 0.5, 0.1),
        _call("CreateLogGroup", "logs", "/aws/codebuild/p", 0.0, 0.2),
    ]
    path = critical_path.compute(calls, resources, key_window=2.0)
    assert path.seconds == pytest.approx(0.3 + 2.0 + 0.1)
    assert [s.kind for s in path.steps][-1] == "Key"
