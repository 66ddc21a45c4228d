"""Invoking EventBridge targets as EventBridge does.

- An SNS topic is published to by `events.amazonaws.com` itself: the topic
  policy must allow that service principal to publish, with the rule's ARN
  as `aws:SourceArn` and its account as `aws:SourceAccount`.
- A pipeline is started with the target's `RoleArn`: EventBridge assumes it
  (the trust policy must allow events.amazonaws.com for that rule) and calls
  the public StartPipelineExecution with the session, over loopback, so the
  role's policy decides.

What a target receives is the event, or what the target's `Input`,
`InputPath` or `InputTransformer` makes of it.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError
from jsonpath_ng.ext import parse as parse_path
from moto.events.utils import EventTemplateParser
from moto.sns.models import sns_backends

from ..enforcement import Enforcer
from ..enforcement.actions import Check
from ..enforcement.evaluate import Principal
from ..loopback import Loopback
from ..wire import AwsError
from .published import Published
from .store import as_aws_error

EVENTS = "events.amazonaws.com"
# A private marker on EventBridge's StartPipelineExecution call: the
# execution's trigger is then the rule (CloudWatchEvent), as on AWS. It is
# not a condition key: the call is authorised as the role's own.
EVENT_RULE_HEADER = "X-Emulator-Event-Rule"


def arn_parts(arn: str) -> tuple[str, str, str, str]:
    """(service, region, account, resource) of an ARN."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise AwsError("ValidationException", f"{arn} is not an ARN")
    return parts[2], parts[3], parts[4], parts[5]


class Targets:
    def __init__(self, loopback: Loopback, enforcer: Enforcer, published: Published) -> None:
        self.loopback = loopback
        self.enforcer = enforcer
        self.published = published

    def invoke(self, rule_arn: str, target: dict[str, Any], event: dict[str, Any] | None) -> str | None:
        """Deliver to one target; the started execution's id for a pipeline
        target. Raises AwsError when EventBridge may not reach the target."""
        service, _, _, _ = arn_parts(target["Arn"])
        if service == "sns":
            self.publish(rule_arn, target["Arn"], target_input(target, event))
            return None
        if service == "codepipeline":
            return self.start_pipeline(rule_arn, target)
        raise AwsError("UnsupportedTarget", f"the emulator does not deliver to {service} targets ({target['Arn']})")

    def publish(self, rule_arn: str, topic_arn: str, message: str) -> None:
        _, region, account, _ = arn_parts(topic_arn)
        if self.enforcer.enabled:
            context: dict[str, str | list[str]] = {
                "aws:SourceArn": rule_arn,
                "aws:SourceAccount": arn_parts(rule_arn)[2],
                "aws:SecureTransport": "true",
            }
            outcome = self.enforcer.check(
                Principal(arn=EVENTS, account=account, service=EVENTS),
                Check("sns:Publish", topic_arn, context),
                "events delivery: sns Publish",
            )
            if not outcome.allowed:
                raise AwsError("AuthorizationError", outcome.message, 403)
        backend = sns_backends[account][region]
        if topic_arn not in backend.topics:
            raise AwsError("NotFound", f"Topic does not exist: {topic_arn}", 404)
        backend.publish(message, arn=topic_arn)
        self.published.record(topic_arn, None, message, EVENTS)

    def start_pipeline(self, rule_arn: str, target: dict[str, Any]) -> str:
        role = target.get("RoleArn")
        if not role:
            raise AwsError("AccessDenied", f"target {target['Id']} of {rule_arn} has no RoleArn to start a pipeline with", 403)
        rule_name = rule_arn.rsplit("/", 1)[-1]
        credentials = self.loopback.assume(EVENTS, role, rule_name[:64], source_arn=rule_arn)
        _, region, _, pipeline = arn_parts(target["Arn"])
        client = self.loopback.client("codepipeline", region, credentials)

        def mark(request: Any, **_: Any) -> None:
            request.headers[EVENT_RULE_HEADER] = rule_arn

        client.meta.events.register("before-sign.codepipeline.StartPipelineExecution", mark)
        try:
            return client.start_pipeline_execution(name=pipeline)["pipelineExecutionId"]
        except ClientError as error:
            raise as_aws_error(error) from error


def target_input(target: dict[str, Any], event: dict[str, Any] | None) -> str:
    """The text a target receives for an event (a schedule sends `{}`)."""
    if "Input" in target:
        return target["Input"]
    event = event or {}
    if "InputPath" in target:
        found = parse_path(target["InputPath"]).find(event)
        return json.dumps(found[0].value) if found else "null"
    transformer = target.get("InputTransformer")
    if transformer:
        shaped = EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event={**event, "ingestion-time": event.get("time")},
        )
        return shaped if isinstance(shaped, str) else json.dumps(shaped)
    return json.dumps(event)
