"""Fault injection: a chosen share of calls fails the way AWS fails.

Four transient kinds, each in the wire shape of the call's protocol:

- `throttle`: the service refuses the call for its rate (ThrottlingException
  on JSON services, Throttling on query services, SlowDown on S3). Nothing
  happened.
- `error`: an internal error or unavailability (HTTP 500/503). Nothing
  happened.
- `reset`: the connection is closed without a response, before the call
  reaches the service. Nothing happened, but the client cannot know.
- `lost`: the call is carried out, then the connection is closed instead of
  answering. The write happened; a client that repeats it blindly makes a
  second resource or meets its own first one.

Independently, `propagation=SECONDS` makes a just-created IAM role unusable
by CodeBuild and CodePipeline for that long, with the errors those services
answer while IAM propagates.

Whether a call fails is decided from the seed, the call's service,
operation and region, and how many calls of that operation came before, so a
seeded run meets the same faults at the same calls again (calls of one
operation that run concurrently may swap places).
"""

from __future__ import annotations

import hashlib
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Response

from .wire import AwsError, AwsRequest, json_error, request_id

KINDS = ("throttle", "error", "reset", "lost")


class FaultSpecError(ValueError):
    """A fault specification that cannot be read; the message says why."""


@dataclass(frozen=True)
class FaultPlan:
    """What to inject. Parsed from `rate=0.2,seed=7,...` (see README)."""

    rate: float = 0.0
    seed: int = 0
    kinds: tuple[str, ...] = KINDS
    # `service` or `service:Operation` entries; empty means every call.
    only: tuple[str, ...] = ()
    # At most this many faults in all (None: no limit).
    limit: int | None = None
    propagation_seconds: float = 0.0

    @classmethod
    def parse(cls, spec: str) -> "FaultPlan":
        values: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            key, sep, value = item.partition("=")
            if not sep:
                raise FaultSpecError(f"`{item}` is not key=value")
            try:
                if key == "rate":
                    values["rate"] = float(value)
                    if not 0.0 <= values["rate"] <= 1.0:
                        raise FaultSpecError("rate must be between 0 and 1")
                elif key == "seed":
                    values["seed"] = int(value)
                elif key == "kinds":
                    kinds = tuple(k for k in value.split("+") if k)
                    unknown = [k for k in kinds if k not in KINDS]
                    if unknown or not kinds:
                        raise FaultSpecError(f"kinds are {'+'.join(KINDS)}, not `{value}`")
                    values["kinds"] = kinds
                elif key == "only":
                    values["only"] = tuple(k for k in value.split("+") if k)
                elif key == "limit":
                    values["limit"] = int(value)
                elif key == "propagation":
                    values["propagation_seconds"] = float(value)
                else:
                    raise FaultSpecError(
                        f"unknown key `{key}`; use rate, seed, kinds, only, limit, propagation"
                    )
            except ValueError as error:
                if isinstance(error, FaultSpecError):
                    raise
                raise FaultSpecError(f"`{item}`: {error}") from error
        return cls(**values)

    def applies_to(self, service: str, operation: str) -> bool:
        return not self.only or service in self.only or f"{service}:{operation}" in self.only


@dataclass
class Decision:
    kind: str
    # Picks between a service's two server errors (500 or 503).
    unavailable: bool


