//! Pipelines that run (issue 13): a SecurePipeline deployed through the
//! engine, then executed by the emulator with IAM enforced. The fixture
//! repository (`tests/e2e/fixtures/app-repo`) is the connection's
//! repository; its build runs the app's unit tests with a secret, its
//! Pulumi stages deploy `infra/` (a YAML program) from an `s3://` backend
//! in the emulator, each under a deployer role the test creates, with the
//! pinned CLI installed from a local release the way the generated
//! buildspec verifies it.
//!
//! (a) push -> build -> dev deploys -> production previews -> approval ->
//! production deploys, with no AccessDenied; (f) per role, the permissions
//! granted against those the run used; (b) a failing test fails the run
//! and the topic hears of it once; (c) a commit touching only excluded
//! paths starts nothing; (d) the schedule starts the pipeline through its
//! role, which can start nothing else; (e) probes from inside stages are
//! denied. And a stage in another region gets the build's artifact,
//! copied there under the pipeline's role, which reads artifacts only in
//! such a pipeline.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_s3::error::ProvideErrorMetadata;
use securepipeline::component::plan::artifact_keys;
use securepipeline_e2e::execution::{build_log_lines, glob, session_role, usage, usage_table, Run};
use securepipeline_e2e::readback::{self, text};
use securepipeline_e2e::scenario::{
    action, build, deployments, happy_path_program, outputs_of, parameter_arn, pipeline,
    repository, role_arn, stack_outputs, World, EVENTS, REPOSITORY, RUN_TIMEOUT, SIGNING_KEY,
    STATE_BUCKET,
};
use securepipeline_e2e::{Clients, Emulator, ACCOUNT, REGION};
use serde_json::{json, Value as Json};

/// The infrastructure a stage deployed exists in the emulator.
async fn assert_infrastructure_exists(clients: &Clients, stack: &Json) {
    let pipeline = text(stack, "pipelineName");
    clients
        .codepipeline
        .get_pipeline()
        .name(&pipeline)
        .send()
        .await
        .unwrap_or_else(|err| panic!("the deployed pipeline {pipeline}: {err:?}"));
    let bucket = text(stack, "artifactBucketName");
    clients
        .s3
        .head_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|err| panic!("the deployed bucket {bucket}: {err:?}"));
    for arn in stack["roleArns"].as_object().unwrap().values() {
        readback::role(&clients.iam, arn.as_str().unwrap()).await;
    }
}

// ------------------------------------------------------------------ (a) --

/// Grants the app pipeline's roles hold but the happy path never used,
/// each with why it is kept. Patterns (`*` any text) over `<role purpose>
/// <Sid> <action> <resource>`, names replaced by `{...}` placeholders.
/// An unused grant no entry here matches fails the test (the provider
/// should not grant it), and so does an entry that matches no unused grant.
const UNUSED_BUT_NEEDED: &[(&str, &str)] = &[
    (
        "* ArtifactsBucket s3:GetBucketLocation arn:aws:s3:::{artifactBucket}",
        "CodeBuild and CodePipeline look up the artifact bucket's region before they \
         read or write artifacts (AWS's documented service-role policies of both grant \
         it); the emulator's runners know the region and never ask",
    ),
    (
        "pipeline ArtifactsBucket s3:GetBucketVersioning arn:aws:s3:::{artifactBucket}",
        "CodePipeline checks that its artifact store is versioned (its documented \
         service-role policy grants it); the emulator checks nothing",
    ),
    (
        "* ArtifactsRead s3:GetObjectVersion arn:aws:s3:::{artifactBucket}/{pipelineFolder}/*",
        "on a versioned artifact store CodePipeline and CodeBuild may read an artifact \
         by its version (both documented policies grant it); the emulator reads the \
         current object",
    ),
    (
        "* WriteOwnLogs logs:* arn:aws:logs:{region}:{account}:log-group:{logs?}",
        "CloudWatch Logs' permissions reference has listed CreateLogStream and \
         PutLogEvents on the group's own ARN; AWS's service authorization data, which \
         the emulator follows, names only the stream ARN (`...:log-stream:*`, used). \
         Both are kept so that either evaluation allows the build to log",
    ),
    (
        "* UseArtifactKey kms:DescribeKey {artifactKey}",
        "CodePipeline and CodeBuild resolve the artifact key named in the pipeline and \
         project before using it (AWS's documented key policies for CodePipeline \
         artifact keys grant DescribeKey); the emulator resolves keys itself",
    ),
    (
        "pipeline UseArtifactKey kms:Decrypt {artifactKey}",
        "the pipeline role only writes artifacts here, but S3 decrypts the upload's \
         data key for each part of a multipart upload under the caller's identity \
         (S3's SSE-KMS permissions: uploads need GenerateDataKey and Decrypt), which \
         a large source archive takes; the emulator uploads in one part",
    ),
    (
        "pipeline RunOwnBuilds codebuild:StopBuild *",
        "stopping an execution with abandon stops its running builds under the \
         pipeline's role; the happy path stops nothing",
    ),
    (
        "deploy-* ReadWriteOwnStackState s3:DeleteObject arn:aws:s3:::app-state/pulumi/.pulumi/stacks/app-infra/*.json*",
        "the CLI replaces `<stack>.json` by `<stack>.json.gz` (and back) when \
         PULUMI_SELF_MANAGED_STATE_GZIP changes, deleting the other file",
    ),
];

