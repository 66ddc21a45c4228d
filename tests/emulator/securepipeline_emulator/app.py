"""The WSGI application: our middleware in front of moto's server app.

Every AWS request is recorded, then either handled here (services moto lacks,
operations it gets wrong) or passed to moto unchanged. Handlers that only need
to correct moto call it themselves through `forward` and adjust the result.
When fault injection is on (faults.py), a call may instead fail as AWS calls
fail, before or after it is carried out.

Admin endpoints live under `/_emulator/`: a leading underscore is not allowed
in an S3 bucket name, so they can never shadow a path-style bucket request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.wrappers import Response

from . import fixes
from .builds import BuildRunner
from .builds import api as builds_api
from .connections import ConnectionsApi, ConnectionStore
from .enforcement import Enforcer
from .gate import Gate
from .loopback import Loopback
from .pipelines import PipelineRunner
from .faults import (
    FaultInjector,
    FaultPlan,
    FaultSpecError,
    drop_connection,
    error_for,
    error_response,
    request_digest,
)
from .recorder import CallRecorder
from .wire import AwsError, AwsRequest, buffer_body, json_error

ADMIN_PREFIX = "/_emulator/"

Forward = Callable[[AwsRequest], Response]
Handler = Callable[[AwsRequest, Forward], Response]


class EmulatorApp:
    def __init__(self, faults: FaultPlan | None = None, enforce_iam: bool | None = None) -> None:
        fixes.apply_patches()
        self.moto = DomainDispatcherApplication(create_backend_app)
        self.recorder = CallRecorder()
        self.gate = Gate()
        self.faults = FaultInjector(faults)
        self.connections = ConnectionStore()
        # IAM enforcement; None reads the SECUREPIPELINE_ENFORCE_IAM switch.
        self.enforcer = Enforcer(enforce_iam)
        # How the emulator's own services (pipeline runs, builds) call AWS.
        self.loopback = Loopback(self.enforcer)
        # CodeBuild builds, run for real under their project's role.
        self.builds = BuildRunner(self.loopback)
        # Whole services we implement, keyed by SigV4 signing name.
        self.services: dict[str, Handler] = {
            "codestar-connections": ConnectionsApi(
                self.connections, "codestar-connections", "codestar-connections"
            ),
            "codeconnections": ConnectionsApi(
                self.connections, "codeconnections", "codeconnections"
            ),
        }
        # Single operations we add to or correct in moto.
        self.operations: dict[tuple[str, str], Handler] = dict(fixes.HANDLERS)
        self.operations.update(builds_api.handlers(self.builds))
        # Executions of the pipelines the provider created.
        self.pipelines = PipelineRunner(self)
        self.operations.update(self.pipelines.operations)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(ADMIN_PREFIX):
            return self.admin(environ)(environ, start_response)
        request = AwsRequest.from_environ(environ)
        decision = self.faults.decide(request)
        digest = request_digest(request)
        call = self.recorder.record(
            request.service,
            request.operation,
            request.region,
            fault=decision.kind if decision else None,
            request_digest=digest,
        )
        self.gate.pass_through(request.service, request.operation)
        if decision is not None and decision.kind in ("throttle", "error"):
            return error_response(error_for(decision, request), request)(environ, start_response)
        if decision is not None and decision.kind == "reset":
            drop_connection(environ)
            return Response(b"")(environ, start_response)
        propagation = self.faults.propagation_error(request)
        if propagation is not None:
            self.recorder.mark_fault(call, "propagation", digest)
            return json_error(propagation)(environ, start_response)
        creates_role = (request.service, request.operation) == ("iam", "CreateRole")
        if decision is None and not (creates_role and self.faults.tracks_roles):
            return self.dispatch(request, environ, start_response)
        # Carried out in full before deciding what the client gets.
        response = Response.from_app(
            lambda env, start: self.dispatch(request, env, start), environ, buffered=True
        )
        if creates_role and response.status_code == 200:
            self.faults.role_created(_role_arn(request))
        if decision is not None:  # "lost": the write happened, the answer never arrives
            drop_connection(environ)
            return Response(b"")(environ, start_response)
        return response(environ, start_response)

    def dispatch(self, request: AwsRequest, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        denied = self.enforcer.authorize(request)
        if denied is not None:
            return denied(environ, start_response)
        handler = self.services.get(request.service) or self.operations.get(
            (request.service, request.operation)
        )
        if handler is None:
            return self.moto(environ, _json_content_type(request, start_response))
        return handler(request, self.forward)(environ, start_response)

    def forward(self, request: AwsRequest) -> Response:
        """Run a request through moto and hand back its buffered response."""
        request.environ["wsgi.input"].seek(0)
        return Response.from_app(self.moto, request.environ, buffered=True)

    # ------------------------------------------------------------- admin --

    def admin(self, environ: dict[str, Any]) -> Response:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ["PATH_INFO"][len(ADMIN_PREFIX) :]
        try:
            if path == "calls" and method == "GET":
                return _json(self.recorder.calls())
            if path == "calls/reset" and method == "POST":
                self.recorder.reset()
                return _json({"reset": True})
            if path == "hold" and method == "POST":
                return self._hold(environ)
            if path == "release" and method == "POST":
                self.gate.release()
                return _json({"released": True})
            if path == "held" and method == "GET":
                return _json({"waiting": self.gate.waiting()})
            if path == "faults" and method == "POST":
                return self._set_faults(environ)
            if path.startswith("enforcement") or path.startswith("decisions"):
                return self._enforcement(environ, method, path)
            if path.startswith("connections/") and path.endswith("/status") and method == "POST":
                return self._set_connection_status(environ, path)
            if path.startswith(builds_api.ADMIN_PREFIXES):
                return builds_api.admin(self.builds, method, path, environ)
            if self.pipelines.admin.serves(path):
                return self.pipelines.admin(environ, method, path)
        except AwsError as error:
            return _json({"error": error.code, "message": error.message}, error.status)
        return _json({"error": "NotFound", "message": f"no admin endpoint {method} /{path}"}, 404)

    def _enforcement(self, environ: dict[str, Any], method: str, path: str) -> Response:
        enforcer = self.enforcer
        if path == "enforcement" and method == "GET":
            return _json({"enabled": enforcer.enabled})
        if path == "enforcement" and method == "POST":
            enabled = _body(environ).get("enabled")
            if not isinstance(enabled, bool):
                raise AwsError("ValidationException", 'body must be {"enabled": true}')
            enforcer.enabled = enabled
            return _json({"enabled": enabled})
        if path == "enforcement/assume-role" and method == "POST":
            return _json(enforcer.assume_as_service(_body(environ)))
        if path == "enforcement/authorize" and method == "POST":
            return _json(enforcer.authorize_on_behalf(_body(environ)))
        if path == "decisions" and method == "GET":
            return _json(enforcer.decisions())
        if path == "decisions/reset" and method == "POST":
            enforcer.reset()
            return _json({"reset": True})
        raise AwsError("NotFound", f"no admin endpoint {method} /{path}", 404)

    def _hold(self, environ: dict[str, Any]) -> Response:
        try:
            body = json.loads(buffer_body(environ) or b"{}")
        except ValueError:
            body = None
        if not (
            isinstance(body, dict)
            and isinstance(body.get("service"), str)
            and isinstance(body.get("operation"), str)
        ):
            raise AwsError(
                "ValidationException", 'body must be {"service": "codebuild", "operation": "CreateProject"}'
            )
        self.gate.hold(body["service"], body["operation"])
        return _json({"held": [body["service"], body["operation"]]})
    def _set_faults(self, environ: dict[str, Any]) -> Response:
        try:
            spec = json.loads(buffer_body(environ) or b"{}").get("spec")
        except (ValueError, AttributeError):
            spec = None
        if not isinstance(spec, str):
            raise AwsError("ValidationException", 'body must be {"spec": "rate=0.2,seed=7"}')
        try:
            plan = FaultPlan.parse(spec)
        except FaultSpecError as error:
            raise AwsError("ValidationException", f"faults: {error}") from error
        self.faults.configure(plan)
        return _json({"spec": spec})

    def _set_connection_status(self, environ: dict[str, Any], path: str) -> Response:
        # The ARN contains '/', so it may arrive encoded or not; either way it
        # is everything between the fixed prefix and suffix.
        arn = unquote(path[len("connections/") : -len("/status")])
        try:
            status = json.loads(buffer_body(environ) or b"{}").get("status")
        except (ValueError, AttributeError):
            status = None
        if not isinstance(status, str):
            raise AwsError("ValidationException", 'body must be {"status": "AVAILABLE"}')
        try:
            connection = self.connections.set_status(arn, status)
        except AwsError as error:
            if error.code == "ResourceNotFoundException":
                error.status = 404
            raise
        return _json(connection.describe())


def _role_arn(request: AwsRequest) -> str:
    path = (request.form.get("Path") or ["/"])[0]
    name = (request.form.get("RoleName") or [""])[0]
    return f"arn:aws:iam::{request.account}:role{path}{name}"


def _body(environ: dict[str, Any]) -> dict[str, Any]:
    try:
        body = json.loads(buffer_body(environ) or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise AwsError("ValidationException", "body must be a JSON object")
    return body


def _json_content_type(request: AwsRequest, start_response: Any) -> Any:
    """moto labels JSON-protocol responses text/html or application/json; AWS
    answers with the application/x-amz-json-1.x type the client sent. Strict
    clients dispatch on it, so we put it right on the way out."""
    sent = request.headers.get("Content-Type", "")
    if not (request.target and sent.startswith("application/x-amz-json-")):
        return start_response

    def relabel(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
        headers = [
            (name, sent if name.lower() == "content-type" else value) for name, value in headers
        ]
        return start_response(status, headers, *rest)

    return relabel


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, content_type="application/json")
