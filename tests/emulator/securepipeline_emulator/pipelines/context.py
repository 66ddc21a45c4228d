"""What an action's job gets to work with, and what it hands back.

Each action type (source.py, approval.py, build.py) is a function of an
ActionContext returning an Outcome; the engine runs it, records the outcome
and sends the action's state-change event.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..loopback import SessionCredentials
from ..wire import AwsError
from .model import ActionRun, Artifact, Execution
from .store import Store

if TYPE_CHECKING:
    from .engine import PipelineRunner

JOB_FAILED = "JobFailed"

# `#{variables.NAME}`: a pipeline-level variable of the execution.
PIPELINE_VARIABLE = re.compile(r"#\{variables\.([A-Za-z0-9@\-_]+)\}")


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
        """The action's configuration with the execution's pipeline
        variables (`#{variables.NAME}`) resolved, as CodePipeline resolves
        them before the job starts. Other namespaces pass unresolved."""
        values = {v["name"]: v["value"] for v in self.execution.variables}

        def resolve(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                raise AwsError(
                    "InvalidActionDeclarationException",
                    f"The action's configuration uses variable {name}, which pipeline "
                    f"{self.execution.pipeline_name} does not declare",
                )
            return values[name]

        return {
            key: PIPELINE_VARIABLE.sub(resolve, value) if isinstance(value, str) else value
            for key, value in self.run.declaration.get("configuration", {}).items()
        }


ActionHandler = Callable[[ActionContext], Outcome]
