//! `securepipeline:aws:Pipeline` against the AWS emulator: create, read back
//! the V2 declaration (stores, triggers, approval, rollback) and tags, drift
//! (triggers, execution mode, approval timeout, rollback, a tag), restore,
//! a cross-region pipeline, delete.

mod support;

use std::collections::BTreeMap;

use aws_sdk_codepipeline::types::{
    ArtifactStoreType, EncryptionKeyType, ExecutionMode, FailureConditions,
    GitBranchFilterCriteria, GitPullRequestEventType, GitPullRequestFilter, PipelineDeclaration,
    PipelineTriggerProviderType, PipelineType, PipelineVariableDeclaration,
    Result as FailureResult,
};
use aws_sdk_codestarconnections::types::ProviderType;
use securepipeline::aws::AwsContext;
use securepipeline::engine_log::EngineLog;
use securepipeline::iam::grants;
use securepipeline::resource::{CheckContext, Lifecycle};
use securepipeline::resources::pipeline::{
    Action, ArtifactStore, Pipeline, PipelineInputs, Stage, Trigger,
};
use securepipeline::resources::stage_conditions::{Condition, Rule};
use securepipeline::tags::{self, Tags};

const URN: &str = "urn:pulumi:test::securepipeline::securepipeline:aws:Pipeline::pipeline";
const OTHER_REGION: &str = "eu-west-1";

/// The children a pipeline depends on: its role, store and connection.
struct Prerequisites {
    role_arn: String,
    bucket: String,
    key_arn: String,
    connection_arn: String,
}

async fn prerequisites(aws: &AwsContext) -> Prerequisites {
    let clients = aws.clients();
    let pipelines = format!("{}*", aws.arns().codepipeline("app-x1y2-pipeline-"));
    let trust = grants::trust_policy(
        "codepipeline.amazonaws.com",
        &aws.account_id,
        Some(&pipelines),
    );
    // moto's CreatePipeline only recognises `"Service": "<principal>"`, not
    // the equivalent one-element list IAM also accepts; same trust, its form.
    let mut document = serde_json::to_value(&trust).unwrap();
    document["Statement"][0]["Principal"]["Service"] = "codepipeline.amazonaws.com".into();
    let role = clients
        .iam
        .create_role()
        .role_name("app-x1y2-pipeline-abcdefgh")
        .assume_role_policy_document(document.to_string())
        .send()
        .await
        .unwrap();
    let key = clients.kms.create_key().send().await.unwrap();
    let bucket = "app-x1y2-artifacts-abcdefgh".to_string();
    clients
        .s3
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let connection = clients
        .connections
        .create_connection()
        .connection_name("app-x1y2-source")
        .provider_type(ProviderType::Github)
        .send()
        .await
        .unwrap();
    Prerequisites {
        role_arn: role.role.unwrap().arn,
        bucket,
        key_arn: key.key_metadata.unwrap().arn.unwrap(),
        connection_arn: connection.connection_arn().to_string(),
    }
}

fn action(name: &str, category: &str, provider: &str) -> Action {
    Action {
        name: name.into(),
        category: category.into(),
        owner: "AWS".into(),
        provider: provider.into(),
        version: "1".into(),
        run_order: 1,
        configuration: BTreeMap::new(),
        input_artifacts: Vec::new(),
        output_artifacts: Vec::new(),
        region: None,
        namespace: None,
        timeout_in_minutes: None,
    }
}

