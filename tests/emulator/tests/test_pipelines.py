"""Pipeline runs through the running emulator, with IAM enforcement on.

Each test builds what the provider builds for a pipeline, directly with
boto3: an artifact bucket with its TLS-only, right-key-only policy and a KMS
key, an AVAILABLE connection to a local git repository, the pipeline role
with the provider's grants and trust, a V2 pipeline with a push trigger,
topics, rules and the schedule's role. Then it runs the pipeline: pushes
through the admin endpoint, StartPipelineExecution, approvals, schedules.
Every wait polls with a deadline.
"""

from __future__ import annotations

import io
import json
import subprocess
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from werkzeug.serving import make_server

from conftest import ACCOUNT, REGION, Emulator, start_emulator
from securepipeline_emulator.app import EmulatorApp

DEADLINE_S = 30
PIPELINES = "codepipeline.amazonaws.com"
BUILDS = "codebuild.amazonaws.com"
EVENTS = "events.amazonaws.com"


@pytest.fixture(scope="module")
def enforcing() -> Iterator[Emulator]:
    instance = start_emulator("--enforce-iam")
    yield instance
    instance.stop()
    instance.log_path.unlink()


def poll(what: str, probe: Callable[[], Any], deadline_s: float = DEADLINE_S) -> Any:
    """`probe()`'s value once it is truthy; fails naming `what` at the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"timed out after {deadline_s}s waiting for {what}")
        time.sleep(0.05)


class Local:
    """An emulator app served in this process (for a test that sets its clock)."""

    def __init__(self, app: EmulatorApp, port: int) -> None:
        self.app = app
        self.endpoint = f"http://127.0.0.1:{port}"

    def client(self, service: str, region: str = REGION) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1}),
        )


Target = Emulator | Local


def admin(emulator: Target, method: str, path: str, body: dict[str, Any] | None = None) -> requests.Response:
    return requests.request(method, f"{emulator.endpoint}/_emulator/{path}", json=body, timeout=DEADLINE_S)


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def service_trust(service: str, source_arn: str) -> str:
    return document(
        {
            "Sid": "TrustedService",
            "Effect": "Allow",
            "Principal": {"Service": [service]},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": ACCOUNT},
                "ArnEquals": {"aws:SourceArn": source_arn},
            },
        }
    )


# ----------------------------------------------------------------- repo --


class Repo:
    """A local git repository standing for the connection's repository."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "dev@example.com")
        self.git("config", "user.name", "Dev")

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", "-C", str(self.path), *args], check=True, capture_output=True, text=True)
        return done.stdout.strip()

    def commit(self, files: dict[str, str], message: str) -> str:
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            self.git("add", name)
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")


# ---------------------------------------------------------------- world --


