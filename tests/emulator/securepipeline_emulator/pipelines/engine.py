"""Running pipeline executions: stages in order, actions by runOrder.

Each execution runs on its own thread. It takes the pipeline's stages one
after another, entering each when its execution mode lets it (lanes.py);
inside a stage, actions of one runOrder run together and the next runOrder
starts once they all succeeded. Every action works under the pipeline's role
(assumed as codepipeline.amazonaws.com with the pipeline's ARN as source),
or under its own `roleArn`, assumed from that session. Artifacts pass
through the artifact store of the region the action runs in (store.py).

A stage declared with `onFailure: {result: ROLLBACK}` that fails starts a
rollback execution: it re-runs that stage with the artifacts and variables
of the latest execution that succeeded in it (none: no rollback), as
CodePipeline's automatic stage rollback does. PARALLEL pipelines never roll
back, and a rollback is never rolled back.

A stage's `beforeEntry` CloudWatchAlarm rules are evaluated when the stage
is reached: an alarm in ALARM, or one that does not exist, fails the stage
before any of its actions runs (result FAIL). Other rules (DeploymentWindow)
and `onSuccess` conditions are stored and returned, not evaluated.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from datetime import datetime, timezone
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from moto.cloudwatch.models import cloudwatch_backends
from moto.codepipeline.models import CodePipeline, codepipeline_backends

from ..jsonapi import Handler
from ..loopback import SessionCredentials
from ..wire import AwsError
from . import lanes as lane
from .admin import Admin
from .api import PipelinesApi
from .approval import run_approval
from .build import run_build
from .context import ActionContext, ActionHandler, Outcome
from .events import EventBus, action_event, pipeline_event, stage_event
from .lanes import Lanes
from .model import (
    ABANDONED,
    FAILED,
    IN_PROGRESS,
    ROLLBACK,
    STANDARD,
    STOPPED,
    STOPPING,
    SUCCEEDED,
    SUPERSEDED,
    ActionRun,
    Artifact,
    Execution,
    StageRun,
    StopRequest,
)
from .published import Published
from .repositories import Repositories
from .source import run_source
from .store import Objects, Store, as_aws_error, new_key, store_for
from .targets import Targets

if TYPE_CHECKING:
    from ..app import EmulatorApp

PIPELINES = "codepipeline.amazonaws.com"
# EventBridge's spelling of each final execution status.
EVENT_STATES = {
    SUCCEEDED: "SUCCEEDED",
    FAILED: "FAILED",
    STOPPED: "STOPPED",
    SUPERSEDED: "SUPERSEDED",
    ABANDONED: "ABANDONED",
}

log = logging.getLogger(__name__)


def handlers() -> dict[tuple[str, str, str], ActionHandler]:
    """Action types the emulator runs, by (category, owner, provider)."""
    return {
        ("Source", "AWS", "CodeStarSourceConnection"): run_source,
        ("Approval", "AWS", "Manual"): run_approval,
        ("Build", "AWS", "CodeBuild"): run_build,
        ("Test", "AWS", "CodeBuild"): run_build,
    }


@dataclass
class PipelineRuns:
    """One pipeline's executions and what GetPipelineState shows of them."""

    model: CodePipeline  # moto's pipeline: a re-created pipeline starts afresh
    lanes: Lanes
    executions: dict[str, Execution] = field(default_factory=dict)
    stage_latest: dict[str, StageRun] = field(default_factory=dict)
    action_latest: dict[tuple[str, str], ActionRun] = field(default_factory=dict)
    client_tokens: dict[str, str] = field(default_factory=dict)


def pipeline_not_found(account: str, name: str) -> AwsError:
    return AwsError(
        "PipelineNotFoundException", f"Account '{account}' does not have a pipeline with name '{name}'"
    )


