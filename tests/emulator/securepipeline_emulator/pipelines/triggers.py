"""Which pipelines a git push starts, decided as V2 push triggers decide it.

A pipeline's `triggers` name a source action; each trigger's push filters
are alternatives (any one matching starts the pipeline), and within a filter
every criterion given must match: the pushed branch against the branch
patterns, and at least one changed file against the file-path patterns.
Excludes take priority over includes; a criterion with excludes only matches
everything not excluded. A filter on tags never matches a branch push; a
tag push matches only a filter with tag criteria, on the tag's name (file
paths and branches do not apply to it).

A source action with no trigger starts the pipeline on pushes to its own
`BranchName`, unless its `DetectChanges` is `false` (the provider's
pipelines set it so and declare triggers instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .glob import matches

SOURCE_PROVIDER = "CodeStarSourceConnection"


@dataclass(frozen=True)
class Push:
    """A push of `branch` (or, with `tag` set, of that tag) to `repository`,
    now at `commit`."""

    repository: str
    branch: str
    commit: str
    changed_files: tuple[str, ...]
    tag: str = ""

    @property
    def ref(self) -> str:
        return f"tag {self.tag}" if self.tag else f"branch {self.branch}"


@dataclass(frozen=True)
class Decision:
    """Whether a pipeline starts, through which source action, and why not."""

    source_action: str | None
    reason: str

    @property
    def starts(self) -> bool:
        return self.source_action is not None


def source_actions(declaration: dict[str, Any], repository: str) -> list[dict[str, Any]]:
    """The pipeline's connection source actions reading `repository`."""
    return [
        action
        for stage in declaration.get("stages", [])
        for action in stage.get("actions", [])
        if action.get("actionTypeId", {}).get("provider") == SOURCE_PROVIDER
        and action.get("configuration", {}).get("FullRepositoryId") == repository
    ]


def decide(declaration: dict[str, Any], push: Push) -> Decision:
    actions = source_actions(declaration, push.repository)
    if not actions:
        return Decision(None, f"no source action reads {push.repository}")
    reasons = []
    for action in actions:
        reason = _action_reason(declaration, action, push)
        if reason is None:
            return Decision(action["name"], "")
        reasons.append(reason)
    return Decision(None, "; ".join(reasons))


def _action_reason(declaration: dict[str, Any], action: dict[str, Any], push: Push) -> str | None:
    """None when a push starts the pipeline through this action, else why not."""
    name = action["name"]
    triggers = [
        trigger
        for trigger in declaration.get("triggers") or []
        if trigger.get("providerType") == SOURCE_PROVIDER
        and trigger.get("gitConfiguration", {}).get("sourceActionName") == name
    ]
    if not triggers:
        configuration = action.get("configuration", {})
        if configuration.get("DetectChanges", "true").lower() == "false":
            return f"source action {name} has no trigger and does not detect changes"
        if push.tag:
            return f"source action {name} has no trigger, and only triggers start on tags"
        if configuration.get("BranchName") != push.branch:
            return f"source action {name} reads branch {configuration.get('BranchName')}, not {push.branch}"
        return None
    filters = [f for t in triggers for f in t.get("gitConfiguration", {}).get("push") or []]
    if not filters:
        return f"the trigger on source action {name} has no push filter"
    reasons = [_filter_reason(f, push) for f in filters]
    if any(reason is None for reason in reasons):
        return None
    return f"source action {name}: " + "; ".join(r for r in reasons if r)


def _filter_reason(push_filter: dict[str, Any], push: Push) -> str | None:
    if push.tag:
        tags = push_filter.get("tags")
        if tags is None:
            return "the filter matches branch pushes only"
        if not criteria_match(tags, push.tag):
            return f"tag {push.tag} does not match {_describe(tags)}"
        return None
    if push_filter.get("tags") and not push_filter.get("branches"):
        return "the filter matches tag pushes only"
    branches = push_filter.get("branches")
    if branches is not None and not criteria_match(branches, push.branch):
        return f"branch {push.branch} does not match {_describe(branches)}"
    paths = push_filter.get("filePaths")
    if paths is not None and not any(criteria_match(paths, f) for f in push.changed_files):
        changed = ", ".join(push.changed_files) or "nothing"
        return f"no changed file ({changed}) matches {_describe(paths)}"
    return None


def criteria_match(criteria: dict[str, Any], value: str) -> bool:
    """Includes/excludes as CodePipeline reads them: excludes win."""
    if any(matches(pattern, value) for pattern in criteria.get("excludes") or []):
        return False
    includes = criteria.get("includes")
    return not includes or any(matches(pattern, value) for pattern in includes)


def _describe(criteria: dict[str, Any]) -> str:
    parts = []
    if criteria.get("includes"):
        parts.append("includes " + ", ".join(criteria["includes"]))
    if criteria.get("excludes"):
        parts.append("excludes " + ", ".join(criteria["excludes"]))
    return " and ".join(parts) or "no pattern"
