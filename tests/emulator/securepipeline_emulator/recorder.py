"""Records every AWS call that reaches the emulator.

Tests use the record to assert what the provider did, not only what state it
left behind: that a refresh made no writes, that an update touched only the
resources it had to, that nothing was retried needlessly. With fault
injection on, each call also says which fault it met, and whether it repeats
a request that met one before (a retry).
"""

from __future__ import annotations

import threading
from typing import Any

# Operations that only read, by AWS's own naming convention.
_READ_PREFIXES = ("Get", "List", "Describe", "Head", "BatchGet")


def is_write(operation: str) -> bool:
    """Best-effort: anything that is not a read by name may change state."""
    return not operation.startswith(_READ_PREFIXES)


class CallRecorder:
    def __init__(self) -> None:
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
    ) -> dict[str, Any]:
        """Records a call; the returned record may still be given its fault."""
        call: dict[str, Any] = {
            "service": service,
            "operation": operation,
            "write": is_write(operation),
            "region": region,
            "fault": fault,
            "retry": False,
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

    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(call) for call in self._calls]

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._faulted.clear()
