"""Admin endpoints standing for what happens outside AWS.

- `POST repositories` registers a local git repository as the repository a
  connection reaches (`fullRepositoryId`);
- `POST repositories/push` is a push of a branch's current head (`branch`)
  or of a tag (`tag`): every pipeline with a connection source action on
  that repository decides, by its push triggers, whether it starts
  (triggers.py);
- `POST schedules/fire` is a scheduled rule's time arriving: its targets
  are invoked as EventBridge invokes them (targets.py);
- `GET published` / `POST published/reset`: messages published to SNS;
- `GET events`: every CodePipeline event and what became of it at each
  matching rule's targets.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from moto.events.models import events_backends
from werkzeug.wrappers import Response

from ..wire import AwsError, buffer_body
from .events import iso
from .targets import arn_parts
from .triggers import decide, source_actions

if TYPE_CHECKING:
    from .engine import PipelineRunner

PATHS = {"repositories", "repositories/push", "schedules/fire", "published", "published/reset", "events"}


class Admin:
    def __init__(self, runner: "PipelineRunner") -> None:
        self.runner = runner

    def serves(self, path: str) -> bool:
        return path in PATHS

    def __call__(self, environ: dict[str, Any], method: str, path: str) -> Response:
        runner = self.runner
        if path == "repositories" and method == "POST":
            body = _body(environ)
            return _json(runner.repositories.register(_text(body, "fullRepositoryId"), _text(body, "path")))
        if path == "repositories/push" and method == "POST":
            body = _body(environ)
            repository = _text(body, "fullRepositoryId")
            if ("tag" in body) == ("branch" in body):
                raise AwsError("ValidationException", "give exactly one of branch and tag")
            if "tag" in body:
                return _json(self.push(repository, tag=_text(body, "tag")))
            return _json(self.push(repository, branch=_text(body, "branch")))
        if path == "schedules/fire" and method == "POST":
            return self.fire(_text(_body(environ), "ruleArn"))
        if path == "published" and method == "GET":
            return _json(runner.published.messages())
        if path == "published/reset" and method == "POST":
            runner.published.reset()
            return _json({"reset": True})
        if path == "events" and method == "GET":
            return _json(runner.events.log())
        raise AwsError("NotFound", f"no admin endpoint {method} /{path}", 404)

    def push(self, repository: str, branch: str = "", tag: str = "") -> dict[str, Any]:
        runner = self.runner
        if tag:
            push = runner.repositories.push_tag(repository, tag)
            pushed = f"tag {tag}"
        else:
            push = runner.repositories.push(repository, branch)
            pushed = branch
        started, skipped = [], []
        for account, region, model in runner.all_pipelines():
            declaration = model.pipeline
            name = declaration["name"]
            if push is None:
                if any(source_actions(declaration, repository)):
                    skipped.append({"pipeline": name, "reason": f"the push of {pushed} carries no new commit"})
                continue
            decision = decide(declaration, push)
            if not decision.starts:
                if any(source_actions(declaration, repository)):
                    skipped.append({"pipeline": name, "reason": decision.reason})
                continue
            action = next(
                a for a in source_actions(declaration, repository) if a["name"] == decision.source_action
            )
            status = _connection_status(runner, action["configuration"].get("ConnectionArn", ""))
            if status != "AVAILABLE":
                # AWS delivers a repository's pushes only through an available connection.
                skipped.append({"pipeline": name, "reason": f"its connection is {status}, not AVAILABLE"})
                continue
            execution = runner.start(
                account,
                region,
                name,
                {"triggerType": "WebhookV2", "triggerDetail": action["configuration"].get("ConnectionArn", "")},
                # A tag's execution reads the tagged commit; the source's
                # branch variable stays the action's own branch.
                source_overrides={
                    action["name"]: (branch or action["configuration"].get("BranchName", ""), push.commit)
                },
            )
            started.append({"pipeline": name, "executionId": execution.id})
        return {"started": started, "skipped": skipped}

    def fire(self, rule_arn: str) -> Response:
        """Invoke the rule's targets with EventBridge's scheduled event."""
        service, region, account, resource = arn_parts(rule_arn)
        path = resource.split("/")
        if service != "events" or path[0] != "rule" or len(path) not in (2, 3):
            raise AwsError("ValidationException", f"{rule_arn} is not an EventBridge rule ARN")
        bus = path[1] if len(path) == 3 else "default"
        event_bus = events_backends[account][region].event_buses.get(bus)
        rule = event_bus.rules.get(path[-1]) if event_bus is not None else None
        if rule is None:
            raise AwsError("ResourceNotFoundException", f"Rule {path[-1]} does not exist on event bus {bus}.", 404)
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": account,
            "time": iso(time.time()),
            "region": region,
            "resources": [rule_arn],
            "detail": {},
        }
        started, failures = [], []
        for target in list(rule.targets):
            try:
                execution_id = self.runner.targets.invoke(rule_arn, target, event)
            except AwsError as error:
                failures.append(error)
                continue
            if execution_id:
                started.append({"pipeline": arn_parts(target["Arn"])[3], "executionId": execution_id})
        if failures:
            first = failures[0]
            denied = first.code.startswith("AccessDenied") or first.code == "AuthorizationError"
            return _json(
                {"error": first.code, "message": first.message, "started": started},
                403 if denied else first.status,
            )
        return _json({"started": started})


def _body(environ: dict[str, Any]) -> dict[str, Any]:
    try:
        body = json.loads(buffer_body(environ) or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise AwsError("ValidationException", "body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise AwsError("ValidationException", f"{name} is required (a string)")
    return value


def _connection_status(runner: Any, arn: str) -> str:
    try:
        return runner.app.connections.get(arn).status
    except AwsError:
        return "missing"


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, content_type="application/json")
