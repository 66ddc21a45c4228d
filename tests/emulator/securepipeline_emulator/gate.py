"""Holding chosen calls open, so a test can interrupt a client while one of
its requests is in flight at AWS.

`hold(service, operation)` makes every matching request wait before it is
handled; `release()` lets the waiting ones (and later ones) through. While
held, a request has been received and recorded but not yet answered: the
state a client is in when it is interrupted mid-call.
"""

from __future__ import annotations

import threading

# A held request waits at most this long, so a test that forgets to release
# cannot wedge the emulator.
MAX_HOLD_S = 120.0


class Gate:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: set[tuple[str, str]] = set()
        self._open = threading.Event()
        self._open.set()
        self._waiting = 0

    def hold(self, service: str, operation: str) -> None:
        with self._lock:
            self._held.add((service, operation))
            self._open.clear()

    def release(self) -> None:
        with self._lock:
            self._held.clear()
            self._open.set()

    def waiting(self) -> int:
        """How many requests are held right now."""
        with self._lock:
            return self._waiting

    def pass_through(self, service: str, operation: str) -> None:
        """Blocks while this call is held."""
        with self._lock:
            if (service, operation) not in self._held:
                return
            self._waiting += 1
        try:
            self._open.wait(MAX_HOLD_S)
        finally:
            with self._lock:
                self._waiting -= 1
