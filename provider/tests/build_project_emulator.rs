//! `securepipeline:aws:BuildProject` against the AWS emulator: create, read
//! back every setting from CodeBuild, drift (timeouts, privileged mode,
//! logs, key, variables, tags), restore, delete.

mod support;

use aws_sdk_codebuild::types::{
    ArtifactsType, EnvironmentType, EnvironmentVariableType, ImagePullCredentialsType, LogsConfig,
    LogsConfigStatusType, Project, SourceType, Tag,
};
use securepipeline::engine_log::EngineLog;
use securepipeline::iam::grants;
use securepipeline::resource::{CheckContext, Lifecycle};
use securepipeline::resources::build_project::{
    BuildProject, BuildProjectInputs, ProjectVariable, VariableType,
};
use securepipeline::tags::{self, Tags};

const URN: &str = "urn:pulumi:test::securepipeline::securepipeline:aws:BuildProject::build";
const SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:npm-token-AbCdEf";

/// The children a project depends on: its role, key and log group.
struct Prerequisites {
    role_arn: String,
    key_arn: String,
    log_group: String,
}

async fn prerequisites(aws: &securepipeline::aws::AwsContext) -> Prerequisites {
    let clients = aws.clients();
    let trust = grants::trust_policy("codebuild.amazonaws.com", &aws.account_id, None);
    let role = clients
        .iam
        .create_role()
        .role_name("app-x1y2-build-abcdefgh")
        .assume_role_policy_document(trust.to_compact_json())
        .send()
        .await
        .unwrap();
    let key = clients.kms.create_key().send().await.unwrap();
    let log_group = "/securepipeline/app-x1y2-build-abcdefgh".to_string();
    clients
        .logs
        .create_log_group()
        .log_group_name(&log_group)
        .send()
        .await
        .unwrap();
    Prerequisites {
        role_arn: role.role.unwrap().arn,
        key_arn: key.key_metadata.unwrap().arn.unwrap(),
        log_group,
    }
}

fn program_inputs(pre: &Prerequisites) -> BuildProjectInputs {
    BuildProjectInputs {
        name_prefix: "app-x1y2-build".into(),
        project_name: None,
        region: None,
        description: "Build stage of pipeline app".into(),
        service_role_arn: pre.role_arn.clone(),
        kms_key_arn: pre.key_arn.clone(),
        log_group_name: pre.log_group.clone(),
        image: "aws/codebuild/standard:7.0".into(),
        compute_type: "BUILD_GENERAL1_SMALL".into(),
        privileged_mode: false,
        timeout_in_minutes: 60,
        queued_timeout_in_minutes: 30,
        buildspec: "version: 0.2\nphases:\n  build:\n    commands:\n      - make test\n".into(),
        environment_variables: vec![
            ProjectVariable {
                name: "NODE_ENV".into(),
                value: "production".into(),
                kind: VariableType::Plaintext,
            },
            ProjectVariable {
                name: "NPM_TOKEN".into(),
                value: format!("{SECRET}:token"),
                kind: VariableType::SecretsManager,
            },
            ProjectVariable {
                name: "DB_PASSWORD".into(),
                value: "/app/prod/db-password".into(),
                kind: VariableType::ParameterStore,
            },
        ],
        tags: Tags::from([("team".to_string(), "platform".to_string())]),
    }
}

async fn live_project(codebuild: &aws_sdk_codebuild::Client, name: &str) -> Project {
    let found = codebuild
        .batch_get_projects()
        .names(name)
        .send()
        .await
        .unwrap();
    found
        .projects()
        .iter()
        .find(|p| p.name() == Some(name))
        .cloned()
        .expect("the project exists")
}

