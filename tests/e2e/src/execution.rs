//! Running a deployed pipeline in the emulator: a local git repository as
//! the connection's repository (pushed through the emulator's admin
//! endpoint), the pinned Pulumi CLI served from local files the way the
//! generated buildspec's verified install downloads it, the other admin
//! endpoints (schedules, published messages, the builds' environment), and
//! following an execution with the AWS SDK as a person watching the console
//! would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::{repo_root, tools_bin, Clients, Emulator};

/// The CLI release stages install unless they pin another.
pub use securepipeline::schema::PULUMI_SDK_VERSION as PULUMI_VERSION;

/// How often a run is polled.
const POLL: Duration = Duration::from_millis(400);

fn run(command: &mut Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("{what}: {err}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

// ------------------------------------------------------- the CLI release --

/// The pinned Pulumi CLI as its release is published: the tarball
/// `pulumi-v<version>-linux-<arch>.tar.gz` (top directory `pulumi/` with the
/// CLI and the language hosts from `.tools/bin`) under `releases/`, and
/// `v<version>/pulumi-<version>-checksums.txt` under `checksums/`, the two
/// origins the buildspec reads.
pub struct PulumiRelease {
    root: PathBuf,
}

impl PulumiRelease {
    /// The release of the project-local CLI, built once per CLI binary and
    /// kept under `target/` (building it takes seconds, not minutes).
    pub fn local() -> Self {
        let cli = tools_bin().join("pulumi");
        let version = run(Command::new(&cli).arg("version"), "pulumi version");
        let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
        assert_eq!(
            version,
            format!("v{PULUMI_VERSION}"),
            "stages install Pulumi {PULUMI_VERSION}; .tools/bin holds {version}"
        );
        let stamp = std::fs::metadata(&cli)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target"));
        let parent = target.join("e2e-pulumi-release");
        let root = parent.join(format!("{PULUMI_VERSION}-{stamp}"));
        if !root.join("checksums").exists() {
            std::fs::create_dir_all(&parent).expect("release directory");
            // Built aside and renamed into place, so that concurrent test
            // processes never see half a release.
            let staging = tempfile::tempdir_in(&parent).expect("staging directory");
            Self::build(staging.path());
            let staged = staging.keep();
            if std::fs::rename(&staged, &root).is_err() {
                let _ = std::fs::remove_dir_all(&staged);
            }
        }
        Self { root }
    }

    fn build(dir: &Path) {
        let tree = dir.join("tree/pulumi");
        std::fs::create_dir_all(&tree).expect("release tree");
        for entry in std::fs::read_dir(tools_bin()).expect("read .tools/bin") {
            let path = entry.expect("a .tools/bin entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with("pulumi") {
                std::fs::copy(&path, tree.join(name)).expect("copy into the release");
            }
        }
        let tarball = Self::tarball_name();
        let releases = dir.join("releases");
        let checksums = dir.join(format!("checksums/v{PULUMI_VERSION}"));
        for d in [&releases, &checksums] {
            std::fs::create_dir_all(d).expect("release directories");
        }
        run(
            Command::new("bash")
                .arg("-c")
                .arg("set -o pipefail; tar -C \"$1\" -cf - pulumi | gzip -1 > \"$2\"")
                .arg("pack")
                .arg(dir.join("tree"))
                .arg(releases.join(&tarball)),
            "packing the Pulumi release",
        );
        let sum = run(
            Command::new("sha256sum")
                .arg(&tarball)
                .current_dir(&releases),
            "sha256sum",
        );
        std::fs::write(
            checksums.join(format!("pulumi-{PULUMI_VERSION}-checksums.txt")),
            sum.stdout,
        )
        .expect("write the checksums");
        std::fs::remove_dir_all(dir.join("tree")).expect("remove the release tree");
    }

    fn tarball_name() -> String {
        let arch = match std::env::consts::ARCH {
            "aarch64" => "arm64",
            _ => "x64",
        };
        format!("pulumi-v{PULUMI_VERSION}-linux-{arch}.tar.gz")
    }

    /// The build environment variables that move the buildspec's download
    /// origins here.
    pub fn environment(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "SECUREPIPELINE_PULUMI_RELEASES_URL".to_string(),
                format!("file://{}", self.root.join("releases").display()),
            ),
            (
                "SECUREPIPELINE_PULUMI_CHECKSUMS_URL".to_string(),
                format!("file://{}", self.root.join("checksums").display()),
            ),
        ])
    }
}

