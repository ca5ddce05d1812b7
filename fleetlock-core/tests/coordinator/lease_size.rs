//! The group Lease stays within the API server's limit on annotations, however many holders
//! a group has and however much each drain disrupts.

use fleetlock_core::group::{self, ANNOTATIONS_LIMIT, GroupState};
use fleetlock_core::recovery::{MAX_TARGETS, RecoveryTarget};
use fleetlock_core::{Holder, HolderPhase};

use super::*;

/// A holder whose drain disrupted as many budgets as a holder records, each with the
/// longest names Kubernetes allows.
fn heavy_holder(i: usize, now: cluster_api::Timestamp) -> Holder {
    let namespace = |t: usize| format!("{:0>63}", format!("ns{i}x{t}"));
    Holder {
        phase: HolderPhase::Draining,
        evicts: (0..MAX_TARGETS)
            .map(|t| RecoveryTarget::Budget {
                namespace: namespace(t),
                name: format!("{:0>253}", format!("budget{t}")),
            })
            .collect(),
        waiting_for: vec![format!("{:0>400}", "a long wait"); 8],
        ..Holder::granted(format!("id-{i}"), format!("n{i}"), now, "test")
    }
}

fn annotations(sim: &cluster_sim::SimCluster) -> usize {
    let lease = sim.lease(NS, "fleetlock-default").unwrap();
    lease
        .annotations
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum()
}

/// Sixty heavy holders would take about 700 KiB: the API server would refuse the write
/// (422) and the sixtieth node could never be granted. Their records get coarser instead
/// (their budgets by namespace, then every namespace) as the Lease fills, never dropped.
#[tokio::test(start_paused = true)]
async fn a_group_with_many_heavy_holders_still_fits_its_lease() {
    let sim = cluster_sim::SimCluster::new();
    for i in 0..60 {
        let now = sim.now();
        group::modify(
            &sim,
            NS,
            "default",
            || now,
            |state| {
                state.holders.push(heavy_holder(i, now));
                Ok(())
            },
        )
        .await
        .unwrap_or_else(|e| panic!("holder {i}: {e}"));
    }
    assert!(annotations(&sim) <= ANNOTATIONS_LIMIT);
    let state = GroupState::from_lease(&sim.lease(NS, "fleetlock-default").unwrap()).unwrap();
    assert_eq!(state.holders.len(), 60, "every holder kept");
    let coarse = |h: &Holder| {
        h.evicts
            .iter()
            .all(|t| matches!(t, RecoveryTarget::Namespace { .. }))
    };
    assert!(
        state.holders.iter().all(|h| !h.evicts.is_empty()),
        "each waits for something"
    );
    assert!(
        state.holders.iter().filter(|h| coarse(h)).count() >= 30,
        "made coarser as needed"
    );
    assert!(!coarse(&state.holders[59]), "and only as needed");

    // Past what even the coarsest records allow, the write is refused with the reason,
    // and the Lease is left as it was.
    let before = sim.lease(NS, "fleetlock-default").unwrap();
    let now = sim.now();
    let refusal = group::modify(
        &sim,
        NS,
        "default",
        || now,
        |state| {
            for i in 60..2000 {
                state.holders.push(heavy_holder(i, now));
            }
            Ok(())
        },
    )
    .await
    .unwrap_err();
    assert_eq!(refusal.kind, Kind::LockHeld);
    assert!(refusal.value.contains("limit"), "{refusal}");
    assert_eq!(sim.lease(NS, "fleetlock-default").unwrap(), before);
}
