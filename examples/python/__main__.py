"""A SecurePipeline for one repository: push to the branch starts it, the
build installs and tests the app, staging gets it with the app's own deploy
script, and production gets the infrastructure stack after a person approves."""

import pulumi
import pulumi_securepipeline as securepipeline

config = pulumi.Config()
repository = config.require("repository")
branch = config.get("branch") or "main"
notification_email = config.require("notificationEmail")
npm_token_secret_arn = config.require("npmTokenSecretArn")
pulumi_access_token_secret_arn = config.require("pulumiAccessTokenSecretArn")
production_role_arn = config.require("productionRoleArn")
log_retention_days = config.get_int("logRetentionDays") or 14

# Secrets are passed by reference; only this ARN becomes readable by the
# stages that use it.
npm_token = securepipeline.EnvironmentVariableArgs(
    secret_arn=npm_token_secret_arn,
    secret_json_key="token",
)

pipeline = securepipeline.SecurePipeline(
    "web-app",
    source=securepipeline.SourceArgs(
        repository=repository,
        branch=branch,
        # Releases: pushing a tag such as v1.4.0 builds and deploys the
        # tagged commit; release candidates (v1.4.0-rc1) start nothing.
        tags=["v*"],
        exclude_tags=["v*-rc*"],
    ),
    build=securepipeline.BuildArgs(
        commands=["npm ci", "npm test"],
        timeout_minutes=30,
        environment={
            "NODE_ENV": securepipeline.EnvironmentVariableArgs(value="test"),
            "NPM_TOKEN": npm_token,
        },
    ),
    deployments=[
        securepipeline.DeploymentArgs(
            name="staging",
            commands=["npm ci", "npm run deploy -- --target staging"],
            timeout_minutes=20,
            environment={
                "DEPLOY_TARGET": securepipeline.EnvironmentVariableArgs(value="staging"),
                "NPM_TOKEN": npm_token,
            },
        ),
        securepipeline.DeploymentArgs(
            name="production",
            pulumi_stack=securepipeline.PulumiDeploymentArgs(
                stack="example-org/web-app-infra/production",
                work_dir="infra",
                access_token_secret_arn=pulumi_access_token_secret_arn,
                pulumi_version="3.248.0",
            ),
            assume_role_arn=production_role_arn,
            production=True,
            require_approval=True,
        ),
    ],
    # A value each run may set (`aws codepipeline start-pipeline-execution
    # --variables name=LOG_LEVEL,value=debug`); every stage sees $LOG_LEVEL.
    variables={
        "LOG_LEVEL": securepipeline.PipelineVariableArgs(
            default_value="info",
            description="Verbosity of the build and deploy scripts; start a run with debug to investigate.",
        ),
    },
    notifications=securepipeline.NotificationsArgs(
        emails=[notification_email],
        events=[
            securepipeline.NotificationEvent.FAILED,
            securepipeline.NotificationEvent.SUCCEEDED,
        ],
    ),
    schedule="rate(1 day)",
    log_retention_days=log_retention_days,
    tags={"team": "platform"},
)

pulumi.export("pipelineName", pipeline.pipeline_name)
pulumi.export("pipelineUrl", pipeline.pipeline_url)
pulumi.export("connectionStatus", pipeline.connection_status)
pulumi.export("connectionActivationUrl", pipeline.connection_activation_url)
pulumi.export("artifactBucketName", pipeline.artifact_bucket_name)
pulumi.export("kmsKeyArn", pipeline.kms_key_arn)
pulumi.export("notificationTopicArn", pipeline.notification_topic_arn)
pulumi.export("buildProjectNames", pipeline.build_project_names)
pulumi.export("logGroupNames", pipeline.log_group_names)
pulumi.export("roleArns", pipeline.role_arns)
