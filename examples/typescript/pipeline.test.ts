// Unit tests for the program in index.ts, run with Pulumi's mocks: no engine,
// no provider plugin and no AWS account. The mocks stand in for the provider
// and answer the SecurePipeline registration with outputs computed from its
// inputs, so the tests check both what the program asks for and what it
// exports.
import { before, describe, test } from "node:test";
import { strict as assert } from "node:assert";
import * as pulumi from "@pulumi/pulumi";

const project = "securepipeline-typescript-example";
const region = "us-east-1";
const account = "123456789012";
// Child names have the provider's shape: <component>-<tag>-<purpose>-<random suffix>.
const tag = "a1b2";
const suffix = "x7k2m9p4";

const config = {
    repository: "example-org/web-app",
    notificationEmail: "team@example.com",
    npmTokenSecretArn: `arn:aws:secretsmanager:${region}:${account}:secret:web-app/npm-token-AbCdEf`,
    pulumiAccessTokenSecretArn: `arn:aws:secretsmanager:${region}:${account}:secret:web-app/pulumi-token-AbCdEf`,
    productionRoleArn: `arn:aws:iam::${account}:role/web-app-production-deployer`,
};

/** The outputs the provider reports for a SecurePipeline with these inputs. */
function securePipelineOutputs(name: string, inputs: any): Record<string, any> {
    const child = (purpose: string) => `${name}-${tag}-${purpose}-${suffix}`;
    const pipelineName = child("pipeline");
    const stages: string[] = (inputs.deployments ?? []).map((d: any) => d.name);
    const projects = [child("build"), ...stages.map((stage) => child(`deploy-${stage}`))];
    const role = (purpose: string) => `arn:aws:iam::${account}:role/${child(purpose)}`;
    const roleArns: Record<string, string> = { pipeline: role("pipeline"), build: role("build") };
    for (const stage of stages) {
        roleArns[`deploy-${stage}`] = role(`deploy-${stage}`);
    }
    if (inputs.schedule) {
        roleArns.events = role("events");
    }
    return {
        pipelineName,
        pipelineArn: `arn:aws:codepipeline:${region}:${account}:${pipelineName}`,
        pipelineUrl: `https://${region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/${pipelineName}/view?region=${region}`,
        // A connection the component creates waits for a person to activate it.
        connectionArn:
            inputs.source.connectionArn ??
            `arn:aws:codestar-connections:${region}:${account}:connection/0b7c3f0e-1d2a-4c5b-9e8f-7a6b5c4d3e2f`,
        connectionStatus: inputs.source.connectionArn ? "AVAILABLE" : "PENDING",
        connectionActivationUrl: `https://${region}.console.aws.amazon.com/codesuite/settings/connections?region=${region}`,
        artifactBucketName: child("artifacts").toLowerCase(),
        kmsKeyArn: inputs.kmsKeyArn ?? `arn:aws:kms:${region}:${account}:key/5f0e1d2c-3b4a-4958-8776-655443322110`,
        notificationTopicArn: `arn:aws:sns:${region}:${account}:${child("notify")}`,
        eventBridgeRoleArn: inputs.schedule ? roleArns.events : undefined,
        buildProjectNames: projects,
        logGroupNames: projects.map((p) => `/securepipeline/${p}`),
        roleArns,
    };
}

// Every resource the program registers, by name.
const registered = new Map<string, pulumi.runtime.MockResourceArgs>();

pulumi.runtime.setMocks(
    {
        newResource(args: pulumi.runtime.MockResourceArgs) {
            registered.set(args.name, args);
            if (args.type === "securepipeline:index:SecurePipeline") {
                return { id: undefined, state: { ...args.inputs, ...securePipelineOutputs(args.name, args.inputs) } };
            }
            return { id: `${args.name}-id`, state: args.inputs };
        },
        call(args: pulumi.runtime.MockCallArgs) {
            return args.inputs;
        },
    },
    project,
    "test",
    false,
);
pulumi.runtime.setAllConfig(
    Object.fromEntries(Object.entries(config).map(([key, value]) => [`${project}:${key}`, value])),
);

/** Resolves an output the way `pulumi up` would, for assertions. */
function valueOf<T>(output: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => output.apply(resolve));
}

