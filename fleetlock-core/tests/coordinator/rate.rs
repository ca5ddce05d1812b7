//! A group's rate: at most `reboots` grants within any `per`, besides its slots, counted in
//! its Lease so that every replica sees the same.

use fleetlock_core::RateLimit;
use fleetlock_core::group::{GroupState, RECENT_GRANTS_ANNOTATION};

use super::*;

const HOUR: Duration = Duration::from_secs(3600);

/// `config()` with the default group at two slots and one reboot an hour.
fn one_an_hour() -> fleetlock_core::FleetLockConfig {
    let mut config = config();
    let group = config.groups.get_mut("default").unwrap();
    group.slots = 2;
    group.rate = Some(RateLimit {
        reboots: 1,
        per: HOUR,
    });
    config
}

#[tokio::test(start_paused = true)]
async fn a_group_grants_no_more_than_its_rate_with_slots_free() {
    let sim = fleet(3);
    let (c, _run) = replica(&sim, one_an_hour(), "a").await;
    let (n1, n2) = (zincati("n1", "default"), zincati("n2", "default"));
    c.pre_reboot(&n1).await.unwrap();
    let granted = sim.now();
    sim.reboot_node("n1").unwrap();
    while sim.os_up("n1") != Some(true) {
        advance(Duration::from_secs(5)).await;
    }
    c.steady_state(&n1).await.unwrap();
    advance(Duration::from_secs(30)).await;
    settle().await;
    assert!(holders(&sim, "default").is_empty(), "n1 healed and went");

    // Both slots are free, but the hour's one reboot is spent.
    let refusal = c.pre_reboot(&n2).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::RateLimited, "{refusal}");
    let next = granted.checked_add(HOUR).unwrap();
    assert_eq!(
        refusal.value,
        format!(
            "group default granted 1 reboot in the last 1h (its rate: 1 reboot per 1h); the \
             next can be granted at {next}"
        )
    );
    let rate = c.snapshot().groups[0].rate.clone().unwrap();
    assert_eq!(
        (
            rate.reboots,
            rate.per_seconds,
            rate.granted,
            rate.next_grant_at
        ),
        (1, 3600, 1, Some(next))
    );

    // A second before the hour is out: still refused; at the hour: granted.
    let left = Duration::try_from(next.duration_since(sim.now())).unwrap();
    advance(left - Duration::from_secs(1)).await;
    assert_eq!(c.pre_reboot(&n2).await.unwrap_err().kind, Kind::RateLimited);
    advance(Duration::from_secs(1)).await;
    c.pre_reboot(&n2).await.unwrap();
    assert_eq!(holders(&sim, "default"), ["n2"]);
    // The Lease keeps the one grant the rate still counts: n2's.
    let lease = sim.lease(NS, "fleetlock-default").unwrap();
    assert_eq!(
        GroupState::from_lease(&lease).unwrap().recent_grants,
        [sim.now()]
    );
    assert_eq!(
        lease.annotations[RECENT_GRANTS_ANNOTATION],
        sim.now().to_string()
    );
}

/// Two replicas, each with its own view of the cluster, asked at once by two nodes of a
/// group with two free slots and one reboot an hour: one grant, whichever replica wins the
/// Lease's compare-and-swap; the other reads the winner's grant and refuses.
#[tokio::test(start_paused = true)]
async fn two_replicas_racing_grant_no_more_than_the_rate() {
    let sim = fleet(3);
    // Each read and write of the Lease yields, so the two read-decide-write cycles overlap.
    for op in [
        Operation::GetLease,
        Operation::ReplaceLease,
        Operation::CreateLease,
    ] {
        sim.set_latency(op, Duration::from_millis(7));
    }
    let (a, _run_a) = replica(&sim.client(), one_an_hour(), "a").await;
    let (b, _run_b) = replica(&sim.client(), one_an_hour(), "b").await;
    let (n1, n2) = (zincati("n1", "default"), zincati("n2", "default"));
    let (first, second) = tokio::join!(a.pre_reboot(&n1), b.pre_reboot(&n2));
    let granted = [first.is_ok(), second.is_ok()];
    assert_eq!(
        granted.iter().filter(|ok| **ok).count(),
        1,
        "{first:?} {second:?}"
    );
    let refused = first.err().or(second.err()).unwrap();
    assert_eq!(refused.kind, Kind::RateLimited, "{refused}");
    assert_eq!(holders(&sim, "default").len(), 1);
}
