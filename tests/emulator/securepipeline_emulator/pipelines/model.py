"""What an execution is made of, and how CodePipeline's API shows it.

Statuses use the API's spelling (`InProgress`, `Succeeded`...); the
EventBridge events use their own upper-case states (events.py).
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

IN_PROGRESS = "InProgress"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
STOPPED = "Stopped"
STOPPING = "Stopping"
SUPERSEDED = "Superseded"
ABANDONED = "Abandoned"

# Orders executions by when they started, even within one clock tick.
_SEQUENCE = itertools.count()

STANDARD = "STANDARD"
ROLLBACK = "ROLLBACK"


@dataclass(frozen=True)
class Artifact:
    """One artifact of an execution: a zip object in a region's store."""

    name: str
    region: str
    bucket: str
    key: str
    revision: str | None = None  # the commit, for source artifacts
    revision_summary: str | None = None
    created: float = field(default_factory=time.time)

    def detail(self) -> dict[str, Any]:
        return {"name": self.name, "s3location": {"bucket": self.bucket, "key": self.key}}


@dataclass
class ActionRun:
    """One run of one action in one execution."""

    execution_id: str
    pipeline_version: int
    stage: str
    declaration: dict[str, Any]
    region: str
    inputs: list[Artifact]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    status: str = IN_PROGRESS
    summary: str | None = None
    token: str | None = None  # an approval's, while it waits
    external_id: str | None = None
    external_url: str | None = None
    error: dict[str, str] | None = None
    outputs: list[Artifact] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    updated_by: str | None = None
    role_arn: str | None = None
    # Set when the action must end early: an approval decided, or the
    # execution stopped with its in-progress actions abandoned.
    wake: threading.Event = field(default_factory=threading.Event)
    abandoned: bool = False
    # What a reviewer decided: (status, summary, reviewer ARN)
    approval: tuple[str, str, str] | None = None

    @property
    def name(self) -> str:
        return self.declaration["name"]

    @property
    def is_source(self) -> bool:
        return self.declaration["actionTypeId"]["category"] == "Source"

    def finish(self, status: str, **fields: Any) -> None:
        self.status = status
        self.updated = time.time()
        for key, value in fields.items():
            setattr(self, key, value)

    def latest_view(self) -> dict[str, Any]:
        """ActionExecution, as GetPipelineState shows an action's latest run."""
        view: dict[str, Any] = {
            "actionExecutionId": self.id,
            "status": self.status,
            "lastStatusChange": self.updated,
        }
        for key, value in (
            ("summary", self.summary),
            ("token", self.token if self.status == IN_PROGRESS else None),
            ("lastUpdatedBy", self.updated_by),
            ("externalExecutionId", self.external_id),
            ("externalExecutionUrl", self.external_url),
            ("errorDetails", self.error),
        ):
            if value is not None:
                view[key] = value
        return view

    def detail_view(self) -> dict[str, Any]:
        """ActionExecutionDetail, as ListActionExecutions shows it."""
        declaration = self.declaration
        configuration = declaration.get("configuration", {})
        action_input: dict[str, Any] = {
            "actionTypeId": declaration["actionTypeId"],
            "configuration": configuration,
            "resolvedConfiguration": configuration,
            "region": self.region,
            "inputArtifacts": [a.detail() for a in self.inputs],
        }
        if self.role_arn:
            action_input["roleArn"] = self.role_arn
        if declaration.get("namespace"):
            action_input["namespace"] = declaration["namespace"]
        result: dict[str, Any] = {}
        for key, value in (
            ("externalExecutionId", self.external_id),
            ("externalExecutionSummary", self.summary),
            ("externalExecutionUrl", self.external_url),
            ("errorDetails", self.error),
        ):
            if value is not None:
                result[key] = value
        output: dict[str, Any] = {
            "outputArtifacts": [a.detail() for a in self.outputs],
            "executionResult": result,
        }
        if self.variables:
            output["outputVariables"] = dict(self.variables)
        view: dict[str, Any] = {
            "pipelineExecutionId": self.execution_id,
            "actionExecutionId": self.id,
            "pipelineVersion": self.pipeline_version,
            "stageName": self.stage,
            "actionName": self.name,
            "startTime": self.started,
            "lastUpdateTime": self.updated,
            "status": self.status,
            "input": action_input,
            "output": output,
        }
        if self.updated_by:
            view["updatedBy"] = self.updated_by
        return view


