//! A recovering slot against late cordons, lagging replicas, and kubelets that have not
//! reported the new boot yet.

use fleetlock_core::group::GroupState;

use super::recovery::{config, holder_phase, web_under_budget};
use super::*;

/// Only the leader looks after holders, but any replica answers steady-state and every
/// replica shows what a recovering holder waits for (it is kept in the group Lease).
#[tokio::test(start_paused = true)]
async fn every_replica_shows_what_a_recovering_node_waits_for() {
    let sim = web_under_budget(600);
    let (a, _run_a) = replica(&sim, config(), "a").await;
    let (b, _run_b) = replica(&sim, config(), "b").await;
    let n1 = zincati("n1", "default");
    a.pre_reboot(&n1).await.unwrap();
    sim.reboot_node("n1").unwrap();
    advance(Duration::from_secs(60)).await;
    settle().await;
    b.steady_state(&n1).await.unwrap();
    settle().await;
    for c in [&a, &b] {
        let holder = &c.snapshot().groups[0].holders[0];
        assert_eq!(holder.phase, HolderPhase::Recovering);
        assert_eq!(
            holder.waiting_for,
            ["PodDisruptionBudget shop/web to be available again"]
        );
    }
}

/// Records every write that takes n1's holder out of the group Lease while n1 carries our
/// cordon: a release the invariants forbid.
#[derive(Default)]
struct ReleasedCordoned(std::sync::Mutex<Vec<String>>);

impl cluster_sim::Auditor for ReleasedCordoned {
    fn audit(&self, write: &cluster_sim::Write<'_>, cluster: &cluster_sim::ClusterView<'_>) {
        let cluster_sim::Write::Lease {
            before: Some(before),
            after: Some(after),
        } = write
        else {
            return;
        };
        let holds = |l: &cluster_api::Lease| {
            GroupState::from_lease(l).is_ok_and(|g| g.holders.iter().any(|h| h.node == "n1"))
        };
        let cordoned = cluster.node("n1").is_some_and(|n| {
            n.annotations
                .get(CORDONED_ANNOTATION)
                .is_some_and(|v| v == "true")
        });
        if holds(before) && !holds(after) && cordoned {
            self.0
                .lock()
                .unwrap()
                .push(format!("released at {}", cluster.now()));
        }
    }
}

/// A cordon of ours that reaches a recovering node after the node cache last looked (a
/// drain started from a stale view) is found and undone before the slot goes: the release
/// reads the node afresh rather than trusting a cache that lags.
#[tokio::test(start_paused = true)]
async fn a_late_cordon_on_a_recovering_node_is_undone_before_its_slot_goes() {
    let sim = web_under_budget(120);
    let released_cordoned = std::sync::Arc::new(ReleasedCordoned::default());
    sim.add_auditor(released_cordoned.clone());
    let (c, _run) = replica(&sim, config(), "a").await;
    let n1 = zincati("n1", "default");
    c.pre_reboot(&n1).await.unwrap();
    sim.reboot_node("n1").unwrap();
    advance(Duration::from_secs(60)).await;
    settle().await;
    c.steady_state(&n1).await.unwrap();
    assert_eq!(holder_phase(&sim), Some(HolderPhase::Recovering));

    // The node watch falls silent; then our cordon lands on n1 again.
    sim.set_latency(Operation::WatchNodes, Duration::from_secs(3600));
    sim.break_watches();
    sim.edit_node("n1", |n| {
        n.unschedulable = true;
        n.annotations
            .insert(CORDONED_ANNOTATION.into(), "true".into());
    })
    .unwrap();

    // The workload recovers (its pod waits for n1 to be schedulable again); the slot goes,
    // but only once the cordon is undone.
    for _ in 0..60 {
        advance(Duration::from_secs(10)).await;
        settle().await;
    }
    assert_eq!(holder_phase(&sim), None, "healed: the slot is free");
    assert!(!sim.node("n1").unwrap().unschedulable);
    assert_eq!(*released_cordoned.0.lock().unwrap(), Vec::<String>::new());
}

