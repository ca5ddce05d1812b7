//! Drains as a real cluster runs them: across replicas, with pods that tolerate the cordon,
//! and under the timeout policy whichever way they stall.

mod common;

use std::time::Duration;

use cluster_api::{LabelSelector, Pod, Toleration};
use cluster_sim::{Budget, IntOrPercent, SimCluster, WorkloadSpec};
use common::*;
use fleetlock_core::drain::SkipReason;
use fleetlock_core::{DrainPhase, Kind, OnDrainTimeout};
use tokio::time::advance;

/// Replica B drains n1 and keeps retrying an eviction a budget refuses; Zincati's
/// steady-state reaches replica A. From that moment B must evict nothing on n1, although
/// its drain task was started before and the budget later allows the eviction.
#[tokio::test(start_paused = true)]
async fn a_release_on_one_replica_stops_the_drain_on_another() {
    let sim = db_under_a_full_budget(5, 5);
    let mut config = config();
    // A drain that waits on the budget, which the pre-flight would refuse to start.
    config.drain.preflight = false;
    config.drain.request_wait = Duration::from_secs(3);
    config.drain.budget_retry = Duration::from_secs(1);
    let (a, _run_a, _lead_a) = follower(&sim, config.clone(), "a").await;
    let (b, _run_b) = replica(&sim, config, "b").await;
    let n1 = zincati("n1", "default");

    assert_eq!(b.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);
    assert!(
        !evictions_on(&sim, "n1", 0).is_empty(),
        "B's drain is retrying its eviction"
    );

    a.steady_state(&n1).await.unwrap();
    let released = sim.evictions().len();
    assert!(!sim.node("n1").unwrap().unschedulable, "A uncordoned n1");

    // The budget makes room; nobody holds n1's slot, so nobody may evict there.
    sim.scale(&WorkloadSpec::deployment("shop", "db").reference(), 3)
        .unwrap();
    advance(Duration::from_secs(120)).await;
    assert_eq!(evictions_on(&sim, "n1", released), Vec::<String>::new());
    assert!(b.snapshot().groups[0].holders.is_empty());
    assert_eq!(sim.pods_on("n1").len(), 1, "n1's pod was left in peace");
}

/// Even before its lease watch tells it, a drain confirms its slot in the cluster before it
/// evicts: a holder removed behind the replica's back (a watch that lags) gets no eviction.
#[tokio::test(start_paused = true)]
async fn a_drain_confirms_its_slot_before_evicting() {
    let sim = slow_pod_under_a_budget(3);
    let mut config = config();
    // A drain that waits on the budget, which the pre-flight would refuse to start.
    config.drain.preflight = false;
    config.drain.request_wait = Duration::from_secs(1);
    config.drain.retry_initial = Duration::from_secs(5);
    config.drain.retry_max = Duration::from_secs(5);
    let (a, _run_a) = replica(&sim, config, "a").await;
    let n1 = zincati("n1", "default");
    assert_eq!(a.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);

    // Someone empties the group Lease while this replica's watch is slow to say so.
    sim.set_latency(
        cluster_sim::Operation::WatchLeases,
        Duration::from_secs(3600),
    );
    sim.break_watches();
    let mut lease = sim.lease(NS, "fleetlock-default").unwrap();
    lease
        .annotations
        .insert("restart-manager.io/holders".into(), "[]".into());
    lease.holder_identity = None;
    cluster_api::ClusterApi::replace_lease(&sim, &lease)
        .await
        .unwrap();
    sim.remove_budget("shop", "slow");
    let before = sim.evictions().len();
    advance(Duration::from_secs(30)).await;
    assert_eq!(evictions_on(&sim, "n1", before), Vec::<String>::new());
}

