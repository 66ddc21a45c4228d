//! Deployment stages through the real engine against the emulator: a dev
//! stage (same account, Pulumi stack in an S3 backend), a staging stage in
//! another region (commands) and a production stage (another account's
//! role, approval, Pulumi Cloud). Everything is read back from AWS: the
//! pipeline's stages, actions, regions and artifact stores; every role's
//! exact policy, lint-clean, with non-production roles denied production's
//! secrets and role; each buildspec parsed step by step. Invalid
//! combinations fail at preview naming the property.

use std::collections::BTreeMap;

use securepipeline::aws::arn::Arns;
use securepipeline::component::args::SecurePipelineArgs;
use securepipeline::component::deploy::{self, Protected, Store};
use securepipeline::component::plan;
use securepipeline::iam::{lint, Effect, PolicyDocument};
use securepipeline_e2e::readback::{self, text};
use securepipeline_e2e::{Emulator, Stack, ACCOUNT, REGION};
use serde_json::{json, Value as Json};
use serde_yaml_ng::Value as Yaml;

const WEST: &str = "us-west-2";
const DEV_PASSPHRASE: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:dev-passphrase-AbCdEf";
const PROD_TOKEN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pulumi-token-AbCdEf";
const DEPLOYER: &str = "arn:aws:iam::210987654321:role/deployer";
const PREVIEWER: &str = "arn:aws:iam::210987654321:role/previewer";
const PROD_READ_TOKEN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:pulumi-read-token-AbCdEf";

/// The deployments, as JSON (the program embeds them as YAML flow maps,
/// and the test plans the expected policies from the same values).
fn deployments() -> Json {
    json!([
        {"name": "dev", "pulumiStack": {
            "stack": "web-infra/dev", "workDir": "infra", "backendUrl": "s3://web-state/pulumi",
            "passphraseSecretArn": DEV_PASSPHRASE}},
        {"name": "staging", "region": WEST, "commands": ["./scripts/deploy.sh staging"],
         "environment": {"DB_URL": {"parameterName": "/web/staging/db-url"}}},
        {"name": "prod", "production": true, "assumeRoleArn": DEPLOYER, "previewRoleArn": PREVIEWER,
         "approvalTimeoutMinutes": 120, "rollbackOnFailure": true, "timeoutMinutes": 90,
         "environment": {"CONFIG": {"parameterName": "/web/prod/config"}}, "pulumiStack": {
            "stack": "example-org/web-infra/prod", "workDir": "infra",
            "accessTokenSecretArn": PROD_TOKEN, "previewAccessTokenSecretArn": PROD_READ_TOKEN,
            "pulumiVersion": "3.200.0"}}
    ])
}

fn program(deployments: &Json) -> String {
    format!(
        r#"
resources:
  web:
    type: securepipeline:index:SecurePipeline
    properties:
      source:
        repository: example-org/web
      build:
        commands: ["npm ci", "npm test"]
      deployments: {deployments}
      tags:
        team: platform
outputs:
  pipelineName: ${{web.pipelineName}}
  artifactBucketName: ${{web.artifactBucketName}}
  kmsKeyArn: ${{web.kmsKeyArn}}
  notificationTopicArn: ${{web.notificationTopicArn}}
  buildProjectNames: ${{web.buildProjectNames}}
  logGroupNames: ${{web.logGroupNames}}
  roleArns: ${{web.roleArns}}
"#
    )
}

fn args() -> SecurePipelineArgs {
    serde_json::from_value(json!({
        "source": {"repository": "example-org/web"},
        "build": {"commands": ["npm ci", "npm test"]},
        "deployments": deployments(),
    }))
    .unwrap()
}

