import * as pulumi from "@pulumi/pulumi";
import * as securepipeline from "@securepipeline/pulumi";

const config = new pulumi.Config();
const repository = config.require("repository");
const branch = config.get("branch") ?? "main";
const notificationEmail = config.require("notificationEmail");
const npmTokenSecretArn = config.require("npmTokenSecretArn");
const pulumiAccessTokenSecretArn = config.require("pulumiAccessTokenSecretArn");
const productionRoleArn = config.require("productionRoleArn");
const logRetentionDays = config.getNumber("logRetentionDays") ?? 14;

// Push to the branch starts the pipeline: the build installs and tests the
// app, staging gets it with the app's own deploy script, and production gets
// the infrastructure stack after a person approves.
const pipeline = new securepipeline.SecurePipeline("web-app", {
    source: {
        repository,
        branch,
        // Releases: pushing a tag such as v1.4.0 builds and deploys the
        // tagged commit; release candidates (v1.4.0-rc1) start nothing.
        tags: ["v*"],
        excludeTags: ["v*-rc*"],
    },
    build: {
        commands: ["npm ci", "npm test"],
        timeoutMinutes: 30,
        environment: {
            NODE_ENV: { value: "test" },
            // Secrets are passed by reference; only this ARN becomes readable
            // by the build.
            NPM_TOKEN: { secretArn: npmTokenSecretArn, secretJsonKey: "token" },
        },
    },
    deployments: [
        {
            name: "staging",
            commands: ["npm ci", "npm run deploy -- --target staging"],
            timeoutMinutes: 20,
            environment: {
                DEPLOY_TARGET: { value: "staging" },
                NPM_TOKEN: { secretArn: npmTokenSecretArn, secretJsonKey: "token" },
            },
        },
        {
            name: "production",
            pulumiStack: {
                stack: "example-org/web-app-infra/production",
                workDir: "infra",
                accessTokenSecretArn: pulumiAccessTokenSecretArn,
                pulumiVersion: "3.248.0",
            },
            assumeRoleArn: productionRoleArn,
            production: true,
            requireApproval: true,
        },
    ],
    // A value each run may set (`aws codepipeline start-pipeline-execution
    // --variables name=LOG_LEVEL,value=debug`); every stage sees $LOG_LEVEL.
    variables: {
        LOG_LEVEL: {
            defaultValue: "info",
            description: "Verbosity of the build and deploy scripts; start a run with debug to investigate.",
        },
    },
    notifications: {
        emails: [notificationEmail],
        events: ["FAILED", "SUCCEEDED"],
    },
    schedule: "rate(1 day)",
    logRetentionDays,
    tags: {
        team: "platform",
    },
});

export const pipelineName = pipeline.pipelineName;
export const pipelineUrl = pipeline.pipelineUrl;
export const connectionStatus = pipeline.connectionStatus;
export const connectionActivationUrl = pipeline.connectionActivationUrl;
export const artifactBucketName = pipeline.artifactBucketName;
export const kmsKeyArn = pipeline.kmsKeyArn;
export const notificationTopicArn = pipeline.notificationTopicArn;
export const buildProjectNames = pipeline.buildProjectNames;
export const logGroupNames = pipeline.logGroupNames;
export const roleArns = pipeline.roleArns;
