//! Construct: validates SecurePipeline's inputs, then registers its
//! children through the engine (which calls back into this provider to
//! create each) in dependency order, independent ones in parallel.
//! Nothing is kept in memory between calls: destroy and refresh never call
//! Construct.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::try_join_all;
use tonic::Status;

use super::args::{
    self, Deployment, EnvironmentVariable, SecurePipelineArgs, SecurePipelineOutputs,
    SourceProvider,
};
use super::deploy::{self, Store};
use super::graph::ChildGraph;
use super::plan::{self, Names};
use super::{brought, validate};
use crate::aws::AwsContext;
use crate::engine_log::EngineLog;
use crate::iam::PolicyDocument;
use crate::naming;
use crate::proto::pulumirpc::{alias, Alias, ConstructRequest, ConstructResponse};
use crate::protocol::json::UNKNOWN;
use crate::protocol::monitor::{
    ChildDefaults, CustomTimeouts, Monitor, Registered, Registration, ResourceOptions,
};
use crate::protocol::secrets::SecretValues;
use crate::protocol::server::parse_urn;
use crate::protocol::value::{decode_struct, encode_struct, PropertyMap, PropertyValue};
use crate::resource::{from_typed, to_json, CheckContext, CheckFailure, CustomResource, OpContext};
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

/// All check failures as one error the engine shows at preview, with no
/// secret echoed.
fn invalid(name: &str, failures: Vec<CheckFailure>, secrets: &SecretValues) -> Status {
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
    Status::invalid_argument(secrets.redact(&format!(
        "SecurePipeline `{name}` has invalid inputs:\n{}",
        lines.join("\n")
    )))
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
    /// The component's name: children are named `<name>-<purpose>`.
    name: &'a str,
    /// The name physical names, tags and descriptions derive from: the
    /// component's first name, so that renaming it with an alias keeps
    /// every child as it is.
    identity: &'a str,
    /// Every secret the component was given: a child input holding one is
    /// stored as a secret, and so are the outputs derived from it.
    secrets: SecretValues,
    /// Options set on the component that its children follow.
    options: ResourceOptions,
    /// Which children the component has and which each depends on.
    graph: ChildGraph,
    /// The URNs of the children registered so far, by purpose.
    registered: Mutex<BTreeMap<String, String>>,
}

impl Children<'_> {
    /// Registers the child `purpose`, depending on the children the graph
    /// names for it, each of which must be registered already.
    async fn add<R: CustomResource>(
        &self,
        purpose: &str,
        inputs: &R::Inputs,
    ) -> Result<Registered, Status> {
        let dependencies = self.dependency_urns(purpose)?;
        let json = to_json(inputs);
        let secret_keys = self.secrets.tainted_keys(&json);
        let additional_secret_outputs = secret_keys
            .iter()
            .flat_map(|key| derived_outputs(R::TYPE, key))
            .collect();
        let registration = Registration {
            type_token: R::TYPE.to_string(),
            name: format!("{}-{purpose}", self.name),
            parent: self.parent.clone(),
            custom: true,
            inputs: from_typed(&json, &secret_keys),
            dependencies,
            additional_secret_outputs,
            options: child_options(&self.options, &json),
            ..Default::default()
        };
        let child = self.monitor.register(registration, self.defaults).await?;
        self.registered_urns()?
            .insert(purpose.to_string(), child.urn.clone());
        Ok(child)
    }

    fn dependency_urns(&self, purpose: &str) -> Result<BTreeSet<String>, Status> {
        let depends_on = self.graph.dependencies(purpose).ok_or_else(|| {
            Status::internal(format!(
                "SecurePipeline `{}` registers child `{purpose}`, which its graph of children lacks",
                self.name
            ))
        })?;
        let registered = self.registered_urns()?;
        depends_on
            .iter()
            .map(|dependency| {
                registered.get(dependency).cloned().ok_or_else(|| {
                    Status::internal(format!(
                        "SecurePipeline `{}` registers child `{purpose}` before `{dependency}`, which it depends on",
                        self.name
                    ))
                })
            })
            .collect()
    }

    fn registered_urns(&self) -> Result<MutexGuard<'_, BTreeMap<String, String>>, Status> {
        // Poisoned only if a registration panicked while holding the lock.
        self.registered
            .lock()
            .map_err(|_| Status::internal("the record of registered children is unusable"))
    }
}

