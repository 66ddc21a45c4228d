"""IAM policy evaluation, pure: policy documents and one request in, a
decision out, with the statement that decided it.

It follows AWS's evaluation logic for one account: an explicit Deny in any
applicable policy wins; otherwise an Allow in an identity-based policy or in
the resource's policy allows, except where the resource policy is mandatory
(KMS key policies, role trust policies): there the resource policy must
allow, naming the principal itself, or naming the account and delegating to
the identity policies, which must then allow too.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


class PolicyError(Exception):
    """A policy this evaluator cannot read (it would not decide silently)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: an assumed-role session or an AWS service."""

    arn: str  # session ARN (arn:aws:sts::A:assumed-role/R/S) or service principal
    account: str
    role_arn: str | None = None  # the role behind a session
    service: str | None = None  # e.g. codebuild.amazonaws.com

    @property
    def is_service(self) -> bool:
        return self.service is not None


@dataclass
class Request:
    principal: Principal
    action: str  # service:Action
    resource: str  # an ARN, or "*" for actions without a resource
    # Condition context keys; matched case-insensitively; a value is a
    # string or a list of strings (multi-valued keys).
    context: Mapping[str, str | list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Policy:
    label: str  # e.g. "role/build inline policy BuildPolicy", "key policy of k"
    document: Mapping[str, Any]
    resource_based: bool = False


@dataclass(frozen=True)
class Match:
    policy: str
    statement: str  # the Sid, or "#<index>" when it has none
    effect: str
    resource_based: bool
    via_account: bool = False  # a resource policy naming the account, not the principal


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # "explicit-deny-identity", "explicit-deny-resource", "allowed",
    # "no-identity-allow", "no-resource-allow"
    reason: str
    deciding: Match | None

    def message(self, request: Request) -> str:
        head = (
            f"User: {request.principal.arn} is not authorized to perform: "
            f"{request.action} on resource: {request.resource}"
        )
        tails = {
            "explicit-deny-identity": "with an explicit deny in an identity-based policy",
            "explicit-deny-resource": "with an explicit deny in a resource-based policy",
            "no-identity-allow": f"because no identity-based policy allows the {request.action} action",
            "no-resource-allow": f"because no resource-based policy allows the {request.action} action",
        }
        return f"{head} {tails[self.reason]}"


def decide(
    request: Request,
    identity: Iterable[Policy],
    resource: Iterable[Policy] = (),
    resource_policy_required: bool = False,
) -> Decision:
    identity_matches = [m for p in identity for m in _matches(p, request)]
    resource_matches = [m for p in resource for m in _matches(p, request)]
    for match in identity_matches + resource_matches:
        if match.effect == "Deny":
            reason = "explicit-deny-resource" if match.resource_based else "explicit-deny-identity"
            return Decision(False, reason, match)
    identity_allow = next(iter(identity_matches), None)
    direct_allow = next((m for m in resource_matches if not m.via_account), None)
    account_allow = next((m for m in resource_matches if m.via_account), None)
    if direct_allow:
        return Decision(True, "allowed", direct_allow)
    if resource_policy_required:
        if account_allow is None:
            return Decision(False, "no-resource-allow", None)
        if identity_allow is None:
            return Decision(False, "no-identity-allow", account_allow)
        return Decision(True, "allowed", identity_allow)
    if identity_allow:
        return Decision(True, "allowed", identity_allow)
    return Decision(False, "no-identity-allow", None)


def _matches(policy: Policy, request: Request) -> list[Match]:
    statements = policy.document.get("Statement", [])
    if isinstance(statements, Mapping):
        statements = [statements]
    found = []
    for index, statement in enumerate(statements):
        effect = statement.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise PolicyError(f"{policy.label}: statement #{index} has Effect {effect!r}")
        via_account = False
        if policy.resource_based:
            principal = _principal_match(statement, request.principal)
            if principal is None:
                continue
            via_account = principal == "account"
        if not _listed(statement, "Action", "NotAction", request.action, _action_matches):
            continue
        if not policy.resource_based or "Resource" in statement or "NotResource" in statement:
            if not _listed(statement, "Resource", "NotResource", request.resource, _glob):
                continue
        if not conditions_hold(statement.get("Condition", {}), request.context):
            continue
        sid = statement.get("Sid") or f"#{index}"
        found.append(Match(policy.label, sid, effect, policy.resource_based, via_account))
    return found


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _listed(statement: Mapping[str, Any], key: str, not_key: str, value: str, match: Any) -> bool:
    if key in statement:
        return any(match(pattern, value) for pattern in _as_list(statement[key]))
    if not_key in statement:
        return not any(match(pattern, value) for pattern in _as_list(statement[not_key]))
    return False


def _action_matches(pattern: str, action: str) -> bool:
    # Action names are case-insensitive; `*` and `?` are wildcards.
    return _glob(pattern.lower(), action.lower())


def _glob(pattern: str, value: str) -> bool:
    # fnmatch's `[` classes are not IAM syntax: escape them.
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def _principal_match(statement: Mapping[str, Any], principal: Principal) -> str | None:
    """"direct" when the statement names this principal (or everyone),
    "account" when it names only the principal's account, else None."""
    if "NotPrincipal" in statement:
        raise PolicyError("NotPrincipal is not supported by the emulator's evaluator")
    named = statement.get("Principal")
    if named == "*":
        return "direct"
    if not isinstance(named, Mapping):
        return None
    if principal.is_service:
        return "direct" if principal.service in _as_list(named.get("Service")) else None
    result = None
    for entry in _as_list(named.get("AWS")):
        if entry == "*" or entry in (principal.arn, principal.role_arn):
            return "direct"
        if entry in (principal.account, f"arn:aws:iam::{principal.account}:root"):
            result = "account"
    return result


