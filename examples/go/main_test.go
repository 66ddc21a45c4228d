// Unit tests for the program in main.go, run with Pulumi's mocks: no engine,
// no provider plugin and no AWS account. The mocks stand in for the provider
// and answer the SecurePipeline registration with outputs computed from its
// inputs, so the tests check both what the program asks for and what it
// exports. Run with `go test ./...`.
package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

const (
	project = "securepipeline-go-example"
	region  = "us-east-1"
	account = "123456789012"
	// Child names have the provider's shape: <component>-<tag>-<purpose>-<random suffix>.
	tag    = "a1b2"
	suffix = "x7k2m9p4"
)

var testConfig = map[string]string{
	"repository":                 "example-org/web-app",
	"notificationEmail":          "team@example.com",
	"npmTokenSecretArn":          "arn:aws:secretsmanager:us-east-1:123456789012:secret:web-app/npm-token-AbCdEf",
	"pulumiAccessTokenSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:web-app/pulumi-token-AbCdEf",
	"productionRoleArn":          "arn:aws:iam::123456789012:role/web-app-production-deployer",
}

// securePipelineOutputs are the outputs the provider reports for a
// SecurePipeline with these inputs.
func securePipelineOutputs(name string, inputs map[string]interface{}) map[string]interface{} {
	child := func(purpose string) string { return name + "-" + tag + "-" + purpose + "-" + suffix }
	pipelineName := child("pipeline")
	role := func(purpose string) string { return fmt.Sprintf("arn:aws:iam::%s:role/%s", account, child(purpose)) }
	projects := []interface{}{child("build")}
	roleArns := map[string]interface{}{"pipeline": role("pipeline"), "build": role("build")}
	deployments, _ := inputs["deployments"].([]interface{})
	for _, d := range deployments {
		stage := d.(map[string]interface{})["name"].(string)
		projects = append(projects, child("deploy-"+stage))
		roleArns["deploy-"+stage] = role("deploy-" + stage)
	}
	logGroups := make([]interface{}, len(projects))
	for i, p := range projects {
		logGroups[i] = "/securepipeline/" + p.(string)
	}
	// A connection the component creates waits for a person to activate it.
	connectionArn := fmt.Sprintf("arn:aws:codestar-connections:%s:%s:connection/0b7c3f0e-1d2a-4c5b-9e8f-7a6b5c4d3e2f", region, account)
	connectionStatus := "PENDING"
	if existing, ok := inputs["source"].(map[string]interface{})["connectionArn"].(string); ok {
		connectionArn, connectionStatus = existing, "AVAILABLE"
	}
	kmsKeyArn := fmt.Sprintf("arn:aws:kms:%s:%s:key/5f0e1d2c-3b4a-4958-8776-655443322110", region, account)
	if existing, ok := inputs["kmsKeyArn"].(string); ok {
		kmsKeyArn = existing
	}
	outputs := map[string]interface{}{
		"pipelineName":            pipelineName,
		"pipelineArn":             fmt.Sprintf("arn:aws:codepipeline:%s:%s:%s", region, account, pipelineName),
		"pipelineUrl":             fmt.Sprintf("https://%s.console.aws.amazon.com/codesuite/codepipeline/pipelines/%s/view?region=%s", region, pipelineName, region),
		"connectionArn":           connectionArn,
		"connectionStatus":        connectionStatus,
		"connectionActivationUrl": fmt.Sprintf("https://%s.console.aws.amazon.com/codesuite/settings/connections?region=%s", region, region),
		"artifactBucketName":      strings.ToLower(child("artifacts")),
		"kmsKeyArn":               kmsKeyArn,
		"notificationTopicArn":    fmt.Sprintf("arn:aws:sns:%s:%s:%s", region, account, child("notify")),
		"buildProjectNames":       projects,
		"logGroupNames":           logGroups,
		"roleArns":                roleArns,
	}
	if schedule, _ := inputs["schedule"].(string); schedule != "" {
		roleArns["events"] = role("events")
		outputs["eventBridgeRoleArn"] = roleArns["events"]
	}
	return outputs
}

// pipelineMocks stands in for the engine and the provider, and records every
// resource the program registers, by name.
type pipelineMocks struct {
	mu         sync.Mutex
	registered map[string]pulumi.MockResourceArgs
}

func (m *pipelineMocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	m.mu.Lock()
	m.registered[args.Name] = args
	m.mu.Unlock()
	if args.TypeToken == "securepipeline:index:SecurePipeline" {
		state := args.Inputs.Mappable()
		for key, value := range securePipelineOutputs(args.Name, state) {
			state[key] = value
		}
		return "", resource.NewPropertyMapFromMap(state), nil
	}
	return args.Name + "-id", args.Inputs, nil
}