/// Replaces this run's names in `text` by placeholders.
fn placeholders(world: &World, pipeline: &str) -> Vec<(String, String)> {
    let name = world.out(pipeline, "pipelineName");
    let folder = artifact_keys(&name, "x")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut table = vec![
        (
            world.out(pipeline, "kmsKeyArn"),
            "{artifactKey}".to_string(),
        ),
        (
            world.out(pipeline, "notificationTopicArn"),
            "{topic}".to_string(),
        ),
        (
            world.out(pipeline, "connectionArn"),
            "{connection}".to_string(),
        ),
        (world.out(pipeline, "pipelineArn"), "{pipelineArn}".into()),
        (
            world.out(pipeline, "artifactBucketName"),
            "{artifactBucket}".into(),
        ),
        (world.fixtures.signing_key.clone(), "{signingKey}".into()),
        (
            world.fixtures.dev_passphrase.clone(),
            "{devPassphrase}".into(),
        ),
        (
            world.fixtures.prod_passphrase.clone(),
            "{prodPassphrase}".into(),
        ),
    ];
    for (purpose, arn) in world.roles(pipeline) {
        table.push((arn, format!("{{role:{purpose}}}")));
    }
    for (output, label) in [("buildProjectNames", "project"), ("logGroupNames", "logs")] {
        for (index, value) in world.outputs[format!("{pipeline}_{output}")]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            table.push((
                value.as_str().unwrap().to_string(),
                format!("{{{label}{index}}}"),
            ));
        }
    }
    table.push((name, "{pipeline}".into()));
    table.push((folder, "{pipelineFolder}".into()));
    table.push((ACCOUNT.into(), "{account}".into()));
    table.push((REGION.into(), "{region}".into()));
    // Longest first, so that a name inside another is replaced last.
    table.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
    table
}

fn normalise(table: &[(String, String)], text: &str) -> String {
    table
        .iter()
        .fold(text.to_string(), |acc, (from, to)| acc.replace(from, to))
}

