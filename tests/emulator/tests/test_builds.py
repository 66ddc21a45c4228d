"""CodeBuild builds that run: buildspecs executed under the project's role,
through StartBuild/BatchGetBuilds/StopBuild and through the in-process
interface a pipeline run uses (`app.builds.start/get/wait`)."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.serving import make_server

from conftest import ACCOUNT, REGION
from securepipeline_emulator.app import EmulatorApp
from securepipeline_emulator.builds import ArtifactLocation

DEADLINE_S = 60
FINAL = ("SUCCEEDED", "FAILED", "FAULT", "TIMED_OUT", "STOPPED")


def trust(project_arn: str | None = None) -> str:
    statement: dict[str, Any] = {
        "Effect": "Allow", "Principal": {"Service": "codebuild.amazonaws.com"}, "Action": "sts:AssumeRole",
    }
    if project_arn:
        statement["Condition"] = {"ArnEquals": {"aws:SourceArn": project_arn}}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def project_arn(name: str) -> str:
    return f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{name}"


def log_grants(project: str, group: str | None = None) -> list[dict[str, Any]]:
    group = group or f"/aws/codebuild/{project}"
    return [{
        "Sid": "Logs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:log-stream:*",
    }]


def make_project(
    client: Callable[[str], Any],
    name: str,
    spec: str,
    statements: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> str:
    """A project with a role CodeBuild may assume (for this project only),
    granted `statements`, and its log group."""
    iam = client("iam")
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust(project_arn(name)))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="build", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": log_grants(name) + (statements or [])}
    ))
    group = extra.get("logsConfig", {}).get("cloudWatchLogs", {}).get("groupName", f"/aws/codebuild/{name}")
    client("logs").create_log_group(logGroupName=group)
    client("codebuild").create_project(
        name=name,
        source={"type": extra.pop("source_type", "NO_SOURCE"), "buildspec": spec},
        artifacts={"type": extra.pop("artifacts_type", "NO_ARTIFACTS")},
        environment={
            "type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0", "computeType": "BUILD_GENERAL1_SMALL",
            "environmentVariables": extra.pop("variables", []),
        },
        serviceRole=role,
        **extra,
    )
    return role


def finished(codebuild: Any, build_id: str, deadline_s: float = DEADLINE_S) -> dict[str, Any]:
    """Poll BatchGetBuilds until the build's status is final."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        build = codebuild.batch_get_builds(ids=[build_id])["builds"][0]
        if build["buildStatus"] in FINAL:
            return build
        time.sleep(0.05)
    raise AssertionError(f"build {build_id} still running after {deadline_s}s")


def reaches_phase(get: Callable[[], dict[str, Any]], phase: str, deadline_s: float = DEADLINE_S) -> dict[str, Any]:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        build = get()
        if build["currentPhase"] == phase:
            return build
        time.sleep(0.05)
    raise AssertionError(f"build never reached {phase}")


def phases(build: dict[str, Any]) -> dict[str, str | None]:
    return {p["phaseType"]: p.get("phaseStatus") for p in build["phases"]}


def context(build: dict[str, Any], phase: str) -> dict[str, str]:
    (found,) = [p for p in build["phases"] if p["phaseType"] == phase]
    return found["contexts"][0]


def log_lines(client: Callable[[str], Any], build: dict[str, Any]) -> list[str]:
    events = client("logs").get_log_events(
        logGroupName=build["logs"]["groupName"], logStreamName=build["logs"]["streamName"], startFromHead=True
    )["events"]
    return [event["message"] for event in events]


def output(client: Callable[[str], Any], build: dict[str, Any]) -> list[str]:
    """What the commands printed: the log without CodeBuild's own lines."""
    return [line for line in log_lines(client, build) if not line.startswith("[Container]")]


# ------------------------------------------------------------- in-process --


