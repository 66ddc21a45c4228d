//! The end-to-end harness: an AWS emulator on a free loopback port, a
//! temporary Pulumi project with a local file backend, the real `pulumi`
//! CLI and language hosts from `.tools/bin`, and the provider binary built
//! by cargo. Every later check reads results back from the emulator.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value as Json;

pub mod docs;
pub mod execution;
pub mod release;
pub mod scenario;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tools_bin() -> PathBuf {
    repo_root().join(".tools/bin")
}

/// The provider binary cargo built for this test run.
pub fn provider_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let dir = target.join(profile);
    assert!(
        dir.join("pulumi-resource-securepipeline").exists(),
        "build the provider first: cargo build -p pulumi-resource-securepipeline{}",
        if profile == "release" {
            " --release"
        } else {
            ""
        }
    );
    dir
}

/// The AWS emulator (moto with this project's extension).
pub struct Emulator {
    child: Child,
    pub port: u16,
}

impl Emulator {
    pub fn start() -> Self {
        let root = repo_root();
        let python = root.join(".tools/venv/bin/python");
        assert!(
            python.exists(),
            "the emulator is not installed: run scripts/install-toolchain.sh"
        );
        // SECUREPIPELINE_E2E_EMULATOR_LOGS=<dir> keeps each emulator's log
        // (its requests, and the builds and pipeline runs it carried out).
        let log = match std::env::var_os("SECUREPIPELINE_E2E_EMULATOR_LOGS") {
            Some(dir) => {
                let file = tempfile::Builder::new()
                    .prefix("emulator-")
                    .suffix(".log")
                    .tempfile_in(dir)
                    .expect("an emulator log in SECUREPIPELINE_E2E_EMULATOR_LOGS");
                let (file, path) = file.keep().expect("keep the emulator log");
                eprintln!("emulator log: {}", path.display());
                Stdio::from(file)
            }
            None => Stdio::null(),
        };
        let mut child = Command::new(python)
            .args(["-m", "securepipeline_emulator", "--port", "0"])
            .env("PYTHONPATH", root.join("tests/emulator"))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start the emulator");
        let stdout = child.stdout.take().expect("emulator stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the emulator's port");
        let port = line
            .trim()
            .strip_prefix("port=")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected emulator output: {line:?}"));
        Self { child, port }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn http(&self, method: &str, path: &str, body: &str) -> String {
        self.request(method, path, body).1
    }

    /// One admin request: the answer's status and body. The body is read
    /// to its Content-Length, not to the connection's end.
    fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the emulator");
        // An answer that never comes fails the test instead of hanging it.
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(120)))
            .expect("read timeout");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("send to the emulator");
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader
            .read_line(&mut status_line)
            .unwrap_or_else(|err| panic!("{method} {path}: reading the answer: {err}"));
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("{method} {path}: no HTTP status in {status_line:?}"));
        let mut length = None;
        loop {
            let mut header = String::new();
            reader
                .read_line(&mut header)
                .unwrap_or_else(|err| panic!("{method} {path}: reading the answer: {err}"));
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        let mut answer = Vec::new();
        match length {
            Some(length) => {
                answer.resize(length, 0);
                reader.read_exact(&mut answer)
            }
            None => reader.read_to_end(&mut answer).map(|_| ()),
        }
        .unwrap_or_else(|err| panic!("{method} {path}: reading the answer: {err}"));
        (status, String::from_utf8_lossy(&answer).into_owned())
    }

    /// Every AWS call the emulator has seen since the last reset.
    pub fn calls(&self) -> Vec<Call> {
        let body = self.http("GET", "/_emulator/calls", "");
        serde_json::from_str(&body).unwrap_or_else(|err| panic!("bad call log {body:?}: {err}"))
    }

    pub fn reset_calls(&self) {
        self.http("POST", "/_emulator/calls/reset", "");
    }

    /// Holds every `service` `operation` call open, received but not
    /// answered, until [`Emulator::release`].
    pub fn hold(&self, service: &str, operation: &str) {
        self.http(
            "POST",
            "/_emulator/hold",
            &serde_json::json!({"service": service, "operation": operation}).to_string(),
        );
    }

    pub fn release(&self) {
        self.http("POST", "/_emulator/release", "");
    }

    /// How many held calls are waiting.
    pub fn held(&self) -> u64 {
        let body = self.http("GET", "/_emulator/held", "");
        serde_json::from_str::<Json>(&body)
            .ok()
            .and_then(|held| held["waiting"].as_u64())
            .unwrap_or_else(|| panic!("bad held answer {body:?}"))
    }

    /// Replaces the emulator's fault plan (tests/emulator/README.md), e.g.
    /// `rate=0.2,seed=7`; "" turns faults off.
    pub fn set_faults(&self, spec: &str) {
        let body = serde_json::json!({ "spec": spec }).to_string();
        let answer = self.http("POST", "/_emulator/faults", &body);
        assert!(
            answer.contains("\"spec\""),
            "setting faults {spec}: {answer}"
        );
    }

    /// Simulates a person activating a connection in the console.
    pub fn activate_connection(&self, arn: &str) {
        let encoded: String = arn
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        self.http(
            "POST",
            &format!("/_emulator/connections/{encoded}/status"),
            r#"{"status":"AVAILABLE"}"#,
        );
    }

    /// Switches the emulator's IAM enforcement on or off (see
    /// tests/emulator/README.md).
    pub fn enforce_iam(&self, enabled: bool) {
        let body = self.http(
            "POST",
            "/_emulator/enforcement",
            &serde_json::json!({ "enabled": enabled }).to_string(),
        );
        assert!(body.contains("enabled"), "enforcement switch: {body}");
    }

    /// Assumes `role_arn` as `service` does (CodeBuild for a project's
    /// role), under `source_arn` and this account: the role's trust policy
    /// decides. The session signs with its credentials, or the emulator's
    /// refusal comes back.
    pub async fn assume_as_service(
        &self,
        service: &str,
        role_arn: &str,
        source_arn: &str,
    ) -> Result<Session, String> {
        let body = self.http(
            "POST",
            "/_emulator/enforcement/assume-role",
            &serde_json::json!({
                "service": service, "roleArn": role_arn, "sourceArn": source_arn,
                "sourceAccount": ACCOUNT, "sessionName": "probe",
            })
            .to_string(),
        );
        let answer: Json = serde_json::from_str(&body)
            .unwrap_or_else(|err| panic!("bad assume-role answer {body:?}: {err}"));
        let field = |name: &str| answer[name].as_str().map(str::to_string);
        let (Some(key), Some(secret), Some(token)) = (
            field("AccessKeyId"),
            field("SecretAccessKey"),
            field("SessionToken"),
        ) else {
            return Err(field("message").unwrap_or(body));
        };
        let credentials =
            aws_sdk_sts::config::Credentials::new(&key, secret, Some(token), None, "assumed");
        let sdk = self
            .sdk()
            .await
            .to_builder()
            .credentials_provider(aws_sdk_sts::config::SharedCredentialsProvider::new(
                credentials,
            ))
            .build();
        Ok(Session {
            sdk,
            access_key_id: key,
        })
    }

    /// Decides an action a service takes with a session's permissions that
    /// has no API call of its own (`iam:PassRole`,
    /// `codeconnections:UseConnection`): the emulator's recorded decision.
    pub fn authorize(
        &self,
        access_key_id: &str,
        action: &str,
        resource: &str,
        context: Json,
    ) -> Json {
        let body = self.http(
            "POST",
            "/_emulator/enforcement/authorize",
            &serde_json::json!({
                "accessKeyId": access_key_id, "action": action, "resource": resource,
                "context": context,
            })
            .to_string(),
        );
        serde_json::from_str(&body).unwrap_or_else(|err| panic!("bad decision {body:?}: {err}"))
    }

    /// Every enforcement decision so far.
    pub fn decisions(&self) -> Vec<Json> {
        let body = self.http("GET", "/_emulator/decisions", "");
        serde_json::from_str(&body).unwrap_or_else(|err| panic!("bad decisions {body:?}: {err}"))
    }

    /// An SDK config pointed at the emulator, for reading results back.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(self.endpoint())
            .credentials_provider(aws_sdk_sts::config::Credentials::new(
                "testing", "testing", None, None, "e2e",
            ))
            .load()
            .await
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A role session from the emulator's STS.
pub struct Session {
    pub sdk: aws_config::SdkConfig,
    pub access_key_id: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Call {
    pub service: String,
    pub operation: String,
    pub write: bool,
    #[serde(default)]
    pub region: String,
    /// The fault the emulator injected into this call, if any.
    #[serde(default)]
    pub fault: Option<String>,
    /// True when this call repeats a request that met a fault.
    #[serde(default)]
    pub retry: bool,
}

/// A Pulumi project and stack in a temporary directory, with its own
/// PULUMI_HOME and a local file backend.
pub struct Stack {
    dir: tempfile::TempDir,
    endpoint: String,
}

impl Stack {
    /// Creates project `name` from a Pulumi.yaml body (YAML runtime),
    /// initialises stack `test` and points the provider at the emulator.
    pub fn yaml(emulator: &Emulator, name: &str, program: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary project directory");
        let plugin_dir = provider_dir();
        let pulumi_yaml = format!(
            "name: {name}\nruntime: yaml\nplugins:\n  providers:\n    - name: securepipeline\n      path: {}\n{program}",
            plugin_dir.display()
        );
        std::fs::write(dir.path().join("Pulumi.yaml"), pulumi_yaml).expect("write Pulumi.yaml");
        std::fs::create_dir_all(dir.path().join(".state")).expect("state directory");
        let stack = Self {
            dir,
            endpoint: emulator.endpoint(),
        };
        stack.pulumi(&["stack", "init", "test"]).success();
        stack
            .pulumi(&["config", "set", "securepipeline:region", REGION])
            .success();
        stack
            .pulumi(&[
                "config",
                "set",
                "--path",
                "securepipeline:endpoints.default",
                &stack.endpoint,
            ])
            .success();
        stack
    }

