"""The container credentials endpoint: how a build's tools reach its role.

In CodeBuild, SDKs and CLIs in the build container get the project role's
session from the ECS credential provider at
`AWS_CONTAINER_CREDENTIALS_FULL_URI`, never from keys in the environment.
Shared-config profiles with `credential_source = EcsContainer` (which the
provider's deploy buildspecs write) depend on exactly that. Each build gets
a URL with a secret token of its own; it answers only while the build runs.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..loopback import Loopback, SessionCredentials

PATH_PREFIX = "container-credentials/"
# moto's AssumeRole sessions last an hour; a session with less left than
# this is renewed before it is served, as ECS renews ahead of expiry.
SESSION_SECONDS = 3600
_RENEW_WITHIN_S = 900


@dataclass
class _Grant:
    role_arn: str
    session_name: str
    source_arn: str
    credentials: SessionCredentials
    expires: float  # epoch seconds


class ContainerCredentials:
    """Tokens handed to running builds, each mapped to its project role."""

    def __init__(self, loopback: Loopback) -> None:
        self.loopback = loopback
        self._grants: dict[str, _Grant] = {}
        self._lock = threading.Lock()

    def issue(self, role_arn: str, session_name: str, source_arn: str) -> tuple[str, SessionCredentials]:
        """Assume the role as CodeBuild (AwsError when its trust policy
        refuses) and a fresh token serving that session."""
        credentials = self._assume(role_arn, session_name, source_arn)
        token = secrets.token_urlsafe(32)
        grant = _Grant(role_arn, session_name, source_arn, credentials, time.time() + SESSION_SECONDS)
        with self._lock:
            self._grants[token] = grant
        return token, credentials

    def url(self, token: str) -> str:
        return f"{self.loopback.endpoint}/_emulator/{PATH_PREFIX}{token}"

    def revoke(self, token: str) -> None:
        with self._lock:
            self._grants.pop(token, None)

    def serve(self, token: str) -> dict[str, Any] | None:
        """The ECS credential provider's answer for `token`, or None when no
        running build holds it."""
        with self._lock:
            grant = self._grants.get(token)
        if grant is None:
            return None
        if grant.expires - time.time() < _RENEW_WITHIN_S:
            grant.credentials = self._assume(grant.role_arn, grant.session_name, grant.source_arn)
            grant.expires = time.time() + SESSION_SECONDS
        expiration = datetime.fromtimestamp(grant.expires, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "AccessKeyId": grant.credentials.access_key_id,
            "SecretAccessKey": grant.credentials.secret_access_key,
            "Token": grant.credentials.session_token,
            "Expiration": expiration,
            "RoleArn": grant.role_arn,
        }

    def _assume(self, role_arn: str, session_name: str, source_arn: str) -> SessionCredentials:
        return self.loopback.assume("codebuild.amazonaws.com", role_arn, session_name, source_arn)
