//! Each check flags the write that breaks it, and only that: writes made by hand, the way a
//! faulty coordinator or restart service would make them.

mod groups;
mod locks;
mod settled;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cluster_api::{ClusterApi, EvictOptions, Node, NodePatch, WorkloadRef};
use cluster_sim::{SimCluster, WorkloadSpec};
use fleetlock_core::drain::DrainOptions;
use fleetlock_core::group::GroupState;
use fleetlock_core::nodes::CORDONED_ANNOTATION;
use fleetlock_core::{Holder, HolderPhase};
use invariants::{Invariant, Invariants};
use restart_core::RESTARTED_AT;
use restart_core::lock::{Take, TakeRequest, release, take};

const NS: &str = "restart-manager";

fn cluster() -> (SimCluster, Arc<Invariants>, WorkloadRef) {
    let sim = SimCluster::new();
    for n in ["n1", "n2", "n3"] {
        sim.add_node(Node::new(n));
    }
    let spec = WorkloadSpec::deployment("shop", "web").replicas(3);
    let web = spec.reference();
    sim.add_workload(spec).unwrap();
    let checker = Invariants::watch(&sim, NS, DrainOptions::default(), 1);
    (sim, checker, web)
}

fn holder(node: &str, phase: HolderPhase, sim: &SimCluster) -> Holder {
    Holder {
        phase,
        ..Holder::granted(format!("id-{node}"), node, sim.now(), "test")
    }
}

/// Writes the group Lease with these holders (creating it the first time).
async fn write_group(sim: &SimCluster, holders: Vec<Holder>) {
    change_group(sim, |state| state.holders = holders).await;
}

/// Writes the group Lease with these holders as a heal of the one left out does: recording
/// the group's last return, and naming the grant healed, in the same write.
async fn heal_group(sim: &SimCluster, holders: Vec<Holder>) {
    let now = sim.now();
    change_group(sim, |state| {
        let healed = state
            .holders
            .iter()
            .find(|h| !holders.iter().any(|k| k.same_grant(h)))
            .map(Holder::grant);
        state.holders = holders;
        state.last_return = Some(now);
        state.last_healed = healed;
    })
    .await;
}

/// Changes the group Lease as restart-manager writes it (creating it the first time).
async fn change_group(sim: &SimCluster, change: impl FnOnce(&mut GroupState)) {
    let current = sim.lease(NS, &fleetlock_core::group::lease_name("default"));
    let mut state = match &current {
        Some(lease) => GroupState::from_lease(lease).unwrap(),
        None => GroupState::empty("default"),
    };
    change(&mut state);
    let lease = state.to_lease(NS, sim.now());
    if current.is_some() {
        sim.replace_lease(&lease).await.unwrap();
    } else {
        sim.create_lease(&lease).await.unwrap();
    }
}

fn found(checker: &Invariants) -> Vec<Invariant> {
    checker.violations().iter().map(|v| v.invariant).collect()
}
