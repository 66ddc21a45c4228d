// Transforms on a SecurePipeline reach the resources it creates: one adds a
// tag to every child; with config `weaken`, another sets the build log
// group's retention to a value that child's own check rejects.
import * as pulumi from "@pulumi/pulumi";
import * as securepipeline from "@securepipeline/pulumi";

const config = new pulumi.Config();

const tagEveryChild: pulumi.ResourceTransform = (args) =>
    args.type.startsWith("securepipeline:aws:")
        ? { props: { ...args.props, tags: { ...args.props.tags, transformed: "yes" } }, opts: args.opts }
        : undefined;

const dropLogRetention: pulumi.ResourceTransform = (args) =>
    args.type === "securepipeline:aws:LogGroup"
        ? { props: { ...args.props, retentionInDays: 0 }, opts: args.opts }
        : undefined;

const web = new securepipeline.SecurePipeline(
    "web",
    {
        source: { repository: "example-org/web" },
        build: { commands: ["npm test"] },
    },
    { transforms: config.getBoolean("weaken") ? [tagEveryChild, dropLogRetention] : [tagEveryChild] },
);

export const pipelineArn = web.pipelineArn;
export const logGroupNames = web.logGroupNames;
