"""Every message published to an SNS topic, and who published it.

Tests and the end-to-end scenarios read what reached the topic (a failure
notification, an approval request) here, since nobody receives the mail.
Messages arrive two ways: a public SNS Publish call (an approval notifying
under the pipeline role), recorded once moto has accepted it; and
EventBridge delivering an event to a topic target as events.amazonaws.com.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from werkzeug.wrappers import Response

from ..enforcement import principal_of
from ..wire import AwsRequest


class Published:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []

    def record(self, topic_arn: str, subject: str | None, message: str, published_by: str) -> None:
        with self._lock:
            self._messages.append(
                {
                    "topicArn": topic_arn,
                    "subject": subject,
                    "message": message,
                    "publishedBy": published_by,
                    "time": time.time(),
                }
            )

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self._messages]

    def reset(self) -> None:
        with self._lock:
            self._messages.clear()

    def publish_handler(self, request: AwsRequest, forward: Any) -> Response:
        """SNS Publish, passed to moto, recorded when it was accepted."""
        response = forward(request)
        if response.status_code == 200:
            form = request.form
            topic = (form.get("TopicArn") or form.get("TargetArn") or [""])[0]
            if topic:
                principal = principal_of(request)
                self.record(
                    topic,
                    (form.get("Subject") or [None])[0],
                    (form.get("Message") or [""])[0],
                    principal.arn if principal else f"arn:aws:iam::{request.account}:root",
                )
        return response
