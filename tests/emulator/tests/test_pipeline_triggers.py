"""Push triggers decided as CodePipeline decides them: its glob syntax, and
how branch and file-path criteria combine (pure functions, no emulator)."""

from __future__ import annotations

from typing import Any

import pytest

from securepipeline_emulator.pipelines.glob import GlobError, matches
from securepipeline_emulator.pipelines.triggers import Push, decide


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("src/*", "src/app.py", True),
        ("src/*", "src/lib/app.py", False),  # `*` stays within a path component
        ("src/**", "src/lib/app.py", True),  # `**` crosses components
        ("**/*.md", "docs/guide.md", True),
        ("*.md", "docs/guide.md", False),
        ("release/*", "release/1.2", True),
        ("release/*", "release/1/2", False),
        ("foo.?", "foo.c", True),
        ("foo.?", "foo.cc", False),
        ("a?b", "a/b", False),  # `?` is one character of a component
        ("*.{java,class}", "Main.class", True),
        ("*.{java,class}", "Main.kt", False),
        ("v[0-9]", "v7", True),
        ("v[!0-9]", "v7", False),
        ("v[!0-9]", "vx", True),
        ("a[-b]", "a-", True),  # `-` first in a set is itself
        ("\\*", "*", True),
        ("\\*", "x", False),
        ("main", "main", True),
        ("main", "mainline", False),
    ],
)
def test_globs_follow_codepipelines_syntax(pattern: str, value: str, expected: bool) -> None:
    assert matches(pattern, value) is expected


@pytest.mark.parametrize("pattern", ["[abc", "{a,b", "{a,{b}}", "trailing\\"])
def test_malformed_globs_are_refused(pattern: str) -> None:
    with pytest.raises(GlobError):
        matches(pattern, "x")


def pipeline(push: list[dict[str, Any]] | None, detect_changes: str = "false") -> dict[str, Any]:
    source = {
        "name": "Source",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeStarSourceConnection", "version": "1"},
        "configuration": {"FullRepositoryId": "org/app", "BranchName": "main", "DetectChanges": detect_changes},
    }
    declaration: dict[str, Any] = {"name": "p", "stages": [{"name": "Source", "actions": [source]}]}
    if push is not None:
        declaration["triggers"] = [
            {"providerType": "CodeStarSourceConnection",
             "gitConfiguration": {"sourceActionName": "Source", "push": push}}
        ]
    return declaration


def push(branch: str, *files: str) -> Push:
    return Push("org/app", branch, "c0ffee", files)


def test_excludes_win_and_one_included_file_is_enough() -> None:
    declaration = pipeline([{"branches": {"includes": ["main"]},
                             "filePaths": {"includes": ["src/**"], "excludes": ["src/generated/**"]}}])
    assert decide(declaration, push("main", "src/app.py", "docs/x.md")).starts
    assert not decide(declaration, push("main", "src/generated/a.py")).starts
    assert not decide(declaration, push("main", "README.md")).starts


def test_excludes_alone_match_everything_else() -> None:
    declaration = pipeline([{"branches": {"excludes": ["wip/**"]}}])
    assert decide(declaration, push("feature/x", "a")).starts
    assert not decide(declaration, push("wip/x", "a")).starts


def test_any_filter_of_a_trigger_may_start_it() -> None:
    declaration = pipeline([
        {"branches": {"includes": ["main"]}, "filePaths": {"includes": ["src/**"]}},
        {"branches": {"includes": ["release/*"]}},
    ])
    assert decide(declaration, push("release/1", "docs/x.md")).starts
    decision = decide(declaration, push("main", "docs/x.md"))
    assert not decision.starts
    assert "no changed file (docs/x.md) matches includes src/**" in decision.reason
    assert "branch main does not match includes release/*" in decision.reason


def test_a_tag_filter_never_matches_a_branch_push() -> None:
    assert not decide(pipeline([{"tags": {"includes": ["v*"]}}]), push("main", "a")).starts


def test_a_tag_push_matches_only_tag_criteria_with_excludes_winning() -> None:
    declaration = pipeline([
        {"branches": {"includes": ["**"]}},
        {"tags": {"includes": ["v*"], "excludes": ["v*-rc*"]}},
    ])
    assert decide(declaration, Push("org/app", "", "c", (), tag="v1.2.0")).starts
    decision = decide(declaration, Push("org/app", "", "c", (), tag="v1.2.0-rc1"))
    assert not decision.starts
    assert "the filter matches branch pushes only" in decision.reason
    assert "tag v1.2.0-rc1 does not match includes v* and excludes v*-rc*" in decision.reason
    # Without triggers, a tag push never starts a pipeline.
    assert not decide(pipeline(None, detect_changes="true"), Push("org/app", "", "c", (), tag="v1")).starts


def test_without_a_trigger_only_detect_changes_starts_on_the_action_branch() -> None:
    assert not decide(pipeline(None), push("main", "a")).starts
    assert decide(pipeline(None, detect_changes="true"), push("main", "a")).starts
    assert not decide(pipeline(None, detect_changes="true"), push("dev", "a")).starts


def test_a_pipeline_reading_another_repository_is_not_started() -> None:
    decision = decide(pipeline([{"branches": {"includes": ["main"]}}]), Push("org/other", "main", "c", ("a",)))
    assert not decision.starts
    assert decision.reason == "no source action reads org/other"