describe("SecurePipeline program", () => {
    let program: typeof import("./index");
    let inputs: any;

    before(async () => {
        // The program runs when it is first imported, after the mocks are set.
        program = await import("./index");
        await valueOf(program.pipelineName);
        const pipeline = registered.get("web-app");
        assert.ok(pipeline, "the program declares a SecurePipeline named web-app");
        assert.equal(pipeline.type, "securepipeline:index:SecurePipeline");
        inputs = pipeline.inputs;
    });

    test("builds the configured repository on pushes to main", () => {
        assert.equal(inputs.source.repository, config.repository);
        assert.equal(inputs.source.branch, "main");
        assert.equal(inputs.source.connectionArn, undefined, "the component creates the connection");
    });

    test("releases on version tags, never on release candidates", () => {
        assert.deepEqual(inputs.source.tags, ["v*"]);
        assert.deepEqual(inputs.source.excludeTags, ["v*-rc*"]);
    });

    test("runs the tests with a 30-minute build timeout", () => {
        assert.deepEqual(inputs.build.commands, ["npm ci", "npm test"]);
        assert.equal(inputs.build.timeoutMinutes, 30);
        assert.deepEqual(inputs.build.environment.NODE_ENV, { value: "test" });
    });

    test("passes secrets by their Secrets Manager ARN, never as values", () => {
        const token = inputs.build.environment.NPM_TOKEN;
        assert.equal(token.secretArn, config.npmTokenSecretArn);
        assert.equal(token.secretJsonKey, "token");
        assert.equal(token.value, undefined);
        const environments = [inputs.build.environment, ...inputs.deployments.map((d: any) => d.environment ?? {})];
        for (const [name, variable] of environments.flatMap((env) => Object.entries<any>(env))) {
            if (/TOKEN|SECRET|PASSWORD/.test(name)) {
                assert.equal(variable.value, undefined, `${name} must not be a plain value`);
                assert.ok(variable.secretArn, `${name} is read from Secrets Manager`);
            }
        }
    });

    test("deploys to staging with commands, then to production with a Pulumi stack", () => {
        assert.deepEqual(
            inputs.deployments.map((d: any) => d.name),
            ["staging", "production"],
        );
        const [staging, production] = inputs.deployments;
        assert.deepEqual(staging.commands, ["npm ci", "npm run deploy -- --target staging"]);
        assert.equal(staging.pulumiStack, undefined);
        assert.equal(staging.timeoutMinutes, 20);

        assert.equal(production.commands, undefined);
        assert.deepEqual(production.pulumiStack, {
            stack: "example-org/web-app-infra/production",
            workDir: "infra",
            accessTokenSecretArn: config.pulumiAccessTokenSecretArn,
            pulumiVersion: "3.248.0",
        });
        assert.equal(production.assumeRoleArn, config.productionRoleArn);
        assert.equal(production.production, true);
        assert.equal(production.requireApproval, true);
    });

    test("lets a run raise the log level, defaulting to info", () => {
        assert.equal(inputs.variables.LOG_LEVEL.defaultValue, "info");
    });

    test("notifies on failures and successes and runs once a day", () => {
        assert.deepEqual(inputs.notifications, { emails: [config.notificationEmail], events: ["FAILED", "SUCCEEDED"] });
        assert.equal(inputs.schedule, "rate(1 day)");
        assert.equal(inputs.logRetentionDays, 14);
        assert.deepEqual(inputs.tags, { team: "platform" });
    });

    test("exports the pipeline URL and a connection waiting for activation", async () => {
        const name = await valueOf(program.pipelineName);
        assert.equal(name, `web-app-${tag}-pipeline-${suffix}`);
        assert.equal(
            await valueOf(program.pipelineUrl),
            `https://${region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/${name}/view?region=${region}`,
        );
        assert.equal(await valueOf(program.connectionStatus), "PENDING");
        assert.match(await valueOf(program.connectionActivationUrl), /\/codesuite\/settings\/connections\?region=us-east-1$/);
        assert.match(await valueOf(program.artifactBucketName), /^[a-z0-9-]+$/);
        assert.match(await valueOf(program.notificationTopicArn), /^arn:aws:sns:us-east-1:123456789012:/);
    });

    test("exports one CodeBuild project for the build and one per deployment", async () => {
        assert.deepEqual(await valueOf(program.buildProjectNames), [
            `web-app-${tag}-build-${suffix}`,
            `web-app-${tag}-deploy-staging-${suffix}`,
            `web-app-${tag}-deploy-production-${suffix}`,
        ]);
    });
});