class Clock:
    """Monotonic time a test can move forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


@pytest.fixture(scope="module")
def app() -> Iterator[EmulatorApp]:
    """An emulator in this process, with IAM enforced, for what only the
    in-process interface reaches (BuildRunner.start, the build clock)."""
    emulator = EmulatorApp(enforce_iam=True)
    server = make_server("127.0.0.1", 0, emulator, threaded=True, request_handler=MotoRequestHandler)
    emulator.loopback.bind(f"http://127.0.0.1:{server.server_port}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield emulator
    server.shutdown()


def admin_client(app: EmulatorApp) -> Callable[[str], Any]:
    def client(service: str) -> Any:
        return boto3.client(
            service, endpoint_url=app.loopback.endpoint, region_name=REGION, aws_access_key_id="testing",
            aws_secret_access_key="testing", config=Config(retries={"max_attempts": 1}),
        )

    return client


def zipped(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


PIPELINE_SPEC = """\
version: 0.2
env:
  exported-variables: [BUILT_FROM]
phases:
  build:
    commands:
      - mkdir -p dist
      - cat app.txt "$CODEBUILD_SRC_DIR_Config/settings.txt" > dist/result.txt
      - echo "secret-free" > dist/.env
      - BUILT_FROM="$CODEBUILD_RESOLVED_SOURCE_VERSION by $CODEBUILD_INITIATOR"
artifacts:
  files: ['**/*']
  base-directory: dist
  exclude-paths: ['**/.env']
