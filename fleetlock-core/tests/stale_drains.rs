//! Drains that outlive what they were started for: a replica's drain keeps running while its
//! lease watch lags, and meanwhile another replica takes the holder on (approves it, sees it
//! through its reboot, releases it, grants the node again). Whatever the drain believes, it
//! acts only for the grant it was started for, and only while that grant is draining.

mod common;

use std::time::Duration;

use cluster_api::{ClusterApi, Pod};
use cluster_sim::{Operation, SimCluster};
use common::*;
use fleetlock_core::group::{GroupState, Holder, lease_name};
use fleetlock_core::{ClientParams, DrainPhase, HolderPhase, Kind, OnDrainTimeout};
use tokio::time::advance;

#[path = "stale_drains/timeouts.rs"]
mod timeouts;

/// A drain that retries every second, waiting on the budget (which the pre-flight would
/// refuse to start).
fn retrying_drain() -> fleetlock_core::FleetLockConfig {
    let mut config = config();
    config.drain.preflight = false;
    config.drain.request_wait = Duration::from_secs(1);
    config.drain.budget_retry = Duration::from_secs(1);
    config.drain.retry_initial = Duration::from_secs(1);
    config.drain.retry_max = Duration::from_secs(1);
    config
}

/// Rewrites the default group's Lease as another replica would, with compare-and-swap.
async fn rewrite_group(sim: &SimCluster, change: impl FnOnce(&mut GroupState)) {
    let lease = sim.lease(NS, &lease_name("default")).unwrap();
    let mut state = GroupState::from_lease(&lease).unwrap();
    change(&mut state);
    sim.replace_lease(&state.to_lease(NS, sim.now()))
        .await
        .unwrap();
}

/// Five seconds on, with the replicas' lease watches stalled from now: the slot of `client`
/// was given back elsewhere and the node granted again, by replica b. When the new grant was
/// made.
async fn regrant_unseen(sim: &SimCluster, client: &ClientParams) -> cluster_api::Timestamp {
    sim.set_latency(Operation::WatchLeases, Duration::from_secs(3600));
    sim.break_watches();
    advance(Duration::from_secs(5)).await;
    let now = sim.now();
    rewrite_group(sim, |state| {
        state.remove(&client.id);
        state
            .holders
            .push(Holder::granted(&client.id, "n1", now, "b"));
    })
    .await;
    now
}

/// The default group's holder for n1, as the cluster has it.
fn n1_holder(sim: &SimCluster) -> Option<Holder> {
    let lease = sim.lease(NS, &lease_name("default"))?;
    let state = GroupState::from_lease(&lease).unwrap();
    state.holders.into_iter().find(|h| h.node == "n1")
}

/// Replica a drains n1 and keeps retrying an eviction the budget refuses. Meanwhile another
/// replica finishes the job: n1 is drained, approved, rebooted and back, so its holder is
/// recovering and n1 uncordoned, with a new pod on it; a's lease watch has not said so yet.
/// a's drain confirms its slot before every eviction, and the slot is still held,
/// but not by a draining holder: it must evict nothing, and must not turn the recovering
/// holder back into an approved one (whose reboot would never come again, so that its slot
/// would never be given back).
#[tokio::test(start_paused = true)]
async fn a_drain_whose_holder_moved_on_elsewhere_evicts_and_approves_nothing() {
    let sim = slow_pod_under_a_budget(2);
    let mut config = retrying_drain();
    // The recovering holder keeps its slot throughout.
    config.groups.get_mut("default").unwrap().recovery.settle = Duration::from_secs(3600);
    let (a, _run_a) = replica(&sim, config, "a").await;
    let n1 = zincati("n1", "default");
    assert_eq!(a.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);

    sim.set_latency(Operation::WatchLeases, Duration::from_secs(3600));
    sim.break_watches();
    // Elsewhere: the drain finished, n1 rebooted and reported steady-state.
    sim.delete_pod("shop", "slow");
    rewrite_group(&sim, |state| {
        let holder = state.holder_mut(&n1.id).unwrap();
        holder.phase = HolderPhase::Recovering;
        holder.approved_at = Some(sim.now());
        holder.returned_at = Some(sim.now());
    })
    .await;
    sim.edit_node("n1", |n| {
        n.unschedulable = false;
        n.annotations.remove("restart-manager.io/cordoned");
    })
    .unwrap();
    // The set's pod comes back to n1, and its budget would now let it go.
    sim.remove_budget("shop", "slow");
    sim.add_pod(
        Pod::new("shop", "slow-again")
            .on("n1")
            .owned_by("ReplicaSet", "slow")
            .label("app", "slow"),
    )
    .unwrap();
    let before = sim.evictions().len();

    for _ in 0..60 {
        advance(Duration::from_secs(1)).await;
        let phase = n1_holder(&sim).map(|h| h.phase);
        assert_ne!(
            phase,
            Some(HolderPhase::Approved),
            "a's drain approved the recovering holder again at {}",
            sim.now()
        );
    }
    assert_eq!(evictions_on(&sim, "n1", before), Vec::<String>::new());
    assert_eq!(n1_holder(&sim).unwrap().phase, HolderPhase::Recovering);
    assert!(
        !sim.node("n1").unwrap().unschedulable,
        "n1 stays uncordoned"
    );
}