@dataclass
class World:
    """What the provider creates around one pipeline."""

    emulator: Target
    name: str
    repository: str
    repo: Repo
    bucket: str
    key_arn: str
    connection_arn: str
    role_name: str
    approvals_topic: str
    stages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pipeline_arn(self) -> str:
        return f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:{self.name}"

    @property
    def role_arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT}:role/{self.role_name}"

    def client(self, service: str) -> Any:
        return self.emulator.client(service)

    def grants(
        self, omit: tuple[str, ...] = (), repository: str | None = None, projects: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        """The provider's pipeline role policy (plan::pipeline_role_policy)."""
        bucket = f"arn:aws:s3:::{self.bucket}"
        statements = [
            {
                "Sid": "UseSourceConnection",
                "Effect": "Allow",
                "Action": "codestar-connections:UseConnection",
                "Resource": self.connection_arn,
                "Condition": {
                    "StringEquals": {"codestar-connections:FullRepositoryId": repository or self.repository}
                },
            },
            {
                "Sid": "ArtifactsRead",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": f"{bucket}/{self.name[:20]}/*",
            },
            {
                "Sid": "ArtifactsBucket",
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation", "s3:GetBucketVersioning"],
                "Resource": bucket,
            },
            {"Sid": "ArtifactsWrite", "Effect": "Allow", "Action": "s3:PutObject", "Resource": f"{bucket}/{self.name[:20]}/*"},
            {
                "Sid": "UseArtifactKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
                "Resource": self.key_arn,
            },
            {"Sid": "NotifyApprovers", "Effect": "Allow", "Action": "sns:Publish", "Resource": self.approvals_topic},
        ]
        if projects:
            statements.append({
                "Sid": "RunOwnBuilds",
                "Effect": "Allow",
                "Action": ["codebuild:BatchGetBuilds", "codebuild:StartBuild", "codebuild:StopBuild"],
                "Resource": [f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{p}" for p in projects],
            })
        return [s for s in statements if s["Sid"] not in omit]

    def grant(self, statements: list[dict[str, Any]]) -> None:
        self.client("iam").put_role_policy(
            RoleName=self.role_name, PolicyName="pipeline", PolicyDocument=document(*statements)
        )

    def source_stage(self) -> dict[str, Any]:
        return {
            "name": "Source",
            "actions": [
                {
                    "name": "Source",
                    "actionTypeId": {
                        "category": "Source",
                        "owner": "AWS",
                        "provider": "CodeStarSourceConnection",
                        "version": "1",
                    },
                    "configuration": {
                        "ConnectionArn": self.connection_arn,
                        "FullRepositoryId": self.repository,
                        "BranchName": "main",
                        "OutputArtifactFormat": "CODE_ZIP",
                        "DetectChanges": "false",
                    },
                    "outputArtifacts": [{"name": "SourceOutput"}],
                    "inputArtifacts": [],
                    "runOrder": 1,
                    "namespace": "SourceVariables",
                }
            ],
        }

    def approval_stage(self, name: str = "Approve", rollback: bool = False, minutes: int = 60) -> dict[str, Any]:
        stage: dict[str, Any] = {
            "name": name,
            "actions": [
                {
                    "name": "Approve",
                    "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
                    "configuration": {"NotificationArn": self.approvals_topic, "CustomData": f"Deploy {self.name}?"},
                    "inputArtifacts": [],
                    "outputArtifacts": [],
                    "runOrder": 1,
                    "timeoutInMinutes": minutes,
                }
            ],
        }
        if rollback:
            stage["onFailure"] = {"result": "ROLLBACK"}
        return stage

    def build_project(self, purpose: str, spec: str, reads: str, writes: str | None = None) -> str:
        """A CodeBuild project as the provider makes one: its own role,
        trusted by CodeBuild for this project only, writing its own log
        group, reading one artifact and writing another (no other), using
        the artifact key. The project's name."""
        project = f"{self.name}-{purpose}"
        arn = f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{project}"
        group = f"/securepipeline/{project}"
        log_group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}"
        bucket = f"arn:aws:s3:::{self.bucket}"
        statements = [
            {"Sid": "WriteOwnLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": [log_group, f"{log_group}:log-stream:*"]},
            {"Sid": "ArtifactsRead", "Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
             "Resource": f"{bucket}/{self.name[:20]}/{reads[:20]}/*"},
            {"Sid": "UseArtifactKey", "Effect": "Allow",
             "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
             "Resource": self.key_arn},
        ]
        if writes:
            statements.append({"Sid": "ArtifactsWrite", "Effect": "Allow", "Action": "s3:PutObject",
                               "Resource": f"{bucket}/{self.name[:20]}/{writes[:20]}/*"})
        iam = self.client("iam")
        role = iam.create_role(RoleName=project, AssumeRolePolicyDocument=service_trust(BUILDS, arn))["Role"]["Arn"]
        iam.put_role_policy(RoleName=project, PolicyName="build", PolicyDocument=document(*statements))
        self.client("logs").create_log_group(logGroupName=group)
        self.client("codebuild").create_project(
            name=project,
            source={"type": "CODEPIPELINE", "buildspec": spec},
            artifacts={"type": "CODEPIPELINE"},
            environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
                         "computeType": "BUILD_GENERAL1_SMALL"},
            serviceRole=role,
            encryptionKey=self.key_arn,
            timeoutInMinutes=5,
            logsConfig={"cloudWatchLogs": {"status": "ENABLED", "groupName": group}},
        )
        return project

    def build_stage(self, stage: str, project: str, reads: str, writes: str | None = None) -> dict[str, Any]:
        return {
            "name": stage,
            "actions": [
                {
                    "name": stage,
                    "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
                    "configuration": {"ProjectName": project},
                    "inputArtifacts": [{"name": reads}],
                    "outputArtifacts": [{"name": writes}] if writes else [],
                    "runOrder": 1,
                    "namespace": f"{stage}Variables",
                }
            ],
        }

    def create_pipeline(
        self,
        stages: list[dict[str, Any]],
        mode: str = "QUEUED",
        push: dict[str, Any] | None = None,
        more_pushes: list[dict[str, Any]] | None = None,
        variables: list[dict[str, str]] | None = None,
    ) -> None:
        self.stages = stages
        declaration = {
            "name": self.name,
            "roleArn": self.role_arn,
            "pipelineType": "V2",
            "executionMode": mode,
            "artifactStore": {
                "type": "S3",
                "location": self.bucket,
                "encryptionKey": {"id": self.key_arn, "type": "KMS"},
            },
            "stages": stages,
            "triggers": [
                {
                    "providerType": "CodeStarSourceConnection",
                    "gitConfiguration": {
                        "sourceActionName": "Source",
                        "push": [push or {"branches": {"includes": ["main"]}}, *(more_pushes or [])],
                    },
                }
            ],
        }
        if variables:
            declaration["variables"] = variables
        self.client("codepipeline").create_pipeline(pipeline=declaration)

    # --------------------------------------------------------- running --

    def start(self) -> str:
        return self.client("codepipeline").start_pipeline_execution(name=self.name)["pipelineExecutionId"]

    def execution(self, execution_id: str) -> dict[str, Any]:
        return self.client("codepipeline").get_pipeline_execution(
            pipelineName=self.name, pipelineExecutionId=execution_id
        )["pipelineExecution"]

    def wait_status(self, execution_id: str, status: str) -> dict[str, Any]:
        return poll(
            f"execution {execution_id} to be {status}",
            lambda: (e := self.execution(execution_id))["status"] == status and e,
        )

    def actions(self, execution_id: str) -> list[dict[str, Any]]:
        return self.client("codepipeline").list_action_executions(
            pipelineName=self.name, filter={"pipelineExecutionId": execution_id}
        )["actionExecutionDetails"]

    def action(self, execution_id: str, stage: str, action: str, status: str) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next(
                (
                    a
                    for a in self.actions(execution_id)
                    if a["stageName"] == stage and a["actionName"] == action and a["status"] == status
                ),
                None,
            )

        return poll(f"{stage}.{action} of {execution_id} to be {status}", found)

    def stage_state(self, stage: str) -> dict[str, Any]:
        state = self.client("codepipeline").get_pipeline_state(name=self.name)
        return next(s for s in state["stageStates"] if s["stageName"] == stage)

    def token(self, execution_id: str, stage: str = "Approve") -> str:
        """The token of the approval waiting in `execution_id`."""

        def waiting() -> str | None:
            state = self.stage_state(stage)
            latest = state["actionStates"][0].get("latestExecution", {})
            if state.get("latestExecution", {}).get("pipelineExecutionId") != execution_id:
                return None
            return latest.get("token") if latest.get("status") == "InProgress" else None

        return poll(f"the approval of {execution_id}", waiting)

    def decide(self, execution_id: str, status: str = "Approved", stage: str = "Approve", client: Any = None) -> None:
        (client or self.client("codepipeline")).put_approval_result(
            pipelineName=self.name,
            stageName=stage,
            actionName="Approve",
            result={"summary": f"{status} by the test", "status": status},
            token=self.token(execution_id, stage),
        )


def make_world(emulator: Target, unique: Callable[[str], str], tmp_path: Path) -> World:
    name = unique("pipe")
    kms, s3, iam, sns = (emulator.client(s) for s in ("kms", "s3", "iam", "sns"))
    key_arn = kms.create_key(Description=f"artifacts of {name}")["KeyMetadata"]["Arn"]
    bucket = unique("artifacts")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}}]
        },
    )
    everyone = {"AWS": "*"}
    objects = f"arn:aws:s3:::{bucket}/*"
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=document(
            {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": everyone, "Action": "s3:*",
             "Resource": [f"arn:aws:s3:::{bucket}", objects], "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            {"Sid": "DenyUnencryptedObjectUploads", "Effect": "Deny", "Principal": everyone, "Action": "s3:PutObject",
             "Resource": objects, "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}},
            {"Sid": "DenyUploadsWithoutArtifactKey", "Effect": "Deny", "Principal": everyone, "Action": "s3:PutObject",
             "Resource": objects, "Condition": {"Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "true"}}},
            {"Sid": "DenyUploadsWithOtherKeys", "Effect": "Deny", "Principal": everyone, "Action": "s3:PutObject",
             "Resource": objects,
             "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn}}},
        ),
    )
    repository = f"my-org/{name}"
    repo = Repo(tmp_path / name)
    repo.commit({"src/app.py": "print('hello')\n", "docs/index.md": "# app\n"}, "first commit")
    assert admin(emulator, "POST", "repositories", {"fullRepositoryId": repository, "path": str(repo.path)}).ok
    connection_arn = emulator.client("codestar-connections").create_connection(
        ProviderType="GitHub", ConnectionName=name[:32]
    )["ConnectionArn"]
    assert admin(emulator, "POST", f"connections/{connection_arn}/status", {"status": "AVAILABLE"}).ok
    approvals_topic = sns.create_topic(Name=f"{name}-approvals")["TopicArn"]
    world = World(emulator, name, repository, repo, bucket, key_arn, connection_arn, f"{name}-role", approvals_topic)
    iam.create_role(RoleName=world.role_name, AssumeRolePolicyDocument=service_trust(PIPELINES, world.pipeline_arn))
    world.grant(world.grants())
    return world


@pytest.fixture
def world(enforcing: Emulator, unique: Callable[[str], str], tmp_path: Path) -> World:
    return make_world(enforcing, unique, tmp_path)


def zip_files(body: bytes) -> set[str]:
    return {n for n in zipfile.ZipFile(io.BytesIO(body)).namelist() if not n.endswith("/")}


def session_of(world: World, execution_id: str) -> str:
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/{world.role_name}/{execution_id}"


# ---------------------------------------------------------------- tests --


def test_a_push_through_a_pending_connection_starts_nothing(world: World) -> None:
    world.create_pipeline([world.source_stage(), world.approval_stage()])
    path = f"connections/{world.connection_arn}/status"
    assert admin(world.emulator, "POST", path, {"status": "PENDING"}).ok
    answer = admin(world.emulator, "POST", "repositories/push", {"fullRepositoryId": world.repository, "branch": "main"})
    assert answer.ok, answer.text
    assert answer.json()["started"] == []
    assert answer.json()["skipped"] == [
        {"pipeline": world.name, "reason": "its connection is PENDING, not AVAILABLE"}
    ]


def test_a_push_starts_the_pipeline_only_when_its_filters_match(world: World) -> None:
    world.create_pipeline(
        [world.source_stage(), world.approval_stage()],
        mode="PARALLEL",
        push={"branches": {"includes": ["main"]}, "filePaths": {"includes": ["src/**"], "excludes": ["docs/**"]}},
    )

    def push(branch: str = "main") -> dict[str, Any]:
        answer = admin(world.emulator, "POST", "repositories/push", {"fullRepositoryId": world.repository, "branch": branch})
        assert answer.ok, answer.text
        return answer.json()

    # The first push of main: the first commit adds src/app.py.
    first = world.repo.git("rev-parse", "HEAD")
    started = push()["started"]
    assert [s["pipeline"] for s in started] == [world.name]
    execution = world.execution(started[0]["executionId"])
    assert execution["trigger"] == {"triggerType": "WebhookV2", "triggerDetail": world.connection_arn}
    world.action(started[0]["executionId"], "Source", "Source", "Succeeded")
    assert world.execution(started[0]["executionId"])["artifactRevisions"][0]["revisionId"] == first

    # Only excluded paths changed: nothing starts, and the answer says why.
    world.repo.commit({"docs/guide.md": "more docs\n"}, "docs only")
    answer = push()
    assert answer["started"] == []
    assert answer["skipped"][0]["pipeline"] == world.name
    assert "no changed file (docs/guide.md) matches includes src/**" in answer["skipped"][0]["reason"]

    # Pushing again without a new commit starts nothing either.
    assert push()["started"] == []

    # A branch the trigger does not name.
    world.repo.git("checkout", "-q", "-b", "feature")
    world.repo.commit({"src/feature.py": "x = 1\n"}, "feature work")
    answer = push("feature")
    assert answer["started"] == []
    assert "branch feature does not match includes main" in answer["skipped"][0]["reason"]

    # Included and excluded files together: the included one starts it, and
    # the execution reads exactly the pushed commit.
    world.repo.git("checkout", "-q", "main")
    third = world.repo.commit({"src/lib.py": "y = 2\n", "docs/lib.md": "lib\n"}, "library")
    started = push()["started"]
    assert len(started) == 1
    world.action(started[0]["executionId"], "Source", "Source", "Succeeded")
    summaries = world.client("codepipeline").list_pipeline_executions(pipelineName=world.name)[
        "pipelineExecutionSummaries"
    ]
    assert summaries[0]["pipelineExecutionId"] == started[0]["executionId"]
    assert summaries[0]["sourceRevisions"][0]["revisionId"] == third
    assert json.loads(summaries[0]["sourceRevisions"][0]["revisionSummary"])["CommitMessage"] == "library"


def test_release_tags_and_branch_globs_start_the_pipeline_on_the_pushed_commit(world: World) -> None:
    world.create_pipeline(
        [world.source_stage(), world.approval_stage()],
        mode="PARALLEL",
        push={"branches": {"includes": ["main", "release/*"], "excludes": ["release/old-*"]}},
        more_pushes=[{"tags": {"includes": ["v*"], "excludes": ["v*-rc*"]}}],
    )

    def push(**ref: str) -> dict[str, Any]:
        answer = admin(world.emulator, "POST", "repositories/push", {"fullRepositoryId": world.repository, **ref})
        assert answer.ok, answer.text
        return answer.json()

    def source_commit(started: list[dict[str, Any]]) -> str:
        assert [s["pipeline"] for s in started] == [world.name], started
        source = world.action(started[0]["executionId"], "Source", "Source", "Succeeded")
        return source["output"]["outputVariables"]["CommitId"]

    # A release tag on an older commit: the execution builds the tagged commit.
    tagged = world.repo.git("rev-parse", "HEAD")
    world.repo.git("tag", "v1.0.0")
    world.repo.commit({"src/next.py": "z = 3\n"}, "after the release")
    assert source_commit(push(tag="v1.0.0")["started"]) == tagged
    # The same tag at the same commit again carries nothing new.
    assert push(tag="v1.0.0")["started"] == []
    # An excluded tag and a tag no pattern includes start nothing, and say why.
    world.repo.git("tag", "v1.1.0-rc1")
    world.repo.git("tag", "nightly")
    answer = push(tag="v1.1.0-rc1")
    assert answer["started"] == []
    assert "tag v1.1.0-rc1 does not match includes v* and excludes v*-rc*" in answer["skipped"][0]["reason"]
    assert "the filter matches branch pushes only" in answer["skipped"][0]["reason"]
    assert push(tag="nightly")["started"] == []

    # A branch matching a glob starts it on its head; an excluded one does not.
    world.repo.git("checkout", "-q", "-b", "release/2")
    release = world.repo.commit({"src/r2.py": "r = 2\n"}, "release 2")
    assert source_commit(push(branch="release/2")["started"]) == release
    world.repo.git("checkout", "-q", "-b", "release/old-1")
    world.repo.commit({"src/old.py": "o = 1\n"}, "old release")
    answer = push(branch="release/old-1")
    assert answer["started"] == []
    assert "branch release/old-1 does not match" in answer["skipped"][0]["reason"]
    assert "the filter matches tag pushes only" in answer["skipped"][0]["reason"]

    # A push names a branch or a tag, never both.
    both = admin(world.emulator, "POST", "repositories/push",
                 {"fullRepositoryId": world.repository, "branch": "main", "tag": "v1.0.0"})
    assert both.status_code == 400, both.text


def test_started_execution_writes_the_source_encrypted_under_the_pipeline_role(world: World) -> None:
    world.create_pipeline([world.source_stage(), world.approval_stage()])
    requests.post(f"{world.emulator.endpoint}/_emulator/decisions/reset").raise_for_status()
    head = world.repo.git("rev-parse", "HEAD")
    execution_id = world.start()
    assert world.execution(execution_id)["trigger"] == {
        "triggerType": "StartPipelineExecution",
        "triggerDetail": f"arn:aws:iam::{ACCOUNT}:root",
    }

    source = world.action(execution_id, "Source", "Source", "Succeeded")
    assert source["output"]["outputVariables"]["CommitId"] == head
    assert source["output"]["outputVariables"]["BranchName"] == "main"
    location = source["output"]["outputArtifacts"][0]["s3location"]
    assert location["bucket"] == world.bucket
    assert location["key"].startswith(f"{world.name[:20]}/SourceOutput/")
    s3 = world.client("s3")
    stored = s3.get_object(Bucket=location["bucket"], Key=location["key"])
    assert (stored["ServerSideEncryption"], stored["SSEKMSKeyId"]) == ("aws:kms", world.key_arn)
    body = stored["Body"].read()
    assert zip_files(body) == {"src/app.py", "docs/index.md"}
    assert zipfile.ZipFile(io.BytesIO(body)).read("src/app.py") == b"print('hello')\n"

    state = world.stage_state("Source")["actionStates"][0]
    assert state["currentRevision"]["revisionId"] == head
    assert state["latestExecution"]["status"] == "Succeeded"

    # Every step was the pipeline role's session, and allowed.
    session = session_of(world, execution_id)
    decisions = requests.get(f"{world.emulator.endpoint}/_emulator/decisions").json()
    made = {(d["action"], d["allowed"]) for d in decisions if d["principal"] == session}
    assert {
        ("codestar-connections:UseConnection", True),
        ("s3:PutObject", True),
        ("kms:GenerateDataKey", True),
    } <= made
    assert not [d for d in decisions if d["principal"] == session and not d["allowed"]]

    world.decide(execution_id)
    world.wait_status(execution_id, "Succeeded")


@pytest.mark.parametrize(
    ("change", "code", "says"),
    [
        ("no-key-grant", "AccessDenied", "kms:GenerateDataKey"),
        ("no-write-grant", "AccessDenied", "s3:PutObject"),
        ("other-repository", "AccessDenied", "codestar-connections:UseConnection"),
        ("pending-connection", "ConnectionNotAvailable", "PENDING"),
    ],
)
def test_the_source_action_fails_without_what_it_needs(world: World, change: str, code: str, says: str) -> None:
    if change == "no-key-grant":
        world.grant(world.grants(omit=("UseArtifactKey",)))
    elif change == "no-write-grant":
        world.grant(world.grants(omit=("ArtifactsWrite",)))
    elif change == "other-repository":
        world.grant(world.grants(repository="my-org/another-app"))
    else:
        path = f"connections/{world.connection_arn}/status"
        assert admin(world.emulator, "POST", path, {"status": "PENDING"}).ok
    world.create_pipeline([world.source_stage(), world.approval_stage()])
    execution_id = world.start()
    failed = world.wait_status(execution_id, "Failed")
    assert failed["statusSummary"] == "Stage Source failed"
    source = world.action(execution_id, "Source", "Source", "Failed")
    error = source["output"]["executionResult"]["errorDetails"]
    assert error["code"] == code
    assert says in error["message"]
    assert source["output"]["outputArtifacts"] == []
    # The stage after the failed one never ran.
    assert [a["stageName"] for a in world.actions(execution_id)] == ["Source"]


def test_an_approval_waits_for_a_reviewer_allowed_to_decide(world: World) -> None:
    world.create_pipeline([world.source_stage(), world.approval_stage()])
    requests.post(f"{world.emulator.endpoint}/_emulator/published/reset").raise_for_status()
    execution_id = world.start()
    token = world.token(execution_id)

    # The request reached the approvers' topic, sent by the pipeline role.
    published = [m for m in admin(world.emulator, "GET", "published").json() if m["topicArn"] == world.approvals_topic]
    assert len(published) == 1
    assert published[0]["publishedBy"] == session_of(world, execution_id)
    assert published[0]["subject"] == f"APPROVAL NEEDED: AWS CodePipeline {world.name} for action Approve"
    request = json.loads(published[0]["message"])["approval"]
    assert (request["token"], request["stageName"], request["customData"]) == (token, "Approve", f"Deploy {world.name}?")

    codepipeline = world.client("codepipeline")
    with pytest.raises(ClientError) as wrong:
        codepipeline.put_approval_result(
            pipelineName=world.name, stageName="Approve", actionName="Approve",
            result={"summary": "ok", "status": "Approved"}, token="2d5f2b9c-0000-4000-8000-000000000000",
        )
    assert wrong.value.response["Error"]["Code"] == "InvalidApprovalTokenException"

    # A reviewer's role decides only with codepipeline:PutApprovalResult on the action.
    iam, sts = world.client("iam"), world.client("sts")
    reviewer = iam.create_role(
        RoleName=f"{world.name}-reviewer",
        AssumeRolePolicyDocument=document(
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
        ),
    )["Role"]

    def as_reviewer() -> Any:
        keys = sts.assume_role(RoleArn=reviewer["Arn"], RoleSessionName="alice")["Credentials"]
        return boto3.client(
            "codepipeline", endpoint_url=world.emulator.endpoint, region_name=REGION,
            aws_access_key_id=keys["AccessKeyId"], aws_secret_access_key=keys["SecretAccessKey"],
            aws_session_token=keys["SessionToken"], config=Config(retries={"max_attempts": 1}),
        )

    with pytest.raises(ClientError) as denied:
        world.decide(execution_id, client=as_reviewer())
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "codepipeline:PutApprovalResult" in denied.value.response["Error"]["Message"]

    iam.put_role_policy(
        RoleName=reviewer["RoleName"], PolicyName="approve",
        PolicyDocument=document({"Effect": "Allow", "Action": "codepipeline:PutApprovalResult",
                                 "Resource": f"{world.pipeline_arn}/Approve/Approve"}),
    )
    world.decide(execution_id, client=as_reviewer())
    world.wait_status(execution_id, "Succeeded")
    approve = world.action(execution_id, "Approve", "Approve", "Succeeded")
    assert approve["updatedBy"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{reviewer['RoleName']}/alice"
    assert approve["output"]["executionResult"]["externalExecutionSummary"] == "Approved by the test"

    with pytest.raises(ClientError) as again:
        codepipeline.put_approval_result(
            pipelineName=world.name, stageName="Approve", actionName="Approve",
            result={"summary": "twice", "status": "Approved"}, token=token,
        )
    assert again.value.response["Error"]["Code"] == "ApprovalAlreadyCompletedException"

    # A rejection fails the action and the execution.
    rejected = world.start()
    world.decide(rejected, "Rejected")
    assert world.wait_status(rejected, "Failed")["statusSummary"] == "Stage Approve failed"
    action = world.action(rejected, "Approve", "Approve", "Failed")
    assert action["output"]["executionResult"]["errorDetails"]["message"].endswith("Rejected by the test")


def test_superseded_mode_lets_the_newest_waiting_execution_overtake(world: World) -> None:
    world.create_pipeline([world.source_stage(), world.approval_stage()], mode="SUPERSEDED")
    first = world.start()
    world.token(first)
    second = world.start()
    poll("the second to wait for the stage",
         lambda: world.stage_state("Approve").get("inboundExecution", {}).get("pipelineExecutionId") == second)
    third = world.start()
    superseded = world.wait_status(second, "Superseded")
    assert superseded["statusSummary"] == f"Superseded by execution {third}"
    assert world.stage_state("Approve")["inboundExecution"]["pipelineExecutionId"] == third

    world.decide(first)
    world.wait_status(first, "Succeeded")
    world.decide(third)
    world.wait_status(third, "Succeeded")
    # The superseded execution never entered the stage it waited for.
    assert [a["stageName"] for a in world.actions(second)] == ["Source"]


def test_queued_mode_runs_waiting_executions_in_order(world: World) -> None:
    world.create_pipeline([world.source_stage(), world.approval_stage()], mode="QUEUED")
    first = world.start()
    world.token(first)
    second = world.start()
    third = world.start()
    inbound = poll(
        "both to wait for the stage",
        lambda: [e["pipelineExecutionId"] for e in world.stage_state("Approve").get("inboundExecutions", [])]
        == [second, third],
    )
    assert inbound
    assert world.execution(second)["status"] == world.execution(third)["status"] == "InProgress"

    for execution_id in (first, second, third):
        world.decide(execution_id)
        world.wait_status(execution_id, "Succeeded")
    summaries = world.client("codepipeline").list_pipeline_executions(pipelineName=world.name)[
        "pipelineExecutionSummaries"
    ]
    assert [(s["pipelineExecutionId"], s["status"], s["executionMode"]) for s in summaries] == [
        (third, "Succeeded", "QUEUED"),
        (second, "Succeeded", "QUEUED"),
        (first, "Succeeded", "QUEUED"),
    ]


def test_parallel_mode_runs_executions_independently(world: World) -> None:
    world.create_pipeline([world.source_stage(), world.approval_stage()], mode="PARALLEL")
    started = [world.start() for _ in range(3)]

    def all_waiting() -> bool:
        waiting = [
            a for a in world.client("codepipeline").list_action_executions(pipelineName=world.name)["actionExecutionDetails"]
            if a["actionName"] == "Approve" and a["status"] == "InProgress"
        ]
        return sorted(a["pipelineExecutionId"] for a in waiting) == sorted(started)

    poll("all three approvals to wait at once", all_waiting)
    assert "inboundExecution" not in world.stage_state("Approve")

    # Deciding the one GetPipelineState shows finishes it alone.
    shown = world.stage_state("Approve")["latestExecution"]["pipelineExecutionId"]
    world.decide(shown)
    world.wait_status(shown, "Succeeded")
    others = [e for e in started if e != shown]
    assert [world.execution(e)["status"] for e in others] == ["InProgress", "InProgress"]

    codepipeline = world.client("codepipeline")
    for execution_id in others:
        codepipeline.stop_pipeline_execution(
            pipelineName=world.name, pipelineExecutionId=execution_id, abandon=True, reason="not this one"
        )
        stopped = world.wait_status(execution_id, "Stopped")
        assert stopped["statusSummary"] == "not this one"
        world.action(execution_id, "Approve", "Approve", "Abandoned")
    with pytest.raises(ClientError) as again:
        codepipeline.stop_pipeline_execution(pipelineName=world.name, pipelineExecutionId=others[0])
    assert again.value.response["Error"]["Code"] == "PipelineExecutionNotStoppableException"


def test_a_failed_stage_rolls_back_to_the_last_execution_that_passed_it(world: World) -> None:
    world.create_pipeline([world.source_stage(), world.approval_stage("Deploy", rollback=True)], mode="QUEUED")
    # Nothing has passed Deploy yet: a failure there rolls nothing back.
    nothing = world.start()
    world.decide(nothing, "Rejected", stage="Deploy")
    world.wait_status(nothing, "Failed")

    good_commit = world.repo.git("rev-parse", "HEAD")
    good = world.start()
    world.decide(good, stage="Deploy")
    world.wait_status(good, "Succeeded")

    world.repo.commit({"src/app.py": "raise SystemExit(1)\n"}, "broken change")
    bad = world.start()
    world.decide(bad, "Rejected", stage="Deploy")
    world.wait_status(bad, "Failed")

    codepipeline = world.client("codepipeline")

    def rollback() -> dict[str, Any] | None:
        summaries = codepipeline.list_pipeline_executions(pipelineName=world.name)["pipelineExecutionSummaries"]
        return next((s for s in summaries if s["executionType"] == "ROLLBACK"), None)

    summary = poll("the rollback execution", rollback)
    assert summary["trigger"] == {"triggerType": "AutomatedRollback", "triggerDetail": bad}
    assert summary["rollbackMetadata"] == {"rollbackTargetPipelineExecutionId": good}
    rolled = summary["pipelineExecutionId"]
    # It re-runs Deploy only, with what the good execution deployed.
    assert world.execution(rolled)["artifactRevisions"][0]["revisionId"] == good_commit
    world.decide(rolled, stage="Deploy")
    world.wait_status(rolled, "Succeeded")
    assert [a["stageName"] for a in world.actions(rolled)] == ["Deploy"]
    assert world.stage_state("Deploy")["latestExecution"] == {
        "pipelineExecutionId": rolled, "status": "Succeeded", "type": "ROLLBACK"
    }
    kinds = [s["executionType"] for s in codepipeline.list_pipeline_executions(pipelineName=world.name)[
        "pipelineExecutionSummaries"]]
    assert kinds.count("ROLLBACK") == 1


def test_an_alarm_in_alarm_keeps_a_gated_stage_from_starting(world: World) -> None:
    cloudwatch = world.client("cloudwatch")
    alarm = f"{world.name}-errors"
    cloudwatch.put_metric_alarm(
        AlarmName=alarm, MetricName="Errors", Namespace="App", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    gated = world.approval_stage("Deploy")
    gated["beforeEntry"] = {"conditions": [{"result": "FAIL", "rules": [{
        "name": "Alarm1",
        "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "CloudWatchAlarm", "version": "1"},
        "configuration": {"AlarmName": alarm},
    }]}]}
    world.create_pipeline([world.source_stage(), gated], mode="QUEUED")
    # The declaration keeps the condition as given.
    declared = world.client("codepipeline").get_pipeline(name=world.name)["pipeline"]["stages"][1]
    assert declared["beforeEntry"] == gated["beforeEntry"]

    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="errors")
    blocked = world.start()
    world.wait_status(blocked, "Failed")
    # The gated stage failed without running any of its actions.
    assert [a["stageName"] for a in world.actions(blocked)] == ["Source"]
    assert world.stage_state("Deploy")["latestExecution"]["status"] == "Failed"

    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="quiet")
    passed = world.start()
    world.decide(passed, stage="Deploy")
    world.wait_status(passed, "Succeeded")


def notify_rule(world: World, name: str, topic_arn: str, states: list[str]) -> str:
    """The provider's notification rule: this pipeline's execution states."""
    events = world.client("events")
    pattern = {
        "detail": {"pipeline": [world.name], "state": states},
        "detail-type": ["CodePipeline Pipeline Execution State Change"],
        "source": ["aws.codepipeline"],
    }
    arn = events.put_rule(Name=name, EventPattern=json.dumps(pattern, separators=(",", ":")))["RuleArn"]
    events.put_targets(Rule=name, Targets=[{"Id": "notification-topic", "Arn": topic_arn}])
    return arn


def test_one_rule_matches_failed_executions_stages_and_actions_through_or_branches(world: World) -> None:
    world.create_pipeline([world.source_stage(), world.approval_stage()])
    sns = world.client("sns")
    topic = sns.create_topic(Name=f"{world.name}-notify")["TopicArn"]
    branch = lambda kind: {  # noqa: E731
        "detail-type": [f"CodePipeline {kind} Execution State Change"],
        "detail": {"pipeline": [world.name], "state": ["FAILED"]},
    }
    pattern = {"source": ["aws.codepipeline"], "$or": [branch("Pipeline"), branch("Stage"), branch("Action")]}
    events = world.client("events")
    rule = events.put_rule(Name=f"{world.name}-notify", EventPattern=json.dumps(pattern))["RuleArn"]
    events.put_targets(Rule=f"{world.name}-notify", Targets=[{"Id": "notification-topic", "Arn": topic}])
    sns.set_topic_attributes(
        TopicArn=topic, AttributeName="Policy",
        AttributeValue=document(
            {"Sid": "AllowPipelineEvents", "Effect": "Allow", "Principal": {"Service": EVENTS},
             "Action": "sns:Publish", "Resource": topic,
             "Condition": {"ArnEquals": {"aws:SourceArn": [rule]}, "StringEquals": {"aws:SourceAccount": ACCOUNT}}},
        ),
    )
    succeeded = world.start()
    world.decide(succeeded)
    world.wait_status(succeeded, "Succeeded")
    failed = world.start()
    world.decide(failed, "Rejected")
    world.wait_status(failed, "Failed")

    def three_notices() -> list[dict[str, Any]] | None:
        notices = [m for m in admin(world.emulator, "GET", "published").json() if m["topicArn"] == topic]
        return notices if len(notices) >= 3 else None

    notices = poll("the failure's three notices", three_notices)
    seen = sorted(
        (json.loads(n["message"])["detail-type"], json.loads(n["message"])["detail"].get("stage"))
        for n in notices
    )
    assert seen == [
        ("CodePipeline Action Execution State Change", "Approve"),
        ("CodePipeline Pipeline Execution State Change", None),
        ("CodePipeline Stage Execution State Change", "Approve"),
    ]
    assert all(json.loads(n["message"])["detail"]["execution-id"] == failed for n in notices)


def test_state_changes_reach_the_topic_once_through_the_allowed_rule_only(world: World) -> None:
    world.create_pipeline([world.source_stage(), world.approval_stage()])
    sns = world.client("sns")
    topic = sns.create_topic(Name=f"{world.name}-notify")["TopicArn"]
    allowed = notify_rule(world, f"{world.name}-notify", topic, ["FAILED"])
    intruder = notify_rule(world, f"{world.name}-other", topic, ["FAILED"])
    # The provider's topic policy: EventBridge may publish for the one rule.
    sns.set_topic_attributes(
        TopicArn=topic, AttributeName="Policy",
        AttributeValue=document(
            {"Sid": "OwnerManages", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
             "Action": ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes"], "Resource": topic},
            {"Sid": "AllowPipelineEvents", "Effect": "Allow", "Principal": {"Service": EVENTS},
             "Action": "sns:Publish", "Resource": topic,
             "Condition": {"ArnEquals": {"aws:SourceArn": [allowed]}, "StringEquals": {"aws:SourceAccount": ACCOUNT}}},
        ),
    )
    succeeded = world.start()
    world.decide(succeeded)
    world.wait_status(succeeded, "Succeeded")
    failed = world.start()
    world.decide(failed, "Rejected")
    world.wait_status(failed, "Failed")

    def final_event(execution_id: str, state: str) -> Callable[[], dict[str, Any] | None]:
        def find() -> dict[str, Any] | None:
            return next(
                (
                    entry
                    for entry in admin(world.emulator, "GET", "events").json()
                    if entry["event"]["detail-type"] == "CodePipeline Pipeline Execution State Change"
                    and entry["event"]["detail"]["execution-id"] == execution_id
                    and entry["event"]["detail"]["state"] == state
                ),
                None,
            )

        return find

    delivered = poll("the FAILED event's delivery", final_event(failed, "FAILED"))
    poll("the SUCCEEDED event's delivery", final_event(succeeded, "SUCCEEDED"))
    assert sorted((d["rule"], d["delivered"]) for d in delivered["deliveries"]) == sorted(
        [(allowed, True), (intruder, False)]
    )
    refused = next(d for d in delivered["deliveries"] if d["rule"] == intruder)
    assert refused["error"] == "AuthorizationError"
    assert "events.amazonaws.com is not authorized to perform: sns:Publish" in refused["message"]

    notices = [m for m in admin(world.emulator, "GET", "published").json() if m["topicArn"] == topic]
    assert len(notices) == 1
    assert notices[0]["publishedBy"] == EVENTS
    event = json.loads(notices[0]["message"])
    assert (event["source"], event["detail-type"]) == ("aws.codepipeline", "CodePipeline Pipeline Execution State Change")
    assert event["resources"] == [world.pipeline_arn]
    assert event["detail"]["state"] == "FAILED"
    assert event["detail"]["execution-id"] == failed
    assert event["detail"]["execution-trigger"]["trigger-type"] == "StartPipelineExecution"

    # Every event of the successful execution, in the order things happened.
    changes = [
        (e["event"]["detail-type"].split()[1], e["event"]["detail"].get("stage"), e["event"]["detail"].get("action"),
         e["event"]["detail"]["state"])
        for e in admin(world.emulator, "GET", "events").json()
        if e["event"]["detail"]["execution-id"] == succeeded
    ]
    assert changes == [
        ("Pipeline", None, None, "STARTED"),
        ("Stage", "Source", None, "STARTED"),
        ("Action", "Source", "Source", "STARTED"),
        ("Action", "Source", "Source", "SUCCEEDED"),
        ("Stage", "Source", None, "SUCCEEDED"),
        ("Stage", "Approve", None, "STARTED"),
        ("Action", "Approve", "Approve", "STARTED"),
        ("Action", "Approve", "Approve", "SUCCEEDED"),
        ("Stage", "Approve", None, "SUCCEEDED"),
        ("Pipeline", None, None, "SUCCEEDED"),
    ]


def schedule(world: World, name: str, start_arn: str) -> tuple[str, str]:
    """A schedule rule starting the pipeline through a role allowed to start
    `start_arn` (the provider's events role: events_role_policy)."""
    events, iam = world.client("events"), world.client("iam")
    rule_arn = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}"
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=service_trust(EVENTS, rule_arn))["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=name, PolicyName="start-pipeline",
        PolicyDocument=document({"Sid": "StartThisPipeline", "Effect": "Allow",
                                 "Action": "codepipeline:StartPipelineExecution", "Resource": start_arn}),
    )
    assert events.put_rule(Name=name, ScheduleExpression="rate(1 day)")["RuleArn"] == rule_arn
    events.put_targets(Rule=name, Targets=[{"Id": "pipeline", "Arn": world.pipeline_arn, "RoleArn": role}])
    return rule_arn, role


def test_the_schedule_starts_the_pipeline_through_its_role_only(world: World) -> None:
    world.create_pipeline([world.source_stage(), world.approval_stage()], mode="PARALLEL")
    rule_arn, role = schedule(world, f"{world.name}-nightly", world.pipeline_arn)
    fired = admin(world.emulator, "POST", "schedules/fire", {"ruleArn": rule_arn})
    assert fired.status_code == 200, fired.text
    started = fired.json()["started"]
    assert [s["pipeline"] for s in started] == [world.name]
    execution = world.execution(started[0]["executionId"])
    assert execution["trigger"] == {"triggerType": "CloudWatchEvent", "triggerDetail": rule_arn}
    world.action(started[0]["executionId"], "Source", "Source", "Succeeded")

    # A role allowed to start another pipeline only cannot start this one.
    other = f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:{world.name}-other"
    wrong_rule, _ = schedule(world, f"{world.name}-wrong", other)
    before = world.client("codepipeline").list_pipeline_executions(pipelineName=world.name)[
        "pipelineExecutionSummaries"
    ]
    denied = admin(world.emulator, "POST", "schedules/fire", {"ruleArn": wrong_rule})
    assert denied.status_code == 403
    answer = denied.json()
    assert answer["error"] == "AccessDeniedException"
    assert answer["started"] == []
    assert f"assumed-role/{world.name}-wrong/" in answer["message"]
    assert f"codepipeline:StartPipelineExecution on resource: {world.pipeline_arn}" in answer["message"]
    # The role trusts EventBridge for its own rule only: another rule
    # naming it as target cannot use it.
    events = world.client("events")
    borrowed = f"{world.name}-borrow"
    events.put_rule(Name=borrowed, ScheduleExpression="rate(1 hour)")
    events.put_targets(Rule=borrowed, Targets=[{"Id": "pipeline", "Arn": world.pipeline_arn, "RoleArn": role}])
    refused = admin(
        world.emulator, "POST", "schedules/fire", {"ruleArn": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{borrowed}"}
    )
    assert refused.status_code == 403
    assert refused.json()["error"] == "AccessDenied"
    assert f"events.amazonaws.com is not authorized to perform: sts:AssumeRole on resource: {role}" in (
        refused.json()["message"]
    )
    after = world.client("codepipeline").list_pipeline_executions(pipelineName=world.name)[
        "pipelineExecutionSummaries"
    ]
    assert len(after) == len(before)


@pytest.fixture
def local() -> Iterator[Local]:
    """An emulator in this process, whose pipeline clock the test moves."""
    app = EmulatorApp(enforce_iam=True)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.loopback.bind(f"http://127.0.0.1:{server.server_port}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Local(app, server.server_port)
    server.shutdown()


def test_an_undecided_approval_fails_when_its_timeout_passes(
    local: Local, unique: Callable[[str], str], tmp_path: Path
) -> None:
    world = make_world(local, unique, tmp_path)
    world.create_pipeline([world.source_stage(), world.approval_stage(minutes=5)])
    now = [time.time()]
    local.app.pipelines.clock = lambda: now[0]
    execution_id = world.start()
    world.token(execution_id)
    now[0] += 5 * 60 + 1
    world.wait_status(execution_id, "Failed")
    action = world.action(execution_id, "Approve", "Approve", "Failed")
    assert action["output"]["executionResult"]["errorDetails"]["message"] == (
        "The approval was not decided within 5 minutes"
    )


BUILD_SPEC = """\
version: 0.2
env:
  exported-variables: [BUILT_BY]
phases:
  build:
    commands:
      - test -f src/app.py
      - mkdir -p dist
      - echo "built $CODEBUILD_RESOLVED_SOURCE_VERSION" > dist/result.txt
      - BUILT_BY="$CODEBUILD_INITIATOR"
artifacts:
  files: ['result.txt']
  base-directory: dist
"""

DEPLOY_SPEC = """\
version: 0.2
phases:
  build:
    commands:
      - test "$(cat result.txt)" = "built $CODEBUILD_RESOLVED_SOURCE_VERSION"
      - echo "deployed $(cat result.txt)"
"""


def test_codebuild_actions_pass_their_artifacts_from_stage_to_stage(world: World) -> None:
    build = world.build_project("build", BUILD_SPEC, reads="SourceOutput", writes="BuildOutput")
    deploy = world.build_project("deploy", DEPLOY_SPEC, reads="BuildOutput")
    world.grant(world.grants(projects=(build, deploy)))
    world.create_pipeline([
        world.source_stage(),
        world.build_stage("Build", build, "SourceOutput", "BuildOutput"),
        world.build_stage("Deploy", deploy, "BuildOutput"),
    ])
    requests.post(f"{world.emulator.endpoint}/_emulator/decisions/reset").raise_for_status()
    head = world.repo.git("rev-parse", "HEAD")
    execution_id = world.start()
    execution = world.wait_status(execution_id, "Succeeded")
    # Only what the source read is a revision of the execution.
    assert [(r["name"], r["revisionId"]) for r in execution["artifactRevisions"]] == [("SourceOutput", head)]
    summary = world.client("codepipeline").list_pipeline_executions(pipelineName=world.name)[
        "pipelineExecutionSummaries"
    ][0]
    assert [(r["actionName"], r["revisionId"]) for r in summary["sourceRevisions"]] == [("Source", head)]
    assert "currentRevision" not in world.stage_state("Build")["actionStates"][0]

    built = world.action(execution_id, "Build", "Build", "Succeeded")
    build_id = built["output"]["executionResult"]["externalExecutionId"]
    assert build_id.startswith(f"{build}:")
    assert built["output"]["outputVariables"] == {"BUILT_BY": f"codepipeline/{world.name}"}
    output = built["output"]["outputArtifacts"][0]
    assert output["name"] == "BuildOutput"
    assert output["s3location"]["key"].startswith(f"{world.name[:20]}/BuildOutput/")
    stored = world.client("s3").get_object(Bucket=world.bucket, Key=output["s3location"]["key"])
    assert (stored["ServerSideEncryption"], stored["SSEKMSKeyId"]) == ("aws:kms", world.key_arn)
    assert zipfile.ZipFile(io.BytesIO(stored["Body"].read())).read("result.txt") == f"built {head}\n".encode()

    # The next stage's build read exactly that object.
    deployed = world.action(execution_id, "Deploy", "Deploy", "Succeeded")
    assert deployed["input"]["inputArtifacts"] == [output]
    codebuild = world.client("codebuild")
    deploy_build = codebuild.batch_get_builds(ids=[deployed["output"]["executionResult"]["externalExecutionId"]])
    assert deploy_build["builds"][0]["initiator"] == f"codepipeline/{world.name}"

    # The pipeline role started the builds; each project's role did its own work.
    decisions = requests.get(f"{world.emulator.endpoint}/_emulator/decisions").json()
    pipeline_session = session_of(world, execution_id)
    assert {(d["action"], d["resource"]) for d in decisions if d["principal"] == pipeline_session} >= {
        ("codebuild:StartBuild", f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{build}"),
        ("codebuild:StartBuild", f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{deploy}"),
    }
    writers = {d["principal"] for d in decisions if d["action"] == "s3:PutObject" and "/BuildOutput/" in d["resource"]}
    assert writers == {f"arn:aws:sts::{ACCOUNT}:assumed-role/{build}/AWSCodeBuild-{build_id.split(':', 1)[1]}"}
    assert [d for d in decisions if not d["allowed"]] == []


VARIABLE_SPEC = """\
version: 0.2
env:
  exported-variables: [TARGET_SEEN]
phases:
  build:
    commands:
      - TARGET_SEEN="$DEPLOY_TARGET"
artifacts:
  files: ['src/app.py']
"""


def test_pipeline_variables_reach_codebuild_actions_from_defaults_and_overrides(world: World) -> None:
    build = world.build_project("build", VARIABLE_SPEC, reads="SourceOutput", writes="BuildOutput")
    world.grant(world.grants(projects=(build,)))
    stage = world.build_stage("Build", build, "SourceOutput", "BuildOutput")
    stage["actions"][0]["configuration"]["EnvironmentVariables"] = json.dumps(
        [{"name": "DEPLOY_TARGET", "type": "PLAINTEXT", "value": "#{variables.DEPLOY_TARGET}"}]
    )
    world.create_pipeline(
        [world.source_stage(), stage],
        variables=[{"name": "DEPLOY_TARGET", "defaultValue": "blue", "description": "The fleet"}],
    )
    codepipeline = world.client("codepipeline")
    declared = codepipeline.get_pipeline(name=world.name)["pipeline"]["variables"]
    assert declared == [{"name": "DEPLOY_TARGET", "defaultValue": "blue", "description": "The fleet"}]

    def seen(execution_id: str) -> str:
        world.wait_status(execution_id, "Succeeded")
        built = world.action(execution_id, "Build", "Build", "Succeeded")
        return built["output"]["outputVariables"]["TARGET_SEEN"]

    # Without a value at start, the default; with one, that value.
    assert seen(world.start()) == "blue"
    overridden = codepipeline.start_pipeline_execution(
        name=world.name, variables=[{"name": "DEPLOY_TARGET", "value": "green"}]
    )["pipelineExecutionId"]
    assert seen(overridden) == "green"
    execution = codepipeline.get_pipeline_execution(pipelineName=world.name, pipelineExecutionId=overridden)
    assert execution["pipelineExecution"]["variables"] == [{"name": "DEPLOY_TARGET", "resolvedValue": "green"}]


def test_an_action_using_an_undeclared_pipeline_variable_fails(world: World) -> None:
    build = world.build_project("build", VARIABLE_SPEC, reads="SourceOutput", writes="BuildOutput")
    world.grant(world.grants(projects=(build,)))
    stage = world.build_stage("Build", build, "SourceOutput", "BuildOutput")
    stage["actions"][0]["configuration"]["EnvironmentVariables"] = json.dumps(
        [{"name": "DEPLOY_TARGET", "type": "PLAINTEXT", "value": "#{variables.MISSING}"}]
    )
    world.create_pipeline([world.source_stage(), stage])
    execution_id = world.start()
    world.wait_status(execution_id, "Failed")
    error = world.action(execution_id, "Build", "Build", "Failed")["output"]["executionResult"]["errorDetails"]
    assert error["code"] == "InvalidActionDeclarationException"
    assert "variable MISSING" in error["message"]


@pytest.mark.parametrize(
    ("spec", "runs_builds", "code", "says"),
    [
        ("exit 3", True, "JobFailed", "Phase: BUILD, Code: COMMAND_EXECUTION_ERROR"),
        ("true", False, "AccessDenied", "codebuild:StartBuild"),
    ],
)
def test_a_failing_build_fails_the_execution(world: World, spec: str, runs_builds: bool, code: str, says: str) -> None:
    build = world.build_project(
        "build", BUILD_SPEC.replace("- test -f src/app.py", f"- {spec}"), reads="SourceOutput", writes="BuildOutput"
    )
    deploy = world.build_project("deploy", DEPLOY_SPEC, reads="BuildOutput")
    world.grant(world.grants(projects=(build, deploy) if runs_builds else ()))
    world.create_pipeline([
        world.source_stage(),
        world.build_stage("Build", build, "SourceOutput", "BuildOutput"),
        world.build_stage("Deploy", deploy, "BuildOutput"),
    ])
    execution_id = world.start()
    assert world.wait_status(execution_id, "Failed")["statusSummary"] == "Stage Build failed"
    failed = world.action(execution_id, "Build", "Build", "Failed")
    error = failed["output"]["executionResult"]["errorDetails"]
    assert error["code"] == code
    assert says in error["message"]
    assert failed["output"]["outputArtifacts"] == []
    assert [a["stageName"] for a in world.actions(execution_id)] == ["Build", "Source"]


def test_abandoning_a_running_build_action_stops_the_build(world: World) -> None:
    build = world.build_project(
        "build", BUILD_SPEC.replace("- test -f src/app.py", "- sleep 60"), reads="SourceOutput", writes="BuildOutput"
    )
    deploy = world.build_project("deploy", DEPLOY_SPEC, reads="BuildOutput")
    world.grant(world.grants(projects=(build, deploy)))
    world.create_pipeline([
        world.source_stage(),
        world.build_stage("Build", build, "SourceOutput", "BuildOutput"),
        world.build_stage("Deploy", deploy, "BuildOutput"),
    ])
    execution_id = world.start()
    codebuild = world.client("codebuild")

    def running_build() -> str | None:
        latest = world.stage_state("Build")["actionStates"][0].get("latestExecution", {})
        build_id = latest.get("externalExecutionId")
        if not build_id:
            return None
        phase = codebuild.batch_get_builds(ids=[build_id])["builds"][0]["currentPhase"]
        return build_id if phase == "BUILD" else None

    build_id = poll("the build to run its commands", running_build)
    world.client("codepipeline").stop_pipeline_execution(
        pipelineName=world.name, pipelineExecutionId=execution_id, abandon=True, reason="wrong commit"
    )
    world.wait_status(execution_id, "Stopped")
    world.action(execution_id, "Build", "Build", "Abandoned")
    poll("the build to stop", lambda: codebuild.batch_get_builds(ids=[build_id])["builds"][0]["buildStatus"] == "STOPPED")
    assert world.stage_state("Build")["latestExecution"]["status"] == "Stopped"
    assert [a["stageName"] for a in world.actions(execution_id)] == ["Build", "Source"]
