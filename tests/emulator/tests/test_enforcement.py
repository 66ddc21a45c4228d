"""IAM enforcement over the wire: roles assumed through the emulator's STS
(as a service does it), then calls with those credentials allowed or denied
with AWS's AccessDenied shapes, and every decision recorded."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, Emulator, start_emulator

BUILD = "codebuild.amazonaws.com"


@pytest.fixture(scope="module")
def enforcing() -> Iterator[Emulator]:
    instance = start_emulator("--enforce-iam")
    yield instance
    instance.stop()
    instance.log_path.unlink()


def as_role(emulator: Emulator, credentials: dict[str, str], service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=emulator.endpoint,
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        config=Config(retries={"max_attempts": 1}),
    )


def assume_as_service(emulator: Emulator, role_arn: str, **body: str) -> requests.Response:
    return requests.post(
        f"{emulator.endpoint}/_emulator/enforcement/assume-role",
        json={"service": BUILD, "roleArn": role_arn, "sessionName": "build", **body},
    )


def trust(project_arn: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "TrustedService", "Effect": "Allow", "Principal": {"Service": [BUILD]}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnEquals": {"aws:SourceArn": project_arn}},
    }]})


@pytest.fixture(scope="module")
def world(enforcing: Emulator) -> dict[str, Any]:
    """A build role that may read `in/*` of a bucket, one secret (and is
    explicitly denied another), use one key, and pass itself to CodeBuild."""
    iam, s3, sm, kms = (enforcing.client(s) for s in ("iam", "s3", "secretsmanager", "kms"))
    project = f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/app"
    s3.create_bucket(Bucket="enforced-artifacts")
    s3.put_object(Bucket="enforced-artifacts", Key="in/source.zip", Body=b"zip")
    mine = sm.create_secret(Name="app/token", SecretString="t")["ARN"]
    prod = sm.create_secret(Name="prod/token", SecretString="p")["ARN"]
    delegating_key = kms.create_key()["KeyMetadata"]["Arn"]
    closed_key = kms.create_key(Policy=json.dumps({"Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/someone-else"},
        "Action": "kms:*", "Resource": "*"}]}))["KeyMetadata"]["Arn"]
    role = iam.create_role(RoleName="build", AssumeRolePolicyDocument=trust(project))["Role"]["Arn"]
    other = iam.create_role(RoleName="prod-deploy", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    iam.put_role_policy(RoleName="build", PolicyName="BuildPolicy", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadInputs", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::enforced-artifacts/in/*"},
        {"Sid": "ReadSecret", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": [mine, prod]},
        {"Sid": "DenyProductionSecrets", "Effect": "Deny", "Action": "secretsmanager:*", "Resource": prod},
        {"Sid": "UseKeys", "Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": [delegating_key, closed_key]},
        {"Sid": "PassSelf", "Effect": "Allow", "Action": "iam:PassRole", "Resource": role,
         "Condition": {"StringEquals": {"iam:PassedToService": BUILD}}},
    ]}))
    answer = assume_as_service(enforcing, role, sourceArn=project, sourceAccount=ACCOUNT)
    assert answer.status_code == 200, answer.text
    return {"role": role, "other": other, "project": project, "mine": mine, "prod": prod,
            "open_key": delegating_key, "closed_key": closed_key, "creds": answer.json()}


def test_the_trust_policy_decides_who_may_assume_the_role(enforcing: Emulator, world: dict[str, Any]) -> None:
    elsewhere = assume_as_service(enforcing, world["role"], sourceArn=world["project"] + "-other", sourceAccount=ACCOUNT)
    assert elsewhere.status_code == 403
    assert "is not authorized to perform: sts:AssumeRole" in elsewhere.json()["message"]
    assert assume_as_service(enforcing, world["role"], sourceAccount=ACCOUNT).status_code == 403
    # The emulator's own credentials are the account's root, which this
    # trust policy does not name: STS answers AccessDenied (query protocol).
    with pytest.raises(ClientError) as denied:
        enforcing.client("sts").assume_role(RoleArn=world["role"], RoleSessionName="root")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # A trust policy naming the account delegates to the caller's policies.
    enforcing.client("sts").assume_role(RoleArn=world["other"], RoleSessionName="admin")


def test_s3_reads_what_the_role_allows_and_nothing_else(enforcing: Emulator, world: dict[str, Any]) -> None:
    s3 = as_role(enforcing, world["creds"], "s3")
    assert s3.get_object(Bucket="enforced-artifacts", Key="in/source.zip")["Body"].read() == b"zip"
    with pytest.raises(ClientError) as denied:
        s3.put_object(Bucket="enforced-artifacts", Key="in/source.zip", Body=b"evil")
    error = denied.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403)
    assert error["Error"]["Message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/build/build is not authorized to perform: "
        "s3:PutObject on resource: arn:aws:s3:::enforced-artifacts/in/source.zip "
        "because no identity-based policy allows the s3:PutObject action"
    )
    assert enforcing.client("s3").get_object(Bucket="enforced-artifacts", Key="in/source.zip")["Body"].read() == b"zip"


def test_secrets_explicit_deny_wins(enforcing: Emulator, world: dict[str, Any]) -> None:
    sm = as_role(enforcing, world["creds"], "secretsmanager")
    assert sm.get_secret_value(SecretId="app/token")["SecretString"] == "t"
    with pytest.raises(ClientError) as denied:
        sm.get_secret_value(SecretId="prod/token")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert denied.value.response["Error"]["Message"].endswith("with an explicit deny in an identity-based policy")
    decisions = requests.get(f"{enforcing.endpoint}/_emulator/decisions").json()
    last = [d for d in decisions if d["action"] == "secretsmanager:GetSecretValue"][-1]
    assert (last["allowed"], last["statement"], last["resource"]) == (False, "DenyProductionSecrets", world["prod"])
    assert last["policy"] == "role/build inline policy BuildPolicy"


def test_kms_needs_the_key_policy_too(enforcing: Emulator, world: dict[str, Any]) -> None:
    kms = as_role(enforcing, world["creds"], "kms")
    blob = kms.encrypt(KeyId=world["open_key"], Plaintext=b"x")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"  # key found in the ciphertext
    enforcing.client("kms").create_alias(AliasName="alias/enforced-open", TargetKeyId=world["open_key"])
    kms.encrypt(KeyId="alias/enforced-open", Plaintext=b"x")  # authorised on the key behind the alias
    decided = requests.get(f"{enforcing.endpoint}/_emulator/decisions").json()[-1]
    assert (decided["action"], decided["resource"], decided["allowed"]) == ("kms:Encrypt", world["open_key"], True)
    with pytest.raises(ClientError) as denied:
        kms.encrypt(KeyId=world["closed_key"], Plaintext=b"x")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "because no resource-based policy allows the kms:Encrypt action" in denied.value.response["Error"]["Message"]


def test_passing_a_role_is_authorised_with_the_service_it_goes_to(enforcing: Emulator, world: dict[str, Any]) -> None:
    def authorize(service: str) -> dict[str, Any]:
        return requests.post(f"{enforcing.endpoint}/_emulator/enforcement/authorize", json={
            "accessKeyId": world["creds"]["AccessKeyId"], "action": "iam:PassRole", "resource": world["role"],
            "context": {"iam:PassedToService": service}}).json()

    assert authorize(BUILD)["allowed"] is True
    refused = authorize("codepipeline.amazonaws.com")
    assert (refused["allowed"], refused["reason"]) == (False, "no-identity-allow")


def test_an_unmapped_call_is_denied_by_name(enforcing: Emulator, world: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as denied:
        as_role(enforcing, world["creds"], "s3").list_buckets()
    assert "does not map s3 ListBuckets" in denied.value.response["Error"]["Message"]
    # AWS authorises no one for GetCallerIdentity.
    identity = as_role(enforcing, world["creds"], "sts").get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/build/build"


def test_insecure_transport_is_a_header_away(enforcing: Emulator, world: dict[str, Any]) -> None:
    s3 = enforcing.client("s3")
    s3.put_bucket_policy(Bucket="enforced-artifacts", Policy=json.dumps({"Statement": [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": ["arn:aws:s3:::enforced-artifacts", "arn:aws:s3:::enforced-artifacts/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}))
    role_s3 = as_role(enforcing, world["creds"], "s3")

    def plain_http(request: Any, **_: Any) -> None:
        request.headers["X-Emulator-Secure-Transport"] = "false"

    assert role_s3.get_object(Bucket="enforced-artifacts", Key="in/source.zip")["Body"].read() == b"zip"
    role_s3.meta.events.register("before-sign.s3.GetObject", plain_http)
    with pytest.raises(ClientError) as denied:
        role_s3.get_object(Bucket="enforced-artifacts", Key="in/source.zip")
    assert "with an explicit deny in a resource-based policy" in denied.value.response["Error"]["Message"]
    s3.delete_bucket_policy(Bucket="enforced-artifacts")


def test_enforcement_is_off_by_default_and_switchable(emulator: Emulator, unique: Callable[[str], str]) -> None:
    admin = f"{emulator.endpoint}/_emulator/enforcement"
    assert requests.get(admin).json() == {"enabled": False}
    name = unique("loose")
    emulator.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=trust("arn:aws:codebuild:x"))
    role = f"arn:aws:iam::{ACCOUNT}:role/{name}"
    creds = emulator.client("sts").assume_role(RoleArn=role, RoleSessionName="loose")["Credentials"]
    # No policy at all, and still allowed: nothing is enforced.
    as_role(emulator, creds, "s3").list_buckets()
    try:
        assert requests.post(admin, json={"enabled": True}).json() == {"enabled": True}
        with pytest.raises(ClientError):
            as_role(emulator, creds, "s3").list_buckets()
    finally:
        requests.post(admin, json={"enabled": False}).raise_for_status()
    requests.post(f"{emulator.endpoint}/_emulator/decisions/reset").raise_for_status()
    assert requests.get(f"{emulator.endpoint}/_emulator/decisions").json() == []


def test_each_parameter_of_get_parameters_is_authorised(enforcing: Emulator, world: dict[str, Any]) -> None:
    ssm = enforcing.client("ssm")
    for name in ("/app/a", "/prod/b"):
        ssm.put_parameter(Name=name, Value="v", Type="String")
    enforcing.client("iam").put_role_policy(RoleName="build", PolicyName="Parameters", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Sid": "ReadAppParameters", "Effect": "Allow",
        "Action": ["ssm:GetParameter", "ssm:GetParameters"],
        "Resource": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/app/*"}]}))
    role_ssm = as_role(enforcing, world["creds"], "ssm")
    assert role_ssm.get_parameter(Name="/app/a")["Parameter"]["Value"] == "v"
    assert len(role_ssm.get_parameters(Names=["/app/a"])["Parameters"]) == 1
    with pytest.raises(ClientError) as denied:
        role_ssm.get_parameters(Names=["/app/a", "/prod/b"])
    assert "parameter/prod/b because no identity-based policy allows" in denied.value.response["Error"]["Message"]


def test_a_role_override_on_start_build_needs_pass_role(enforcing: Emulator, world: dict[str, Any]) -> None:
    enforcing.client("iam").put_role_policy(RoleName="build", PolicyName="Builds", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Sid": "RunApp", "Effect": "Allow",
        "Action": "codebuild:StartBuild", "Resource": world["project"]}]}))
    codebuild = as_role(enforcing, world["creds"], "codebuild")
    requests.post(f"{enforcing.endpoint}/_emulator/decisions/reset").raise_for_status()
    for override in (world["role"], world["other"]):
        try:
            codebuild.start_build(projectName="app", serviceRoleOverride=override)
        except ClientError as error:
            if override == world["role"]:  # authorised; moto has no project "app"
                assert error.response["Error"]["Code"] != "AccessDeniedException"
            else:
                assert error.response["Error"]["Code"] == "AccessDeniedException"
                assert "perform: iam:PassRole on resource: " + world["other"] in error.response["Error"]["Message"]
    decided = [(d["action"], d["resource"], d["allowed"]) for d in
               requests.get(f"{enforcing.endpoint}/_emulator/decisions").json()]
    assert decided == [
        ("codebuild:StartBuild", world["project"], True),
        ("iam:PassRole", world["role"], True),
        ("codebuild:StartBuild", world["project"], True),
        ("iam:PassRole", world["other"], False),
    ]


def test_sns_and_logs_denials_speak_their_protocols(enforcing: Emulator, world: dict[str, Any]) -> None:
    topic = enforcing.client("sns").create_topic(Name="enforced")["TopicArn"]
    with pytest.raises(ClientError) as denied:
        as_role(enforcing, world["creds"], "sns").publish(TopicArn=topic, Message="m")
    assert denied.value.response["Error"]["Code"] == "AuthorizationError"
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    enforcing.client("logs").create_log_group(logGroupName="/enforced")
    with pytest.raises(ClientError) as denied:
        as_role(enforcing, world["creds"], "logs").create_log_stream(logGroupName="/enforced", logStreamName="s")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "log-group:/enforced:log-stream:s because" in denied.value.response["Error"]["Message"]


def test_sse_kms_objects_need_the_key_through_s3(enforcing: Emulator, world: dict[str, Any]) -> None:
    s3 = enforcing.client("s3")
    s3.create_bucket(Bucket="enforced-sealed")
    s3.put_bucket_encryption(Bucket="enforced-sealed", ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": world["open_key"]},
        "BucketKeyEnabled": True}]})
    s3.put_object(Bucket="enforced-sealed", Key="a", Body=b"sealed")
    enforcing.client("iam").put_role_policy(RoleName="build", PolicyName="Sealed", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Sid": "Sealed", "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::enforced-sealed/*"}]}))
    role_s3 = as_role(enforcing, world["creds"], "s3")
    # The role may decrypt with the key (and the key's policy delegates to IAM) ...
    assert role_s3.get_object(Bucket="enforced-sealed", Key="a")["Body"].read() == b"sealed"
    # ... but not generate data keys, so it cannot write there.
    with pytest.raises(ClientError) as denied:
        role_s3.put_object(Bucket="enforced-sealed", Key="b", Body=b"x")
    assert denied.value.response["Error"]["Message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/build/build is not authorized to perform: "
        f"kms:GenerateDataKey on resource: {world['open_key']} "
        "because no identity-based policy allows the kms:GenerateDataKey action"
    )


def test_bucket_logging_is_authorised_as_its_own_actions(enforcing: Emulator, world: dict[str, Any]) -> None:
    # The build role holds no s3:PutBucketLogging: refused as that action on
    # the bucket, not as a call the emulator cannot map.
    with pytest.raises(ClientError) as denied:
        as_role(enforcing, world["creds"], "s3").put_bucket_logging(
            Bucket="enforced-artifacts",
            BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": "enforced-artifacts", "TargetPrefix": "logs/"}},
        )
    assert denied.value.response["Error"]["Message"].endswith(
        "s3:PutBucketLogging on resource: arn:aws:s3:::enforced-artifacts "
        "because no identity-based policy allows the s3:PutBucketLogging action"
    )
    with pytest.raises(ClientError) as denied:
        as_role(enforcing, world["creds"], "s3").get_bucket_logging(Bucket="enforced-artifacts")
    assert "s3:GetBucketLogging on resource: arn:aws:s3:::enforced-artifacts" in denied.value.response["Error"]["Message"]
