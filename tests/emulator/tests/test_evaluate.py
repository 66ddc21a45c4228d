"""The policy evaluator on its own: documents and a request in, a decision
and the deciding statement out."""

from __future__ import annotations

from securepipeline_emulator.enforcement.evaluate import (
    Policy,
    PolicyError,
    Principal,
    Request,
    conditions_hold,
    decide,
)

import pytest

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/build"
SESSION = Principal(f"arn:aws:sts::{ACCOUNT}:assumed-role/build/s", ACCOUNT, role_arn=ROLE)
BUCKET = "arn:aws:s3:::artifacts"


def identity(*statements: dict) -> Policy:
    return Policy("role/build inline policy p", {"Statement": list(statements)})


def resource(*statements: dict, label: str = "bucket policy of artifacts") -> Policy:
    return Policy(label, {"Statement": list(statements)}, resource_based=True)


def request(action: str, arn: str, **context: str | list[str]) -> Request:
    return Request(SESSION, action, arn, context)


def allow(action: object, arn: object, **extra: object) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": arn, **extra}


def test_nothing_allows_means_implicit_deny_in_aws_words() -> None:
    req = request("s3:PutObject", f"{BUCKET}/k")
    decision = decide(req, [identity(allow("s3:GetObject", f"{BUCKET}/*"))])
    assert not decision.allowed
    assert decision.message(req) == (
        f"User: {SESSION.arn} is not authorized to perform: s3:PutObject on resource: "
        f"{BUCKET}/k because no identity-based policy allows the s3:PutObject action"
    )


def test_wildcards_in_actions_are_case_insensitive_and_resources_glob() -> None:
    policy = identity(allow("S3:Get*", f"{BUCKET}/app/*"))
    assert decide(request("s3:GetObjectVersion", f"{BUCKET}/app/a/b"), [policy]).allowed
    assert not decide(request("s3:GetObject", f"{BUCKET}/other/a"), [policy]).allowed
    assert not decide(request("s3:PutObject", f"{BUCKET}/app/a"), [policy]).allowed


def test_explicit_deny_wins_over_any_allow_and_names_its_statement() -> None:
    req = request("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:1:secret:prod-x")
    decision = decide(
        req,
        [
            identity(
                allow("*", "*"),
                {"Sid": "DenyProductionSecrets", "Effect": "Deny", "Action": "secretsmanager:*",
                 "Resource": "arn:aws:secretsmanager:us-east-1:1:secret:prod-*"},
            )
        ],
    )
    assert not decision.allowed
    assert decision.deciding is not None and decision.deciding.statement == "DenyProductionSecrets"
    assert decision.message(req).endswith("with an explicit deny in an identity-based policy")


