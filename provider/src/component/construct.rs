//! Construct: validates SecurePipeline's inputs, then registers its
//! children through the engine (which calls back into this provider to
//! create each) in dependency order, independent ones in parallel.
//! Nothing is kept in memory between calls: destroy and refresh never call
//! Construct.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tonic::Status;

use super::args::{self, SecurePipelineArgs, SecurePipelineOutputs, SourceProvider};
use super::plan::{self, Names};
use super::validate;
use crate::aws::AwsContext;
use crate::engine_log::EngineLog;
use crate::naming;
use crate::proto::pulumirpc::{ConstructRequest, ConstructResponse};
use crate::protocol::json::UNKNOWN;
use crate::protocol::monitor::{ChildDefaults, Monitor, Registered, Registration};
use crate::protocol::value::{decode_struct, encode_struct, PropertyMap, PropertyValue};
use crate::resource::{from_typed, parse, to_json, to_typed, CheckContext, CheckFailure, CustomResource};
use crate::resources::artifact_bucket::{ArtifactBucket, ArtifactBucketInputs};
use crate::resources::build_project::{BuildProject, BuildProjectInputs};
use crate::resources::connection::{Connection, ConnectionInputs};
use crate::resources::event_rule::{EventRule, EventRuleInputs, PipelineStateChange, RuleTarget};
use crate::resources::key::{Key, KeyInputs};
use crate::resources::log_group::{LogGroup, LogGroupInputs};
use crate::resources::pipeline::{ArtifactStore, Pipeline, PipelineInputs};
use crate::resources::role::{Role, RoleInputs};
use crate::resources::topic::{Topic, TopicInputs};
use crate::schema::{COMPONENT_TYPE, PACKAGE, PLUGIN_DOWNLOAD_URL};
use crate::tags::{Tags, PIPELINE_KEY};

/// All check failures as one error the engine shows at preview.
fn invalid(name: &str, failures: Vec<CheckFailure>) -> Status {
    let lines: Vec<String> = failures
        .iter()
        .map(|f| {
            if f.property.is_empty() {
                format!("  - {}", f.reason)
            } else {
                format!("  - {}: {}", f.property, f.reason)
            }
        })
        .collect();
    Status::invalid_argument(format!(
        "SecurePipeline `{name}` has invalid inputs:\n{}",
        lines.join("\n")
    ))
}

/// A string output of a registered child, or the unknown sentinel while it
/// is not known (preview).
fn output(child: &Registered, key: &str) -> String {
    match child.outputs.get(key) {
        Some(PropertyValue::String(value)) => value.clone(),
        Some(PropertyValue::Secret(inner)) => match inner.as_ref() {
            PropertyValue::String(value) => value.clone(),
            _ => UNKNOWN.to_string(),
        },
        _ => UNKNOWN.to_string(),
    }
}

/// Registers children under the component.
struct Children<'a> {
    monitor: &'a Monitor,
    defaults: &'a ChildDefaults,
    parent: String,
    name: &'a str,
    /// Child input keys to store as secrets (because the component input
    /// they came from was secret).
    secret_inputs: BTreeMap<&'static str, BTreeSet<String>>,
}

impl Children<'_> {
    async fn add<R: CustomResource>(
        &self,
        purpose: &str,
        inputs: &R::Inputs,
        depends_on: &[&Registered],
    ) -> Result<Registered, Status> {
        let json = to_json(inputs);
        let secret_keys = self.secret_inputs.get(R::TYPE).cloned().unwrap_or_default();
        let registration = Registration {
            type_token: R::TYPE.to_string(),
            name: format!("{}-{purpose}", self.name),
            parent: self.parent.clone(),
            custom: true,
            inputs: from_typed(&json, &secret_keys),
            dependencies: depends_on.iter().map(|c| c.urn.clone()).collect(),
            ..Default::default()
        };
        self.monitor.register(registration, self.defaults).await
    }
}

