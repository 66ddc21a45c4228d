"""What one build runs, and its record as BatchGetBuilds shows it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..fixes.codebuild import DEFAULT_QUEUED_TIMEOUT_MINUTES
from ..wire import DEFAULT_ACCOUNT_ID
from .artifacts import ArtifactLocation


@dataclass
class PhaseRecord:
    phase_type: str
    start: float
    end: float | None = None
    status: str | None = None
    contexts: list[dict[str, str]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        view: dict[str, Any] = {"phaseType": self.phase_type, "startTime": self.start}
        if self.end is not None:
            duration = int(self.end - self.start)
            view.update(phaseStatus=self.status, endTime=self.end, durationInSeconds=duration)
            # CodeBuild gives every phase but the first two a context, empty when all went well.
            if self.phase_type not in ("SUBMITTED", "QUEUED"):
                view["contexts"] = [dict(c) for c in self.contexts] or [{"statusCode": "", "message": ""}]
        return view


@dataclass
class Plan:
    """What one build runs: fixed when it starts."""

    project: dict[str, Any]
    region: str
    initiator: str
    inputs: list[ArtifactLocation]
    outputs: list[ArtifactLocation]
    overrides: list[dict[str, str]]
    buildspec_text: str
    encryption_key: str | None
    source_version: str | None
    timeout_minutes: int
    service_role: str
    logs_config: dict[str, Any]
    no_source: bool = False


class Build:
    """One build's record and what it shows through BatchGetBuilds."""

    def __init__(self, plan: Plan, build_id: str, number: int) -> None:
        self.plan = plan
        self.id = build_id
        self.number = number
        project = plan.project
        self.arn = f"arn:aws:codebuild:{plan.region}:{DEFAULT_ACCOUNT_ID}:build/{build_id}"
        self.project_arn = project["arn"]
        self.start_time = time.time()
        self.end_time: float | None = None
        self.status = "IN_PROGRESS"
        self.phases: list[PhaseRecord] = []
        self.exported: list[dict[str, str]] = []
        self.stop_requested: str | None = None  # "STOPPED" once StopBuild asks
        self.done = threading.Event()
        cloudwatch = plan.logs_config.get("cloudWatchLogs", {})
        self.log_group = cloudwatch.get("groupName") or f"/aws/codebuild/{project['name']}"
        uuid_part = build_id.split(":", 1)[1]
        prefix = cloudwatch.get("streamName")
        self.log_stream = f"{prefix}/{uuid_part}" if prefix else uuid_part
        self.logs_enabled = cloudwatch.get("status", "ENABLED") == "ENABLED"

    @property
    def current_phase(self) -> str:
        return self.phases[-1].phase_type if self.phases else "SUBMITTED"

    def view(self) -> dict[str, Any]:
        plan, project = self.plan, self.plan.project
        source = dict(project.get("source", {}))
        if plan.no_source:
            source = {"type": "NO_SOURCE", "buildspec": plan.buildspec_text}
        view: dict[str, Any] = {
            "id": self.id,
            "arn": self.arn,
            "buildNumber": self.number,
            "startTime": self.start_time,
            "currentPhase": self.current_phase,
            "buildStatus": self.status,
            "projectName": project["name"],
            "phases": [phase.view() for phase in self.phases],
            "source": source,
            "secondarySources": [
                {"type": "S3", "location": _s3_arn(i), "sourceIdentifier": i.name} for i in plan.inputs[1:]
            ],
            "artifacts": {"location": _s3_arn(plan.outputs[0])} if plan.outputs else {"location": ""},
            "secondaryArtifacts": [
                {"location": _s3_arn(o), "artifactIdentifier": o.name} for o in plan.outputs[1:]
            ],
            "environment": {
                **project.get("environment", {}),
                "environmentVariables": self.variables_view(),
            },
            "serviceRole": plan.service_role,
            "logs": self.logs_view(),
            "timeoutInMinutes": plan.timeout_minutes,
            "queuedTimeoutInMinutes": project.get("queuedTimeoutInMinutes", DEFAULT_QUEUED_TIMEOUT_MINUTES),
            "buildComplete": self.done.is_set(),
            "initiator": plan.initiator,
            "encryptionKey": plan.encryption_key,
            "exportedEnvironmentVariables": list(self.exported),
        }
        if plan.inputs:
            view["source"] = {**source, "location": _s3_arn(plan.inputs[0])}
        if plan.source_version:
            view["sourceVersion"] = view["resolvedSourceVersion"] = plan.source_version
        if self.end_time is not None:
            view["endTime"] = self.end_time
        return {key: value for key, value in view.items() if value is not None}

    def variables_view(self) -> list[dict[str, str]]:
        merged: dict[str, dict[str, str]] = {}
        for variable in self.plan.project.get("environment", {}).get("environmentVariables", []):
            merged[variable["name"]] = variable
        for variable in self.plan.overrides:
            merged[variable["name"]] = {"type": "PLAINTEXT", **variable}
        return list(merged.values())

    def logs_view(self) -> dict[str, Any]:
        region = self.plan.region
        view: dict[str, Any] = {
            "cloudWatchLogs": self.plan.logs_config.get("cloudWatchLogs", {"status": "ENABLED"}),
            "s3Logs": self.plan.logs_config.get("s3Logs", {"status": "DISABLED"}),
        }
        if self.logs_enabled:
            view.update(
                groupName=self.log_group,
                streamName=self.log_stream,
                cloudWatchLogsArn=(
                    f"arn:aws:logs:{region}:{DEFAULT_ACCOUNT_ID}:log-group:{self.log_group}"
                    f":log-stream:{self.log_stream}"
                ),
                deepLink=(
                    f"https://console.aws.amazon.com/cloudwatch/home?region={region}#logEvent:"
                    f"group={self.log_group};stream={self.log_stream}"
                ),
            )
        return view



def _s3_arn(location: ArtifactLocation) -> str:
    return f"arn:aws:s3:::{location.bucket}/{location.key}"
