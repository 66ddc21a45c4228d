"""CodeBuild builds that run: buildspecs executed under the project's role,
through StartBuild/BatchGetBuilds/StopBuild and through the in-process
interface a pipeline run uses (`app.builds.start/get/wait`)."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.serving import make_server

from conftest import ACCOUNT, REGION, Emulator, start_emulator
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


# ------------------------------------------------- through the public API --


def start(emulator: Emulator, name: str, **params: Any) -> dict[str, Any]:
    return finished(emulator.client("codebuild"), emulator.client("codebuild").start_build(projectName=name, **params)["build"]["id"])


CLEAN_RUN = """\
version: 0.2
env:
  variables: {FROM_SPEC: spec, OVERRIDDEN: spec}
phases:
  install:
    commands:
      - echo "install cwd=$PWD entries=$(ls -A | wc -l) home=$(ls -A "$HOME" | wc -l)"
      - touch leftover "$HOME/leftover"
      - MEMORY=kept
  pre_build:
    commands:
      - echo "pre_build memory=$MEMORY src=$CODEBUILD_SRC_DIR"
      - cd "$HOME"
  build:
    commands:
      - echo "build cwd=$PWD spec=$FROM_SPEC overridden=$OVERRIDDEN"
      - echo "id=$CODEBUILD_BUILD_ID arn=$CODEBUILD_BUILD_ARN number=$CODEBUILD_BUILD_NUMBER"
      - echo "initiator=$CODEBUILD_INITIATOR version=$CODEBUILD_RESOLVED_SOURCE_VERSION region=$AWS_REGION/$AWS_DEFAULT_REGION"
      - echo "succeeding=$CODEBUILD_BUILD_SUCCEEDING start=$CODEBUILD_START_TIME endpoint=$AWS_ENDPOINT_URL"
      - echo "secret-key=${AWS_SECRET_ACCESS_KEY:-none} access-key=${AWS_ACCESS_KEY_ID:-none}"
  post_build:
    commands:
      - echo post_build
"""


def test_phases_run_in_order_in_a_clean_directory_with_codebuilds_variables(
    emulator: Emulator, unique: Callable[[str], str]
) -> None:
    name = unique("clean")
    group = f"/builds/{name}"
    make_project(
        emulator.client, name, CLEAN_RUN,
        variables=[{"name": "OVERRIDDEN", "value": "project", "type": "PLAINTEXT"}],
        logsConfig={"cloudWatchLogs": {"status": "ENABLED", "groupName": group, "streamName": "runs"}},
    )
    emulator.client("iam").put_role_policy(RoleName=name, PolicyName="build", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": log_grants(name, group)}
    ))
    first = start(emulator, name, sourceVersion="v1")
    second = start(emulator, name, environmentVariablesOverride=[{"name": "OVERRIDDEN", "value": "start"}])

    for build in (first, second):
        assert build["buildStatus"] == "SUCCEEDED"
        assert [p["phaseType"] for p in build["phases"]] == [
            "SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE", "INSTALL", "PRE_BUILD", "BUILD",
            "POST_BUILD", "UPLOAD_ARTIFACTS", "FINALIZING", "COMPLETED",
        ]
        assert build["logs"]["groupName"] == group
        assert build["logs"]["streamName"] == f"runs/{build['id'].split(':', 1)[1]}"
    lines = output(emulator.client, first)
    src = lines[1].split("src=", 1)[1]
    assert lines[0] == f"install cwd={src} entries=0 home=0"
    assert lines[1] == f"pre_build memory=kept src={src}"
    home = lines[2].split("cwd=", 1)[1].split(" ", 1)[0]
    assert lines[2] == f"build cwd={home} spec=spec overridden=project"
    assert lines[3] == f"id={first['id']} arn={first['arn']} number={first['buildNumber']}"
    assert lines[4] == f"initiator=root version=v1 region={REGION}/{REGION}"
    assert lines[5] == f"succeeding=1 start={int(first['startTime'].timestamp() * 1000)} endpoint={emulator.endpoint}"
    assert lines[6] == "secret-key=none access-key=none"  # no keys: the role comes from the container endpoint
    assert lines[7] == "post_build"
    # The second build starts clean again, and the start's variables win.
    again = output(emulator.client, second)
    assert again[0].endswith("entries=0 home=0") and again[1].split("src=")[1] != src
    assert again[2].endswith("overridden=start")
    assert second["buildNumber"] == first["buildNumber"] + 1
    codebuild = emulator.client("codebuild")
    assert codebuild.list_builds_for_project(projectName=name)["ids"] == [second["id"], first["id"]]
    assert codebuild.list_builds_for_project(projectName=name, sortOrder="ASCENDING")["ids"] == [first["id"], second["id"]]


def test_on_failure_and_finally_decide_what_runs_next(emulator: Emulator, unique: Callable[[str], str]) -> None:
    specs = {
        "default": """version: 0.2
