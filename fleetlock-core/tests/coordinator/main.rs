//! The coordinator on the simulated cluster: grants, drains, approvals, releases, policies.

#[path = "../common/mod.rs"]
mod common;

use std::time::Duration;

use cluster_api::{Error, Pod};
use cluster_sim::{Operation, WorkloadSpec};
use common::*;
use fleetlock_core::nodes::{CORDONED_ANNOTATION, OPT_OUT_ANNOTATION, STATE_ANNOTATION};
use fleetlock_core::preflight::BudgetVerdict;
use fleetlock_core::{
    GateScope, GroupConfig, HealthGates, HolderPhase, Kind, OnDrainTimeout, UnknownGroups,
};
use tokio::time::{Instant, advance};

mod drain_races;
mod drains;
mod identity;
mod lease_size;
mod notices;
mod policies;
mod rate;
mod recovery;
mod recovery_edges;
mod rules;
