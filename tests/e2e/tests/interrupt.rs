//! Interrupting `pulumi up` loses nothing: with a create under way at AWS
//! when Ctrl-C reaches the CLI, the language host and the provider, the
//! create finishes and the engine records it; the next `up` converges
//! without a duplicate or an "already exists", and `destroy` leaves
//! nothing behind. The same holds when Ctrl-C comes at a seeded moment of
//! a larger pipeline's `up`: one seed runs in the default suite,
//! `SECUREPIPELINE_INTERRUPT_SOAK=1` runs seeds 1 to 8 and
//! `SECUREPIPELINE_INTERRUPT_SEEDS=3,5` replays chosen ones.

use std::process::Child;
use std::time::{Duration, Instant};

use securepipeline_e2e::inventory::{counts, inventory, state_ids};
use securepipeline_e2e::readback::leftovers;
use securepipeline_e2e::{seeds, Emulator, Stack};
use serde_json::Value as Json;

const PROGRAM: &str = r#"
resources:
  web:
    type: securepipeline:index:SecurePipeline
    properties:
      source:
        repository: example-org/web
      build:
        commands: ["npm test"]
"#;

const BUILD_PROJECT: &str = "securepipeline:aws:BuildProject";

/// A pipeline with stages, notifications and a schedule: about forty
/// writes to interrupt between.
const STAGED_PROGRAM: &str = r#"
resources:
  web:
    type: securepipeline:index:SecurePipeline
    properties:
      source:
        repository: example-org/web
      build:
        commands: ["npm test"]
      notifications:
        emails: [team@example.com]
      schedule: rate(1 day)
      deployments:
        - name: dev
          commands: ["./deploy.sh dev"]
        - name: prod
          production: true
          commands: ["./deploy.sh prod"]
"#;

/// The writes an uninterrupted `up` of STAGED_PROGRAM makes lie above this;
/// a seed picks after how many of them Ctrl-C comes.
const STAGED_WRITES: u64 = 40;
const DEFAULT_SEED: u64 = 1;
const SOAK_SEEDS: u64 = 8;

/// Polls until `done` or the deadline; the test's own waiting, bounded.
fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Ctrl-C as a terminal sends it: SIGINT to the whole process group.
fn interrupt(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-INT", "--", &format!("-{}", child.id())])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -INT failed");
}

fn resources_of_type(checkpoint: &Json, type_token: &str) -> Vec<Json> {
    checkpoint["deployment"]["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["type"] == type_token)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupted_up_records_the_create_in_flight_and_converges() {
    let emulator = Emulator::start();
    let stack = Stack::yaml(&emulator, "interrupted", PROGRAM);

    // The build project's CreateProject is received by "AWS" and held
    // there while the whole process group is interrupted.
    emulator.hold("codebuild", "CreateProject");
    let mut up = stack.spawn(&["up", "--yes", "--skip-preview"]);
    wait_until("CreateProject in flight", Duration::from_secs(180), || {
        emulator.held() > 0
    });
    interrupt(&up);
    // Give the cancellation time to reach the provider before AWS answers.
    std::thread::sleep(Duration::from_secs(3));
    emulator.release();
    wait_until(
        "the interrupted up to exit",
        Duration::from_secs(180),
        || up.try_wait().expect("poll pulumi").is_some(),
    );
    let output = up.wait_with_output().expect("pulumi output");
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // The project AWS created is in the state, and nothing is left pending.
    let checkpoint: Json = serde_json::from_str(&stack.export()).expect("checkpoint JSON");
    let pending = checkpoint["deployment"]["pending_operations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(pending.is_empty(), "pending operations: {pending:?}\n{log}");
    let recorded = resources_of_type(&checkpoint, BUILD_PROJECT);
    assert_eq!(
        recorded.len(),
        1,
        "the build project created during the interrupt is not in the state\n{log}"
    );

    // The next up converges: one project, no "already exists".
    stack.up().success();
    let sdk = emulator.sdk().await;
    let projects = aws_sdk_codebuild::Client::new(&sdk)
        .list_projects()
        .send()
        .await
        .expect("ListProjects");
    assert_eq!(projects.projects().len(), 1, "{:?}", projects.projects());

    stack.destroy().success();
    let left = leftovers(&sdk).await;
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A number in 1..=limit drawn from the seed (splitmix64), so that a seed
/// always names the same moment.
fn moment(seed: u64, limit: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    1 + (z ^ (z >> 31)) % limit
}

async fn interrupt_after_writes_then_converge(seed: u64) {
    let emulator = Emulator::start();
    let stack = Stack::yaml(&emulator, "interrupted-at-random", STAGED_PROGRAM);
    let writes = moment(seed, STAGED_WRITES);

    let mut up = stack.spawn(&["up", "--yes", "--skip-preview"]);
    wait_until(
        "the chosen moment or the end of up",
        Duration::from_secs(300),
        || {
            let seen = emulator.calls().iter().filter(|c| c.write).count() as u64;
            seen >= writes || up.try_wait().expect("poll pulumi").is_some()
        },
    );
    let interrupted = up.try_wait().expect("poll pulumi").is_none();
    if interrupted {
        interrupt(&up);
    }
    wait_until(
        "the interrupted up to exit",
        Duration::from_secs(300),
        || up.try_wait().expect("poll pulumi").is_some(),
    );
    let partial = inventory(&[emulator.sdk().await]).await;
    println!(
        "seed {seed}: Ctrl-C after {writes} writes (interrupted: {interrupted}); the emulator then held {}",
        counts(&partial)
    );

    // The next up converges: exactly what the state names exists, once.
    stack.up().success();
    let state = state_ids(&stack.export());
    let mut live = inventory(&[emulator.sdk().await]).await;
    live.remove("alias");
    assert_eq!(
        live, state,
        "seed {seed}: the emulator holds what the state names, each once"
    );

    stack.destroy().success();
    let left = leftovers(&emulator.sdk().await).await;
    assert!(left.is_empty(), "seed {seed}: left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn up_interrupted_at_seeded_moments_converges() {
    for seed in seeds("SECUREPIPELINE_INTERRUPT", SOAK_SEEDS, DEFAULT_SEED) {
        interrupt_after_writes_then_converge(seed).await;
    }
}