fn strings(outputs: &Json, key: &str) -> Vec<String> {
    outputs[key]
        .as_array()
        .unwrap_or_else(|| panic!("output {key} missing: {outputs}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Clients for one region.
struct Regional {
    codebuild: aws_sdk_codebuild::Client,
    kms: aws_sdk_kms::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    s3: aws_sdk_s3::Client,
}

impl Regional {
    fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            codebuild: aws_sdk_codebuild::Client::new(sdk),
            kms: aws_sdk_kms::Client::new(sdk),
            logs: aws_sdk_cloudwatchlogs::Client::new(sdk),
            s3: readback::s3(sdk),
        }
    }

    async fn project(&self, name: &str) -> aws_sdk_codebuild::types::Project {
        let found = self
            .codebuild
            .batch_get_projects()
            .names(name)
            .send()
            .await
            .unwrap();
        found
            .projects()
            .first()
            .cloned()
            .unwrap_or_else(|| panic!("project {name} not found: {found:?}"))
    }

    async fn log_group(&self, name: &str) -> aws_sdk_cloudwatchlogs::types::LogGroup {
        let groups = self
            .logs
            .describe_log_groups()
            .log_group_name_prefix(name)
            .send()
            .await
            .unwrap();
        groups
            .log_groups()
            .iter()
            .find(|g| g.log_group_name() == Some(name))
            .cloned()
            .unwrap_or_else(|| panic!("log group {name} not found"))
    }
}

struct Aws {
    home: Regional,
    west: Regional,
    codepipeline: aws_sdk_codepipeline::Client,
    iam: aws_sdk_iam::Client,
    events: aws_sdk_eventbridge::Client,
    sns: aws_sdk_sns::Client,
}

impl Aws {
    async fn new(emulator: &Emulator) -> Self {
        let sdk = emulator.sdk().await;
        let west = sdk
            .to_builder()
            .region(aws_config::Region::new(WEST))
            .build();
        Self {
            home: Regional::new(&sdk),
            west: Regional::new(&west),
            codepipeline: aws_sdk_codepipeline::Client::new(&sdk),
            iam: aws_sdk_iam::Client::new(&sdk),
            events: aws_sdk_eventbridge::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
        }
    }

    /// The role's trust policy and its inline policies by name; nothing
    /// may be attached besides.
    async fn role(&self, arn: &str) -> (PolicyDocument, BTreeMap<String, PolicyDocument>) {
        let live = readback::role(&self.iam, arn).await;
        assert!(
            live.managed_policies.is_empty(),
            "{arn} has managed policies"
        );
        (live.trust, live.policies)
    }
}

/// A buildspec's commands, every phase in the order CodeBuild runs them.
fn commands(spec: &str) -> (Yaml, Vec<String>) {
    let doc: Yaml = serde_yaml_ng::from_str(spec)
        .unwrap_or_else(|err| panic!("buildspec is not YAML ({err}):\n{spec}"));
    assert_eq!(doc["version"], Yaml::String("0.2".into()), "{spec}");
    let all = ["install", "pre_build", "build", "post_build"]
        .iter()
        .flat_map(|phase| {
            doc["phases"][*phase]["commands"]
                .as_sequence()
                .map(|c| {
                    c.iter()
                        .map(|c| c.as_str().unwrap().to_string())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .collect();
    (doc, all)
}

/// Each step appears, in this order.
#[track_caller]
fn assert_steps(all: &[String], steps: &[&str]) {
    let mut from = 0;
    for step in steps {
        let at = all[from..]
            .iter()
            .position(|c| c.contains(step))
            .unwrap_or_else(|| panic!("`{step}` missing after step {from} of {all:#?}"));
        from += at + 1;
    }
}

fn statement<'a>(doc: &'a PolicyDocument, sid: &str) -> Option<&'a securepipeline::iam::Statement> {
    doc.statements
        .iter()
        .find(|s| s.sid.as_deref() == Some(sid))
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_staging_and_prod_stages_hold_every_guarantee() {
    let emulator = Emulator::start();
    let stack = Stack::yaml(&emulator, "web-deployments", &program(&deployments()));
    // Preview plans every child with its ARNs still unknown.
    let preview = stack.preview().success();
    assert!(
        preview.stdout().contains("web-deploy-staging"),
        "{}",
        preview.stdout()
    );
    stack.up().success();
    let out = stack.outputs();
    let aws = Aws::new(&emulator).await;
    let args = args();
    let planned = args.deployments.as_deref().unwrap();

    // Outputs list the build, then the stages in order, then prod's
    // preview, which has a project, log group and role of its own.
    let projects = strings(&out, "buildProjectNames");
    let log_groups = strings(&out, "logGroupNames");
    assert_eq!(projects.len(), 5, "{projects:?}");
    assert_eq!(log_groups.len(), 5, "{log_groups:?}");
    assert!(projects[4].contains("-preview-prod-"), "{projects:?}");
    assert!(log_groups[4].contains("-preview-prod-"), "{log_groups:?}");
    for (index, stage) in ["dev", "staging", "prod"].iter().enumerate() {
        assert!(
            projects[index + 1].contains(&format!("-deploy-{stage}-")),
            "{projects:?}"
        );
        assert!(
            log_groups[index + 1].contains(&format!("-deploy-{stage}-")),
            "{log_groups:?}"
        );
    }
    let roles = out["roleArns"].as_object().unwrap();
    assert_eq!(
        roles.keys().collect::<Vec<_>>(),
        vec![
            "build",
            "deploy-dev",
            "deploy-prod",
            "deploy-staging",
            "pipeline",
            "preview-prod"
        ]
    );

    // G5: the pipeline is cross-region: one store per region, each with a
    // key of its region; the staging actions run in us-west-2.
    let pipeline_name = text(&out, "pipelineName");
    let got = aws
        .codepipeline
        .get_pipeline()
        .name(&pipeline_name)
        .send()
        .await
        .unwrap();
    let declaration = got.pipeline().unwrap();
    assert!(
        declaration.artifact_store().is_none(),
        "cross-region pipelines use artifactStores"
    );
    let stores = declaration
        .artifact_stores()
        .expect("artifactStores keyed by region");
    let mut store_regions: Vec<&String> = stores.keys().collect();
    store_regions.sort();
    assert_eq!(store_regions, vec![REGION, WEST]);
    let home_key = text(&out, "kmsKeyArn");
    assert_eq!(stores[REGION].location(), text(&out, "artifactBucketName"));
    assert_eq!(stores[REGION].encryption_key().unwrap().id(), home_key);
    let west_bucket = stores[WEST].location().to_string();
    let west_key = stores[WEST].encryption_key().unwrap().id().to_string();
    assert!(
        west_key.starts_with(&format!("arn:aws:kms:{WEST}:{ACCOUNT}:key/")),
        "{west_key}"
    );
    assert_ne!(west_bucket, text(&out, "artifactBucketName"));

    let stage_names: Vec<&str> = declaration.stages().iter().map(|s| s.name()).collect();
    assert_eq!(
        stage_names,
        vec!["Source", "Build", "dev", "staging", "prod"]
    );
    let actions = |stage: usize| -> Vec<(String, i32, Option<String>)> {
        declaration.stages()[stage]
            .actions()
            .iter()
            .map(|a| {
                (
                    a.name().to_string(),
                    a.run_order().unwrap_or(1),
                    a.region().map(str::to_string),
                )
            })
            .collect()
    };
    assert_eq!(actions(2), vec![("Deploy".to_string(), 1, None)]);
    assert_eq!(
        actions(3),
        vec![("Deploy".to_string(), 1, Some(WEST.to_string()))]
    );
    assert_eq!(
        actions(4),
        vec![
            ("Preview".to_string(), 1, None),
            ("Approve".to_string(), 2, None),
            ("Deploy".to_string(), 3, None)
        ]
    );
    let dev_deploy = &declaration.stages()[2].actions()[0];
    assert_eq!(
        dev_deploy.configuration().unwrap()["ProjectName"],
        projects[1]
    );
    assert_eq!(dev_deploy.input_artifacts()[0].name(), "BuildOutput");
    assert_eq!(dev_deploy.output_artifacts()[0].name(), "StackOutputs1-dev");
    assert_eq!(
        declaration.stages()[3].actions()[0]
            .configuration()
            .unwrap()["ProjectName"],
        projects[2]
    );

    // G16, G26: the production stage previews in its own project, waits
    // (time-bound, notifying the topic), deploys in the project that holds
    // the deploy role, and rolls back on failure.
    let prod = &declaration.stages()[4];
    let preview = &prod.actions()[0];
    let preview_config = preview.configuration().unwrap();
    assert_eq!(preview_config["ProjectName"], projects[4]);
    assert!(!preview_config.contains_key("EnvironmentVariables"));
    assert!(preview.output_artifacts().is_empty());
    let approve = &prod.actions()[1];
    let approve_type = approve.action_type_id().unwrap();
    assert_eq!(
        (
            approve_type.category().as_str(),
            approve_type.owner().as_str(),
            approve_type.provider(),
            approve_type.version()
        ),
        ("Approval", "AWS", "Manual", "1")
    );
    let approve_config = approve.configuration().unwrap();
    assert_eq!(
        approve_config["NotificationArn"],
        text(&out, "notificationTopicArn")
    );
    assert!(
        approve_config["CustomData"].contains("Preview action"),
        "{approve_config:?}"
    );
    assert!(
        approve_config["CustomData"].contains(&log_groups[4]),
        "{approve_config:?}"
    );
    assert_eq!(approve.timeout_in_minutes(), Some(120));
    let deploy_action = &prod.actions()[2];
    assert_eq!(
        deploy_action.configuration().unwrap()["ProjectName"],
        projects[3]
    );
    assert!(!deploy_action
        .configuration()
        .unwrap()
        .contains_key("EnvironmentVariables"));
    assert_eq!(
        prod.on_failure()
            .and_then(|f| f.result())
            .map(|r| r.as_str()),
        Some("ROLLBACK")
    );
    assert!(declaration.stages()[2]
        .on_failure()
        .and_then(|f| f.result())
        .is_none());

    // Each stage's project and log group live in the stage's region, use
    // that region's key, and have timeouts; privileged mode is off.
    let west_project = aws.west.project(&projects[2]).await;
    assert!(
        west_project
            .arn()
            .unwrap()
            .starts_with(&format!("arn:aws:codebuild:{WEST}:")),
        "{west_project:?}"
    );
    assert_eq!(west_project.encryption_key(), Some(west_key.as_str()));
    let west_group = aws.west.log_group(&log_groups[2]).await;
    assert_eq!(west_group.kms_key_id(), Some(west_key.as_str()));
    assert_eq!(west_group.retention_in_days(), Some(365));
    assert!(aws
        .home
        .codebuild
        .batch_get_projects()
        .names(&projects[2])
        .send()
        .await
        .unwrap()
        .projects()
        .is_empty());
    let rotation = aws
        .west
        .kms
        .get_key_rotation_status()
        .key_id(&west_key)
        .send()
        .await
        .unwrap();
    assert!(rotation.key_rotation_enabled());
    let location = aws
        .west
        .s3
        .get_bucket_location()
        .bucket(&west_bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(
        location.location_constraint().map(|c| c.as_str()),
        Some(WEST)
    );
    let encryption = aws
        .west
        .s3
        .get_bucket_encryption()
        .bucket(&west_bucket)
        .send()
        .await
        .unwrap();
    let default = encryption
        .server_side_encryption_configuration()
        .unwrap()
        .rules()[0]
        .apply_server_side_encryption_by_default()
        .unwrap()
        .clone();
    assert_eq!(default.kms_master_key_id(), Some(west_key.as_str()));
    let dev_project = aws.home.project(&projects[1]).await;
    let prod_project = aws.home.project(&projects[3]).await;
    for (project, group, timeout) in [
        (&dev_project, &log_groups[1], 60),
        (&west_project, &log_groups[2], 60),
        (&prod_project, &log_groups[3], 90),
    ] {
        assert_eq!(project.timeout_in_minutes(), Some(timeout));
        assert_eq!(
            project.environment().unwrap().privileged_mode(),
            Some(false)
        );
        assert_eq!(
            project.environment().unwrap().image(),
            "aws/codebuild/standard:7.0"
        );
        assert_eq!(
            project
                .logs_config()
                .unwrap()
                .cloud_watch_logs()
                .unwrap()
                .group_name(),
            Some(group.as_str())
        );
    }
    assert_eq!(
        aws.home.log_group(&log_groups[3]).await.kms_key_id(),
        Some(home_key.as_str())
    );
    let staging_variables: Vec<(&str, &str)> = west_project
        .environment()
        .unwrap()
        .environment_variables()
        .iter()
        .map(|v| (v.name(), v.value()))
        .collect();
    assert_eq!(staging_variables, vec![("DB_URL", "/web/staging/db-url")]);

    // G15: each buildspec parses and runs each step in order.
    let spec = |project: &aws_sdk_codebuild::types::Project| {
        project.source().unwrap().buildspec().unwrap().to_string()
    };
    let (dev_doc, dev_steps) = commands(&spec(&dev_project));
    assert_steps(
        &dev_steps,
        &[
            &format!(
                "PULUMI_TARBALL=\"pulumi-v{}-linux-$PULUMI_ARCH.tar.gz\"",
                securepipeline::schema::PULUMI_SDK_VERSION
            ),
            "sha256sum --check --strict pulumi.sha256",
            "export PATH=\"$HOME/.pulumi/bin:$PATH\"",
            "pulumi login s3://web-state/pulumi",
            "cd \"$CODEBUILD_SRC_DIR\"/infra",
            "pulumi stack select organization/web-infra/dev",
            "pulumi refresh --yes --skip-preview",
            "pulumi preview --diff",
            "pulumi up --yes --skip-preview",
            "pulumi stack output --json > stack-outputs.json",
        ],
    );
    assert_eq!(
        dev_doc["env"]["secrets-manager"]["PULUMI_CONFIG_PASSPHRASE"],
        Yaml::String(DEV_PASSPHRASE.into())
    );
    assert_eq!(
        dev_doc["artifacts"]["files"][0],
        Yaml::String("stack-outputs.json".into())
    );
    assert_eq!(
        dev_doc["artifacts"]["base-directory"],
        Yaml::String("infra".into())
    );
    assert!(
        !dev_steps.iter().any(|c| c.contains("AWS_PROFILE")),
        "dev assumes no role"
    );
    let (prod_doc, prod_steps) = commands(&spec(&prod_project));
    assert_steps(
        &prod_steps,
        &[
            "/v3.200.0/pulumi-3.200.0-checksums.txt",
            "sha256sum --check --strict pulumi.sha256",
            &format!("'role_arn = {DEPLOYER}' 'credential_source = EcsContainer'"),
            "export AWS_PROFILE=securepipeline-deploy",
            "pulumi login",
            "pulumi stack select example-org/web-infra/prod",
            "pulumi refresh --yes --skip-preview",
            "pulumi preview --diff",
            "pulumi up --yes --skip-preview",
            "pulumi stack output --json > stack-outputs.json",
        ],
    );
    assert_eq!(
        prod_doc["env"]["secrets-manager"]["PULUMI_ACCESS_TOKEN"],
        Yaml::String(PROD_TOKEN.into())
    );
    assert!(prod_doc["env"]["variables"].get("PREVIEW_ONLY").is_none());
    // G26: the preview project previews only, under the read-only role,
    // with the read-only token; the deploy role and token are absent.
    let preview_project = aws.home.project(&projects[4]).await;
    assert_eq!(
        preview_project
            .logs_config()
            .unwrap()
            .cloud_watch_logs()
            .unwrap()
            .group_name(),
        Some(log_groups[4].as_str())
    );
    let preview_spec = spec(&preview_project);
    let (preview_doc, preview_steps) = commands(&preview_spec);
    assert_steps(
        &preview_steps,
        &[
            &format!("'role_arn = {PREVIEWER}' 'credential_source = EcsContainer'"),
            "export AWS_PROFILE=securepipeline-deploy",
            "pulumi login",
            "pulumi stack select example-org/web-infra/prod",
            "pulumi preview --diff --refresh",
        ],
    );
    assert!(
        !preview_steps
            .iter()
            .any(|c| c.contains("pulumi up") || c.contains("pulumi refresh")),
        "{preview_steps:#?}"
    );
    assert!(
        !preview_spec.contains(DEPLOYER) && !preview_spec.contains(PROD_TOKEN),
        "{preview_spec}"
    );
    assert_eq!(
        preview_doc["env"]["secrets-manager"]["PULUMI_ACCESS_TOKEN"],
        Yaml::String(PROD_READ_TOKEN.into())
    );
    let (_, staging_steps) = commands(&spec(&west_project));
    assert_eq!(staging_steps, vec!["./scripts/deploy.sh staging"]);
    // G12: the secrets appear only as Secrets Manager references.
    for project in [&dev_project, &west_project, &prod_project] {
        for variable in project.environment().unwrap().environment_variables() {
            assert!(!variable.name().starts_with("PULUMI_"), "{variable:?}");
        }
    }

    // G10, G11, G17: every role is exactly what the plan grants, and lint-clean.
    let arns = Arns {
        partition: "aws",
        account: ACCOUNT,
        region: REGION,
    };
    let protected = Protected::of(&arns, planned);
    let home_bucket_arn = format!("arn:aws:s3:::{}", text(&out, "artifactBucketName"));
    let home_store = Store {
        bucket_arn: &home_bucket_arn,
        key_arn: &home_key,
        pipeline_name: &pipeline_name,
    };
    let west_bucket_arn = format!("arn:aws:s3:::{west_bucket}");
    let west_store = Store {
        bucket_arn: &west_bucket_arn,
        key_arn: &west_key,
        pipeline_name: &pipeline_name,
    };
    let mut role_policies = BTreeMap::new();
    for (purpose, arn) in roles {
        let arn = arn.as_str().unwrap();
        assert!(
            arn.starts_with(&format!("arn:aws:iam::{ACCOUNT}:role/")),
            "{purpose}: {arn}"
        );
        let (trust, policies) = aws.role(arn).await;
        assert!(
            lint::trust(&trust).is_empty(),
            "{purpose} trust: {:?}",
            lint::trust(&trust)
        );
        for (name, doc) in &policies {
            assert!(
                lint::permissions(doc).is_empty(),
                "{purpose}/{name}: {:?}",
                lint::permissions(doc)
            );
            assert!(
                doc.statements
                    .iter()
                    .all(|s| s.effect == Effect::Deny || !s.resources.iter().any(|r| r == "*")),
                "{purpose}/{name} allows `*`"
            );
        }
        role_policies.insert(purpose.clone(), (trust, policies));
    }
    for (index, deployment) in planned.iter().enumerate() {
        let purpose = deploy::purpose(deployment);
        let region = deploy::region(deployment, REGION);
        let (trust, policies) = &role_policies[&purpose];
        // G7: trusted for exactly its own project, not a name prefix.
        assert_eq!(
            trust.statements[0].conditions["ArnEquals"]["aws:SourceArn"],
            vec![format!(
                "arn:aws:codebuild:{region}:{ACCOUNT}:project/{}",
                projects[index + 1]
            )],
            "{purpose}"
        );
        let store = if region == WEST {
            west_store
        } else {
            home_store
        };
        let expected = deploy::role_policy(
            &arns.in_region(region),
            store,
            &log_groups[index + 1],
            (index, deployment),
            &protected,
        );
        assert_eq!(policies.len(), 1, "{purpose}: {policies:?}");
        assert_eq!(policies["deploy"], expected, "{purpose}");
    }
    let prod_stage = &planned[2];
    let (_, preview_policies) = &role_policies["preview-prod"];
    assert_eq!(
        preview_policies["preview"],
        deploy::preview_role_policy(&arns, home_store, &log_groups[4], prod_stage, &protected)
    );
    // G26: the preview role cannot assume the deploy role nor read the
    // deploy token, both explicitly denied; it writes no state.
    let preview_role = &preview_policies["preview"];
    let allowed_on = |action: &str| -> Vec<String> {
        preview_role
            .statements
            .iter()
            .filter(|s| s.effect == Effect::Allow && s.actions.iter().any(|a| a == action))
            .flat_map(|s| s.resources.clone())
            .collect()
    };
    assert_eq!(allowed_on("sts:AssumeRole"), vec![PREVIEWER]);
    assert_eq!(
        allowed_on("secretsmanager:GetSecretValue"),
        vec![PROD_READ_TOKEN]
    );
    assert!(allowed_on("s3:PutObject").is_empty(), "{preview_role:?}");
    let denied_roles = statement(preview_role, "DenyDeployRoles").unwrap();
    assert_eq!(
        (denied_roles.effect, denied_roles.resources.clone()),
        (Effect::Deny, vec![DEPLOYER.to_string()])
    );
    let denied_secrets = statement(preview_role, "DenyDeploySecrets").unwrap();
    assert_eq!(
        (denied_secrets.effect, denied_secrets.resources.clone()),
        (Effect::Deny, vec![PROD_TOKEN.to_string()])
    );

    // Dev: its own stack's state and passphrase only.
    let (_, dev) = &role_policies["deploy-dev"];
    let dev = &dev["deploy"];
    // Each object for what the CLI does with it: the checkpoint and locks
    // read, written and replaced, the tags read, history and backups only
    // added to.
    let state = |sid: &str| {
        let found = statement(dev, sid).unwrap();
        (found.actions.clone(), found.resources.clone())
    };
    let owned = |items: &[&str]| -> Vec<String> { items.iter().map(|i| i.to_string()).collect() };
    assert_eq!(
        state("ReadWriteOwnStackState"),
        (
            owned(&["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]),
            owned(&[
                "arn:aws:s3:::web-state/pulumi/.pulumi/stacks/web-infra/dev.json*",
                "arn:aws:s3:::web-state/pulumi/.pulumi/locks/organization/web-infra/dev/*",
            ])
        )
    );
    assert_eq!(
        state("ReadOwnStackTags"),
        (
            owned(&["s3:GetObject"]),
            owned(&["arn:aws:s3:::web-state/pulumi/.pulumi/stacks/web-infra/dev.pulumi-tags"])
        )
    );
    assert_eq!(
        state("WriteOwnStackHistory"),
        (
            owned(&["s3:PutObject"]),
            owned(&[
                "arn:aws:s3:::web-state/pulumi/.pulumi/history/web-infra/dev/*",
                "arn:aws:s3:::web-state/pulumi/.pulumi/backups/web-infra/dev/*",
            ])
        )
    );
    let list = statement(dev, "ListStateBackend").unwrap();
    assert_eq!(list.resources, vec!["arn:aws:s3:::web-state"]);
    // Only its own stack's keys: listing never shows prod's stack name.
    assert_eq!(
        list.conditions["StringLike"]["s3:prefix"],
        vec![
            "pulumi/.pulumi/stacks/web-infra/dev.json*",
            "pulumi/.pulumi/stacks/web-infra/dev.pulumi-tags",
            "pulumi/.pulumi/locks/organization/web-infra/dev/*",
            "pulumi/.pulumi/history/web-infra/dev/*",
            "pulumi/.pulumi/backups/web-infra/dev/*",
        ]
    );
    assert_eq!(
        statement(dev, "ReadReferencedSecrets").unwrap().resources,
        vec![DEV_PASSPHRASE]
    );
    assert!(statement(dev, "AssumeDeployRole").is_none());
    // Staging: its region's store, key, logs and parameters.
    let (_, staging) = &role_policies["deploy-staging"];
    let staging = &staging["deploy"];
    assert_eq!(
        statement(staging, "ArtifactsBucket").unwrap().resources,
        vec![west_bucket_arn.clone()]
    );
    assert_eq!(
        statement(staging, "UseArtifactKey").unwrap().resources,
        vec![west_key.clone()]
    );
    assert_eq!(
        statement(staging, "ReadReferencedParameters")
            .unwrap()
            .resources,
        vec![format!(
            "arn:aws:ssm:{WEST}:{ACCOUNT}:parameter/web/staging/db-url"
        )]
    );
    assert!(statement(staging, "WriteOwnLogs").unwrap().resources[0]
        .starts_with(&format!("arn:aws:logs:{WEST}:")));
    // Prod: exactly the one role, and its token.
    let (_, prod_role) = &role_policies["deploy-prod"];
    let prod_role = &prod_role["deploy"];
    let assume = statement(prod_role, "AssumeDeployRole").unwrap();
    assert_eq!(
        (assume.actions.clone(), assume.resources.clone()),
        (
            vec!["sts:AssumeRole".to_string()],
            vec![DEPLOYER.to_string()]
        )
    );
    assert_eq!(
        statement(prod_role, "ReadReferencedSecrets")
            .unwrap()
            .resources,
        vec![PROD_TOKEN]
    );
    assert!(
        prod_role
            .statements
            .iter()
            .all(|s| s.effect == Effect::Allow),
        "production is denied nothing: {prod_role:?}"
    );
    let assumers: Vec<&String> = role_policies
        .iter()
        .filter(|(_, (_, p))| {
            p.values().flat_map(|d| &d.statements).any(|s| {
                s.effect == Effect::Allow && s.actions.contains(&"sts:AssumeRole".to_string())
            })
        })
        .map(|(purpose, _)| purpose)
        .collect();
    assert_eq!(assumers, vec!["deploy-prod", "preview-prod"]);

    // G11: dev, staging and the build are denied prod's secret and role.
    for purpose in ["deploy-dev", "deploy-staging", "build"] {
        let (_, policies) = &role_policies[purpose];
        let doc = policies.values().next().unwrap();
        let secrets =
            statement(doc, "DenyProductionSecrets").unwrap_or_else(|| panic!("{purpose}: {doc:?}"));
        assert_eq!(
            (
                secrets.effect,
                secrets.actions.clone(),
                secrets.resources.clone()
            ),
            (
                Effect::Deny,
                vec!["secretsmanager:*".to_string()],
                vec![PROD_READ_TOKEN.to_string(), PROD_TOKEN.to_string()]
            )
        );
        let role = statement(doc, "DenyProductionRoles").unwrap();
        assert_eq!(
            (role.effect, role.actions.clone(), role.resources.clone()),
            (
                Effect::Deny,
                vec!["sts:AssumeRole".to_string()],
                vec![DEPLOYER.to_string(), PREVIEWER.to_string()]
            )
        );
    }

    // G27: each role reads only its inputs' and writes only its outputs'
    // artifact prefixes (CodePipeline's `<pipeline:20>/<artifact:20>/`);
    // non-production roles are denied production's outputs.
    let folder = |name: &str| name.chars().take(20).collect::<String>();
    let artifact = |bucket: &str, name: &str| {
        format!("{bucket}/{}/{}/*", folder(&pipeline_name), folder(name))
    };
    let writes = |doc: &PolicyDocument| -> Vec<String> {
        doc.statements
            .iter()
            .filter(|s| s.effect == Effect::Allow && s.actions.iter().any(|a| a == "s3:PutObject"))
            .flat_map(|s| s.resources.clone())
            .collect()
    };
    let reads = |doc: &PolicyDocument| -> Vec<String> {
        doc.statements
            .iter()
            .filter(|s| s.effect == Effect::Allow && s.actions.iter().any(|a| a == "s3:GetObject"))
            .flat_map(|s| s.resources.clone())
            .filter(|r| r.starts_with(&home_bucket_arn) || r.starts_with(&west_bucket_arn))
            .collect()
    };
    let build_policy = &role_policies["build"].1["build"];
    assert_eq!(
        writes(build_policy),
        vec![artifact(&home_bucket_arn, "BuildOutput")]
    );
    assert_eq!(
        reads(build_policy),
        vec![artifact(&home_bucket_arn, "SourceOutput")]
    );
    let prod_outputs = artifact(&home_bucket_arn, "StackOutputs3-prod");
    for (purpose, bucket, own) in [
        ("deploy-dev", &home_bucket_arn, Some("StackOutputs1-dev")),
        ("deploy-staging", &west_bucket_arn, None),
        ("deploy-prod", &home_bucket_arn, Some("StackOutputs3-prod")),
        ("preview-prod", &home_bucket_arn, None),
    ] {
        let doc = role_policies[purpose].1.values().next().unwrap();
        assert_eq!(
            writes(doc)
                .into_iter()
                .filter(|r| r.starts_with(bucket.as_str()))
                .collect::<Vec<_>>(),
            own.map(|o| artifact(bucket, o))
                .into_iter()
                .collect::<Vec<_>>(),
            "{purpose}"
        );
        assert_eq!(
            reads(doc),
            vec![artifact(bucket, "BuildOutput")],
            "{purpose}"
        );
    }
    for purpose in ["deploy-dev", "build"] {
        let doc = role_policies[purpose].1.values().next().unwrap();
        assert!(!writes(doc).contains(&prod_outputs), "{purpose}");
        let denied = statement(doc, "DenyProductionArtifacts").unwrap();
        assert_eq!(
            (denied.effect, denied.resources.clone()),
            (Effect::Deny, vec![prod_outputs.clone()]),
            "{purpose}"
        );
    }
    // Production's parameters are denied to every other role, and to the
    // preview.
    for purpose in ["deploy-dev", "deploy-staging", "build"] {
        let doc = role_policies[purpose].1.values().next().unwrap();
        let denied = statement(doc, "DenyProductionParameters").unwrap();
        assert_eq!(
            (denied.effect, denied.resources.clone()),
            (
                Effect::Deny,
                vec![format!(
                    "arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/web/prod/config"
                )]
            ),
            "{purpose}"
        );
    }
    assert!(statement(preview_role, "DenyDeployParameters").is_some());

    // G14, G7: the topic lets exactly the notification rule publish, over
    // TLS only, and does not hand the account publish or subscribe; the key
    // serves CloudWatch Logs for this pipeline's log groups only and
    // EventBridge for that rule only.
    let topic_arn = text(&out, "notificationTopicArn");
    let attributes = aws
        .sns
        .get_topic_attributes()
        .topic_arn(&topic_arn)
        .send()
        .await
        .unwrap();
    let topic_policy = readback::policy(&attributes.attributes().unwrap()["Policy"]);
    let rules = aws
        .events
        .list_rule_names_by_target()
        .target_arn(&topic_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(rules.rule_names().len(), 1, "{rules:?}");
    let rule = aws
        .events
        .describe_rule()
        .name(&rules.rule_names()[0])
        .send()
        .await
        .unwrap();
    let rule_arn = rule.arn().unwrap().to_string();
    let publish = statement(&topic_policy, "AllowPipelineEvents").unwrap();
    assert_eq!(
        publish.conditions["ArnEquals"]["aws:SourceArn"],
        vec![rule_arn.clone()]
    );
    assert!(!publish.conditions.contains_key("ArnLike"));
    let owner = statement(&topic_policy, "OwnerManages").unwrap();
    assert!(
        owner
            .actions
            .iter()
            .all(|a| !a.eq_ignore_ascii_case("sns:Publish")
                && !a.eq_ignore_ascii_case("sns:Subscribe")),
        "{owner:?}"
    );
    let tls = statement(&topic_policy, "DenyInsecureTransport").unwrap();
    assert_eq!(tls.effect, Effect::Deny);
    assert_eq!(tls.conditions["Bool"]["aws:SecureTransport"], vec!["false"]);
    let key_policy = readback::policy(
        aws.home
            .kms
            .get_key_policy()
            .key_id(&home_key)
            .policy_name("default")
            .send()
            .await
            .unwrap()
            .policy()
            .unwrap(),
    );
    let mut home_groups: Vec<String> = log_groups
        .iter()
        .filter(|g| *g != &log_groups[2])
        .map(|g| format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{g}"))
        .collect();
    home_groups.sort();
    let mut logs_scope = statement(&key_policy, "ServiceLogsUsEast1")
        .unwrap()
        .conditions["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
        .clone();
    logs_scope.sort();
    assert_eq!(logs_scope, home_groups);
    assert_eq!(
        statement(&key_policy, "ServiceEvents").unwrap().conditions["ArnEquals"]["aws:SourceArn"],
        vec![rule_arn]
    );
    // The pipeline's role is trusted for exactly this pipeline.
    assert_eq!(
        role_policies["pipeline"].0.statements[0].conditions["ArnEquals"]["aws:SourceArn"],
        vec![format!(
            "arn:aws:codepipeline:{REGION}:{ACCOUNT}:{pipeline_name}"
        )]
    );

    // The pipeline's role runs every project, in both regions, and uses
    // both stores.
    let (_, pipeline) = &role_policies["pipeline"];
    let pipeline = &pipeline["pipeline"];
    let mut project_arns: Vec<String> = statement(pipeline, "RunOwnBuilds")
        .unwrap()
        .resources
        .clone();
    project_arns.sort();
    let mut expected_projects = vec![
        format!(
            "arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{}",
            projects[0]
        ),
        format!(
            "arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{}",
            projects[1]
        ),
        format!("arn:aws:codebuild:{WEST}:{ACCOUNT}:project/{}", projects[2]),
        format!(
            "arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{}",
            projects[3]
        ),
        format!(
            "arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{}",
            projects[4]
        ),
    ];
    expected_projects.sort();
    assert_eq!(project_arns, expected_projects);
    assert_eq!(
        statement(pipeline, "ArtifactsUsWest2Bucket")
            .unwrap()
            .resources,
        vec![west_bucket_arn.clone()]
    );
    assert_eq!(
        statement(pipeline, "ArtifactsUsWest2Write")
            .unwrap()
            .resources,
        vec![format!("{west_bucket_arn}/{}/*", folder(&pipeline_name))]
    );
    assert_eq!(
        statement(pipeline, "UseArtifactKeyUsWest2")
            .unwrap()
            .resources,
        vec![west_key.clone()]
    );
    // It copies the home store's artifacts to the other region: it reads
    // at home, and only writes there.
    assert!(statement(pipeline, "ArtifactsRead").is_some());
    assert!(statement(pipeline, "ArtifactsUsWest2Read").is_none());
    assert_eq!(
        statement(pipeline, "UseArtifactKeyUsWest2")
            .unwrap()
            .actions,
        vec!["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"]
    );
    let expected_pipeline = plan::pipeline_role_policy(
        REGION,
        &BTreeMap::from([
            (REGION.to_string(), home_store),
            (WEST.to_string(), west_store),
        ]),
        &declaration.stages()[0].actions()[0]
            .configuration()
            .unwrap()["ConnectionArn"],
        "example-org/web",
        statement(pipeline, "RunOwnBuilds")
            .unwrap()
            .resources
            .clone(),
        &text(&out, "notificationTopicArn"),
        Vec::new(),
    );
    assert_eq!(*pipeline, expected_pipeline);

    // Refresh reads every child back, in its own region, as it was
    // written: the next `up` changes nothing.
    stack.refresh().success();
    emulator.reset_calls();
    stack.up().success();
    let writes: Vec<_> = emulator.calls().into_iter().filter(|c| c.write).collect();
    assert!(writes.is_empty(), "a no-op update wrote to AWS: {writes:?}");

    // Destroy leaves nothing behind, in either region.
    stack.destroy().success();
    assert!(aws
        .codepipeline
        .list_pipelines()
        .send()
        .await
        .unwrap()
        .pipelines()
        .is_empty());
    for regional in [&aws.home, &aws.west] {
        assert!(regional
            .codebuild
            .list_projects()
            .send()
            .await
            .unwrap()
            .projects()
            .is_empty());
        assert!(regional
            .logs
            .describe_log_groups()
            .send()
            .await
            .unwrap()
            .log_groups()
            .is_empty());
    }
    assert!(aws
        .home
        .s3
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .is_empty());
    assert!(aws
        .iam
        .list_roles()
        .send()
        .await
        .unwrap()
        .roles()
        .is_empty());
    for (regional, key) in [(&aws.home, &home_key), (&aws.west, &west_key)] {
        let described = regional
            .kms
            .describe_key()
            .key_id(key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            described
                .key_metadata()
                .unwrap()
                .key_state()
                .unwrap()
                .as_str(),
            "PendingDeletion"
        );
    }
}

const DEV_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555";
const PROD_KEY: &str =
    "arn:aws:kms:us-east-1:123456789012:key/66666666-7777-8888-9999-000000000000";

/// Stages with no stored deployment secret: dev keeps its S3 stack's
/// secrets with a KMS key; production logs in to Pulumi Cloud through OIDC
/// (its preview as a read-only team) and keeps its secrets with its own
/// key, with a pinned CLI hash.
fn keyless_deployments() -> Json {
    json!([
        {"name": "dev", "pulumiStack": {
            "stack": "web-infra/dev", "backendUrl": "s3://web-state/pulumi", "secretsKmsKeyArn": DEV_KEY}},
        {"name": "prod", "production": true, "assumeRoleArn": DEPLOYER, "previewRoleArn": PREVIEWER,
         "pulumiStack": {
            "stack": "example-org/web-infra/prod", "secretsKmsKeyArn": PROD_KEY,
            "pulumiVersion": "3.248.0", "pulumiCliSha256": "ab".repeat(32),
            "pulumiCloudOidc": {"organization": "example-org", "team": "deployers", "previewTeam": "readers"}}}
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn keyless_stages_log_in_through_oidc_and_keep_secrets_with_their_key() {
    let emulator = Emulator::start();
    let deployments = keyless_deployments();
    let stack = Stack::yaml(&emulator, "web-keyless", &program(&deployments));
    stack.up().success();
    let out = stack.outputs();
    let aws = Aws::new(&emulator).await;
    let projects = strings(&out, "buildProjectNames");
    assert_eq!(projects.len(), 4, "{projects:?}");
    let spec = |project: aws_sdk_codebuild::types::Project| {
        project.source().unwrap().buildspec().unwrap().to_string()
    };

    // Dev: the key is the stack's secrets provider; no passphrase exists.
    let dev_spec = spec(aws.home.project(&projects[1]).await);
    let (dev_doc, dev_steps) = commands(&dev_spec);
    assert_steps(
        &dev_steps,
        &[
            "sha256sum --check --strict pulumi.sha256",
            "pulumi login s3://web-state/pulumi",
            "export PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER=true",
            &format!("pulumi stack select --create --secrets-provider 'awskms:///{DEV_KEY}?region=us-east-1' organization/web-infra/dev"),
            "pulumi up --yes --skip-preview",
        ],
    );
    assert!(
        dev_doc["env"].get("secrets-manager").is_none(),
        "{dev_spec}"
    );

    // Prod: an identity token of the stage's role, exchanged before the
    // deploy role's profile is in force; the pinned hash is checked; no
    // token or passphrase is loaded.
    let prod_spec = spec(aws.home.project(&projects[2]).await);
    let (prod_doc, prod_steps) = commands(&prod_spec);
    let hash = "ab".repeat(32);
    assert_steps(
        &prod_steps,
        &[
            &format!("echo \"{hash}  $PULUMI_TARBALL\" > \"$PULUMI_DOWNLOAD/pulumi.sha256\""),
            "sha256sum --check --strict pulumi.sha256",
            "aws sts get-web-identity-token --audience urn:pulumi:org:example-org --signing-algorithm RS256 --duration-seconds 300",
            "pulumi login --oidc-token \"file://$PULUMI_OIDC_TOKEN_FILE\" --oidc-org example-org --oidc-team deployers --oidc-expiration 60m",
            "rm -f \"$PULUMI_OIDC_TOKEN_FILE\"",
            "export AWS_PROFILE=securepipeline-deploy",
            &format!("pulumi stack select --create --secrets-provider 'awskms:///{PROD_KEY}?region=us-east-1&profile=securepipeline-stage' example-org/web-infra/prod"),
            "pulumi up --yes --skip-preview",
        ],
    );
    assert!(
        !prod_steps.iter().any(|c| c.contains("checksums.txt")),
        "{prod_steps:#?}"
    );
    assert!(
        prod_doc["env"].get("secrets-manager").is_none(),
        "{prod_spec}"
    );
    let preview_spec = spec(aws.home.project(&projects[3]).await);
    let (_, preview_steps) = commands(&preview_spec);
    assert_steps(
        &preview_steps,
        &[
            "pulumi login --oidc-token \"file://$PULUMI_OIDC_TOKEN_FILE\" --oidc-org example-org --oidc-team readers",
            &format!("'role_arn = {PREVIEWER}'"),
            "pulumi stack select example-org/web-infra/prod",
            "pulumi preview --diff --refresh",
        ],
    );
    assert!(
        !preview_spec.contains("deployers") && !preview_spec.contains("--create"),
        "{preview_spec}"
    );
    for spec in [&dev_spec, &prod_spec, &preview_spec] {
        assert!(!spec.contains("| sh"), "{spec}");
    }

    // The roles as AWS holds them: each key for its own stage only, the
    // identity token for one audience, lint-clean.
    let roles = out["roleArns"].as_object().unwrap();
    let aws = &aws;
    let policy = |purpose: &str| {
        let arn = roles[purpose].as_str().unwrap().to_string();
        async move {
            let (_, policies) = aws.role(&arn).await;
            assert_eq!(policies.len(), 1, "{arn}: {policies:?}");
            policies.into_values().next().unwrap()
        }
    };
    let dev_policy = policy("deploy-dev").await;
    let prod_policy = policy("deploy-prod").await;
    let preview_policy = policy("preview-prod").await;
    let build_policy = policy("build").await;
    let allowed = |doc: &PolicyDocument, action: &str| -> Vec<String> {
        doc.statements
            .iter()
            .filter(|s| s.effect == Effect::Allow && s.actions.iter().any(|a| a == action))
            .flat_map(|s| s.resources.clone())
            .collect()
    };
    assert_eq!(
        allowed(&dev_policy, "kms:Encrypt")
            .iter()
            .filter(|r| r.as_str() == DEV_KEY)
            .count(),
        1
    );
    assert_eq!(
        statement(&dev_policy, "UseSecretsProviderKey")
            .unwrap()
            .actions,
        vec!["kms:Decrypt", "kms:Encrypt"]
    );
    for doc in [&dev_policy, &build_policy] {
        let denied = statement(doc, "DenyProductionKeys").unwrap();
        assert_eq!(
            (
                denied.effect,
                denied.actions.clone(),
                denied.resources.clone()
            ),
            (
                Effect::Deny,
                vec!["kms:*".to_string()],
                vec![PROD_KEY.to_string()]
            )
        );
    }
    assert!(allowed(&dev_policy, "sts:GetWebIdentityToken").is_empty());
    assert_eq!(
        statement(&prod_policy, "UseSecretsProviderKey")
            .unwrap()
            .resources,
        vec![PROD_KEY]
    );
    for doc in [&prod_policy, &preview_policy] {
        let token = statement(doc, "GetPulumiCloudIdentityToken").unwrap();
        assert_eq!(
            (token.actions.clone(), token.resources.clone()),
            (
                vec!["sts:GetWebIdentityToken".to_string()],
                vec!["*".to_string()]
            )
        );
        assert_eq!(
            token.conditions["ForAllValues:StringEquals"]["sts:IdentityTokenAudience"],
            vec!["urn:pulumi:org:example-org"]
        );
        assert_eq!(
            token.conditions["NumericLessThanEquals"]["sts:DurationSeconds"],
            vec!["300"]
        );
        assert!(
            allowed(doc, "secretsmanager:GetSecretValue").is_empty(),
            "{doc:#?}"
        );
    }
    let decrypt = statement(&preview_policy, "DecryptSecretsProviderKey").unwrap();
    assert_eq!(
        (decrypt.actions.clone(), decrypt.resources.clone()),
        (vec!["kms:Decrypt".to_string()], vec![PROD_KEY.to_string()])
    );
    assert!(allowed(&preview_policy, "kms:Encrypt")
        .iter()
        .all(|r| r != PROD_KEY));
    for doc in [&dev_policy, &prod_policy, &preview_policy, &build_policy] {
        assert!(
            lint::permissions(doc).is_empty(),
            "{:?}",
            lint::permissions(doc)
        );
    }
    stack.destroy().success();
}

/// One deployment (or two) and the property its failure must name.
fn bad_deployments() -> Vec<(&'static str, Json, &'static str, &'static str)> {
    vec![
        (
            "both pulumiStack and commands",
            json!([{"name": "dev", "commands": ["x"], "pulumiStack": {"stack": "org/app/dev", "accessTokenSecretArn": PROD_TOKEN}}]),
            "deployments[0]:",
            "either pulumiStack or commands",
        ),
        (
            "assumeRoleArn that is not a role",
            json!([{"name": "dev", "commands": ["x"], "assumeRoleArn": "arn:aws:iam::210987654321:user/deployer"}]),
            "deployments[0].assumeRoleArn",
            "not an IAM role ARN",
        ),
        (
            "unknown region",
            json!([{"name": "dev", "commands": ["x"], "region": "moon-1"}]),
            "deployments[0].region",
            "not an AWS region",
        ),
        (
            "duplicate stage name",
            json!([{"name": "dev", "commands": ["x"]}, {"name": "dev", "commands": ["y"]}]),
            "deployments[1].name",
            "used twice",
        ),
        (
            "a non-production stage deploying production's Pulumi Cloud stack",
            json!([{"name": "dev", "pulumiStack": {"stack": "example-org/web-infra/prod",
                    "accessTokenSecretArn": DEV_PASSPHRASE}},
                   {"name": "prod", "production": true, "pulumiStack": {"stack": "example-org/web-infra/prod",
                    "accessTokenSecretArn": PROD_TOKEN}}]),
            "deployments[0].pulumiStack.stack",
            "production stage's stack",
        ),
        (
            "a non-production stage assuming production's preview role",
            json!([{"name": "dev", "commands": ["x"], "assumeRoleArn": PREVIEWER},
                   {"name": "prod", "production": true, "assumeRoleArn": DEPLOYER, "previewRoleArn": PREVIEWER,
                    "pulumiStack": {"stack": "example-org/web-infra/prod", "accessTokenSecretArn": PROD_TOKEN,
                    "previewAccessTokenSecretArn": PROD_READ_TOKEN}}]),
            "deployments[0].assumeRoleArn",
            "role a production stage uses",
        ),
        (
            "a preview role that is the deploy role",
            json!([{"name": "prod", "production": true, "assumeRoleArn": DEPLOYER, "previewRoleArn": DEPLOYER,
                    "pulumiStack": {"stack": "example-org/web-infra/prod", "accessTokenSecretArn": PROD_TOKEN,
                    "previewAccessTokenSecretArn": PROD_READ_TOKEN}}]),
            "deployments[0].previewRoleArn",
            "is the deploy role",
        ),
        (
            "a KMS secrets provider next to a passphrase",
            json!([{"name": "dev", "pulumiStack": {"stack": "web-infra/dev", "backendUrl": "s3://web-state/pulumi",
                "secretsKmsKeyArn": DEV_KEY, "passphraseSecretArn": DEV_PASSPHRASE}}]),
            "deployments[0].pulumiStack.secretsKmsKeyArn",
            "not both",
        ),
        (
            "a non-production stage using production's secrets key",
            json!([{"name": "dev", "pulumiStack": {"stack": "web-infra/dev", "backendUrl": "s3://web-state/pulumi",
                    "secretsKmsKeyArn": PROD_KEY}},
                   {"name": "prod", "production": true, "pulumiStack": {"stack": "example-org/web-infra/prod",
                    "secretsKmsKeyArn": PROD_KEY, "accessTokenSecretArn": PROD_TOKEN}}]),
            "deployments[0].pulumiStack.secretsKmsKeyArn",
            "production stack's secrets key",
        ),
        (
            "OIDC login to a self-managed backend",
            json!([{"name": "dev", "pulumiStack": {"stack": "web-infra/dev", "backendUrl": "s3://web-state/pulumi",
                "passphraseSecretArn": DEV_PASSPHRASE, "pulumiCloudOidc": {"organization": "example-org"}}}]),
            "deployments[0].pulumiStack.pulumiCloudOidc",
            "self-managed backend",
        ),
        (
            "OIDC login with a CLI that cannot exchange tokens",
            json!([{"name": "dev", "pulumiStack": {"stack": "example-org/web-infra/dev", "pulumiVersion": "3.200.0",
                "pulumiCloudOidc": {"organization": "example-org"}}}]),
            "deployments[0].pulumiStack.pulumiVersion",
            "3.209.0",
        ),
        (
            "secret that is not a Secrets Manager ARN",
            json!([{"name": "prod", "pulumiStack": {"stack": "org/app/prod",
                "accessTokenSecretArn": "arn:aws:ssm:us-east-1:123456789012:parameter/pulumi-token"}}]),
            "deployments[0].pulumiStack.accessTokenSecretArn",
            "secretsmanager",
        ),
    ]
}

#[test]
fn invalid_deployments_fail_at_preview_naming_the_property() {
    let emulator = Emulator::start();
    for (what, deployments, property, reason) in bad_deployments() {
        let stack = Stack::yaml(&emulator, "bad-deployments", &program(&deployments));
        let run = stack.preview().failure();
        let text = run.text();
        let line = text
            .lines()
            .find(|l| l.contains(property))
            .unwrap_or_else(|| panic!("{what}: expected `{property}` in:\n{text}"));
        assert!(
            line.contains(reason),
            "{what}: expected `{reason}` in `{line}`"
        );
    }
}
