"""The `CodeBuild` build and test action.

CodePipeline starts the project's build on the pipeline role's behalf, so
the role needs `codebuild:StartBuild` on the project, and reads the build's
status with `codebuild:BatchGetBuilds`. The build itself (builds/) runs
under the project's own role: it reads the input artifacts (the
`PrimarySource`, else the first, is the primary source) and writes the
output artifacts to new keys in the action's artifact store, encrypted with
the store's key. Its exported variables are the action's output variables.
Abandoning the action stops the build (`codebuild:StopBuild`, the pipeline
role's).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from ..builds import ArtifactLocation
from ..wire import AwsError
from .context import JOB_FAILED, ActionContext, Outcome
from .model import Artifact
from .store import new_key

FINAL = ("SUCCEEDED", "FAILED", "FAULT", "TIMED_OUT", "STOPPED")
# How often the action looks whether it was abandoned while its build runs.
WAIT_SLICE_S = 0.5


def run_build(ctx: ActionContext) -> Outcome:
    runner, run, execution = ctx.runner, ctx.run, ctx.execution
    project = ctx.configuration.get("ProjectName", "")
    project_arn = f"arn:aws:codebuild:{run.region}:{execution.account}:project/{project}"
    denied = _on_behalf(ctx, "codebuild:StartBuild", project_arn)
    if denied is not None:
        return Outcome.failure("AccessDenied", denied)
    inputs = _primary_first(run.inputs, ctx.configuration.get("PrimarySource"))
    outputs = [
        ArtifactLocation(o["name"], ctx.store.bucket, new_key(execution.pipeline_name, o["name"]))
        for o in run.declaration.get("outputArtifacts", [])
    ]
    build_id = runner.app.builds.start(
        region=run.region,
        project_name=project,
        initiator=f"codepipeline/{execution.pipeline_name}",
        inputs=[ArtifactLocation(a.name, a.bucket, a.key) for a in inputs],
        outputs=outputs,
        environment_overrides=_overrides(ctx.configuration.get("EnvironmentVariables")),
        encryption_key_arn=ctx.store.key_id,
        source_version=inputs[0].revision if inputs else None,
    )
    url = f"https://console.aws.amazon.com/codesuite/codebuild/projects/{project}/build/{build_id}"
    with runner.lock:
        run.external_id, run.external_url = build_id, url
    build = runner.app.builds.get(build_id)
    while build["buildStatus"] not in FINAL:
        if run.wake.is_set():  # abandoned: the engine has recorded it
            _stop(ctx, build_id)
            return Outcome.failure(JOB_FAILED, f"Build {build_id} was stopped: the action was abandoned")
        build = runner.app.builds.wait(build_id, WAIT_SLICE_S)
    denied = _on_behalf(ctx, "codebuild:BatchGetBuilds", project_arn)
    if denied is not None:
        return Outcome.failure("AccessDenied", denied, external_id=build_id, external_url=url)
    status = build["buildStatus"]
    if status != "SUCCEEDED":
        return Outcome.failure(JOB_FAILED, _failure(build), external_id=build_id, external_url=url)
    revision = inputs[0] if inputs else None
    return Outcome(
        True,
        summary=f"Build {build_id} succeeded",
        external_id=build_id,
        external_url=url,
        outputs=[
            Artifact(o.name, run.region, o.bucket, o.key, revision.revision if revision else None,
                     revision.revision_summary if revision else None)
            for o in outputs
        ],
        variables={v["name"]: v.get("value", "") for v in build.get("exportedEnvironmentVariables", [])},
    )


def _on_behalf(ctx: ActionContext, action: str, resource: str) -> str | None:
    """What CodePipeline does with the role's permissions without a call of
    the customer's own: None when allowed, else the denial's message."""
    enforcer = ctx.runner.app.enforcer
    if not enforcer.enabled:
        return None
    decision = enforcer.authorize_on_behalf(
        {"accessKeyId": ctx.credentials.access_key_id, "action": action, "resource": resource}
    )
    return None if decision["allowed"] else decision["message"]


def _stop(ctx: ActionContext, build_id: str) -> None:
    codebuild = ctx.runner.app.loopback.client("codebuild", ctx.run.region, ctx.credentials)
    try:
        codebuild.stop_build(id=build_id)
    except ClientError:  # the build ends by its own timeout; the action is abandoned either way
        return


def _primary_first(inputs: list[Artifact], primary: str | None) -> list[Artifact]:
    return sorted(inputs, key=lambda a: a.name != primary) if primary else list(inputs)


def _overrides(text: str | None) -> list[dict[str, str]] | None:
    """The action's `EnvironmentVariables`: a JSON list of {name, value, type}."""
    if not text:
        return None
    try:
        variables: Any = json.loads(text)
    except ValueError as error:
        raise AwsError("InvalidActionDeclarationException", f"EnvironmentVariables is not JSON: {error}") from error
    if not isinstance(variables, list) or not all(isinstance(v, dict) for v in variables):
        raise AwsError("InvalidActionDeclarationException", "EnvironmentVariables must be a JSON list of objects")
    return [{"type": "PLAINTEXT", **v} for v in variables]


def _failure(build: dict[str, Any]) -> str:
    """Why the build failed, from the phase that failed, as CodePipeline
    reports a failed CodeBuild action."""
    status = build["buildStatus"]
    failed = next(
        (p for p in build.get("phases", []) if p.get("phaseStatus") not in (None, "SUCCEEDED")), None
    )
    if failed is None:
        return f"Build terminated with state: {status}"
    contexts = failed.get("contexts") or [{}]
    return (
        f"Build terminated with state: {status}. Phase: {failed['phaseType']}, "
        f"Code: {contexts[0].get('statusCode', '')}, Message: {contexts[0].get('message', '')}"
    )