phases:
  install: {commands: [echo install]}
  build:
    commands: [echo one, 'false', echo skipped]
    finally: [echo finally]
  post_build:
    commands: ['echo "post succeeding=$CODEBUILD_BUILD_SUCCEEDING"']
""",
        "continue": """version: 0.2
phases:
  install:
    on-failure: CONTINUE
    commands: ['exit 3']
  pre_build: {commands: ['echo "pre succeeding=$CODEBUILD_BUILD_SUCCEEDING"']}
  build: {commands: [echo build]}
""",
        "abort": """version: 0.2
phases:
  build:
    on-failure: ABORT
    commands: ['false']
    finally: [echo cleanup]
  post_build: {commands: [echo never]}
""",
        "install": """version: 0.2
phases:
  install: {commands: ['false']}
  build: {commands: [echo never]}
""",
    }
    builds = {}
    for case, spec in specs.items():
        name = unique(f"onfail-{case}")
        make_project(emulator.client, name, spec)
        builds[case] = start(emulator, name)
    assert all(build["buildStatus"] == "FAILED" for build in builds.values())

    default = builds["default"]
    assert {k: phases(default)[k] for k in ("INSTALL", "BUILD", "POST_BUILD", "UPLOAD_ARTIFACTS")} == {
        "INSTALL": "SUCCEEDED", "BUILD": "FAILED", "POST_BUILD": "SUCCEEDED", "UPLOAD_ARTIFACTS": "SUCCEEDED"}
    assert context(default, "BUILD") == {
        "statusCode": "COMMAND_EXECUTION_ERROR", "message": "Error while executing command: false. Reason: exit status 1"}
    assert output(emulator.client, default) == ["install", "one", "finally", "post succeeding=0"]
    assert "[Container]" in log_lines(emulator.client, default)[-3] and any(
        line.endswith("Command did not exit successfully false exit status 1") for line in log_lines(emulator.client, default))

    cont = builds["continue"]
    assert (phases(cont)["INSTALL"], phases(cont)["PRE_BUILD"], phases(cont)["BUILD"]) == ("FAILED", "SUCCEEDED", "SUCCEEDED")
    assert output(emulator.client, cont) == ["pre succeeding=0", "build"]

    abort = builds["abort"]
    assert phases(abort)["BUILD"] == "FAILED" and "POST_BUILD" not in phases(abort)
    assert "UPLOAD_ARTIFACTS" not in phases(abort)
    assert output(emulator.client, abort) == ["cleanup"]

    install = builds["install"]
    assert list(phases(install))[-4:] == ["DOWNLOAD_SOURCE", "INSTALL", "FINALIZING", "COMPLETED"]


@pytest.mark.parametrize("spec, message", [
    ("version: 0.2\nphases:\n  pre-build:\n    commands: [ls]\n",
     "unknown phase pre-build in phases; phases are install, pre_build, build, post_build"),
    ("version: 0.2\nphases:\n  build:\n    command: [ls]\n", "unknown key command in phases/build"),
    ("version: 0.2\nphases:\n  build:\n    commands:\n      - echo a: b\n",
     "Expected Commands[0] to be of string type: found subkeys instead"),
    ("version: 0.2\nphases:\n  build:\n    on-failure: RETRY\n    commands: [ls]\n", "invalid on-failure RETRY"),
    ("version: 0.1\nphases:\n  build:\n    commands: [ls]\n", "invalid buildspec version 0.1"),
    ("phases:\n  build:\n    commands: [ls]\n", "missing version in buildspec"),
    ("version: 0.2\nenvironment: {}\n", "unknown key environment; known keys are"),
    ("version: 0.2\nphases: [build\n", "expected ',' or ']'"),
])
def test_a_buildspec_codebuild_refuses_fails_download_source(
    emulator: Emulator, unique: Callable[[str], str], spec: str, message: str
) -> None:
    name = unique("badspec")
    make_project(emulator.client, name, "version: 0.2\n")
    build = start(emulator, name, buildspecOverride=spec)
    assert build["buildStatus"] == "FAILED"
    assert list(phases(build))[-3:] == ["DOWNLOAD_SOURCE", "FINALIZING", "COMPLETED"]
    assert phases(build)["DOWNLOAD_SOURCE"] == "FAILED"
    assert context(build, "DOWNLOAD_SOURCE")["statusCode"] == "YAML_FILE_ERROR"
    assert message in context(build, "DOWNLOAD_SOURCE")["message"]


def test_stop_build_kills_the_running_command(emulator: Emulator, unique: Callable[[str], str]) -> None:
    name = unique("stop")
    make_project(emulator.client, name, "version: 0.2\nphases:\n  build:\n    commands: ['sleep 300']\n"
                 "  post_build:\n    commands: [echo never]\n")
    codebuild = emulator.client("codebuild")
    build_id = codebuild.start_build(projectName=name)["build"]["id"]
    reaches_phase(lambda: codebuild.batch_get_builds(ids=[build_id])["builds"][0], "BUILD")
    began = time.monotonic()
    assert codebuild.stop_build(id=build_id)["build"]["id"] == build_id
    build = finished(codebuild, build_id)
    assert time.monotonic() - began < 30
    assert build["buildStatus"] == "STOPPED" and phases(build)["BUILD"] == "STOPPED"
    assert "POST_BUILD" not in phases(build)


def test_container_credentials_serve_the_project_role_to_its_build_only(
    emulator: Emulator, unique: Callable[[str], str]
) -> None:
    name, deployer = unique("creds"), unique("deployer")
    role = make_project(emulator.client, name, "")
    emulator.client("iam").create_role(RoleName=deployer, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": role}, "Action": "sts:AssumeRole"}],
    }))
    whoami = "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])"
    # What the provider's deploy buildspec does: a profile that assumes the
    # stage's role from the container's credentials.
    spec = f"""version: 0.2