/// The outputs of a child that repeat an input: stored as secrets when
/// the input is.
fn derived_outputs(type_token: &str, input: &str) -> Vec<String> {
    let mut outputs = vec![input.to_string()];
    // Subscriptions name the addresses in `emails`.
    if type_token == Topic::TYPE && input == "emails" {
        outputs.push("subscriptions".into());
    }
    outputs
}

/// The component's options as one child takes them. Aliases are not
/// passed: the engine derives each child's from the component's.
/// `ignoreChanges` names component inputs; a child ignores those that are
/// also its own inputs (such as `tags`).
fn child_options(component: &ResourceOptions, child_inputs: &serde_json::Value) -> ResourceOptions {
    let has_input = |path: &str| {
        let top = path.split(['.', '[']).next().unwrap_or_default();
        child_inputs.get(top).is_some()
    };
    ResourceOptions {
        ignore_changes: component
            .ignore_changes
            .iter()
            .filter(|path| has_input(path))
            .cloned()
            .collect(),
        aliases: Vec::new(),
        ..component.clone()
    }
}

/// The resource options the engine passed with the Construct call.
fn component_options(request: &ConstructRequest) -> ResourceOptions {
    ResourceOptions {
        protect: request.protect,
        retain_on_delete: request.retain_on_delete,
        deleted_with: request.deleted_with.clone(),
        custom_timeouts: request.custom_timeouts.as_ref().map(|t| CustomTimeouts {
            create: t.create.clone(),
            update: t.update.clone(),
            delete: t.delete.clone(),
        }),
        ignore_changes: request.ignore_changes.clone(),
        aliases: request.aliases.clone(),
    }
}

/// The name the component's children derive their physical names from:
/// the name in its first alias (an earlier URN, or a spec naming the
/// earlier name) when it has one.
fn identity_name<'a>(name: &'a str, aliases: &'a [Alias]) -> &'a str {
    let earlier = aliases.first().and_then(|alias| match &alias.alias {
        Some(alias::Alias::Urn(urn)) => Some(parse_urn(urn).1),
        Some(alias::Alias::Spec(spec)) => Some(spec.name.as_str()),
        None => None,
    });
    earlier
        .filter(|earlier| !earlier.is_empty())
        .unwrap_or(name)
}

