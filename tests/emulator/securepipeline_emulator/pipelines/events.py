"""CodePipeline's state-change events, and their delivery by EventBridge.

CodePipeline sends three detail-types to the default event bus of the
pipeline's region, with source `aws.codepipeline` ("CodePipeline events",
EventBridge events reference; "Monitoring CodePipeline events", CodePipeline
User Guide): pipeline, stage and action execution state changes. Every
enabled rule of that bus whose pattern matches gets the event once, and
each of its targets is invoked (targets.py). Delivery is asynchronous, as
on AWS, but in the order the events happened; each event and what became of
it at each target is kept for `GET /_emulator/events`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from moto.events.models import events_backends

from ..wire import AwsError
from .model import ActionRun, Execution
from .targets import Targets

SOURCE = "aws.codepipeline"
PIPELINE_CHANGE = "CodePipeline Pipeline Execution State Change"
STAGE_CHANGE = "CodePipeline Stage Execution State Change"
ACTION_CHANGE = "CodePipeline Action Execution State Change"

log = logging.getLogger(__name__)


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _detail(execution: Execution, state: str) -> dict[str, Any]:
    return {
        "pipeline": execution.pipeline_name,
        "execution-id": execution.id,
        "start-time": iso(execution.started),
        "execution-trigger": {
            "trigger-type": execution.trigger["triggerType"],
            "trigger-detail": execution.trigger.get("triggerDetail", ""),
        },
        "state": state,
        "version": execution.version,
        "pipeline-execution-attempt": 1,
    }


def _envelope(execution: Execution, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": SOURCE,
        "account": execution.account,
        "time": iso(time.time()),
        "region": execution.region,
        "resources": [execution.pipeline_arn],
        "detail": detail,
    }


def pipeline_event(execution: Execution, state: str) -> dict[str, Any]:
    return _envelope(execution, PIPELINE_CHANGE, _detail(execution, state))


def stage_event(execution: Execution, stage: str, state: str) -> dict[str, Any]:
    return _envelope(execution, STAGE_CHANGE, {**_detail(execution, state), "stage": stage})


def action_event(execution: Execution, run: ActionRun, state: str) -> dict[str, Any]:
    type_id = run.declaration["actionTypeId"]
    detail = {
        **_detail(execution, state),
        "stage": run.stage,
        "action": run.name,
        "region": run.region,
        "type": {
            "owner": type_id["owner"],
            "category": type_id["category"],
            "provider": type_id["provider"],
            "version": type_id["version"],
        },
        "input-artifacts": [a.detail() for a in run.inputs],
    }
    if state == "SUCCEEDED":
        detail["output-artifacts"] = [a.detail() for a in run.outputs]
    if state in ("SUCCEEDED", "FAILED"):
        result = {
            "external-execution-id": run.external_id,
            "external-execution-url": run.external_url,
            "external-execution-summary": run.summary,
            "error-code": (run.error or {}).get("code"),
        }
        detail["execution-result"] = {k: v for k, v in result.items() if v is not None}
    return _envelope(execution, ACTION_CHANGE, detail)


class EventBus:
    """The default event buses of every region, as far as CodePipeline's
    events go: matching rules and invoking their targets, in order."""

    def __init__(self, targets: Targets) -> None:
        self.targets = targets
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []
        self._worker = threading.Thread(target=self._deliver_forever, name="eventbridge", daemon=True)
        self._worker.start()

    def emit(self, event: dict[str, Any]) -> None:
        self._queue.put(event)

    def log(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._log]

    def _deliver_forever(self) -> None:
        while True:
            event = self._queue.get()
            try:
                deliveries = self.deliver(event)
            except Exception as error:  # one bad event must not stop the bus
                log.exception("delivering event %s", event.get("id"))
                deliveries = [{"error": f"{type(error).__name__}: {error}"}]
            with self._lock:
                self._log.append({"event": event, "deliveries": deliveries})

    def deliver(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Invoke the targets of every enabled rule on the default bus whose
        pattern matches; what happened at each target."""
        backend = events_backends[event["account"]][event["region"]]
        deliveries = []
        for rule in list(backend.event_buses["default"].rules.values()):
            # A rule without a pattern is a schedule: events never match it.
            if rule.state != "ENABLED" or not rule.event_pattern.get_pattern():
                continue
            if not rule.event_pattern.matches_event(event):
                continue
            for target in list(rule.targets):
                outcome: dict[str, Any] = {"rule": rule.arn, "target": target["Id"], "arn": target["Arn"]}
                try:
                    started = self.targets.invoke(rule.arn, target, event)
                    outcome["delivered"] = True
                    if started:
                        outcome["executionId"] = started
                except AwsError as error:
                    outcome.update(delivered=False, error=error.code, message=error.message)
                deliveries.append(outcome)
        return deliveries
