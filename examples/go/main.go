// A SecurePipeline for one repository: push to the branch starts it, the
// build installs and tests the app, staging gets it with the app's own deploy
// script, and production gets the infrastructure stack after a person
// approves.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
	"github.com/securepipeline/pulumi-securepipeline/sdk/go/securepipeline"
)

func main() {
	pulumi.Run(program)
}

// program declares the pipeline and exports what a person needs next.
func program(ctx *pulumi.Context) error {
	pipeline, err := newPipeline(ctx)
	if err != nil {
		return err
	}
	for name, value := range stackOutputs(pipeline) {
		ctx.Export(name, value)
	}
	return nil
}

func newPipeline(ctx *pulumi.Context) (*securepipeline.SecurePipeline, error) {
	cfg := config.New(ctx, "")
	repository := cfg.Require("repository")
	branch := cfg.Get("branch")
	if branch == "" {
		branch = "main"
	}
	notificationEmail := cfg.Require("notificationEmail")
	logRetentionDays := cfg.GetInt("logRetentionDays")
	if logRetentionDays == 0 {
		logRetentionDays = 14
	}
	// Secrets are passed by reference; only this ARN becomes readable by the
	// stages that use it.
	npmToken := securepipeline.EnvironmentVariableArgs{
		SecretArn:     pulumi.String(cfg.Require("npmTokenSecretArn")),
		SecretJsonKey: pulumi.String("token"),
	}

	return securepipeline.NewSecurePipeline(ctx, "web-app", &securepipeline.SecurePipelineArgs{
		Source: securepipeline.SourceArgs{
			Repository: pulumi.String(repository),
			Branch:     pulumi.String(branch),
			// Releases: pushing a tag such as v1.4.0 builds and deploys the
			// tagged commit; release candidates (v1.4.0-rc1) start nothing.
			Tags:        pulumi.StringArray{pulumi.String("v*")},
			ExcludeTags: pulumi.StringArray{pulumi.String("v*-rc*")},
		},
		Build: securepipeline.BuildArgs{
			Commands:       pulumi.StringArray{pulumi.String("npm ci"), pulumi.String("npm test")},
			TimeoutMinutes: pulumi.Int(30),
			Environment: securepipeline.EnvironmentVariableMap{
				"NODE_ENV":  securepipeline.EnvironmentVariableArgs{Value: pulumi.String("test")},
				"NPM_TOKEN": npmToken,
			},
		},
		Deployments: securepipeline.DeploymentArray{
			securepipeline.DeploymentArgs{
				Name: pulumi.String("staging"),
				Commands: pulumi.StringArray{
					pulumi.String("npm ci"),
					pulumi.String("npm run deploy -- --target staging"),
				},
				TimeoutMinutes: pulumi.Int(20),
				Environment: securepipeline.EnvironmentVariableMap{
					"DEPLOY_TARGET": securepipeline.EnvironmentVariableArgs{Value: pulumi.String("staging")},
					"NPM_TOKEN":     npmToken,
				},
			},
			securepipeline.DeploymentArgs{
				Name: pulumi.String("production"),
				PulumiStack: &securepipeline.PulumiDeploymentArgs{
					Stack:                pulumi.String("example-org/web-app-infra/production"),
					WorkDir:              pulumi.String("infra"),
					AccessTokenSecretArn: pulumi.String(cfg.Require("pulumiAccessTokenSecretArn")),
					PulumiVersion:        pulumi.String("3.248.0"),
				},
				AssumeRoleArn:   pulumi.String(cfg.Require("productionRoleArn")),
				Production:      pulumi.Bool(true),
				RequireApproval: pulumi.Bool(true),
			},
		},
		// A value each run may set (`aws codepipeline start-pipeline-execution
		// --variables name=LOG_LEVEL,value=debug`); every stage sees $LOG_LEVEL.
		Variables: securepipeline.PipelineVariableMap{
			"LOG_LEVEL": securepipeline.PipelineVariableArgs{
				DefaultValue: pulumi.String("info"),
				Description:  pulumi.String("Verbosity of the build and deploy scripts; start a run with debug to investigate."),
			},
		},
		Notifications: &securepipeline.NotificationsArgs{
			Emails: pulumi.StringArray{pulumi.String(notificationEmail)},
			Events: securepipeline.NotificationEventArray{
				securepipeline.NotificationEventFAILED,
				securepipeline.NotificationEventSUCCEEDED,
			},
		},
		Schedule:         pulumi.String("rate(1 day)"),
		LogRetentionDays: pulumi.Int(logRetentionDays),
		Tags:             pulumi.StringMap{"team": pulumi.String("platform")},
	})
}

// stackOutputs are the stack's exports.
func stackOutputs(pipeline *securepipeline.SecurePipeline) map[string]pulumi.Input {
	return map[string]pulumi.Input{
		"pipelineName":            pipeline.PipelineName,
		"pipelineUrl":             pipeline.PipelineUrl,
		"connectionStatus":        pipeline.ConnectionStatus,
		"connectionActivationUrl": pipeline.ConnectionActivationUrl,
		"artifactBucketName":      pipeline.ArtifactBucketName,
		"kmsKeyArn":               pipeline.KmsKeyArn,
		"notificationTopicArn":    pipeline.NotificationTopicArn,
		"buildProjectNames":       pipeline.BuildProjectNames,
		"logGroupNames":           pipeline.LogGroupNames,
		"roleArns":                pipeline.RoleArns,
	}
}
