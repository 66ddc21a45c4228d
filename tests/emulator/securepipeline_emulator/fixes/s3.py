"""S3: bucket policies with conditions, PutBucketPolicy's response,
GetBucketVersioning's document root, tags given to CreateBucket, and the
log-delivery grant PutBucketLogging looks for.

PutBucketLogging to a bucket whose ACLs are disabled needs the target's
bucket policy to let `logging.s3.amazonaws.com` put objects. moto finds that
statement only when its Principal, Action and Resource are written as single
strings; IAM treats a one-element list the same, and the provider writes
lists, so the statement is looked for in either form.

CreateBucket takes tags in its CreateBucketConfiguration, which moto
ignores; the provider tags each bucket at creation with a token that lets a
create whose answer was lost recognise its own bucket, so they are applied.

moto enforces a bucket policy's Deny statements on object operations but
ignores their Condition blocks, so a conditional Deny applies to every
request. The provider's artifact buckets carry the standard "deny when
aws:SecureTransport is false" statement, which would then lock even the
provider out of its own bucket (DeleteObjects answers AccessDenied per key,
so a bucket can never be emptied and deleted). Requests to this emulator come
over plain HTTP standing in for AWS's TLS, and conditions cannot be evaluated
faithfully here, so only unconditional statements are enforced.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from typing import Any

from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.s3.models import FakeBucket
from moto.s3.utils import LOGGING_SERVICE_PRINCIPAL
from werkzeug.wrappers import Response

from ..wire import AwsRequest


def _unconditional(policy: bytes) -> str:
    document = json.loads(policy)
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    document["Statement"] = [s for s in statements if "Condition" not in s]
    return json.dumps(document)


def _get_permission(bucket: FakeBucket, action: str, resource: str) -> Any:
    if bucket.policy is None:
        return PermissionResult.NEUTRAL
    return IAMPolicy(_unconditional(bucket.policy)).is_action_permitted(action, resource)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _log_permissions_enabled_policy(target_bucket: FakeBucket, target_prefix: str | None) -> bool:
    """True when the target's policy allows the logging service to put
    objects under the prefix, in any of IAM's equivalent spellings."""
    if not target_bucket.policy:
        return False
    document = json.loads(target_bucket.policy)
    statements = _as_list(document.get("Statement"))
    bucket_arn = f"arn:{target_bucket.partition}:s3:::{target_bucket.name}"
    covering = {bucket_arn, f"{bucket_arn}/*", f"{bucket_arn}/{target_prefix or ''}*"}
    for statement in statements:
        principal = statement.get("Principal")
        services = _as_list(principal.get("Service")) if isinstance(principal, dict) else []
        if (
            statement.get("Effect") == "Allow"
            and LOGGING_SERVICE_PRINCIPAL in services
            and "s3:PutObject" in _as_list(statement.get("Action"))
            and covering.intersection(_as_list(statement.get("Resource")))
        ):
            return True
    return False


def patch() -> None:
    FakeBucket.get_permission = _get_permission  # type: ignore[method-assign]
    FakeBucket._log_permissions_enabled_policy = staticmethod(  # type: ignore[method-assign]
        _log_permissions_enabled_policy
    )


def put_bucket_policy(request: AwsRequest, forward: Any) -> Response:
    # moto answers 200 with the body "True"; S3 answers 204 with no body.
    response = forward(request)
    if response.status_code == 200:
        response.status_code = 204
        response.set_data(b"")
    return response


def get_bucket_versioning(request: AwsRequest, forward: Any) -> Response:
    # moto names the document's root GetBucketVersioningResponse; S3 names it
    # VersioningConfiguration, and the AWS SDK for Rust rejects any other root.
    response = forward(request)
    if response.status_code == 200:
        body = response.get_data(as_text=True)
        response.set_data(
            body.replace("<GetBucketVersioningResponse", "<VersioningConfiguration").replace(
                "</GetBucketVersioningResponse>", "</VersioningConfiguration>"
            )
        )
    return response


def create_bucket(request: AwsRequest, forward: Any) -> Response:
    tags = _configuration_tags(request.body)
    response = forward(request)
    if response.status_code == 200 and tags:
        from moto.s3.models import s3_backends

        name = request.path.strip("/").split("/", 1)[0]
        s3_backends[request.account]["aws"].put_bucket_tagging(name, tags)
    return response


def _configuration_tags(body: bytes) -> dict[str, str]:
    """`CreateBucketConfiguration/Tags/Tag` as a dict; malformed XML is
    left for moto to reject."""
    if not body.strip():
        return {}
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return {}
    tags = {}
    for tag in root.iter():
        if tag.tag.rsplit("}", 1)[-1] != "Tag":
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: child.text or "" for child in tag}
        if "Key" in fields:
            tags[fields["Key"]] = fields.get("Value", "")
    return tags


HANDLERS = {
    ("s3", "CreateBucket"): create_bucket,
    ("s3", "PutBucketPolicy"): put_bucket_policy,
    ("s3", "GetBucketVersioning"): get_bucket_versioning,
}
