"""A model of how fast AWS answers, so that a run against the emulator takes
about as long as the same run against AWS, and shows where a client waits.

Off by default (the emulator then answers at once). Switched on with
`--latency SPEC`, `SECUREPIPELINE_EMULATOR_LATENCY=SPEC` or `POST
/_emulator/latency {"spec": SPEC}`. With it on:

- every call is answered after a latency drawn for its service and
  operation (table below), with seeded jitter, so two runs with one seed
  meet the same latencies at the same calls;
- every API has a request rate (a token bucket per account, region and
  operation, as AWS's request quotas are); a call above it is answered with
  that service's throttling error at once, as AWS answers it;
- what AWS makes eventually consistent is: a new role is not assumable by
  CodeBuild or CodePipeline for `role` seconds (the fault injector's
  propagation window, reused); a new KMS key is not found by KMS calls
  naming it, nor usable by CloudWatch Logs, for `key` seconds; a new SNS
  topic is not found for `topic` seconds.

Sources: quotas come from the services' published request quotas where
they publish one (named next to each figure); latencies are estimates of
what a client in the same region sees (a few tens of milliseconds for reads,
one to a few hundred for control-plane writes, most for S3 CreateBucket and
CodePipeline CreatePipeline), each marked "estimate". Set `scale` to run
faster or slower than the table while keeping its proportions.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from .recorder import is_write
from .wire import AwsError, AwsRequest


class LatencySpecError(ValueError):
    """A latency specification that cannot be read; the message says why."""


@dataclass(frozen=True)
class LatencyPlan:
    """What to model. Parsed from `seed=1,scale=1,throttle=1,role=6,key=2,topic=0`."""

    enabled: bool = False
    seed: int = 0
    # Multiplies every latency (not the quotas, not the windows).
    scale: float = 1.0
    throttle: bool = True
    # Seconds a new role stays unassumable by CodeBuild and CodePipeline.
    # Estimate: IAM documents changes as eventually consistent, "usually"
    # visible within seconds (IAM User Guide, Troubleshooting, "Changes that
    # I make are not always immediately visible"); CodeBuild and CodePipeline
    # accept a new role some 5 to 10 s after CreateRole in practice.
    role: float = 6.0
    # KMS Developer Guide, "AWS KMS eventual consistency": a change "typically"
    # propagates "in less than a few seconds"; NotFoundException meanwhile.
    key: float = 2.0
    # SNS documents no window; off unless asked for.
    topic: float = 0.0

    @classmethod
    def parse(cls, spec: str) -> "LatencyPlan":
        values: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            key, sep, value = item.partition("=")
            if not sep:
                raise LatencySpecError(f"`{item}` is not key=value")
            try:
                if key == "seed":
                    values["seed"] = int(value)
                elif key in ("scale", "role", "key", "topic"):
                    values[key] = float(value)
                    if values[key] < 0 or not math.isfinite(values[key]):
                        raise LatencySpecError(f"{key} must be a finite number of at least 0")
                elif key == "throttle":
                    if value not in ("0", "1"):
                        raise LatencySpecError("throttle is 1 (on) or 0 (off)")
                    values["throttle"] = value == "1"
                else:
                    raise LatencySpecError(
                        f"unknown key `{key}`; use seed, scale, throttle, role, key, topic"
                    )
            except ValueError as error:
                if isinstance(error, LatencySpecError):
                    raise
                raise LatencySpecError(f"`{item}`: {error}") from error
        if not spec.strip():
            return cls()
        return cls(enabled=True, **values)


@dataclass(frozen=True)
class Quota:
    """A token bucket: `rate` calls a second sustained, `burst` at once."""

    rate: float
    burst: float


# Median latency in seconds by (service, operation); anything not listed
# takes its service's read or write figure below. All estimates of what a
# client in the same region sees.
_LATENCY: dict[tuple[str, str], float] = {
    ("s3", "CreateBucket"): 0.45,
    ("s3", "DeleteBucket"): 0.30,
    ("codepipeline", "CreatePipeline"): 0.60,
    ("codepipeline", "UpdatePipeline"): 0.50,
    ("codepipeline", "DeletePipeline"): 0.35,
    ("kms", "CreateKey"): 0.25,
    ("kms", "ScheduleKeyDeletion"): 0.12,
    ("codebuild", "CreateProject"): 0.30,
    ("codebuild", "UpdateProject"): 0.25,
    ("iam", "CreateRole"): 0.20,
    ("iam", "DeleteRole"): 0.18,
    ("codestar-connections", "CreateConnection"): 0.30,
    ("codeconnections", "CreateConnection"): 0.30,
    ("sns", "CreateTopic"): 0.15,
    ("sns", "Subscribe"): 0.15,
    ("events", "PutRule"): 0.18,
    ("events", "PutTargets"): 0.15,
}

# (read, write) by service: estimates. IAM's one endpoint is in us-east-1,
# which makes its writes slower than regional services'.
_SERVICE_LATENCY: dict[str, tuple[float, float]] = {
    "iam": (0.07, 0.15),
    "sts": (0.03, 0.05),
    "kms": (0.03, 0.08),
    "s3": (0.04, 0.12),
    "logs": (0.05, 0.10),
    "codebuild": (0.06, 0.20),
    "codepipeline": (0.08, 0.25),
    "sns": (0.05, 0.12),
    "events": (0.05, 0.12),
    "codestar-connections": (0.06, 0.15),
    "codeconnections": (0.06, 0.15),
    "secretsmanager": (0.04, 0.10),
    "ssm": (0.04, 0.10),
}
_DEFAULT_LATENCY = (0.05, 0.12)

# Request quotas (calls a second per account and region). Burst equals the
# rate unless given.
_QUOTAS: dict[tuple[str, str], Quota] = {
    # KMS Developer Guide, "Request quotas": key management operations at
    # 5 a second; DescribeKey and the Get/List operations far higher.
    ("kms", "CreateKey"): Quota(5, 5),
    ("kms", "CreateAlias"): Quota(5, 5),
    ("kms", "DeleteAlias"): Quota(5, 5),
    ("kms", "EnableKeyRotation"): Quota(5, 5),
    ("kms", "PutKeyPolicy"): Quota(5, 5),
    ("kms", "ScheduleKeyDeletion"): Quota(5, 5),
    ("kms", "TagResource"): Quota(5, 5),
    ("kms", "UntagResource"): Quota(5, 5),
    ("kms", "DescribeKey"): Quota(2000, 2000),
    ("kms", "GetKeyPolicy"): Quota(1000, 1000),
    ("kms", "GetKeyRotationStatus"): Quota(1000, 1000),
    ("kms", "ListAliases"): Quota(500, 500),
    ("kms", "ListResourceTags"): Quota(500, 500),
    # CloudWatch Logs quotas page: CreateLogGroup 5, DescribeLogGroups 10,
    # DeleteLogGroup 10, PutRetentionPolicy 5 transactions a second.
    ("logs", "CreateLogGroup"): Quota(5, 5),
    ("logs", "DescribeLogGroups"): Quota(10, 10),
    ("logs", "DeleteLogGroup"): Quota(10, 10),
    ("logs", "PutRetentionPolicy"): Quota(5, 5),
    # Estimate: CodePipeline and CodeBuild publish no per-API rates; their
    # control planes throttle in the low tens a second.
    ("codepipeline", "CreatePipeline"): Quota(5, 5),
    ("codepipeline", "UpdatePipeline"): Quota(5, 5),
    ("codebuild", "CreateProject"): Quota(10, 10),
    ("codebuild", "UpdateProject"): Quota(10, 10),
    # Estimate: S3 publishes object-level rates only; bucket creation and
    # configuration are control-plane calls limited far lower.
    ("s3", "CreateBucket"): Quota(10, 10),
}

# Estimates where no quota is published, by service: (reads, writes) a second.
_SERVICE_QUOTAS: dict[str, tuple[float, float]] = {
    # IAM publishes no rates; it throttles accounts from some 10-20 writes a
    # second (estimate), and is global: one bucket for every region.
    "iam": (40, 15),
    # STS: 600 requests a second per account and region (STS quotas, estimate
    # for the emulator's purposes: never reached here).
    "sts": (600, 600),
    "kms": (1000, 5),
    "logs": (10, 5),
    "codebuild": (20, 10),
    "codepipeline": (20, 10),
    "s3": (100, 50),
    "sns": (30, 30),
    "events": (50, 50),
    "codestar-connections": (10, 5),
    "codeconnections": (10, 5),
}
_DEFAULT_QUOTA = (50, 20)

# Jitter: lognormal around the median; heavy enough to show tails, capped.
_JITTER_SIGMA = 0.3
_JITTER_CAP = 4.0
# A throttled call is refused before the service does any work.
_THROTTLE_LATENCY = 0.01


def median_latency(service: str, operation: str) -> float:
    listed = _LATENCY.get((service, operation))
    if listed is not None:
        return listed
    read, write = _SERVICE_LATENCY.get(service, _DEFAULT_LATENCY)
    return write if is_write(operation) else read


def quota(service: str, operation: str) -> Quota:
    listed = _QUOTAS.get((service, operation))
    if listed is not None:
        return listed
    reads, writes = _SERVICE_QUOTAS.get(service, _DEFAULT_QUOTA)
    rate = writes if is_write(operation) else reads
    return Quota(rate, rate)


class _Bucket:
    def __init__(self, limit: Quota, now: float) -> None:
        self.limit = limit
        self.tokens = limit.burst
        self.updated = now

    def take(self, now: float) -> bool:
        elapsed = now - self.updated
        self.updated = now
        self.tokens = min(self.limit.burst, self.tokens + elapsed * self.limit.rate)
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class LatencyModel:
    """Decides each call's latency and whether it is throttled, and tracks
    what was just created for eventual consistency."""

    def __init__(self, plan: LatencyPlan | None = None) -> None:
        self._lock = threading.Lock()
        self._seen: Counter[tuple[str, str, str]] = Counter()
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}
        self._created: dict[tuple[str, str], float] = {}
        self.plan = plan or LatencyPlan()

    def configure(self, plan: LatencyPlan) -> None:
        with self._lock:
            self.plan = plan
            self._seen.clear()
            self._buckets.clear()
            self._created.clear()

    @property
    def enabled(self) -> bool:
        return self.plan.enabled

    @property
    def role_window(self) -> float:
        return self.plan.role if self.plan.enabled else 0.0

    def latency(self, request: AwsRequest) -> float:
        """Seconds this call takes; the same seed and call order give the same."""
        plan = self.plan
        if not plan.enabled:
            return 0.0
        key = (request.service, request.operation, request.region)
        with self._lock:
            ordinal = self._seen[key]
            self._seen[key] += 1
        draw = random.Random(_digest(plan.seed, *key, str(ordinal)))
        factor = min(math.exp(draw.gauss(0.0, _JITTER_SIGMA)), _JITTER_CAP)
        return median_latency(request.service, request.operation) * factor * plan.scale

    def throttled(self, request: AwsRequest) -> bool:
        """True when the call exceeds its API's request rate (and is refused)."""
        plan = self.plan
        if not (plan.enabled and plan.throttle):
            return False
        # IAM is global: one quota across the regions a client names.
        region = "global" if request.service == "iam" else request.region
        key = (request.service, region, request.operation)
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(quota(request.service, request.operation), now)
            return not bucket.take(now)

    @property
    def throttle_latency(self) -> float:
        return _THROTTLE_LATENCY * self.plan.scale

    # ----------------------------------------------- eventual consistency --

    def watches(self, request: AwsRequest) -> bool:
        """Whether the answer to this call must be read to track a creation."""
        plan = self.plan
        if not plan.enabled:
            return False
        return (plan.key > 0 and (request.service, request.operation) == ("kms", "CreateKey")) or (
            plan.topic > 0 and (request.service, request.operation) == ("sns", "CreateTopic")
        )

    def created(self, request: AwsRequest, status: int, body: bytes) -> None:
        """Notes the key or topic a successful create made, and when."""
        if status != 200:
            return
        if request.service == "kms":
            arn = _json_field(body, "KeyMetadata", "Arn")
            key_id = _json_field(body, "KeyMetadata", "KeyId")
            if arn and key_id:
                with self._lock:
                    self._created[("key", key_id)] = time.monotonic()
                    self._created[("key", arn)] = time.monotonic()
        elif request.service == "sns":
            name = (request.form.get("Name") or [""])[0]
            arn = f"arn:aws:sns:{request.region}:{request.account}:{name}"
            with self._lock:
                self._created[("topic", arn)] = time.monotonic()

    def consistency_error(self, request: AwsRequest) -> AwsError | None:
        """The error AWS answers for a key or topic it has not yet propagated."""
        plan = self.plan
        if not plan.enabled or not self._created:
            return None
        if plan.key > 0 and request.service == "kms" and request.operation != "CreateKey":
            key = _named_key(request)
            if key and self._young(("key", key), plan.key):
                arn = key if key.startswith("arn:") else (
                    f"arn:aws:kms:{request.region}:{request.account}:key/{key}"
                )
                return AwsError("NotFoundException", f"Key '{arn}' does not exist")
        if plan.key > 0 and (request.service, request.operation) in (
            ("logs", "CreateLogGroup"),
            ("logs", "AssociateKmsKey"),
        ):
            key = _json_get(request, "kmsKeyId")
            if key and self._young(("key", key), plan.key):
                group = _json_get(request, "logGroupName") or ""
                return AwsError(
                    "AccessDeniedException",
                    "The specified KMS key does not exist or is not allowed to be used with Arn "
                    f"'arn:aws:logs:{request.region}:{request.account}:log-group:{group}'",
                )
        if plan.topic > 0 and request.service == "sns" and request.operation != "CreateTopic":
            topic = (request.form.get("TopicArn") or [""])[0]
            if topic and self._young(("topic", topic), plan.topic):
                return AwsError("NotFound", "Topic does not exist", 404)
        return None

    def _young(self, key: tuple[str, str], window: float) -> bool:
        with self._lock:
            created = self._created.get(key)
        return created is not None and time.monotonic() - created < window


def _named_key(request: AwsRequest) -> str | None:
    for name in ("KeyId", "TargetKeyId"):
        value = _json_get(request, name)
        if value:
            return value
    return None


def _json_get(request: AwsRequest, name: str) -> str | None:
    try:
        value = request.json.get(name)
    except AwsError:
        return None
    return value if isinstance(value, str) else None


def _json_field(body: bytes, *path: str) -> str | None:
    try:
        value: Any = json.loads(body)
    except ValueError:
        return None
    for name in path:
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value if isinstance(value, str) else None


def _digest(seed: int, *parts: str) -> int:
    text = "\x1f".join(("latency", str(seed), *parts)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big")
