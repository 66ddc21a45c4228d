"""Unit tests for the program in __main__.py, run with Pulumi's mocks: no
engine, no provider plugin and no AWS account. The mocks stand in for the
provider and answer the SecurePipeline registration with outputs computed from
its inputs, so the tests check both what the program asks for and what it
exports. Run with `python -m pytest`."""

import importlib.util
import pathlib
import re

import pulumi

PROJECT = "securepipeline-python-example"
REGION = "us-east-1"
ACCOUNT = "123456789012"
# Child names have the provider's shape: <component>-<tag>-<purpose>-<random suffix>.
TAG = "a1b2"
SUFFIX = "x7k2m9p4"

CONFIG = {
    "repository": "example-org/web-app",
    "notificationEmail": "team@example.com",
    "npmTokenSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:web-app/npm-token-AbCdEf",
    "pulumiAccessTokenSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:web-app/pulumi-token-AbCdEf",
    "productionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/web-app-production-deployer",
}


def secure_pipeline_outputs(name: str, inputs: dict) -> dict:
    """The outputs the provider reports for a SecurePipeline with these inputs."""

    def child(purpose: str) -> str:
        return f"{name}-{TAG}-{purpose}-{SUFFIX}"

    pipeline_name = child("pipeline")
    stages = [d["name"] for d in inputs.get("deployments", [])]
    projects = [child("build")] + [child(f"deploy-{stage}") for stage in stages]
    purposes = ["pipeline", "build"] + [f"deploy-{stage}" for stage in stages]
    if inputs.get("schedule"):
        purposes.append("events")
    role_arns = {purpose: f"arn:aws:iam::{ACCOUNT}:role/{child(purpose)}" for purpose in purposes}
    existing_connection = inputs["source"].get("connectionArn")
    return {
        "pipelineName": pipeline_name,
        "pipelineArn": f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:{pipeline_name}",
        "pipelineUrl": f"https://{REGION}.console.aws.amazon.com/codesuite/codepipeline/pipelines/{pipeline_name}/view?region={REGION}",
        # A connection the component creates waits for a person to activate it.
        "connectionArn": existing_connection
        or f"arn:aws:codestar-connections:{REGION}:{ACCOUNT}:connection/0b7c3f0e-1d2a-4c5b-9e8f-7a6b5c4d3e2f",
        "connectionStatus": "AVAILABLE" if existing_connection else "PENDING",
        "connectionActivationUrl": f"https://{REGION}.console.aws.amazon.com/codesuite/settings/connections?region={REGION}",
        "artifactBucketName": child("artifacts").lower(),
        "kmsKeyArn": inputs.get("kmsKeyArn") or f"arn:aws:kms:{REGION}:{ACCOUNT}:key/5f0e1d2c-3b4a-4958-8776-655443322110",
        "notificationTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:{child('notify')}",
        "eventBridgeRoleArn": role_arns.get("events"),
        "buildProjectNames": projects,
        "logGroupNames": [f"/securepipeline/{p}" for p in projects],
        "roleArns": role_arns,
    }


class PipelineMocks(pulumi.runtime.Mocks):
    def __init__(self):
        # Every resource the program registers, by name.
        self.registered: dict[str, pulumi.runtime.MockResourceArgs] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.registered[args.name] = args
        if args.typ == "securepipeline:index:SecurePipeline":
            return None, {**args.inputs, **secure_pipeline_outputs(args.name, args.inputs)}
        return f"{args.name}-id", args.inputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


mocks = PipelineMocks()
pulumi.runtime.set_mocks(mocks, project=PROJECT, stack="test", preview=False)
pulumi.runtime.set_all_config({f"{PROJECT}:{key}": value for key, value in CONFIG.items()})

# Runs the program, as `pulumi up` would, under the mocks.
_spec = importlib.util.spec_from_file_location("program", pathlib.Path(__file__).with_name("__main__.py"))
program = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(program)
exports = pulumi.runtime.get_root_resource().outputs


def with_inputs(check):
    """Runs `check` on the SecurePipeline's inputs once the program has registered it."""

    def run(_):
        registration = mocks.registered["web-app"]
        assert registration.typ == "securepipeline:index:SecurePipeline"
        check(registration.inputs)

    return exports["pipelineName"].apply(run)


def with_exports(check):
    """Runs `check` on the stack's exported values once they are known."""
    return pulumi.Output.all(**exports).apply(check)


