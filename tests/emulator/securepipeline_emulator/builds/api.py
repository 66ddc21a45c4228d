"""CodeBuild's build operations (JSON 1.1, as the SDKs call them) and the
admin paths of builds.

StartBuild runs the project's buildspec for real. A project whose source is
CODEPIPELINE is built by a pipeline (through `BuildRunner.start`); started
directly it needs `sourceTypeOverride: NO_SOURCE` and `artifactsOverride:
{type: NO_ARTIFACTS}`, as on AWS. Members of StartBuild the emulator does
not carry out are refused by name rather than ignored.
"""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Response

from ..enforcement import principal_of
from ..jsonapi import Handler, json_operation
from ..wire import AwsError, AwsRequest, buffer_body
from .credentials import PATH_PREFIX
from .record import Plan
from ..fixes.codebuild import DEFAULT_TIMEOUT_MINUTES
from .runner import BuildRunner

MODEL = "codebuild"
ADMIN_PREFIXES = ("builds/", PATH_PREFIX)
_SUPPORTED_START = {
    "projectName", "environmentVariablesOverride", "buildspecOverride", "timeoutInMinutesOverride",
    "sourceVersion", "sourceTypeOverride", "artifactsOverride", "serviceRoleOverride",
    "encryptionKeyOverride", "logsConfigOverride",
}  # fmt: skip
_PAGE = 100


def handlers(runner: BuildRunner) -> dict[tuple[str, str], Handler]:
    @json_operation(MODEL)
    def start_build(request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
        unsupported = sorted(set(params) - _SUPPORTED_START)
        if unsupported:
            raise AwsError("InvalidInputException", f"the emulator does not run builds with {unsupported[0]}")
        project = runner.project(request.region, params["projectName"])
        source_type = params.get("sourceTypeOverride", project.get("source", {}).get("type"))
        if source_type != "NO_SOURCE":
            raise AwsError(
                "InvalidInputException",
                f"the emulator builds {source_type} sources only as a pipeline's action; "
                "start with sourceTypeOverride NO_SOURCE",
            )
        artifacts_type = params.get("artifactsOverride", project.get("artifacts", {})).get("type")
        if artifacts_type != "NO_ARTIFACTS":
            raise AwsError(
                "InvalidInputException",
                f"the emulator writes {artifacts_type} artifacts only as a pipeline's action; "
                "start with artifactsOverride {type: NO_ARTIFACTS}",
            )
        plan = Plan(
            project=project,
            region=request.region,
            initiator=_initiator(request),
            inputs=[],
            outputs=[],
            overrides=params.get("environmentVariablesOverride", []),
            buildspec_text=params.get("buildspecOverride", project.get("source", {}).get("buildspec", "")),
            encryption_key=params.get("encryptionKeyOverride", project.get("encryptionKey")),
            source_version=params.get("sourceVersion"),
            timeout_minutes=params.get(
                "timeoutInMinutesOverride", project.get("timeoutInMinutes", DEFAULT_TIMEOUT_MINUTES)
            ),
            service_role=params.get("serviceRoleOverride", project["serviceRole"]),
            logs_config=params.get("logsConfigOverride", project.get("logsConfig", {})),
            no_source=True,
        )
        return {"build": runner.get(runner.launch(plan))}

    @json_operation(MODEL)
    def batch_get_builds(request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
        found, missing = [], []
        for build_id in params["ids"]:
            try:
                found.append(runner.get(_id_of(build_id)))
            except AwsError:
                missing.append(build_id)
        return {"builds": found, "buildsNotFound": missing}

    @json_operation(MODEL)
    def stop_build(request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
        return {"build": runner.stop(_id_of(params["id"]))}

    @json_operation(MODEL)
    def list_builds_for_project(request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
        runner.project(request.region, params["projectName"])  # ResourceNotFoundException if missing
        builds = runner.builds_of(params["projectName"], request.region)
        return _page([b.id for b in builds], params)

    @json_operation(MODEL)
    def list_builds(request: AwsRequest, params: dict[str, Any]) -> dict[str, Any]:
        return _page([b.id for b in runner.all_builds(request.region)], params)

    return {
        ("codebuild", "StartBuild"): start_build,
        ("codebuild", "BatchGetBuilds"): batch_get_builds,
        ("codebuild", "StopBuild"): stop_build,
        ("codebuild", "ListBuildsForProject"): list_builds_for_project,
        ("codebuild", "ListBuilds"): list_builds,
    }


def _id_of(build_id_or_arn: str) -> str:
    """Builds are named by id (`project:uuid`) or by ARN."""
    if build_id_or_arn.startswith("arn:"):
        return build_id_or_arn.split(":build/", 1)[-1]
    return build_id_or_arn


def _initiator(request: AwsRequest) -> str:
    """Who started the build, as CodeBuild names them: an assumed role's
    `role/session`, else the account's root user."""
    principal = principal_of(request)
    if principal is None:
        return "root"
    return principal.arn.split(":assumed-role/", 1)[-1]


def _page(ids: list[str], params: dict[str, Any]) -> dict[str, Any]:
    """Newest first unless sortOrder is ASCENDING; 100 a page."""
    ordered = ids if params.get("sortOrder") == "ASCENDING" else list(reversed(ids))
    start = int(params.get("nextToken") or 0)
    answer: dict[str, Any] = {"ids": ordered[start : start + _PAGE]}
    if start + _PAGE < len(ordered):
        answer["nextToken"] = str(start + _PAGE)
    return answer


def admin(runner: BuildRunner, method: str, path: str, environ: dict[str, Any]) -> Response:
    """`POST builds/environment` and `GET container-credentials/<token>`."""
    if path == "builds/environment" and method == "POST":
        variables = _body(environ).get("variables")
        if not isinstance(variables, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
        ):
            raise AwsError("ValidationException", 'body must be {"variables": {"NAME": "value"}}')
        runner.image_environment.update(variables)
        return _json({"variables": runner.image_environment})
    if path.startswith(PATH_PREFIX) and method == "GET":
        answer = runner.credentials.serve(path[len(PATH_PREFIX) :])
        if answer is None:
            raise AwsError("NotFound", "no running build holds this token", 404)
        return _json(answer)
    raise AwsError("NotFound", f"no admin endpoint {method} /{path}", 404)


def _body(environ: dict[str, Any]) -> dict[str, Any]:
    try:
        body = json.loads(buffer_body(environ) or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise AwsError("ValidationException", "body must be a JSON object")
    return body


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, content_type="application/json")
