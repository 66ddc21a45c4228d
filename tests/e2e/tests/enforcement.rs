//! The generated roles, in behaviour: a realistic pipeline (a build with a
//! secret, a dev stage and a production stage deploying Pulumi stacks from
//! an S3 backend, production behind a preview and an approval, each with
//! its own deploy role, a schedule) is deployed through the engine; then the emulator
//! enforces IAM, and each role, assumed through the emulator's STS the way
//! its service assumes it, is probed with the AWS SDK for Rust. Every probe
//! asserts an allow or AWS's AccessDenied; all outcomes are reported
//! together so one run shows every gap.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use securepipeline::component::plan::artifact_keys;
use securepipeline_e2e::readback::{self, text};
use securepipeline_e2e::{Clients, Emulator, Stack, ACCOUNT, REGION};
use serde_json::{json, Value as Json};

const STATE_BUCKET: &str = "web-state";
const CODEBUILD: &str = "codebuild.amazonaws.com";
const CODEPIPELINE: &str = "codepipeline.amazonaws.com";
const EVENTS: &str = "events.amazonaws.com";

fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

fn project_arn(name: &str) -> String {
    format!("arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{name}")
}

/// What the test creates before the pipeline: the secrets and parameters
/// the stages read, the production roles they assume, the state bucket.
struct Fixtures {
    build_token: String,
    dev_passphrase: String,
    prod_passphrase: String,
    unrelated_secret: String,
}

async fn fixtures(sdk: &aws_config::SdkConfig) -> Fixtures {
    let secrets = aws_sdk_secretsmanager::Client::new(sdk);
    let mut arns = Vec::new();
    for name in [
        "npm-token",
        "dev-passphrase",
        "prod-passphrase",
        "unrelated",
    ] {
        let created = secrets
            .create_secret()
            .name(name)
            .secret_string(format!("{name}-value"))
            .send()
            .await
            .unwrap();
        arns.push(created.arn().unwrap().to_string());
    }
    let ssm = aws_sdk_ssm::Client::new(sdk);
    for name in ["/web/dev/db-url", "/web/prod/config"] {
        ssm.put_parameter()
            .name(name)
            .value("v")
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .unwrap();
    }
    // Production's own roles; their trust policies name the account, so
    // whether a pipeline role may assume them is up to its own policies.
    let iam = aws_sdk_iam::Client::new(sdk);
    let account_trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
        "Action": "sts:AssumeRole"}]})
    .to_string();
    for name in ["prod-deployer", "prod-previewer"] {
        iam.create_role()
            .role_name(name)
            .assume_role_policy_document(&account_trust)
            .send()
            .await
            .unwrap();
    }
    let s3 = readback::s3(sdk);
    s3.create_bucket()
        .bucket(STATE_BUCKET)
        .send()
        .await
        .unwrap();
    for key in [
        "pulumi/.pulumi/meta.yaml",
        "pulumi/.pulumi/stacks/web-infra/dev.json",
        "pulumi/.pulumi/stacks/web-infra/prod.json",
    ] {
        s3.put_object()
            .bucket(STATE_BUCKET)
            .key(key)
            .body(ByteStream::from_static(b"{}"))
            .send()
            .await
            .unwrap();
    }
    let mut arns = arns.into_iter();
    let mut next = || arns.next().unwrap();
    Fixtures {
        build_token: next(),
        dev_passphrase: next(),
        prod_passphrase: next(),
        unrelated_secret: next(),
    }
}