    /// `examples/<language>` as `make example` prepares it, its stack
    /// `local` pointed at this emulator.
    pub fn example(emulator: &Emulator, language: &str) -> Self {
        Self::project(
            emulator,
            &repo_root().join("examples").join(language),
            "local",
        )
    }

    /// A copy of the Pulumi project in `source`, prepared by
    /// `scripts/prepare-project.sh` (dependencies installed the way a
    /// user's project gets them, the provider cargo built as its plugin),
    /// with stack `stack` pointed at this emulator.
    pub fn project(emulator: &Emulator, source: &Path, stack_name: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary project directory");
        std::fs::create_dir_all(dir.path().join(".state")).expect("state directory");
        let stack = Self {
            dir,
            endpoint: emulator.endpoint(),
        };
        let mut prepare = Command::new("bash");
        prepare
            .arg(repo_root().join("scripts/prepare-project.sh"))
            .arg(source)
            .arg(stack.path())
            .env("PROVIDER_DIR", provider_dir());
        stack.engine_env(&mut prepare);
        let output = prepare.output().expect("run prepare-project.sh");
        assert!(
            output.status.success(),
            "prepare-project.sh {} failed:\n{}\n{}",
            source.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        stack.pulumi(&["stack", "init", stack_name]).success();
        stack
            .pulumi(&[
                "config",
                "set",
                "--path",
                "securepipeline:endpoints.default",
                &stack.endpoint,
            ])
            .success();
        stack
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces the program (the `resources:`/`outputs:` part of Pulumi.yaml).
    pub fn set_program(&self, name: &str, program: &str) {
        let pulumi_yaml = format!(
            "name: {name}\nruntime: yaml\nplugins:\n  providers:\n    - name: securepipeline\n      path: {}\n{program}",
            provider_dir().display()
        );
        std::fs::write(self.path().join("Pulumi.yaml"), pulumi_yaml).expect("write Pulumi.yaml");
    }

    /// Replaces Pulumi.yaml with a program that relies on the installed
    /// plugin (no `plugins:` path).
    pub fn set_program_without_plugin_path(&self, name: &str, program: &str) {
        std::fs::write(
            self.path().join("Pulumi.yaml"),
            format!("name: {name}\nruntime: yaml\n{program}"),
        )
        .expect("write Pulumi.yaml");
    }

    /// Removes Pulumi.yaml's `plugins:` block, so the engine finds the
    /// provider the way a user's project does: in PULUMI_HOME, or by
    /// downloading the version the SDK names from its pluginDownloadURL.
    pub fn drop_plugin_paths(&self) {
        let file = self.path().join("Pulumi.yaml");
        let text = std::fs::read_to_string(&file).expect("read Pulumi.yaml");
        let mut project: serde_yaml_ng::Mapping =
            serde_yaml_ng::from_str(&text).expect("Pulumi.yaml is a mapping");
        project.remove("plugins");
        std::fs::write(
            &file,
            serde_yaml_ng::to_string(&project).expect("serialize Pulumi.yaml"),
        )
        .expect("write Pulumi.yaml");
    }

    pub fn pulumi(&self, args: &[&str]) -> Run {
        self.pulumi_with_env(args, &[])
    }

    /// `pulumi` with extra environment variables, set after (so
    /// overriding) the project's own.
    pub fn pulumi_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let log_file = self.path().join("engine.log");
        let mut command = Command::new(tools_bin().join("pulumi"));
        command
            .args(args)
            .args(["--non-interactive", "--color=never"]);
        self.engine_env(&mut command);
        command.envs(env.iter().copied());
        let output = command.stdin(Stdio::null()).output().expect("run pulumi");
        Run {
            args: args.iter().map(|a| a.to_string()).collect(),
            output,
            log_file,
        }
    }

    /// Starts `pulumi` without waiting, in a process group of its own so
    /// that the whole group (CLI, language host, provider) can be signalled
    /// the way a terminal's Ctrl-C signals it.
    pub fn spawn(&self, args: &[&str]) -> Child {
        let mut command = Command::new(tools_bin().join("pulumi"));
        command
            .args(args)
            .args(["--non-interactive", "--color=never"]);
        self.engine_env(&mut command);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pulumi")
    }

    /// What every process of this project runs with: the project-local
    /// tools first on PATH, its own PULUMI_HOME and backend, the emulator's
    /// credentials.
    fn engine_env(&self, command: &mut Command) {
        let path = format!(
            "{}:{}",
            tools_bin().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        command
            .current_dir(self.path())
            .env("PATH", path)
            .env("PULUMI_HOME", self.path().join(".pulumi-home"))
            .env(
                "PULUMI_BACKEND_URL",
                format!("file://{}", self.path().join(".state").display()),
            )
            .env("PULUMI_CONFIG_PASSPHRASE", "e2e-passphrase")
            .env("PULUMI_SKIP_UPDATE_CHECK", "true")
            .env("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "true")
            .env("PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK", "true")
            .env("GOTOOLCHAIN", "local")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", REGION)
            .env_remove("AWS_PROFILE")
            .env("SECUREPIPELINE_LOG", "info")
            .env("PULUMI_DEBUG_GRPC", self.path().join("grpc.log"));
    }

    pub fn up(&self) -> Run {
        self.pulumi(&["up", "--yes", "--skip-preview"])
    }

    pub fn preview(&self) -> Run {
        self.pulumi(&["preview", "--diff"])
    }

    pub fn refresh(&self) -> Run {
        self.pulumi(&["refresh", "--yes", "--skip-preview"])
    }

    pub fn destroy(&self) -> Run {
        self.pulumi(&["destroy", "--yes", "--skip-preview"])
    }

    /// The stack's outputs, secrets shown.
    pub fn outputs(&self) -> Json {
        let run = self
            .pulumi(&["stack", "output", "--json", "--show-secrets"])
            .success();
        serde_json::from_str(&run.stdout()).expect("stack outputs are JSON")
    }

    /// The raw checkpoint (to look for plaintext secrets).
    pub fn export(&self) -> String {
        self.pulumi(&["stack", "export"]).success().stdout()
    }
}

/// One CLI run; `success()` prints everything when it failed.
pub struct Run {
    args: Vec<String>,
    output: Output,
    log_file: PathBuf,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn ok(&self) -> bool {
        self.output.status.success()
    }

    fn report(&self) -> String {
        let log = std::fs::read_to_string(&self.log_file).unwrap_or_default();
        format!(
            "pulumi {} exited {}\n--- stdout\n{}\n--- stderr\n{}\n--- engine log\n{}",
            self.args.join(" "),
            self.output.status,
            self.stdout(),
            self.stderr(),
            log
        )
    }

    #[track_caller]
    pub fn success(self) -> Self {
        assert!(self.ok(), "{}", self.report());
        self
    }

    #[track_caller]
    pub fn failure(self) -> Self {
        assert!(!self.ok(), "expected failure, but: {}", self.report());
        self
    }

    /// Both streams, for asserting on messages.
    pub fn text(&self) -> String {
        format!("{}\n{}", self.stdout(), self.stderr())
    }
}

/// A client of every service the product touches, all on one SDK config
/// (the emulator's administrator, or one assumed role's session).
pub struct Clients {
    pub codebuild: aws_sdk_codebuild::Client,
    pub codepipeline: aws_sdk_codepipeline::Client,
    pub connections: aws_sdk_codestarconnections::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub iam: aws_sdk_iam::Client,
    pub kms: aws_sdk_kms::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub s3: aws_sdk_s3::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub sns: aws_sdk_sns::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub sts: aws_sdk_sts::Client,
}

impl Clients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            codebuild: aws_sdk_codebuild::Client::new(sdk),
            codepipeline: aws_sdk_codepipeline::Client::new(sdk),
            connections: aws_sdk_codestarconnections::Client::new(sdk),
            events: aws_sdk_eventbridge::Client::new(sdk),
            iam: aws_sdk_iam::Client::new(sdk),
            kms: aws_sdk_kms::Client::new(sdk),
            logs: aws_sdk_cloudwatchlogs::Client::new(sdk),
            s3: readback::s3(sdk),
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            ssm: aws_sdk_ssm::Client::new(sdk),
            sts: aws_sdk_sts::Client::new(sdk),
        }
    }
}

/// Reading what the provider created back from the emulator.
pub mod readback {
    use std::collections::BTreeMap;

