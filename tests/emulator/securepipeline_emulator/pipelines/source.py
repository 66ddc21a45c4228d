"""The `CodeStarSourceConnection` source action.

CodePipeline uses the connection on the pipeline role's behalf: the
connection must be AVAILABLE (a PENDING one was never authorised by a
person), and the role must be allowed `UseConnection` on it for the
repository (`FullRepositoryId` condition key). The commit (the pushed one,
an override, or the branch's head) is fetched from the registered local
repository and written to the artifact store as a CODE_ZIP artifact, under
the pipeline role, with the store's key. The action's output variables are
those AWS documents for this action.
"""

from __future__ import annotations

import json

from .context import ActionContext, Outcome
from .model import Artifact
from .store import new_key

CODE_ZIP = "CODE_ZIP"


def run_source(ctx: ActionContext) -> Outcome:
    runner, configuration = ctx.runner, ctx.configuration
    connection_arn = configuration.get("ConnectionArn", "")
    repository = configuration.get("FullRepositoryId", "")
    output_format = configuration.get("OutputArtifactFormat", CODE_ZIP)
    if output_format != CODE_ZIP:
        return Outcome.failure(
            "ActionConfigurationNotSupported",
            f"OutputArtifactFormat {output_format}: the emulator produces {CODE_ZIP} artifacts only",
        )
    connection = runner.app.connections.get(connection_arn)
    if connection.status != "AVAILABLE":
        return Outcome.failure(
            "ConnectionNotAvailable",
            f"Connection {connection_arn} is not available: its status is {connection.status}. "
            "Complete the connection's handshake (make it AVAILABLE) and retry.",
        )
    denied = _use_connection(ctx, connection_arn, repository)
    if denied is not None:
        return Outcome.failure("AccessDenied", denied)

    branch, commit_id = ctx.execution.source_overrides.get(ctx.run.name, (configuration.get("BranchName", ""), ""))
    if not commit_id:
        commit_id = runner.repositories.head(repository, branch)
    commit = runner.repositories.commit(repository, commit_id)
    body = runner.repositories.archive(repository, commit.sha)
    summary = json.dumps({"ProviderType": connection.provider_type or "GitHub", "CommitMessage": commit.message})
    outputs = []
    for output in ctx.run.declaration.get("outputArtifacts", []):
        key = new_key(ctx.execution.pipeline_name, output["name"])
        runner.objects.put(ctx.credentials, ctx.store, key, body)
        outputs.append(
            Artifact(output["name"], ctx.store.region, ctx.store.bucket, key, commit.sha, summary)
        )
    return Outcome(
        True,
        summary=commit.message,
        external_id=commit.sha,
        outputs=outputs,
        variables={
            "AuthorDate": commit.author_date,
            "BranchName": branch,
            "CommitId": commit.sha,
            "CommitMessage": commit.message,
            "ConnectionArn": connection_arn,
            "FullRepositoryId": repository,
        },
    )


def _use_connection(ctx: ActionContext, connection_arn: str, repository: str) -> str | None:
    """Authorise UseConnection for the role's session; the denial's message."""
    enforcer = ctx.runner.app.enforcer
    if not enforcer.enabled:
        return None
    prefix = connection_arn.split(":")[2]  # codestar-connections or codeconnections
    decision = enforcer.authorize_on_behalf(
        {
            "accessKeyId": ctx.credentials.access_key_id,
            "action": f"{prefix}:UseConnection",
            "resource": connection_arn,
            # CodeConnections is CodeStar Connections renamed: policies may
            # name the repository under either prefix.
            "context": {
                "codestar-connections:FullRepositoryId": repository,
                "codeconnections:FullRepositoryId": repository,
            },
        }
    )
    return None if decision["allowed"] else decision["message"]
