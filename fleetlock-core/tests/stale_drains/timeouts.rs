//! Drain timeouts that outlive their grant: a timeout acts only for a grant still draining.

use super::*;

/// a's drain of n1 is waiting out a long backoff when the slot is given back and n1 granted
/// again by another replica; a's lease watch lags. When the earlier grant's drain timeout comes,
/// a must not give back the later grant, whose own drain has its own timeout.
#[tokio::test(start_paused = true)]
async fn an_earlier_grants_drain_timeout_leaves_a_later_grant_its_slot() {
    let sim = slow_pod_under_a_budget(2);
    let mut config = retrying_drain();
    config.drain.budget_retry = Duration::from_secs(120);
    config.drain.timeout = Duration::from_secs(30);
    config.drain.on_timeout = OnDrainTimeout::Release;
    let (a, _run_a, _lead_a) = follower(&sim, config, "a").await;
    let n1 = zincati("n1", "default");
    assert_eq!(a.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);

    let later = regrant_unseen(&sim, &n1).await;

    for _ in 0..60 {
        advance(Duration::from_secs(1)).await;
        assert_eq!(
            n1_holder(&sim).map(|h| h.since),
            Some(later),
            "the later grant lost its slot at {}: {:?}",
            sim.now(),
            reasons(&sim, "n1")
        );
    }
    assert!(
        !reasons(&sim, "n1").contains(&"DrainTimedOut".to_string()),
        "a timed out a grant that was not its own: {:?}",
        reasons(&sim, "n1")
    );
}

/// Two replicas drain the same grant of n1 under `onTimeout: release`. At the deadline, a's
/// drain sets out to give the slot back, but its write waits for the API server; meanwhile
/// another replica finds n1 empty and approves it, and Zincati reboots n1. a's timeout must
/// not give back the slot of the approved, rebooting node (nor uncordon it), which would let
/// the next node go while n1 is down.
#[tokio::test(start_paused = true)]
async fn a_lagging_drain_timeout_leaves_an_approved_rebooting_node_its_slot() {
    let sim = slow_pod_under_a_budget(2);
    let mut config = retrying_drain();
    config.drain.timeout = Duration::from_secs(30);
    config.drain.on_timeout = OnDrainTimeout::Release;
    let (a, _run_a, _lead_a) = follower(&sim, config, "a").await;
    let n1 = zincati("n1", "default");
    assert_eq!(a.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);

    // a's Lease writes wait for the API server while its drain reaches its deadline.
    sim.set_latency(Operation::ReplaceLease, Duration::from_secs(20));
    advance(Duration::from_secs(30)).await;
    settle().await;
    sim.set_latency(Operation::ReplaceLease, Duration::ZERO);

    // Elsewhere: n1 is found empty and approved; Zincati reboots it.
    sim.delete_pod("shop", "slow");
    let boot_id = sim.node("n1").unwrap().boot_id;
    let approved_at = sim.now();
    rewrite_group(&sim, |state| {
        let holder = state.holder_mut(&n1.id).unwrap();
        holder.phase = HolderPhase::Approved;
        holder.approved_at = Some(approved_at);
        holder.boot_id = Some(boot_id);
    })
    .await;
    sim.reboot_node("n1").unwrap();

    for _ in 0..120 {
        advance(Duration::from_secs(1)).await;
        assert_eq!(
            n1_holder(&sim).map(|h| h.phase),
            Some(HolderPhase::Approved),
            "the approved grant lost its slot at {}: {:?}",
            sim.now(),
            reasons(&sim, "n1")
        );
        assert!(
            sim.node("n1").unwrap().unschedulable,
            "n1 was uncordoned mid-reboot at {}",
            sim.now()
        );
    }
    assert!(
        !reasons(&sim, "n1").contains(&"DrainTimedOut".to_string()),
        "{:?}",
        reasons(&sim, "n1")
    );
}

