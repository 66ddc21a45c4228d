"""CodePipeline: trust policies with a list of service principals.

moto's CreatePipeline only accepts the pipeline role when its trust policy
names the service as a plain string (`"Service": "codepipeline.amazonaws.com"`).
IAM treats a one-element list the same, and the provider always writes lists,
so moto refused every pipeline with "not authorized to perform AssumeRole".
The check is made with the list form read as the string form.
"""

from __future__ import annotations

import json
from typing import Any

from moto.codepipeline.models import CodePipelineBackend

SERVICE = "codepipeline.amazonaws.com"


def _string_services(document: str) -> str:
    """The same trust policy with one-element service lists as strings."""
    policy = json.loads(document)
    statements = policy.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        services = statement.get("Principal", {}).get("Service")
        if isinstance(services, list) and SERVICE in services:
            statement["Principal"]["Service"] = SERVICE
    return json.dumps(policy)


def _create_pipeline(original: Any) -> Any:
    def create_pipeline(self: CodePipelineBackend, pipeline: dict[str, Any], tags: Any) -> Any:
        try:
            role = self.iam_backend.get_role_by_arn(pipeline["roleArn"])
        except Exception:  # moto's own check reports a missing role
            return original(self, pipeline, tags)
        written = role.assume_role_policy_document
        role.assume_role_policy_document = _string_services(written)
        try:
            return original(self, pipeline, tags)
        finally:
            role.assume_role_policy_document = written

    return create_pipeline


def patch() -> None:
    CodePipelineBackend.create_pipeline = _create_pipeline(CodePipelineBackend.create_pipeline)