"""


def test_a_pipeline_build_reads_and_writes_encrypted_artifacts_under_the_project_role(
    app: EmulatorApp, unique: Callable[[str], str]
) -> None:
    client = admin_client(app)
    name, bucket = unique("pipebuild"), unique("artifacts")
    key = client("kms").create_key()["KeyMetadata"]["Arn"]
    s3 = client("s3")
    s3.create_bucket(Bucket=bucket)
    for artifact, files in (("Source", {"app.txt": "app\n"}), ("Config", {"settings.txt": "settings\n"})):
        s3.put_object(Bucket=bucket, Key=f"p/{artifact}/in.zip", Body=zipped(files),
                      ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    make_project(client, name, PIPELINE_SPEC, [
        {"Effect": "Allow", "Action": "s3:GetObject",
         "Resource": [f"arn:aws:s3:::{bucket}/p/Source/*", f"arn:aws:s3:::{bucket}/p/Config/*"]},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/p/BuildOutput/*"},
        {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": key},
    ], source_type="CODEPIPELINE", artifacts_type="CODEPIPELINE")
    app.enforcer.reset()

    build_id = app.builds.start(
        region=REGION,
        project_name=name,
        initiator="codepipeline/my-pipeline",
        inputs=[ArtifactLocation("Source", bucket, "p/Source/in.zip"), ArtifactLocation("Config", bucket, "p/Config/in.zip")],
        outputs=[ArtifactLocation("BuildOutput", bucket, "p/BuildOutput/out.zip")],
        encryption_key_arn=key,
        source_version="0123abcd",
    )
    build = app.builds.wait(build_id, DEADLINE_S)

    assert build["buildStatus"] == "SUCCEEDED", (phases(build), output(client, build))
    assert build["id"] == build_id and build_id.startswith(f"{name}:")
    assert build["initiator"] == "codepipeline/my-pipeline"
    assert build["exportedEnvironmentVariables"] == [{"name": "BUILT_FROM", "value": "0123abcd by codepipeline/my-pipeline"}]
    # The same build through the public API.
    public = client("codebuild").batch_get_builds(ids=[build_id])["builds"][0]
    assert public["arn"] == f"arn:aws:codebuild:{REGION}:{ACCOUNT}:build/{build_id}"
    assert public["artifacts"]["location"] == f"arn:aws:s3:::{bucket}/p/BuildOutput/out.zip"
    # Written encrypted under the pipeline's key, holding exactly what the buildspec chose.
    stored = s3.get_object(Bucket=bucket, Key="p/BuildOutput/out.zip")
    assert (stored["ServerSideEncryption"], stored["SSEKMSKeyId"]) == ("aws:kms", key)
    with zipfile.ZipFile(io.BytesIO(stored["Body"].read())) as archive:
        assert archive.namelist() == ["result.txt"]
        assert archive.read("result.txt") == b"app\nsettings\n"
    # Every read and write went through enforcement as the build's session.
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/AWSCodeBuild-{build_id.split(':', 1)[1]}"
    decided = {(d["action"], d["resource"]) for d in app.enforcer.decisions() if d["principal"] == session and d["allowed"]}
    assert ("s3:GetObject", f"arn:aws:s3:::{bucket}/p/Config/in.zip") in decided
    assert ("s3:PutObject", f"arn:aws:s3:::{bucket}/p/BuildOutput/out.zip") in decided
    assert ("kms:GenerateDataKey", key) in decided
    assert [d for d in app.enforcer.decisions() if not d["allowed"]] == []


def test_an_output_the_role_may_not_write_fails_upload_artifacts(app: EmulatorApp, unique: Callable[[str], str]) -> None:
    client = admin_client(app)
    name, bucket = unique("pipedeny"), unique("artifacts")
    client("s3").create_bucket(Bucket=bucket)
    client("s3").put_object(Bucket=bucket, Key="in.zip", Body=zipped({"app.txt": "app\n"}))
    make_project(client, name, "version: 0.2\nphases:\n  build:\n    commands: [mkdir -p dist, cp app.txt dist/]\n"
                 "artifacts:\n  files: ['**/*']\n  base-directory: dist\n",
                 [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/in.zip"}],
                 source_type="CODEPIPELINE", artifacts_type="CODEPIPELINE")
    build = app.builds.wait(app.builds.start(
        region=REGION, project_name=name, initiator="codepipeline/p",
        inputs=[ArtifactLocation("Source", bucket, "in.zip")],
        outputs=[ArtifactLocation("Out", bucket, "production/out.zip")],
    ), DEADLINE_S)
    assert build["buildStatus"] == "FAILED"
    assert phases(build)["BUILD"] == "SUCCEEDED" and phases(build)["UPLOAD_ARTIFACTS"] == "FAILED"
    assert context(build, "UPLOAD_ARTIFACTS")["statusCode"] == "CLIENT_ERROR"
    assert "is not authorized to perform: s3:PutObject" in context(build, "UPLOAD_ARTIFACTS")["message"]
    with pytest.raises(ClientError):
        client("s3").head_object(Bucket=bucket, Key="production/out.zip")


def test_the_project_timeout_ends_a_build_timed_out(app: EmulatorApp, unique: Callable[[str], str]) -> None:
    client = admin_client(app)
    name = unique("timeout")
    make_project(client, name, "version: 0.2\nphases:\n  build:\n    commands: ['sleep 120']\n"
                 "  post_build:\n    commands: ['echo after']\n", timeoutInMinutes=5)
    clock = Clock()
    app.builds.clock = clock
    try:
        build_id = app.builds.start(region=REGION, project_name=name, initiator="me", inputs=[], outputs=[])
        reaches_phase(lambda: app.builds.get(build_id), "BUILD")
        clock.offset = 5 * 60  # the project's five minutes pass
        build = app.builds.wait(build_id, DEADLINE_S)
    finally:
        app.builds.clock = time.monotonic
    assert build["buildStatus"] == "TIMED_OUT"
    assert phases(build)["BUILD"] == "TIMED_OUT" and "POST_BUILD" not in phases(build)
    assert context(build, "BUILD") == {"statusCode": "BUILD_TIMED_OUT", "message": "Build has timed out. "}
    assert build["timeoutInMinutes"] == 5 and build["buildComplete"] is True


def test_a_role_codebuild_may_not_assume_refuses_the_start(app: EmulatorApp, unique: Callable[[str], str]) -> None:
    client = admin_client(app)
    name = unique("untrusted")
    role = make_project(client, name, "version: 0.2\n")
    client("iam").update_assume_role_policy(RoleName=name, PolicyDocument=trust(project_arn("another-project")))
    with pytest.raises(Exception) as refused:
        app.builds.start(region=REGION, project_name=name, initiator="me", inputs=[], outputs=[])
    assert getattr(refused.value, "code", None) == "InvalidInputException"
    assert str(refused.value) == f"CodeBuild is not authorized to perform: sts:AssumeRole on {role}"
