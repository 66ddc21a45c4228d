//! The whole graph of a SecurePipeline's children, as a pure function of
//! its arguments, the caller identity and the component's options: every
//! child's type, name, inputs, options and dependencies, before anything is
//! registered. An input that takes what another child returns (an ARN AWS
//! assigns, a name chosen by its check) refers to that child's output; names
//! this plan chooses itself (the pipeline's, the projects', the log groups')
//! are literal, so that every policy names exact ARNs.

use std::collections::{BTreeMap, BTreeSet};

use super::args::{
    Deployment, ExecutionMode, SecurePipelineArgs, SecurePipelineOutputs, SourceProvider,
};
use super::deploy::{self, Protected, Store};
use super::gates;
use super::plan::{self, Names};
use super::variables;
use crate::aws::arn::Arns;
use crate::iam::PolicyDocument;
use crate::naming;
use crate::protocol::graph::{Declaration, Graph, GraphError, Input, OutputRef};
use crate::protocol::monitor::ResourceOptions;
use crate::resource::{to_json, CustomResource};
use crate::resources::access_log_bucket::{AccessLogBucket, AccessLogBucketInputs};
use crate::resources::artifact_bucket::{ArtifactBucket, ArtifactBucketInputs};
use crate::resources::build_project::{BuildProject, BuildProjectInputs};
use crate::resources::connection::{Connection, ConnectionInputs};
use crate::resources::event_rule::{EventRule, EventRuleInputs, RuleTarget};
use crate::resources::key::{Key, KeyInputs};
use crate::resources::log_group::{LogGroup, LogGroupInputs};
use crate::resources::pipeline::{ArtifactStore, Pipeline, PipelineInputs};
use crate::resources::role::{Role, RoleInputs};
use crate::resources::topic::{Topic, TopicInputs};
use crate::tags::{Tags, PIPELINE_KEY};

/// The purpose of the source connection, whose status the component
/// reports when it is registered.
pub const SOURCE: &str = "source";

/// What the plan takes besides the arguments.
pub struct Context<'a> {
    /// The component's name: children are named `<name>-<purpose>`.
    pub name: &'a str,
    /// The name physical names, tags and descriptions derive from: the
    /// component's first name, so that renaming it with an alias keeps
    /// every child as it is.
    pub identity: &'a str,
    pub project: &'a str,
    pub stack: &'a str,
    /// The caller's partition and account, in the pipeline's region.
    pub arns: Arns<'a>,
    /// Options set on the component that its children follow.
    pub options: &'a ResourceOptions,
}

/// The children, keyed by purpose, and the component's outputs in terms of
/// theirs.
#[derive(Debug)]
pub struct Plan {
    pub children: Graph,
    pub outputs: Input,
}

pub fn plan(args: &SecurePipelineArgs, ctx: &Context<'_>) -> Result<Plan, GraphError> {
    let mut planner = Planner::new(args, ctx);
    planner.keys_and_connection();
    planner.storage();
    planner.projects();
    planner.pipeline_role();
    planner.pipeline();
    planner.events();
    let outputs = Input::of(&to_json(&planner.outputs()));
    Ok(Plan {
        children: Graph::new(planner.children)?,
        outputs,
    })
}

/// A child's output, as its inputs and the component's outputs refer to it.
fn output(purpose: &str, key: &str) -> String {
    OutputRef::new(purpose, key).token()
}

fn arn(purpose: &str) -> OutputRef {
    OutputRef::new(purpose, "arn")
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

/// CodeBuild refuses project descriptions longer than this.
const MAX_PROJECT_DESCRIPTION: usize = 255;

fn project_description(text: String) -> String {
    text.chars().take(MAX_PROJECT_DESCRIPTION).collect()
}

/// Which of a stage's two CodeBuild projects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    Deploy,
    Preview,
}

/// A project of a stage: the deployment's, or the preview before its
/// approval.
struct StageProject<'a> {
    index: usize,
    deployment: &'a Deployment,
    run: Run,
    /// Its project, role and log group are named `<purpose>`,
    /// `<purpose>-role`, `<purpose>-logs`.
    purpose: String,
    region: &'a str,
}

struct Planner<'a> {
    args: &'a SecurePipelineArgs,
    ctx: &'a Context<'a>,
    names: Names,
    home: &'a str,
    tags: Tags,
    extra_regions: Vec<String>,
    /// Every stage's projects: deployments in order, then the previews in
    /// the order of their stages.
    stage_projects: Vec<StageProject<'a>>,
    /// What production stages own, denied to every other role.
    protected: Protected,
    pipeline_name: String,
    notify_rule_name: String,
    children: Vec<(String, Declaration)>,
}