func (m *pipelineMocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return args.Args, nil
}

// runProgram runs the program under the mocks, as `pulumi up` would, and
// returns the SecurePipeline's inputs and the stack's exported values.
func runProgram(t *testing.T) (inputs map[string]interface{}, exports map[string]interface{}) {
	t.Helper()
	stackConfig := map[string]string{}
	for key, value := range testConfig {
		stackConfig[project+":"+key] = value
	}
	encoded, err := json.Marshal(stackConfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PULUMI_CONFIG", string(encoded))

	mocks := &pipelineMocks{registered: map[string]pulumi.MockResourceArgs{}}
	exports = map[string]interface{}{}
	err = pulumi.RunErr(func(ctx *pulumi.Context) error {
		pipeline, err := newPipeline(ctx)
		if err != nil {
			return err
		}
		outputs := stackOutputs(pipeline)
		names := make([]string, 0, len(outputs))
		values := make([]interface{}, 0, len(outputs))
		for name, value := range outputs {
			names = append(names, name)
			values = append(values, value)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		pulumi.All(values...).ApplyT(func(resolved []interface{}) error {
			defer wg.Done()
			for i, name := range names {
				exports[name] = resolved[i]
			}
			return nil
		})
		wg.Wait()
		return nil
	}, pulumi.WithMocks(project, "test", mocks))
	if err != nil {
		t.Fatalf("the program failed: %v", err)
	}
	registration, ok := mocks.registered["web-app"]
	if !ok {
		t.Fatal("the program declares no SecurePipeline named web-app")
	}
	if registration.TypeToken != "securepipeline:index:SecurePipeline" {
		t.Fatalf("web-app is a %s", registration.TypeToken)
	}
	return registration.Inputs.Mappable(), exports
}

// get walks a path of map keys and slice indexes through decoded inputs.
func get(value interface{}, path ...interface{}) interface{} {
	for _, step := range path {
		switch key := step.(type) {
		case string:
			m, _ := value.(map[string]interface{})
			value = m[key]
		case int:
			s, _ := value.([]interface{})
			if key >= len(s) {
				return nil
			}
			value = s[key]
		}
	}
	return value
}

func expectEqual(t *testing.T, what string, got, want interface{}) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func TestBuildsTheConfiguredRepositoryOnPushesToMain(t *testing.T) {
	inputs, _ := runProgram(t)
	expectEqual(t, "source.repository", get(inputs, "source", "repository"), "example-org/web-app")
	expectEqual(t, "source.branch", get(inputs, "source", "branch"), "main")
	expectEqual(t, "source.connectionArn", get(inputs, "source", "connectionArn"), nil)
}

func TestReleasesOnVersionTagsNeverOnReleaseCandidates(t *testing.T) {
	inputs, _ := runProgram(t)
	expectEqual(t, "source.tags", get(inputs, "source", "tags"), []interface{}{"v*"})
	expectEqual(t, "source.excludeTags", get(inputs, "source", "excludeTags"), []interface{}{"v*-rc*"})
}

func TestRunsTheTestsWithA30MinuteBuildTimeout(t *testing.T) {
	inputs, _ := runProgram(t)
	expectEqual(t, "build.commands", get(inputs, "build", "commands"), []interface{}{"npm ci", "npm test"})
	expectEqual(t, "build.timeoutMinutes", get(inputs, "build", "timeoutMinutes"), 30.0)
	expectEqual(t, "build.environment.NODE_ENV", get(inputs, "build", "environment", "NODE_ENV"),
		map[string]interface{}{"value": "test"})
}

func TestPassesSecretsByTheirSecretsManagerArnNeverAsValues(t *testing.T) {
	inputs, _ := runProgram(t)
	expectEqual(t, "build.environment.NPM_TOKEN", get(inputs, "build", "environment", "NPM_TOKEN"),
		map[string]interface{}{"secretArn": testConfig["npmTokenSecretArn"], "secretJsonKey": "token"})
	environments := []interface{}{get(inputs, "build", "environment")}
	for i := range get(inputs, "deployments").([]interface{}) {
		environments = append(environments, get(inputs, "deployments", i, "environment"))
	}
	secretName := regexp.MustCompile("TOKEN|SECRET|PASSWORD")
	for _, environment := range environments {
		variables, _ := environment.(map[string]interface{})
		for name, variable := range variables {
			if !secretName.MatchString(name) {
				continue
			}
			if get(variable, "value") != nil {
				t.Errorf("%s is passed as a plain value", name)
			}
			if get(variable, "secretArn") == nil {
				t.Errorf("%s is not read from Secrets Manager", name)
			}
		}
	}
}

func TestDeploysToStagingWithCommandsThenToProductionWithAPulumiStack(t *testing.T) {
	inputs, _ := runProgram(t)
	expectEqual(t, "deployments[0].name", get(inputs, "deployments", 0, "name"), "staging")
	expectEqual(t, "deployments[1].name", get(inputs, "deployments", 1, "name"), "production")
	expectEqual(t, "number of deployments", len(get(inputs, "deployments").([]interface{})), 2)

	expectEqual(t, "staging.commands", get(inputs, "deployments", 0, "commands"),
		[]interface{}{"npm ci", "npm run deploy -- --target staging"})
	expectEqual(t, "staging.pulumiStack", get(inputs, "deployments", 0, "pulumiStack"), nil)
	expectEqual(t, "staging.timeoutMinutes", get(inputs, "deployments", 0, "timeoutMinutes"), 20.0)

	expectEqual(t, "production.commands", get(inputs, "deployments", 1, "commands"), nil)
	expectEqual(t, "production.pulumiStack", get(inputs, "deployments", 1, "pulumiStack"), map[string]interface{}{
		"stack":                "example-org/web-app-infra/production",
		"workDir":              "infra",
		"accessTokenSecretArn": testConfig["pulumiAccessTokenSecretArn"],
		"pulumiVersion":        "3.248.0",
	})
	expectEqual(t, "production.assumeRoleArn", get(inputs, "deployments", 1, "assumeRoleArn"), testConfig["productionRoleArn"])
	expectEqual(t, "production.production", get(inputs, "deployments", 1, "production"), true)
	expectEqual(t, "production.requireApproval", get(inputs, "deployments", 1, "requireApproval"), true)
}

func TestLetsARunRaiseTheLogLevelDefaultingToInfo(t *testing.T) {
	inputs, _ := runProgram(t)
	expectEqual(t, "variables.LOG_LEVEL.defaultValue", get(inputs, "variables", "LOG_LEVEL", "defaultValue"), "info")
}

func TestNotifiesOnFailuresAndSuccessesAndRunsOnceADay(t *testing.T) {
	inputs, _ := runProgram(t)
	expectEqual(t, "notifications", get(inputs, "notifications"), map[string]interface{}{
		"emails": []interface{}{"team@example.com"},
		"events": []interface{}{"FAILED", "SUCCEEDED"},
	})
	expectEqual(t, "schedule", get(inputs, "schedule"), "rate(1 day)")
	expectEqual(t, "logRetentionDays", get(inputs, "logRetentionDays"), 14.0)
	expectEqual(t, "tags", get(inputs, "tags"), map[string]interface{}{"team": "platform"})
}

func TestExportsThePipelineUrlAndAConnectionWaitingForActivation(t *testing.T) {
	_, exports := runProgram(t)
	name := "web-app-" + tag + "-pipeline-" + suffix
	expectEqual(t, "pipelineName", exports["pipelineName"], name)
	expectEqual(t, "pipelineUrl", exports["pipelineUrl"],
		"https://us-east-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/"+name+"/view?region=us-east-1")
	expectEqual(t, "connectionStatus", exports["connectionStatus"], "PENDING")
	if url, _ := exports["connectionActivationUrl"].(string); !strings.HasSuffix(url, "/codesuite/settings/connections?region=us-east-1") {
		t.Errorf("connectionActivationUrl = %q", url)
	}
	if bucket, _ := exports["artifactBucketName"].(string); !regexp.MustCompile(`^[a-z0-9-]+$`).MatchString(bucket) {
		t.Errorf("artifactBucketName = %q is not a valid bucket name", bucket)
	}
	if topic, _ := exports["notificationTopicArn"].(string); !strings.HasPrefix(topic, "arn:aws:sns:us-east-1:123456789012:") {
		t.Errorf("notificationTopicArn = %q", topic)
	}
}

func TestExportsOneCodeBuildProjectForTheBuildAndOnePerDeployment(t *testing.T) {
	_, exports := runProgram(t)
	expectEqual(t, "buildProjectNames", exports["buildProjectNames"], []string{
		"web-app-" + tag + "-build-" + suffix,
		"web-app-" + tag + "-deploy-staging-" + suffix,
		"web-app-" + tag + "-deploy-production-" + suffix,
	})
}
