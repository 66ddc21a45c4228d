"""Buildspecs read and checked as CodeBuild reads them, before anything runs.

CodeBuild decodes the YAML into typed fields: every scalar is text (so
`version: 0.2`, `on-failure: ABORT` and `- 1` all arrive as strings), a key
it does not know is an error, and a buildspec it cannot read fails the
build in DOWNLOAD_SOURCE with status code YAML_FILE_ERROR. The keys below
are those of CodeBuild's buildspec reference for version 0.2. Keys that
only matter on CodeBuild's own hosts (run-as, proxy, batch, reports, cache,
runtime-versions, git-credential-helper) are accepted and have no effect:
the build runs as the emulator's user with the tools of the emulator's
host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

PHASES = ("install", "pre_build", "build", "post_build")
ON_FAILURE = ("ABORT", "CONTINUE")
SHELLS = ("bash", "/bin/sh")

_TOP_KEYS = {"version", "run-as", "env", "proxy", "batch", "phases", "reports", "artifacts", "cache"}
_ENV_KEYS = {
    "shell", "variables", "parameter-store", "exported-variables", "secrets-manager",
    "git-credential-helper",
}  # fmt: skip
_PHASE_KEYS = {"run-as", "on-failure", "runtime-versions", "commands", "finally"}
_ARTIFACT_KEYS = {
    "files", "name", "discard-paths", "base-directory", "exclude-paths", "enable-symlinks",
    "s3-prefix", "secondary-artifacts",
}  # fmt: skip


class BuildspecError(Exception):
    """A buildspec CodeBuild refuses: the build fails with YAML_FILE_ERROR."""


@dataclass(frozen=True)
class Phase:
    name: str
    commands: list[str]
    finally_: list[str]
    # None: the documented phase transitions decide what follows a failure.
    on_failure: str | None


@dataclass(frozen=True)
class ArtifactSpec:
    files: list[str]
    base_directory: str | None = None
    discard_paths: bool = False
    exclude_paths: list[str] = field(default_factory=list)
    name: str | None = None


@dataclass(frozen=True)
class Buildspec:
    shell: str = "bash"
    variables: dict[str, str] = field(default_factory=dict)
    parameter_store: dict[str, str] = field(default_factory=dict)
    secrets_manager: dict[str, str] = field(default_factory=dict)
    exported_variables: list[str] = field(default_factory=list)
    phases: dict[str, Phase] = field(default_factory=dict)
    artifacts: ArtifactSpec | None = None
    secondary_artifacts: dict[str, ArtifactSpec] = field(default_factory=dict)


def parse(text: str) -> Buildspec:
    """The buildspec in `text`, or BuildspecError with what is wrong."""
    try:
        # BaseLoader keeps every scalar as the text written, as CodeBuild's
        # decoder does (no `yes` turning into a boolean, no 0.20 into 0.2).
        document = yaml.load(text, Loader=yaml.BaseLoader)
    except yaml.YAMLError as error:
        raise BuildspecError(_yaml_problem(error)) from error
    if not isinstance(document, dict):
        raise BuildspecError("buildspec is not a YAML mapping")
    _known(document, _TOP_KEYS, "")
    version = document.get("version")
    if version is None:
        raise BuildspecError("missing version in buildspec")
    if version != "0.2":
        raise BuildspecError(f"invalid buildspec version {version}: the emulator runs version 0.2")
    env = _mapping(document.get("env", {}), "env")
    _known(env, _ENV_KEYS, "env")
    shell = _scalar(env.get("shell", "bash"), "env/shell")
    if shell not in SHELLS:
        raise BuildspecError(f"invalid shell {shell} in env/shell; supported: {', '.join(SHELLS)}")
    phases_doc = _mapping(document.get("phases", {}), "phases")
    phases = {}
    for name, body in phases_doc.items():
        if name not in PHASES:
            raise BuildspecError(f"unknown phase {name} in phases; phases are {', '.join(PHASES)}")
        phases[name] = _phase(name, body)
    artifacts = document.get("artifacts")
    primary, secondary = None, {}
    if artifacts is not None:
        artifacts = _mapping(artifacts, "artifacts")
        if "files" in artifacts:
            primary = _artifact(artifacts, "artifacts")
        where = "artifacts/secondary-artifacts"
        for identifier, body in _mapping(artifacts.get("secondary-artifacts", {}), where).items():
            path = f"{where}/{identifier}"
            secondary[identifier] = _artifact(_mapping(body, path), path)
    return Buildspec(
        shell=shell,
        variables=_text_map(env.get("variables", {}), "env/variables"),
        parameter_store=_text_map(env.get("parameter-store", {}), "env/parameter-store"),
        secrets_manager=_text_map(env.get("secrets-manager", {}), "env/secrets-manager"),
        exported_variables=_text_list(env.get("exported-variables", []), "env/exported-variables"),
        phases=phases,
        artifacts=primary,
        secondary_artifacts=secondary,
    )


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    return f"{problem} at line {mark.line + 1}" if mark is not None else problem


def _known(mapping: dict[str, Any], keys: set[str], where: str) -> None:
    unknown = sorted(key for key in mapping if key not in keys)
    if unknown:
        place = f" in {where}" if where else ""
        raise BuildspecError(f"unknown key {unknown[0]}{place}; known keys are {', '.join(sorted(keys))}")


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value == "":  # a key written with no value
        return {}
    if not isinstance(value, dict):
        raise BuildspecError(f"Expected {where} to be a mapping")
    return value


def _scalar(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise BuildspecError(f"Expected {where} to be of string type: found subkeys instead")
    return value


def _text_map(value: Any, where: str) -> dict[str, str]:
    return {key: _scalar(item, f"{where}/{key}") for key, item in _mapping(value, where).items()}


def _text_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if not isinstance(value, list):
        raise BuildspecError(f"Expected {where} to be a list")
    return [_scalar(item, f"{where}[{index}]") for index, item in enumerate(value)]


def _commands(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if not isinstance(value, list):
        raise BuildspecError(f"Expected {where} to be a list")
    commands = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            # CodeBuild's wording for `- echo a: b`, which YAML reads as a map.
            raise BuildspecError(f"Expected {where}[{index}] to be of string type: found subkeys instead")
        commands.append(item)
    return commands


def _phase(name: str, body: Any) -> Phase:
    body = _mapping(body, f"phases/{name}")
    _known(body, _PHASE_KEYS, f"phases/{name}")
    on_failure = body.get("on-failure")
    if on_failure is not None:
        on_failure = _scalar(on_failure, f"phases/{name}/on-failure")
        if on_failure not in ON_FAILURE:
            raise BuildspecError(
                f"invalid on-failure {on_failure} in phases/{name}; values are {', '.join(ON_FAILURE)}"
            )
    return Phase(
        name=name,
        commands=_commands(body.get("commands", []), "Commands"),
        finally_=_commands(body.get("finally", []), "Finally"),
        on_failure=on_failure,
    )


def _artifact(body: dict[str, Any], where: str) -> ArtifactSpec:
    _known(body, _ARTIFACT_KEYS - {"secondary-artifacts"} if where != "artifacts" else _ARTIFACT_KEYS, where)
    files = _text_list(body.get("files", []), f"{where}/files")
    if not files:
        raise BuildspecError(f"{where}/files must name at least one file")
    discard = _scalar(body.get("discard-paths", "no"), f"{where}/discard-paths")
    if discard not in ("yes", "no", "true", "false"):
        raise BuildspecError(f"invalid discard-paths {discard} in {where}; values are yes, no")
    base = body.get("base-directory")
    return ArtifactSpec(
        files=files,
        base_directory=_scalar(base, f"{where}/base-directory") if base is not None else None,
        discard_paths=discard in ("yes", "true"),
        exclude_paths=_text_list(body.get("exclude-paths", []), f"{where}/exclude-paths"),
        name=body.get("name") if isinstance(body.get("name"), str) else None,
    )
