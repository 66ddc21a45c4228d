//! The plugin process: port on the first line, clean stop on SIGTERM, on
//! SIGINT and on the engine's Cancel.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use securepipeline::proto::pulumirpc::resource_provider_client::ResourceProviderClient;

fn start() -> (Child, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pulumi-resource-securepipeline"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the plugin");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the port");
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("first line is not a port: {line:?}"));
    (child, port)
}

/// Waits up to five seconds for the process to exit on its own.
fn exits_cleanly(mut child: Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("poll the plugin") {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    false
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

#[test]
fn stops_cleanly_on_sigterm() {
    let (child, _) = start();
    signal(&child, "TERM");
    assert!(
        exits_cleanly(child),
        "the plugin did not exit 0 after SIGTERM"
    );
}

#[test]
fn stops_cleanly_on_sigint() {
    let (child, _) = start();
    signal(&child, "INT");
    assert!(
        exits_cleanly(child),
        "the plugin did not exit 0 after SIGINT"
    );
}

#[tokio::test]
async fn stops_cleanly_on_cancel() {
    let (child, port) = start();
    let mut client = ResourceProviderClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .expect("connect");
    client.cancel(()).await.expect("Cancel");
    drop(client);
    assert!(
        exits_cleanly(child),
        "the plugin did not exit 0 after Cancel"
    );
}