/// Zincati's real boot order: it says steady-state as soon as it starts, before the kubelet
/// has reported, so the Node still shows the old bootID and (a short reboot) Ready=True from
/// before. The slot stays until the kubelet has reported after the reboot; the next node is
/// not drained while this one's kubelet, network and DaemonSets are not up.
#[tokio::test(start_paused = true)]
async fn a_steady_state_before_the_kubelet_reports_keeps_the_slot() {
    let sim = fleet(2);
    let (c, _run) = replica(&sim, config(), "a").await;
    let (n1, n2) = (zincati("n1", "default"), zincati("n2", "default"));
    c.pre_reboot(&n1).await.unwrap();
    let before = sim.node("n1").unwrap();
    sim.reboot_node("n1").unwrap();
    advance(cluster_sim::SimConfig::default().reboot_duration).await;
    settle().await;
    assert_eq!(sim.os_up("n1"), Some(true));
    let stale = sim.node("n1").unwrap();
    assert!(stale.ready && stale.boot_id == before.boot_id);

    c.steady_state(&n1).await.unwrap();
    assert_eq!(holder_phase(&sim), Some(HolderPhase::Recovering));
    let waiting = c.snapshot().groups[0].holders[0].waiting_for.clone();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert!(waiting[0].contains("kubelet"), "{waiting:?}");
    assert_eq!(c.pre_reboot(&n2).await.unwrap_err().kind, Kind::LockHeld);

    // The kubelet reports the new boot: healed, and the slot goes to the next node.
    advance(cluster_sim::SimConfig::default().kubelet_start).await;
    settle().await;
    assert_eq!(holder_phase(&sim), None);
    assert!(
        !reasons(&sim, "n1").contains(&"RebootNotObserved".to_string()),
        "the reboot was observed: {:?}",
        reasons(&sim, "n1")
    );
    let refusal = c.pre_reboot(&n2).await;
    assert_eq!(holders(&sim, "default"), ["n2"], "{refusal:?}");
}

/// A steady-state without a reboot under `unchangedBootId: recover` heals only once the
/// kubelet has posted a status since the return: the stale Ready it shows might be from
/// before a reboot whose kubelet has not reported yet.
#[tokio::test(start_paused = true)]
async fn an_unchanged_boot_id_recovers_only_after_the_kubelet_reports_again() {
    let sim = fleet(2);
    let (c, _run) = replica(&sim, config(), "a").await;
    let n1 = zincati("n1", "default");
    c.pre_reboot(&n1).await.unwrap();
    c.steady_state(&n1).await.unwrap();
    assert_eq!(holder_phase(&sim), Some(HolderPhase::Recovering));
    advance(Duration::from_secs(60)).await;
    settle().await;
    assert_eq!(holder_phase(&sim), Some(HolderPhase::Recovering));
    // The kubelet's periodic status report: the node is up and reporting.
    sim.report_node_status("n1").unwrap();
    settle().await;
    advance(Duration::from_secs(15)).await;
    settle().await;
    assert_eq!(holder_phase(&sim), None);
    assert!(reasons(&sim, "n1").contains(&"NodeHealed".to_string()));
}

/// Zincati says steady-state again (it restarted, say) to a replica whose lock cache has not
/// seen the grant: the holder is recovering, and stays so until it has healed.
#[tokio::test(start_paused = true)]
async fn a_repeated_steady_state_to_a_lagging_replica_keeps_a_recovering_slot() {
    let sim = web_under_budget(600);
    let (a, _run_a) = replica(&sim, config(), "a").await;
    let (b, _run_b) = replica(&sim, config(), "b").await;
    sim.fail_always(
        Operation::WatchLeases,
        cluster_api::Error::unavailable("dial tcp 10.96.0.1:443: connect: connection refused"),
    );
    sim.break_watches();
    settle().await;
    let n1 = zincati("n1", "default");
    a.pre_reboot(&n1).await.unwrap();
    sim.reboot_node("n1").unwrap();
    advance(Duration::from_secs(60)).await;
    settle().await;
    a.steady_state(&n1).await.unwrap();
    assert_eq!(holder_phase(&sim), Some(HolderPhase::Recovering));

    b.steady_state(&n1).await.unwrap();
    assert_eq!(
        holder_phase(&sim),
        Some(HolderPhase::Recovering),
        "kept until the budget is whole again"
    );
}