/// At a's drain deadline (`onTimeout: release`) the Lease cannot be read: a cannot tell that
/// another replica has meanwhile approved n1, which is rebooting (a's watches lag). Not
/// knowing where the grant stands, a must give nothing back; it looks again later, and then
/// sees the approval.
#[tokio::test(start_paused = true)]
async fn a_drain_timeout_that_cannot_read_the_grant_gives_nothing_back() {
    let sim = slow_pod_under_a_budget(2);
    let mut config = retrying_drain();
    config.drain.timeout = Duration::from_secs(30);
    config.drain.on_timeout = OnDrainTimeout::Release;
    // No eviction retry before the deadline: the drain wakes for its timeout.
    config.drain.budget_retry = Duration::from_secs(120);
    let (a, _run_a, _lead_a) = follower(&sim, config, "a").await;
    let n1 = zincati("n1", "default");
    assert_eq!(a.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);

    // Elsewhere: n1 is approved; Zincati reboots it. a's lease watch lags.
    sim.set_latency(Operation::WatchLeases, Duration::from_secs(3600));
    sim.break_watches();
    advance(Duration::from_secs(5)).await;
    let boot_id = sim.node("n1").unwrap().boot_id;
    let approved_at = sim.now();
    rewrite_group(&sim, |state| {
        let holder = state.holder_mut(&n1.id).unwrap();
        holder.phase = HolderPhase::Approved;
        holder.approved_at = Some(approved_at);
        holder.boot_id = Some(boot_id);
    })
    .await;
    sim.reboot_node("n1").unwrap();
    // The first read of the Lease at the deadline fails.
    sim.fail_next(
        Operation::GetLease,
        1,
        cluster_api::Error::unavailable("etcdserver: request timed out"),
    );

    for _ in 0..60 {
        advance(Duration::from_secs(1)).await;
        assert_eq!(
            n1_holder(&sim).map(|h| h.phase),
            Some(HolderPhase::Approved),
            "the approved grant lost its slot at {}: {:?}",
            sim.now(),
            reasons(&sim, "n1")
        );
        assert!(sim.node("n1").unwrap().unschedulable, "n1 stays cordoned");
    }
    assert!(
        !reasons(&sim, "n1").contains(&"DrainTimedOut".to_string()),
        "{:?}",
        reasons(&sim, "n1")
    );
}

/// a's drain of n1 times out (`onTimeout: release`) and gives the slot back; its uncordon of
/// n1 is slow to reach the API server, and meanwhile n1 asks b and is granted again. b's drain
/// finds n1 still cordoned under our annotation, but that cordon is the earlier grant's, which
/// a is about to undo: once the writes are through, n1 must still be cordoned for the later
/// grant, else pods are scheduled onto it while it drains and it is approved with them on it.
#[tokio::test(start_paused = true)]
async fn a_timed_out_grants_late_uncordon_leaves_a_later_grant_its_cordon() {
    let sim = slow_pod_under_a_budget(2);
    let mut config = retrying_drain();
    // No eviction retry before the deadline: the drain wakes for its timeout.
    config.drain.budget_retry = Duration::from_secs(120);
    config.drain.timeout = Duration::from_secs(30);
    config.drain.on_timeout = OnDrainTimeout::Release;
    let (a, _run_a, _lead_a) = follower(&sim, config.clone(), "a").await;
    let (b, _run_b, _lead_b) = follower(&sim, config, "b").await;
    let n1 = zincati("n1", "default");
    assert_eq!(a.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);
    let first = n1_holder(&sim).unwrap();
    assert!(sim.node("n1").unwrap().unschedulable);

    // From just before a's deadline, writes to Nodes take ten seconds to land.
    advance(Duration::from_secs(27)).await;
    settle().await;
    sim.set_latency(Operation::PatchNode, Duration::from_secs(10));
    advance(Duration::from_secs(3)).await;
    settle().await;
    assert_eq!(n1_holder(&sim), None, "a's drain gave the slot back");
    assert!(reasons(&sim, "n1").contains(&"DrainTimedOut".to_string()));

    // n1 asks again, at b, before a's uncordon has landed.
    assert_eq!(b.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);
    let later = n1_holder(&sim).unwrap();
    assert_ne!(later.since, first.since);

    // Every write has landed.
    advance(Duration::from_secs(12)).await;
    sim.set_latency(Operation::PatchNode, Duration::ZERO);
    for _ in 0..10 {
        advance(Duration::from_secs(1)).await;
    }
    let holder = n1_holder(&sim).unwrap();
    assert!(holder.same_grant(&later));
    assert_eq!(holder.phase, HolderPhase::Draining);
    let node = sim.node("n1").unwrap();
    assert!(
        node.unschedulable,
        "n1 was left uncordoned at {} while its later grant drains: {:?}",
        sim.now(),
        reasons(&sim, "n1")
    );
}
