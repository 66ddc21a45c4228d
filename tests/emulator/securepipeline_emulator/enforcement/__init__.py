"""IAM policy enforcement: who is calling, which policies apply, what they
decide, and AWS's AccessDenied answer when they deny.

Off unless switched on (`--enforce-iam`, `SECUREPIPELINE_ENFORCE_IAM=1` or
`POST /_emulator/enforcement`). When on:
- calls signed with credentials from STS AssumeRole are authorised against
  the role's policies (and the resource's, where the service has one);
- AssumeRole itself is authorised against the role's trust policy, whoever
  calls it; the emulator's own credentials are the account's root;
- every other call made with the emulator's own credentials is allowed, as
  before: they are the account's administrator.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from moto.iam.exceptions import NotFoundException
from werkzeug.wrappers import Response

from ..wire import DEFAULT_REGION, AwsError, AwsRequest, json_error, request_id
from . import actions
from .actions import Check, Unmapped
from .evaluate import Decision, Policy, PolicyError, Principal, Request, decide

ENV_SWITCH = "SECUREPIPELINE_ENFORCE_IAM"
# Requests to the emulator are plain HTTP on loopback; they stand for HTTPS
# calls to AWS, so aws:SecureTransport is true unless a test says otherwise.
SECURE_TRANSPORT_HEADER = "X-Emulator-Secure-Transport"
# What a service adds when it calls on a resource's behalf.
SOURCE_ARN_HEADER = "X-Emulator-Source-Arn"
SOURCE_ACCOUNT_HEADER = "X-Emulator-Source-Account"

_ADMIN_IDENTITY = Policy(
    "the account's administrator (the emulator's own credentials)",
    {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
)
# Calls any principal may make: AWS authorises none of them.
_UNAUTHORISED_OPERATIONS = {("sts", "GetCallerIdentity")}


@dataclass
class Outcome:
    """A decision and what it was about, as the decisions log shows it."""

    principal: str
    operation: str
    action: str
    resource: str
    allowed: bool
    reason: str
    policy: str | None
    statement: str | None
    message: str

    def view(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Enforcer:
    def __init__(self, enabled: bool | None = None) -> None:
        if enabled is None:
            enabled = os.environ.get(ENV_SWITCH, "") not in ("", "0", "false")
        self.enabled = enabled
        self._decisions: list[Outcome] = []
        self._lock = threading.Lock()

    # -------------------------------------------------------- decisions --

    def decisions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [d.view() for d in self._decisions]

    def reset(self) -> None:
        with self._lock:
            self._decisions.clear()

    def _record(self, outcome: Outcome) -> Outcome:
        with self._lock:
            self._decisions.append(outcome)
        return outcome

    # ------------------------------------------------------ API requests --

    def authorize(self, request: AwsRequest) -> Response | None:
        """None when the call may go on; AWS's AccessDenied answer otherwise."""
        if not self.enabled or (request.service, request.operation) in _UNAUTHORISED_OPERATIONS:
            return None
        principal = principal_of(request)
        if principal is None and (request.service, request.operation) != ("sts", "AssumeRole"):
            return None  # the administrator
        who = principal or _root(request.account)
        try:
            checks = actions.checks_for(request, request.service)
        except AwsError as error:  # the request lacks what names its resource
            return error_response(request, error)
        except Unmapped as unmapped:
            outcome = self._record(
                Outcome(who.arn, _op(request), "", "", False, "unmapped", None, None, str(unmapped))
            )
            return denial(request, outcome.message)
        for check in checks:
            check.context.update(request_context(request, who))
            outcome = self.check(who, check, _op(request))
            if not outcome.allowed:
                return denial(request, outcome.message)
        return None

    def check(self, principal: Principal, check: Check, operation: str) -> Outcome:
        """Decide one action on one resource, and record it."""
        request = Request(principal, check.action, check.resource, check.context)
        try:
            resource, required = resource_policies(check, principal.account)
            decision = decide(request, identity_policies(principal), resource, required)
        except PolicyError as error:
            message = f"the emulator cannot evaluate a policy for {check.action}: {error}"
            return self._record(
                Outcome(principal.arn, operation, check.action, check.resource,
                        False, "unreadable-policy", None, None, message)
            )
        return self._record(_outcome(principal, operation, request, decision))

    # --------------------------------------------- a service's own calls --

    def assume_as_service(self, body: dict[str, Any]) -> dict[str, Any]:
        """AssumeRole as an AWS service does it (CodeBuild taking a
        project's service role): the trust policy must allow the service
        principal under the source ARN and account given."""
        service = _text(body, "service")
        role_arn = _text(body, "roleArn")
        account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else ""
        principal = Principal(arn=service, account=account, service=service)
        context: dict[str, str | list[str]] = {"aws:SecureTransport": "true"}
        if isinstance(body.get("sourceArn"), str):
            context["aws:SourceArn"] = body["sourceArn"]
        if isinstance(body.get("sourceAccount"), str):
            context["aws:SourceAccount"] = body["sourceAccount"]
        check = Check("sts:AssumeRole", role_arn, context)
        outcome = self.check(principal, check, "sts AssumeRole (as a service)")
        if not outcome.allowed:
            raise AwsError("AccessDenied", outcome.message, 403)
        from moto.sts.models import sts_backends

        session = body.get("sessionName") or service.split(".")[0]
        assumed = sts_backends[account]["aws"].assume_role(
            region_name=DEFAULT_REGION,
            role_session_name=session,
            role_arn=role_arn,
            policy="",
            duration=3600,
            external_id="",
        )
        return {
            "AccessKeyId": assumed.access_key_id,
            "SecretAccessKey": assumed.secret_access_key,
            "SessionToken": assumed.session_token,
            "Arn": assumed.arn,
        }

    def authorize_on_behalf(self, body: dict[str, Any]) -> dict[str, Any]:
        """A service checking an action it takes with a principal's
        permissions that has no API call of its own (codeconnections
        UseConnection, iam:PassRole when a role is handed over)."""
        access_key = _text(body, "accessKeyId")
        principal = principal_for_key(access_key)
        if principal is None:
            raise AwsError("ValidationException", f"{access_key} is not a key from AssumeRole")
        context = body.get("context") or {}
        if not isinstance(context, dict):
            raise AwsError("ValidationException", "context must be an object of key to value(s)")
        context = {**_principal_keys(principal), "aws:SecureTransport": "true", **context}
        check = Check(_text(body, "action"), _text(body, "resource"), context)
        return self.check(principal, check, f"on behalf: {check.action}").view()


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise AwsError("ValidationException", f"{name} is required (a string)")
    return value


