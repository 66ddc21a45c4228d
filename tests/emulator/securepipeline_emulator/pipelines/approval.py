"""The `Manual` approval action.

While it waits, the action carries a token (GetPipelineState shows it);
PutApprovalResult with that token decides it. Its `NotificationArn` topic
is sent the approval request, in the JSON format CodePipeline documents
("JSON data format for manual approval notifications"), published with the
pipeline role's session, so the role needs `sns:Publish` on the topic. An
approval nobody decides fails when its `timeoutInMinutes` (7 days unless
set) has passed, as a failed action does.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

from botocore.exceptions import ClientError

from .context import JOB_FAILED, ActionContext, Outcome
from .store import as_aws_error

DEFAULT_TIMEOUT_MINUTES = 7 * 24 * 60
# How often a waiting approval looks at the clock (it is woken at once
# when decided or abandoned).
CLOCK_POLL_S = 0.5
APPROVED = "Approved"


def run_approval(ctx: ActionContext) -> Outcome:
    runner, run = ctx.runner, ctx.run
    minutes = run.declaration.get("timeoutInMinutes") or DEFAULT_TIMEOUT_MINUTES
    expires = runner.clock() + minutes * 60
    token = str(uuid.uuid4())
    topic = ctx.configuration.get("NotificationArn")
    if topic:
        failure = _notify(ctx, topic, token, expires)
        if failure is not None:
            return failure
    # The token shows in GetPipelineState only once the reviewers were told.
    with runner.lock:
        run.token = token
    while not run.wake.is_set():
        remaining = expires - runner.clock()
        if remaining <= 0:
            return Outcome.failure(JOB_FAILED, f"The approval was not decided within {minutes} minutes")
        run.wake.wait(min(remaining, CLOCK_POLL_S))
    with runner.lock:
        decided = run.approval
    if decided is None:  # abandoned: the engine records that
        return Outcome.failure(JOB_FAILED, "The approval was abandoned")
    status, summary, reviewer = decided
    if status == APPROVED:
        return Outcome(True, summary=summary, updated_by=reviewer)
    return Outcome.failure(
        JOB_FAILED, f"Rejected by {reviewer}: {summary}", summary=summary, updated_by=reviewer
    )


def _notify(ctx: ActionContext, topic: str, token: str, expires: float) -> Outcome | None:
    execution, run = ctx.execution, ctx.run
    region = execution.region
    console = f"https://console.aws.amazon.com/codesuite/codepipeline/pipelines/{execution.pipeline_name}"
    approval = {
        "pipelineName": execution.pipeline_name,
        "stageName": run.stage,
        "actionName": run.name,
        "token": token,
        "expires": datetime.fromtimestamp(expires, timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
        "approvalReviewLink": f"{console}/view?region={region}#/{run.stage}/{run.name}/approve/{token}",
    }
    for key, name in (("externalEntityLink", "ExternalEntityLink"), ("customData", "CustomData")):
        if ctx.configuration.get(name):
            approval[key] = ctx.configuration[name]
    message = {"region": region, "consoleLink": f"{console}/view?region={region}", "approval": approval}
    subject = f"APPROVAL NEEDED: AWS CodePipeline {execution.pipeline_name} for action {run.name}"
    sns = ctx.runner.app.loopback.client("sns", topic.split(":")[3], ctx.credentials)
    try:
        sns.publish(TopicArn=topic, Subject=subject[:100], Message=json.dumps(message))
    except ClientError as error:
        failure = as_aws_error(error)
        return Outcome.failure(failure.code, f"Could not notify {topic}: {failure.message}")
    return None
