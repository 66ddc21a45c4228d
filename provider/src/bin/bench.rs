//! Prints the provider's start-up time, idle memory and per-call latency
//! of GetSchema, Check and Diff over a real gRPC connection. Numbers only;
//! nothing here passes or fails.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use securepipeline::proto::pulumirpc::{
    resource_provider_client::ResourceProviderClient, CheckRequest, DiffRequest, GetSchemaRequest,
};
use securepipeline::protocol::json::json_to_property;
use securepipeline::protocol::value::{encode_struct, PropertyMap};
use securepipeline::protocol::MAX_MESSAGE_SIZE;

const STARTS: usize = 30;
const CALLS: usize = 300;
const LOG_GROUP: &str = "securepipeline:aws:LogGroup";
const URN: &str = "urn:pulumi:bench::bench::securepipeline:aws:LogGroup::logs";

fn plugin_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.with_file_name("pulumi-resource-securepipeline")
}

fn start() -> (Child, u16, Duration) {
    let began = Instant::now();
    let mut child = Command::new(plugin_path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("start {}: {err}", plugin_path().display()));
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = BufReader::new(stdout).read_line(&mut line);
    }
    let elapsed = began.elapsed();
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no port printed: {line:?}"));
    (child, port, elapsed)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "{name:<28} median {:>9.3} ms   p90 {:>9.3} ms   min {:>9.3} ms   (n={})",
        pick(0.5).as_secs_f64() * 1e3,
        pick(0.9).as_secs_f64() * 1e3,
        samples[0].as_secs_f64() * 1e3,
        samples.len()
    );
}

fn log_group_inputs(retention: u32) -> PropertyMap {
    let json = serde_json::json!({
        "namePrefix": "bench-build",
        "retentionInDays": retention,
        "kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "tags": {"team": "platform"}
    });
    match json_to_property(&json) {
        securepipeline::protocol::value::PropertyValue::Object(map) => map,
        _ => PropertyMap::new(),
    }
}

#[tokio::main]
async fn main() {
    let mut starts = Vec::new();
    for _ in 0..STARTS {
        let (mut child, _, elapsed) = start();
        starts.push(elapsed);
        let _ = child.kill();
        let _ = child.wait();
    }
    summary("start to port printed", starts);

    let (mut child, port, _) = start();
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!(
        "{:<28} {:>9} KiB",
        "idle resident memory",
        rss_kib(child.id())
    );

    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("endpoint")
        .tcp_nodelay(true)
        .connect()
        .await
        .expect("connect to the provider");
    let mut client =
        ResourceProviderClient::new(channel).max_decoding_message_size(MAX_MESSAGE_SIZE);

    let mut schema = Vec::new();
    for _ in 0..CALLS {
        let began = Instant::now();
        client
            .get_schema(GetSchemaRequest::default())
            .await
            .expect("GetSchema");
        schema.push(began.elapsed());
    }
    summary("GetSchema", schema);

    let news = encode_struct(&log_group_inputs(30));
    let mut check = Vec::new();
    for _ in 0..CALLS {
        let began = Instant::now();
        client
            .check(CheckRequest {
                urn: URN.into(),
                news: Some(news.clone()),
                random_seed: b"bench-seed".to_vec(),
                r#type: LOG_GROUP.into(),
                name: "logs".into(),
                ..Default::default()
            })
            .await
            .expect("Check");
        check.push(began.elapsed());
    }
    summary("Check (LogGroup)", check);

    let olds = encode_struct(&log_group_inputs(30));
    let changed = encode_struct(&log_group_inputs(90));
    let mut diff = Vec::new();
    for _ in 0..CALLS {
        let began = Instant::now();
        client
            .diff(DiffRequest {
                id: "/securepipeline/bench-build-abcdefgh".into(),
                urn: URN.into(),
                olds: Some(olds.clone()),
                news: Some(changed.clone()),
                old_inputs: Some(olds.clone()),
                r#type: LOG_GROUP.into(),
                name: "logs".into(),
                ..Default::default()
            })
            .await
            .expect("Diff");
        diff.push(began.elapsed());
    }
    summary("Diff (LogGroup)", diff);
    println!(
        "{:<28} {:>9} KiB",
        "resident memory after calls",
        rss_kib(child.id())
    );

    let _ = child.kill();
    let _ = child.wait();
}