fn program(f: &Fixtures) -> String {
    let deployments = json!([
        {"name": "dev",
         "environment": {"DB_URL": {"parameterName": "/web/dev/db-url"}},
         "pulumiStack": {"stack": "web-infra/dev", "workDir": "infra",
            "backendUrl": format!("s3://{STATE_BUCKET}/pulumi"), "passphraseSecretArn": f.dev_passphrase}},
        {"name": "prod", "production": true,
         "assumeRoleArn": role_arn("prod-deployer"), "previewRoleArn": role_arn("prod-previewer"),
         "environment": {"CONFIG": {"parameterName": "/web/prod/config"}},
         "pulumiStack": {"stack": "web-infra/prod", "workDir": "infra",
            "backendUrl": format!("s3://{STATE_BUCKET}/pulumi"), "passphraseSecretArn": f.prod_passphrase}}
    ]);
    let build_env = json!({"NPM_TOKEN": {"secretArn": f.build_token}});
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
        environment: {build_env}
      deployments: {deployments}
      schedule: rate(1 day)
outputs:
  pipelineName: ${{web.pipelineName}}
  pipelineArn: ${{web.pipelineArn}}
  connectionArn: ${{web.connectionArn}}
  artifactBucketName: ${{web.artifactBucketName}}
  kmsKeyArn: ${{web.kmsKeyArn}}
  notificationTopicArn: ${{web.notificationTopicArn}}
  buildProjectNames: ${{web.buildProjectNames}}
  logGroupNames: ${{web.logGroupNames}}
  roleArns: ${{web.roleArns}}
"#
    )
}

/// A call's outcome as a probe sees it: allowed, denied (with AWS's
/// message), or failed otherwise (which a probe reports, never passes).
enum Seen {
    Allowed,
    Denied(String),
    Failed(String),
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seen::Allowed => write!(f, "allowed"),
            Seen::Denied(message) => write!(f, "AccessDenied: {message}"),
            Seen::Failed(error) => write!(f, "another error: {error}"),
        }
    }
}

fn seen<T, E: ProvideErrorMetadata + std::fmt::Debug>(result: Result<T, E>) -> Seen {
    match result {
        Ok(_) => Seen::Allowed,
        Err(err) if matches!(err.code(), Some("AccessDenied" | "AccessDeniedException")) => {
            Seen::Denied(err.message().unwrap_or_default().to_string())
        }
        Err(err) => Seen::Failed(format!("{err:?}")),
    }
}

/// The probes' verdicts, reported together.
#[derive(Default)]
struct Probes {
    failures: Vec<String>,
    count: usize,
}

impl Probes {
    fn allowed(&mut self, what: &str, outcome: Seen) {
        self.count += 1;
        if !matches!(outcome, Seen::Allowed) {
            self.failures
                .push(format!("expected ALLOWED: {what}\n    got {outcome}"));
        }
    }

    /// Denied, and AWS's message says why (`because` is a part of it:
    /// "explicit deny" or "no identity-based policy allows").
    fn denied(&mut self, what: &str, because: &str, outcome: Seen) {
        self.count += 1;
        match outcome {
            Seen::Denied(message) if message.contains(because) => {}
            other => self.failures.push(format!(
                "expected DENIED ({because}): {what}\n    got {other}"
            )),
        }
    }

    /// A decision the emulator took for an action with no API call.
    fn decided(&mut self, what: &str, allowed: bool, decision: Json) {
        self.count += 1;
        if decision["allowed"] != json!(allowed) {
            self.failures.push(format!(
                "expected {}: {what}\n    got {decision}",
                if allowed { "ALLOWED" } else { "DENIED" }
            ));
        }
    }
}

/// Clients signed with one assumed role's session.
struct As {
    key_id: String,
    clients: Clients,
}

impl std::ops::Deref for As {
    type Target = Clients;
    fn deref(&self) -> &Clients {
        &self.clients
    }
}

impl As {
    async fn service(emulator: &Emulator, service: &str, role: &str, source_arn: &str) -> Self {
        let session = emulator
            .assume_as_service(service, role, source_arn)
            .await
            .unwrap_or_else(|refusal| panic!("{service} may not assume {role}: {refusal}"));
        Self {
            key_id: session.access_key_id,
            clients: Clients::new(&session.sdk),
        }
    }

    async fn secret(&self, arn: &str) -> Seen {
        seen(self.secrets.get_secret_value().secret_id(arn).send().await)
    }

    /// As CodeBuild resolves a `parameter-store` variable: GetParameters.
    async fn parameter(&self, name: &str) -> Seen {
        seen(self.ssm.get_parameters().names(name).send().await)
    }

    async fn parameter_alone(&self, name: &str) -> Seen {
        seen(self.ssm.get_parameter().name(name).send().await)
    }