pub async fn construct(
    request: ConstructRequest,
    aws: Option<Arc<AwsContext>>,
    version: &str,
    log: &EngineLog,
) -> Result<ConstructResponse, Status> {
    let name = request.name.clone();
    let inputs = match &request.inputs {
        Some(inputs) => decode_struct(inputs).map_err(|err| Status::invalid_argument(err.to_string()))?,
        None => PropertyMap::new(),
    };
    let typed = to_typed(&inputs);
    let args: SecurePipelineArgs = parse(&typed.json).map_err(|failure| invalid(&name, vec![failure]))?;
    let check = CheckContext {
        name: &name,
        random_seed: &[],
        aws: aws.as_deref(),
    };
    validate::validate(&check, &args)
        .into_result(())
        .map_err(|failures| invalid(&name, failures))?;
    let aws = aws.ok_or_else(|| {
        Status::failed_precondition("the securepipeline provider must be configured before a SecurePipeline is constructed")
    })?;

    let monitor = Monitor::connect(&request.monitor_endpoint).await?;
    let providers: BTreeMap<String, String> = request.providers.clone().into_iter().collect();
    let defaults = ChildDefaults {
        version: version.to_string(),
        plugin_download_url: PLUGIN_DOWNLOAD_URL.to_string(),
        provider: providers.get(PACKAGE).cloned(),
        providers,
    };
    let component = monitor
        .register(
            Registration {
                type_token: COMPONENT_TYPE.to_string(),
                name: name.clone(),
                parent: request.parent.clone(),
                custom: false,
                dependencies: request.dependencies.iter().cloned().collect(),
                ..Default::default()
            },
            &defaults,
        )
        .await?;

    let mut secret_inputs: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    if typed.secret_keys.contains("build") {
        secret_inputs.entry(BuildProject::TYPE).or_default().insert("environmentVariables".into());
    }
    if typed.secret_keys.contains("notifications") {
        secret_inputs.entry(Topic::TYPE).or_default().insert("emails".into());
    }
    let children = Children {
        monitor: &monitor,
        defaults: &defaults,
        parent: component.urn.clone(),
        name: &name,
        secret_inputs,
    };
    let outputs = assemble(&children, &args, &aws, &request.project, &request.stack, log).await?;

    let output_map = from_typed(&to_json(&outputs), &BTreeSet::new());
    monitor.register_outputs(&component.urn, &output_map).await?;
    Ok(ConstructResponse {
        urn: component.urn,
        state: Some(encode_struct(&output_map)),
        ..Default::default()
    })
}

fn with_pipeline_tag(args: &SecurePipelineArgs, name: &str) -> Tags {
    let mut tags = args.tags.clone().unwrap_or_default();
    tags.insert(PIPELINE_KEY.into(), name.into());
    tags
}

