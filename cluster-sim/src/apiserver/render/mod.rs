//! The simulated objects in the API server's JSON shapes (those of
//! `shared/fixtures/kubernetes/`): what kubectl, kube-rs and client-go decode.
//!
//! | file | what it renders |
//! |---|---|
//! | `nodes.rs` | Nodes, and list items with their images |
//! | `pods.rs` | Pods |
//! | `workloads.rs` | Deployments, StatefulSets, DaemonSets, ReplicaSets |
//! | `leases.rs` | Leases and Secrets |
//! | `budgets.rs` | PodDisruptionBudgets |
//! | `events.rs` | Events, both shapes |
//! | `meta.rs` | what they share: times, `metadata`, derived uids |

mod budgets;
mod events;
mod leases;
mod meta;
mod nodes;
mod pods;
mod workloads;

pub(crate) use budgets::budget;
pub(crate) use events::{event, event_v1};
pub(crate) use leases::{lease, secret};
pub(crate) use meta::{derived_uid, time};
pub(crate) use nodes::{list_item, node, node_without_images};
pub(crate) use pods::pod;
pub(crate) use workloads::{replica_sets, workload};
