"""KMS: the policy name default, explicit denies of PutKeyPolicy, and AWS
managed keys that say so.

PolicyName became optional (it defaults to "default", the only policy a key
has); moto still treats a missing name as an unknown policy and answers
NotFoundException. We fill in the default before moto sees the request.

moto enforces a key policy's explicit Deny for DescribeKey only. A key whose
policy denies `kms:PutKeyPolicy` to everyone is how a real key refuses to
let the provider add its statements, so PutKeyPolicy honours such a Deny
(Resource `*`, no condition; the emulator cannot tell callers apart).

moto creates the keys behind `alias/aws/<service>` on first use but labels
them CUSTOMER; on AWS they are AWS managed, which the provider must refuse.

CreateKey without KeyUsage leaves moto's key with none (DescribeKey answers
null); AWS defaults it to ENCRYPT_DECRYPT, which the provider checks.
"""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Response

from ..wire import AwsError, AwsRequest, json_error

PUT_KEY_POLICY = "kms:PutKeyPolicy"
# The action patterns a statement can name kms:PutKeyPolicy by.
_PUT_KEY_POLICY_PATTERNS = {"*", "kms:*", "kms:Put*", PUT_KEY_POLICY}


def default_policy_name(request: AwsRequest, forward: Any) -> Response:
    params = request.json
    if not params.get("PolicyName"):
        request.replace_json({**params, "PolicyName": "default"})
    return forward(request)


def default_key_usage(request: AwsRequest, forward: Any) -> Response:
    params = request.json
    if not params.get("KeyUsage"):
        request.replace_json({**params, "KeyUsage": "ENCRYPT_DECRYPT"})
    return forward(request)


def denies_put_key_policy(policy_text: str | None) -> bool:
    """Whether a key policy explicitly denies kms:PutKeyPolicy to everyone."""
    try:
        statements = json.loads(policy_text or "").get("Statement", [])
    except (ValueError, AttributeError):
        return False
    if isinstance(statements, dict):
        statements = [statements]
    for statement in statements:
        if not isinstance(statement, dict) or statement.get("Effect") != "Deny":
            continue
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        principal = statement.get("Principal")
        everyone = principal == "*" or (isinstance(principal, dict) and principal.get("AWS") == "*")
        if (
            everyone
            and statement.get("Resource") == "*"
            and not statement.get("Condition")
            and _PUT_KEY_POLICY_PATTERNS.intersection(actions)
        ):
            return True
    return False


def put_key_policy(request: AwsRequest, forward: Any) -> Response:
    from moto.kms.models import kms_backends

    key_id = request.json.get("KeyId", "")
    backend = kms_backends[request.account][request.region]
    key = backend.keys.get(backend.get_key_id(key_id))
    if key is not None and denies_put_key_policy(key.policy):
        return json_error(
            AwsError(
                "AccessDeniedException",
                f"User: arn:aws:iam::{request.account}:root is not authorized to perform: "
                f"{PUT_KEY_POLICY} on resource: {key.arn} with an explicit deny in a "
                "resource-based policy",
            )
        )
    return default_policy_name(request, forward)


def patch() -> None:
    from moto.kms.models import KmsBackend

    generate = KmsBackend._generate_default_keys

    def generate_aws_managed(self: KmsBackend, alias_name: str) -> str | None:
        key_id = generate(self, alias_name)
        if key_id is not None:
            self.keys[key_id].key_manager = "AWS"
        return key_id

    KmsBackend._generate_default_keys = generate_aws_managed  # type: ignore[method-assign]


HANDLERS = {
    ("kms", "CreateKey"): default_key_usage,
    ("kms", "GetKeyPolicy"): default_policy_name,
    ("kms", "PutKeyPolicy"): put_key_policy,
}
