"""CloudWatch Logs: KMS association, retention values, tags of deleted groups.

- moto does not implement AssociateKmsKey / DisassociateKmsKey (it answers
  500); the provider encrypts its build log groups with them.
- moto stores any retentionInDays; AWS accepts only its fixed set of values
  and rejects the rest with InvalidParameterException.
- moto keeps a deleted group's tags, so a group re-created under the same name
  inherits them, and tag operations on a deleted group succeed. AWS answers
  ResourceNotFoundException for a log group that does not exist.
"""

from __future__ import annotations

from typing import Any

from moto.logs.models import LogGroup, LogsBackend, logs_backends
from werkzeug.wrappers import Response

from ..wire import AwsError, AwsRequest, json_error
from ..jsonapi import json_operation

MODEL = "logs"

RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip


def _backend(request: AwsRequest) -> LogsBackend:
    return logs_backends[request.account][request.region]


def _group_not_found() -> AwsError:
    return AwsError("ResourceNotFoundException", "The specified log group does not exist.")


def _find_group(backend: LogsBackend, params: dict[str, Any]) -> LogGroup:
    name = params.get("logGroupName")
    if name:
        group = backend.groups.get(name)
    else:
        arn = (params.get("resourceIdentifier") or "").removesuffix(":*")
        group = next((g for g in backend.groups.values() if g.arn == arn), None)
    if group is None:
        raise _group_not_found()
    return group


@json_operation(MODEL)
def associate_kms_key(request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
    _find_group(_backend(request), params).kms_key_id = params["kmsKeyId"]
    return {}


@json_operation(MODEL)
def disassociate_kms_key(request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
    _find_group(_backend(request), params).kms_key_id = None
    return {}


def put_retention_policy(request: AwsRequest, forward: Any) -> Response:
    days = request.json.get("retentionInDays")
    if days not in RETENTION_DAYS:
        allowed = ", ".join(str(d) for d in RETENTION_DAYS)
        return json_error(
            AwsError(
                "InvalidParameterException",
                f"1 validation error detected: Value '{days}' at 'retentionInDays' failed to "
                f"satisfy constraint: Member must satisfy enum value set: [{allowed}]",
            )
        )
    return forward(request)


def delete_log_group(request: AwsRequest, forward: Any) -> Response:
    backend = _backend(request)
    group = backend.groups.get(request.json.get("logGroupName", ""))
    response = forward(request)
    if group is not None and response.status_code == 200:
        backend.tagger.delete_all_tags_for_resource(group.arn)
    return response


def existing_group_only(request: AwsRequest, forward: Any) -> Response:
    """Tag operations on a log-group ARN require the group to exist."""
    arn = request.json.get("resourceArn", "")
    if ":log-group:" in arn:
        # Log group ARNs are written with or without the ":*" suffix that
        # DescribeLogGroups shows; moto keys tags by the bare ARN only.
        bare = arn.removesuffix(":*")
        backend = _backend(request)
        if not any(group.arn == bare for group in backend.groups.values()):
            return json_error(_group_not_found())
        if bare != arn:
            request.replace_json({**request.json, "resourceArn": bare})
    return forward(request)


HANDLERS = {
    ("logs", "AssociateKmsKey"): associate_kms_key,
    ("logs", "DisassociateKmsKey"): disassociate_kms_key,
    ("logs", "PutRetentionPolicy"): put_retention_policy,
    ("logs", "DeleteLogGroup"): delete_log_group,
    ("logs", "TagResource"): existing_group_only,
    ("logs", "UntagResource"): existing_group_only,
    ("logs", "ListTagsForResource"): existing_group_only,
}