pub async fn construct(
    request: ConstructRequest,
    aws: Option<Arc<AwsContext>>,
    version: &str,
    log: &EngineLog,
) -> Result<ConstructResponse, Status> {
    let name = request.name.clone();
    let inputs = match &request.inputs {
        Some(inputs) => {
            decode_struct(inputs).map_err(|err| Status::invalid_argument(err.to_string()))?
        }
        None => PropertyMap::new(),
    };
    let check = CheckContext {
        name: &name,
        random_seed: &[],
        aws: aws.as_deref(),
    };
    let secrets = SecretValues::of(&inputs);
    let (args, typed) =
        validate::check(&check, &inputs).map_err(|failures| invalid(&name, failures, &secrets))?;
    let aws = aws.ok_or_else(|| {
        Status::failed_precondition(
            "the securepipeline provider must be configured before a SecurePipeline is constructed",
        )
    })?;
    // A key or connection the user brings is checked before anything is
    // registered, so that a preview already fails on it.
    let early = OpContext {
        aws: &aws,
        urn: "",
        log,
    };
    let failures = brought::check(&early, &args, &typed.secret_paths).await;
    if !failures.is_empty() {
        return Err(invalid(&name, failures, &secrets));
    }

    let monitor = Monitor::connect(&request.monitor_endpoint).await?;
    let providers: BTreeMap<String, String> = request.providers.clone().into_iter().collect();
    let defaults = ChildDefaults {
        version: version.to_string(),
        plugin_download_url: PLUGIN_DOWNLOAD_URL.to_string(),
        provider: providers.get(PACKAGE).cloned(),
        providers,
    };
    let options = component_options(&request);
    let component = monitor
        .register(
            Registration {
                type_token: COMPONENT_TYPE.to_string(),
                name: name.clone(),
                parent: request.parent.clone(),
                custom: false,
                dependencies: request.dependencies.iter().cloned().collect(),
                options: options.clone(),
                ..Default::default()
            },
            &defaults,
        )
        .await?;

    for note in plan::defaulted_notes(&args) {
        log.info(&component.urn, &note);
    }

    let children = Children {
        monitor: &monitor,
        defaults: &defaults,
        parent: component.urn.clone(),
        name: &name,
        identity: identity_name(&name, &request.aliases),
        secrets,
        options,
        graph: ChildGraph::plan(&args, &aws.region),
        registered: Mutex::new(BTreeMap::new()),
    };
    let outputs = assemble(
        &children,
        &args,
        &aws,
        &request.project,
        &request.stack,
        log,
    )
    .await?;

    let outputs = to_json(&outputs);
    let output_map = from_typed(&outputs, &children.secrets.tainted_keys(&outputs));
    monitor
        .register_outputs(&component.urn, &output_map)
        .await?;
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

/// A region's artifact store: the bucket and the key encrypting it.
struct RegionStore {
    bucket_name: String,
    bucket_arn: String,
    key_arn: String,
}

/// CodeBuild refuses project descriptions longer than this.
const MAX_PROJECT_DESCRIPTION: usize = 255;

fn project_description(text: String) -> String {
    text.chars().take(MAX_PROJECT_DESCRIPTION).collect()
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
    let names = Names::new(project, stack, children.identity);
    // Names policies refer to are chosen now, so that every trust and
    // resource policy names exact ARNs.
    let pipeline_name = names.name("pipeline", &naming::PIPELINE);
    let project_name_of = |purpose: &str| names.name(purpose, &naming::CODEBUILD_PROJECT);
    let notify_rule_name = names.name("notify", &naming::EVENT_RULE);
    let arns = aws.arns();
    let tags = with_pipeline_tag(args, children.identity);
    let region = aws.region.clone();
    let deployments = args.deployments.as_deref().unwrap_or_default();
    // Stages whose Preview action runs in its own project, role and log
    // group, before the approval.
    let previews: Vec<&args::Deployment> = deployments
        .iter()
        .filter(|d| deploy::has_preview(d))
        .collect();
    // Regions other than the pipeline's that stages run in: each gets its
    // own key and artifact bucket.
    let extra_regions = deploy::extra_regions(args, &region);
    // What production stages own, denied to every other role.
    let protected = deploy::Protected::of(&arns, deployments);
    // Children in the pipeline's region carry no region input, as before
    // cross-region pipelines existed.
    let region_input = |r: &str| (r != region).then(|| r.to_string());

    // The exact log groups of each region, which that region's key lets
    // CloudWatch Logs use it for.
    let log_group_arns_in = |r: &str| -> Vec<String> {
        let mut purposes = vec![];
        if r == region {
            purposes.push("build".to_string());
        }
        for d in deployments
            .iter()
            .filter(|d| deploy::region(d, &region) == r)
        {
            purposes.push(deploy::purpose(d));
            if deploy::has_preview(d) {
                purposes.push(deploy::preview_purpose(d));
            }
        }
        purposes
            .iter()
            .map(|p| arns.in_region(r).log_group(&names.log_group(p)))
            .collect()
    };

    // 1. The keys and the connection do not depend on anything.
    let key_inputs = KeyInputs {
        name_prefix: names.prefix("key"),
        alias_name: None,
        description: format!(
            "Encrypts the artifacts, logs and notifications of pipeline {}",
            children.identity
        ),
        existing_arn: args.kms_key_arn.clone(),
        region: None,
        enable_key_rotation: true,
        enabled: true,
        service_principals: vec![
            format!("logs.{region}.amazonaws.com"),
            "events.amazonaws.com".into(),
        ],
        // EventBridge encrypts for the notification rule only.
        service_scopes: BTreeMap::from([
            (
                format!("logs.{region}.amazonaws.com"),
                log_group_arns_in(&region),
            ),
            (
                "events.amazonaws.com".to_string(),
                vec![arns.events_rule(&notify_rule_name)],
            ),
        ]),
        policy: None,
        tags: tags.clone(),
    };
    let regional_key_inputs: Vec<KeyInputs> = extra_regions
        .iter()
        .map(|r| KeyInputs {
            name_prefix: names.prefix(&format!("key-{r}")),
            alias_name: None,
            description: format!(
                "Encrypts the {r} artifacts and logs of pipeline {}",
                children.identity
            ),
            existing_arn: None,
            region: Some(r.clone()),
            enable_key_rotation: true,
            enabled: true,
            service_principals: vec![format!("logs.{r}.amazonaws.com")],
            service_scopes: BTreeMap::from([(
                format!("logs.{r}.amazonaws.com"),
                log_group_arns_in(r),
            )]),
            policy: None,
            tags: tags.clone(),
        })
        .collect();
    let connection_inputs = ConnectionInputs {
        name_prefix: names.prefix("source"),
        connection_name: None,
        provider_type: args.source.provider.unwrap_or(SourceProvider::GitHub),
        host_arn: args.source.host_arn.clone(),
        existing_arn: args.source.connection_arn.clone(),
        tags: tags.clone(),
    };
    // A key the user brings is a child too: it carries the pipeline's
    // statements into the key's policy, and takes them out again on destroy.
    let (key, regional_keys, connection) = tokio::try_join!(
        children.add::<Key>("key", &key_inputs),
        try_join_all(extra_regions.iter().zip(&regional_key_inputs).map(
            |(r, inputs)| async move { children.add::<Key>(&format!("key-{r}"), inputs).await }
        )),
        children.add::<Connection>("source", &connection_inputs),
    )?;
    let key_arn = args
        .kms_key_arn
        .clone()
        .unwrap_or_else(|| output(&key, "arn"));
    // Per region: the key's ARN.
    let mut key_arns = BTreeMap::from([(region.clone(), key_arn.clone())]);
    for (r, created) in extra_regions.iter().zip(&regional_keys) {
        key_arns.insert(r.clone(), output(created, "arn"));
    }
    let key_arn_in = |r: &str| {
        key_arns
            .get(r)
            .cloned()
            .unwrap_or_else(|| UNKNOWN.to_string())
    };
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

    // 2. Storage: an artifact bucket per region, a log group per project,
    // the topic.
    let bucket_inputs = |r: &str| ArtifactBucketInputs {
        name_prefix: if r == region {
            names.prefix("artifacts")
        } else {
            names.prefix(&format!("artifacts-{r}"))
        },
        bucket_name: None,
        region: Some(r.to_string()),
        kms_key_arn: key_arn_in(r),
        expire_after_days: args
            .artifact_retention_days
            .unwrap_or(plan::DEFAULT_ARTIFACT_RETENTION_DAYS),
        force_destroy: args.force_destroy.unwrap_or(false),
        versioning: true,
        block_public_access: true,
        bucket_owner_enforced: true,
        secure_transport_policy: true,
        bucket_key_enabled: true,
        tags: tags.clone(),
    };
    let home_bucket_inputs = bucket_inputs(&region);
    let regional_bucket_inputs: Vec<ArtifactBucketInputs> =
        extra_regions.iter().map(|r| bucket_inputs(r)).collect();
    let log_inputs = |purpose: &str, r: &str| LogGroupInputs {
        name_prefix: names.prefix(purpose),
        log_group_name: Some(names.log_group(purpose)),
        region: region_input(r),
        retention_in_days: args
            .log_retention_days
            .unwrap_or(plan::DEFAULT_LOG_RETENTION_DAYS),
        kms_key_arn: key_arn_in(r),
        tags: tags.clone(),
    };
    let build_log_inputs = log_inputs("build", &region);
    let deploy_log_inputs: Vec<LogGroupInputs> = deployments
        .iter()
        .map(|d| log_inputs(&deploy::purpose(d), deploy::region(d, &region)))
        .collect();
    let preview_log_inputs: Vec<LogGroupInputs> = previews
        .iter()
        .map(|d| log_inputs(&deploy::preview_purpose(d), deploy::region(d, &region)))
        .collect();
    let topic_inputs = TopicInputs {
        name_prefix: names.prefix("notify"),
        topic_name: None,
        kms_key_arn: key_arn.clone(),
        publisher_rule_arns: vec![arns.events_rule(&notify_rule_name)],
        emails: args
            .notifications
            .as_ref()
            .and_then(|n| n.emails.clone())
            .unwrap_or_default(),
        policy: None,
        tags: tags.clone(),
    };
    let (bucket, regional_buckets, build_logs, deploy_logs, preview_logs, topic) = tokio::try_join!(
        children.add::<ArtifactBucket>("artifacts", &home_bucket_inputs),
        try_join_all(extra_regions.iter().zip(&regional_bucket_inputs).map(
            |(r, inputs)| async move {
                children
                    .add::<ArtifactBucket>(&format!("artifacts-{r}"), inputs)
                    .await
            }
        )),
        children.add::<LogGroup>("build-logs", &build_log_inputs),
        try_join_all(
            deployments
                .iter()
                .zip(&deploy_log_inputs)
                .map(|(d, inputs)| async move {
                    children
                        .add::<LogGroup>(&format!("{}-logs", deploy::purpose(d)), inputs)
                        .await
                })
        ),
        try_join_all(
            previews
                .iter()
                .zip(&preview_log_inputs)
                .map(|(d, inputs)| async move {
                    children
                        .add::<LogGroup>(&format!("{}-logs", deploy::preview_purpose(d)), inputs)
                        .await
                })
        ),
        children.add::<Topic>("notifications", &topic_inputs),
    )?;
    let bucket_name = output(&bucket, "bucketName");
    let build_log_group = output(&build_logs, "logGroupName");
    let topic_arn = output(&topic, "arn");
    let mut stores = BTreeMap::from([(
        region.clone(),
        RegionStore {
            bucket_name: bucket_name.clone(),
            bucket_arn: output(&bucket, "arn"),
            key_arn: key_arn.clone(),
        },
    )]);
    for (r, created) in extra_regions.iter().zip(&regional_buckets) {
        stores.insert(
            r.clone(),
            RegionStore {
                bucket_name: output(created, "bucketName"),
                bucket_arn: output(created, "arn"),
                key_arn: key_arn_in(r),
            },
        );
    }
    let store_in = |r: &str| {
        stores
            .get(r)
            .map(|s| Store {
                bucket_arn: &s.bucket_arn,
                key_arn: &s.key_arn,
                pipeline_name: &pipeline_name,
            })
            .unwrap_or(Store {
                bucket_arn: UNKNOWN,
                key_arn: UNKNOWN,
                pipeline_name: &pipeline_name,
            })
    };
    let deploy_log_groups: Vec<String> = deploy_logs
        .iter()
        .map(|l| output(l, "logGroupName"))
        .collect();
    let preview_log_groups: Vec<String> = preview_logs
        .iter()
        .map(|l| output(l, "logGroupName"))
        .collect();

    // 3. The roles: the build's and one per stage, each from grants only.
    let codebuild_role =
        |purpose: &str, r: &str, description: String, policy: (&str, PolicyDocument)| RoleInputs {
            name_prefix: names.prefix(purpose),
            role_name: None,
            description,
            service: "codebuild.amazonaws.com".into(),
            source_arn: Some(
                arns.in_region(r)
                    .codebuild_project(&project_name_of(purpose)),
            ),
            trust_policy: None,
            managed_policy_arns: Vec::new(),
            policies: BTreeMap::from([(policy.0.to_string(), policy.1)]),
            tags: tags.clone(),
        };
    let build_role_inputs = codebuild_role(
        "build",
        &region,
        format!("CodeBuild role of pipeline {}", children.identity),
        (
            "build",
            plan::build_role_policy(
                &arns,
                store_in(&region),
                &build_log_group,
                args.build.environment.as_ref(),
                &protected,
            ),
        ),
    );
    let deploy_role_inputs: Vec<RoleInputs> = deployments
        .iter()
        .enumerate()
        .zip(&deploy_log_groups)
        .map(|((index, d), log_group)| {
            let r = deploy::region(d, &region);
            codebuild_role(
                &deploy::purpose(d),
                r,
                format!(
                    "CodeBuild role of stage {} of pipeline {}",
                    d.name, children.identity
                ),
                (
                    "deploy",
                    deploy::role_policy(
                        &arns.in_region(r),
                        store_in(r),
                        log_group,
                        (index, d),
                        &protected,
                    ),
                ),
            )
        })
        .collect();
    let preview_role_inputs: Vec<RoleInputs> = previews
        .iter()
        .zip(&preview_log_groups)
        .map(|(d, log_group)| {
            let r = deploy::region(d, &region);
            codebuild_role(
                &deploy::preview_purpose(d),
                r,
                format!(
                    "CodeBuild role of the pre-approval preview of stage {} of pipeline {}",
                    d.name, children.identity
                ),
                (
                    "preview",
                    deploy::preview_role_policy(
                        &arns.in_region(r),
                        store_in(r),
                        log_group,
                        d,
                        &protected,
                    ),
                ),
            )
        })
        .collect();
    let (build_role, deploy_roles, preview_roles) =
        tokio::try_join!(
            children.add::<Role>("build-role", &build_role_inputs),
            try_join_all(deployments.iter().zip(&deploy_role_inputs).map(
                |(d, inputs)| async move {
                    children
                        .add::<Role>(&format!("{}-role", deploy::purpose(d)), inputs)
                        .await
                }
            )),
            try_join_all(
                previews
                    .iter()
                    .zip(&preview_role_inputs)
                    .map(|(d, inputs)| async move {
                        children
                            .add::<Role>(&format!("{}-role", deploy::preview_purpose(d)), inputs)
                            .await
                    })
            ),
        )?;

    // 4. The projects: the build, then one per stage in its region, with
    // the build's image and compute type.
    let project_inputs = BuildProjectInputs {
        name_prefix: names.prefix("build"),
        project_name: Some(project_name_of("build")),
        region: None,
        description: project_description(format!("Build stage of pipeline {}", children.identity)),
        service_role_arn: output(&build_role, "arn"),
        kms_key_arn: key_arn.clone(),
        log_group_name: build_log_group.clone(),
        image: plan::wire_name(&plan::image(&args.build)),
        compute_type: plan::wire_name(&plan::compute_type(&args.build)),
        privileged_mode: args.build.docker.unwrap_or(false),
        timeout_in_minutes: args
            .build
            .timeout_minutes
            .unwrap_or(plan::DEFAULT_TIMEOUT_MINUTES),
        queued_timeout_in_minutes: args
            .build
            .queued_timeout_minutes
            .unwrap_or(plan::DEFAULT_QUEUED_TIMEOUT_MINUTES),
        buildspec: plan::build_buildspec(&args.build),
        environment_variables: plan::project_variables(args.build.environment.as_ref()),
        tags: tags.clone(),
    };
    // A stage's project: in the stage's region, under its own role and log
    // group, with the build's image and compute type.
    let stage_project =
        |d: &Deployment,
         role: &Registered,
         log_group: &String,
         purpose: String,
         description: String,
         buildspec: String,
         environment: Option<&BTreeMap<String, EnvironmentVariable>>| {
            let r = deploy::region(d, &region);
            BuildProjectInputs {
                name_prefix: names.prefix(&purpose),
                project_name: Some(project_name_of(&purpose)),
                region: region_input(r),
                description: project_description(description),
                service_role_arn: output(role, "arn"),
                kms_key_arn: key_arn_in(r),
                log_group_name: log_group.clone(),
                privileged_mode: false,
                timeout_in_minutes: d.timeout_minutes.unwrap_or(plan::DEFAULT_TIMEOUT_MINUTES),
                buildspec,
                environment_variables: plan::project_variables(environment),
                ..project_inputs.clone()
            }
        };
    let deploy_project_inputs: Vec<BuildProjectInputs> = deployments
        .iter()
        .zip(&deploy_roles)
        .zip(&deploy_log_groups)
        .map(|((d, role), log_group)| {
            stage_project(
                d,
                role,
                log_group,
                deploy::purpose(d),
                format!(
                    "Deployment stage {} of pipeline {}",
                    d.name, children.identity
                ),
                deploy::buildspec(d),
                d.environment.as_ref(),
            )
        })
        .collect();
    let preview_project_inputs: Vec<BuildProjectInputs> = previews
        .iter()
        .zip(&preview_roles)
        .zip(&preview_log_groups)
        .map(|((d, role), log_group)| {
            stage_project(
                d,
                role,
                log_group,
                deploy::preview_purpose(d),
                format!(
                    "Preview before approval of stage {} of pipeline {} (read-only)",
                    d.name, children.identity
                ),
                deploy::preview_buildspec(d).unwrap_or_default(),
                Some(&deploy::preview_environment(d)),
            )
        })
        .collect();
    let (project, deploy_projects, preview_projects) =
        tokio::try_join!(
            children.add::<BuildProject>("build", &project_inputs),
            try_join_all(deployments.iter().zip(&deploy_project_inputs).map(
                |(d, inputs)| async move {
                    children
                        .add::<BuildProject>(&deploy::purpose(d), inputs)
                        .await
                }
            )),
            try_join_all(previews.iter().zip(&preview_project_inputs).map(
                |(d, inputs)| async move {
                    children
                        .add::<BuildProject>(&deploy::preview_purpose(d), inputs)
                        .await
                }
            )),
        )?;
    let project_name = output(&project, "projectName");
    let deploy_project_names: Vec<String> = deploy_projects
        .iter()
        .map(|p| output(p, "projectName"))
        .collect();
    let preview_project_names: Vec<String> = preview_projects
        .iter()
        .map(|p| output(p, "projectName"))
        .collect();

    // 5. The pipeline's role (every region's store, every project), then
    // the pipeline: Source, Build, then each stage in order.
    let pipeline_stores: BTreeMap<String, Store<'_>> =
        stores.keys().map(|r| (r.clone(), store_in(r))).collect();
    let pipeline_role_inputs = RoleInputs {
        name_prefix: names.prefix("pipeline"),
        role_name: None,
        description: format!("CodePipeline role of pipeline {}", children.identity),
        service: "codepipeline.amazonaws.com".into(),
        source_arn: Some(arns.codepipeline(&pipeline_name)),
        trust_policy: None,
        managed_policy_arns: Vec::new(),
        policies: BTreeMap::from([(
            "pipeline".to_string(),
            plan::pipeline_role_policy(
                &region,
                &pipeline_stores,
                &connection_arn,
                &args.source.repository,
                std::iter::once(&project)
                    .chain(&deploy_projects)
                    .chain(&preview_projects)
                    .map(|p| output(p, "arn"))
                    .collect(),
                &topic_arn,
            ),
        )]),
        tags: tags.clone(),
    };
    let pipeline_role = children
        .add::<Role>("pipeline-role", &pipeline_role_inputs)
        .await?;
    let mut stages = plan::stages(args, &connection_arn, &project_name);
    let mut preview_names = preview_project_names.iter().zip(&preview_log_groups);
    for (((index, d), project_name), log_group) in deployments
        .iter()
        .enumerate()
        .zip(&deploy_project_names)
        .zip(&deploy_log_groups)
    {
        // `previews` keeps the stages' order, so the next preview is this
        // stage's when it has one.
        let preview = deploy::has_preview(d)
            .then(|| preview_names.next())
            .flatten()
            .map(|(project_name, log_group_name)| deploy::ProjectNames {
                project_name,
                log_group_name,
            });
        stages.push(deploy::stage(
            (index, d),
            &region,
            deploy::StageChildren {
                deploy: deploy::ProjectNames {
                    project_name,
                    log_group_name: log_group,
                },
                preview,
                topic_arn: &topic_arn,
            },
        ));
    }
    let pipeline_inputs = PipelineInputs {
        name_prefix: names.prefix("pipeline"),
        pipeline_name: Some(pipeline_name.clone()),
        role_arn: output(&pipeline_role, "arn"),
        artifact_stores: stores
            .iter()
            .map(|(r, s)| {
                (
                    r.clone(),
                    ArtifactStore {
                        bucket_name: s.bucket_name.clone(),
                        kms_key_arn: s.key_arn.clone(),
                    },
                )
            })
            .collect(),
        stages,
        triggers: vec![plan::trigger(args)],
        pull_request_triggers: Vec::new(),
        variables: Vec::new(),
        execution_mode: plan::wire_name(
            &args.execution_mode.unwrap_or(args::ExecutionMode::Queued),
        ),
        tags: tags.clone(),
    };
    let pipeline = children
        .add::<Pipeline>("pipeline", &pipeline_inputs)
        .await?;
    let pipeline_arn = output(&pipeline, "arn");

    // 5. Notifications, and the schedule through its own role.
    let notify_inputs = EventRuleInputs {
        name_prefix: names.prefix("notify"),
        rule_name: Some(notify_rule_name.clone()),
        description: format!("Notifies on executions of pipeline {}", children.identity),
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
        let schedule_rule_name = names.name("schedule", &naming::EVENT_RULE);
        let events_role_inputs = RoleInputs {
            name_prefix: names.prefix("events"),
            role_name: None,
            description: format!("Lets EventBridge start pipeline {}", children.identity),
            service: "events.amazonaws.com".into(),
            source_arn: Some(arns.events_rule(&schedule_rule_name)),
            trust_policy: None,
            managed_policy_arns: Vec::new(),
            policies: BTreeMap::from([(
                "start-pipeline".to_string(),
                plan::events_role_policy(&pipeline_arn),
            )]),
            tags: tags.clone(),
        };
        let events_role = children
            .add::<Role>("events-role", &events_role_inputs)
            .await?;
        let schedule_inputs = EventRuleInputs {
            name_prefix: names.prefix("schedule"),
            rule_name: Some(schedule_rule_name.clone()),
            description: format!("Starts pipeline {} on a schedule", children.identity),
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
            .add::<EventRule>("schedule", &schedule_inputs)
            .await?;
        Ok(Some(output(&events_role, "arn")))
    };
    let (_notify, event_bridge_role_arn) = tokio::try_join!(
        children.add::<EventRule>("notify", &notify_inputs),
        schedule,
    )?;

    let mut role_arns = BTreeMap::from([
        ("build".to_string(), output(&build_role, "arn")),
        ("pipeline".to_string(), output(&pipeline_role, "arn")),
    ]);
    for (d, role) in deployments.iter().zip(&deploy_roles) {
        role_arns.insert(deploy::purpose(d), output(role, "arn"));
    }
    for (d, role) in previews.iter().zip(&preview_roles) {
        role_arns.insert(deploy::preview_purpose(d), output(role, "arn"));
    }
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
        build_project_names: std::iter::once(project_name)
            .chain(deploy_project_names)
            .chain(preview_project_names)
            .collect(),
        log_group_names: std::iter::once(build_log_group)
            .chain(deploy_log_groups)
            .chain(preview_log_groups)
            .collect(),
        role_arns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn urn_alias(urn: &str) -> Alias {
        Alias {
            alias: Some(alias::Alias::Urn(urn.into())),
        }
    }

    #[test]
    fn children_keep_the_name_of_the_first_alias() {
        let earlier = "urn:pulumi:dev::app::securepipeline:index:SecurePipeline::web";
        assert_eq!(identity_name("site", &[urn_alias(earlier)]), "web");
        let spec = Alias {
            alias: Some(alias::Alias::Spec(spec_named("old"))),
        };
        assert_eq!(identity_name("site", &[spec]), "old");
        assert_eq!(identity_name("site", &[]), "site");
    }

    fn spec_named(name: &str) -> alias::Spec {
        alias::Spec {
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn children_take_every_option_but_aliases_and_foreign_ignore_changes() {
        let component = ResourceOptions {
            protect: Some(true),
            retain_on_delete: Some(true),
            deleted_with: "urn:pulumi:dev::app::aws:s3:Bucket::b".into(),
            custom_timeouts: Some(CustomTimeouts {
                create: "7m".into(),
                ..Default::default()
            }),
            ignore_changes: vec!["tags".into(), "notifications.emails[0]".into()],
            aliases: vec![urn_alias(
                "urn:pulumi:dev::app::securepipeline:index:SecurePipeline::web",
            )],
        };
        let child = child_options(&component, &json!({"tags": {}, "name": "x"}));
        assert_eq!(
            child,
            ResourceOptions {
                ignore_changes: vec!["tags".into()],
                aliases: vec![],
                ..component
            }
        );
    }
}
