"""The emulator calling itself the way an AWS service calls AWS.

When CodePipeline or CodeBuild act (reading an artifact, resolving a secret,
writing a log event), they do so with the credentials of the role they were
given, through the same public APIs a customer uses. The emulator's own
services do the same: they assume the role as the service principal (so the
trust policy is checked) and call the emulator's endpoint over loopback with
those credentials, so IAM enforcement, the recorder and moto see exactly the
calls AWS would see.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from .enforcement import Enforcer
from .wire import DEFAULT_ACCOUNT_ID, AwsError

# The emulator's own calls are never retried by the client: a failure is an
# outcome the caller records (a failed action), not something to hide.
_CLIENT_CONFIG = Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"})
# boto3's default session is not safe to create clients from on several
# threads at once (concurrent builds and pipeline runs do); the clients are.
_CLIENT_LOCK = threading.Lock()


@dataclass(frozen=True)
class SessionCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    arn: str

    def environment(self) -> dict[str, str]:
        """The variables an SDK or CLI reads its credentials from."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }


class Loopback:
    """Credentials and clients for the emulator's services acting in AWS."""

    def __init__(self, enforcer: Enforcer) -> None:
        self.enforcer = enforcer
        self.endpoint: str | None = None

    def bind(self, endpoint: str) -> None:
        """Set once the server listens: the URL its own clients call."""
        self.endpoint = endpoint

    def assume(
        self,
        service: str,
        role_arn: str,
        session_name: str,
        source_arn: str | None = None,
        account: str = DEFAULT_ACCOUNT_ID,
    ) -> SessionCredentials:
        """AssumeRole as `service` (e.g. codebuild.amazonaws.com); raises
        AwsError AccessDenied when the role's trust policy refuses it."""
        body: dict[str, Any] = {
            "service": service,
            "roleArn": role_arn,
            "sessionName": session_name,
            "sourceAccount": account,
        }
        if source_arn is not None:
            body["sourceArn"] = source_arn
        answer = self.enforcer.assume_as_service(body)
        return SessionCredentials(
            answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"], answer["Arn"]
        )

    def client(self, service: str, region: str, credentials: SessionCredentials) -> Any:
        """A boto3 client for `service` in `region` signed with `credentials`."""
        if self.endpoint is None:
            raise AwsError("InternalFailure", "the emulator is not listening yet", 500)
        with _CLIENT_LOCK:
            return boto3.client(
                service,
                endpoint_url=self.endpoint,
                region_name=region,
                aws_access_key_id=credentials.access_key_id,
                aws_secret_access_key=credentials.secret_access_key,
                aws_session_token=credentials.session_token,
                config=_CLIENT_CONFIG,
            )
