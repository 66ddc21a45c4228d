"""Reading AWS requests and writing AWS responses the way the real services do.

A request is identified exactly as AWS identifies it: the service and region
from the SigV4 credential scope, the operation from `X-Amz-Target` (JSON
protocols), the `Action` parameter (query protocols), the rpcv2 path, or for
S3's REST protocol from the method, the path and the subresource key.
"""

from __future__ import annotations

import io
import json
import os
import re
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import parse_qs

from werkzeug.datastructures import EnvironHeaders
from werkzeug.wrappers import Response
from werkzeug.wsgi import get_input_stream

from . import s3names

DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"

_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_RPCV2_PATH = re.compile(r"^/service/[^/]+/operation/([^/?]+)$")


class AwsError(Exception):
    """An error to send back in the shape the service's protocol uses."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class AwsRequest:
    environ: dict[str, Any]
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes
    service: str
    region: str
    access_key: str | None
    operation: str
    headers: EnvironHeaders = field(repr=False)

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> "AwsRequest":
        body = buffer_body(environ)
        headers = EnvironHeaders(environ)
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "") or "/"
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        access_key, region, service = _credential_scope(headers.get("Authorization", ""))
        request = cls(
            environ=environ,
            method=method,
            path=path,
            query=query,
            body=body,
            service=service or _service_from_target(headers.get("X-Amz-Target", "")),
            region=region or DEFAULT_REGION,
            access_key=access_key,
            operation="",
            headers=headers,
        )
        request.operation = request._operation()
        return request

    @cached_property
    def json(self) -> dict[str, Any]:
        """The JSON protocol input; a malformed body is a client error, as on AWS."""
        if not self.body:
            return {}
        try:
            value = json.loads(self.body)
        except ValueError as exc:
            raise AwsError("SerializationException", f"Malformed JSON input: {exc}") from exc
        if not isinstance(value, dict):
            raise AwsError("SerializationException", "Expected a JSON object as input")
        return value

    @cached_property
    def form(self) -> dict[str, list[str]]:
        """Query-protocol parameters: the form body merged over the query string."""
        params = {key: list(values) for key, values in self.query.items()}
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("application/x-www-form-urlencoded") and self.body:
            for key, values in parse_qs(self.body.decode("utf-8"), keep_blank_values=True).items():
                params[key] = values
        return params

    def replace_json(self, params: dict[str, Any]) -> None:
        """Rewrite the JSON body before it is forwarded to moto."""
        self.body = json.dumps(params).encode()
        self.environ["wsgi.input"] = io.BytesIO(self.body)
        self.environ["CONTENT_LENGTH"] = str(len(self.body))
        self.__dict__["json"] = params

    @property
    def account(self) -> str:
        """The caller's account, resolved the way moto's own responses do."""
        if "MOTO_ACCOUNT_ID" in os.environ:
            return os.environ["MOTO_ACCOUNT_ID"]
        if "x-moto-account-id" in self.headers:
            return self.headers["x-moto-account-id"]
        if self.access_key:
            from moto.iam.models import get_account_id_from

            return get_account_id_from(self.access_key)
        return DEFAULT_ACCOUNT_ID

    @property
    def target(self) -> str:
        return self.headers.get("X-Amz-Target", "")

    def _operation(self) -> str:
        if self.target:
            return self.target.rsplit(".", 1)[-1]
        rpcv2 = _RPCV2_PATH.match(self.path)
        if rpcv2:
            return rpcv2.group(1)
        action = self.form.get("Action")
        if action:
            return action[0]
        if self.service == "s3":
            return s3names.operation_name(self.method, self.path, self.query, self.headers)
        return f"{self.method} {self.path}"


def buffer_body(environ: dict[str, Any]) -> bytes:
    """Read the whole body and put it back, so both we and moto can read it.

    A chunked request has no Content-Length; once buffered it gets one, and
    the chunked markers go so the WSGI layer below trusts that length.
    """
    # Without a length or chunked framing there is no body (werkzeug hands
    # back an empty stream rather than block on the socket).
    body = get_input_stream(environ).read()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("wsgi.input_terminated", None)
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    return body


def _credential_scope(authorization: str) -> tuple[str | None, str | None, str | None]:
    match = _SCOPE.search(authorization)
    if not match:
        return None, None, None
    access_key, region, service = match.groups()
    return access_key, region, service


# Unsigned requests are rare (the SDKs always sign); the target prefix is then
# the only hint of the service.
_TARGET_SERVICES = {
    "CodeStar_connections_20191201": "codestar-connections",
    "CodeConnections_20231201": "codeconnections",
    "CodeBuild_20161006": "codebuild",
    "CodePipeline_20150709": "codepipeline",
    "TrentService": "kms",
    "Logs_20140328": "logs",
    "AWSEvents": "events",
}


def _service_from_target(target: str) -> str:
    if not target:
        return "unknown"
    prefix = target.rsplit(".", 1)[0].rsplit(".", 1)[-1]
    return _TARGET_SERVICES.get(prefix, "unknown")


def request_id() -> str:
    return str(uuid.uuid4())


def json_response(payload: dict[str, Any], status: int = 200, version: str = "1.1") -> Response:
    return Response(
        json.dumps(payload),
        status=status,
        content_type=f"application/x-amz-json-{version}",
        headers={"x-amzn-RequestId": request_id()},
    )


def json_error(error: AwsError, version: str = "1.1") -> Response:
    # `__type` is what every AWS SDK reads the error code from; the header
    # carries it too, as AWS's JSON services send it.
    return Response(
        json.dumps({"__type": error.code, "Message": error.message}),
        status=error.status,
        content_type=f"application/x-amz-json-{version}",
        headers={"x-amzn-RequestId": request_id(), "x-amzn-ErrorType": error.code},
    )
