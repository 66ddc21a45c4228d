"""CodeBuild projects that read back exactly what was written.

moto lacks UpdateProject, and its CreateProject both rejects valid input (a
CODEPIPELINE source or artifact has no location, newer environment and
compute types) and drops fields (encryptionKey is always the default key,
badgeEnabled, concurrentBuildLimit, secondary sources). Projects are still
stored in moto's backend, so moto's own BatchGetProjects, ListProjects,
DeleteProject and StartBuild keep working on them.
"""

from __future__ import annotations

from typing import Any

from moto.codebuild.models import CodeBuild, CodeBuildBackend, codebuild_backends
from moto.core.utils import unix_time
from moto.utilities.utils import get_partition

from ..wire import AwsError, AwsRequest
from ..jsonapi import json_operation, without_nulls

MODEL = "codebuild"
DEFAULT_TIMEOUT_MINUTES = 60
DEFAULT_QUEUED_TIMEOUT_MINUTES = 480


def _backend(request: AwsRequest) -> CodeBuildBackend:
    return codebuild_backends[request.account][request.region]


def _project_arn(request: AwsRequest, name: str) -> str:
    partition = get_partition(request.region)
    return f"arn:{partition}:codebuild:{request.region}:{request.account}:project/{name}"


def find_project(backend: CodeBuildBackend, name_or_arn: str) -> CodeBuild | None:
    if name_or_arn in backend.codebuild_projects:
        return backend.codebuild_projects[name_or_arn]
    for project in backend.codebuild_projects.values():
        if project.arn == name_or_arn:
            return project
    return None


def _apply(project: CodeBuild, params: dict[str, Any]) -> None:
    """Store every member the request carries, in the shape Project reads it."""
    metadata = project.project_metadata
    for key, value in params.items():
        if key == "name":
            continue
        if key == "badgeEnabled":
            metadata["badge"] = {"badgeEnabled": value}
        elif key == "serviceRole" and not value.startswith("arn:"):
            # A bare role name is stored as the ARN CodeBuild resolves it to.
            metadata[key] = f"arn:{project.arn.split(':')[1]}:iam::{project.arn.split(':')[4]}:role/{value}"
        elif key == "concurrentBuildLimit" and value == -1:
            metadata.pop(key, None)  # -1 is how UpdateProject removes the limit
        else:
            metadata[key] = value
    if "tags" in params:
        project.tags = params["tags"]
    if "serviceRole" in params:
        project.service_role = params["serviceRole"]
    metadata.pop("lastModifiedDate", None)  # moto's misnamed copy, see describe()
    metadata["lastModified"] = unix_time()


def describe(project: CodeBuild) -> dict[str, Any]:
    metadata = project.project_metadata
    # moto names this member lastModifiedDate; the API calls it lastModified.
    if "lastModifiedDate" in metadata:
        metadata["lastModified"] = metadata.pop("lastModifiedDate")
    return without_nulls(metadata)


@json_operation(MODEL)
def create_project(request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
    backend = _backend(request)
    name = params["name"]
    if name in backend.codebuild_projects:
        raise AwsError(
            "ResourceAlreadyExistsException",
            f"Project already exists: {_project_arn(request, name)}",
        )
    backend.create_project(
        project_name=name,
        description=None,
        project_source=params["source"],
        artifacts=params["artifacts"],
        environment=params["environment"],
        service_role=params["serviceRole"],
        tags=None,
        cache=None,
        # moto stores 0 for timeouts not given; CodeBuild's defaults are these.
        timeout=params.get("timeoutInMinutes", DEFAULT_TIMEOUT_MINUTES),
        queued_timeout=params.get("queuedTimeoutInMinutes", DEFAULT_QUEUED_TIMEOUT_MINUTES),
        source_version=None,
        logs_config=None,
        vpc_config=None,
    )
    project = backend.codebuild_projects[name]
    _apply(project, params)
    project.project_metadata["created"] = project.project_metadata["lastModified"]
    return {"project": describe(project)}


@json_operation(MODEL)
def update_project(request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
    project = find_project(_backend(request), params["name"])
    if project is None:
        raise AwsError(
            "ResourceNotFoundException",
            f"Project cannot be found: {_project_arn(request, params['name'])}",
        )
    _apply(project, params)
    return {"project": describe(project)}


@json_operation(MODEL)
def batch_get_projects(request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
    # moto leaves out projectsNotFound, which callers use to tell "deleted".
    backend = _backend(request)
    found, missing = [], []
    for name in params["names"]:
        project = find_project(backend, name)
        if project is None:
            missing.append(name)
        else:
            found.append(describe(project))
    return {"projects": found, "projectsNotFound": missing}


HANDLERS = {
    ("codebuild", "CreateProject"): create_project,
    ("codebuild", "UpdateProject"): update_project,
    ("codebuild", "BatchGetProjects"): batch_get_projects,
}
