"""CodeBuild builds that run: buildspecs executed locally under the
project's role, as CodeBuild executes them (see runner.py)."""

from .artifacts import ArtifactLocation
from .runner import BuildRunner

__all__ = ["ArtifactLocation", "BuildRunner"]