    use securepipeline::iam::PolicyDocument;
    use serde_json::Value as Json;

    /// A string output of the stack.
    pub fn text(outputs: &Json, key: &str) -> String {
        outputs[key]
            .as_str()
            .unwrap_or_else(|| panic!("output {key} missing: {outputs}"))
            .to_string()
    }

    /// A policy document as AWS returns it (IAM URL-encodes them).
    pub fn policy(text: &str) -> PolicyDocument {
        PolicyDocument::parse_aws(text).unwrap_or_else(|err| panic!("{err}: {text}"))
    }

    /// S3 by path, as emulators serve it.
    pub fn s3(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(sdk)
                .force_path_style(true)
                .build(),
        )
    }

    /// A role as IAM holds it.
    pub struct LiveRole {
        pub trust: PolicyDocument,
        pub policies: BTreeMap<String, PolicyDocument>,
        pub managed_policies: Vec<String>,
        pub tags: BTreeMap<String, String>,
    }

    pub async fn role(iam: &aws_sdk_iam::Client, arn: &str) -> LiveRole {
        let name = arn.rsplit('/').next().unwrap_or(arn);
        let role = iam.get_role().role_name(name).send().await.unwrap();
        let trust = policy(role.role().unwrap().assume_role_policy_document().unwrap());
        let mut policies = BTreeMap::new();
        let names = iam
            .list_role_policies()
            .role_name(name)
            .send()
            .await
            .unwrap();
        for policy_name in names.policy_names() {
            let doc = iam
                .get_role_policy()
                .role_name(name)
                .policy_name(policy_name)
                .send()
                .await
                .unwrap();
            policies.insert(policy_name.clone(), policy(doc.policy_document()));
        }
        let attached = iam
            .list_attached_role_policies()
            .role_name(name)
            .send()
            .await
            .unwrap();
        let tags = iam.list_role_tags().role_name(name).send().await.unwrap();
        LiveRole {
            trust,
            policies,
            managed_policies: attached
                .attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_string))
                .collect(),
            tags: tags
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
        }
    }

    /// An artifact bucket as G6 wants it: versioned, SSE-KMS with `key_arn`
    /// by default, every public access block on.
    pub async fn assert_bucket_encrypted_and_private(
        s3: &aws_sdk_s3::Client,
        bucket: &str,
        key_arn: &str,
    ) {
        let versioning = s3
            .get_bucket_versioning()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
        assert_eq!(versioning.status().unwrap().as_str(), "Enabled", "{bucket}");
        let encryption = s3
            .get_bucket_encryption()
            .bucket(bucket)
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
        assert_eq!(default.sse_algorithm().as_str(), "aws:kms", "{bucket}");
        assert_eq!(default.kms_master_key_id(), Some(key_arn), "{bucket}");
        let block = s3
            .get_public_access_block()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
        let block = block.public_access_block_configuration().unwrap();
        assert_eq!(
            (
                block.block_public_acls(),
                block.ignore_public_acls(),
                block.block_public_policy(),
                block.restrict_public_buckets()
            ),
            (Some(true), Some(true), Some(true), Some(true)),
            "{bucket}"
        );
    }

    /// Everything of the kinds SecurePipeline creates that is still in one
    /// region of the emulator (IAM and S3 are global there): after a
    /// destroy this must be empty. Keys count unless pending deletion,
    /// since KMS never deletes a key at once.
    pub async fn leftovers(sdk: &aws_config::SdkConfig) -> Vec<String> {
        let mut left = Vec::new();
        let pipelines = aws_sdk_codepipeline::Client::new(sdk)
            .list_pipelines()
            .send()
            .await
            .unwrap();
        left.extend(
            pipelines
                .pipelines()
                .iter()
                .map(|p| format!("pipeline {}", p.name().unwrap_or_default())),
        );
        let projects = aws_sdk_codebuild::Client::new(sdk)
            .list_projects()
            .send()
            .await
            .unwrap();
        left.extend(projects.projects().iter().map(|p| format!("project {p}")));
        let buckets = s3(sdk).list_buckets().send().await.unwrap();
        left.extend(
            buckets
                .buckets()
                .iter()
                .map(|b| format!("bucket {}", b.name().unwrap_or_default())),
        );
        let roles = aws_sdk_iam::Client::new(sdk)
            .list_roles()
            .send()
            .await
            .unwrap();
        left.extend(
            roles
                .roles()
                .iter()
                .map(|r| format!("role {}", r.role_name())),
        );
        let rules = aws_sdk_eventbridge::Client::new(sdk)
            .list_rules()
            .send()
            .await
            .unwrap();
        left.extend(
            rules
                .rules()
                .iter()
                .map(|r| format!("rule {}", r.name().unwrap_or_default())),
        );
        let topics = aws_sdk_sns::Client::new(sdk)
            .list_topics()
            .send()
            .await
            .unwrap();
        left.extend(
            topics
                .topics()
                .iter()
                .map(|t| format!("topic {}", t.topic_arn().unwrap_or_default())),
        );
        let groups = aws_sdk_cloudwatchlogs::Client::new(sdk)
            .describe_log_groups()
            .send()
            .await
            .unwrap();
        left.extend(
            groups
                .log_groups()
                .iter()
                .map(|g| format!("log group {}", g.log_group_name().unwrap_or_default())),
        );
        let connections = aws_sdk_codestarconnections::Client::new(sdk)
            .list_connections()
            .send()
            .await
            .unwrap();
        left.extend(
            connections
                .connections()
                .iter()
                .map(|c| format!("connection {}", c.connection_arn().unwrap_or_default())),
        );
        let kms = aws_sdk_kms::Client::new(sdk);
        for key in kms.list_keys().send().await.unwrap().keys() {
            let id = key.key_id().unwrap_or_default();
            let described = kms.describe_key().key_id(id).send().await.unwrap();
            let state = described
                .key_metadata()
                .and_then(|m| m.key_state())
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            if state != "PendingDeletion" {
                left.push(format!("key {id} ({state})"));
            }
        }
        left
    }
}