fn program_inputs(pre: &Prerequisites) -> PipelineInputs {
    let source = Action {
        configuration: BTreeMap::from([
            ("ConnectionArn".into(), pre.connection_arn.clone()),
            ("FullRepositoryId".into(), "org/app".into()),
            ("BranchName".into(), "main".into()),
            ("OutputArtifactFormat".into(), "CODE_ZIP".into()),
            ("DetectChanges".into(), "false".into()),
        ]),
        output_artifacts: vec!["SourceOutput".into()],
        namespace: Some("SourceVariables".into()),
        ..action("Source", "Source", "CodeStarSourceConnection")
    };
    let build = Action {
        configuration: BTreeMap::from([("ProjectName".into(), "app-x1y2-build-abcdefgh".into())]),
        input_artifacts: vec!["SourceOutput".into()],
        output_artifacts: vec!["BuildOutput".into()],
        namespace: Some("BuildVariables".into()),
        ..action("Build", "Build", "CodeBuild")
    };
    let approve = Action {
        timeout_in_minutes: Some(1440),
        ..action("Approve", "Approval", "Manual")
    };
    let deploy = Action {
        configuration: BTreeMap::from([(
            "ProjectName".into(),
            "app-x1y2-deploy-prod-abcdefgh".into(),
        )]),
        input_artifacts: vec!["BuildOutput".into()],
        run_order: 2,
        ..action("Deploy", "Build", "CodeBuild")
    };
    PipelineInputs {
        name_prefix: "app-x1y2-pipeline".into(),
        pipeline_name: None,
        role_arn: pre.role_arn.clone(),
        artifact_stores: BTreeMap::from([(
            support::REGION.to_string(),
            ArtifactStore {
                bucket_name: pre.bucket.clone(),
                kms_key_arn: pre.key_arn.clone(),
            },
        )]),
        stages: vec![
            Stage {
                name: "Source".into(),
                actions: vec![source],
                rollback_on_failure: false,
                before_entry: Vec::new(),
                on_success: Vec::new(),
            },
            Stage {
                name: "Build".into(),
                actions: vec![build],
                rollback_on_failure: false,
                before_entry: Vec::new(),
                on_success: Vec::new(),
            },
            Stage {
                name: "prod".into(),
                actions: vec![approve, deploy],
                rollback_on_failure: true,
                before_entry: vec![Condition {
                    result: "FAIL".into(),
                    rules: vec![
                        Rule {
                            name: "window".into(),
                            provider: "DeploymentWindow".into(),
                            configuration: BTreeMap::from([
                                ("Cron".into(), "* * 9-16 ? * MON-FRI".into()),
                                ("TimeZone".into(), "Europe/Berlin".into()),
                            ]),
                        },
                        Rule {
                            name: "alarms".into(),
                            provider: "CloudWatchAlarm".into(),
                            configuration: BTreeMap::from([("AlarmName".into(), "errors".into())]),
                        },
                    ],
                }],
                on_success: vec![Condition {
                    result: "ROLLBACK".into(),
                    rules: vec![Rule {
                        name: "bake".into(),
                        provider: "CloudWatchAlarm".into(),
                        configuration: BTreeMap::from([
                            ("AlarmName".into(), "errors".into()),
                            ("WaitTime".into(), "30".into()),
                        ]),
                    }],
                }],
            },
        ],
        triggers: vec![Trigger {
            include_paths: vec!["src/**".into()],
            exclude_paths: vec!["docs/**".into()],
            ..Trigger::on_branches("Source", vec!["main".into()])
        }],
        pull_request_triggers: Vec::new(),
        variables: Vec::new(),
        execution_mode: "QUEUED".into(),
        tags: Tags::from([("team".to_string(), "platform".to_string())]),
    }
}

async fn live_pipeline(aws: &AwsContext, name: &str) -> PipelineDeclaration {
    let found = aws
        .clients()
        .codepipeline
        .get_pipeline()
        .name(name)
        .send()
        .await
        .unwrap();
    found.pipeline.expect("the pipeline exists")
}

/// Live tags as the program states them: the create's ownership token aside.
async fn live_tags(aws: &AwsContext, arn: &str) -> Tags {
    let listed = aws
        .clients()
        .codepipeline
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap();
    listed
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .filter(|(key, _)| key != tags::CREATE_TOKEN_KEY)
        .collect()
}