/// Registers every child in dependency order and collects the outputs.
async fn assemble(
    children: &Children<'_>,
    args: &SecurePipelineArgs,
    aws: &AwsContext,
    project: &str,
    stack: &str,
    log: &EngineLog,
) -> Result<SecurePipelineOutputs, Status> {
    let names = Names::new(project, stack, children.name);
    let arns = aws.arns();
    let tags = with_pipeline_tag(args, children.name);
    let region = aws.region.clone();

    // 1. The key and the connection do not depend on anything.
    let key_inputs = KeyInputs {
        name_prefix: names.prefix("key"),
        alias_name: None,
        description: format!("Encrypts the artifacts, logs and notifications of pipeline {}", children.name),
        enable_key_rotation: true,
        service_principals: vec![format!("logs.{region}.amazonaws.com"), "events.amazonaws.com".into()],
        policy: None,
        tags: tags.clone(),
    };
    let connection_inputs = ConnectionInputs {
        name_prefix: names.prefix("source"),
        connection_name: None,
        provider_type: args.source.provider.unwrap_or(SourceProvider::GitHub),
        host_arn: args.source.host_arn.clone(),
        existing_arn: args.source.connection_arn.clone(),
        tags: tags.clone(),
    };
    let (key, connection) = tokio::try_join!(
        async {
            match &args.kms_key_arn {
                Some(_) => Ok(None),
                None => children.add::<Key>("key", &key_inputs, &[]).await.map(Some),
            }
        },
        children.add::<Connection>("source", &connection_inputs, &[]),
    )?;
    let key_arn = match (&args.kms_key_arn, &key) {
        (Some(existing), _) => existing.clone(),
        (None, Some(created)) => output(created, "arn"),
        (None, None) => UNKNOWN.to_string(),
    };
    let key_deps: Vec<&Registered> = key.iter().collect();
    let connection_arn = output(&connection, "arn");
    let connection_status = output(&connection, "status");
    let activation_url = output(&connection, "activationUrl");
    if connection_status == "PENDING" {
        log.warn(
            &connection.urn,
            &format!(
                "the source connection {connection_arn} is PENDING: a person must activate it once in the console ({activation_url}) before the pipeline can read {}",
                args.source.repository
            ),
        );
    }

    // 2. Storage: the artifact bucket, the build's log group, the topic.
    let bucket_inputs = ArtifactBucketInputs {
        name_prefix: names.prefix("artifacts"),
        bucket_name: None,
        region: Some(region.clone()),
        kms_key_arn: key_arn.clone(),
        expire_after_days: args.artifact_retention_days.unwrap_or(plan::DEFAULT_ARTIFACT_RETENTION_DAYS),
        force_destroy: args.force_destroy.unwrap_or(false),
        versioning: true,
        block_public_access: true,
        bucket_owner_enforced: true,
        secure_transport_policy: true,
        tags: tags.clone(),
    };
    let log_inputs = LogGroupInputs {
        name_prefix: names.prefix("build"),
        log_group_name: None,
        retention_in_days: args.log_retention_days.unwrap_or(plan::DEFAULT_LOG_RETENTION_DAYS),
        kms_key_arn: key_arn.clone(),
        tags: tags.clone(),
    };
    let rule_pattern = arns.events_rule(&names.pattern("notify", &naming::EVENT_RULE));
    let topic_inputs = TopicInputs {
        name_prefix: names.prefix("notify"),
        topic_name: None,
        kms_key_arn: key_arn.clone(),
        publisher_rule_arns: vec![rule_pattern],
        emails: args.notifications.as_ref().and_then(|n| n.emails.clone()).unwrap_or_default(),
        policy: None,
        tags: tags.clone(),
    };
    let (bucket, build_logs, topic) = tokio::try_join!(
        children.add::<ArtifactBucket>("artifacts", &bucket_inputs, &key_deps),
        children.add::<LogGroup>("build-logs", &log_inputs, &key_deps),
        children.add::<Topic>("notifications", &topic_inputs, &key_deps),
    )?;
    let bucket_name = output(&bucket, "bucketName");
    let bucket_arn = output(&bucket, "arn");
    let build_log_group = output(&build_logs, "logGroupName");
    let topic_arn = output(&topic, "arn");

    // 3. The build's role, then its project.
    let build_role_inputs = RoleInputs {
        name_prefix: names.prefix("build"),
        role_name: None,
        description: format!("CodeBuild role of pipeline {}", children.name),
        service: "codebuild.amazonaws.com".into(),
        source_arn: Some(arns.codebuild_project(&names.pattern("build", &naming::CODEBUILD_PROJECT))),
        trust_policy: None,
        managed_policy_arns: Vec::new(),
        policies: BTreeMap::from([(
            "build".to_string(),
            plan::build_role_policy(&arns, &bucket_arn, &key_arn, &build_log_group, args.build.environment.as_ref()),
        )]),
        tags: tags.clone(),
    };
    let mut role_deps = key_deps.clone();
    role_deps.extend([&bucket, &build_logs]);
    let build_role = children.add::<Role>("build-role", &build_role_inputs, &role_deps).await?;
    let project_inputs = BuildProjectInputs {
        name_prefix: names.prefix("build"),
        project_name: None,
        description: format!("Build stage of pipeline {}", children.name),
        service_role_arn: output(&build_role, "arn"),
        kms_key_arn: key_arn.clone(),
        log_group_name: build_log_group.clone(),
        image: plan::wire_name(&plan::image(&args.build)),
        compute_type: plan::wire_name(&plan::compute_type(&args.build)),
        privileged_mode: args.build.docker.unwrap_or(false),
        timeout_in_minutes: args.build.timeout_minutes.unwrap_or(plan::DEFAULT_TIMEOUT_MINUTES),
        queued_timeout_in_minutes: args
            .build
            .queued_timeout_minutes
            .unwrap_or(plan::DEFAULT_QUEUED_TIMEOUT_MINUTES),
        buildspec: plan::build_buildspec(&args.build),
        environment_variables: plan::project_variables(args.build.environment.as_ref()),
        tags: tags.clone(),
    };
    let mut project_deps = key_deps.clone();
    project_deps.extend([&build_role, &build_logs]);
    let project = children.add::<BuildProject>("build", &project_inputs, &project_deps).await?;
    let project_name = output(&project, "projectName");

    // 4. The pipeline's role, then the pipeline.
    let pipeline_role_inputs = RoleInputs {
        name_prefix: names.prefix("pipeline"),
        role_name: None,
        description: format!("CodePipeline role of pipeline {}", children.name),
        service: "codepipeline.amazonaws.com".into(),
        source_arn: Some(arns.codepipeline(&names.pattern("pipeline", &naming::PIPELINE))),
        trust_policy: None,
        managed_policy_arns: Vec::new(),
        policies: BTreeMap::from([(
            "pipeline".to_string(),
            plan::pipeline_role_policy(
                &bucket_arn,
                &key_arn,
                &connection_arn,
                &args.source.repository,
                vec![output(&project, "arn")],
                &topic_arn,
            ),
        )]),
        tags: tags.clone(),
    };
    let mut pipeline_role_deps = key_deps.clone();
    pipeline_role_deps.extend([&bucket, &connection, &project, &topic]);
    let pipeline_role = children
        .add::<Role>("pipeline-role", &pipeline_role_inputs, &pipeline_role_deps)
        .await?;
    let pipeline_inputs = PipelineInputs {
        name_prefix: names.prefix("pipeline"),
        pipeline_name: None,
        role_arn: output(&pipeline_role, "arn"),
        artifact_stores: BTreeMap::from([(
            region.clone(),
            ArtifactStore {
                bucket_name: bucket_name.clone(),
                kms_key_arn: key_arn.clone(),
            },
        )]),
        stages: plan::stages(args, &connection_arn, &project_name),
        triggers: vec![plan::trigger(args)],
        execution_mode: plan::wire_name(&args.execution_mode.unwrap_or(args::ExecutionMode::Queued)),
        tags: tags.clone(),
    };
    let mut pipeline_deps = key_deps.clone();
    pipeline_deps.extend([&pipeline_role, &bucket, &connection, &project]);
    let pipeline = children.add::<Pipeline>("pipeline", &pipeline_inputs, &pipeline_deps).await?;
    let pipeline_name = output(&pipeline, "pipelineName");
    let pipeline_arn = output(&pipeline, "arn");

    // 5. Notifications, and the schedule through its own role.
    let notify_inputs = EventRuleInputs {
        name_prefix: names.prefix("notify"),
        rule_name: None,
        description: format!("Notifies on executions of pipeline {}", children.name),
        schedule_expression: None,
        pipeline_state_change: Some(PipelineStateChange {
            pipeline_name: pipeline_name.clone(),
            states: plan::notification_states(args),
        }),
        event_pattern: None,
        enabled: true,
        targets: vec![RuleTarget {
            id: "notification-topic".into(),
            arn: topic_arn.clone(),
            role_arn: None,
        }],
        tags: tags.clone(),
    };
    let schedule = async {
        let Some(expression) = &args.schedule else {
            return Ok::<_, Status>(None);
        };
        let events_role_inputs = RoleInputs {
            name_prefix: names.prefix("events"),
            role_name: None,
            description: format!("Lets EventBridge start pipeline {}", children.name),
            service: "events.amazonaws.com".into(),
            source_arn: Some(arns.events_rule(&names.pattern("schedule", &naming::EVENT_RULE))),
            trust_policy: None,
        managed_policy_arns: Vec::new(),
            policies: BTreeMap::from([("start-pipeline".to_string(), plan::events_role_policy(&pipeline_arn))]),
            tags: tags.clone(),
        };
        let events_role = children.add::<Role>("events-role", &events_role_inputs, &[&pipeline]).await?;
        let schedule_inputs = EventRuleInputs {
            name_prefix: names.prefix("schedule"),
            rule_name: None,
            description: format!("Starts pipeline {} on a schedule", children.name),
            schedule_expression: Some(expression.clone()),
            pipeline_state_change: None,
            event_pattern: None,
            enabled: true,
            targets: vec![RuleTarget {
                id: "pipeline".into(),
                arn: pipeline_arn.clone(),
                role_arn: Some(output(&events_role, "arn")),
            }],
            tags: tags.clone(),
        };
        children
            .add::<EventRule>("schedule", &schedule_inputs, &[&pipeline, &events_role])
            .await?;
        Ok(Some(output(&events_role, "arn")))
    };
    let notify_deps = [&pipeline, &topic];
    let (_notify, event_bridge_role_arn) = tokio::try_join!(
        children.add::<EventRule>("notify", &notify_inputs, &notify_deps),
        schedule,
    )?;

    let mut role_arns = BTreeMap::from([
        ("build".to_string(), output(&build_role, "arn")),
        ("pipeline".to_string(), output(&pipeline_role, "arn")),
    ]);
    if let Some(arn) = &event_bridge_role_arn {
        role_arns.insert("events".into(), arn.clone());
    }
    Ok(SecurePipelineOutputs {
        pipeline_name,
        pipeline_arn,
        pipeline_url: output(&pipeline, "url"),
        connection_arn,
        connection_status,
        connection_activation_url: activation_url,
        artifact_bucket_name: bucket_name,
        kms_key_arn: key_arn,
        notification_topic_arn: topic_arn,
        event_bridge_role_arn,
        build_project_names: vec![project_name],
        log_group_names: vec![build_log_group],
        role_arns,
    })
}