/// What the build image provides besides the CLI release: the provider
/// plugin on `PATH` (offline, a stage's program finds its plugin there).
pub fn build_image_environment(release: &PulumiRelease) -> BTreeMap<String, String> {
    let mut variables = release.environment();
    let path = std::env::var("PATH").unwrap_or_default();
    variables.insert(
        "PATH".to_string(),
        format!("{}:{path}", crate::provider_dir().display()),
    );
    variables
}

// ----------------------------------------------------------- repository --

/// A git repository in a temporary directory, standing for the
/// connection's repository (`owner/name`).
pub struct Repository {
    dir: tempfile::TempDir,
    pub full_id: String,
}

impl Repository {
    /// `tests/e2e/fixtures/app-repo`, committed on `main`.
    pub fn fixture(full_id: &str) -> Self {
        let dir = tempfile::tempdir().expect("repository directory");
        copy_tree(&repo_root().join("tests/e2e/fixtures/app-repo"), dir.path());
        let repo = Self {
            dir,
            full_id: full_id.to_string(),
        };
        repo.git(&["init", "--quiet", "--initial-branch=main"]);
        repo.commit("The app, its tests and its infrastructure");
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, relative: &str, content: &str) {
        let path = self.path().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("directory in the repository");
        }
        std::fs::write(&path, content).expect("write into the repository");
    }

    /// Commits everything; the new head.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "--message", message]);
        self.git(&["rev-parse", "HEAD"]).trim().to_string()
    }

    /// Tags the head (a lightweight tag, as a release script would).
    pub fn tag(&self, name: &str) {
        self.git(&["tag", name]);
    }

    /// Creates the branch at the head and checks it out.
    pub fn branch(&self, name: &str) {
        self.git(&["checkout", "--quiet", "-b", name]);
    }

    fn git(&self, args: &[&str]) -> String {
        let output = run(
            Command::new("git")
                .args([
                    "-c",
                    "user.name=Fixture Developer",
                    "-c",
                    "user.email=developer@example.com",
                    "-c",
                    "commit.gpgsign=false",
                ])
                .args(args)
                .current_dir(self.path()),
            &format!("git {}", args.join(" ")),
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create a directory");
    for entry in std::fs::read_dir(from).expect("read the fixture") {
        let entry = entry.expect("a fixture entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            if entry.file_name() != "__pycache__" {
                copy_tree(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a fixture file");
        }
    }
}

// ------------------------------------------------------ Pulumi state, S3 --

/// The pinned CLI run as the account's administrator against a state
/// backend in the emulator: what a team does once on a workstation (log in
/// to a new backend, create a stack and commit its settings file).
pub struct StateAdmin {
    home: tempfile::TempDir,
    endpoint: String,
}

impl StateAdmin {
    pub fn new(emulator: &Emulator) -> Self {
        Self {
            home: tempfile::tempdir().expect("PULUMI_HOME"),
            endpoint: emulator.endpoint(),
        }
    }

    /// `pulumi <args>` in `dir`; `passphrase` encrypts the stack's config.
    pub fn pulumi(&self, dir: &Path, passphrase: &str, args: &[&str]) -> String {
        let output = run(
            Command::new(tools_bin().join("pulumi"))
                .args(args)
                .args(["--non-interactive", "--color=never"])
                .current_dir(dir)
                .env("PULUMI_HOME", self.home.path())
                .env("PULUMI_CONFIG_PASSPHRASE", passphrase)
                .env("PULUMI_SKIP_UPDATE_CHECK", "true")
                .env("PULUMI_DIY_BACKEND_NO_LEGACY_WARNING", "true")
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env("AWS_REGION", crate::REGION)
                .env("AWS_ENDPOINT_URL", &self.endpoint)
                .env_remove("AWS_PROFILE")
                .env_remove("PULUMI_BACKEND_URL"),
            &format!("pulumi {}", args.join(" ")),
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

// ------------------------------------------------------ admin endpoints --

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    pub pipeline: String,
    pub execution_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Skipped {
    pub pipeline: String,
    pub reason: String,
}

/// What a push started and what it did not.
#[derive(Debug, Clone, Deserialize)]
pub struct Push {
    pub started: Vec<Started>,
    pub skipped: Vec<Skipped>,
}

/// A message an SNS topic received.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Published {
    pub topic_arn: String,
    #[serde(default)]
    pub subject: Option<String>,
    pub message: String,
    #[serde(default)]
    pub published_by: Option<String>,
}

impl Emulator {
    fn admin(&self, method: &str, path: &str, body: Json) -> (u16, Json) {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (status, text) = self.request(method, path, &body);
        let answer = serde_json::from_str(&text)
            .unwrap_or_else(|err| panic!("{method} {path}: not JSON ({err}): {text:?}"));
        (status, answer)
    }

    fn admin_ok(&self, method: &str, path: &str, body: Json) -> Json {
        let (status, answer) = self.admin(method, path, body);
        assert!(status < 300, "{method} {path} answered {status}: {answer}");
        answer
    }

    /// Makes `repository` the repository connections name by its id.
    pub fn register_repository(&self, repository: &Repository) {
        self.admin_ok(
            "POST",
            "/_emulator/repositories",
            json!({"fullRepositoryId": repository.full_id, "path": repository.path()}),
        );
    }

    /// A push of `branch`'s head: the pipelines whose triggers match start.
    pub fn push(&self, repository: &Repository, branch: &str) -> Push {
        let answer = self.admin_ok(
            "POST",
            "/_emulator/repositories/push",
            json!({"fullRepositoryId": repository.full_id, "branch": branch}),
        );
        serde_json::from_value(answer.clone())
            .unwrap_or_else(|err| panic!("push answer {answer}: {err}"))
    }

    /// A push of the tag `tag`: the pipelines whose tag filters match start.
    pub fn push_tag(&self, repository: &Repository, tag: &str) -> Push {
        let answer = self.admin_ok(
            "POST",
            "/_emulator/repositories/push",
            json!({"fullRepositoryId": repository.full_id, "tag": tag}),
        );
        serde_json::from_value(answer.clone())
            .unwrap_or_else(|err| panic!("push answer {answer}: {err}"))
    }

    /// The schedule's time arriving: EventBridge invokes the rule's targets
    /// under their roles. The executions started, or the refusal.
    pub fn fire_schedule(&self, rule_arn: &str) -> Result<Vec<Started>, String> {
        let (status, answer) = self.admin(
            "POST",
            "/_emulator/schedules/fire",
            json!({ "ruleArn": rule_arn }),
        );
        if status >= 300 {
            return Err(answer.to_string());
        }
        serde_json::from_value(answer["started"].clone())
            .map_err(|err| format!("schedule answer {answer}: {err}"))
    }

    /// Every message published to SNS topics since the last reset.
    pub fn published(&self) -> Vec<Published> {
        let answer = self.admin_ok("GET", "/_emulator/published", Json::Null);
        serde_json::from_value(answer.clone())
            .unwrap_or_else(|err| panic!("published messages {answer}: {err}"))
    }

    pub fn reset_published(&self) {
        self.admin_ok("POST", "/_emulator/published/reset", json!({}));
    }

    /// Adds variables to every build's environment (what the build image
    /// provides).
    pub fn set_build_environment(&self, variables: &BTreeMap<String, String>) {
        self.admin_ok(
            "POST",
            "/_emulator/builds/environment",
            json!({ "variables": variables }),
        );
    }

    /// Every CodePipeline event, with what became of it at each matching
    /// rule's targets.
    pub fn events(&self) -> Vec<Json> {
        let answer = self.admin_ok("GET", "/_emulator/events", Json::Null);
        serde_json::from_value(answer.clone())
            .unwrap_or_else(|err| panic!("events {answer}: {err}"))
    }

    pub fn reset_decisions(&self) {
        self.admin_ok("POST", "/_emulator/decisions/reset", json!({}));
    }
}

// ------------------------------------------------------------ following --

/// One action of an execution, as ListActionExecutions shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRun {
    pub stage: String,
    pub action: String,
    /// The action type's provider: `CodeBuild`, `Manual`, ...
    pub provider: String,
    pub status: String,
    pub summary: String,
    /// The CodeBuild build id, for build actions.
    pub external_id: Option<String>,
    /// Where each output artifact went: (name, bucket, key).
    pub outputs: Vec<(String, String, String)>,
}

/// An execution at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub status: String,
    pub actions: Vec<ActionRun>,
}

impl Snapshot {
    pub fn action(&self, stage: &str, action: &str) -> Option<&ActionRun> {
        self.actions
            .iter()
            .find(|a| a.stage == stage && a.action == action)
    }

    pub fn is_final(&self) -> bool {
        matches!(
            self.status.as_str(),
            "Succeeded" | "Failed" | "Stopped" | "Superseded" | "Cancelled"
        )
    }
}

/// Follows one execution; with `verbose`, prints every change of an
/// action's status as it is seen.
pub struct Run<'a> {
    clients: &'a Clients,
    pub pipeline: String,
    pub execution_id: String,
    verbose: bool,
    started: Instant,
    seen: BTreeMap<(String, String), String>,
    status: String,
}

impl<'a> Run<'a> {
    pub fn new(clients: &'a Clients, started: &Started, verbose: bool) -> Self {
        Self {
            clients,
            pipeline: started.pipeline.clone(),
            execution_id: started.execution_id.clone(),
            verbose,
            started: Instant::now(),
            seen: BTreeMap::new(),
            status: String::new(),
        }
    }

    pub async fn snapshot(&self) -> Snapshot {
        let execution = self
            .clients
            .codepipeline
            .get_pipeline_execution()
            .pipeline_name(&self.pipeline)
            .pipeline_execution_id(&self.execution_id)
            .send()
            .await
            .unwrap_or_else(|err| panic!("GetPipelineExecution {}: {err:?}", self.execution_id));
        let status = execution
            .pipeline_execution()
            .and_then(|e| e.status())
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        let listed = self
            .clients
            .codepipeline
            .list_action_executions()
            .pipeline_name(&self.pipeline)
            .filter(
                aws_sdk_codepipeline::types::ActionExecutionFilter::builder()
                    .pipeline_execution_id(&self.execution_id)
                    .build(),
            )
            .send()
            .await
            .unwrap_or_else(|err| panic!("ListActionExecutions {}: {err:?}", self.execution_id));
        let mut actions: Vec<ActionRun> = listed
            .action_execution_details()
            .iter()
            .map(|d| {
                let output = d.output().and_then(|o| o.execution_result());
                ActionRun {
                    stage: d.stage_name().unwrap_or_default().to_string(),
                    action: d.action_name().unwrap_or_default().to_string(),
                    provider: d
                        .input()
                        .and_then(|i| i.action_type_id())
                        .map(|t| t.provider().to_string())
                        .unwrap_or_default(),
                    status: d
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    summary: output
                        .and_then(|r| r.external_execution_summary())
                        .or_else(|| {
                            output
                                .and_then(|r| r.error_details())
                                .and_then(|e| e.message())
                        })
                        .unwrap_or_default()
                        .to_string(),
                    external_id: output
                        .and_then(|r| r.external_execution_id())
                        .map(str::to_string),
                    outputs: d
                        .output()
                        .map(|o| o.output_artifacts())
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|a| {
                            let at = a.s3_location()?;
                            Some((
                                a.name().unwrap_or_default().to_string(),
                                at.bucket().unwrap_or_default().to_string(),
                                at.key().unwrap_or_default().to_string(),
                            ))
                        })
                        .collect(),
                }
            })
            .collect();
        // The API lists the newest first; the console, in order.
        actions.reverse();
        Snapshot { status, actions }
    }

    fn report(&mut self, snapshot: &Snapshot) {
        let at = self.started.elapsed().as_secs_f32();
        for action in &snapshot.actions {
            let key = (action.stage.clone(), action.action.clone());
            if self.seen.get(&key) != Some(&action.status) {
                if self.verbose {
                    let summary = if action.summary.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", action.summary)
                    };
                    eprintln!(
                        "[{at:6.1}s] {:<8} {:<10} {}{summary}",
                        action.stage, action.action, action.status
                    );
                }
                self.seen.insert(key, action.status.clone());
            }
        }
        if self.status != snapshot.status {
            if self.verbose {
                eprintln!("[{at:6.1}s] execution {}", snapshot.status);
            }
            self.status = snapshot.status.clone();
        }
    }

    /// Polls until `done` holds, reporting progress; panics after `timeout`
    /// with the last state seen.
    pub async fn until(
        &mut self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Snapshot) -> bool,
    ) -> Snapshot {
        let deadline = Instant::now() + timeout;
        loop {
            let snapshot = self.snapshot().await;
            self.report(&snapshot);
            if done(&snapshot) {
                return snapshot;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {timeout:?}; execution {} is {}: {:#?}",
                self.execution_id,
                snapshot.status,
                snapshot.actions
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Until the execution ends.
    pub async fn finish(&mut self, timeout: Duration) -> Snapshot {
        self.until("the execution to end", timeout, Snapshot::is_final)
            .await
    }

    /// The token of the approval action waiting in `stage`, once it waits.
    /// The action is in progress before its token shows: CodePipeline
    /// notifies the reviewers first.
    pub async fn approval_token(&mut self, stage: &str, action: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let waiting = self
                .until(
                    &format!("approval {stage}/{action} to wait"),
                    deadline.saturating_duration_since(Instant::now()),
                    |s| {
                        s.is_final()
                            || s.action(stage, action)
                                .is_some_and(|a| a.status == "InProgress")
                    },
                )
                .await;
            let state = self
                .clients
                .codepipeline
                .get_pipeline_state()
                .name(&self.pipeline)
                .send()
                .await
                .unwrap_or_else(|err| panic!("GetPipelineState {}: {err:?}", self.pipeline));
            let token = state
                .stage_states()
                .iter()
                .filter(|s| s.stage_name() == Some(stage))
                .flat_map(|s| s.action_states())
                .filter(|a| a.action_name() == Some(action))
                .find_map(|a| a.latest_execution().and_then(|e| e.token()))
                .map(str::to_string);
            if let Some(token) = token {
                return token;
            }
            assert!(
                !waiting.is_final() && Instant::now() < deadline,
                "no approval token for {stage}/{action}: {state:#?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Approves (or rejects) the waiting approval, as a reviewer does.
    pub async fn review(&self, stage: &str, action: &str, token: &str, approve: bool) {
        let status = if approve {
            aws_sdk_codepipeline::types::ApprovalStatus::Approved
        } else {
            aws_sdk_codepipeline::types::ApprovalStatus::Rejected
        };
        self.clients
            .codepipeline
            .put_approval_result()
            .pipeline_name(&self.pipeline)
            .stage_name(stage)
            .action_name(action)
            .token(token)
            .result(
                aws_sdk_codepipeline::types::ApprovalResult::builder()
                    .status(status)
                    .summary("reviewed the preview")
                    .build()
                    .expect("approval result"),
            )
            .send()
            .await
            .unwrap_or_else(|err| panic!("PutApprovalResult {stage}/{action}: {err:?}"));
    }
}

/// Where a build's log is: its log group and stream, as CodeBuild reports.
pub async fn build_log(clients: &Clients, build_id: &str) -> (String, String) {
    let builds = clients
        .codebuild
        .batch_get_builds()
        .ids(build_id)
        .send()
        .await
        .unwrap_or_else(|err| panic!("BatchGetBuilds {build_id}: {err:?}"));
    let logs = builds
        .builds()
        .first()
        .and_then(|b| b.logs())
        .unwrap_or_else(|| panic!("build {build_id} has no logs: {builds:?}"));
    (
        logs.group_name().unwrap_or_default().to_string(),
        logs.stream_name().unwrap_or_default().to_string(),
    )
}

/// Every line of a build's log.
pub async fn build_log_lines(clients: &Clients, build_id: &str) -> Vec<String> {
    let (group, stream) = build_log(clients, build_id).await;
    let mut lines = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = clients
            .logs
            .get_log_events()
            .log_group_name(&group)
            .log_stream_name(&stream)
            .start_from_head(true)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap_or_else(|err| panic!("GetLogEvents {group} {stream}: {err:?}"));
        lines.extend(
            page.events()
                .iter()
                .filter_map(|e| e.message().map(str::to_string)),
        );
        let next = page.next_forward_token().map(str::to_string);
        if next.is_none() || next == token {
            return lines;
        }
        token = next;
    }
}

// ------------------------------------------------------ least privilege --

/// One permission a role's policy grants: an action on a resource pattern,
/// from one Allow statement.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub statement: String,
    pub action: String,
    pub resource: String,
}

/// A role's grants, and which of them the decisions of a run used.
#[derive(Debug, Clone)]
pub struct Usage {
    pub role: String,
    pub granted: Vec<Grant>,
    pub unused: Vec<Grant>,
    /// Allowed decisions on the role's sessions.
    pub allowed: usize,
    /// Refused decisions on the role's sessions.
    pub denied: usize,
}

/// The role a decision's principal is a session of
/// (`arn:aws:sts::<account>:assumed-role/<role>/<session>`).
pub fn session_role(principal: &str) -> Option<&str> {
    principal
        .split_once(":assumed-role/")
        .and_then(|(_, rest)| rest.split('/').next())
}

/// IAM's glob: `*` any run of characters, `?` one.
pub fn glob(pattern: &str, value: &str) -> bool {
    fn go(p: &[u8], v: &[u8]) -> bool {
        match p.split_first() {
            None => v.is_empty(),
            Some((b'*', rest)) => (0..=v.len()).any(|i| go(rest, &v[i..])),
            Some((b'?', rest)) => !v.is_empty() && go(rest, &v[1..]),
            Some((c, rest)) => v.first() == Some(c) && go(rest, &v[1..]),
        }
    }
    go(pattern.as_bytes(), value.as_bytes())
}

/// Per role: what its inline policies allow (the provider attaches no
/// managed policy), against what the allowed decisions of a run exercised.
/// A grant is used when an allowed decision of one of the role's sessions
/// names an action and a resource it covers (action names compare without
/// case, as IAM's do).
pub async fn usage(iam: &aws_sdk_iam::Client, role_arn: &str, decisions: &[Json]) -> Usage {
    let role = role_arn.rsplit('/').next().unwrap_or(role_arn).to_string();
    let live = crate::readback::role(iam, role_arn).await;
    let mut granted = Vec::new();
    for (name, policy) in &live.policies {
        for (index, statement) in policy.statements.iter().enumerate() {
            if statement.effect != securepipeline::iam::Effect::Allow {
                continue;
            }
            let sid = statement
                .sid
                .clone()
                .unwrap_or_else(|| format!("{name}#{index}"));
            for action in &statement.actions {
                for resource in &statement.resources {
                    granted.push(Grant {
                        statement: sid.clone(),
                        action: action.clone(),
                        resource: resource.clone(),
                    });
                }
            }
        }
    }
    granted.sort();
    granted.dedup();
    let own: Vec<&Json> = decisions
        .iter()
        .filter(|d| d["principal"].as_str().and_then(session_role) == Some(role.as_str()))
        .collect();
    let allowed: Vec<&Json> = own
        .iter()
        .copied()
        .filter(|d| d["allowed"] == json!(true))
        .collect();
    let unused = granted
        .iter()
        .filter(|g| {
            !allowed.iter().any(|d| {
                let action = d["action"].as_str().unwrap_or_default();
                let resource = d["resource"].as_str().unwrap_or_default();
                glob(&g.action.to_ascii_lowercase(), &action.to_ascii_lowercase())
                    && glob(&g.resource, resource)
            })
        })
        .cloned()
        .collect();
    Usage {
        role,
        granted,
        unused,
        allowed: allowed.len(),
        denied: own.len() - allowed.len(),
    }
}

/// The usages as a table: one row per role.
pub fn usage_table(rows: &[(String, Usage)]) -> String {
    let mut table = format!(
        "{:<16} {:>7} {:>5} {:>7} {:>8} {:>7}\n",
        "role", "granted", "used", "unused", "allowed", "denied"
    );
    for (purpose, usage) in rows {
        table.push_str(&format!(
            "{:<16} {:>7} {:>5} {:>7} {:>8} {:>7}\n",
            purpose,
            usage.granted.len(),
            usage.granted.len() - usage.unused.len(),
            usage.unused.len(),
            usage.allowed,
            usage.denied
        ));
    }
    table
}