fn live_tags(project: &Project) -> Tags {
    project
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn build_project_is_created_read_back_restored_and_deleted() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, URN);
    let pre = prerequisites(&aws).await;
    let check_ctx = CheckContext {
        name: "build",
        random_seed: b"build-project-emulator",
        aws: Some(&aws),
    };
    let inputs = BuildProject::check(&check_ctx, None, program_inputs(&pre)).unwrap();
    let name = inputs.project_name.clone().unwrap();

    let (id, outputs) = BuildProject::create(&ctx, &inputs).await.unwrap();
    assert_eq!(id, name);
    assert_eq!(outputs.arn, aws.arns().codebuild_project(&name));

    // Every guarantee, read straight from CodeBuild.
    let codebuild = &aws.clients().codebuild;
    let project = live_project(codebuild, &name).await;
    assert_eq!(project.description(), Some("Build stage of pipeline app"));
    assert_eq!(project.service_role(), Some(pre.role_arn.as_str()));
    // G9: both timeouts set.
    assert_eq!(project.timeout_in_minutes(), Some(60));
    assert_eq!(project.queued_timeout_in_minutes(), Some(30));
    // G7: the customer-managed key encrypts build output.
    assert_eq!(project.encryption_key(), Some(pre.key_arn.as_str()));
    let source = project.source().unwrap();
    assert_eq!(*source.r#type(), SourceType::Codepipeline);
    assert_eq!(source.buildspec(), Some(inputs.buildspec.as_str()));
    assert_eq!(
        *project.artifacts().unwrap().r#type(),
        ArtifactsType::Codepipeline
    );
    let environment = project.environment().unwrap();
    assert_eq!(*environment.r#type(), EnvironmentType::LinuxContainer);
    // G24: the validated image and compute type.
    assert_eq!(environment.image(), "aws/codebuild/standard:7.0");
    assert_eq!(environment.compute_type().as_str(), "BUILD_GENERAL1_SMALL");
    assert_eq!(
        environment.image_pull_credentials_type(),
        Some(&ImagePullCredentialsType::Codebuild)
    );
    // G13: privileged mode off.
    assert_eq!(environment.privileged_mode(), Some(false));
    // G12: secrets by reference only.
    let variables: Vec<_> = environment
        .environment_variables()
        .iter()
        .map(|v| (v.name(), v.value(), v.r#type().cloned()))
        .collect();
    assert_eq!(
        variables,
        vec![
            (
                "NODE_ENV",
                "production",
                Some(EnvironmentVariableType::Plaintext)
            ),
            (
                "NPM_TOKEN",
                format!("{SECRET}:token").as_str(),
                Some(EnvironmentVariableType::SecretsManager)
            ),
            (
                "DB_PASSWORD",
                "/app/prod/db-password",
                Some(EnvironmentVariableType::ParameterStore)
            ),
        ]
    );
    // G8: logs go to the group created for the project, never to S3.
    let logs = project.logs_config().unwrap();
    let cloudwatch = logs.cloud_watch_logs().unwrap();
    assert_eq!(*cloudwatch.status(), LogsConfigStatusType::Enabled);
    assert_eq!(cloudwatch.group_name(), Some(pre.log_group.as_str()));
    assert_eq!(
        *logs.s3_logs().unwrap().status(),
        LogsConfigStatusType::Disabled
    );
    // G18: the user's tags and ManagedBy, and the create's ownership token.
    let tags = live_tags(&project);
    assert_eq!(tags["team"], "platform");
    assert_eq!(tags[tags::MANAGED_BY_KEY], tags::MANAGED_BY_VALUE);
    assert!(tags.contains_key(tags::CREATE_TOKEN_KEY), "{tags:?}");
    assert_eq!(tags::without_create_token(tags), inputs.tags);

    let (live, read_outputs) = BuildProject::read(&ctx, &id, &inputs)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live, inputs);
    assert_eq!(read_outputs, outputs);

    // Drift made in the console: longer timeout, privileged mode, logs off,
    // the default key, a secret turned plaintext, a tag removed.
    let mut environment = project.environment().unwrap().clone();
    environment.privileged_mode = Some(true);
    environment.environment_variables = Some(vec![
        aws_sdk_codebuild::types::EnvironmentVariable::builder()
            .name("NPM_TOKEN")
            .value("npm_abcdef")
            .r#type(EnvironmentVariableType::Plaintext)
            .build()
            .unwrap(),
    ]);
    codebuild
        .update_project()
        .name(&name)
        .timeout_in_minutes(480)
        .environment(environment)
        .encryption_key(format!(
            "arn:aws:kms:us-east-1:{}:alias/aws/s3",
            aws.account_id
        ))
        .logs_config(
            LogsConfig::builder()
                .cloud_watch_logs(
                    aws_sdk_codebuild::types::CloudWatchLogsConfig::builder()
                        .status(LogsConfigStatusType::Disabled)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .tags(
            Tag::builder()
                .key(tags::MANAGED_BY_KEY)
                .value(tags::MANAGED_BY_VALUE)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (drifted, _) = BuildProject::read(&ctx, &id, &inputs)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(drifted.timeout_in_minutes, 480);
    assert!(drifted.privileged_mode);
    assert_eq!(drifted.log_group_name, "");
    assert!(drifted.kms_key_arn.ends_with(":alias/aws/s3"));
    assert_eq!(
        drifted.environment_variables,
        vec![ProjectVariable {
            name: "NPM_TOKEN".into(),
            value: "npm_abcdef".into(),
            kind: VariableType::Plaintext
        }]
    );
    assert!(!drifted.tags.contains_key("team"));
    // The drifted configuration is one check would refuse.
    let refused = BuildProject::check(&check_ctx, Some(&inputs), drifted.clone()).unwrap_err();
    let properties: Vec<_> = refused.iter().map(|f| f.property.as_str()).collect();
    assert_eq!(
        properties,
        vec!["kmsKeyArn", "logGroupName", "environmentVariables[0].value"]
    );

    // The next update restores the program's configuration.
    let updated = BuildProject::update(&ctx, &id, &drifted, &inputs, &outputs)
        .await
        .unwrap();
    assert_eq!(updated, outputs);
    let (restored, _) = BuildProject::read(&ctx, &id, &inputs)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(restored, inputs);
    let project = live_project(codebuild, &name).await;
    assert_eq!(
        project.environment().unwrap().privileged_mode(),
        Some(false)
    );
    assert_eq!(live_tags(&project), inputs.tags);

    BuildProject::delete(&ctx, &id, &inputs, &outputs)
        .await
        .unwrap();
    assert!(BuildProject::read(&ctx, &id, &inputs)
        .await
        .unwrap()
        .is_none());
    BuildProject::delete(&ctx, &id, &inputs, &outputs)
        .await
        .unwrap();
}

#[tokio::test]
async fn updates_change_the_project_in_place() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, URN);
    let pre = prerequisites(&aws).await;
    let check_ctx = CheckContext {
        name: "build",
        random_seed: b"build-project-update",
        aws: Some(&aws),
    };
    let inputs = BuildProject::check(&check_ctx, None, program_inputs(&pre)).unwrap();
    let (id, outputs) = BuildProject::create(&ctx, &inputs).await.unwrap();

    // Docker builds, a bigger machine, a path buildspec, another tag.
    let mut program = program_inputs(&pre);
    program.privileged_mode = true;
    program.compute_type = "BUILD_GENERAL1_MEDIUM".into();
    program.image = "aws/codebuild/amazonlinux-x86_64-standard:5.0".into();
    program.buildspec = "ci/build.yml".into();
    program.environment_variables.truncate(1);
    program.tags.insert("cost-center".into(), "42".into());
    let news = BuildProject::check(&check_ctx, Some(&inputs), program).unwrap();
    assert_eq!(news.project_name, inputs.project_name, "the name is kept");
    BuildProject::update(&ctx, &id, &inputs, &news, &outputs)
        .await
        .unwrap();
    let (live, _) = BuildProject::read(&ctx, &id, &news).await.unwrap().unwrap();
    assert_eq!(live, news);
    BuildProject::delete(&ctx, &id, &news, &outputs)
        .await
        .unwrap();
}
