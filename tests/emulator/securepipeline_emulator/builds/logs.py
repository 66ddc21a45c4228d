"""A build's log: CodeBuild's `[Container]` lines and the commands' output,
with secret values masked, written to the project's CloudWatch Logs stream
under the project's role."""

from __future__ import annotations

import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any

MASK = "***"
# PutLogEvents takes at most 10,000 events; send well before that, and at
# least every second so a build can be watched while it runs.
_BATCH = 500
_FLUSH_EVERY_S = 1.0


class LogStreamDenied(Exception):
    """The project's role may not create the build's log stream."""


class BuildLog:
    def __init__(self, client: Any | None, group: str, stream: str) -> None:
        """`client` is a CloudWatch Logs client with the project role's
        session, or None when the project's CloudWatch logs are disabled."""
        self.client = client
        self.group = group
        self.stream = stream
        self._masks: list[str] = []
        self._pending: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()
        self._sending = threading.Lock()  # batches reach the stream in order

    def open(self) -> None:
        """Create the stream (and the group, if missing, as CodeBuild does);
        LogStreamDenied with AWS's message when the role may not."""
        if self.client is None:
            return
        try:
            self.client.create_log_stream(logGroupName=self.group, logStreamName=self.stream)
        except self.client.exceptions.ResourceNotFoundException:
            try:
                self.client.create_log_group(logGroupName=self.group)
                self.client.create_log_stream(logGroupName=self.group, logStreamName=self.stream)
            except Exception as error:  # botocore's ClientError and connection errors alike
                raise LogStreamDenied(str(error)) from error
        except Exception as error:  # botocore's ClientError and connection errors alike
            raise LogStreamDenied(str(error)) from error

    def mask(self, value: str) -> None:
        """Never write `value` again: it is a secret's."""
        if value:
            with self._lock:
                self._masks.append(value)
                self._masks.sort(key=len, reverse=True)  # longest first: no partial reveals

    def masked(self, text: str) -> str:
        with self._lock:
            masks = list(self._masks)
        for value in masks:
            text = text.replace(value, MASK)
        return text

    def container(self, message: str) -> None:
        """A line of CodeBuild's own, as its agent prints them."""
        now = datetime.now(timezone.utc).strftime("%Y/%m/%d %H:%M:%S.%f")
        self.output(f"[Container] {now} {message}")

    def output(self, line: str) -> None:
        # CloudWatch Logs refuses an empty message: a blank line is a newline.
        message = self.masked(line) or "\n"
        with self._lock:
            self._pending.append({"timestamp": int(time.time() * 1000), "message": message})
            due = len(self._pending) >= _BATCH
        if due:
            self.flush()
        else:
            self.flush_if_due()

    def flush_if_due(self) -> None:
        """Send what is pending once a second: lines show up while a quiet
        command still runs."""
        with self._lock:
            due = self._pending and time.monotonic() - self._last_flush >= _FLUSH_EVERY_S
        if due:
            self.flush()

    def flush(self) -> None:
        with self._sending:
            with self._lock:
                events, self._pending = self._pending, []
                self._last_flush = time.monotonic()
            if events and self.client is not None:
                self._send(events)

    def _send(self, events: list[dict[str, Any]]) -> None:
        try:
            self.client.put_log_events(logGroupName=self.group, logStreamName=self.stream, logEvents=events)
        except Exception as error:  # the build goes on without these lines, as on AWS
            print(f"build log {self.group}/{self.stream}: {len(events)} lines lost: {error}", file=sys.stderr)
