//! Transient AWS failures through the real engine. The emulator fails 20%
//! of the provider's calls as AWS does (throttling, 5xx, resets, answers
//! lost after the write happened) and keeps new roles unusable by CodeBuild
//! and CodePipeline for two seconds; `up` of a pipeline with three stages,
//! one in a second region, still succeeds, and afterwards the emulator holds
//! exactly the resources the stack's state names, no duplicate and no
//! orphan. `destroy` under the same faults leaves nothing.
//!
//! One seeded run is in the default suite. `SECUREPIPELINE_FAULT_SOAK=1`
//! runs seeds 1 to 10; `SECUREPIPELINE_FAULT_SEEDS=3,17` runs those (to
//! replay a failure: the seed is printed with every run).

use std::collections::BTreeMap;

use securepipeline_e2e::inventory::{counts, inventory, state_ids, KINDS};
use securepipeline_e2e::{seeds, Call, Emulator, Stack};

const WEST: &str = "us-west-2";
const RATE: f64 = 0.2;
/// Seconds a new role stays unusable by CodeBuild and CodePipeline.
const PROPAGATION_SECONDS: u32 = 2;
const DEFAULT_SEED: u64 = 1;
const SOAK_SEEDS: u64 = 10;

const PROGRAM: &str = r#"
resources:
  web:
    type: securepipeline:index:SecurePipeline
    properties:
      source:
        repository: example-org/web
      build:
        commands: ["npm ci", "npm test"]
      notifications:
        emails: [team@example.com]
      schedule: rate(1 day)
      deployments:
        - name: dev
          commands: ["./deploy.sh dev"]
        - name: staging
          region: us-west-2
          commands: ["./deploy.sh staging"]
        - name: prod
          production: true
          assumeRoleArn: arn:aws:iam::210987654321:role/deployer
          commands: ["./deploy.sh prod"]
outputs:
  pipelineName: ${web.pipelineName}
"#;

/// What the emulator saw during one command.
struct Traffic {
    calls: usize,
    faults: BTreeMap<String, usize>,
    retries: usize,
}

impl Traffic {
    fn of(calls: &[Call]) -> Self {
        let mut faults = BTreeMap::new();
        for fault in calls.iter().filter_map(|call| call.fault.clone()) {
            *faults.entry(fault).or_insert(0) += 1;
        }
        Self {
            calls: calls.len(),
            faults,
            retries: calls.iter().filter(|call| call.retry).count(),
        }
    }

    fn total_faults(&self) -> usize {
        self.faults.values().sum()
    }
}

impl std::fmt::Display for Traffic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} calls, {} faults injected {:?}, {} retries of a faulted request",
            self.calls,
            self.total_faults(),
            self.faults,
            self.retries
        )
    }
}

/// Runs one pulumi command with faults on, then turns them off so that the
/// test's own reads see the emulator as it is.
fn with_faults(
    emulator: &Emulator,
    seed: u64,
    command: impl FnOnce() -> securepipeline_e2e::Run,
) -> (securepipeline_e2e::Run, Traffic) {
    emulator.reset_calls();
    emulator.set_faults(&format!(
        "rate={RATE},seed={seed},propagation={PROPAGATION_SECONDS}"
    ));
    let run = command();
    emulator.set_faults("");
    let traffic = Traffic::of(&emulator.calls());
    (run, traffic)
}

async fn deploy_and_destroy_under_faults(seed: u64) {
    let emulator = Emulator::start();
    let home = emulator.sdk().await;
    let west = home
        .to_builder()
        .region(aws_config::Region::new(WEST))
        .build();
    let stack = Stack::yaml(&emulator, "faults", PROGRAM);

    let (up, traffic) = with_faults(&emulator, seed, || stack.up());
    println!("seed {seed}, fault rate {RATE}: up: {traffic}");
    up.success();
    assert!(traffic.total_faults() > 0, "no faults were injected");

    // Exactly what the state names exists, once: no duplicate, no orphan.
    let state = state_ids(&stack.export());
    let mut live = inventory(&[home.clone(), west.clone()]).await;
    println!("seed {seed}: after up the emulator holds {}", counts(&live));
    let aliases = live.remove("alias").unwrap_or_default();
    assert_eq!(
        live, state,
        "the emulator holds what the state names, each once"
    );
    let kinds: std::collections::BTreeSet<&str> = KINDS.iter().map(|(_, kind)| *kind).collect();
    assert_eq!(
        state.len(),
        kinds.len(),
        "every kind was created: {state:?}"
    );
    assert_eq!(
        aliases.len(),
        state["key"].len(),
        "one alias per key: {aliases:?}"
    );

    let (destroy, traffic) = with_faults(&emulator, seed, || stack.destroy());
    println!("seed {seed}, fault rate {RATE}: destroy: {traffic}");
    destroy.success();
    let left = inventory(&[home, west]).await;
    println!(
        "seed {seed}: after destroy the emulator holds {}",
        counts(&left)
    );
    assert!(left.is_empty(), "destroy left {left:?}");
}

#[tokio::test]
async fn a_pipeline_deploys_and_is_destroyed_through_transient_faults() {
    for seed in seeds("SECUREPIPELINE_FAULT", SOAK_SEEDS, DEFAULT_SEED) {
        deploy_and_destroy_under_faults(seed).await;
    }
}

/// A pipeline whose children may take at most 15 seconds to create.
const MIDWAY_PROGRAM: &str = r#"
resources:
  app:
    type: securepipeline:index:SecurePipeline
    properties:
      source:
        repository: example-org/app
      build:
        commands: ["make test"]
      logRetentionDays: 14
    options:
      customTimeouts:
        create: 15s
outputs:
  pipelineName: ${app.pipelineName}
"#;

async fn retentions(logs: &aws_sdk_cloudwatchlogs::Client, groups: &[String]) -> Vec<Option<i32>> {
    let mut retentions = Vec::new();
    for group in groups {
        let found = logs
            .describe_log_groups()
            .log_group_name_prefix(group)
            .send()
            .await
            .expect("DescribeLogGroups");
        let live = found
            .log_groups()
            .iter()
            .find(|live| live.log_group_name() == Some(group.as_str()))
            .unwrap_or_else(|| panic!("log group {group} exists"));
        retentions.push(live.retention_in_days());
    }
    retentions
}

/// A create that fails after AWS made the resource leaves it in the state
/// with its id; the next `up`, without `--refresh`, reads what is really
/// there and finishes the job instead of trusting the inputs it recorded.
#[tokio::test]
async fn a_create_stopped_midway_is_finished_by_the_next_up_without_a_refresh() {
    let emulator = Emulator::start();
    let logs = aws_sdk_cloudwatchlogs::Client::new(&emulator.sdk().await);
    let stack = Stack::yaml(&emulator, "midway", MIDWAY_PROGRAM);

    emulator.set_faults("rate=1,seed=1,kinds=error,only=logs:PutRetentionPolicy");
    stack.up().failure();
    emulator.set_faults("");
    let groups = state_ids(&stack.export())
        .remove("log group")
        .unwrap_or_default();
    assert!(!groups.is_empty(), "the log groups are in the state");
    assert!(
        retentions(&logs, &groups).await.iter().all(Option::is_none),
        "the stopped creates set no retention"
    );

    stack.up().success();
    assert_eq!(
        retentions(&logs, &groups).await,
        vec![Some(14); groups.len()],
        "the next up set the retention of {groups:?}"
    );
}
