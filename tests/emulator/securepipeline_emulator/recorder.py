"""Records every AWS call that reaches the emulator.

Tests use the record to assert what the provider did, not only what state it
left behind: that a refresh made no writes, that an update touched only the
resources it had to, that nothing was retried needlessly.
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

    def record(self, service: str, operation: str, region: str) -> None:
        call = {
            "service": service,
            "operation": operation,
            "write": is_write(operation),
            "region": region,
        }
        with self._lock:
            self._calls.append(call)

    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(call) for call in self._calls]

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
