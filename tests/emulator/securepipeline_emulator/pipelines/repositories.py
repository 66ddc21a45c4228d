"""Local git repositories standing for the repositories behind connections.

A test registers a directory as `my-org/my-app`; a push of a branch is then
its current head, and the files it changes are those between that head and
the head pushed before (or, the first time, the head's parent commit). A
push of a tag is the commit it names; pushing it again at the same commit
carries nothing new.
Source actions read commits from here as CodeStar Connections would fetch
them from the provider.
"""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from ..wire import AwsError
from .triggers import Push

GIT_TIMEOUT_S = 60


@dataclass(frozen=True)
class Commit:
    sha: str
    message: str
    author_date: str  # ISO 8601, as git prints it


class Repositories:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: dict[str, Path] = {}
        # (repository, branch) and (repository, "refs/tags/<tag>") -> the
        # commit its last push carried
        self._pushed: dict[tuple[str, str], str] = {}

    def register(self, full_repository_id: str, path: str) -> dict[str, str]:
        directory = Path(path)
        if not directory.is_absolute():
            raise AwsError("ValidationException", f"path must be absolute, not {path}")
        try:
            _git(directory, "rev-parse", "--git-dir")
        except AwsError as error:
            raise AwsError("ValidationException", f"{path} is not a git repository: {error.message}") from error
        with self._lock:
            self._paths[full_repository_id] = directory
            for key in [k for k in self._pushed if k[0] == full_repository_id]:
                del self._pushed[key]
        return {"fullRepositoryId": full_repository_id, "path": str(directory)}

    def path(self, full_repository_id: str) -> Path:
        with self._lock:
            path = self._paths.get(full_repository_id)
        if path is None:
            raise AwsError(
                "RepositoryNotFound",
                f"Repository {full_repository_id} is not reachable through the connection "
                "(register it with POST /_emulator/repositories)",
                404,
            )
        return path

    def head(self, full_repository_id: str, branch: str) -> str:
        path = self.path(full_repository_id)
        try:
            return _git(path, "rev-parse", "--verify", f"refs/heads/{branch}^{{commit}}").strip()
        except AwsError as error:
            raise AwsError(
                "BranchNotFound", f"Branch {branch} does not exist in {full_repository_id}", 404
            ) from error

    def push(self, full_repository_id: str, branch: str) -> Push | None:
        """The push of the branch's head; None when it carries no new commit."""
        head = self.head(full_repository_id, branch)
        path = self.path(full_repository_id)
        with self._lock:
            before = self._pushed.get((full_repository_id, branch))
            self._pushed[(full_repository_id, branch)] = head
        if before == head:
            return None
        if before is None:
            parents = _git(path, "rev-list", "--parents", "-n", "1", head).split()[1:]
            before = parents[0] if parents else None
        if before is None:  # the first commit: every file is new
            listed = _git(path, "ls-tree", "-r", "--name-only", head)
        else:
            listed = _git(path, "diff", "--name-only", "--no-renames", before, head)
        files = tuple(line for line in listed.splitlines() if line)
        return Push(full_repository_id, branch, head, files)

    def push_tag(self, full_repository_id: str, tag: str) -> Push | None:
        """The push of a tag; None when it names the commit pushed before."""
        path = self.path(full_repository_id)
        try:
            commit = _git(path, "rev-parse", "--verify", f"refs/tags/{tag}^{{commit}}").strip()
        except AwsError as error:
            raise AwsError("TagNotFound", f"Tag {tag} does not exist in {full_repository_id}", 404) from error
        key = (full_repository_id, f"refs/tags/{tag}")
        with self._lock:
            before = self._pushed.get(key)
            self._pushed[key] = commit
        if before == commit:
            return None
        return Push(full_repository_id, "", commit, (), tag=tag)

    def commit(self, full_repository_id: str, revision: str) -> Commit:
        path = self.path(full_repository_id)
        try:
            shown = _git(path, "show", "-s", "--format=%H%n%aI%n%B", f"{revision}^{{commit}}")
        except AwsError as error:
            raise AwsError(
                "RevisionNotFound", f"Commit {revision} does not exist in {full_repository_id}", 404
            ) from error
        sha, date, message = (shown.split("\n", 2) + ["", ""])[:3]
        return Commit(sha, message.strip(), date)

    def archive(self, full_repository_id: str, sha: str) -> bytes:
        """The commit's files as a zip, at the root, as CODE_ZIP artifacts are."""
        path = self.path(full_repository_id)
        result = subprocess.run(
            ["git", "-C", str(path), "archive", "--format=zip", sha],
            capture_output=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            raise AwsError("InternalFailure", f"git archive {sha}: {result.stderr.decode().strip()}", 500)
        return result.stdout


def _git(path: Path, *args: str) -> str:
    try:
        result = subprocess.run(
            ["git", "-C", str(path), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise AwsError("InternalFailure", f"git {args[0]}: {error}", 500) from error
    if result.returncode != 0:
        raise AwsError("InternalFailure", f"git {args[0]}: {result.stderr.strip()}", 500)
    return result.stdout
