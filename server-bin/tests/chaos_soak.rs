//! The process-level chaos soak: three `restart-manager` processes on the simulated API
//! endpoint, a Zincati agent per node polling them fast, replicas killed with SIGKILL and
//! started again at random, API faults injected, and the endpoint's audit of every write
//! checked against the invariants (crate `invariants`) as it happens.
//!
//! In `cargo test` it runs 1,000 nodes for 40 s of chaos. Longer and larger:
//! `SOAK_SECONDS=600 SOAK_NODES=1000 cargo test --release -p server-bin --test chaos_soak --
//! --nocapture` (docs/reliability.md has the figures). `SOAK_SEED` replays the harness's
//! choices (the processes' own timing is not replayable).

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cluster_api::{Error, LabelSelector};
use cluster_sim::apiserver::ApiServer;
use cluster_sim::{Budget, IntOrPercent, Operation, SimCluster, SimConfig, WorkloadSpec};
use common::free_port;
use common::process::{start_with, zincati_request};
use fleetlock_core::drain::DrainOptions;
use invariants::Invariants;
use parking_lot::Mutex;
use tokio::process::Child;
use tokio::time::{Instant, sleep, timeout};

const REPLICAS: usize = 3;
const SLOTS: u32 = 25;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The counters the report prints.
#[derive(Default)]
struct Tally {
    requests: AtomicUsize,
    unanswered: AtomicUsize,
    statuses: Mutex<BTreeMap<u16, usize>>,
    reboots: AtomicUsize,
}

/// One FleetLock request over a fresh connection; `None` if the replica is down or does not
/// answer within a few seconds (a killed process, a port not yet bound).
async fn ask(addr: SocketAddr, request: &[u8]) -> Option<u16> {
    let answer = timeout(Duration::from_secs(15), common::try_send(addr, request)).await;
    Some(answer.ok()?.ok()?.0)
}

struct Replicas {
    ports: Vec<u16>,
    children: Mutex<Vec<Option<Child>>>,
}

impl Replicas {
    fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports[i]))
    }
}