@pulumi.runtime.test
def test_builds_the_configured_repository_on_pushes_to_main():
    def check(inputs):
        assert inputs["source"]["repository"] == CONFIG["repository"]
        assert inputs["source"]["branch"] == "main"
        assert "connectionArn" not in inputs["source"], "the component creates the connection"

    return with_inputs(check)


@pulumi.runtime.test
def test_releases_on_version_tags_never_on_release_candidates():
    def check(inputs):
        assert inputs["source"]["tags"] == ["v*"]
        assert inputs["source"]["excludeTags"] == ["v*-rc*"]

    return with_inputs(check)


@pulumi.runtime.test
def test_runs_the_tests_with_a_30_minute_build_timeout():
    def check(inputs):
        assert inputs["build"]["commands"] == ["npm ci", "npm test"]
        assert inputs["build"]["timeoutMinutes"] == 30
        assert inputs["build"]["environment"]["NODE_ENV"] == {"value": "test"}

    return with_inputs(check)


@pulumi.runtime.test
def test_passes_secrets_by_their_secrets_manager_arn_never_as_values():
    def check(inputs):
        assert inputs["build"]["environment"]["NPM_TOKEN"] == {
            "secretArn": CONFIG["npmTokenSecretArn"],
            "secretJsonKey": "token",
        }
        environments = [inputs["build"]["environment"]] + [d.get("environment", {}) for d in inputs["deployments"]]
        for environment in environments:
            for name, variable in environment.items():
                if re.search("TOKEN|SECRET|PASSWORD", name):
                    assert "value" not in variable, f"{name} must not be a plain value"
                    assert variable["secretArn"], f"{name} is read from Secrets Manager"

    return with_inputs(check)


@pulumi.runtime.test
def test_deploys_to_staging_with_commands_then_to_production_with_a_pulumi_stack():
    def check(inputs):
        assert [d["name"] for d in inputs["deployments"]] == ["staging", "production"]
        staging, production = inputs["deployments"]
        assert staging["commands"] == ["npm ci", "npm run deploy -- --target staging"]
        assert "pulumiStack" not in staging
        assert staging["timeoutMinutes"] == 20

        assert "commands" not in production
        assert production["pulumiStack"] == {
            "stack": "example-org/web-app-infra/production",
            "workDir": "infra",
            "accessTokenSecretArn": CONFIG["pulumiAccessTokenSecretArn"],
            "pulumiVersion": "3.248.0",
        }
        assert production["assumeRoleArn"] == CONFIG["productionRoleArn"]
        assert production["production"] is True
        assert production["requireApproval"] is True

    return with_inputs(check)


@pulumi.runtime.test
def test_lets_a_run_raise_the_log_level_defaulting_to_info():
    def check(inputs):
        assert inputs["variables"]["LOG_LEVEL"]["defaultValue"] == "info"

    return with_inputs(check)


@pulumi.runtime.test
def test_notifies_on_failures_and_successes_and_runs_once_a_day():
    def check(inputs):
        assert inputs["notifications"] == {"emails": [CONFIG["notificationEmail"]], "events": ["FAILED", "SUCCEEDED"]}
        assert inputs["schedule"] == "rate(1 day)"
        assert inputs["logRetentionDays"] == 14
        assert inputs["tags"] == {"team": "platform"}

    return with_inputs(check)


@pulumi.runtime.test
def test_exports_the_pipeline_url_and_a_connection_waiting_for_activation():
    def check(values):
        name = values["pipelineName"]
        assert name == f"web-app-{TAG}-pipeline-{SUFFIX}"
        assert values["pipelineUrl"] == (
            f"https://{REGION}.console.aws.amazon.com/codesuite/codepipeline/pipelines/{name}/view?region={REGION}"
        )
        assert values["connectionStatus"] == "PENDING"
        assert values["connectionActivationUrl"].endswith(f"/codesuite/settings/connections?region={REGION}")
        assert re.fullmatch(r"[a-z0-9-]+", values["artifactBucketName"])
        assert values["notificationTopicArn"].startswith(f"arn:aws:sns:{REGION}:{ACCOUNT}:")

    return with_exports(check)


@pulumi.runtime.test
def test_exports_one_codebuild_project_for_the_build_and_one_per_deployment():
    def check(values):
        assert values["buildProjectNames"] == [
            f"web-app-{TAG}-build-{SUFFIX}",
            f"web-app-{TAG}-deploy-staging-{SUFFIX}",
            f"web-app-{TAG}-deploy-production-{SUFFIX}",
        ]

    return with_exports(check)