    async fn assume(&self, role: &str) -> Seen {
        seen(
            self.sts
                .assume_role()
                .role_arn(role)
                .role_session_name("probe")
                .send()
                .await,
        )
    }

    async fn read(&self, bucket: &str, key: &str) -> Seen {
        seen(self.s3.get_object().bucket(bucket).key(key).send().await)
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Seen {
        seen(
            self.s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .send()
                .await,
        )
    }

    /// A write as the pipeline's tools make it: SSE-KMS with the bucket's key.
    async fn write(&self, bucket: &str, key: &str, kms_key: &str) -> Seen {
        seen(
            self.s3
                .put_object()
                .bucket(bucket)
                .key(key)
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(kms_key)
                .body(ByteStream::from_static(b"artifact"))
                .send()
                .await,
        )
    }

    async fn log_stream(&self, group: &str) -> Seen {
        seen(
            self.logs
                .create_log_stream()
                .log_group_name(group)
                .log_stream_name("probe")
                .send()
                .await,
        )
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_roles_allow_their_work_and_nothing_of_production() {
    let emulator = Emulator::start();
    let admin = emulator.sdk().await;
    let f = fixtures(&admin).await;
    let stack = Stack::yaml(&emulator, "web-enforced", &program(&f));
    stack.up().success();
    let out = stack.outputs();
    let roles = out["roleArns"].as_object().unwrap();
    let role = |purpose: &str| roles[purpose].as_str().unwrap().to_string();
    let names = |key: &str| -> Vec<String> {
        out[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    // The build, the stages in order, then production's preview.
    let projects = names("buildProjectNames");
    let log_groups = names("logGroupNames");
    assert_eq!(projects.len(), 4, "{projects:?}");
    let pipeline = text(&out, "pipelineName");
    let bucket = text(&out, "artifactBucketName");
    let key = text(&out, "kmsKeyArn");
    let build_inputs = artifact_keys(&pipeline, "BuildOutput").replace('*', "source.zip");
    let dev_outputs = artifact_keys(&pipeline, "StackOutputs1-dev").replace('*', "out.zip");
    let prod_outputs = artifact_keys(&pipeline, "StackOutputs2-prod").replace('*', "out.zip");
    readback::s3(&admin)
        .put_object()
        .bucket(&bucket)
        .key(&build_inputs)
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(&key)
        .body(ByteStream::from_static(b"build output"))
        .send()
        .await
        .unwrap();

    emulator.enforce_iam(true);
    let mut probe = Probes::default();

    // Only CodeBuild, for the role's own project, may take a project role.
    probe.count += 1;
    if emulator
        .assume_as_service(CODEBUILD, &role("deploy-prod"), &project_arn(&projects[1]))
        .await
        .is_ok()
    {
        probe
            .failures
            .push("dev's project could take production's deploy role".into());
    }
    probe.count += 1;
    if emulator
        .assume_as_service(CODEPIPELINE, &role("build"), &project_arn(&projects[0]))
        .await
        .is_ok()
    {
        probe
            .failures
            .push("CodePipeline could take the build's role".into());
    }

    // The build reads exactly its secret.
    let build = As::service(
        &emulator,
        CODEBUILD,
        &role("build"),
        &project_arn(&projects[0]),
    )
    .await;
    probe.allowed("build reads its secret", build.secret(&f.build_token).await);
    probe.denied(
        "build reads dev's passphrase",
        "because no identity-based policy allows",
        build.secret(&f.dev_passphrase).await,
    );
    probe.denied(
        "build reads an unrelated secret",
        "because no identity-based policy allows",
        build.secret(&f.unrelated_secret).await,
    );
    probe.allowed(
        "build writes its log group",
        build.log_stream(&log_groups[0]).await,
    );
    probe.denied(
        "build writes production's log group",
        "because no identity-based policy allows",
        build.log_stream(&log_groups[2]).await,
    );

    // Dev: its own secret, parameter, state and outputs; none of production's.
    let dev = As::service(
        &emulator,
        CODEBUILD,
        &role("deploy-dev"),
        &project_arn(&projects[1]),
    )
    .await;
    probe.allowed(
        "dev reads its passphrase",
        dev.secret(&f.dev_passphrase).await,
    );
    probe.denied(
        "dev reads production's passphrase",
        "with an explicit deny",
        dev.secret(&f.prod_passphrase).await,
    );
    probe.allowed(
        "dev reads its parameter",
        dev.parameter("/web/dev/db-url").await,
    );
    probe.denied(
        "dev reads its parameter with GetParameter, which no stage needs",
        "because no identity-based policy allows the ssm:GetParameter action",
        dev.parameter_alone("/web/dev/db-url").await,
    );
    probe.denied(
        "dev reads production's parameter",
        "with an explicit deny",
        dev.parameter("/web/prod/config").await,
    );
    probe.allowed(
        "dev reads the build's artifact",
        dev.read(&bucket, &build_inputs).await,
    );
    probe.allowed(
        "dev writes its own outputs artifact",
        dev.write(&bucket, &dev_outputs, &key).await,
    );
    probe.denied(
        "dev writes its own outputs unencrypted (the bucket policy)",
        "with an explicit deny in a resource-based policy",
        seen(
            dev.s3
                .put_object()
                .bucket(&bucket)
                .key(&dev_outputs)
                .body(ByteStream::from_static(b"plain"))
                .send()
                .await,
        ),
    );
    probe.denied(
        "dev reads the build's artifact over plain HTTP (the bucket policy)",
        "with an explicit deny in a resource-based policy",
        seen(
            dev.s3
                .get_object()
                .bucket(&bucket)
                .key(&build_inputs)
                .customize()
                .mutate_request(|request| {
                    request
                        .headers_mut()
                        .insert("X-Emulator-Secure-Transport", "false");
                })
                .send()
                .await,
        ),
    );
    probe.denied(
        "dev overwrites production's outputs artifact",
        "with an explicit deny",
        dev.write(&bucket, &prod_outputs, &key).await,
    );
    probe.allowed(
        "dev reads its stack's state",
        dev.read(STATE_BUCKET, "pulumi/.pulumi/stacks/web-infra/dev.json")
            .await,
    );
    probe.denied(
        "dev reads production's stack state",
        "with an explicit deny",
        dev.read(STATE_BUCKET, "pulumi/.pulumi/stacks/web-infra/prod.json")
            .await,
    );
    probe.allowed(
        "dev lists its stack's locks",
        dev.list(
            STATE_BUCKET,
            "pulumi/.pulumi/locks/organization/web-infra/dev/",
        )
        .await,
    );
    probe.denied(
        "dev lists production's stack's locks",
        "with an explicit deny",
        dev.list(
            STATE_BUCKET,
            "pulumi/.pulumi/locks/organization/web-infra/prod/",
        )
        .await,
    );
    probe.denied(
        "dev assumes production's deploy role",
        "with an explicit deny",
        dev.assume(&role_arn("prod-deployer")).await,
    );
    // S3 encrypts its objects with data keys: the stage may make one, and
    // may not encrypt with the key directly.
    probe.allowed(
        "dev makes a data key with the artifact key",
        seen(
            dev.kms
                .generate_data_key()
                .key_id(&key)
                .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
                .send()
                .await,
        ),
    );
    probe.denied(
        "dev encrypts with the artifact key",
        "because no identity-based policy allows the kms:Encrypt action",
        seen(
            dev.kms
                .encrypt()
                .key_id(&key)
                .plaintext(aws_sdk_kms::primitives::Blob::new("x"))
                .send()
                .await,
        ),
    );

    // Production's deploy stage assumes its deploy role; its preview only
    // the read-only one.
    let prod = As::service(
        &emulator,
        CODEBUILD,
        &role("deploy-prod"),
        &project_arn(&projects[2]),
    )
    .await;
    probe.allowed(
        "production assumes its deploy role",
        prod.assume(&role_arn("prod-deployer")).await,
    );
    probe.allowed(
        "production reads its parameter",
        prod.parameter("/web/prod/config").await,
    );
    let preview = As::service(
        &emulator,
        CODEBUILD,
        &role("preview-prod"),
        &project_arn(&projects[3]),
    )
    .await;
    probe.allowed(
        "production preview assumes the preview role",
        preview.assume(&role_arn("prod-previewer")).await,
    );
    probe.denied(
        "production preview assumes the deploy role",
        "with an explicit deny",
        preview.assume(&role_arn("prod-deployer")).await,
    );
    probe.allowed(
        "production preview reads its stack's state",
        preview
            .read(STATE_BUCKET, "pulumi/.pulumi/stacks/web-infra/prod.json")
            .await,
    );
    probe.denied(
        "production preview writes production's outputs",
        "with an explicit deny",
        preview.write(&bucket, &prod_outputs, &key).await,
    );

    // The pipeline: runs its own builds, uses its connection for its
    // repository only, notifies its topic, and hands no role to anyone.
    let pipeline_role = As::service(
        &emulator,
        CODEPIPELINE,
        &role("pipeline"),
        &text(&out, "pipelineArn"),
    )
    .await;
    probe.allowed(
        "pipeline reads builds of its project",
        seen(
            pipeline_role
                .codebuild
                .batch_get_builds()
                .ids(format!("{}:0", projects[0]))
                .send()
                .await,
        ),
    );
    probe.denied(
        "pipeline starts another project's build",
        "because no identity-based policy allows",
        seen(
            pipeline_role
                .codebuild
                .start_build()
                .project_name("someone-elses")
                .send()
                .await,
        ),
    );
    probe.allowed(
        "pipeline publishes to its topic",
        seen(
            pipeline_role
                .sns
                .publish()
                .topic_arn(text(&out, "notificationTopicArn"))
                .message("probe")
                .send()
                .await,
        ),
    );
    let connection = text(&out, "connectionArn");
    let use_connection = if connection.contains(":codeconnections:") {
        (
            "codeconnections:UseConnection",
            "codeconnections:FullRepositoryId",
        )
    } else {
        (
            "codestar-connections:UseConnection",
            "codestar-connections:FullRepositoryId",
        )
    };
    probe.decided(
        "pipeline uses its connection for its repository",
        true,
        emulator.authorize(
            &pipeline_role.key_id,
            use_connection.0,
            &connection,
            json!({ use_connection.1: "example-org/web" }),
        ),
    );
    probe.decided(
        "pipeline uses its connection for another repository",
        false,
        emulator.authorize(
            &pipeline_role.key_id,
            use_connection.0,
            &connection,
            json!({ use_connection.1: "example-org/other" }),
        ),
    );
    for (what, passed) in [
        ("build", role("build")),
        ("deploy-prod", role("deploy-prod")),
    ] {
        probe.decided(
            &format!("pipeline passes the {what} role to CodeBuild"),
            false,
            emulator.authorize(
                &pipeline_role.key_id,
                "iam:PassRole",
                &passed,
                json!({"iam:PassedToService": CODEBUILD}),
            ),
        );
    }

    // The schedule's role, taken by EventBridge for its rule, starts this
    // pipeline and nothing else.
    let events_role = role("events");
    let rule_arn = readback::role(&aws_sdk_iam::Client::new(&admin), &events_role)
        .await
        .trust
        .statements[0]
        .conditions["ArnEquals"]["aws:SourceArn"][0]
        .clone();
    let schedule = As::service(&emulator, EVENTS, &events_role, &rule_arn).await;
    probe.allowed(
        "the schedule starts its pipeline",
        seen(
            schedule
                .codepipeline
                .start_pipeline_execution()
                .name(&pipeline)
                .send()
                .await,
        ),
    );
    probe.denied(
        "the schedule starts another pipeline",
        "because no identity-based policy allows",
        seen(
            schedule
                .codepipeline
                .start_pipeline_execution()
                .name("another-pipeline")
                .send()
                .await,
        ),
    );
    probe.denied(
        "the schedule reads the build's secret",
        "because no identity-based policy allows",
        schedule.secret(&f.build_token).await,
    );

    let decisions = emulator.decisions();
    assert!(
        probe.failures.is_empty(),
        "{} of {} probes failed:\n{}\n\ndecisions:\n{}",
        probe.failures.len(),
        probe.count,
        probe.failures.join("\n"),
        decisions
            .iter()
            .filter(|d| d["allowed"] == json!(false))
            .map(Json::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(decisions.len() >= probe.count, "{decisions:?}");
}