def _op(request: AwsRequest) -> str:
    return f"{request.service} {request.operation}"


def _root(account: str) -> Principal:
    return Principal(arn=f"arn:aws:iam::{account}:root", account=account)


def principal_of(request: AwsRequest) -> Principal | None:
    return principal_for_key(request.access_key) if request.access_key else None


def principal_for_key(access_key: str) -> Principal | None:
    """The assumed-role session behind a key, or None (the administrator)."""
    from moto.iam.models import get_account_id_from
    from moto.sts.models import sts_backends

    account = get_account_id_from(access_key)
    assumed = sts_backends[account]["aws"].get_assumed_role_from_access_key(access_key)
    if assumed is None:
        return None
    return Principal(arn=assumed.arn, account=assumed.account_id, role_arn=assumed.role_arn)


def _principal_keys(principal: Principal) -> dict[str, str | list[str]]:
    keys: dict[str, str | list[str]] = {"aws:PrincipalAccount": principal.account}
    keys["aws:PrincipalArn"] = principal.role_arn or principal.arn
    return keys


def request_context(request: AwsRequest, principal: Principal) -> dict[str, str | list[str]]:
    """The global condition keys of an API request."""
    secure = request.headers.get(SECURE_TRANSPORT_HEADER, "true").lower()
    context: dict[str, str | list[str]] = {
        **_principal_keys(principal),
        "aws:SecureTransport": "false" if secure == "false" else "true",
        "aws:RequestedRegion": request.region,
    }
    if SOURCE_ARN_HEADER in request.headers:
        context["aws:SourceArn"] = request.headers[SOURCE_ARN_HEADER]
    if SOURCE_ACCOUNT_HEADER in request.headers:
        context["aws:SourceAccount"] = request.headers[SOURCE_ACCOUNT_HEADER]
    return context


# ------------------------------------------------------------- policies --


