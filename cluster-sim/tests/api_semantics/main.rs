//! resourceVersion, compare-and-swap, errors and counters: the API server's rules.

mod faults;
mod leases;
mod limits;
mod watches;

use std::sync::Arc;
use std::time::Duration;

use cluster_api::{
    ClusterApi, Error, Event, EventType, LabelSelector, Lease, Node, NodePatch, ObjectRef,
};
use cluster_sim::{Operation, SimCluster};
use tokio::sync::Barrier;

fn lease(name: &str) -> Lease {
    Lease::new("restart-manager", name)
}