/// A Deployment whose pods tolerate everything (an agent, say) is pinned to n1: after its
/// eviction its replacement comes straight back to the cordoned node. The drain waits only
/// for the pods it set out to move, by uid, and says what it skipped.
#[tokio::test(start_paused = true)]
async fn a_drain_is_approved_although_a_tolerating_pod_keeps_coming_back() {
    let sim = fleet(2);
    sim.edit_node("n1", |n| {
        n.labels.insert("pool".into(), "edge".into());
    })
    .unwrap();
    let agent = WorkloadSpec::deployment("ops", "agent")
        .on_nodes_labelled("pool", "edge")
        .grace_period(5)
        .tolerate(Toleration::everything());
    sim.add_workload(agent.clone()).unwrap();
    sim.add_workload(
        WorkloadSpec::deployment("shop", "web")
            .replicas(2)
            .grace_period(10),
    )
    .unwrap();
    sim.add_workload(WorkloadSpec::daemonset("kube-system", "proxy"))
        .unwrap();
    let first = sim.pods_of(&agent.reference())[0].clone();
    assert_eq!(first.node_name.as_deref(), Some("n1"));

    let (c, _run) = replica(&sim, config(), "a").await;
    let n1 = zincati("n1", "default");
    c.pre_reboot(&n1).await.unwrap();

    let back = sim.pods_of(&agent.reference());
    assert_eq!(back.len(), 1);
    assert_ne!(back[0].uid, first.uid, "the agent was evicted once");
    assert_eq!(back[0].node_name.as_deref(), Some("n1"), "and came back");
    let evicted: Vec<String> = sim.evictions().into_iter().map(|e| e.name).collect();
    assert!(evicted.contains(&first.name));
    assert!(
        !evicted.contains(&back[0].name),
        "its replacement is left alone"
    );

    // What the drain skipped is in its status: the DaemonSet pod and the agent's return.
    let snapshot = c.snapshot();
    let drain = snapshot.groups[0].holders[0].drain.clone().unwrap();
    assert_eq!(drain.phase, DrainPhase::Done);
    let skipped: Vec<(String, SkipReason)> = drain
        .skipped
        .iter()
        .map(|s| (s.pod.clone(), s.reason))
        .collect();
    assert!(
        skipped.contains(&(format!("ops/{}", back[0].name), SkipReason::ToleratesCordon)),
        "{skipped:?}"
    );
    assert!(
        skipped
            .iter()
            .any(|(p, r)| p.starts_with("kube-system/proxy") && *r == SkipReason::DaemonSet),
        "{skipped:?}"
    );
}

/// A pod that lands on the node after the drain began and does not tolerate the cordon
/// (bound by `spec.nodeName`, past the scheduler) must leave too.
#[tokio::test(start_paused = true)]
async fn a_late_pod_that_does_not_tolerate_the_cordon_is_evicted_too() {
    let sim = fleet(2);
    sim.add_pod(
        Pod::new("shop", "slow")
            .on("n1")
            .owned_by("ReplicaSet", "slow")
            .grace_period(20),
    )
    .unwrap();
    let mut config = config();
    config.drain.request_wait = Duration::from_secs(5);
    let (c, _run) = replica(&sim, config, "a").await;
    let n1 = zincati("n1", "default");
    assert_eq!(c.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);

    sim.add_pod(
        Pod::new("shop", "pinned")
            .on("n1")
            .owned_by("ReplicaSet", "pinned")
            .grace_period(30),
    )
    .unwrap();
    advance(Duration::from_secs(20)).await;
    assert!(sim.pod("shop", "slow").is_none());
    assert!(sim.pod("shop", "pinned").unwrap().is_terminating());
    assert_eq!(c.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);
    advance(Duration::from_secs(30)).await;
    c.pre_reboot(&n1).await.unwrap();
}

/// `onTimeout: release` applies however the drain stalls: here it waits for an operator
/// because of a pod without a controller, and still gives the slot back on time.
#[tokio::test(start_paused = true)]
async fn a_drain_refused_for_an_unmanaged_pod_still_times_out() {
    let sim = fleet(2);
    sim.add_pod(Pod::new("default", "debug-shell").on("n1"))
        .unwrap();
    let mut config = config();
    config.drain.timeout = Duration::from_secs(600);
    config.drain.on_timeout = OnDrainTimeout::Release;
    config.drain.request_wait = Duration::from_secs(1);
    // A drain stalled by the pod, which the pre-flight would refuse to start.
    config.drain.preflight = false;
    let (c, _run) = replica(&sim, config, "a").await;
    let n1 = zincati("n1", "default");
    assert_eq!(
        c.pre_reboot(&n1).await.unwrap_err().kind,
        Kind::DrainBlocked
    );
    assert!(sim.node("n1").unwrap().unschedulable);

    advance(Duration::from_secs(601)).await;
    settle().await;
    assert!(reasons(&sim, "n1").contains(&"DrainTimedOut".to_string()));
    assert_eq!(
        sim.lease(NS, "fleetlock-default").unwrap().holder_identity,
        None
    );
    assert!(!sim.node("n1").unwrap().unschedulable, "uncordoned");
    c.pre_reboot(&zincati("n2", "default")).await.unwrap();
}

/// The same when the drain cannot even cordon (the API keeps refusing the patch).
#[tokio::test(start_paused = true)]
async fn a_drain_that_cannot_cordon_still_times_out() {
    let sim = fleet(2);
    let mut config = config();
    config.drain.timeout = Duration::from_secs(300);
    config.drain.on_timeout = OnDrainTimeout::Release;
    config.drain.request_wait = Duration::from_secs(1);
    sim.fail_always(
        cluster_sim::Operation::PatchNode,
        cluster_api::Error::unavailable("etcdserver: request timed out"),
    );
    let (c, _run) = replica(&sim, config, "a").await;
    let n1 = zincati("n1", "default");
    assert_eq!(c.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);
    advance(Duration::from_secs(301)).await;
    sim.clear_faults();
    advance(Duration::from_secs(1)).await;
    assert_eq!(
        sim.lease(NS, "fleetlock-default").unwrap().holder_identity,
        None,
        "the slot went back"
    );
    assert!(reasons(&sim, "n1").contains(&"DrainTimedOut".to_string()));
}

