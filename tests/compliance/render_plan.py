"""Render what a deployed SecurePipeline created as a Terraform plan (JSON)
that Checkov's `terraform_plan` framework scans.

Every value comes from the live configuration read back from the AWS
emulator (Get*/Describe*/List* calls), never from the provider's inputs: the
scanner judges what exists. Each AWS resource becomes the Terraform AWS
provider resource of the same thing, with that provider's attribute names;
the `configuration` section carries the references that tie a bucket's
public access block and policy to the bucket, which Checkov's graph checks
follow.

Usage: render_plan.py ENDPOINT REGION OUTPUTS_JSON PLAN_JSON
"""

from __future__ import annotations

import json
import sys
from typing import Any

import boto3
from botocore.exceptions import ClientError

PROVIDER = "registry.terraform.io/hashicorp/aws"


class Plan:
    def __init__(self) -> None:
        self.resources: list[dict[str, Any]] = []
        self.config: list[dict[str, Any]] = []

    def add(self, kind: str, name: str, values: dict[str, Any], refs: dict[str, str] | None = None) -> str:
        address = f"{kind}.{name}"
        self.resources.append(
            {"address": address, "mode": "managed", "type": kind, "name": name, "provider_name": PROVIDER, "values": values}
        )
        expressions = {key: {"references": [f"{target}.id", target]} for key, target in (refs or {}).items()}
        self.config.append(
            {"address": address, "mode": "managed", "type": kind, "name": name, "provider_config_key": "aws", "expressions": expressions}
        )
        return address

    def document(self) -> dict[str, Any]:
        changes = [
            {
                "address": r["address"],
                "mode": "managed",
                "type": r["type"],
                "name": r["name"],
                "provider_name": PROVIDER,
                "change": {"actions": ["create"], "before": None, "after": r["values"], "after_unknown": {}},
            }
            for r in self.resources
        ]
        return {
            "format_version": "1.2",
            "terraform_version": "1.9.0",
            "planned_values": {"root_module": {"resources": self.resources}},
            "resource_changes": changes,
            "configuration": {"root_module": {"resources": self.config}},
        }


