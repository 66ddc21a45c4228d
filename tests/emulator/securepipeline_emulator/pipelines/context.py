"""What an action's job gets to work with, and what it hands back.

Each action type (source.py, approval.py, build.py) is a function of an
ActionContext returning an Outcome; the engine runs it, records the outcome
and sends the action's state-change event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..loopback import SessionCredentials
from .model import ActionRun, Artifact, Execution
from .store import Store

if TYPE_CHECKING:
    from .engine import PipelineRunner

JOB_FAILED = "JobFailed"


@dataclass
class Outcome:
    succeeded: bool
    summary: str | None = None
    error: dict[str, str] | None = None  # ErrorDetails: code, message
    external_id: str | None = None
    external_url: str | None = None
    outputs: list[Artifact] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    updated_by: str | None = None

    @classmethod
    def failure(cls, code: str, message: str, **fields: Any) -> "Outcome":
        return cls(False, error={"code": code, "message": message[:5000]}, **fields)


@dataclass
class ActionContext:
    runner: "PipelineRunner"
    execution: Execution
    run: ActionRun
    credentials: SessionCredentials  # the pipeline role's (or the action role's) session
    store: Store  # the artifact store of the action's region

    @property
    def configuration(self) -> dict[str, str]:
        return self.run.declaration.get("configuration", {})


ActionHandler = Callable[[ActionContext], Outcome]