/// Two nodes, and one ReplicaSet pod `shop/web` on n1.
fn web_on_n1() -> SimCluster {
    let sim = fleet(2);
    sim.add_pod(
        Pod::new("shop", "web")
            .on("n1")
            .owned_by("ReplicaSet", "web")
            .grace_period(1),
    )
    .unwrap();
    sim
}

/// The API server throttles an eviction (429 without a budget, with Retry-After): the drain
/// says so, not "disruption budget", and does not ask again before the wait is over.
#[tokio::test(start_paused = true)]
async fn a_throttled_eviction_waits_as_long_as_the_server_asked() {
    let sim = web_on_n1();
    sim.fail_next(
        cluster_sim::Operation::EvictPod,
        1,
        cluster_api::Error::TooManyRequests {
            message: "Too many requests, please try again later.".into(),
            retry_after: Some(Duration::from_secs(20)),
        },
    );
    let mut config = config();
    config.drain.request_wait = Duration::from_secs(5);
    config.drain.retry_initial = Duration::from_secs(1);
    let (c, _run) = replica(&sim, config, "a").await;
    let n1 = zincati("n1", "default");
    let refusal = c.pre_reboot(&n1).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::Draining);
    assert!(
        c.snapshot().groups[0].holders[0]
            .drain
            .as_ref()
            .unwrap()
            .blocked[0]
            .contains("throttled by the API server"),
        "the fleet view says why"
    );
    assert!(
        refusal
            .value
            .contains("shop/web: the API server is throttling evictions"),
        "{refusal}"
    );
    assert_eq!(sim.calls().get(cluster_sim::Operation::EvictPod), 1);
    advance(Duration::from_secs(14)).await;
    settle().await;
    assert_eq!(
        sim.calls().get(cluster_sim::Operation::EvictPod),
        1,
        "not before the 20s the server asked for"
    );
    advance(Duration::from_secs(2)).await;
    settle().await;
    assert_eq!(sim.calls().get(cluster_sim::Operation::EvictPod), 2);
}

/// What a drain tells the node through FleetLock names its own pods and counts, never the
/// API server's words (which name the server's ServiceAccount) nor anything off the node;
/// the fleet view, for people, keeps the detail.
#[tokio::test(start_paused = true)]
async fn fleetlock_answers_about_a_drain_carry_no_api_error_text() {
    let sim = web_on_n1();
    let forbidden = "pods \"web\" is forbidden: User \"system:serviceaccount:restart-manager:restart-manager\" cannot create resource \"pods/eviction\"";
    sim.fail_always(
        cluster_sim::Operation::EvictPod,
        cluster_api::Error::Forbidden {
            message: forbidden.into(),
        },
    );
    let mut config = config();
    config.drain.request_wait = Duration::from_secs(5);
    let (c, _run) = replica(&sim, config, "a").await;
    let n1 = zincati("n1", "default");
    let refusal = c.pre_reboot(&n1).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::Draining);
    assert!(!refusal.value.contains("serviceaccount"), "{refusal}");
    assert!(!refusal.value.contains("forbidden"), "{refusal}");
    assert!(
        refusal.value.contains(
            "draining n1: 1 pod still to leave (waiting on shop/web: the eviction got an API error)"
        ),
        "{refusal}"
    );
    let drain = c.snapshot().groups[0].holders[0].drain.clone().unwrap();
    assert!(
        drain.blocked[0].contains("system:serviceaccount"),
        "{drain:?}"
    );
}

/// A cordon the API refuses is told to the node without the API's words either.
#[tokio::test(start_paused = true)]
async fn a_refused_cordon_is_reported_without_api_error_text() {
    let sim = fleet(2);
    sim.fail_always(
        cluster_sim::Operation::PatchNode,
        cluster_api::Error::Forbidden {
            message: "nodes \"n1\" is forbidden: User \"system:serviceaccount:restart-manager:restart-manager\" cannot patch resource \"nodes\"".into(),
        },
    );
    let mut config = config();
    config.drain.request_wait = Duration::from_secs(5);
    let (c, _run) = replica(&sim, config, "a").await;
    let refusal = c.pre_reboot(&zincati("n1", "default")).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::Draining);
    assert!(refusal.value.contains("cannot cordon n1 yet"), "{refusal}");
    assert!(!refusal.value.contains("serviceaccount"), "{refusal}");
    let drain = c.snapshot().groups[0].holders[0].drain.clone().unwrap();
    assert!(drain.message.contains("system:serviceaccount"), "{drain:?}");
}

