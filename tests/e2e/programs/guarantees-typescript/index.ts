// The richest single-region configuration, as in tests/e2e/tests/pipeline.rs's
// YAML program, written against the typed SDK. The notification address is a
// Pulumi secret: the suite checks it never reaches plaintext state.
import * as pulumi from "@pulumi/pulumi";
import * as securepipeline from "@securepipeline/pulumi";

const config = new pulumi.Config();

const web = new securepipeline.SecurePipeline("web", {
    source: {
        repository: "example-org/web",
        branch: "main",
        includePaths: ["src/**"],
    },
    build: {
        commands: ["npm ci", "npm test"],
        image: "aws/codebuild/standard:7.0",
        computeType: securepipeline.ComputeType.BUILD_GENERAL1_MEDIUM,
        timeoutMinutes: 30,
        queuedTimeoutMinutes: 20,
        environment: {
            NODE_ENV: { value: "test" },
            NPM_TOKEN: {
                secretArn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:npm-token-AbCdEf",
                secretJsonKey: "token",
            },
            DB_PASSWORD: { parameterName: "/web/db-password" },
        },
    },
    notifications: {
        emails: [pulumi.secret("team@example.com")],
        events: [securepipeline.NotificationEvent.FAILED, securepipeline.NotificationEvent.SUCCEEDED],
    },
    schedule: "rate(1 day)",
    logRetentionDays: config.requireNumber("logRetentionDays"),
    artifactRetentionDays: 14,
    tags: { team: "platform" },
});

export const pipelineName = web.pipelineName;
export const pipelineArn = web.pipelineArn;
export const pipelineUrl = web.pipelineUrl;
export const connectionArn = web.connectionArn;
export const connectionStatus = web.connectionStatus;
export const artifactBucketName = web.artifactBucketName;
export const kmsKeyArn = web.kmsKeyArn;
export const notificationTopicArn = web.notificationTopicArn;
export const eventBridgeRoleArn = web.eventBridgeRoleArn;
export const buildProjectNames = web.buildProjectNames;
export const logGroupNames = web.logGroupNames;
export const roleArns = web.roleArns;
