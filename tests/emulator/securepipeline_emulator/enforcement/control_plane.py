"""The management calls that create, read back, change and delete the
resources a pipeline is made of (IAM roles, KMS keys, buckets, log groups,
projects, pipelines, rules, topics, connections), mapped to IAM actions and
resources.

A stage that deploys infrastructure makes these calls under the role it
assumes (`assumeRoleArn`), so with enforcement on they are authorised like
any other: their action and resource type come from AWS's service
authorization data, the resource's ARN from its published format and the
names in the request. Handing a role to a service (a project's service
role, a pipeline's role, a rule target's role) is also `iam:PassRole` on
that role, conditioned on the receiving service, as AWS checks it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..wire import AwsError, AwsRequest
from .actions import Check, arn_of, iam_action, kms_key_arn

Mapper = Callable[[AwsRequest], list[Check]]

CODEBUILD = "codebuild.amazonaws.com"
CODEPIPELINE = "codepipeline.amazonaws.com"
EVENTS = "events.amazonaws.com"


def _text(value: Any, what: str) -> str:
    if isinstance(value, list):
        value = value[0] if value else None
    if not isinstance(value, str) or not value:
        raise AwsError("ValidationException", f"{what} is required")
    return value


def _passed(role_arn: str, service: str) -> Check:
    return Check(iam_action("iam", "PassRole"), role_arn, {"iam:PassedToService": service})


def _anywhere(prefix: str, action: str) -> Mapper:
    """An action AWS authorises on `*` only (creating a key, listing)."""
    return lambda request: [Check(iam_action(prefix, action), "*")]


def _on_arn(prefix: str, action: str, field: str) -> Mapper:
    """An action on the resource whose ARN the request carries."""

    def checks(request: AwsRequest) -> list[Check]:
        params = request.json if request.target else request.form
        return [Check(iam_action(prefix, action), _text(params.get(field), field))]

    return checks


# ------------------------------------------------------------------ kms --


def _key(action: str) -> Mapper:
    def checks(request: AwsRequest) -> list[Check]:
        key = kms_key_arn(request.region, request.account, _text(request.json.get("KeyId"), "KeyId"))
        return [Check(iam_action("kms", action), key)]

    return checks


def _alias(action: str) -> Mapper:
    """Creating or deleting an alias needs the action on the alias and on
    the key it names."""

    def checks(request: AwsRequest) -> list[Check]:
        from moto.kms.models import kms_backends

        alias = _text(request.json.get("AliasName"), "AliasName")
        alias_arn = arn_of("kms", "alias", request.region, request.account, Alias=alias.removeprefix("alias/"))
        key_id = request.json.get("TargetKeyId")
        if not key_id:  # DeleteAlias names the alias only
            key_id = kms_backends[request.account][request.region].get_key_id_from_alias(alias)
        result = [Check(iam_action("kms", action), alias_arn)]
        if key_id:
            result.append(Check(iam_action("kms", action), kms_key_arn(request.region, request.account, key_id)))
        return result

    return checks


# ----------------------------------------------------------------- logs --


def _log_group(action: str) -> Mapper:
    def checks(request: AwsRequest) -> list[Check]:
        name = _text(request.json.get("logGroupName"), "logGroupName")
        arn = arn_of("logs", "log-group", request.region, request.account, LogGroupName=name)
        return [Check(iam_action("logs", action), arn)]

    return checks


# ------------------------------------------------------------ codebuild --


def _project(action: str) -> Mapper:
    def checks(request: AwsRequest) -> list[Check]:
        name = _text(request.json.get("name"), "name")
        arn = arn_of("codebuild", "project", request.region, request.account, ProjectName=name)
        result = [Check(iam_action("codebuild", action), arn)]
        role = request.json.get("serviceRole")
        if isinstance(role, str) and role:
            result.append(_passed(role, CODEBUILD))
        return result

    return checks


def _projects(request: AwsRequest) -> list[Check]:
    names = request.json.get("names") or []
    return [
        Check(
            iam_action("codebuild", "BatchGetProjects"),
            name if name.startswith("arn:")
            else arn_of("codebuild", "project", request.region, request.account, ProjectName=name),
        )
        for name in names
    ]


# --------------------------------------------------------- codepipeline --


def _pipeline_declaration(action: str) -> Mapper:
    def checks(request: AwsRequest) -> list[Check]:
        declaration = request.json.get("pipeline") or {}
        name = _text(declaration.get("name"), "pipeline.name")
        arn = arn_of("codepipeline", "pipeline", request.region, request.account, PipelineName=name)
        result = [Check(iam_action("codepipeline", action), arn)]
        role = declaration.get("roleArn")
        if isinstance(role, str) and role:
            result.append(_passed(role, CODEPIPELINE))
        return result

    return checks


def _pipeline_named(action: str) -> Mapper:
    def checks(request: AwsRequest) -> list[Check]:
        name = _text(request.json.get("name"), "name")
        arn = arn_of("codepipeline", "pipeline", request.region, request.account, PipelineName=name)
        return [Check(iam_action("codepipeline", action), arn)]

    return checks


# --------------------------------------------------------------- events --


def _rule(action: str, field: str = "Name") -> Mapper:
    def checks(request: AwsRequest) -> list[Check]:
        name = _text(request.json.get(field), field)
        arn = arn_of("events", "rule-on-default-event-bus", request.region, request.account, RuleName=name)
        result = [Check(iam_action("events", action), arn)]
        for target in request.json.get("Targets") or []:
            role = target.get("RoleArn") if isinstance(target, dict) else None
            if isinstance(role, str) and role:
                result.append(_passed(role, EVENTS))
        return result

    return checks


# ------------------------------------------------------------------ iam --


def _role(action: str) -> Mapper:
    def checks(request: AwsRequest) -> list[Check]:
        from moto.iam.exceptions import NotFoundException
        from moto.iam.models import iam_backends

        name = _text(request.form.get("RoleName"), "RoleName")
        path = _text(request.form.get("Path") or ["/"], "Path")
        try:
            arn = iam_backends[request.account]["aws"].get_role(name).arn
        except NotFoundException:  # being created, or no such role
            arn = arn_of("iam", "role", "", request.account, RoleNameWithPath=f"{path.lstrip('/')}{name}")
        return [Check(iam_action("iam", action), arn)]

    return checks


# ------------------------------------------------------------------ sns --


def _topic(action: str, field: str = "TopicArn") -> Mapper:
    def checks(request: AwsRequest) -> list[Check]:
        if field == "Name":
            name = _text(request.form.get("Name"), "Name")
            arn = arn_of("sns", "topic", request.region, request.account, TopicName=name)
        else:
            arn = _text(request.form.get(field), field)
        if field == "SubscriptionArn":  # `<topic ARN>:<subscription id>`
            arn = arn.rsplit(":", 1)[0]
        return [Check(iam_action("sns", action), arn)]

    return checks


# ------------------------------------------------------------------- s3 --


def _bucket(action: str) -> Mapper:
    def checks(request: AwsRequest) -> list[Check]:
        bucket = request.path.lstrip("/").split("/", 1)[0]
        return [Check(iam_action("s3", action), arn_of("s3", "bucket", "", "", BucketName=bucket))]

    return checks


def _delete_objects(request: AwsRequest) -> list[Check]:
    """DeleteObjects is authorised per object it names."""
    from xml.etree import ElementTree

    bucket = request.path.lstrip("/").split("/", 1)[0]
    try:
        root = ElementTree.fromstring(request.body)
    except ElementTree.ParseError as error:
        raise AwsError("MalformedXML", f"The XML you provided was not well-formed: {error}") from error
    result = []
    for element in root.iter():
        if not element.tag.endswith("Object"):
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: child.text or "" for child in element}
        action = "DeleteObjectVersion" if fields.get("VersionId") else "DeleteObject"
        arn = arn_of("s3", "object", "", "", BucketName=bucket, ObjectName=fields.get("Key", ""))
        result.append(Check(iam_action("s3", action), arn))
    return result


MAPPERS: dict[tuple[str, str], Mapper] = {
    ("kms", "CreateKey"): _anywhere("kms", "CreateKey"),
    ("kms", "ListKeys"): _anywhere("kms", "ListKeys"),
    ("kms", "ListAliases"): _anywhere("kms", "ListAliases"),
    ("kms", "CreateAlias"): _alias("CreateAlias"),
    ("kms", "DeleteAlias"): _alias("DeleteAlias"),
    **{
        ("kms", name): _key(name)
        for name in (
            "EnableKey", "DisableKey", "EnableKeyRotation", "GetKeyRotationStatus", "GetKeyPolicy",
            "PutKeyPolicy", "ListResourceTags", "TagResource", "UntagResource",
            "ScheduleKeyDeletion", "UpdateKeyDescription",
        )
    },
    ("logs", "DescribeLogGroups"): _anywhere("logs", "DescribeLogGroups"),
    **{
        ("logs", name): _log_group(name)
        for name in (
            "CreateLogGroup", "DeleteLogGroup", "PutRetentionPolicy", "DeleteRetentionPolicy",
            "AssociateKmsKey", "DisassociateKmsKey",
        )
    },
    **{("logs", name): _on_arn("logs", name, "resourceArn")
       for name in ("ListTagsForResource", "TagResource", "UntagResource")},
    ("codebuild", "CreateProject"): _project("CreateProject"),
    ("codebuild", "UpdateProject"): _project("UpdateProject"),
    ("codebuild", "DeleteProject"): _project("DeleteProject"),
    ("codebuild", "BatchGetProjects"): _projects,
    ("codebuild", "ListProjects"): _anywhere("codebuild", "ListProjects"),
    ("codepipeline", "CreatePipeline"): _pipeline_declaration("CreatePipeline"),
    ("codepipeline", "UpdatePipeline"): _pipeline_declaration("UpdatePipeline"),
    ("codepipeline", "DeletePipeline"): _pipeline_named("DeletePipeline"),
    ("codepipeline", "ListPipelines"): _anywhere("codepipeline", "ListPipelines"),
    **{("codepipeline", name): _on_arn("codepipeline", name, "resourceArn")
       for name in ("ListTagsForResource", "TagResource", "UntagResource")},
    ("events", "PutRule"): _rule("PutRule"),
    ("events", "DescribeRule"): _rule("DescribeRule"),
    ("events", "DeleteRule"): _rule("DeleteRule"),
    ("events", "PutTargets"): _rule("PutTargets", "Rule"),
    ("events", "RemoveTargets"): _rule("RemoveTargets", "Rule"),
    ("events", "ListTargetsByRule"): _rule("ListTargetsByRule", "Rule"),
    **{("events", name): _on_arn("events", name, "ResourceARN")
       for name in ("ListTagsForResource", "TagResource", "UntagResource")},
    **{
        (prefix, name): mapper
        for prefix in ("codestar-connections", "codeconnections")
        for name, mapper in (
            ("CreateConnection", _anywhere(prefix, "CreateConnection")),
            ("ListConnections", _anywhere(prefix, "ListConnections")),
            ("GetConnection", _on_arn(prefix, "GetConnection", "ConnectionArn")),
            ("DeleteConnection", _on_arn(prefix, "DeleteConnection", "ConnectionArn")),
            ("ListTagsForResource", _on_arn(prefix, "ListTagsForResource", "ResourceArn")),
            ("TagResource", _on_arn(prefix, "TagResource", "ResourceArn")),
            ("UntagResource", _on_arn(prefix, "UntagResource", "ResourceArn")),
        )
    },
    **{
        ("iam", name): _role(name)
        for name in (
            "CreateRole", "DeleteRole", "GetRole", "UpdateRole", "UpdateAssumeRolePolicy",
            "PutRolePolicy", "GetRolePolicy", "DeleteRolePolicy", "ListRolePolicies",
            "ListAttachedRolePolicies", "DetachRolePolicy", "ListRoleTags", "TagRole", "UntagRole",
        )
    },
    ("sns", "CreateTopic"): _topic("CreateTopic", "Name"),
    ("sns", "Unsubscribe"): _topic("Unsubscribe", "SubscriptionArn"),
    ("sns", "GetSubscriptionAttributes"): _topic("GetSubscriptionAttributes", "SubscriptionArn"),
    **{
        ("sns", name): _topic(name)
        for name in (
            "DeleteTopic", "GetTopicAttributes", "SetTopicAttributes", "ListSubscriptionsByTopic",
            "Subscribe",
        )
    },
    **{("sns", name): _topic(name, "ResourceArn")
       for name in ("ListTagsForResource", "TagResource", "UntagResource")},
    # S3 names some actions after the operation, others after what it sets.
    **{
        ("s3", operation): _bucket(action)
        for operation, action in (
            ("CreateBucket", "CreateBucket"),
            ("DeleteBucket", "DeleteBucket"),
            ("GetBucketPolicy", "GetBucketPolicy"),
            ("PutBucketPolicy", "PutBucketPolicy"),
            ("DeleteBucketPolicy", "DeleteBucketPolicy"),
            ("GetBucketEncryption", "GetEncryptionConfiguration"),
            ("PutBucketEncryption", "PutEncryptionConfiguration"),
            ("GetBucketLifecycleConfiguration", "GetLifecycleConfiguration"),
            ("PutBucketLifecycleConfiguration", "PutLifecycleConfiguration"),
            ("GetBucketOwnershipControls", "GetBucketOwnershipControls"),
            ("PutBucketOwnershipControls", "PutBucketOwnershipControls"),
            ("GetBucketLogging", "GetBucketLogging"),
            ("PutBucketLogging", "PutBucketLogging"),
            ("GetBucketTagging", "GetBucketTagging"),
            ("PutBucketTagging", "PutBucketTagging"),
            ("PutBucketVersioning", "PutBucketVersioning"),
            ("GetPublicAccessBlock", "GetBucketPublicAccessBlock"),
            ("PutPublicAccessBlock", "PutBucketPublicAccessBlock"),
        )
    },
    ("s3", "DeleteObjects"): _delete_objects,
}
