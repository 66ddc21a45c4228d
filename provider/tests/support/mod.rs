//! Runs the project's AWS emulator on a free loopback port for tests that
//! drive resource kinds directly (the engine-driven suite is tests/e2e).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use securepipeline::aws::{AwsContext, ProviderConfig};
use securepipeline::engine_log::EngineLog;
use securepipeline::resource::OpContext;

pub const REGION: &str = "us-east-1";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub struct Emulator {
    child: Child,
    pub endpoint: String,
}

impl Emulator {
    pub fn start() -> Self {
        let root = repo_root();
        let python = root.join(".tools/venv/bin/python");
        assert!(
            python.exists(),
            "the emulator is not installed: run scripts/install-toolchain.sh"
        );
        let mut child = Command::new(python)
            .args(["-m", "securepipeline_emulator", "--port", "0"])
            .env("PYTHONPATH", root.join("tests/emulator"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
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
            .unwrap_or_else(|| panic!("unexpected emulator output: {line:?}"));
        Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
        }
    }

    /// Replaces the emulator's fault plan (tests/emulator/README.md), e.g.
    /// `rate=1,kinds=lost,only=kms:CreateKey,limit=1`; "" turns faults off.
    pub fn set_faults(&self, spec: &str) {
        self.control("faults", &format!("{{\"spec\":\"{spec}\"}}"));
    }

    /// Turns IAM enforcement on or off (tests/emulator/README.md): calls
    /// made with an assumed role's credentials are then authorised as AWS
    /// does.
    pub fn enforce_iam(&self, enabled: bool) {
        self.control("enforcement", &format!("{{\"enabled\":{enabled}}}"));
    }

    /// Posts a JSON body to one of the emulator's `/_emulator/` controls.
    fn control(&self, path: &str, body: &str) {
        let address = self.endpoint.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).expect("connect to the emulator");
        write!(
            stream,
            "POST /_emulator/{path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("send to the emulator");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("read from the emulator");
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "POST /_emulator/{path} {body}: {response}"
        );
    }

    /// A provider context pointed at the emulator, as Configure builds it.
    pub async fn context(&self) -> AwsContext {
        // Emulator credentials; the standard chain reads them like any others.
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        std::env::remove_var("AWS_PROFILE");
        let config = ProviderConfig {
            region: Some(REGION.into()),
            endpoints: [("default".to_string(), self.endpoint.clone())]
                .into_iter()
                .collect(),
            ..Default::default()
        };
        config
            .connect()
            .await
            .expect("configure against the emulator")
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An operation context for a resource with this URN.
pub fn op<'a>(aws: &'a AwsContext, log: &'a EngineLog, urn: &'a str) -> OpContext<'a> {
    OpContext { aws, urn, log }
}