/// An eviction lands but its answer is lost (the connection drops after the request went
/// out): the drain waits to retry it, and meanwhile the pod is already terminating, so the
/// retry never comes due. The drain must sleep until the pod goes, not wake again and again
/// for a retry time already past: that spun a core for the pod's whole grace period (and,
/// on a paused clock, forever, since time never advanced).
#[test]
fn a_drain_whose_eviction_landed_unanswered_waits_without_spinning() {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    // The scenario runs on its own thread and runtime: if the drain spins, the paused clock
    // never moves and the scenario never ends, which the watchdog below reports.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let sim = fleet(2);
            sim.add_pod(
                Pod::new("shop", "web")
                    .on("n1")
                    .owned_by("ReplicaSet", "web")
                    .grace_period(30),
            )
            .unwrap();
            sim.fail_after_next(
                cluster_sim::Operation::EvictPod,
                1,
                cluster_api::Error::unavailable("connection reset after the request was sent"),
            );
            let mut config = config();
            config.drain.retry_initial = Duration::from_secs(1);
            let (c, _run) = replica(&sim, config, "a").await;
            let n1 = zincati("n1", "default");
            // Waits for the drain: the pod leaves after its 30 s of grace.
            c.pre_reboot(&n1).await.unwrap();
            assert!(sim.pods_on("n1").is_empty());
            assert_eq!(sim.calls().get(cluster_sim::Operation::EvictPod), 1);
        });
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the drain finished (it spins when it does not, and the paused clock stops)");
}

/// Five pods of one Deployment on n1, under a budget that lets one be unavailable at a time:
/// each eviction waits until the last one's replacement is ready elsewhere. The budget's
/// refusals are asked again every few seconds (as `kubectl drain` does), not after a backoff
/// that grows to minutes, so the drain takes about five pod starts, not ten minutes.
#[tokio::test(start_paused = true)]
async fn budget_refusals_are_retried_at_a_short_fixed_interval() {
    let sim = fleet(2);
    sim.edit_node("n2", |n| n.unschedulable = true).unwrap();
    sim.add_workload(
        WorkloadSpec::deployment("shop", "web")
            .replicas(5)
            .pod_start_secs(10)
            .grace_period(1),
    )
    .unwrap();
    sim.edit_node("n2", |n| n.unschedulable = false).unwrap();
    sim.add_budget(Budget::max_unavailable(
        "shop",
        "web",
        LabelSelector::eq("app", "web"),
        IntOrPercent::Int(1),
    ));
    assert_eq!(sim.pods_on("n1").len(), 5);
    let (c, _run) = replica(&sim, config(), "a").await;
    let n1 = zincati("n1", "default");

    let started = sim.now();
    let mut answer = c.pre_reboot(&n1).await;
    while answer.is_err() && sim.now().duration_since(started).as_secs() < 600 {
        answer = c.pre_reboot(&n1).await;
    }
    answer.unwrap();
    let took = sim.now().duration_since(started).as_secs();
    assert!(took <= 90, "the drain took {took}s");
}

/// n1's drain keeps asking for `shop/slow`, which its budget protects. Its pod watch breaks
/// and cannot be opened again; meanwhile the pod is deleted and a pod of the same name (a
/// StatefulSet's way) starts on n2, and the budget no longer protects it. The drain, knowing
/// n1's pods only as they were, must not evict by that name: it would evict the pod on n2.
#[tokio::test(start_paused = true)]
async fn a_drain_whose_pod_watch_broke_evicts_nothing_by_stale_names() {
    let sim = slow_pod_under_a_budget(2);
    let mut config = config();
    config.drain.preflight = false;
    config.drain.request_wait = Duration::from_secs(1);
    config.drain.budget_retry = Duration::from_secs(1);
    let (c, _run) = replica(&sim, config, "a").await;
    let n1 = zincati("n1", "default");
    assert_eq!(c.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);

    sim.fail_always(
        cluster_sim::Operation::WatchPods,
        cluster_api::Error::unavailable("etcdserver: request timed out"),
    );
    sim.break_watches();
    sim.delete_pod("shop", "slow");
    while sim.pod("shop", "slow").is_some() {
        advance(Duration::from_secs(1)).await;
    }
    sim.add_pod(
        Pod::new("shop", "slow")
            .on("n2")
            .owned_by("ReplicaSet", "slow")
            .label("app", "slow"),
    )
    .unwrap();
    sim.remove_budget("shop", "slow");
    let before = sim.evictions().len();

    advance(Duration::from_secs(30)).await;
    settle().await;
    assert_eq!(evictions_on(&sim, "n2", before), Vec::<String>::new());
    assert!(sim.pod("shop", "slow").is_some_and(|p| !p.is_terminating()));
}