class FaultInjector:
    """Decides per call whether and how it fails, and injects it."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self._lock = threading.Lock()
        self._seen: Counter[tuple[str, str, str]] = Counter()
        self._injected = 0
        self._roles_created: dict[str, float] = {}
        self.plan = plan or FaultPlan()
        # The latency model's role window (latency.py), when it is on: the
        # longer of the two applies.
        self.model_propagation_seconds = 0.0

    def configure(self, plan: FaultPlan) -> None:
        with self._lock:
            self.plan = plan
            self._seen.clear()
            self._injected = 0

    def decide(self, request: AwsRequest) -> Decision | None:
        plan = self.plan
        if plan.rate <= 0 or not plan.applies_to(request.service, request.operation):
            return None
        key = (request.service, request.operation, request.region)
        with self._lock:
            ordinal = self._seen[key]
            self._seen[key] += 1
            if plan.limit is not None and self._injected >= plan.limit:
                return None
            draw = random.Random(_digest(plan.seed, *key, str(ordinal)))
            if draw.random() >= plan.rate:
                return None
            self._injected += 1
        return Decision(kind=draw.choice(plan.kinds), unavailable=draw.random() < 0.5)

    # --------------------------------------------------- IAM propagation --

    @property
    def propagation_window(self) -> float:
        return max(self.plan.propagation_seconds, self.model_propagation_seconds)

    @property
    def tracks_roles(self) -> bool:
        return self.propagation_window > 0

    def role_created(self, role_arn: str) -> None:
        if self.tracks_roles:
            with self._lock:
                self._roles_created[role_arn] = time.monotonic()

    def propagation_error(self, request: AwsRequest) -> AwsError | None:
        """The error a service answers when it names a role IAM has not yet
        propagated to it; None when the call names no such role."""
        window = self.propagation_window
        if window <= 0 or not self._roles_created:
            return None
        role = _role_named(request)
        if role is None:
            return None
        with self._lock:
            created = self._roles_created.get(role)
        if created is None or time.monotonic() - created >= window:
            return None
        if request.service == "codebuild":
            return AwsError(
                "InvalidInputException",
                f"CodeBuild is not authorized to perform: sts:AssumeRole on {role}",
            )
        return AwsError(
            "InvalidStructureException",
            f"CodePipeline is not authorized to perform AssumeRole on role {role}",
        )


# Calls that name a role the service must assume at once, and where.
_ROLE_USERS = {
    ("codebuild", "CreateProject"): lambda body: body.get("serviceRole"),
    ("codebuild", "UpdateProject"): lambda body: body.get("serviceRole"),
    ("codepipeline", "CreatePipeline"): lambda body: (body.get("pipeline") or {}).get("roleArn"),
    ("codepipeline", "UpdatePipeline"): lambda body: (body.get("pipeline") or {}).get("roleArn"),
}


def _role_named(request: AwsRequest) -> str | None:
    pick = _ROLE_USERS.get((request.service, request.operation))
    if pick is None:
        return None
    try:
        role = pick(request.json)
    except (AwsError, AttributeError):
        return None
    return role if isinstance(role, str) else None


def _digest(seed: int, *parts: str) -> int:
    text = "\x1f".join((str(seed), *parts)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big")


# ------------------------------------------------------------- wire shapes --

# Query-protocol services answer with XML in this namespace.
_QUERY_NAMESPACES = {
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
    "sns": "http://sns.amazonaws.com/doc/2010-03-31/",
}


@dataclass
class WireError:
    code: str
    message: str
    status: int
    extra: dict[str, str] = field(default_factory=dict)


def error_for(decision: Decision, request: AwsRequest) -> WireError:
    """The throttling or server error this service sends, by protocol."""
    service = request.service
    if decision.kind == "throttle":
        if service == "s3":
            return WireError("SlowDown", "Please reduce your request rate.", 503)
        if request.target:
            return WireError("ThrottlingException", "Rate exceeded", 400)
        return WireError("Throttling", "Rate exceeded", 400)
    unavailable = decision.unavailable
    if service == "s3":
        if unavailable:
            return WireError("ServiceUnavailable", "Service is unable to handle request.", 503)
        return WireError("InternalError", "We encountered an internal error. Please try again.", 500)
    if service == "iam" and not unavailable:
        return WireError("ServiceFailure", "Service encountered an internal error.", 500)
    if service == "kms" and not unavailable:
        return WireError("KMSInternalException", "Internal service error.", 500)
    if unavailable:
        return WireError("ServiceUnavailable", "Service is unavailable.", 503)
    return WireError("InternalFailure", "The request processing has failed because of an unknown error.", 500)


def error_response(error: WireError, request: AwsRequest) -> Response:
    if request.target:
        version = request.headers.get("Content-Type", "").removeprefix("application/x-amz-json-") or "1.1"
        return json_error(AwsError(error.code, error.message, error.status), version=version)
    if request.service == "s3":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{error.code}</Code><Message>{error.message}</Message>"
            f"<RequestId>{request_id()[:16]}</RequestId><HostId>emulator</HostId></Error>"
        )
        if request.method == "HEAD":
            body = ""
        return Response(body, status=error.status, content_type="application/xml")
    namespace = _QUERY_NAMESPACES.get(request.service, "")
    kind = "Receiver" if error.status >= 500 else "Sender"
    body = (
        f'<ErrorResponse xmlns="{namespace}"><Error><Type>{kind}</Type>'
        f"<Code>{error.code}</Code><Message>{error.message}</Message></Error>"
        f"<RequestId>{request_id()}</RequestId></ErrorResponse>"
    )
    return Response(body, status=error.status, content_type="text/xml")


def drop_connection(environ: dict[str, Any]) -> None:
    """Close the client's connection without a response. The server's own
    attempt to answer afterwards fails as a dropped connection, quietly."""
    connection = environ.get("werkzeug.socket")
    if connection is None:
        return
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def request_digest(request: AwsRequest) -> str:
    """What identifies a request's content, so that its retry is recognised
    (signatures and dates differ between attempts; the content does not)."""
    parts = [
        request.service,
        request.region,
        request.method,
        request.path,
        request.environ.get("QUERY_STRING", ""),
    ]
    text = "\x1f".join(parts).encode() + b"\x1f" + request.body
    return hashlib.sha256(text).hexdigest()