def _maybe(call: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        return call(**kwargs)
    except ClientError:
        return {}


def _ident(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def bucket(plan: Plan, s3: Any, name: str) -> None:
    ident = _ident(name)
    versioning = _maybe(s3.get_bucket_versioning, Bucket=name)
    encryption = _maybe(s3.get_bucket_encryption, Bucket=name).get("ServerSideEncryptionConfiguration", {})
    logging = _maybe(s3.get_bucket_logging, Bucket=name).get("LoggingEnabled")
    lifecycle = _maybe(s3.get_bucket_lifecycle_configuration, Bucket=name).get("Rules", [])
    rules = []
    for rule in encryption.get("Rules", []):
        default = rule.get("ApplyServerSideEncryptionByDefault", {})
        rules.append(
            {
                "apply_server_side_encryption_by_default": [
                    {"sse_algorithm": default.get("SSEAlgorithm"), "kms_master_key_id": default.get("KMSMasterKeyID", "")}
                ],
                "bucket_key_enabled": rule.get("BucketKeyEnabled", False),
            }
        )
    # A setting the bucket does not have is left out, as a plan leaves out
    # a block nobody wrote: Checkov takes an empty list for a present one.
    values: dict[str, Any] = {
        "bucket": name,
        "versioning": [{"enabled": versioning.get("Status") == "Enabled", "mfa_delete": False}],
        "acl": None,
        "tags": {t["Key"]: t["Value"] for t in _maybe(s3.get_bucket_tagging, Bucket=name).get("TagSet", [])},
    }
    if rules:
        values["server_side_encryption_configuration"] = [{"rule": rules}]
    if logging:
        values["logging"] = [{"target_bucket": logging["TargetBucket"], "target_prefix": logging.get("TargetPrefix", "")}]
    if lifecycle:
        values["lifecycle_rule"] = [
            {
                "id": r.get("ID"),
                "enabled": r.get("Status") == "Enabled",
                "prefix": r.get("Filter", {}).get("Prefix", ""),
                "expiration": [{"days": r.get("Expiration", {}).get("Days")}],
                "noncurrent_version_expiration": [{"days": r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays")}],
                "abort_incomplete_multipart_upload_days": r.get("AbortIncompleteMultipartUpload", {}).get(
                    "DaysAfterInitiation"
                ),
            }
            for r in lifecycle
        ]
    address = plan.add("aws_s3_bucket", ident, values)
    block = _maybe(s3.get_public_access_block, Bucket=name).get("PublicAccessBlockConfiguration", {})
    if block:
        plan.add(
            "aws_s3_bucket_public_access_block",
            ident,
            {
                "bucket": name,
                "block_public_acls": block.get("BlockPublicAcls", False),
                "block_public_policy": block.get("BlockPublicPolicy", False),
                "ignore_public_acls": block.get("IgnorePublicAcls", False),
                "restrict_public_buckets": block.get("RestrictPublicBuckets", False),
            },
            {"bucket": address},
        )
    ownership = _maybe(s3.get_bucket_ownership_controls, Bucket=name).get("OwnershipControls", {}).get("Rules", [])
    if ownership:
        plan.add(
            "aws_s3_bucket_ownership_controls",
            ident,
            {"bucket": name, "rule": [{"object_ownership": ownership[0]["ObjectOwnership"]}]},
            {"bucket": address},
        )
    policy = _maybe(s3.get_bucket_policy, Bucket=name).get("Policy")
    if policy:
        plan.add("aws_s3_bucket_policy", ident, {"bucket": name, "policy": policy}, {"bucket": address})


def key(plan: Plan, kms: Any, arn: str) -> None:
    meta = kms.describe_key(KeyId=arn)["KeyMetadata"]
    rotation = _maybe(kms.get_key_rotation_status, KeyId=arn).get("KeyRotationEnabled", False)
    policy = _maybe(kms.get_key_policy, KeyId=arn, PolicyName="default").get("Policy", "")
    plan.add(
        "aws_kms_key",
        _ident(meta["KeyId"]),
        {
            "description": meta.get("Description", ""),
            "enable_key_rotation": rotation,
            "is_enabled": meta.get("Enabled", False),
            "key_usage": meta.get("KeyUsage"),
            "customer_master_key_spec": meta.get("KeySpec"),
            "policy": policy,
            "deletion_window_in_days": 30,
        },
    )


def log_group(plan: Plan, logs: Any, name: str) -> None:
    groups = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    for group in (g for g in groups if g["logGroupName"] == name):
        plan.add(
            "aws_cloudwatch_log_group",
            _ident(name),
            {"name": name, "retention_in_days": group.get("retentionInDays", 0), "kms_key_id": group.get("kmsKeyId", "")},
        )


def project(plan: Plan, codebuild: Any, name: str) -> None:
    for p in codebuild.batch_get_projects(names=[name])["projects"]:
        env = p["environment"]
        logs = p.get("logsConfig", {}).get("cloudWatchLogs", {})
        plan.add(
            "aws_codebuild_project",
            _ident(name),
            {
                "name": name,
                "service_role": p["serviceRole"],
                "encryption_key": p.get("encryptionKey", ""),
                "build_timeout": p.get("timeoutInMinutes"),
                "queued_timeout": p.get("queuedTimeoutInMinutes"),
                "environment": [
                    {
                        "compute_type": env["computeType"],
                        "image": env["image"],
                        "type": env["type"],
                        "privileged_mode": env.get("privilegedMode", False),
                        "image_pull_credentials_type": env.get("imagePullCredentialsType", "CODEBUILD"),
                        "environment_variable": [
                            {"name": v["name"], "value": v["value"], "type": v.get("type", "PLAINTEXT")}
                            for v in env.get("environmentVariables", [])
                        ],
                    }
                ],
                "source": [{"type": p["source"]["type"], "buildspec": p["source"].get("buildspec", "")}],
                "artifacts": [{"type": p["artifacts"]["type"], "encryption_disabled": p["artifacts"].get("encryptionDisabled", False)}],
                "logs_config": [
                    {"cloudwatch_logs": [{"status": logs.get("status", "ENABLED"), "group_name": logs.get("groupName", "")}]}
                ],
            },
        )


def pipeline(plan: Plan, codepipeline: Any, name: str) -> None:
    declaration = codepipeline.get_pipeline(name=name)["pipeline"]
    store = declaration.get("artifactStore", {})
    plan.add(
        "aws_codepipeline",
        _ident(name),
        {
            "name": name,
            "pipeline_type": declaration.get("pipelineType", "V1"),
            "role_arn": declaration["roleArn"],
            "artifact_store": [
                {
                    "location": store.get("location"),
                    "type": store.get("type"),
                    "encryption_key": [store["encryptionKey"]] if "encryptionKey" in store else [],
                }
            ],
        },
    )


def topic(plan: Plan, sns: Any, arn: str) -> None:
    attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    plan.add(
        "aws_sns_topic",
        _ident(arn.rsplit(":", 1)[-1]),
        {"name": arn.rsplit(":", 1)[-1], "kms_master_key_id": attributes.get("KmsMasterKeyId", ""), "policy": attributes.get("Policy", "")},
    )


def role(plan: Plan, iam: Any, arn: str) -> None:
    name = arn.rsplit("/", 1)[-1]
    live = iam.get_role(RoleName=name)["Role"]
    trust = live["AssumeRolePolicyDocument"]
    address = plan.add(
        "aws_iam_role",
        _ident(name),
        {"name": name, "assume_role_policy": trust if isinstance(trust, str) else json.dumps(trust)},
    )
    for policy_name in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
        plan.add(
            "aws_iam_role_policy",
            _ident(f"{name}_{policy_name}"),
            {"name": policy_name, "role": name, "policy": document if isinstance(document, str) else json.dumps(document)},
            {"role": address},
        )


def render(endpoint: str, region: str, outputs: dict[str, Any]) -> dict[str, Any]:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint)

    plan = Plan()
    s3 = client("s3")
    for name in (outputs.get("artifactBucketName"), outputs.get("accessLogBucketName")):
        if name:
            bucket(plan, s3, name)
    key(plan, client("kms"), outputs["kmsKeyArn"])
    logs = client("logs")
    for name in outputs["logGroupNames"]:
        log_group(plan, logs, name)
    codebuild = client("codebuild")
    for name in outputs["buildProjectNames"]:
        project(plan, codebuild, name)
    pipeline(plan, client("codepipeline"), outputs["pipelineName"])
    topic(plan, client("sns"), outputs["notificationTopicArn"])
    iam = client("iam")
    for arn in outputs["roleArns"].values():
        role(plan, iam, arn)
    return plan.document()


def main() -> None:
    endpoint, region, outputs_path, plan_path = sys.argv[1:5]
    with open(outputs_path, encoding="utf-8") as f:
        outputs = json.load(f)
    with open(plan_path, "w", encoding="utf-8") as f:
        json.dump(render(endpoint, region, outputs), f, indent=1)


if __name__ == "__main__":
    main()