class PipelineRunner:
    def __init__(self, app: "EmulatorApp") -> None:
        self.app = app
        self.lock = threading.RLock()
        self.clock = time.time
        self.repositories = Repositories()
        self.published = Published()
        self.targets = Targets(app.loopback, app.enforcer, self.published)
        self.events = EventBus(self.targets)
        self.objects = Objects(app.loopback)
        self.handlers = handlers()
        self._runs: dict[tuple[str, str, str], PipelineRuns] = {}
        # What the app routes here: API operations and admin paths.
        self.operations: dict[tuple[str, str], Handler] = {
            **PipelinesApi(self).operations,
            ("sns", "Publish"): self.published.publish_handler,
        }
        self.admin = Admin(self)

    # ------------------------------------------------------------ lookup --

    def runs(self, account: str, region: str, name: str) -> PipelineRuns:
        backend = codepipeline_backends[account][region]
        model = backend.pipelines.get(name)
        if model is None:
            raise pipeline_not_found(account, name)
        with self.lock:
            runs = self._runs.get((account, region, name))
            if runs is None or runs.model is not model:
                runs = PipelineRuns(model, Lanes(_mode(model.pipeline)))
                self._runs[(account, region, name)] = runs
            return runs

    def execution(self, runs: PipelineRuns, execution_id: str) -> Execution:
        with self.lock:
            execution = runs.executions.get(execution_id)
        if execution is None:
            raise AwsError(
                "PipelineExecutionNotFoundException",
                f"Account '{runs.model.metadata['pipelineArn'].split(':')[4]}' does not have an execution "
                f"with id '{execution_id}' for pipeline '{runs.model.pipeline['name']}'",
            )
        return execution

    def all_pipelines(self) -> list[tuple[str, str, CodePipeline]]:
        """(account, region, pipeline) for every pipeline in the emulator."""
        found = []
        for account, regions in list(codepipeline_backends.items()):
            for region, backend in list(regions.items()):
                found.extend((account, region, model) for model in list(backend.pipelines.values()))
        return found

    # ------------------------------------------------------------- start --

    def start(
        self,
        account: str,
        region: str,
        name: str,
        trigger: dict[str, str],
        *,
        variables: list[dict[str, str]] | None = None,
        client_token: str | None = None,
        source_overrides: dict[str, tuple[str, str]] | None = None,
        rollback: tuple[str, Execution] | None = None,
    ) -> Execution:
        runs = self.runs(account, region, name)
        with self.lock:
            if client_token and client_token in runs.client_tokens:
                return runs.executions[runs.client_tokens[client_token]]
            declaration = copy.deepcopy(runs.model.pipeline)
            mode = _mode(declaration)
            runs.lanes.mode = mode
            execution = Execution(
                pipeline_name=name,
                pipeline_arn=runs.model.metadata["pipelineArn"],
                account=account,
                region=region,
                version=declaration.get("version", 1),
                declaration=declaration,
                mode=mode,
                trigger=trigger,
                variables=_resolve_variables(declaration, variables or []),
                source_overrides=dict(source_overrides or {}),
            )
            if rollback is not None:
                stage, target = rollback
                execution.type = ROLLBACK
                execution.rollback_stage = stage
                execution.rollback_target = target.id
                execution.artifacts = dict(target.artifacts)
                execution.revisions = dict(target.revisions)
                execution.variables = list(target.variables)
            runs.executions[execution.id] = execution
            if client_token:
                runs.client_tokens[client_token] = execution.id
        self.events.emit(pipeline_event(execution, "STARTED"))
        threading.Thread(
            target=self._run, args=(runs, execution), name=f"execution-{execution.id}", daemon=True
        ).start()
        return execution

    # --------------------------------------------------------------- run --

    def _run(self, runs: PipelineRuns, execution: Execution) -> None:
        stages = [
            s for s in execution.declaration["stages"] if execution.rollback_stage in (None, s["name"])
        ]
        try:
            for stage in stages:
                entered = runs.lanes.enter(stage["name"], execution)
                if entered == lane.SUPERSEDED:
                    newer = runs.lanes.overtaken_by(execution)
                    self._finish(execution, SUPERSEDED, f"Superseded by execution {newer}")
                    return
                if entered == lane.STOPPED:
                    self._finish(execution, STOPPED)
                    return
                try:
                    succeeded = self._run_stage(runs, execution, stage)
                finally:
                    runs.lanes.leave(stage["name"], execution)
                if not succeeded:
                    if execution.stop is not None:
                        self._finish(execution, STOPPED)
                    else:
                        self._finish(execution, FAILED, f"Stage {stage['name']} failed")
                        self._roll_back(runs, execution, stage)
                    return
                if execution.stop is not None:
                    self._finish(execution, STOPPED)
                    return
            self._finish(execution, SUCCEEDED)
        except Exception as error:  # the emulator's own fault: the execution fails, visibly
            log.exception("execution %s of %s", execution.id, execution.pipeline_name)
            self._finish(execution, FAILED, f"The emulator failed running the execution: {error}")

    def _run_stage(self, runs: PipelineRuns, execution: Execution, stage: dict[str, Any]) -> bool:
        name = stage["name"]
        stage_run = StageRun(execution.id, name, execution.type)
        with self.lock:
            execution.stages[name] = stage_run
            runs.stage_latest[name] = stage_run
        self.events.emit(stage_event(execution, name, "STARTED"))
        blocking = self._blocking_alarm(execution, stage)
        if blocking is not None:
            log.info("stage %s of %s not entered: %s", name, execution.pipeline_name, blocking)
            with self.lock:
                stage_run.status = FAILED
            self.events.emit(stage_event(execution, name, EVENT_STATES[FAILED]))
            return False
        actions = stage.get("actions", [])
        orders = sorted({a.get("runOrder", 1) for a in actions})
        outcome = SUCCEEDED
        for order in orders:
            if execution.stop is not None:
                outcome = STOPPED
                break
            group = [self._begin(runs, execution, name, a) for a in actions if a.get("runOrder", 1) == order]
            threads = [
                threading.Thread(target=self._perform, args=(execution, run), daemon=True) for run in group
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if any(run.status == ABANDONED for run in group):
                outcome = STOPPED
                break
            if any(run.status != SUCCEEDED for run in group):
                outcome = FAILED
                break
        with self.lock:
            stage_run.status = outcome
        self.events.emit(stage_event(execution, name, EVENT_STATES[outcome]))
        return outcome == SUCCEEDED

    def _blocking_alarm(self, execution: Execution, stage: dict[str, Any]) -> str | None:
        """Why the stage's entry condition fails on an alarm, if it does."""
        alarms = cloudwatch_backends[execution.account][execution.region].alarms
        for condition in (stage.get("beforeEntry") or {}).get("conditions", []):
            for rule in condition.get("rules", []):
                if rule.get("ruleTypeId", {}).get("provider") != "CloudWatchAlarm":
                    continue
                name = rule.get("configuration", {}).get("AlarmName", "")
                alarm = alarms.get(name)
                if alarm is None:
                    return f"alarm {name} does not exist"
                if alarm.state_value == "ALARM":
                    return f"alarm {name} is in ALARM"
        return None

    def _begin(self, runs: PipelineRuns, execution: Execution, stage: str, action: dict[str, Any]) -> ActionRun:
        region = action.get("region") or execution.region
        with self.lock:
            inputs = [
                execution.artifacts[a["name"]]
                for a in action.get("inputArtifacts", [])
                if a["name"] in execution.artifacts
            ]
            run = ActionRun(execution.id, execution.version, stage, action, region, inputs)
            execution.actions.append(run)
            runs.action_latest[(stage, action["name"])] = run
        self.events.emit(action_event(execution, run, "STARTED"))
        return run

    def _perform(self, execution: Execution, run: ActionRun) -> None:
        type_id = run.declaration["actionTypeId"]
        handler = self.handlers.get((type_id["category"], type_id["owner"], type_id["provider"]))
        try:
            if handler is None:
                outcome = Outcome.failure(
                    "ActionTypeNotSupported",
                    f"The emulator does not run {type_id['owner']} {type_id['category']} actions "
                    f"of provider {type_id['provider']}",
                )
            else:
                credentials = self._credentials(execution, run)
                store = store_for(execution.declaration, run.region)
                missing = self._localise_inputs(execution, run, credentials, store)
                outcome = missing or handler(ActionContext(self, execution, run, credentials, store))
        except AwsError as error:
            outcome = Outcome.failure(error.code, error.message)
        except Exception as error:  # the emulator's own fault, shown on the action
            log.exception("action %s of execution %s", run.name, execution.id)
            outcome = Outcome.failure("InternalError", f"The emulator failed running the action: {error}")
        self._complete(execution, run, outcome)

    def _credentials(self, execution: Execution, run: ActionRun) -> SessionCredentials:
        """The pipeline role's session, as CodePipeline gets it for each job;
        an action with its own roleArn gets that role, assumed from it."""
        role = execution.declaration["roleArn"]
        session = self.app.loopback.assume(
            PIPELINES, role, execution.id, source_arn=execution.pipeline_arn, account=execution.account
        )
        action_role = run.declaration.get("roleArn")
        run.role_arn = action_role or role
        if not action_role:
            return session
        sts = self.app.loopback.client("sts", run.region, session)
        try:
            assumed = sts.assume_role(RoleArn=action_role, RoleSessionName=execution.id)
        except ClientError as error:
            raise as_aws_error(error) from error
        keys = assumed["Credentials"]
        return SessionCredentials(
            keys["AccessKeyId"], keys["SecretAccessKey"], keys["SessionToken"], assumed["AssumedRoleUser"]["Arn"]
        )

    def _localise_inputs(
        self, execution: Execution, run: ActionRun, credentials: SessionCredentials, store: Store
    ) -> Outcome | None:
        """Every input artifact in the action's region: one made elsewhere is
        copied to this region's store first. A failure when one is missing."""
        names = [a["name"] for a in run.declaration.get("inputArtifacts", [])]
        found = {a.name for a in run.inputs}
        missing = [n for n in names if n not in found]
        if missing:
            return Outcome.failure(
                "InvalidStructureException", f"No action before {run.name} produced {', '.join(missing)}"
            )
        localised = []
        for artifact in run.inputs:
            if artifact.region != run.region:
                body = self.objects.get(credentials, artifact)
                key = new_key(execution.pipeline_name, artifact.name)
                self.objects.put(credentials, store, key, body)
                artifact = Artifact(
                    artifact.name, store.region, store.bucket, key, artifact.revision, artifact.revision_summary
                )
            localised.append(artifact)
        with self.lock:
            run.inputs = localised
        return None

    def _complete(self, execution: Execution, run: ActionRun, outcome: Outcome) -> None:
        with self.lock:
            if run.abandoned:
                return  # stop() recorded it and sent its event
            status = SUCCEEDED if outcome.succeeded else FAILED
            run.finish(
                status,
                summary=outcome.summary,
                error=outcome.error,
                external_id=outcome.external_id,
                external_url=outcome.external_url,
                outputs=outcome.outputs,
                variables=outcome.variables,
                updated_by=outcome.updated_by,
                token=None,
            )
            if outcome.succeeded:
                for artifact in outcome.outputs:
                    execution.artifacts[artifact.name] = artifact
                    if run.is_source:
                        execution.revisions[run.name] = artifact
        self.events.emit(action_event(execution, run, EVENT_STATES[status]))

    def _finish(self, execution: Execution, status: str, summary: str | None = None) -> None:
        with self.lock:
            if execution.stop is not None and status == STOPPED and execution.stop.reason:
                summary = summary or execution.stop.reason
            execution.set_status(status, summary)
        self.events.emit(pipeline_event(execution, EVENT_STATES[status]))

    def _roll_back(self, runs: PipelineRuns, execution: Execution, stage: dict[str, Any]) -> None:
        if (stage.get("onFailure") or {}).get("result") != "ROLLBACK":
            return
        if execution.type == ROLLBACK or execution.mode == "PARALLEL":
            return
        name = stage["name"]
        with self.lock:
            target = next(
                (
                    e
                    for e in reversed(list(runs.executions.values()))
                    if e is not execution
                    and e.type == STANDARD
                    and e.version == execution.version
                    and e.stages.get(name) is not None
                    and e.stages[name].status == SUCCEEDED
                ),
                None,
            )
        if target is None:
            log.info("stage %s of %s failed with nothing to roll back to", name, execution.pipeline_name)
            return
        self.start(
            execution.account,
            execution.region,
            execution.pipeline_name,
            {"triggerType": "AutomatedRollback", "triggerDetail": execution.id},
            rollback=(name, target),
        )

    # ------------------------------------------------- decisions, stops --

    def put_approval(
        self, runs: PipelineRuns, stage: str, action: str, token: str, status: str, summary: str, reviewer: str
    ) -> float:
        declaration = runs.model.pipeline
        stage_declaration = next((s for s in declaration["stages"] if s["name"] == stage), None)
        if stage_declaration is None:
            raise AwsError("StageNotFoundException", f"Stage {stage} does not exist in pipeline {declaration['name']}")
        if not any(a["name"] == action for a in stage_declaration.get("actions", [])):
            raise AwsError("ActionNotFoundException", f"Action {action} does not exist in stage {stage}")
        with self.lock:
            runs_with_token = [
                run
                for execution in runs.executions.values()
                for run in execution.actions
                if run.stage == stage and run.name == action and run.token == token
            ]
            waiting = next((r for r in runs_with_token if r.status == IN_PROGRESS and r.approval is None), None)
            if waiting is None:
                decided = any(
                    run.stage == stage and run.name == action and run.status != IN_PROGRESS
                    for execution in runs.executions.values()
                    for run in execution.actions
                )
                if runs_with_token or decided:
                    raise AwsError("ApprovalAlreadyCompletedException", "The approval request has already been completed")
                raise AwsError("InvalidApprovalTokenException", f"The token {token} is not the token of an open approval request for action {action}")
            waiting.approval = (status, summary, reviewer)
            waiting.wake.set()
        return time.time()

    def stop(self, runs: PipelineRuns, execution_id: str, abandon: bool, reason: str | None) -> None:
        execution = self.execution(runs, execution_id)
        with self.lock:
            if execution.done:
                raise AwsError(
                    "PipelineExecutionNotStoppableException",
                    f"Unable to stop pipeline execution {execution_id}: its status is {execution.status}",
                )
            previous = execution.stop
            if previous is not None and (previous.abandon or not abandon):
                raise AwsError(
                    "DuplicatedStopRequestException", f"Pipeline execution {execution_id} is already stopping"
                )
            execution.stop = StopRequest(abandon, reason)
            execution.set_status(STOPPING)
            abandoned = []
            if abandon:
                for run in execution.actions:
                    if run.status == IN_PROGRESS:
                        run.abandoned = True
                        run.finish(ABANDONED, token=None)
                        run.wake.set()
                        abandoned.append(run)
        if previous is None:
            self.events.emit(pipeline_event(execution, "STOPPING"))
        for run in abandoned:
            self.events.emit(action_event(execution, run, "ABANDONED"))
        runs.lanes.wake()

    # ------------------------------------------------------------- views --

    def state(self, runs: PipelineRuns) -> dict[str, Any]:
        declaration = runs.model.pipeline
        mode = _mode(declaration)
        with self.lock:
            stages = []
            for stage in declaration["stages"]:
                name = stage["name"]
                view: dict[str, Any] = {
                    "stageName": name,
                    "inboundTransitionState": {"enabled": True},
                    "actionStates": [self._action_state(runs, name, a) for a in stage.get("actions", [])],
                }
                if name in runs.stage_latest:
                    view["latestExecution"] = runs.stage_latest[name].view()
                waiting = [
                    {"pipelineExecutionId": e.id, "status": IN_PROGRESS, "type": e.type}
                    for e in runs.lanes.waiting(name)
                ]
                if waiting and mode == "QUEUED":
                    view["inboundExecutions"] = waiting
                elif waiting:
                    view["inboundExecution"] = waiting[-1]
                stages.append(view)
            return {
                "pipelineName": declaration["name"],
                "pipelineVersion": declaration.get("version", 1),
                "stageStates": stages,
                "created": _epoch(runs.model._created),
                "updated": _epoch(runs.model._updated),
            }

    def _action_state(self, runs: PipelineRuns, stage: str, action: dict[str, Any]) -> dict[str, Any]:
        view: dict[str, Any] = {"actionName": action["name"]}
        run = runs.action_latest.get((stage, action["name"]))
        if run is None:
            return view
        view["latestExecution"] = run.latest_view()
        revision = next((a for a in run.outputs if a.revision), None) if run.is_source else None
        if revision is not None:
            view["currentRevision"] = {
                "revisionId": revision.revision,
                "revisionChangeId": revision.revision,
                "created": revision.created,
            }
        return view


def _mode(declaration: dict[str, Any]) -> str:
    return declaration.get("executionMode") or "SUPERSEDED"


def _epoch(moment: datetime) -> float:
    # moto keeps naive datetimes in UTC.
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def _resolve_variables(declaration: dict[str, Any], given: list[dict[str, str]]) -> list[dict[str, str]]:
    """Pipeline-level variables: declared defaults, overridden at start."""
    declared = {v["name"]: v.get("defaultValue") for v in declaration.get("variables") or []}
    values = {name: value for name, value in declared.items() if value is not None}
    for variable in given:
        if variable["name"] not in declared:
            raise AwsError(
                "ValidationException", f"Variable {variable['name']} is not declared in pipeline {declaration['name']}"
            )
        values[variable["name"]] = variable["value"]
    missing = [name for name in declared if name not in values]
    if missing:
        raise AwsError("ValidationException", f"Variables without a default need a value: {', '.join(missing)}")
    return [{"name": name, "value": value} for name, value in values.items()]
