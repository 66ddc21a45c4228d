"""Records every AWS call that reaches the emulator.

Tests use the record to assert what the provider did, not only what state it
left behind: that a refresh made no writes, that an update touched only the
resources it had to, that nothing was retried needlessly. With fault
injection on, each call also says which fault it met, and whether it repeats
a request that met one before (a retry). Each call also carries when it
started and ended (seconds since the emulator started), the latency the
latency model gave it, and the name of what it addresses (`subject`), so that
a run's critical path can be computed from its record (critical_path.py).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .wire import AwsError, AwsRequest

# Operations that only read, by AWS's own naming convention.
_READ_PREFIXES = ("Get", "List", "Describe", "Head", "BatchGet")


def is_write(operation: str) -> bool:
    """Best-effort: anything that is not a read by name may change state."""
    return not operation.startswith(_READ_PREFIXES)


class CallRecorder:
    def __init__(self) -> None:
        self._epoch = time.monotonic()
        self._lock = threading.Lock()
        self._calls: list[dict[str, Any]] = []
        # Requests (by content) that met a fault: the next identical one is a retry.
        self._faulted: set[str] = set()

    def record(
        self,
        service: str,
        operation: str,
        region: str,
        fault: str | None = None,
        request_digest: str = "",
        subject: str | None = None,
    ) -> dict[str, Any]:
        """Records a call; the returned record may still be given its fault,
        and is given its end by `finish`."""
        call: dict[str, Any] = {
            "service": service,
            "operation": operation,
            "write": is_write(operation),
            "region": region,
            "fault": fault,
            "retry": False,
            "subject": subject,
            "start": self.now(),
            "end": None,
            "latency": 0.0,
        }
        with self._lock:
            if request_digest:
                call["retry"] = request_digest in self._faulted
                if fault:
                    self._faulted.add(request_digest)
            self._calls.append(call)
        return call

    def mark_fault(self, call: dict[str, Any], fault: str, request_digest: str) -> None:
        """A fault found after recording (IAM propagation)."""
        with self._lock:
            call["fault"] = fault
            if request_digest:
                self._faulted.add(request_digest)

    def now(self) -> float:
        return round(time.monotonic() - self._epoch, 6)

    def finish(self, call: dict[str, Any], latency: float) -> None:
        """The call was answered, after `latency` seconds of modelled AWS time."""
        with self._lock:
            call["end"] = self.now()
            call["latency"] = round(latency, 6)

    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(call) for call in self._calls]

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._faulted.clear()


# Where each API names the thing it acts on, by protocol: JSON members and
# query parameters, first match wins. S3 names its bucket in the path.
_JSON_SUBJECTS = (
    "logGroupName",
    "logGroupNamePrefix",
    "KeyId",
    "TargetKeyId",
    "AliasName",
    "Name",
    "Rule",
    "ConnectionArn",
    "ConnectionName",
    "ResourceArn",
    "ResourceARN",
    "resourceArn",
    "resourceArnList",
    "name",
    "names",
    "pipelineName",
)
_QUERY_SUBJECTS = ("RoleName", "TopicArn", "Name", "ResourceArn", "SubscriptionArn")


def subject_of(request: AwsRequest) -> str | None:
    """The name, id or ARN of what a call addresses, when it names one."""
    if request.service == "s3":
        bucket = request.path.lstrip("/").split("/", 1)[0]
        return bucket or None
    if request.target:
        try:
            body = request.json
        except AwsError:
            return None
        pipeline = body.get("pipeline")
        if isinstance(pipeline, dict) and isinstance(pipeline.get("name"), str):
            return pipeline["name"]
        for name in _JSON_SUBJECTS:
            value = body.get(name)
            if isinstance(value, list) and value and isinstance(value[0], str):
                return value[0]
            if isinstance(value, str) and value:
                return value
        return None
    form = request.form
    for name in _QUERY_SUBJECTS:
        values = form.get(name)
        if values and values[0]:
            return values[0]
    return None