@dataclass
class StageRun:
    execution_id: str
    name: str
    type: str
    status: str = IN_PROGRESS

    def view(self) -> dict[str, Any]:
        return {"pipelineExecutionId": self.execution_id, "status": self.status, "type": self.type}


@dataclass
class StopRequest:
    abandon: bool
    reason: str | None


@dataclass
class Execution:
    """One pipeline execution, from its start to its final status."""

    pipeline_name: str
    pipeline_arn: str
    account: str
    region: str  # the pipeline's home region
    version: int
    declaration: dict[str, Any]  # the pipeline as it was when the execution started
    mode: str
    trigger: dict[str, str]
    variables: list[dict[str, str]]
    type: str = STANDARD
    # The stage a rollback re-runs, and the execution whose artifacts it uses.
    rollback_stage: str | None = None
    rollback_target: str | None = None
    # Source action name -> (branch, commit) it must read instead of its branch's head.
    source_overrides: dict[str, tuple[str, str]] = field(default_factory=dict)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    seq: int = field(default_factory=lambda: next(_SEQUENCE))
    started: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    status: str = IN_PROGRESS
    status_summary: str | None = None
    artifacts: dict[str, Artifact] = field(default_factory=dict)
    # Source action name -> the revision it read, for sourceRevisions.
    revisions: dict[str, Artifact] = field(default_factory=dict)
    stages: dict[str, StageRun] = field(default_factory=dict)
    actions: list[ActionRun] = field(default_factory=list)
    stop: StopRequest | None = None

    @property
    def done(self) -> bool:
        return self.status not in (IN_PROGRESS, STOPPING)

    def set_status(self, status: str, summary: str | None = None) -> None:
        self.status = status
        self.updated = time.time()
        if summary is not None:
            self.status_summary = summary

    def _common(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "pipelineExecutionId": self.id,
            "status": self.status,
            "trigger": dict(self.trigger),
            "executionMode": self.mode,
            "executionType": self.type,
        }
        if self.status_summary:
            view["statusSummary"] = self.status_summary
        if self.rollback_target:
            view["rollbackMetadata"] = {"rollbackTargetPipelineExecutionId": self.rollback_target}
        return view

    def view(self) -> dict[str, Any]:
        """PipelineExecution, as GetPipelineExecution shows it."""
        revisions = []
        # The revisions the source actions read (a build's outputs carry the
        # commit too, for CODEBUILD_RESOLVED_SOURCE_VERSION, but are not one).
        for artifact in self.revisions.values():
            if artifact.revision is None:
                continue
            revision: dict[str, Any] = {
                "name": artifact.name,
                "revisionId": artifact.revision,
                "created": artifact.created,
            }
            if artifact.revision_summary:
                revision["revisionSummary"] = artifact.revision_summary
            revisions.append(revision)
        return {
            "pipelineName": self.pipeline_name,
            "pipelineVersion": self.version,
            **self._common(),
            "artifactRevisions": revisions,
            "variables": [{"name": v["name"], "resolvedValue": v["value"]} for v in self.variables],
        }

    def summary_view(self) -> dict[str, Any]:
        """PipelineExecutionSummary, as ListPipelineExecutions shows it."""
        view = {
            **self._common(),
            "startTime": self.started,
            "lastUpdateTime": self.updated,
            "sourceRevisions": [
                {
                    "actionName": action,
                    "revisionId": artifact.revision,
                    **({"revisionSummary": artifact.revision_summary} if artifact.revision_summary else {}),
                }
                for action, artifact in self.revisions.items()
            ],
        }
        if self.stop is not None and self.stop.reason:
            view["stopTrigger"] = {"reason": self.stop.reason}
        return view