/// Zincati on one node: asks a random replica every second or so until approved, reboots,
/// waits for Ready, reports steady-state until accepted; again, until told to stop. A node
/// in a cycle finishes it after the stop; then each reports steady-state once more.
async fn agent(
    node: String,
    sim: SimCluster,
    replicas: Arc<Replicas>,
    tally: Arc<Tally>,
    stop: tokio::sync::watch::Receiver<bool>,
    mut rng: fastrand::Rng,
) {
    let pre = zincati_request("/v1/pre-reboot", &node);
    let steady = zincati_request("/v1/steady-state", &node);
    let send = async |request: &[u8], rng: &mut fastrand::Rng| -> Option<u16> {
        let addr = replicas.addr(rng.usize(0..REPLICAS));
        tally.requests.fetch_add(1, Ordering::Relaxed);
        let status = ask(addr, request).await;
        match status {
            Some(code) => *tally.statuses.lock().entry(code).or_default() += 1,
            None => {
                tally.unanswered.fetch_add(1, Ordering::Relaxed);
            }
        }
        status
    };
    sleep(Duration::from_millis(rng.u64(0..3_000))).await;
    while !*stop.borrow() {
        if send(&pre, &mut rng).await != Some(200) {
            sleep(Duration::from_millis(rng.u64(500..=1_500))).await;
            continue;
        }
        sim.reboot_node(&node).expect("the node exists");
        tally.reboots.fetch_add(1, Ordering::Relaxed);
        // Zincati speaks as soon as the operating system is up, before the kubelet reports.
        while sim.os_up(&node) == Some(false) {
            sleep(Duration::from_millis(250)).await;
        }
        while send(&steady, &mut rng).await != Some(200) {
            sleep(Duration::from_millis(rng.u64(250..=750))).await;
        }
    }
    // Zincati stops (its node finalised its updates, or it restarts): its steady-state gives
    // back a slot it may hold without knowing, one approved while the answer was lost to a
    // killed replica.
    while send(&steady, &mut rng).await != Some(200) {
        sleep(Duration::from_millis(rng.u64(250..=750))).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_killed_at_random_break_no_invariant() {
    let nodes = setting("SOAK_NODES", 1_000) as usize;
    let chaos = Duration::from_secs(setting("SOAK_SECONDS", 40));
    let seed = setting("SOAK_SEED", fastrand::u64(..));
    println!("seed {seed}: {nodes} nodes, {} s of chaos", chaos.as_secs());
    let mut rng = fastrand::Rng::with_seed(seed);

    let sim = SimCluster::with_config(SimConfig {
        start_time: jiff::Timestamp::now(),
        reboot_duration: Duration::from_secs(3),
        kubelet_start: Duration::from_secs(2),
        // Kubelets report every few seconds, as every 5 minutes on a real cluster in this
        // run's compressed time: a steady-state without a reboot heals on the next report.
        node_status_report: Some(Duration::from_secs(5)),
        ..SimConfig::default()
    });
    sim.add_fleet(nodes);
    sim.add_workload(
        WorkloadSpec::deployment("shop", "web")
            .replicas((nodes / 2) as i32)
            .grace_period(1)
            .pod_start_secs(1),
    )
    .unwrap();
    sim.add_budget(Budget::max_unavailable(
        "shop",
        "web",
        LabelSelector::eq("app", "web"),
        IntOrPercent::Percent(10),
    ));
    let checker = Invariants::watch(&sim, "restart-manager", DrainOptions::default(), SLOTS);

    let endpoint = ApiServer::new(sim.clone())
        .serve_on_localhost()
        .await
        .unwrap();
    let kubeconfig = endpoint.temp_kubeconfig().unwrap();
    let config = kubeconfig.dir().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "fleetlock:\n  groups:\n    default: {{slots: {SLOTS}}}\n  drain:\n    \
             requestWait: 2s\n    retryInitial: 1s\n    retryMax: 4s\n"
        ),
    )
    .unwrap();
    let replicas = Arc::new(Replicas {
        ports: (0..REPLICAS).map(|_| free_port()).collect(),
        children: Mutex::new((0..REPLICAS).map(|_| None).collect()),
    });
    let name = |i: usize| format!("rm-{i}");
    // Every agent connects from 127.0.0.1: no per-address FleetLock limits (as behind a NAT).
    let start = async |name: &str, port: u16| {
        start_with(
            name,
            kubeconfig.path(),
            &config,
            port,
            &["--fleetlock-rate", "0", "--max-connections-per-client", "0"],
        )
        .await
    };
    for i in 0..REPLICAS {
        let child = start(&name(i), replicas.ports[i]).await;
        replicas.children.lock()[i] = Some(child);
    }

    let tally = Arc::new(Tally::default());
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let agents: Vec<_> = (1..=nodes)
        .map(|i| {
            tokio::spawn(agent(
                format!("n{i}"),
                sim.clone(),
                replicas.clone(),
                tally.clone(),
                stop.clone(),
                fastrand::Rng::with_seed(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            ))
        })
        .collect();

    // Chaos: a replica killed every few seconds and started again a moment later; API faults
    // now and then.
    let started = Instant::now();
    let (mut kills, mut faults) = (0, 0);
    while started.elapsed() < chaos {
        sleep(Duration::from_millis(rng.u64(2_000..=6_000))).await;
        let i = rng.usize(0..REPLICAS);
        let child = replicas.children.lock()[i].take();
        if let Some(mut child) = child {
            child.start_kill().unwrap();
            let _ = child.wait().await;
            kills += 1;
            sleep(Duration::from_millis(rng.u64(200..=2_000))).await;
            let child = start(&name(i), replicas.ports[i]).await;
            replicas.children.lock()[i] = Some(child);
        }
        if rng.bool() {
            let op = [
                Operation::ReplaceLease,
                Operation::EvictPod,
                Operation::PatchNode,
                Operation::GetLease,
            ][rng.usize(0..4)];
            sim.fail_next(op, 2, Error::unavailable("etcdserver: request timed out"));
            faults += 2;
        }
    }
    sim.clear_faults();
    // The agents stop asking; those in a cycle finish it, within a bound.
    stop_tx.send_replace(true);
    let finished = timeout(Duration::from_secs(120), futures::future::join_all(agents)).await;
    assert!(
        finished.is_ok(),
        "agents still in a reboot cycle 120 s after the chaos"
    );
    // Time for the replicas' maintenance to tidy what a kill left behind.
    let settle = Instant::now();
    let mut settled = checker.check_settled(&sim);
    while !settled.is_empty() && settle.elapsed() < Duration::from_secs(60) {
        sleep(Duration::from_secs(1)).await;
        settled = checker.check_settled(&sim);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let requests = tally.requests.load(Ordering::Relaxed);
    println!(
        "{nodes} nodes, {REPLICAS} replicas, {SLOTS} slots: {requests} FleetLock requests in \
         {elapsed:.0} s ({:.0}/s; by status {:?}, {} unanswered by a killed replica), {} \
         reboots, {kills} SIGKILLs survived, {faults} API faults injected; checked {:?}",
        requests as f64 / elapsed,
        tally.statuses.lock(),
        tally.unanswered.load(Ordering::Relaxed),
        tally.reboots.load(Ordering::Relaxed),
        checker.checked(),
    );
    let mut violations: Vec<String> = checker.violations().iter().map(|v| v.to_string()).collect();
    violations.extend(settled.iter().map(|v| v.to_string()));
    assert!(
        violations.is_empty(),
        "seed {seed}: {} violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
    assert!(kills > 0 && tally.reboots.load(Ordering::Relaxed) > 0);
    for child in replicas.children.lock().iter_mut().flatten() {
        let _ = child.start_kill();
    }
}