#[tokio::test]
async fn pipeline_is_created_read_back_restored_and_deleted() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, URN);
    let pre = prerequisites(&aws).await;
    let check_ctx = CheckContext {
        name: "pipeline",
        random_seed: b"pipeline-emulator",
        aws: Some(&aws),
    };
    let inputs = Pipeline::check(&check_ctx, None, program_inputs(&pre)).unwrap();
    let name = inputs.pipeline_name.clone().unwrap();

    let (id, outputs) = Pipeline::create(&ctx, &inputs).await.unwrap();
    assert_eq!(id, name);
    // G1: the ARN is the caller's, never typed.
    assert_eq!(outputs.arn, aws.arns().codepipeline(&name));
    assert_eq!(
        outputs.url,
        format!("https://us-east-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/{name}/view?region=us-east-1")
    );

    // Every guarantee, read straight from CodePipeline.
    let live = live_pipeline(&aws, &name).await;
    assert_eq!(live.pipeline_type(), Some(&PipelineType::V2));
    assert_eq!(live.execution_mode(), Some(&ExecutionMode::Queued));
    assert_eq!(live.role_arn(), pre.role_arn);
    // G5 and G7: one region, one store without a region, encrypted with the key.
    assert!(live
        .artifact_stores()
        .is_none_or(|stores| stores.is_empty()));
    let store = live.artifact_store().unwrap();
    assert_eq!(*store.r#type(), ArtifactStoreType::S3);
    assert_eq!(store.location(), pre.bucket);
    let key = store.encryption_key().unwrap();
    assert_eq!(
        (key.id(), key.r#type()),
        (pre.key_arn.as_str(), &EncryptionKeyType::Kms)
    );
    // G2: the source is the connection.
    let source = &live.stages()[0].actions()[0];
    assert_eq!(
        source.action_type_id().unwrap().provider(),
        "CodeStarSourceConnection"
    );
    assert_eq!(
        source.configuration().unwrap()["ConnectionArn"],
        pre.connection_arn
    );
    assert!(live
        .stages()
        .iter()
        .flat_map(|s| s.actions())
        .all(|a| a.region().is_none()));
    // G3: a push trigger on the source action and branch, with path filters.
    let [trigger] = live.triggers() else {
        panic!("one trigger: {:?}", live.triggers())
    };
    assert_eq!(
        *trigger.provider_type(),
        PipelineTriggerProviderType::CodeStarSourceConnection
    );
    let git = trigger.git_configuration().unwrap();
    assert_eq!(git.source_action_name(), "Source");
    let [push] = git.push() else {
        panic!("one push filter")
    };
    assert_eq!(push.branches().unwrap().includes(), ["main"]);
    assert_eq!(push.file_paths().unwrap().includes(), ["src/**"]);
    assert_eq!(push.file_paths().unwrap().excludes(), ["docs/**"]);
    // G9 and G16: the approval is time-bound and production rolls back.
    let prod = &live.stages()[2];
    assert_eq!(prod.actions()[0].timeout_in_minutes(), Some(1440));
    assert_eq!(
        prod.on_failure().and_then(FailureConditions::result),
        Some(&FailureResult::Rollback)
    );
    assert!(live.stages()[1].on_failure().is_none());
    // Gates: a window and alarms before entry, the alarms again after success.
    let before = prod.before_entry().unwrap().conditions();
    assert_eq!(before[0].result(), Some(&FailureResult::Fail));
    let window = &before[0].rules()[0];
    assert_eq!(
        window.rule_type_id().map(|t| t.provider()),
        Some("DeploymentWindow")
    );
    assert_eq!(window.configuration().unwrap()["TimeZone"], "Europe/Berlin");
    let after = prod.on_success().unwrap().conditions();
    assert_eq!(after[0].result(), Some(&FailureResult::Rollback));
    assert_eq!(
        after[0].rules()[0].configuration().unwrap()["WaitTime"],
        "30"
    );
    // G18: the user's tags and ManagedBy.
    let tags = live_tags(&aws, &outputs.arn).await;
    assert_eq!(tags["team"], "platform");
    assert_eq!(tags[tags::MANAGED_BY_KEY], tags::MANAGED_BY_VALUE);
    assert_eq!(tags, inputs.tags);

    let (read_inputs, read_outputs) = Pipeline::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(read_inputs, inputs);
    assert_eq!(read_outputs, outputs);

    // Drift made in the console: no trigger, SUPERSEDED, an approval that
    // waits forever, no rollback, a tag removed.
    let mut drifted_declaration = live.clone();
    drifted_declaration.triggers = None;
    drifted_declaration.execution_mode = Some(ExecutionMode::Superseded);
    drifted_declaration.stages[2].on_failure = None;
    drifted_declaration.stages[2].before_entry = None;
    drifted_declaration.stages[2].actions[0].timeout_in_minutes = None;
    let codepipeline = &aws.clients().codepipeline;
    codepipeline
        .update_pipeline()
        .pipeline(drifted_declaration)
        .send()
        .await
        .unwrap();
    codepipeline
        .untag_resource()
        .resource_arn(&outputs.arn)
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    let (drifted, _) = Pipeline::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert!(drifted.triggers.is_empty());
    assert_eq!(drifted.execution_mode, "SUPERSEDED");
    assert!(!drifted.stages[2].rollback_on_failure);
    assert!(drifted.stages[2].before_entry.is_empty());
    assert_eq!(drifted.stages[2].on_success, inputs.stages[2].on_success);
    assert_eq!(drifted.stages[2].actions[0].timeout_in_minutes, None);
    assert!(!drifted.tags.contains_key("team"));
    // The drifted pipeline is one check would refuse.
    let refused = Pipeline::check(&check_ctx, Some(&inputs), drifted.clone()).unwrap_err();
    let properties: Vec<_> = refused.iter().map(|f| f.property.as_str()).collect();
    assert_eq!(
        properties,
        vec!["stages[2].actions[0].timeoutInMinutes", "triggers"]
    );

    // The next update restores the program's pipeline.
    let updated = Pipeline::update(&ctx, &id, &drifted, &inputs, &outputs)
        .await
        .unwrap();
    assert_eq!(updated, outputs);
    let (restored, _) = Pipeline::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(restored, inputs);
    assert_eq!(live_pipeline(&aws, &name).await.version(), Some(3));

    // Drift no input declares: a pipeline variable, and a pull-request
    // filter next to the push filter.
    let mut drifted_declaration = live_pipeline(&aws, &name).await;
    drifted_declaration.variables = Some(vec![PipelineVariableDeclaration::builder()
        .name("TARGET")
        .default_value("prod")
        .build()
        .unwrap()]);
    drifted_declaration.triggers.as_mut().unwrap()[0]
        .git_configuration
        .as_mut()
        .unwrap()
        .pull_request = Some(vec![GitPullRequestFilter::builder()
        .events(GitPullRequestEventType::Open)
        .branches(GitBranchFilterCriteria::builder().includes("*").build())
        .build()]);
    codepipeline
        .update_pipeline()
        .pipeline(drifted_declaration)
        .send()
        .await
        .unwrap();
    let (drifted, _) = Pipeline::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    let added: Vec<(&str, &str)> = drifted
        .variables
        .iter()
        .map(|v| (v.name.as_str(), v.default_value.as_str()))
        .collect();
    assert_eq!(added, vec![("TARGET", "prod")]);
    assert_eq!(drifted.triggers, inputs.triggers);
    assert_eq!(drifted.pull_request_triggers[0].branches, vec!["*"]);
    let refused = Pipeline::check(&check_ctx, Some(&inputs), drifted.clone()).unwrap_err();
    let properties: Vec<_> = refused.iter().map(|f| f.property.as_str()).collect();
    // A variable is declared by an input; a pull-request trigger never is.
    assert_eq!(properties, vec!["pullRequestTriggers"]);
    Pipeline::update(&ctx, &id, &drifted, &inputs, &outputs)
        .await
        .unwrap();
    let (restored, _) = Pipeline::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(restored, inputs);
    let live = live_pipeline(&aws, &name).await;
    assert!(live.variables().is_empty());
    assert!(live.triggers()[0]
        .git_configuration()
        .unwrap()
        .pull_request()
        .is_empty());

    Pipeline::delete(&ctx, &id, &inputs, &outputs)
        .await
        .unwrap();
    assert!(Pipeline::read(&ctx, &id, &inputs).await.unwrap().is_none());
    Pipeline::delete(&ctx, &id, &inputs, &outputs)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_cross_region_pipeline_has_a_store_per_region() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, URN);
    let pre = prerequisites(&aws).await;
    let check_ctx = CheckContext {
        name: "pipeline",
        random_seed: b"pipeline-cross-region",
        aws: Some(&aws),
    };
    let other = aws.clients_in(OTHER_REGION);
    let other_key = other
        .kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .arn
        .unwrap();
    let mut program = program_inputs(&pre);
    program.artifact_stores.insert(
        OTHER_REGION.into(),
        ArtifactStore {
            bucket_name: "app-x1y2-artifacts-eu-abcdefgh".into(),
            kms_key_arn: other_key.clone(),
        },
    );
    program.stages[2].actions[1].region = Some(OTHER_REGION.into());
    // An action in the pipeline's own region is declared without a region.
    program.stages[1].actions[0].region = Some(support::REGION.into());
    let inputs = Pipeline::check(&check_ctx, None, program).unwrap();
    assert_eq!(inputs.stages[1].actions[0].region, None);

    let (id, outputs) = Pipeline::create(&ctx, &inputs).await.unwrap();
    let live = live_pipeline(&aws, &id).await;
    // G5: artifactStores keyed by region, no artifactStore.
    assert!(live.artifact_store().is_none());
    let stores = live.artifact_stores().unwrap();
    assert_eq!(stores.len(), 2);
    assert_eq!(
        stores[OTHER_REGION].encryption_key().unwrap().id(),
        other_key
    );
    assert_eq!(stores[support::REGION].location(), pre.bucket);
    let regions: Vec<_> = live
        .stages()
        .iter()
        .flat_map(|s| s.actions())
        .map(|a| a.region())
        .collect();
    assert_eq!(regions, vec![None, None, None, Some(OTHER_REGION)]);
    let (read_inputs, _) = Pipeline::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(read_inputs, inputs);

    // Back to one region: the declaration returns to a single store.
    let single = Pipeline::check(&check_ctx, Some(&inputs), program_inputs(&pre)).unwrap();
    Pipeline::update(&ctx, &id, &inputs, &single, &outputs)
        .await
        .unwrap();
    let live = live_pipeline(&aws, &id).await;
    assert!(live.artifact_store().is_some());
    assert!(live
        .artifact_stores()
        .is_none_or(|stores| stores.is_empty()));
    let (read_inputs, _) = Pipeline::read(&ctx, &id, &single).await.unwrap().unwrap();
    assert_eq!(read_inputs, single);
    Pipeline::delete(&ctx, &id, &single, &outputs)
        .await
        .unwrap();
}
