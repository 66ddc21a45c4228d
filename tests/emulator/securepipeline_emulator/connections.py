"""CodeStar Connections and CodeConnections, which moto does not emulate.

CodeConnections is CodeStar Connections renamed: same operations, same
resources, a new JSON target prefix and ARN service. One store serves both
APIs, each connection keeping the ARN of the API that created it, and either
API can read any connection, as on AWS.

A connection is created `PENDING`, as on AWS, where only a person in the
console can complete the OAuth handshake that makes it `AVAILABLE`; tests do
that through the emulator's admin endpoint (see app.py).
"""

from __future__ import annotations

import base64
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from moto.utilities.utils import get_partition
from werkzeug.wrappers import Response

from .jsonapi import json_operation
from .wire import AwsError, AwsRequest

# AWS's default quotas: connections per account and Region, tags per resource.
CONNECTIONS_PER_REGION = 250
TAGS_PER_RESOURCE = 50
STATUSES = ("PENDING", "AVAILABLE", "ERROR")


@dataclass
class Connection:
    arn: str
    name: str
    account: str
    region: str
    provider_type: str | None
    host_arn: str | None
    status: str = "PENDING"
    tags: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        described = {
            "ConnectionName": self.name,
            "ConnectionArn": self.arn,
            "OwnerAccountId": self.account,
            "ConnectionStatus": self.status,
        }
        if self.provider_type:
            described["ProviderType"] = self.provider_type
        if self.host_arn:
            described["HostArn"] = self.host_arn
        return described


def not_found(arn: str) -> AwsError:
    return AwsError("ResourceNotFoundException", f"Resource not found: {arn}")


class ConnectionStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: dict[str, Connection] = {}

    def create(
        self,
        arn_service: str,
        account: str,
        region: str,
        name: str,
        provider_type: str | None,
        host_arn: str | None,
        tags: dict[str, str],
    ) -> Connection:
        arn = f"arn:{get_partition(region)}:{arn_service}:{region}:{account}:connection/{uuid.uuid4()}"
        connection = Connection(arn, name, account, region, provider_type, host_arn, tags=tags)
        with self._lock:
            if len(self._in_region(account, region)) >= CONNECTIONS_PER_REGION:
                raise AwsError(
                    "LimitExceededException",
                    f"Maximum number of connections ({CONNECTIONS_PER_REGION}) reached",
                )
            self._connections[arn] = connection
        return connection

    def get(self, arn: str) -> Connection:
        with self._lock:
            connection = self._connections.get(arn)
        if connection is None:
            raise not_found(arn)
        return connection

    def delete(self, arn: str) -> None:
        with self._lock:
            if self._connections.pop(arn, None) is None:
                raise not_found(arn)

    def list(
        self, account: str, region: str, provider_type: str | None, host_arn: str | None
    ) -> list[Connection]:
        with self._lock:
            found = self._in_region(account, region)
        if provider_type:
            found = [c for c in found if c.provider_type == provider_type]
        if host_arn:
            found = [c for c in found if c.host_arn == host_arn]
        return found

    def tag(self, arn: str, tags: dict[str, str]) -> None:
        with self._lock:
            connection = self._connections.get(arn)
            if connection is None:
                raise not_found(arn)
            merged = {**connection.tags, **tags}
            if len(merged) > TAGS_PER_RESOURCE:
                raise AwsError(
                    "LimitExceededException",
                    f"A resource can have at most {TAGS_PER_RESOURCE} tags",
                )
            connection.tags = merged

    def untag(self, arn: str, keys: list[str]) -> None:
        with self._lock:
            connection = self._connections.get(arn)
            if connection is None:
                raise not_found(arn)
            for key in keys:
                connection.tags.pop(key, None)

    def set_status(self, arn: str, status: str) -> Connection:
        if status not in STATUSES:
            raise AwsError("ValidationException", f"status must be one of {', '.join(STATUSES)}")
        with self._lock:
            connection = self._connections.get(arn)
            if connection is None:
                raise not_found(arn)
            connection.status = status
        return connection

    def _in_region(self, account: str, region: str) -> list[Connection]:
        return [
            c for c in self._connections.values() if c.account == account and c.region == region
        ]


def tag_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags or []}


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


class ConnectionsApi:
    """One wire name of the service: the JSON 1.0 protocol of one API version."""

    def __init__(self, store: ConnectionStore, model_name: str, arn_service: str):
        self.store = store
        self.arn_service = arn_service
        wrap = json_operation(model_name, version="1.0")
        self.handlers = {
            name: wrap(operation)
            for name, operation in {
                "CreateConnection": self.create_connection,
                "GetConnection": self.get_connection,
                "ListConnections": self.list_connections,
                "DeleteConnection": self.delete_connection,
                "TagResource": self.tag_resource,
                "UntagResource": self.untag_resource,
                "ListTagsForResource": self.list_tags_for_resource,
            }.items()
        }
        self.unknown = wrap(self.unknown_operation)

    def __call__(self, request: AwsRequest, forward: Any = None) -> Response:
        return self.handlers.get(request.operation, self.unknown)(request, forward)

    def unknown_operation(self, request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
        raise AwsError(
            "UnknownOperationException", f"The emulator does not implement {request.operation}"
        )

    def create_connection(self, request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
        provider_type, host_arn = params.get("ProviderType"), params.get("HostArn")
        if bool(provider_type) == bool(host_arn):
            raise AwsError("ValidationException", "Specify either ProviderType or HostArn, not both")
        tags = tag_dict(params.get("Tags"))
        if len(tags) > TAGS_PER_RESOURCE:
            raise AwsError(
                "LimitExceededException", f"A resource can have at most {TAGS_PER_RESOURCE} tags"
            )
        connection = self.store.create(
            self.arn_service,
            request.account,
            request.region,
            params["ConnectionName"],
            provider_type,
            host_arn,
            tags,
        )
        result: dict[str, Any] = {"ConnectionArn": connection.arn}
        if tags:
            result["Tags"] = tag_list(tags)
        return result

    def get_connection(self, request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
        return {"Connection": self.store.get(params["ConnectionArn"]).describe()}

    def list_connections(self, request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
        found = self.store.list(
            request.account,
            request.region,
            params.get("ProviderTypeFilter"),
            params.get("HostArnFilter"),
        )
        start = _decode_token(params.get("NextToken"))
        size = params.get("MaxResults") or 100
        page = found[start : start + size]
        result: dict[str, Any] = {"Connections": [c.describe() for c in page]}
        if start + size < len(found):
            result["NextToken"] = _encode_token(start + size)
        return result

    def delete_connection(self, request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
        self.store.delete(params["ConnectionArn"])
        return {}

    def tag_resource(self, request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
        self.store.tag(params["ResourceArn"], tag_dict(params["Tags"]))
        return {}

    def untag_resource(self, request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
        self.store.untag(params["ResourceArn"], params["TagKeys"])
        return {}

    def list_tags_for_resource(self, request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
        return {"Tags": tag_list(self.store.get(params["ResourceArn"]).tags)}


# Pagination tokens are opaque to clients; an offset is enough here.
def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        prefix, _, offset = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if prefix == "offset" and offset.isdigit():
            return int(offset)
    except ValueError:
        pass
    raise AwsError("ValidationException", "Invalid NextToken")