/// (f): after the happy path, per role, the permissions granted against
/// those used; every unused grant must be justified in
/// [`UNUSED_BUT_NEEDED`].
async fn least_privilege(world: &World, decisions: &[Json]) {
    let mut rows = Vec::new();
    for (purpose, arn) in world.roles("app") {
        rows.push((purpose, usage(&world.clients.iam, &arn, decisions).await));
    }
    let table = placeholders(world, "app");
    let mut unused = Vec::new();
    for (purpose, usage) in &rows {
        for grant in &usage.unused {
            unused.push(format!(
                "{purpose} {} {} {}",
                grant.statement,
                grant.action,
                normalise(&table, &grant.resource)
            ));
        }
    }
    eprintln!(
        "least privilege after the happy path ({} decisions):\n{}\nunused grants:\n  {}",
        decisions.len(),
        usage_table(&rows),
        unused.join("\n  ")
    );
    let entries: Vec<&str> = UNUSED_BUT_NEEDED
        .iter()
        .map(|(pattern, _)| *pattern)
        .collect();
    let unexplained: Vec<&str> = unused
        .iter()
        .filter(|u| !entries.iter().any(|e| glob(e, u)))
        .map(String::as_str)
        .collect();
    let stale: Vec<&str> = entries
        .iter()
        .copied()
        .filter(|e| !unused.iter().any(|u| glob(e, u)))
        .collect();
    // The roles the test made (deployers, the preview's reader), and the
    // service principals, decided too.
    let mut others: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let own: Vec<String> = rows.iter().map(|(_, u)| u.role.clone()).collect();
    for decision in decisions {
        let principal = decision["principal"].as_str().unwrap_or_default();
        let who = session_role(principal).unwrap_or(principal).to_string();
        if !own.contains(&who) {
            let entry = others.entry(who).or_default();
            if decision["allowed"] == json!(true) {
                entry.0 += 1;
            } else {
                entry.1 += 1;
            }
        }
    }
    eprintln!("other principals (allowed, denied): {others:?}");
    assert!(
        unexplained.is_empty() && stale.is_empty(),
        "grants never used in the run and not justified (drop them from the provider):\n  {}\n\
         entries that match no unused grant:\n  {}",
        unexplained.join("\n  "),
        stale.join("\n  ")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_is_tested_deployed_to_dev_previewed_approved_and_deployed_to_production() {
    let world = World::start(happy_path_program).await;
    let repo = repository(&world.emulator, REPOSITORY);
    world.emulator.reset_published();

    let push = world.emulator.push(&repo, "main");
    let started = world.started_one(&push.started, "app");
    let mut run = Run::new(&world.clients, &started, true);
    let token = run.approval_token("prod", "Approve", RUN_TIMEOUT).await;
    let waiting = run.snapshot().await;
    for (stage, name) in [
        ("Source", "Source"),
        ("Build", "Build"),
        ("dev", "Deploy"),
        ("prod", "Preview"),
    ] {
        assert_eq!(
            action(&waiting, stage, name).status,
            "Succeeded",
            "{waiting:#?}"
        );
    }
    assert!(
        waiting.action("prod", "Deploy").is_none(),
        "production deployed before its approval: {waiting:#?}"
    );
    // The approval request reached the topic, from the pipeline's role.
    let topic = world.out("app", "notificationTopicArn");
    let requests: Vec<_> = world
        .emulator
        .published()
        .into_iter()
        .filter(|m| m.topic_arn == topic)
        .collect();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests[0].message.contains(&token), "{:?}", requests[0]);

    run.review("prod", "Approve", &token, true).await;
    let done = run.finish(RUN_TIMEOUT).await;
    assert_eq!(done.status, "Succeeded", "{done:#?}");

    // The build ran the tests, with its secret, which its log never shows.
    let build_id = action(&done, "Build", "Build").external_id.clone().unwrap();
    let log = build_log_lines(&world.clients, &build_id).await.join("\n");
    assert!(log.contains("Ran 4 tests"), "{log}");
    assert!(
        log.lines()
            .any(|l| l.starts_with("test_a_signed_receipt_verifies") && l.ends_with("... ok")),
        "{log}"
    );
    assert!(!log.contains(SIGNING_KEY), "the secret reached the log");

    // Each stage deployed the infrastructure: its resources exist, and the
    // stage's outputs artifact names them.
    let dev = stack_outputs(&world.clients, action(&done, "dev", "Deploy")).await;
    let prod = stack_outputs(&world.clients, action(&done, "prod", "Deploy")).await;
    assert_infrastructure_exists(&world.clients, &dev).await;
    assert_infrastructure_exists(&world.clients, &prod).await;
    assert_ne!(dev["pipelineName"], prod["pipelineName"]);

    // Not one refusal in the whole run.
    let decisions = world.emulator.decisions();
    let denials = world.denials();
    assert!(
        denials.is_empty(),
        "{} AccessDenied on the happy path:\n{}",
        denials.len(),
        denials.join("\n")
    );
    least_privilege(&world, &decisions).await;

    // Later pushes change what is deployed: each stage updates its stack,
    // and production's preview refreshes the live resources under the
    // read-only role. SECUREPIPELINE_EXECUTION_SOAK=1 pushes four times.
    let soak = std::env::var("SECUREPIPELINE_EXECUTION_SOAK").is_ok_and(|v| v == "1");
    let program = std::fs::read_to_string(repo.path().join("infra/Pulumi.yaml")).unwrap();
    for days in if soak {
        &[14, 30, 60, 90][..]
    } else {
        &[14][..]
    } {
        world.emulator.reset_decisions();
        repo.write(
            "infra/Pulumi.yaml",
            &program.replace("logRetentionDays: 7", &format!("logRetentionDays: {days}")),
        );
        repo.commit(&format!("Infrastructure: keep build logs {days} days"));
        let push = world.emulator.push(&repo, "main");
        let mut run = Run::new(
            &world.clients,
            &world.started_one(&push.started, "app"),
            true,
        );
        let token = run.approval_token("prod", "Approve", RUN_TIMEOUT).await;
        run.review("prod", "Approve", &token, true).await;
        let done = run.finish(RUN_TIMEOUT).await;
        assert_eq!(done.status, "Succeeded", "{done:#?}");
        for stage in ["dev", "prod"] {
            let stack = stack_outputs(&world.clients, action(&done, stage, "Deploy")).await;
            for group in stack["logGroupNames"].as_array().unwrap() {
                let group = group.as_str().unwrap();
                let found = world
                    .clients
                    .logs
                    .describe_log_groups()
                    .log_group_name_prefix(group)
                    .send()
                    .await
                    .unwrap();
                let retention = found
                    .log_groups()
                    .first()
                    .and_then(|g| g.retention_in_days());
                assert_eq!(retention, Some(*days), "{stage}: {group}");
            }
        }
        // The preview read production's live resources as the reader.
        let reads = world
            .emulator
            .decisions()
            .iter()
            .filter(|d| d["principal"].as_str().and_then(session_role) == Some("prod-reader"))
            .count();
        assert!(reads > 0, "the preview read nothing under prod-reader");
        let denials = world.denials();
        assert!(
            denials.is_empty(),
            "{} AccessDenied updating the stacks ({days} days):\n{}",
            denials.len(),
            denials.join("\n")
        );
    }
}

// --------------------------------------------------- another region --

/// A stage in another region gets the build's artifact as CodePipeline
/// moves it: the pipeline's role reads it from the home store (the only
/// reads that role is granted, and only because a stage runs elsewhere)
/// and writes it to that region's store, whose project reads it there.
#[tokio::test(flavor = "multi_thread")]
async fn a_stage_in_another_region_gets_the_build_through_the_pipeline_role() {
    const WEST: &str = "us-west-2";
    let world = World::start(|f| {
        let app = pipeline(
            "app",
            REPOSITORY,
            json!({"build": build(f, &["python3 -m unittest discover -s tests"]),
                   "deployments": [{"name": "staging", "region": WEST,
                                    "commands": ["test -f app/pricing.py"]}]}),
        );
        format!("resources:{app}{}", outputs_of(&["app"]))
    })
    .await;
    let repo = repository(&world.emulator, REPOSITORY);
    let push = world.emulator.push(&repo, "main");
    let mut run = Run::new(
        &world.clients,
        &world.started_one(&push.started, "app"),
        true,
    );
    let done = run.finish(RUN_TIMEOUT).await;
    assert_eq!(done.status, "Succeeded", "{done:#?}");
    let denials = world.denials();
    assert!(
        denials.is_empty(),
        "{} AccessDenied across regions:\n{}",
        denials.len(),
        denials.join("\n")
    );

    let roles = world.roles("app");
    let role_name = |purpose: &str| roles[purpose].rsplit('/').next().unwrap().to_string();
    let home = format!("arn:aws:s3:::{}/", world.out("app", "artifactBucketName"));
    let decisions = world.emulator.decisions();
    let allowed = |role: &str, action: &str| -> Vec<String> {
        decisions
            .iter()
            .filter(|d| {
                d["allowed"] == json!(true)
                    && d["action"] == json!(action)
                    && d["principal"].as_str().and_then(session_role) == Some(role)
            })
            .filter_map(|d| d["resource"].as_str().map(str::to_string))
            .collect()
    };
    let pipeline_role = role_name("pipeline");
    let build_artifact = |resource: &String| resource.contains("/BuildOutput/");
    let read_home: Vec<String> = allowed(&pipeline_role, "s3:GetObject");
    assert!(
        !read_home.is_empty()
            && read_home
                .iter()
                .all(|r| r.starts_with(&home) && build_artifact(r)),
        "the pipeline's role reads only the build's artifact at home: {read_home:?}"
    );
    let copied: Vec<String> = allowed(&pipeline_role, "s3:PutObject")
        .into_iter()
        .filter(|r| !r.starts_with(&home))
        .collect();
    assert!(
        copied.len() == 1 && build_artifact(&copied[0]),
        "the pipeline's role copies the build's artifact to the other region once: {copied:?}"
    );
    let staging_reads = allowed(&role_name("deploy-staging"), "s3:GetObject");
    assert_eq!(
        staging_reads, copied,
        "the stage reads the copy in its own region"
    );
}

// ------------------------------------------------------------ (b)(c)(d) --

/// Waits until EventBridge has handled the event of `execution` reaching
/// `state` (its deliveries are recorded), so that what the topic received
/// is final.
async fn event_handled(emulator: &Emulator, execution: &str, state: &str) -> Json {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = emulator.events().into_iter().find(|e| {
            let event = &e["event"];
            event["detail-type"] == json!("CodePipeline Pipeline Execution State Change")
                && event["detail"]["execution-id"] == json!(execution)
                && event["detail"]["state"] == json!(state)
        });
        if let Some(found) = found {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no {state} event for execution {execution}: {:#?}",
            emulator.events()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn executions(clients: &Clients, pipeline: &str) -> Vec<String> {
    clients
        .codepipeline
        .list_pipeline_executions()
        .pipeline_name(pipeline)
        .send()
        .await
        .unwrap()
        .pipeline_execution_summaries()
        .iter()
        .filter_map(|s| s.pipeline_execution_id().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn b_c_d_excluded_paths_start_nothing_the_schedule_starts_only_its_pipeline_and_a_failing_test_notifies_once(
) {
    let world = World::start(|f| {
        let app = pipeline(
            "app",
            REPOSITORY,
            json!({"source": {"excludePaths": ["docs/**"]},
                   "build": build(f, &["python3 -m unittest discover -s tests -v"]),
                   "notifications": {"emails": ["team@example.com"]},
                   "schedule": "rate(1 day)"}),
        );
        let other = pipeline(
            "other",
            "fixture-org/other",
            json!({"build": {"commands": ["true"]}}),
        );
        format!("resources:{app}{other}{}", outputs_of(&["app", "other"]))
    })
    .await;
    let repo = repository(&world.emulator, REPOSITORY);
    let app = world.out("app", "pipelineName");
    let other = world.out("other", "pipelineName");

    // (c) Only excluded paths changed: nothing starts.
    repo.write(
        "docs/pricing.md",
        "# Pricing\n\nTotals are kept in cents.\n",
    );
    repo.commit("Docs: say what totals are kept in");
    let push = world.emulator.push(&repo, "main");
    assert!(push.started.is_empty(), "{push:?}");
    assert_eq!(
        push.skipped
            .iter()
            .map(|s| s.pipeline.as_str())
            .collect::<Vec<_>>(),
        vec![app.as_str()],
        "{push:?}"
    );
    assert!(executions(&world.clients, &app).await.is_empty());

    // (d) The schedule starts its pipeline, through its own role.
    let events_role = world.roles("app")["events"].clone();
    let rule_arn = readback::role(&world.clients.iam, &events_role)
        .await
        .trust
        .statements[0]
        .conditions["ArnEquals"]["aws:SourceArn"][0]
        .clone();
    let started = world
        .emulator
        .fire_schedule(&rule_arn)
        .unwrap_or_else(|refusal| panic!("the schedule could not start the pipeline: {refusal}"));
    let started = world.started_one(&started, "app");
    let mut run = Run::new(&world.clients, &started, true);
    let scheduled = run.finish(RUN_TIMEOUT).await;
    assert_eq!(scheduled.status, "Succeeded", "{scheduled:#?}");
    let execution = world
        .clients
        .codepipeline
        .get_pipeline_execution()
        .pipeline_name(&app)
        .pipeline_execution_id(&started.execution_id)
        .send()
        .await
        .unwrap();
    let trigger = execution
        .pipeline_execution()
        .and_then(|e| e.trigger())
        .unwrap();
    assert_eq!(
        (
            trigger.trigger_type().map(|t| t.as_str()),
            trigger.trigger_detail()
        ),
        (Some("CloudWatchEvent"), Some(rule_arn.as_str()))
    );
    let events_role_name = events_role.rsplit('/').next().unwrap();
    let starts: Vec<Json> = world
        .emulator
        .decisions()
        .into_iter()
        .filter(|d| d["action"] == json!("codepipeline:StartPipelineExecution"))
        .collect();
    assert_eq!(starts.len(), 1, "{starts:#?}");
    assert!(
        starts[0]["principal"]
            .as_str()
            .unwrap()
            .contains(&format!(":assumed-role/{events_role_name}/")),
        "{starts:#?}"
    );
    assert_eq!(starts[0]["allowed"], json!(true));
    // ... and that role can start nothing else.
    let schedule = world
        .emulator
        .assume_as_service(EVENTS, &events_role, &rule_arn)
        .await
        .unwrap();
    let refused = aws_sdk_codepipeline::Client::new(&schedule.sdk)
        .start_pipeline_execution()
        .name(&other)
        .send()
        .await
        .expect_err("the schedule's role started another pipeline");
    assert_eq!(refused.code(), Some("AccessDeniedException"), "{refused:?}");
    assert!(
        refused
            .message()
            .unwrap_or_default()
            .contains("because no identity-based policy allows"),
        "{refused:?}"
    );
    assert!(executions(&world.clients, &other).await.is_empty());

    // (b) A failing test fails the execution; the topic hears it once.
    world.emulator.reset_published();
    repo.write(
        "app/pricing.py",
        &std::fs::read_to_string(repo.path().join("app/pricing.py"))
            .unwrap()
            .replace(
                "(net * tax_percent + 50) // 100",
                "net * tax_percent // 100",
            ),
    );
    repo.commit("Pricing: simpler tax");
    let push = world.emulator.push(&repo, "main");
    let started = world.started_one(&push.started, "app");
    let mut run = Run::new(&world.clients, &started, true);
    let failed = run.finish(RUN_TIMEOUT).await;
    assert_eq!(failed.status, "Failed", "{failed:#?}");
    let build = action(&failed, "Build", "Build");
    assert_eq!(build.status, "Failed", "{failed:#?}");
    let log = build_log_lines(&world.clients, build.external_id.as_deref().unwrap())
        .await
        .join("\n");
    assert!(
        log.contains("FAIL: test_total_adds_tax_rounded_to_the_cent"),
        "{log}"
    );
    event_handled(&world.emulator, &started.execution_id, "FAILED").await;
    let topic = world.out("app", "notificationTopicArn");
    let messages: Vec<_> = world
        .emulator
        .published()
        .into_iter()
        .filter(|m| m.topic_arn == topic)
        .collect();
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let event: Json = serde_json::from_str(&messages[0].message).unwrap();
    assert_eq!(
        (
            &event["detail"]["state"],
            &event["detail"]["execution-id"],
            &event["detail"]["pipeline"]
        ),
        (&json!("FAILED"), &json!(started.execution_id), &json!(app)),
        "{event:#}"
    );
    assert_eq!(
        messages[0].published_by.as_deref(),
        Some(EVENTS),
        "{messages:#?}"
    );
}

// ------------------------------------------------------------------ (e) --

/// Where a probe runs from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Origin {
    /// The build's commands.
    Build,
    /// A non-production commands stage.
    Qa,
    /// Production's Preview, before the approval, under its project's own
    /// role: the repository's program can run code there (here, a
    /// "provider plugin" the repository ships).
    Preview,
    /// The same, under the read-only role the preview assumes.
    PreviewRole,
}

impl Origin {
    fn phase(self) -> &'static str {
        match self {
            Origin::Build => "build",
            Origin::Qa => "qa",
            Origin::Preview | Origin::PreviewRole => "preview",
        }
    }
}

/// One attempt from inside a stage, with the AWS CLI as a team's commands
/// would make it, and what must become of it.
struct Probe {
    name: &'static str,
    from: Origin,
    command: String,
    action: &'static str,
    resource: String,
    /// `explicit-deny-identity`, `no-identity-allow`, or `allowed` for a
    /// control that shows the probe can succeed.
    reason: &'static str,
}

/// The probe script the repository carries: `ci/probes.sh <phase>` runs
/// the phase's probes, printing `PROBE <name> ALLOWED|REFUSED <why>`.
fn probe_script(probes: &[Probe]) -> String {
    let mut script = String::from(
        "#!/usr/bin/env bash\n# Attempts from inside a stage; each must be refused.\n\
         probe() {\n  name=\"$1\"; shift\n  if out=\"$(\"$@\" 2>&1)\"; then echo \"PROBE $name ALLOWED\";\n  \
         else echo \"PROBE $name REFUSED $(printf '%s' \"$out\" | tr '\\n' ' ' | cut -c1-300)\"; fi\n}\n\
         case \"$1\" in\n",
    );
    for phase in ["build", "qa", "preview"] {
        script.push_str(&format!("  {phase})\n"));
        for probe in probes.iter().filter(|p| p.from.phase() == phase) {
            let profile = match probe.from {
                Origin::Preview => "AWS_PROFILE=securepipeline-stage ",
                Origin::PreviewRole => "AWS_PROFILE=securepipeline-deploy ",
                _ => "",
            };
            script.push_str(&format!(
                "    {profile}probe {} {}\n",
                probe.name, probe.command
            ));
        }
        script.push_str("    ;;\n");
    }
    script.push_str("esac\n");
    script
}

#[tokio::test(flavor = "multi_thread")]
async fn e_probes_from_inside_stages_are_denied() {
    const PROBES_REPOSITORY: &str = "fixture-org/app-probes";
    let world = World::start(|f| {
        let build = build(
            f,
            &[
                "bash ci/probes.sh build",
                "python3 -m unittest discover -s tests",
            ],
        );
        let mut stages = deployments(f);
        // A commands stage in place of dev: its commands are the probes.
        stages[0] = json!({"name": "qa",
            "environment": {"DB_URL": {"parameterName": "/app/qa/db-url"}},
            "commands": ["bash ci/probes.sh qa"]});
        let probes = pipeline(
            "probes",
            PROBES_REPOSITORY,
            json!({"build": build, "deployments": stages}),
        );
        format!("resources:{probes}{}", outputs_of(&["probes"]))
    })
    .await;
    let f = &world.fixtures;
    let name = world.out("probes", "pipelineName");
    let bucket = world.out("probes", "artifactBucketName");
    let key = world.out("probes", "kmsKeyArn");
    let prod_outputs = artifact_keys(&name, "StackOutputs2-prod").replace('*', "forged.zip");
    let prod_state = "pulumi/.pulumi/stacks/app-infra/prod.json";
    let s3 = |verb: &str, bucket: &str, object: &str| {
        format!("aws s3api {verb} --bucket {bucket} --key {object}")
    };
    let put_artifact = format!(
        "{} --body \"$0\" --server-side-encryption aws:kms --ssekms-key-id {key}",
        s3("put-object", &bucket, &prod_outputs)
    );
    let state_arn = format!("arn:aws:s3:::{STATE_BUCKET}/{prod_state}");
    let artifact_arn = format!("arn:aws:s3:::{bucket}/{prod_outputs}");
    let assume_prod = format!(
        "aws sts assume-role --role-session-name probe --role-arn {}",
        role_arn("prod-deployer")
    );
    let probes = vec![
        Probe {
            name: "build-reads-its-secret",
            from: Origin::Build,
            command: format!(
                "aws secretsmanager get-secret-value --secret-id {}",
                f.signing_key
            ),
            action: "secretsmanager:GetSecretValue",
            resource: f.signing_key.clone(),
            reason: "allowed",
        },
        Probe {
            name: "build-reads-a-secret-it-was-not-given",
            from: Origin::Build,
            command: format!(
                "aws secretsmanager get-secret-value --secret-id {}",
                f.unrelated_secret
            ),
            action: "secretsmanager:GetSecretValue",
            resource: f.unrelated_secret.clone(),
            reason: "no-identity-allow",
        },
        Probe {
            name: "build-reads-productions-passphrase",
            from: Origin::Build,
            command: format!(
                "aws secretsmanager get-secret-value --secret-id {}",
                f.prod_passphrase
            ),
            action: "secretsmanager:GetSecretValue",
            resource: f.prod_passphrase.clone(),
            reason: "explicit-deny-identity",
        },
        Probe {
            name: "qa-reads-its-parameter",
            from: Origin::Qa,
            command: "aws ssm get-parameters --names /app/qa/db-url".into(),
            action: "ssm:GetParameters",
            resource: parameter_arn("/app/qa/db-url"),
            reason: "allowed",
        },
        Probe {
            name: "qa-reads-productions-passphrase",
            from: Origin::Qa,
            command: format!(
                "aws secretsmanager get-secret-value --secret-id {}",
                f.prod_passphrase
            ),
            action: "secretsmanager:GetSecretValue",
            resource: f.prod_passphrase.clone(),
            reason: "explicit-deny-identity",
        },
        Probe {
            name: "qa-reads-productions-parameter",
            from: Origin::Qa,
            command: "aws ssm get-parameters --names /app/prod/db-url".into(),
            action: "ssm:GetParameters",
            resource: parameter_arn("/app/prod/db-url"),
            reason: "explicit-deny-identity",
        },
        Probe {
            name: "qa-reads-productions-state",
            from: Origin::Qa,
            command: format!("{} /dev/null", s3("get-object", STATE_BUCKET, prod_state)),
            action: "s3:GetObject",
            resource: state_arn.clone(),
            reason: "explicit-deny-identity",
        },
        Probe {
            name: "qa-overwrites-productions-artifact",
            from: Origin::Qa,
            command: put_artifact.clone(),
            action: "s3:PutObject",
            resource: artifact_arn.clone(),
            reason: "explicit-deny-identity",
        },
        Probe {
            name: "qa-assumes-productions-role",
            from: Origin::Qa,
            command: assume_prod.clone(),
            action: "sts:AssumeRole",
            resource: role_arn("prod-deployer"),
            reason: "explicit-deny-identity",
        },
        Probe {
            name: "preview-writes-productions-state",
            from: Origin::Preview,
            command: format!(
                "{} --body \"$0\"",
                s3("put-object", STATE_BUCKET, prod_state)
            ),
            action: "s3:PutObject",
            resource: state_arn.clone(),
            reason: "explicit-deny-identity",
        },
        Probe {
            name: "preview-overwrites-productions-artifact",
            from: Origin::Preview,
            command: put_artifact.clone(),
            action: "s3:PutObject",
            resource: artifact_arn.clone(),
            reason: "explicit-deny-identity",
        },
        Probe {
            name: "preview-assumes-the-deploy-role",
            from: Origin::Preview,
            command: assume_prod.clone(),
            action: "sts:AssumeRole",
            resource: role_arn("prod-deployer"),
            reason: "explicit-deny-identity",
        },
        Probe {
            name: "preview-reads-productions-parameter",
            from: Origin::Preview,
            command: "aws ssm get-parameters --names /app/prod/db-url".into(),
            action: "ssm:GetParameters",
            resource: parameter_arn("/app/prod/db-url"),
            reason: "explicit-deny-identity",
        },
        Probe {
            name: "preview-role-writes-productions-state",
            from: Origin::PreviewRole,
            command: format!(
                "{} --body \"$0\"",
                s3("put-object", STATE_BUCKET, prod_state)
            ),
            action: "s3:PutObject",
            resource: state_arn.clone(),
            reason: "no-identity-allow",
        },
    ];

    // The repository ships the probes, and a "provider plugin" its
    // infrastructure program loads: whatever the repository's program runs
    // at preview runs with the Preview action's credentials.
    let repo = repository(&world.emulator, PROBES_REPOSITORY);
    repo.write("ci/probes.sh", &probe_script(&probes));
    repo.write(
        "infra/probe-plugin/pulumi-resource-probe",
        "#!/usr/bin/env bash\nbash \"$CODEBUILD_SRC_DIR/ci/probes.sh\" preview >&2\nexit 1\n",
    );
    let plugin = repo.path().join("infra/probe-plugin/pulumi-resource-probe");
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&plugin)
        .status()
        .unwrap();
    let program = std::fs::read_to_string(repo.path().join("infra/Pulumi.yaml")).unwrap();
    repo.write(
        "infra/Pulumi.yaml",
        &program
            .replace(
                "runtime: yaml\n",
                "runtime: yaml\nplugins:\n  providers:\n    - name: probe\n      path: ./probe-plugin\n",
            )
            .replace(
                "resources:\n",
                "resources:\n  probe:\n    type: probe:index:Write\n",
            ),
    );
    repo.commit("Probes");

    let push = world.emulator.push(&repo, "main");
    let started = world.started_one(&push.started, "probes");
    let mut run = Run::new(&world.clients, &started, true);
    let done = run.finish(RUN_TIMEOUT).await;
    // The build and qa ran their probes; production's preview failed, as
    // its program's plugin never served; nothing was approved or deployed.
    for (stage, name, status) in [
        ("Build", "Build", "Succeeded"),
        ("qa", "Deploy", "Succeeded"),
        ("prod", "Preview", "Failed"),
    ] {
        assert_eq!(action(&done, stage, name).status, status, "{done:#?}");
    }
    assert!(done.action("prod", "Deploy").is_none(), "{done:#?}");

    let roles = world.roles("probes");
    let role_of = |from: Origin| -> String {
        let purpose = match from {
            Origin::Build => "build",
            Origin::Qa => "deploy-qa",
            Origin::Preview => "preview-prod",
            Origin::PreviewRole => return role_arn("prod-reader"),
        };
        roles[purpose].clone()
    };
    let decisions = world.emulator.decisions();
    let mut lines = Vec::new();
    for (stage, name) in [("Build", "Build"), ("qa", "Deploy"), ("prod", "Preview")] {
        let id = action(&done, stage, name).external_id.clone().unwrap();
        let log = build_log_lines(&world.clients, &id).await;
        lines.extend(log.into_iter().filter(|l| l.contains("PROBE ")));
    }
    let mut failures = Vec::new();
    for probe in &probes {
        let role = role_of(probe.from);
        let role_name = role.rsplit('/').next().unwrap();
        let seen: Vec<&Json> = decisions
            .iter()
            .filter(|d| {
                d["principal"]
                    .as_str()
                    .is_some_and(|p| p.contains(&format!(":assumed-role/{role_name}/")))
                    && d["action"] == json!(probe.action)
                    && d["resource"] == json!(probe.resource)
            })
            .collect();
        let reasons: Vec<&str> = seen.iter().filter_map(|d| d["reason"].as_str()).collect();
        let line = lines
            .iter()
            .find(|l| l.contains(&format!("PROBE {} ", probe.name)));
        let expected_line = if probe.reason == "allowed" {
            "ALLOWED"
        } else {
            "REFUSED"
        };
        if !reasons.contains(&probe.reason) || !line.is_some_and(|l| l.contains(expected_line)) {
            failures.push(format!(
                "{} ({:?}): expected {} on {} {}; decisions {reasons:?}; log {line:?}",
                probe.name, probe.from, probe.reason, probe.action, probe.resource
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} probes did not end as expected:\n{}\n\nprobe output:\n{}",
        failures.len(),
        probes.len(),
        failures.join("\n"),
        lines.join("\n")
    );
}