/// a drains n1 for a grant that another replica then released; n1 asked again and was
/// granted a new slot there, which is draining (n1 cordoned for it). a's lease watch lags.
/// a's drain belongs to the earlier grant: it must not evict or approve for the new one
/// (whose own drain decides), nor undo the cordon the new grant's drain relies on.
#[tokio::test(start_paused = true)]
async fn a_drain_for_an_earlier_grant_leaves_a_later_grant_alone() {
    let sim = slow_pod_under_a_budget(2);
    let config = retrying_drain();
    // Not leading: a takes up no drain but the one n1's request started.
    let (a, _run_a, _lead_a) = follower(&sim, config, "a").await;
    let n1 = zincati("n1", "default");
    assert_eq!(a.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);
    let first = n1_holder(&sim).unwrap();

    regrant_unseen(&sim, &n1).await;
    sim.remove_budget("shop", "slow");
    let before = sim.evictions().len();

    for _ in 0..60 {
        advance(Duration::from_secs(1)).await;
        let holder = n1_holder(&sim).unwrap();
        assert_ne!(holder.since, first.since);
        assert_eq!(
            holder.phase,
            HolderPhase::Draining,
            "the new grant was approved by a drain that is not its own"
        );
        assert!(
            sim.node("n1").unwrap().unschedulable,
            "the new grant's cordon was undone at {}",
            sim.now()
        );
    }
    assert_eq!(evictions_on(&sim, "n1", before), Vec::<String>::new());
}

/// A drain started from a cache that still says "draining" while another replica has taken
/// the holder through its reboot to recovering (the node uncordoned by its steady-state) must
/// not cordon the node again, nor evict from it: it checks the holder's phase in the cluster
/// around its cordon, and undoes a cordon that landed after the steady-state.
#[tokio::test(start_paused = true)]
async fn a_drain_from_a_stale_cache_leaves_a_recovering_node_alone() {
    let sim = slow_pod_under_a_budget(2);
    let mut config = config();
    config.drain.preflight = false;
    config.drain.request_wait = Duration::from_secs(1);
    // The replica that granted the slot crashes while draining n1.
    let (p, run_p) = replica(&sim, config.clone(), "p").await;
    let n1 = zincati("n1", "default");
    assert_eq!(p.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);
    assert!(sim.node("n1").unwrap().unschedulable);
    run_p.abort();

    // A new replica resumes the drain; its reads of the Node are slow, and meanwhile another
    // replica finishes the reboot: the holder is recovering and n1 uncordoned.
    sim.set_latency(Operation::GetNode, Duration::from_secs(10));
    let (_a, _run_a) = replica(&sim, config, "a").await;
    // Its drain has started, and waits on its read of n1.
    advance(Duration::from_secs(1)).await;
    let mut lease = sim.lease(NS, "fleetlock-default").unwrap();
    let holders = lease.annotations["restart-manager.io/holders"].clone();
    assert!(holders.contains("\"phase\":\"draining\""), "{holders}");
    lease.annotations.insert(
        "restart-manager.io/holders".into(),
        holders.replace("\"phase\":\"draining\"", "\"phase\":\"recovering\""),
    );
    sim.replace_lease(&lease).await.unwrap();
    sim.edit_node("n1", |n| {
        n.unschedulable = false;
        n.annotations.remove("restart-manager.io/cordoned");
    })
    .unwrap();
    sim.remove_budget("shop", "slow");
    let before = sim.evictions().len();

    // Looked at every few seconds for two minutes: never cordoned again.
    for _ in 0..40 {
        advance(Duration::from_secs(3)).await;
        let node = sim.node("n1").unwrap();
        assert!(
            !node.unschedulable,
            "n1 was cordoned again at {}: {:?}",
            sim.now(),
            reasons(&sim, "n1")
        );
    }
    assert_eq!(evictions_on(&sim, "n1", before), Vec::<String>::new());
    assert_eq!(sim.pods_on("n1").len(), 1, "n1's pod was left in peace");
}