def test_a_resource_policy_deny_overrides_an_identity_allow() -> None:
    req = request("s3:PutObject", f"{BUCKET}/k", **{"aws:SecureTransport": "false"})
    deny_http = {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                 "Resource": [BUCKET, f"{BUCKET}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    decision = decide(req, [identity(allow("s3:PutObject", "*"))], [resource(deny_http)])
    assert (decision.allowed, decision.reason) == (False, "explicit-deny-resource")
    over_tls = request("s3:PutObject", f"{BUCKET}/k", **{"aws:SecureTransport": "true"})
    assert decide(over_tls, [identity(allow("s3:PutObject", "*"))], [resource(deny_http)]).allowed


def test_not_action_and_not_resource() -> None:
    policy = identity({"Effect": "Allow", "NotAction": "iam:*", "NotResource": f"{BUCKET}/secret/*"})
    assert decide(request("s3:GetObject", f"{BUCKET}/a"), [policy]).allowed
    assert not decide(request("iam:PassRole", ROLE), [policy]).allowed
    assert not decide(request("s3:GetObject", f"{BUCKET}/secret/a"), [policy]).allowed


def test_a_bucket_policy_naming_the_role_allows_on_its_own() -> None:
    policy = resource({"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "s3:GetObject", "Resource": f"{BUCKET}/*"})
    assert decide(request("s3:GetObject", f"{BUCKET}/a"), [], [policy]).allowed


def test_a_key_policy_must_allow_directly_or_delegate_to_iam() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/k"
    uses_key = identity(allow("kms:Decrypt", key))
    delegating = resource(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"},
        label="key policy",
    )
    other = resource({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/x"},
                      "Action": "kms:*", "Resource": "*"}, label="key policy")
    req = request("kms:Decrypt", key)
    assert decide(req, [uses_key], [delegating], resource_policy_required=True).allowed
    # The key delegates, but the role's policies do not allow.
    assert not decide(req, [], [delegating], resource_policy_required=True).allowed
    # The role's policies allow, but the key does not.
    refused = decide(req, [uses_key], [other], resource_policy_required=True)
    assert (refused.allowed, refused.reason) == (False, "no-resource-allow")
    assert refused.message(req).endswith("because no resource-based policy allows the kms:Decrypt action")


def test_trust_policy_for_a_service_checks_source_arn_and_account() -> None:
    trust = resource(
        {"Sid": "TrustedService", "Effect": "Allow", "Principal": {"Service": ["codebuild.amazonaws.com"]},
         "Action": "sts:AssumeRole",
         "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                       "ArnEquals": {"aws:SourceArn": "arn:aws:codebuild:us-east-1:123456789012:project/p"}}},
        label="trust policy",
    )
    codebuild = Principal("codebuild.amazonaws.com", ACCOUNT, service="codebuild.amazonaws.com")
    events = Principal("events.amazonaws.com", ACCOUNT, service="events.amazonaws.com")
    good = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": "arn:aws:codebuild:us-east-1:123456789012:project/p"}
    assert decide(Request(codebuild, "sts:AssumeRole", ROLE, good), [], [trust], True).allowed
    other_project = {**good, "aws:SourceArn": "arn:aws:codebuild:us-east-1:123456789012:project/q"}
    assert not decide(Request(codebuild, "sts:AssumeRole", ROLE, other_project), [], [trust], True).allowed
    assert not decide(Request(codebuild, "sts:AssumeRole", ROLE, {"aws:SourceAccount": ACCOUNT}), [], [trust], True).allowed
    assert not decide(Request(events, "sts:AssumeRole", ROLE, good), [], [trust], True).allowed
    assert not decide(Request(SESSION, "sts:AssumeRole", ROLE, good), [], [trust], True).allowed


def test_condition_operators() -> None:
    ctx = {"iam:PassedToService": "codebuild.amazonaws.com", "s3:prefix": "state/app/dev/x",
           "kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:1:log-group:g"}
    assert conditions_hold({"StringEquals": {"iam:passedtoservice": "codebuild.amazonaws.com"}}, ctx)
    assert not conditions_hold({"StringEquals": {"iam:PassedToService": "codepipeline.amazonaws.com"}}, ctx)
    assert conditions_hold({"StringLike": {"s3:prefix": ["state/app/dev/*", "x"]}}, ctx)
    assert not conditions_hold({"StringLike": {"s3:prefix": "state/app/prod/*"}}, ctx)
    assert conditions_hold({"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:*:1:log-group:*"}}, ctx)
    assert not conditions_hold({"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:2:log-group:g"}}, ctx)
    # Missing keys: Null says so; a plain operator fails; a negated one or IfExists holds.
    assert conditions_hold({"Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "true"}}, ctx)
    assert not conditions_hold({"Null": {"s3:prefix": "true"}}, ctx)
    assert not conditions_hold({"StringEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}, ctx)
    assert conditions_hold({"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}, ctx)
    assert conditions_hold({"StringEqualsIfExists": {"s3:x-amz-server-side-encryption": "x"}}, ctx)
    assert conditions_hold({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "false"})
    # Every operator and key must hold.
    assert not conditions_hold(
        {"StringEquals": {"iam:PassedToService": "codebuild.amazonaws.com"}, "StringLike": {"s3:prefix": "nope"}}, ctx
    )
    # Multi-valued keys.
    keys = {"kms:EncryptionContextKeys": ["a", "b"]}
    assert conditions_hold({"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "b"}}, keys)
    assert not conditions_hold({"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": "b"}}, keys)
    assert conditions_hold({"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["a", "b", "c"]}}, keys)


def test_an_unknown_operator_is_an_error_not_a_silent_decision() -> None:
    with pytest.raises(PolicyError, match="NumericLessThan"):
        conditions_hold({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "5"})