impl<'a> Planner<'a> {
    fn new(args: &'a SecurePipelineArgs, ctx: &'a Context<'a>) -> Self {
        let names = Names::new(ctx.project, ctx.stack, ctx.identity);
        let home = ctx.arns.region;
        let deployments = args.deployments.as_deref().unwrap_or_default();
        let stage = |run: Run| {
            move |(index, d): (usize, &'a Deployment)| StageProject {
                index,
                deployment: d,
                run,
                purpose: match run {
                    Run::Deploy => deploy::purpose(d),
                    Run::Preview => deploy::preview_purpose(d),
                },
                region: deploy::region(d, home),
            }
        };
        let stage_projects = deployments
            .iter()
            .enumerate()
            .map(stage(Run::Deploy))
            .chain(
                deployments
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| deploy::has_preview(d))
                    .map(stage(Run::Preview)),
            )
            .collect();
        let mut tags = args.tags.clone().unwrap_or_default();
        tags.insert(PIPELINE_KEY.into(), ctx.identity.into());
        Self {
            args,
            ctx,
            pipeline_name: names.name("pipeline", &naming::PIPELINE),
            notify_rule_name: names.name("notify", &naming::EVENT_RULE),
            names,
            home,
            tags,
            extra_regions: deploy::extra_regions(args, home),
            stage_projects,
            protected: Protected::of(&ctx.arns, deployments),
            children: Vec::new(),
        }
    }

    /// Declares the child `purpose`, registered after the children `uses`
    /// names and those whose outputs its inputs refer to.
    fn add<R: CustomResource>(
        &mut self,
        purpose: &str,
        inputs: &R::Inputs,
        uses: &[String],
    ) -> &mut Declaration {
        let json = to_json(inputs);
        let mut child = Declaration::custom(R::TYPE, format!("{}-{purpose}", self.ctx.name), &json);
        child.options = child_options(self.ctx.options, &json);
        child.uses = uses.iter().cloned().collect();
        self.children.push((purpose.to_string(), child));
        let (_, added) = self.children.last_mut().expect("just pushed");
        added
    }

    fn identity(&self) -> &str {
        self.ctx.identity
    }

    /// The key of region `r`: the home region's is `key`, another region's
    /// carries its name.
    fn key_in(&self, r: &str) -> String {
        if r == self.home {
            "key".to_string()
        } else {
            format!("key-{r}")
        }
    }

    /// The artifact bucket of region `r`, named as its key is.
    fn bucket_in(&self, r: &str) -> String {
        if r == self.home {
            "artifacts".to_string()
        } else {
            format!("artifacts-{r}")
        }
    }

    /// The bucket receiving region `r`'s artifact bucket's access logs.
    fn access_logs_in(&self, r: &str) -> String {
        if r == self.home {
            "access-logs".to_string()
        } else {
            format!("access-logs-{r}")
        }
    }

    /// The ARN of region `r`'s key: the one the user brought, or the
    /// created key's.
    fn key_arn_in(&self, r: &str) -> String {
        match &self.args.kms_key_arn {
            Some(brought) if r == self.home => brought.clone(),
            _ => output(&self.key_in(r), "arn"),
        }
    }

    /// Region `r`'s artifact bucket and key, as a role's grants name them.
    fn store_arns(&self, r: &str) -> (String, String) {
        (output(&self.bucket_in(r), "arn"), self.key_arn_in(r))
    }

    /// Children in the pipeline's region carry no region input, as before
    /// cross-region pipelines existed.
    fn region_input(&self, r: &str) -> Option<String> {
        (r != self.home).then(|| r.to_string())
    }

    fn project_name(&self, purpose: &str) -> String {
        self.names.name(purpose, &naming::CODEBUILD_PROJECT)
    }

    /// The exact log groups of region `r`, which its key lets CloudWatch
    /// Logs use it for.
    fn log_group_arns_in(&self, r: &str) -> Vec<String> {
        let mut purposes = vec![];
        if r == self.home {
            purposes.push("build".to_string());
        }
        let stages = self.args.deployments.iter().flatten();
        for d in stages.filter(|d| deploy::region(d, self.home) == r) {
            purposes.push(deploy::purpose(d));
            if deploy::has_preview(d) {
                purposes.push(deploy::preview_purpose(d));
            }
        }
        let arns = self.ctx.arns.in_region(r);
        purposes
            .iter()
            .map(|p| arns.log_group(&self.names.log_group(p)))
            .collect()
    }

    /// The keys and the connection depend on nothing. A key the user brings
    /// is a child too: it carries the pipeline's statements into the key's
    /// policy, and takes them out again on destroy.
    fn keys_and_connection(&mut self) {
        let home = self.home.to_string();
        let arns = self.ctx.arns;
        let key = KeyInputs {
            name_prefix: self.names.prefix("key"),
            alias_name: None,
            description: format!(
                "Encrypts the artifacts, logs and notifications of pipeline {}",
                self.identity()
            ),
            existing_arn: self.args.kms_key_arn.clone(),
            region: None,
            enable_key_rotation: true,
            enabled: true,
            service_principals: vec![
                format!("logs.{home}.amazonaws.com"),
                "events.amazonaws.com".into(),
            ],
            // EventBridge encrypts for the notification rule only.
            service_scopes: BTreeMap::from([
                (
                    format!("logs.{home}.amazonaws.com"),
                    self.log_group_arns_in(&home),
                ),
                (
                    "events.amazonaws.com".to_string(),
                    vec![arns.events_rule(&self.notify_rule_name)],
                ),
            ]),
            policy: None,
            tags: self.tags.clone(),
        };
        self.add::<Key>("key", &key, &[]);
        for r in self.extra_regions.clone() {
            let key = KeyInputs {
                name_prefix: self.names.prefix(&format!("key-{r}")),
                alias_name: None,
                description: format!(
                    "Encrypts the {r} artifacts and logs of pipeline {}",
                    self.identity()
                ),
                existing_arn: None,
                region: Some(r.clone()),
                enable_key_rotation: true,
                enabled: true,
                service_principals: vec![format!("logs.{r}.amazonaws.com")],
                service_scopes: BTreeMap::from([(
                    format!("logs.{r}.amazonaws.com"),
                    self.log_group_arns_in(&r),
                )]),
                policy: None,
                tags: self.tags.clone(),
            };
            self.add::<Key>(&self.key_in(&r), &key, &[]);
        }
        let source = &self.args.source;
        let connection = ConnectionInputs {
            name_prefix: self.names.prefix(SOURCE),
            connection_name: None,
            provider_type: source.provider.unwrap_or(SourceProvider::GitHub),
            host_arn: source.host_arn.clone(),
            existing_arn: source.connection_arn.clone(),
            tags: self.tags.clone(),
        };
        self.add::<Connection>(SOURCE, &connection, &[]);
    }

    /// Storage, each encrypted with its region's key: an artifact bucket
    /// per region, a log group per project, the topic.
    fn storage(&mut self) {
        let regions: Vec<String> = std::iter::once(self.home.to_string())
            .chain(self.extra_regions.clone())
            .collect();
        for r in &regions {
            let bucket = ArtifactBucketInputs {
                name_prefix: self.names.prefix(&self.bucket_in(r)),
                bucket_name: None,
                region: Some(r.clone()),
                kms_key_arn: self.key_arn_in(r),
                expire_after_days: self
                    .args
                    .artifact_retention_days
                    .unwrap_or(plan::DEFAULT_ARTIFACT_RETENTION_DAYS),
                force_destroy: self.args.force_destroy.unwrap_or(false),
                versioning: true,
                block_public_access: true,
                bucket_owner_enforced: true,
                secure_transport_policy: true,
                bucket_key_enabled: true,
                tags: self.tags.clone(),
            };
            self.add::<ArtifactBucket>(&self.bucket_in(r), &bucket, &[self.key_in(r)]);
            // S3 delivers server access logs only within a region, so each
            // region's artifact bucket logs to a bucket of its own region.
            let access_logs = AccessLogBucketInputs {
                name_prefix: self.names.prefix(&self.access_logs_in(r)),
                bucket_name: None,
                region: Some(r.clone()),
                source_buckets: vec![output(&self.bucket_in(r), "bucketName")],
                expire_after_days: self
                    .args
                    .access_log_retention_days
                    .unwrap_or(plan::DEFAULT_ACCESS_LOG_RETENTION_DAYS),
                versioning: true,
                block_public_access: true,
                bucket_owner_enforced: true,
                delivery_policy: true,
                default_encryption: true,
                sources_logging: true,
                tags: self.tags.clone(),
            };
            self.add::<AccessLogBucket>(&self.access_logs_in(r), &access_logs, &[]);
        }
        let projects: Vec<(String, String)> = std::iter::once(("build".to_string(), self.home))
            .chain(
                self.stage_projects
                    .iter()
                    .map(|s| (s.purpose.clone(), s.region)),
            )
            .map(|(purpose, r)| (purpose, r.to_string()))
            .collect();
        for (purpose, r) in &projects {
            let logs = LogGroupInputs {
                name_prefix: self.names.prefix(purpose),
                log_group_name: Some(self.names.log_group(purpose)),
                region: self.region_input(r),
                retention_in_days: self
                    .args
                    .log_retention_days
                    .unwrap_or(plan::DEFAULT_LOG_RETENTION_DAYS),
                kms_key_arn: self.key_arn_in(r),
                tags: self.tags.clone(),
            };
            self.add::<LogGroup>(&format!("{purpose}-logs"), &logs, &[self.key_in(r)]);
        }
        let topic = TopicInputs {
            name_prefix: self.names.prefix("notify"),
            topic_name: None,
            kms_key_arn: self.key_arn_in(self.home),
            publisher_rule_arns: vec![self.ctx.arns.events_rule(&self.notify_rule_name)],
            emails: self
                .args
                .notifications
                .as_ref()
                .and_then(|n| n.emails.clone())
                .unwrap_or_default(),
            policy: None,
            tags: self.tags.clone(),
        };
        let uses = [self.key_in(self.home)];
        let topic = self.add::<Topic>("notifications", &topic, &uses);
        // Subscriptions name the addresses in `emails`.
        topic.echoed_outputs = BTreeMap::from([("emails".into(), vec!["subscriptions".into()])]);
    }

    /// The projects, each under a role of its own made from grants only,
    /// writing to its own log group in its region: the build, then each
    /// stage's, with the build's image and compute type.
    fn projects(&mut self) {
        let build = &self.args.build;
        let (bucket_arn, key_arn) = self.store_arns(self.home);
        let policy = plan::build_role_policy(
            &self.ctx.arns,
            Store {
                bucket_arn: &bucket_arn,
                key_arn: &key_arn,
                pipeline_name: &self.pipeline_name,
            },
            &self.names.log_group("build"),
            build.environment.as_ref(),
            &self.protected,
        );
        self.project(
            "build",
            self.home,
            format!("CodeBuild role of pipeline {}", self.identity()),
            ("build", policy),
        );
        let build_project = BuildProjectInputs {
            name_prefix: self.names.prefix("build"),
            project_name: Some(self.project_name("build")),
            region: None,
            description: project_description(format!(
                "Build stage of pipeline {}",
                self.identity()
            )),
            service_role_arn: output("build-role", "arn"),
            kms_key_arn: self.key_arn_in(self.home),
            log_group_name: self.names.log_group("build"),
            image: plan::wire_name(&plan::image(build)),
            compute_type: plan::wire_name(&plan::compute_type(build)),
            privileged_mode: build.docker.unwrap_or(false),
            timeout_in_minutes: build
                .timeout_minutes
                .unwrap_or(plan::DEFAULT_TIMEOUT_MINUTES),
            queued_timeout_in_minutes: build
                .queued_timeout_minutes
                .unwrap_or(plan::DEFAULT_QUEUED_TIMEOUT_MINUTES),
            buildspec: plan::build_buildspec(build),
            environment_variables: plan::project_variables(build.environment.as_ref()),
            tags: self.tags.clone(),
        };
        self.add::<BuildProject>(
            "build",
            &build_project,
            &[self.key_in(self.home), "build-logs".into()],
        );

        for stage in std::mem::take(&mut self.stage_projects) {
            self.stage_project(&stage, &build_project);
            self.stage_projects.push(stage);
        }
    }

    /// A stage's role and project: in the stage's region, under its own
    /// role and log group, with the build's image and compute type.
    fn stage_project(&mut self, stage: &StageProject<'_>, build: &BuildProjectInputs) {
        let (d, r, purpose) = (stage.deployment, stage.region, &stage.purpose);
        let arns = self.ctx.arns.in_region(r);
        let (bucket_arn, key_arn) = self.store_arns(r);
        let store = Store {
            bucket_arn: &bucket_arn,
            key_arn: &key_arn,
            pipeline_name: &self.pipeline_name,
        };
        let log_group = self.names.log_group(purpose);
        let identity = self.identity();
        let (role_description, policy, description, buildspec, environment) = match stage.run {
            Run::Deploy => (
                format!("CodeBuild role of stage {} of pipeline {identity}", d.name),
                (
                    "deploy",
                    deploy::role_policy(
                        &arns,
                        store,
                        &log_group,
                        (stage.index, d),
                        &self.protected,
                    ),
                ),
                format!("Deployment stage {} of pipeline {identity}", d.name),
                deploy::buildspec(d),
                d.environment.clone(),
            ),
            Run::Preview => (
                format!(
                    "CodeBuild role of the pre-approval preview of stage {} of pipeline {identity}",
                    d.name
                ),
                (
                    "preview",
                    deploy::preview_role_policy(&arns, store, &log_group, d, &self.protected),
                ),
                format!(
                    "Preview before approval of stage {} of pipeline {identity} (read-only)",
                    d.name
                ),
                deploy::preview_buildspec(d).unwrap_or_default(),
                Some(deploy::preview_environment(d)),
            ),
        };
        self.project(purpose, r, role_description, policy);
        let project = BuildProjectInputs {
            name_prefix: self.names.prefix(purpose),
            project_name: Some(self.project_name(purpose)),
            region: self.region_input(r),
            description: project_description(description),
            service_role_arn: output(&format!("{purpose}-role"), "arn"),
            kms_key_arn: key_arn,
            log_group_name: log_group,
            privileged_mode: false,
            timeout_in_minutes: d.timeout_minutes.unwrap_or(plan::DEFAULT_TIMEOUT_MINUTES),
            buildspec,
            environment_variables: plan::project_variables(environment.as_ref()),
            ..build.clone()
        };
        let uses = [self.key_in(r), format!("{purpose}-logs")];
        self.add::<BuildProject>(purpose, &project, &uses);
    }

    /// The role of project `purpose` in region `r`: trusted by CodeBuild
    /// for that project only, granted its store and its log group.
    fn project(
        &mut self,
        purpose: &str,
        r: &str,
        description: String,
        (policy_name, policy): (&str, PolicyDocument),
    ) {
        let role = RoleInputs {
            name_prefix: self.names.prefix(purpose),
            role_name: None,
            description,
            service: "codebuild.amazonaws.com".into(),
            source_arn: Some(
                self.ctx
                    .arns
                    .in_region(r)
                    .codebuild_project(&self.project_name(purpose)),
            ),
            trust_policy: None,
            managed_policy_arns: Vec::new(),
            policies: BTreeMap::from([(policy_name.to_string(), policy)]),
            tags: self.tags.clone(),
        };
        let uses = [self.key_in(r), format!("{purpose}-logs")];
        self.add::<Role>(&format!("{purpose}-role"), &role, &uses);
    }

    /// The regions with a store: the pipeline's first.
    fn store_regions(&self) -> Vec<String> {
        std::iter::once(self.home.to_string())
            .chain(self.extra_regions.iter().cloned())
            .collect()
    }

    /// Every project: the build's first, then the stages'.
    fn project_purposes(&self) -> Vec<String> {
        std::iter::once("build".to_string())
            .chain(self.stage_projects.iter().map(|s| s.purpose.clone()))
            .collect()
    }

    /// Every project's ARN, in the order of [`Planner::project_purposes`]:
    /// known before any project exists, since this plan names them.
    fn project_arns(&self) -> Vec<String> {
        std::iter::once(("build", self.home))
            .chain(
                self.stage_projects
                    .iter()
                    .map(|s| (s.purpose.as_str(), s.region)),
            )
            .map(|(purpose, r)| {
                self.ctx
                    .arns
                    .in_region(r)
                    .codebuild_project(&self.project_name(purpose))
            })
            .collect()
    }

    /// The pipeline's role: the source for its repository, every region's
    /// store, every project, the topic. It names the projects by the ARNs
    /// this plan gives them rather than by what their creation returns, so
    /// that it is made alongside the projects' roles instead of after the
    /// last project: CodePipeline's wait for a new role to be assumable
    /// then overlaps CodeBuild's, rather than following it.
    fn pipeline_role(&mut self) {
        let stores: Vec<(String, (String, String))> = self
            .store_regions()
            .into_iter()
            .map(|r| {
                let arns = self.store_arns(&r);
                (r, arns)
            })
            .collect();
        let project_arns = self.project_arns();
        let topic_arn = output("notifications", "arn");
        // Gate alarms are read in the pipeline's region (Check keeps them there).
        let alarm_arns: Vec<String> = self
            .args
            .deployments
            .as_deref()
            .unwrap_or_default()
            .iter()
            .flat_map(|d| gates::alarm_names(d.gates.as_ref()))
            .map(|name| self.ctx.arns.cloudwatch_alarm(&name))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // Which action the grant on the connection names follows the
        // service in the connection's ARN, known once it is registered; the
        // other outputs only go where their tokens stand.
        let mut outputs = Input::of(&to_json(&(&stores, &project_arns, &topic_arn))).outputs();
        outputs.insert(arn(SOURCE));
        let home = self.home.to_string();
        let pipeline_name = self.pipeline_name.clone();
        let repository = self.args.source.repository.clone();
        let policies = Input::computed(outputs, move |values| {
            let stores: BTreeMap<String, Store<'_>> = stores
                .iter()
                .map(|(r, (bucket_arn, key_arn))| {
                    let store = Store {
                        bucket_arn,
                        key_arn,
                        pipeline_name: &pipeline_name,
                    };
                    (r.clone(), store)
                })
                .collect();
            let policy = plan::pipeline_role_policy(
                &home,
                &stores,
                values.get(&arn(SOURCE)),
                &repository,
                project_arns.clone(),
                &topic_arn,
                alarm_arns.clone(),
            );
            to_json(&BTreeMap::from([("pipeline", policy)]))
        });
        let role = RoleInputs {
            name_prefix: self.names.prefix("pipeline"),
            role_name: None,
            description: format!("CodePipeline role of pipeline {}", self.identity()),
            service: "codepipeline.amazonaws.com".into(),
            source_arn: Some(self.ctx.arns.codepipeline(&self.pipeline_name)),
            trust_policy: None,
            managed_policy_arns: Vec::new(),
            policies: BTreeMap::new(),
            tags: self.tags.clone(),
        };
        // A key the user brought is named as given: used all the same.
        let uses = [self.key_in(self.home)];
        self.add::<Role>("pipeline-role", &role, &uses)
            .inputs
            .set("policies", policies);
    }

    /// The pipeline: Source, Build, then each stage in order.
    fn pipeline(&mut self) {
        let projects = self.project_purposes();
        let topic_arn = output("notifications", "arn");
        let mut stages = plan::stages(
            self.args,
            &output(SOURCE, "arn"),
            &self.project_name("build"),
        );
        let deployments = self.args.deployments.as_deref().unwrap_or_default();
        for (index, d) in deployments.iter().enumerate() {
            let names_of =
                |purpose: String| (self.project_name(&purpose), self.names.log_group(&purpose));
            let (project_name, log_group_name) = names_of(deploy::purpose(d));
            let preview = deploy::has_preview(d).then(|| names_of(deploy::preview_purpose(d)));
            stages.push(deploy::stage(
                (index, d),
                self.home,
                deploy::StageChildren {
                    deploy: deploy::ProjectNames {
                        project_name: &project_name,
                        log_group_name: &log_group_name,
                    },
                    preview: preview.as_ref().map(|(project_name, log_group_name)| {
                        deploy::ProjectNames {
                            project_name,
                            log_group_name,
                        }
                    }),
                    topic_arn: &topic_arn,
                },
            ));
        }
        variables::expose(self.args, &mut stages);
        let pipeline = PipelineInputs {
            name_prefix: self.names.prefix("pipeline"),
            pipeline_name: Some(self.pipeline_name.clone()),
            role_arn: output("pipeline-role", "arn"),
            artifact_stores: self
                .store_regions()
                .into_iter()
                .map(|r| {
                    let store = ArtifactStore {
                        bucket_name: output(&self.bucket_in(&r), "bucketName"),
                        kms_key_arn: self.key_arn_in(&r),
                    };
                    (r, store)
                })
                .collect(),
            stages,
            triggers: plan::triggers(self.args),
            pull_request_triggers: Vec::new(),
            variables: variables::declarations(self.args),
            execution_mode: plan::wire_name(
                &self.args.execution_mode.unwrap_or(ExecutionMode::Queued),
            ),
            tags: self.tags.clone(),
        };
        // The pipeline runs every project by the name chosen for it, and
        // its approvals notify the topic.
        let mut uses = vec![self.key_in(self.home), "notifications".to_string()];
        uses.extend(projects);
        self.add::<Pipeline>("pipeline", &pipeline, &uses);
    }

    /// Notifications of the pipeline's executions, and the schedule that
    /// starts it through its own role.
    fn events(&mut self) {
        let notify = EventRuleInputs {
            name_prefix: self.names.prefix("notify"),
            rule_name: Some(self.notify_rule_name.clone()),
            description: format!("Notifies on executions of pipeline {}", self.identity()),
            schedule_expression: None,
            pipeline_state_change: Some(plan::notification_change(self.args, &self.pipeline_name)),
            event_pattern: None,
            enabled: true,
            targets: vec![RuleTarget {
                id: "notification-topic".into(),
                arn: output("notifications", "arn"),
                role_arn: None,
            }],
            tags: self.tags.clone(),
        };
        self.add::<EventRule>("notify", &notify, &["pipeline".into()]);

        let Some(expression) = &self.args.schedule else {
            return;
        };
        let schedule_rule_name = self.names.name("schedule", &naming::EVENT_RULE);
        let role = RoleInputs {
            name_prefix: self.names.prefix("events"),
            role_name: None,
            description: format!("Lets EventBridge start pipeline {}", self.identity()),
            service: "events.amazonaws.com".into(),
            source_arn: Some(self.ctx.arns.events_rule(&schedule_rule_name)),
            trust_policy: None,
            managed_policy_arns: Vec::new(),
            policies: BTreeMap::from([(
                "start-pipeline".to_string(),
                plan::events_role_policy(&output("pipeline", "arn")),
            )]),
            tags: self.tags.clone(),
        };
        self.add::<Role>("events-role", &role, &[]);
        let schedule = EventRuleInputs {
            name_prefix: self.names.prefix("schedule"),
            rule_name: Some(schedule_rule_name),
            description: format!("Starts pipeline {} on a schedule", self.identity()),
            schedule_expression: Some(expression.clone()),
            pipeline_state_change: None,
            event_pattern: None,
            enabled: true,
            targets: vec![RuleTarget {
                id: "pipeline".into(),
                arn: output("pipeline", "arn"),
                role_arn: Some(output("events-role", "arn")),
            }],
            tags: self.tags.clone(),
        };
        self.add::<EventRule>("schedule", &schedule, &[]);
    }

    /// The component's outputs, in terms of its children's.
    fn outputs(&self) -> SecurePipelineOutputs {
        let projects = self.project_purposes();
        let mut role_arns: BTreeMap<String, String> = projects
            .iter()
            .map(|p| (p.clone(), output(&format!("{p}-role"), "arn")))
            .collect();
        role_arns.insert("pipeline".into(), output("pipeline-role", "arn"));
        let event_bridge_role_arn = self
            .args
            .schedule
            .as_ref()
            .map(|_| output("events-role", "arn"));
        if let Some(events) = &event_bridge_role_arn {
            role_arns.insert("events".into(), events.clone());
        }
        SecurePipelineOutputs {
            pipeline_name: self.pipeline_name.clone(),
            pipeline_arn: output("pipeline", "arn"),
            pipeline_url: output("pipeline", "url"),
            connection_arn: output(SOURCE, "arn"),
            connection_status: output(SOURCE, "status"),
            connection_activation_url: output(SOURCE, "activationUrl"),
            artifact_bucket_name: output("artifacts", "bucketName"),
            access_log_bucket_name: output("access-logs", "bucketName"),
            kms_key_arn: self.key_arn_in(self.home),
            notification_topic_arn: output("notifications", "arn"),
            event_bridge_role_arn,
            build_project_names: projects.iter().map(|p| output(p, "projectName")).collect(),
            log_group_names: projects
                .iter()
                .map(|p| output(&format!("{p}-logs"), "logGroupName"))
                .collect(),
            role_arns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::PolicyDocument;
    use crate::proto::pulumirpc::{alias, Alias};
    use crate::protocol::graph::Piece;
    use crate::protocol::json::UNKNOWN;
    use crate::protocol::monitor::CustomTimeouts;
    use serde_json::{json, Value as Json};
    use std::collections::BTreeSet;

    const ARNS: Arns<'static> = Arns {
        partition: "aws",
        account: "123456789012",
        region: "eu-west-1",
    };

    fn plan_of(args: Json) -> Plan {
        let args: SecurePipelineArgs = serde_json::from_value(args).unwrap();
        let options = ResourceOptions::default();
        let ctx = Context {
            name: "web",
            identity: "web",
            project: "app",
            stack: "dev",
            arns: ARNS,
            options: &options,
        };
        plan(&args, &ctx).expect("a plan whose references all name children")
    }

    fn purposes(plan: &Plan) -> BTreeSet<&str> {
        plan.children.keys().collect()
    }

    fn deps(plan: &Plan, purpose: &str) -> BTreeSet<String> {
        plan.children
            .get(purpose)
            .unwrap_or_else(|| panic!("no child `{purpose}`"))
            .dependencies()
    }

    fn set(purposes: &[&str]) -> BTreeSet<String> {
        purposes.iter().map(|p| p.to_string()).collect()
    }

    /// What a child of this kind returns that others may refer to: its
    /// outputs and the names its check chooses (the engine returns a
    /// child's inputs with its outputs).
    fn returns(type_token: &str) -> Vec<&'static str> {
        match type_token {
            Key::TYPE => Key::OUTPUT_KEYS.to_vec(),
            Connection::TYPE => Connection::OUTPUT_KEYS.to_vec(),
            ArtifactBucket::TYPE => [ArtifactBucket::OUTPUT_KEYS, &["bucketName"]].concat(),
            AccessLogBucket::TYPE => [AccessLogBucket::OUTPUT_KEYS, &["bucketName"]].concat(),
            LogGroup::TYPE => [LogGroup::OUTPUT_KEYS, &["logGroupName"]].concat(),
            Topic::TYPE => Topic::OUTPUT_KEYS.to_vec(),
            Role::TYPE => Role::OUTPUT_KEYS.to_vec(),
            BuildProject::TYPE => [BuildProject::OUTPUT_KEYS, &["projectName"]].concat(),
            Pipeline::TYPE => Pipeline::OUTPUT_KEYS.to_vec(),
            EventRule::TYPE => EventRule::OUTPUT_KEYS.to_vec(),
            other => panic!("unexpected kind {other}"),
        }
    }

    /// Every reference names an output the referred child returns, and
    /// every child's inputs resolve with nothing left to refer to.
    fn references_are_typed_and_resolve(plan: &Plan) {
        let fake = |o: &OutputRef| format!("<{}.{}>", o.resource, o.output);
        for purpose in plan.children.keys() {
            let child = plan.children.get(purpose).unwrap();
            for reference in child.inputs.outputs() {
                let referred = plan.children.get(&reference.resource).unwrap_or_else(|| {
                    panic!("`{purpose}` refers to `{}`, no child", reference.resource)
                });
                assert!(
                    returns(&referred.type_token).contains(&reference.output.as_str()),
                    "`{purpose}` refers to `{}` of `{}`, which it does not return",
                    reference.output,
                    reference.resource
                );
            }
            let resolved = child.inputs.resolve(&fake).unwrap();
            assert!(Input::of(&resolved).outputs().is_empty(), "{purpose}");
        }
        let outputs = plan.outputs.resolve(&fake).unwrap();
        assert!(Input::of(&outputs).outputs().is_empty());
        for reference in plan.outputs.outputs() {
            assert!(plan.children.get(&reference.resource).is_some());
        }
    }

    const MINIMAL: &[&str] = &[
        "key",
        "source",
        "artifacts",
        "access-logs",
        "build-logs",
        "notifications",
        "build-role",
        "build",
        "pipeline-role",
        "pipeline",
        "notify",
    ];

    #[test]
    fn a_minimal_pipeline_has_its_eleven_children_in_dependency_order() {
        let p = plan_of(json!({"source": {"repository": "o/r"}, "build": {"commands": ["make"]}}));
        assert_eq!(purposes(&p), MINIMAL.iter().copied().collect());
        assert!(deps(&p, "key").is_empty());
        assert!(deps(&p, "source").is_empty());
        for storage in ["artifacts", "build-logs", "notifications"] {
            assert_eq!(deps(&p, storage), set(&["key"]), "{storage}");
        }
        // The access-log bucket turns on the artifact bucket's logging, so
        // it comes after it and nothing refers back.
        assert_eq!(deps(&p, "access-logs"), set(&["artifacts"]));
        assert_eq!(
            deps(&p, "build-role"),
            set(&["key", "artifacts", "build-logs"])
        );
        assert_eq!(deps(&p, "build"), set(&["key", "build-role", "build-logs"]));
        // The pipeline's role names the project by the ARN the plan gives
        // it, so it does not wait for the project; the pipeline does.
        let uses = ["key", "artifacts", "source", "notifications"];
        assert_eq!(deps(&p, "pipeline-role"), set(&uses));
        assert_eq!(
            deps(&p, "pipeline"),
            set(&[&uses[..], &["build", "pipeline-role"]].concat())
        );
        assert_eq!(deps(&p, "notify"), set(&["pipeline", "notifications"]));
        let waves: Vec<Vec<&str>> = p
            .children
            .waves()
            .iter()
            .map(|wave| wave.iter().map(String::as_str).collect())
            .collect();
        assert_eq!(
            waves,
            [
                vec!["key", "source"],
                vec!["artifacts", "build-logs", "notifications"],
                vec!["access-logs", "build-role", "pipeline-role"],
                vec!["build"],
                vec!["pipeline"],
                vec!["notify"],
            ]
        );
        references_are_typed_and_resolve(&p);
    }

    #[test]
    fn stages_in_two_regions_a_preview_and_a_schedule_each_add_their_children() {
        let p = plan_of(json!({
            "source": {"repository": "o/r"}, "build": {"commands": ["make"]},
            "schedule": "rate(1 day)",
            "notifications": {"emails": ["ops@example.com"]},
            "deployments": [
                {"name": "staging", "region": "us-west-2", "commands": ["./deploy.sh"]},
                {"name": "prod", "production": true, "pulumiStack": {
                    "stack": "web-infra/prod", "workDir": "infra",
                    "backendUrl": "s3://state-bucket/pulumi",
                    "passphraseSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:p-AbCdEf"
                }}
            ]
        }));
        let extra = [
            "key-us-west-2",
            "artifacts-us-west-2",
            "access-logs-us-west-2",
            "deploy-staging-logs",
            "deploy-staging-role",
            "deploy-staging",
            "deploy-prod-logs",
            "deploy-prod-role",
            "deploy-prod",
            "preview-prod-logs",
            "preview-prod-role",
            "preview-prod",
            "events-role",
            "schedule",
        ];
        assert_eq!(
            purposes(&p),
            MINIMAL.iter().chain(&extra).copied().collect()
        );
        // A stage in another region uses that region's key and bucket.
        assert_eq!(deps(&p, "artifacts-us-west-2"), set(&["key-us-west-2"]));
        assert_eq!(
            deps(&p, "access-logs-us-west-2"),
            set(&["artifacts-us-west-2"])
        );
        assert_eq!(deps(&p, "deploy-staging-logs"), set(&["key-us-west-2"]));
        assert_eq!(
            deps(&p, "deploy-staging-role"),
            set(&[
                "key-us-west-2",
                "artifacts-us-west-2",
                "deploy-staging-logs"
            ])
        );
        assert_eq!(
            deps(&p, "deploy-staging"),
            set(&[
                "key-us-west-2",
                "deploy-staging-role",
                "deploy-staging-logs"
            ])
        );
        // A stage and its preview in the home region use the home store.
        for purpose in ["deploy-prod", "preview-prod"] {
            assert_eq!(
                deps(&p, &format!("{purpose}-role")),
                set(&["key", "artifacts", &format!("{purpose}-logs")]),
            );
        }
        // The pipeline uses every key, bucket and project; its role every
        // key and bucket, and names the projects without waiting for them.
        let stores = [
            "key",
            "key-us-west-2",
            "artifacts",
            "artifacts-us-west-2",
            "source",
            "notifications",
        ];
        let projects = ["build", "deploy-staging", "deploy-prod", "preview-prod"];
        assert_eq!(deps(&p, "pipeline-role"), set(&stores));
        assert_eq!(
            deps(&p, "pipeline"),
            set(&[&stores[..], &projects[..], &["pipeline-role"]].concat())
        );
        // Each project, in its own region, by the name the pipeline runs.
        let role = inputs_of(&p, "pipeline-role", &|o| format!("<{}>", o.resource));
        let policy: PolicyDocument =
            serde_json::from_value(role["policies"]["pipeline"].clone()).unwrap();
        let runs = policy
            .statements
            .iter()
            .find(|s| s.sid.as_deref() == Some("RunOwnBuilds"))
            .unwrap();
        let names = Names::new("app", "dev", "web");
        let project_arn = |purpose: &str, region: &str| {
            ARNS.in_region(region)
                .codebuild_project(&names.name(purpose, &naming::CODEBUILD_PROJECT))
        };
        assert_eq!(
            runs.resources,
            [
                project_arn("build", ARNS.region),
                project_arn("deploy-staging", "us-west-2"),
                project_arn("deploy-prod", ARNS.region),
                project_arn("preview-prod", ARNS.region),
            ]
        );
        assert_eq!(deps(&p, "events-role"), set(&["pipeline"]));
        assert_eq!(deps(&p, "schedule"), set(&["pipeline", "events-role"]));
        // Each child comes in a later wave than everything it depends on.
        let wave_of: BTreeMap<&str, usize> = p
            .children
            .waves()
            .iter()
            .enumerate()
            .flat_map(|(i, wave)| wave.iter().map(move |k| (k.as_str(), i)))
            .collect();
        assert_eq!(wave_of.len(), MINIMAL.len() + extra.len());
        for (purpose, wave) in &wave_of {
            for dependency in deps(&p, purpose) {
                assert!(wave_of[dependency.as_str()] < *wave, "{purpose}");
            }
        }
        references_are_typed_and_resolve(&p);

        // Subscriptions repeat the addresses: secret when they are.
        assert_eq!(
            p.children.get("notifications").unwrap().echoed_outputs["emails"],
            vec!["subscriptions"]
        );
    }

    /// A child's inputs with every output resolved by `value`.
    fn inputs_of(p: &Plan, purpose: &str, value: &dyn Fn(&OutputRef) -> String) -> Json {
        p.children
            .get(purpose)
            .unwrap()
            .inputs
            .resolve(value)
            .unwrap()
    }

    #[test]
    fn inputs_refer_to_what_children_return_and_name_what_the_plan_chose() {
        let p = plan_of(json!({"source": {"repository": "o/r"}, "build": {"commands": ["make"]}}));
        let build = p.children.get("build").unwrap();
        let Input::Object(entries) = &build.inputs else {
            panic!("{:?}", build.inputs)
        };
        let input = |key: &str| &entries.iter().find(|(k, _)| k == key).unwrap().1;
        assert!(matches!(
            input("serviceRoleArn"),
            Input::Text(pieces) if pieces == &[Piece::Output(arn("build-role"))]
        ));
        assert!(matches!(
            input("kmsKeyArn"),
            Input::Text(pieces) if pieces == &[Piece::Output(arn("key"))]
        ));
        // The log group's name is chosen before anything exists.
        assert!(
            matches!(input("logGroupName"), Input::Value(Json::String(name))
            if name.starts_with("/securepipeline/web-"))
        );

        // While the role is not known (preview), its ARN is unknown.
        let unknown = inputs_of(&p, "build", &|_| UNKNOWN.to_string());
        assert_eq!(unknown["serviceRoleArn"], UNKNOWN);
        // Once known, a grant on the bucket names its objects under it.
        let known = inputs_of(&p, "build-role", &|o| {
            format!("arn:aws:s3:::{}-bucket", o.resource)
        });
        let policy: PolicyDocument =
            serde_json::from_value(known["policies"]["build"].clone()).unwrap();
        let pipeline = Names::new("app", "dev", "web").name("pipeline", &naming::PIPELINE);
        assert_eq!(
            policy.statements[1].resources,
            vec![format!(
                "arn:aws:s3:::artifacts-bucket/{}",
                plan::artifact_keys(&pipeline, plan::SOURCE_ARTIFACT)
            )]
        );
    }

    #[test]
    fn a_brought_key_is_named_as_given_and_still_registered_first() {
        let brought = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let p = plan_of(json!({
            "source": {"repository": "o/r"}, "build": {"commands": ["make"]}, "kmsKeyArn": brought
        }));
        let bucket = inputs_of(&p, "artifacts", &|_| UNKNOWN.to_string());
        assert_eq!(bucket["kmsKeyArn"], brought);
        assert_eq!(deps(&p, "artifacts"), set(&["key"]));
        assert_eq!(
            deps(&p, "pipeline-role"),
            set(&["key", "artifacts", "source", "notifications"])
        );
        let outputs = p.outputs.resolve(&|_| UNKNOWN.to_string()).unwrap();
        assert_eq!(outputs["kmsKeyArn"], brought);
        references_are_typed_and_resolve(&p);
    }

    #[test]
    fn the_pipeline_role_uses_the_connection_through_the_service_its_arn_names() {
        let p = plan_of(json!({"source": {"repository": "o/r"}, "build": {"commands": ["make"]}}));
        for service in ["codeconnections", "codestar-connections"] {
            let role = inputs_of(&p, "pipeline-role", &|o| match o.resource.as_str() {
                SOURCE => format!("arn:aws:{service}:eu-west-1:123456789012:connection/c"),
                other => format!("arn:aws:x:::{other}"),
            });
            let policy: PolicyDocument =
                serde_json::from_value(role["policies"]["pipeline"].clone()).unwrap();
            let connection = &policy.statements[0];
            assert_eq!(connection.sid.as_deref(), Some("UseSourceConnection"));
            assert_eq!(connection.actions, vec![format!("{service}:UseConnection")]);
            let projects = policy
                .statements
                .iter()
                .find(|s| s.sid.as_deref() == Some("RunOwnBuilds"))
                .unwrap();
            let build = Names::new("app", "dev", "web").name("build", &naming::CODEBUILD_PROJECT);
            assert_eq!(projects.resources, vec![ARNS.codebuild_project(&build)]);
        }
    }

    fn urn_alias(urn: &str) -> Alias {
        Alias {
            alias: Some(alias::Alias::Urn(urn.into())),
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