phases:
  build:
    commands:
      - echo "$AWS_CONTAINER_CREDENTIALS_FULL_URI"
      - '"$PYTHON" -c "$WHOAMI"'
      - mkdir -p "$HOME/.aws"
      - printf '%s\\n' '[profile deploy]' 'role_arn = arn:aws:iam::{ACCOUNT}:role/{deployer}' 'credential_source = EcsContainer' 'role_session_name = securepipeline-dev' > "$HOME/.aws/config"
      - export AWS_PROFILE=deploy
      - '"$PYTHON" -c "$WHOAMI"'
"""
    build = start(emulator, name, buildspecOverride=spec,
                  environmentVariablesOverride=[{"name": "PYTHON", "value": sys.executable},
                                                {"name": "WHOAMI", "value": whoami}])
    assert build["buildStatus"] == "SUCCEEDED", log_lines(emulator.client, build)
    url, own, assumed = output(emulator.client, build)
    assert own == f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/AWSCodeBuild-{build['id'].split(':', 1)[1]}"
    assert assumed == f"arn:aws:sts::{ACCOUNT}:assumed-role/{deployer}/securepipeline-dev"
    assert url.startswith(f"{emulator.endpoint}/_emulator/container-credentials/")
    # The build is over: its token serves nothing any more, nor does any other.
    assert requests.get(url).status_code == 404
    assert requests.get(f"{emulator.endpoint}/_emulator/container-credentials/guessed").status_code == 404


def test_the_image_environment_reaches_later_builds(emulator: Emulator, unique: Callable[[str], str]) -> None:
    name, variable = unique("image"), unique("IMAGE_VAR").replace("-", "_").upper()
    make_project(emulator.client, name, f"version: 0.2\nphases:\n  build:\n    commands: ['echo ${variable}']\n")
    answer = requests.post(f"{emulator.endpoint}/_emulator/builds/environment", json={"variables": {variable: "from-image"}})
    assert answer.status_code == 200 and answer.json()["variables"][variable] == "from-image"
    assert output(emulator.client, start(emulator, name)) == ["from-image"]
    refused = requests.post(f"{emulator.endpoint}/_emulator/builds/environment", json={"variables": ["x"]})
    assert refused.status_code == 400


def test_what_the_emulator_does_not_build_is_refused(emulator: Emulator, unique: Callable[[str], str]) -> None:
    name = unique("pipeproj")
    make_project(emulator.client, name, "version: 0.2\nphases:\n  build:\n    commands: [echo direct]\n",
                 source_type="CODEPIPELINE", artifacts_type="CODEPIPELINE")
    codebuild = emulator.client("codebuild")
    for params in ({}, {"sourceTypeOverride": "NO_SOURCE"}, {"idempotencyToken": "t"}):
        with pytest.raises(ClientError) as refused:
            codebuild.start_build(projectName=name, **params)
        assert refused.value.response["Error"]["Code"] == "InvalidInputException"
    # As on AWS, a pipeline's project runs directly without its source and artifacts.
    build = start(emulator, name, sourceTypeOverride="NO_SOURCE", artifactsOverride={"type": "NO_ARTIFACTS"})
    assert build["buildStatus"] == "SUCCEEDED" and output(emulator.client, build) == ["direct"]
    with pytest.raises(ClientError) as missing:
        codebuild.start_build(projectName=unique("nothing"))
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    found = codebuild.batch_get_builds(ids=[build["id"], f"{name}:no-such-build"])
    assert [b["id"] for b in found["builds"]] == [build["id"]] and found["buildsNotFound"] == [f"{name}:no-such-build"]


def test_commands_still_running_when_the_emulator_exits_are_killed(
    fresh_emulator: Emulator, unique: Callable[[str], str]
) -> None:
    name = unique("orphan")
    make_project(fresh_emulator.client, name, "version: 0.2\nphases:\n  build:\n    commands: ['sleep 300 & echo $!; wait']\n")
    codebuild = fresh_emulator.client("codebuild")
    build_id = codebuild.start_build(projectName=name)["build"]["id"]
    build = reaches_phase(lambda: codebuild.batch_get_builds(ids=[build_id])["builds"][0], "BUILD")
    end = time.monotonic() + DEADLINE_S
    while not (printed := output(fresh_emulator.client, build)) and time.monotonic() < end:
        time.sleep(0.05)
    pid = int(printed[0])
    assert fresh_emulator.stop() == 0
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end and alive(pid):
        time.sleep(0.05)
    assert not alive(pid)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie has exited: only its parent has not reaped it
        return stat.read().split(") ", 1)[1][0] != "Z"


# ------------------------------------------------------ with IAM enforced --


@pytest.fixture(scope="module")
def enforcing() -> Iterator[Emulator]:
    instance = start_emulator("--enforce-iam")
    yield instance
    instance.stop()
    instance.log_path.unlink()


def decisions(emulator: Emulator) -> list[dict[str, Any]]:
    return requests.get(f"{emulator.endpoint}/_emulator/decisions").json()


SECRET_SPEC = """\
version: 0.2
env:
  parameter-store:
    PARAM: /builds/{name}/param