/// a's drain evicts n1's three pods one at a time, and each eviction waits for the API
/// server. While the first is under way the slot is given back by another replica (a's lease
/// watch lags). The round must not go on to evict the other two: each eviction is sent only
/// while the grant is draining.
#[tokio::test(start_paused = true)]
async fn an_eviction_round_stops_once_the_slot_is_gone() {
    let sim = fleet(2);
    for name in ["web-1", "web-2", "web-3"] {
        sim.add_pod(
            Pod::new("shop", name)
                .on("n1")
                .owned_by("ReplicaSet", "web")
                .grace_period(1),
        )
        .unwrap();
    }
    let mut config = retrying_drain();
    config.drain.parallelism = 1;
    sim.set_latency(Operation::EvictPod, Duration::from_secs(20));
    let (a, _run_a, _lead_a) = follower(&sim, config, "a").await;
    let n1 = zincati("n1", "default");
    assert_eq!(a.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);
    assert_eq!(
        sim.calls().get(Operation::EvictPod),
        1,
        "the first is under way"
    );

    sim.set_latency(Operation::WatchLeases, Duration::from_secs(3600));
    sim.break_watches();
    rewrite_group(&sim, |state| {
        state.remove(&n1.id);
    })
    .await;

    advance(Duration::from_secs(120)).await;
    settle().await;
    assert_eq!(
        sim.calls().get(Operation::EvictPod),
        1,
        "evicted after the slot was given back: {:?}",
        evictions_on(&sim, "n1", 0)
    );
    let untouched: Vec<String> = sim
        .pods_on("n1")
        .into_iter()
        .filter(|p| !p.is_terminating())
        .map(|p| p.name)
        .collect();
    assert_eq!(untouched, ["web-2", "web-3"], "left in peace");
}

/// a drains n1 and approves it. n1's steady-state goes to b, which gives the slot back, and
/// b grants n1 again and drains it. a's fleet view shows the new grant without the earlier
/// grant's finished drain ("drained; reboot approved"), which is not the new grant's.
#[tokio::test(start_paused = true)]
async fn a_finished_drain_is_not_shown_for_a_later_grant() {
    let sim = fleet(2);
    let config = retrying_drain();
    let (a, _run_a, _lead_a) = follower(&sim, config.clone(), "a").await;
    let (b, _run_b, _lead_b) = follower(&sim, config, "b").await;
    let n1 = zincati("n1", "default");
    a.pre_reboot(&n1).await.unwrap();
    let done = a.snapshot().groups[0].holders[0].drain.clone().unwrap();
    assert_eq!(done.phase, DrainPhase::Done);

    b.steady_state(&n1).await.unwrap();
    assert_eq!(n1_holder(&sim), None);
    // n1 asks again, with a pod whose budget holds its drain back.
    add_slow_pod_under_a_budget(&sim);
    assert_eq!(b.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);
    settle().await;

    let snapshot = a.snapshot();
    let holder = &snapshot.groups[0].holders[0];
    assert_eq!(holder.phase, HolderPhase::Draining);
    assert_eq!(
        holder.drain.as_ref().map(|d| d.phase),
        None,
        "a runs no drain for the new grant: {:?}",
        holder.drain
    );
}

/// Zincati restarts while its node drains and says steady-state: the slot is given back, in
/// the same compare-and-swap that found the grant draining. Were the finding and the release
/// two writes, another replica could approve the grant in between (the node about to reboot)
/// and the release would free an approved node's slot.
#[tokio::test(start_paused = true)]
async fn a_steady_state_while_draining_never_frees_a_grant_approved_meanwhile() {
    let sim = slow_pod_under_a_budget(2);
    // The default: a steady-state of an approved grant without a reboot keeps the slot. The
    // drain waits an hour between tries, and the replica does no maintenance, so that every
    // read of the Lease from now on is the steady-state's.
    let mut config = retrying_drain();
    config.drain.budget_retry = Duration::from_secs(3600);
    for group in config.groups.values_mut() {
        group.recovery.unchanged_boot_id = fleetlock_core::UnchangedBootId::Recover;
    }
    let (a, _run, _lead) = follower(&sim, config, "a").await;
    let n1 = zincati("n1", "default");
    assert_eq!(a.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);
    settle().await;
    // Every read of the Lease now takes 5 s.
    sim.set_latency(Operation::GetLease, Duration::from_secs(5));
    let reads = sim.calls().get(Operation::GetLease);
    let steady = tokio::spawn({
        let (a, n1) = (a.clone(), n1.clone());
        async move { a.steady_state(&n1).await }
    });
    // Once the steady-state has read the Lease and judged the grant, and reads it again
    // (a second compare-and-swap), another replica approves the grant, if it still holds the
    // slot: that second read sees it approved.
    let mut approved = false;
    for _ in 0..400 {
        advance(Duration::from_millis(100)).await;
        if sim.calls().get(Operation::GetLease) - reads >= 2 {
            approved = n1_holder(&sim).is_some_and(|h| h.phase == HolderPhase::Draining);
            if approved {
                let boot = sim.node("n1").unwrap().boot_id;
                let now = sim.now();
                rewrite_group(&sim, |state| {
                    let h = state.holder_mut(&n1.id).unwrap();
                    h.phase = HolderPhase::Approved;
                    h.approved_at = Some(now);
                    h.boot_id = Some(boot);
                })
                .await;
            }
            break;
        }
        if steady.is_finished() {
            break;
        }
    }
    for _ in 0..6 {
        advance(Duration::from_secs(5)).await;
        settle().await;
    }
    steady.await.unwrap().unwrap();
    if approved {
        assert_eq!(
            n1_holder(&sim).map(|h| h.phase),
            Some(HolderPhase::Approved),
            "the approved grant keeps its slot"
        );
    } else {
        assert_eq!(n1_holder(&sim), None, "given back while it was draining");
    }
}
