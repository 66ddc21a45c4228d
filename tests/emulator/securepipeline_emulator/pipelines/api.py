"""CodePipeline's execution operations on the JSON 1.1 wire protocol.

These replace moto's (which marks every execution Succeeded at once);
CreatePipeline, GetPipeline and the rest of the service stay with moto.
Input is validated against the service model and errors carry CodePipeline's
codes (jsonapi.py).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from ..enforcement import principal_of
from ..jsonapi import Handler, json_operation
from ..wire import AwsError, AwsRequest
from .model import Execution
from .targets import EVENT_RULE_HEADER
from .triggers import SOURCE_PROVIDER

if TYPE_CHECKING:
    from .engine import PipelineRunner

DEFAULT_PAGE = 100


class PipelinesApi:
    def __init__(self, runner: "PipelineRunner") -> None:
        self.runner = runner
        wrap = json_operation("codepipeline")
        self.operations: dict[tuple[str, str], Handler] = {
            ("codepipeline", name): wrap(operation)
            for name, operation in {
                "StartPipelineExecution": self.start_pipeline_execution,
                "GetPipelineState": self.get_pipeline_state,
                "GetPipelineExecution": self.get_pipeline_execution,
                "ListPipelineExecutions": self.list_pipeline_executions,
                "ListActionExecutions": self.list_action_executions,
                "PutApprovalResult": self.put_approval_result,
                "StopPipelineExecution": self.stop_pipeline_execution,
            }.items()
        }

    def start_pipeline_execution(self, request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
        name = params["name"]
        runs = self.runner.runs(request.account, request.region, name)
        rule = request.headers.get(EVENT_RULE_HEADER)
        if rule:
            trigger = {"triggerType": "CloudWatchEvent", "triggerDetail": rule}
        else:
            trigger = {"triggerType": "StartPipelineExecution", "triggerDetail": caller(request)}
        overrides = _source_overrides(runs.model.pipeline, params.get("sourceRevisions") or [])
        execution = self.runner.start(
            request.account,
            request.region,
            name,
            trigger,
            variables=params.get("variables"),
            client_token=params.get("clientRequestToken"),
            source_overrides=overrides,
        )
        return {"pipelineExecutionId": execution.id}

    def get_pipeline_state(self, request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
        return self.runner.state(self.runner.runs(request.account, request.region, params["name"]))

    def get_pipeline_execution(self, request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
        runs = self.runner.runs(request.account, request.region, params["pipelineName"])
        execution = self.runner.execution(runs, params["pipelineExecutionId"])
        with self.runner.lock:
            return {"pipelineExecution": execution.view()}

    def list_pipeline_executions(self, request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
        runs = self.runner.runs(request.account, request.region, params["pipelineName"])
        succeeded_in = ((params.get("filter") or {}).get("succeededInStage") or {}).get("stageName")
        with self.runner.lock:
            executions: list[Execution] = sorted(runs.executions.values(), key=lambda e: -e.seq)
            if succeeded_in:
                executions = [
                    e for e in executions if succeeded_in in e.stages and e.stages[succeeded_in].status == "Succeeded"
                ]
            views = [e.summary_view() for e in executions]
        return _page(views, params, "pipelineExecutionSummaries")

    def list_action_executions(self, request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
        runs = self.runner.runs(request.account, request.region, params["pipelineName"])
        wanted = params.get("filter") or {}
        execution_id = wanted.get("pipelineExecutionId") or (wanted.get("latestInPipelineExecution") or {}).get(
            "pipelineExecutionId"
        )
        with self.runner.lock:
            if execution_id:
                executions = [self.runner.execution(runs, execution_id)]
            else:
                executions = list(runs.executions.values())
            action_runs = sorted((r for e in executions for r in e.actions), key=lambda r: -r.started)
            if wanted.get("latestInPipelineExecution"):
                latest: dict[tuple[str, str], Any] = {}
                for run in action_runs:
                    latest.setdefault((run.stage, run.name), run)
                action_runs = list(latest.values())
            views = [r.detail_view() for r in action_runs]
        return _page(views, params, "actionExecutionDetails")

    def put_approval_result(self, request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
        runs = self.runner.runs(request.account, request.region, params["pipelineName"])
        result = params["result"]
        approved_at = self.runner.put_approval(
            runs,
            params["stageName"],
            params["actionName"],
            params["token"],
            result["status"],
            result["summary"],
            caller(request),
        )
        return {"approvedAt": approved_at}

    def stop_pipeline_execution(self, request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
        runs = self.runner.runs(request.account, request.region, params["pipelineName"])
        execution_id = params["pipelineExecutionId"]
        self.runner.stop(runs, execution_id, bool(params.get("abandon")), params.get("reason"))
        return {"pipelineExecutionId": execution_id}


def caller(request: AwsRequest) -> str:
    """The ARN of whoever signed the request (the account root for the
    emulator's own credentials)."""
    principal = principal_of(request)
    return principal.arn if principal else f"arn:aws:iam::{request.account}:root"


def _source_overrides(declaration: dict[str, Any], revisions: list[dict[str, str]]) -> dict[str, tuple[str, str]]:
    """sourceRevisions as (branch, commit) per source action."""
    sources = {
        action["name"]: action
        for stage in declaration.get("stages", [])
        for action in stage.get("actions", [])
        if action.get("actionTypeId", {}).get("provider") == SOURCE_PROVIDER
    }
    overrides = {}
    for revision in revisions:
        action = sources.get(revision["actionName"])
        if action is None:
            raise AwsError(
                "ValidationException", f"{revision['actionName']} is not a connection source action of the pipeline"
            )
        if revision["revisionType"] != "COMMIT_ID":
            raise AwsError(
                "ValidationException",
                f"revisionType {revision['revisionType']} does not apply to a CodeStarSourceConnection action; use COMMIT_ID",
            )
        branch = action.get("configuration", {}).get("BranchName", "")
        overrides[revision["actionName"]] = (branch, revision["revisionValue"])
    return overrides


def _page(items: list[dict[str, Any]], params: dict[str, Any], key: str) -> dict[str, Any]:
    start = _offset(params.get("nextToken"))
    size = params.get("maxResults") or DEFAULT_PAGE
    result: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        result["nextToken"] = base64.urlsafe_b64encode(f"offset:{start + size}".encode()).decode()
    return result


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        prefix, _, offset = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if prefix == "offset" and offset.isdigit():
            return int(offset)
    except ValueError:
        pass
    raise AwsError("InvalidNextTokenException", "The next token is not valid")