phases:
  build:
    commands:
      - echo "token=$TOKEN param=$PARAM"
      - test "$TOKEN" = "{token}" && test "$PARAM" = "{param}"
"""


def test_secrets_and_parameters_are_resolved_with_the_project_role_and_masked(
    enforcing: Emulator, unique: Callable[[str], str]
) -> None:
    name = unique("secrets")
    token, param = unique("tok"), unique("par")
    secret = enforcing.client("secretsmanager").create_secret(
        Name=f"builds/{name}", SecretString=json.dumps({"token": token})
    )["ARN"]
    enforcing.client("ssm").put_parameter(Name=f"/builds/{name}/param", Value=param, Type="SecureString")
    make_project(enforcing.client, name, SECRET_SPEC.format(name=name, token=token, param=param), [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret},
        {"Effect": "Allow", "Action": "ssm:GetParameters",
         "Resource": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/builds/{name}/param"},
    ], variables=[{"name": "TOKEN", "value": f"{secret}:token", "type": "SECRETS_MANAGER"}])

    build = start(enforcing, name)

    assert build["buildStatus"] == "SUCCEEDED", phases(build)
    lines = log_lines(enforcing.client, build)
    assert "token=*** param=***" in lines
    assert not [line for line in lines if token in line or param in line]
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/AWSCodeBuild-{build['id'].split(':', 1)[1]}"
    made = {(d["action"], d["allowed"]) for d in decisions(enforcing) if d["principal"] == session}
    assert {("secretsmanager:GetSecretValue", True), ("ssm:GetParameters", True)} <= made


def test_a_role_not_granted_the_secret_fails_the_build(enforcing: Emulator, unique: Callable[[str], str]) -> None:
    name = unique("nosecret")
    secret = enforcing.client("secretsmanager").create_secret(Name=f"builds/{name}", SecretString="s3cr3t")["ARN"]
    make_project(enforcing.client, name, "version: 0.2\nphases:\n  build:\n    commands: [echo never]\n",
                 variables=[{"name": "TOKEN", "value": secret, "type": "SECRETS_MANAGER"}])

    build = start(enforcing, name)

    assert build["buildStatus"] == "FAILED"
    assert phases(build)["DOWNLOAD_SOURCE"] == "FAILED" and "BUILD" not in phases(build)
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/AWSCodeBuild-{build['id'].split(':', 1)[1]}"
    assert context(build, "DOWNLOAD_SOURCE") == {
        "statusCode": "Secrets Manager Error",
        "message": f"AccessDeniedException: User: {session} is not authorized to perform: "
        f"secretsmanager:GetSecretValue on resource: {secret} because no identity-based policy allows "
        "the secretsmanager:GetSecretValue action",
    }
    (denied,) = [d for d in decisions(enforcing) if d["principal"] == session and not d["allowed"]]
    assert (denied["action"], denied["resource"], denied["reason"]) == (
        "secretsmanager:GetSecretValue", secret, "no-identity-allow")


def test_a_role_that_may_not_log_fails_provisioning(enforcing: Emulator, unique: Callable[[str], str]) -> None:
    name = unique("nolog")
    make_project(enforcing.client, name, "version: 0.2\nphases:\n  build:\n    commands: [echo never]\n")
    enforcing.client("iam").delete_role_policy(RoleName=name, PolicyName="build")
    build = start(enforcing, name)
    assert build["buildStatus"] == "FAILED" and phases(build)["PROVISIONING"] == "FAILED"
    found = context(build, "PROVISIONING")
    assert found["statusCode"] == "ACCESS_DENIED"
    assert found["message"].startswith(f"Service role arn:aws:iam::{ACCOUNT}:role/{name} does not allow AWS CodeBuild "
                                       "to create Amazon CloudWatch Logs log streams for build")
    assert "is not authorized to perform: logs:CreateLogStream" in found["message"]


# ------------------------------------------------------------ pure helpers --


def test_artifact_patterns_select_as_codebuild_does(tmp_path: Any) -> None:
    from securepipeline_emulator.builds.artifacts import ArtifactError, package
    from securepipeline_emulator.builds.buildspec import ArtifactSpec

    for path in ("infra/stack-outputs.json", "infra/.env", "dist/app.js", "dist/lib/x.js", "README.md", ".git/config"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(path)

    def names(spec: ArtifactSpec) -> list[str]:
        return zipfile.ZipFile(io.BytesIO(package(spec, tmp_path))).namelist()

    everything = ArtifactSpec(files=["**/*"], exclude_paths=["**/.env", "**/.git/**/*"])
    assert names(everything) == ["README.md", "dist/app.js", "dist/lib/x.js", "infra/stack-outputs.json"]
    assert names(ArtifactSpec(files=["stack-outputs.json"], base_directory="infra")) == ["stack-outputs.json"]
    assert names(ArtifactSpec(files=["dist/*"])) == ["dist/app.js"]
    assert names(ArtifactSpec(files=["dist/"], discard_paths=True)) == ["app.js", "x.js"]
    with pytest.raises(ArtifactError, match="no matching artifact paths found"):
        package(ArtifactSpec(files=["*.zip"]), tmp_path)


def test_secret_references_split_as_codebuild_reads_them() -> None:
    from securepipeline_emulator.builds.environment import split_reference

    arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:app/token-AbCdEf"
    assert split_reference(arn) == (arn, "", "", "")
    assert split_reference(f"{arn}:token") == (arn, "token", "", "")
    assert split_reference(f"{arn}::AWSPREVIOUS") == (arn, "", "AWSPREVIOUS", "")
    assert split_reference("app/token:password::v1") == ("app/token", "password", "", "v1")
