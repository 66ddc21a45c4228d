"""The shortest wall time a deployment could take, from its own call record.

`pulumi up` can finish no sooner than its longest chain of dependent AWS
calls: a resource's calls one after another, a resource after those it
depends on (the engine's state `dependencies`), and a service's use of a new
role, key or topic after AWS has propagated it. With the latency model on
(latency.py), each successful call's modelled latency is how long it must
take; calls that failed (throttled, not yet propagated, injected faults)
are not needed and count as nothing. The longest chain is the critical
path; a deployment's wall time divided by it says how much of the wait is
the client's own.

Calls are attributed to resources by what they name (the recorder's
`subject`: a bucket, role, log group, key id, ARN ...) matched against each
resource's id and identifying outputs. A call that names nothing (KMS
CreateKey, STS GetCallerIdentity) goes to the resource of the same service
and region whose first named call follows it soonest; otherwise to the
deployment as a whole, which every resource follows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

# Outputs that name the resource itself (others may name resources it uses).
_IDENTITY_OUTPUTS = ("arn", "keyId", "aliasArn", "aliasName", "name", "topicArn", "connectionArn")
# Operations by which a service starts using a role: they wait for IAM.
_ROLE_USERS = {
    ("codebuild", "CreateProject"),
    ("codebuild", "UpdateProject"),
    ("codepipeline", "CreatePipeline"),
    ("codepipeline", "UpdatePipeline"),
}
ROOT = "(deployment)"


@dataclass
class Node:
    urn: str
    kind: str
    depends_on: list[str]
    calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def needed(self) -> list[dict[str, Any]]:
        """The calls that got through: the ones a perfect client makes."""
        return [c for c in self.calls if c["fault"] is None]

    @property
    def modelled(self) -> float:
        return sum(c["latency"] for c in self.needed)


@dataclass
class Step:
    """One resource on the critical path."""

    urn: str
    kind: str
    earliest_start: float
    earliest_finish: float
    actual_start: float | None
    actual_finish: float | None
    calls: int
    failed_calls: int


@dataclass
class CriticalPath:
    seconds: float
    steps: list[Step]
    nodes: dict[str, Node]
    unattributed: int

    def ratio(self, wall_seconds: float) -> float:
        return wall_seconds / self.seconds if self.seconds > 0 else float("inf")


def compute(
    calls: list[dict[str, Any]],
    resources: list[dict[str, Any]],
    role_window: float = 0.0,
    key_window: float = 0.0,
) -> CriticalPath:
    """The critical path of one deployment: `calls` as /_emulator/calls
    lists them, `resources` as `pulumi stack export` holds them."""
    nodes = _nodes(resources)
    unattributed = _attribute(calls, resources, nodes)
    finish: dict[str, float] = {}
    start: dict[str, float] = {}
    came_from: dict[str, str | None] = {}

    def earliest_finish(urn: str, visiting: frozenset[str] = frozenset()) -> float:
        if urn in finish:
            return finish[urn]
        if urn in visiting:
            raise ValueError(f"dependency cycle through {urn}")
        node = nodes[urn]
        begin, via = 0.0, None
        for dependency in node.depends_on:
            ready = earliest_finish(dependency, visiting | {urn})
            ready = max(ready, _ready_for(node, nodes[dependency], start, role_window, key_window, earliest_finish))
            if ready > begin:
                begin, via = ready, dependency
        start[urn] = begin
        came_from[urn] = via
        finish[urn] = begin + _own_time(node, key_window)
        return finish[urn]

    for urn in nodes:
        earliest_finish(urn)
    last = max(finish, key=finish.get) if finish else None
    steps: list[Step] = []
    while last is not None:
        node = nodes[last]
        times = [(c["start"], c["end"]) for c in node.calls]
        steps.append(
            Step(
                urn=last,
                kind=node.kind,
                earliest_start=start[last],
                earliest_finish=finish[last],
                actual_start=min((s for s, _ in times), default=None),
                actual_finish=max((e for _, e in times if e is not None), default=None),
                calls=len(node.calls),
                failed_calls=len(node.calls) - len(node.needed),
            )
        )
        last = came_from[last]
    steps.reverse()
    return CriticalPath(
        seconds=max(finish.values(), default=0.0), steps=steps, nodes=nodes, unattributed=unattributed
    )


def _own_time(node: Node, key_window: float) -> float:
    """A resource's calls in sequence; a new key's later calls wait for KMS."""
    own = node.modelled
    needed = node.needed
    if key_window > 0 and needed and (needed[0]["service"], needed[0]["operation"]) == ("kms", "CreateKey"):
        if len(needed) > 1:
            own += key_window
    return own


def _ready_for(
    node: Node,
    dependency: Node,
    start: dict[str, float],
    role_window: float,
    key_window: float,
    finish_of: Any,
) -> float:
    """When `dependency` is usable by `node`, beyond its having finished:
    a role once IAM has propagated it to the service that assumes it."""
    created = _create_call(dependency, ("iam", "CreateRole"))
    if created is None or role_window <= 0:
        return 0.0
    if not any((c["service"], c["operation"]) in _ROLE_USERS for c in node.needed):
        return 0.0
    finish_of(dependency.urn)
    upto = dependency.needed[: dependency.needed.index(created) + 1]
    return start[dependency.urn] + sum(c["latency"] for c in upto) + role_window


def _create_call(node: Node, operation: tuple[str, str]) -> dict[str, Any] | None:
    return next((c for c in node.needed if (c["service"], c["operation"]) == operation), None)


def _nodes(resources: list[dict[str, Any]]) -> dict[str, Node]:
    nodes: dict[str, Node] = {ROOT: Node(urn=ROOT, kind="deployment", depends_on=[])}
    custom = [r for r in resources if r.get("custom") and not r["type"].startswith("pulumi:providers:")]
    known = {r["urn"] for r in custom}
    for resource in custom:
        depends = [d for d in resource.get("dependencies") or [] if d in known]
        nodes[resource["urn"]] = Node(
            urn=resource["urn"], kind=resource["type"].rsplit(":", 1)[-1], depends_on=depends or [ROOT]
        )
    return nodes


def _tokens(resource: dict[str, Any]) -> list[str]:
    names = [resource.get("id") or ""]
    outputs = resource.get("outputs") or {}
    names += [outputs[k] for k in _IDENTITY_OUTPUTS if isinstance(outputs.get(k), str)]
    derived = []
    for name in names:
        if name.startswith("arn:"):
            tail = name.rsplit("/", 1)[-1] if "/" in name else name.rsplit(":", 1)[-1]
            derived.append(tail)
            if ":log-group:" in name:
                derived.append(name.split(":log-group:", 1)[1].removesuffix(":*"))
    return [n for n in names + derived if n]


def _attribute(calls: list[dict[str, Any]], resources: list[dict[str, Any]], nodes: dict[str, Node]) -> int:
    """Hands each call to its resource; returns how many went to the root."""
    index: dict[str, str] = {}
    # Ids first: an id names exactly one resource; outputs may repeat others'.
    for resource in resources:
        if resource["urn"] in nodes and resource.get("id"):
            index.setdefault(resource["id"], resource["urn"])
    for resource in resources:
        if resource["urn"] in nodes:
            for token in _tokens(resource):
                index.setdefault(token, resource["urn"])
    return _attribute_with(calls, nodes, index)


def _attribute_with(calls: list[dict[str, Any]], nodes: dict[str, Node], index: dict[str, str]) -> int:
    pending: list[dict[str, Any]] = []
    for call in sorted(calls, key=lambda c: c["start"]):
        urn = _match(call.get("subject"), index)
        if urn is None:
            pending.append(call)
        else:
            nodes[urn].calls.append(call)
    firsts: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
    for urn, node in nodes.items():
        if node.calls:
            first = node.calls[0]
            firsts[(first["service"], first["region"])].append((first["start"], urn))
    to_root = 0
    for call in pending:
        candidates = firsts.get((call["service"], call["region"]), [])
        after = [(begin, urn) for begin, urn in candidates if begin >= (call["end"] or call["start"])]
        before = [
            (nodes[urn].calls[-1]["start"], urn)
            for _, urn in candidates
            if nodes[urn].calls[-1]["start"] <= call["start"]
        ]
        if call["write"] and after:
            # A create that names nothing yet: the resource it then names.
            nodes[min(after)[1]].calls.insert(0, call)
        elif not call["write"] and before and _reads_a_sub_resource(call):
            # A read of something a resource just made (a subscription).
            nodes[max(before)[1]].calls.append(call)
        else:
            nodes[ROOT].calls.append(call)
            to_root += 1
    for node in nodes.values():
        node.calls.sort(key=lambda c: c["start"])
    return to_root


def _reads_a_sub_resource(call: dict[str, Any]) -> bool:
    """Reads that name a sub-resource rather than a resource: a
    subscription's attributes belong to its topic."""
    return (call["service"], call["operation"]) == ("sns", "GetSubscriptionAttributes")


def _match(subject: str | None, index: dict[str, str]) -> str | None:
    if not subject:
        return None
    if subject in index:
        return index[subject]
    if subject.startswith("arn:"):
        tail = subject.rsplit("/", 1)[-1] if "/" in subject else subject.rsplit(":", 1)[-1]
        return index.get(tail)
    return None