# ------------------------------------------------------------ conditions --

_OPERATOR = re.compile(r"^(?:(ForAnyValue|ForAllValues):)?([A-Za-z]+?)(IfExists)?$")


def conditions_hold(conditions: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    """Every operator, every key in it, must hold (AND); any of a key's
    values may match (OR)."""
    lowered = {key.lower(): value for key, value in context.items()}
    for operator, keys in conditions.items():
        for key, wanted in keys.items():
            if not _condition(operator, key, _as_list(wanted), lowered.get(key.lower())):
                return False
    return True


def _condition(operator: str, key: str, wanted: list[str], present: Any) -> bool:
    parsed = _OPERATOR.match(operator)
    if not parsed:
        raise PolicyError(f"condition operator {operator!r} is not supported")
    quantifier, base, if_exists = parsed.groups()
    values = _as_list(present)
    if base == "Null":
        return (present is None) == (wanted[0].lower() == "true")
    test = _TESTS.get(base)
    if test is None:
        raise PolicyError(f"condition operator {operator!r} is not supported")
    negated = "Not" in base
    if present is None:
        # A missing key: IfExists and negated operators hold, others fail
        # (ForAllValues holds vacuously).
        return bool(if_exists) or negated or quantifier == "ForAllValues"
    if quantifier == "ForAllValues":
        return all(test(wanted, value) for value in values)
    return any(test(wanted, value) for value in values) if not negated else all(
        test(wanted, value) for value in values
    )


def _arn_like(pattern: str, value: str) -> bool:
    pattern_parts = pattern.split(":", 5)
    value_parts = value.split(":", 5)
    if len(pattern_parts) != 6 or len(value_parts) != 6:
        return False
    return all(_glob(p, v) for p, v in zip(pattern_parts, value_parts))


_TESTS = {
    "StringEquals": lambda wanted, v: v in wanted,
    "StringNotEquals": lambda wanted, v: v not in wanted,
    "StringEqualsIgnoreCase": lambda wanted, v: v.lower() in [w.lower() for w in wanted],
    "StringNotEqualsIgnoreCase": lambda wanted, v: v.lower() not in [w.lower() for w in wanted],
    "StringLike": lambda wanted, v: any(_glob(w, v) for w in wanted),
    "StringNotLike": lambda wanted, v: not any(_glob(w, v) for w in wanted),
    "ArnEquals": lambda wanted, v: any(_arn_like(w, v) for w in wanted),
    "ArnLike": lambda wanted, v: any(_arn_like(w, v) for w in wanted),
    "ArnNotEquals": lambda wanted, v: not any(_arn_like(w, v) for w in wanted),
    "ArnNotLike": lambda wanted, v: not any(_arn_like(w, v) for w in wanted),
    "Bool": lambda wanted, v: v.lower() in [w.lower() for w in wanted],
}