def identity_policies(principal: Principal) -> list[Policy]:
    """The role's inline and attached managed policies, as IAM holds them."""
    if principal.is_service:
        return []
    if principal.role_arn is None:
        return [_ADMIN_IDENTITY]
    from moto.iam.models import iam_backends

    backend = iam_backends[principal.account]["aws"]
    try:
        role = backend.get_role_by_arn(principal.role_arn)
    except NotFoundException:  # a deleted role: its sessions have no permissions left
        return []
    name = principal.role_arn.split("/")[-1]
    policies = [
        Policy(f"role/{name} inline policy {policy_name}", _document(text))
        for policy_name, text in role.policies.items()
    ]
    for arn, managed in role.managed_policies.items():
        version = next(v for v in managed.versions if v.version_id == managed.default_version_id)
        policies.append(Policy(f"managed policy {arn}", _document(version.document)))
    return policies


def resource_policies(check: Check, account: str) -> tuple[list[Policy], bool]:
    """The resource's own policy, and whether it must allow (KMS key
    policies and role trust policies must; others may)."""
    service = check.action.split(":", 1)[0]
    arn = check.resource
    if service == "s3":
        from moto.s3.models import s3_backends

        bucket_name = arn.split(":::", 1)[-1].split("/", 1)[0]
        bucket = s3_backends[account]["aws"].buckets.get(bucket_name)
        if bucket is None or not bucket.policy:
            return [], False
        return [Policy(f"bucket policy of {bucket_name}", _document(bucket.policy), True)], False
    if service == "kms" and ":key/" in arn:  # not `*` (CreateKey) or an alias
        from moto.kms.models import kms_backends

        region = arn.split(":")[3]
        key = kms_backends[account][region].keys.get(arn.rsplit("/", 1)[-1])
        if key is None:
            return [], True
        return [Policy(f"key policy of {arn}", _document(key.policy), True)], True
    if service == "sns":
        from moto.sns.models import sns_backends

        region = arn.split(":")[3]
        topic = sns_backends[account][region].topics.get(arn)
        if topic is None:
            return [], False
        return [Policy(f"topic policy of {arn}", _document(topic.policy), True)], False
    if check.action == "sts:AssumeRole":
        from moto.iam.models import iam_backends

        try:
            role = iam_backends[account]["aws"].get_role_by_arn(arn)
        except NotFoundException:  # no such role: nothing trusts anyone
            return [], True
        trust = role.assume_role_policy_document
        return [Policy(f"trust policy of {arn}", _document(trust), True)], True
    return [], False


def _document(text: Any) -> dict[str, Any]:
    if isinstance(text, bytes):
        text = text.decode()
    if isinstance(text, dict):
        return text
    try:
        # IAM hands documents back URL-encoded; moto may hold either form.
        value = json.loads(text if text.lstrip().startswith("{") else unquote(text))
    except ValueError as error:
        raise PolicyError(f"a policy is not JSON: {error}") from error
    if not isinstance(value, dict):
        raise PolicyError("a policy is not a JSON object")
    return value


def _outcome(principal: Principal, operation: str, request: Request, decision: Decision) -> Outcome:
    deciding = decision.deciding
    return Outcome(
        principal=principal.arn,
        operation=operation,
        action=request.action,
        resource=request.resource,
        allowed=decision.allowed,
        reason=decision.reason,
        policy=deciding.policy if deciding else None,
        statement=deciding.statement if deciding else None,
        message="" if decision.allowed else decision.message(request),
    )


# -------------------------------------------------------------- answers --


def denial(request: AwsRequest, message: str) -> Response:
    """AccessDenied in the shape of the request's protocol."""
    if request.target:
        code = "AccessDeniedException"
    else:  # S3 and query protocols; SNS names it AuthorizationError
        code = "AuthorizationError" if request.service == "sns" else "AccessDenied"
    status = 400 if request.target else 403
    return error_response(request, AwsError(code, message, status))


def error_response(request: AwsRequest, error: AwsError) -> Response:
    """An error in the shape of the request's protocol: JSON, S3 REST XML
    or query XML."""
    if request.target:
        sent = request.headers.get("Content-Type", "")
        return json_error(error, "1.0" if sent.endswith("1.0") else "1.1")
    escaped = error.message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    rid = request_id()
    if request.service == "s3":
        # A HEAD answer has no body: the SDKs read the status alone.
        body = "" if request.method == "HEAD" else (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{error.code}</Code><Message>{escaped}</Message>"
            f"<RequestId>{rid}</RequestId></Error>"
        )
        headers = {"x-amz-request-id": rid}
        return Response(body, status=error.status, content_type="application/xml", headers=headers)
    body = (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{error.code}</Code>"
        f"<Message>{escaped}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>"
    )
    return Response(body, status=error.status, content_type="text/xml", headers={"x-amzn-RequestId": rid})