/// The seeds a seeded test runs: `<PREFIX>_SEEDS=3,17` replays those,
/// `<PREFIX>_SOAK=1` runs 1 to `soak`, and otherwise `default` alone.
pub fn seeds(prefix: &str, soak: u64, default: u64) -> Vec<u64> {
    if let Ok(list) = std::env::var(format!("{prefix}_SEEDS")) {
        return list
            .split(',')
            .map(|seed| {
                seed.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{prefix}_SEEDS: numbers"))
            })
            .collect();
    }
    if std::env::var(format!("{prefix}_SOAK")).is_ok_and(|v| v == "1") {
        return (1..=soak).collect();
    }
    vec![default]
}

/// What of the provider's kinds exists, in the state and in the emulator,
/// to prove that nothing is duplicated or orphaned.
pub mod inventory {
    use std::collections::BTreeMap;

    use serde_json::Value as Json;

    use crate::readback::{self, text};

    /// The kinds the provider creates, by type token, as the inventory names them.
    pub const KINDS: [(&str, &str); 10] = [
        ("securepipeline:aws:Key", "key"),
        ("securepipeline:aws:ArtifactBucket", "bucket"),
        ("securepipeline:aws:AccessLogBucket", "bucket"),
        ("securepipeline:aws:Role", "role"),
        ("securepipeline:aws:BuildProject", "project"),
        ("securepipeline:aws:Pipeline", "pipeline"),
        ("securepipeline:aws:EventRule", "rule"),
        ("securepipeline:aws:Topic", "topic"),
        ("securepipeline:aws:LogGroup", "log group"),
        ("securepipeline:aws:Connection", "connection"),
    ];

    /// The ids of the custom resources the stack's state holds, by kind.
    pub fn state_ids(export: &str) -> BTreeMap<&'static str, Vec<String>> {
        let state: Json = serde_json::from_str(export).expect("stack export is JSON");
        let mut ids: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        for resource in state["deployment"]["resources"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let token = resource["type"].as_str().unwrap_or_default();
            if let Some((_, kind)) = KINDS.iter().find(|(t, _)| *t == token) {
                ids.entry(kind).or_default().push(text(resource, "id"));
            }
        }
        ids.values_mut().for_each(|list| list.sort());
        ids
    }

    /// Everything of the provider's kinds the emulator holds, by kind, in both
    /// regions (IAM and S3 are global there). Keys pending deletion and AWS's
    /// own aliases do not count.
    pub async fn inventory(
        regions: &[aws_config::SdkConfig],
    ) -> BTreeMap<&'static str, Vec<String>> {
        let mut found: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        let home = &regions[0];
        let iam = aws_sdk_iam::Client::new(home);
        let roles = iam.list_roles().send().await.unwrap();
        found
            .entry("role")
            .or_default()
            .extend(roles.roles().iter().map(|r| r.role_name().to_string()));
        let buckets = readback::s3(home).list_buckets().send().await.unwrap();
        found.entry("bucket").or_default().extend(
            buckets
                .buckets()
                .iter()
                .filter_map(|b| b.name().map(str::to_string)),
        );
        for sdk in regions {
            let kms = aws_sdk_kms::Client::new(sdk);
            for key in kms.list_keys().send().await.unwrap().keys() {
                let id = key.key_id().unwrap_or_default();
                let described = kms.describe_key().key_id(id).send().await.unwrap();
                let state = described.key_metadata().and_then(|m| m.key_state());
                if state.map(|s| s.as_str()) != Some("PendingDeletion") {
                    found.entry("key").or_default().push(id.to_string());
                }
            }
            let aliases = kms.list_aliases().send().await.unwrap();
            found.entry("alias").or_default().extend(
                aliases
                    .aliases()
                    .iter()
                    .filter_map(|a| a.alias_name())
                    .filter(|name| !name.starts_with("alias/aws/"))
                    .map(str::to_string),
            );
            let projects = aws_sdk_codebuild::Client::new(sdk)
                .list_projects()
                .send()
                .await
                .unwrap();
            found
                .entry("project")
                .or_default()
                .extend(projects.projects().iter().cloned());
            let pipelines = aws_sdk_codepipeline::Client::new(sdk)
                .list_pipelines()
                .send()
                .await
                .unwrap();
            found.entry("pipeline").or_default().extend(
                pipelines
                    .pipelines()
                    .iter()
                    .filter_map(|p| p.name().map(str::to_string)),
            );
            let rules = aws_sdk_eventbridge::Client::new(sdk)
                .list_rules()
                .send()
                .await
                .unwrap();
            found.entry("rule").or_default().extend(
                rules
                    .rules()
                    .iter()
                    .filter_map(|r| r.name().map(str::to_string)),
            );
            let topics = aws_sdk_sns::Client::new(sdk)
                .list_topics()
                .send()
                .await
                .unwrap();
            found.entry("topic").or_default().extend(
                topics
                    .topics()
                    .iter()
                    .filter_map(|t| t.topic_arn().map(str::to_string)),
            );
            let groups = aws_sdk_cloudwatchlogs::Client::new(sdk)
                .describe_log_groups()
                .send()
                .await
                .unwrap();
            found.entry("log group").or_default().extend(
                groups
                    .log_groups()
                    .iter()
                    .filter_map(|g| g.log_group_name().map(str::to_string)),
            );
            let connections = aws_sdk_codestarconnections::Client::new(sdk)
                .list_connections()
                .send()
                .await
                .unwrap();
            found.entry("connection").or_default().extend(
                connections
                    .connections()
                    .iter()
                    .filter_map(|c| c.connection_arn().map(str::to_string)),
            );
        }
        found.retain(|_, list| !list.is_empty());
        found.values_mut().for_each(|list| list.sort());
        found
    }

    pub fn counts(inventory: &BTreeMap<&'static str, Vec<String>>) -> String {
        inventory
            .iter()
            .map(|(kind, ids)| format!("{kind}: {}", ids.len()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
