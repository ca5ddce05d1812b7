//! Between k8s-openapi's objects and the plain types of `cluster-api`: only what the cores
//! use is kept, which is what keeps a 5,000-node cache small.
//!
//! | file | what it converts |
//! |---|---|
//! | `nodes.rs` | Nodes, Pods and PodDisruptionBudgets: what a drain reads |
//! | `leases.rs` | Leases, both ways |
//! | `workloads.rs` | Deployments, StatefulSets, DaemonSets and the configuration they use |
//! | `config.rs` | ConfigMaps and Secrets |
//! | `events.rs` | Events, both ways |
//! | `fields.rs` | what every object shares: maps, strings, label selectors |

mod config;
mod events;
mod fields;
mod leases;
mod nodes;
mod workloads;

pub use config::{config_map, secret, secret_data, to_secret};
pub use events::{api_version, event, event_namespace, series_patch, to_event};
pub use leases::{lease, to_lease};
pub use nodes::{disruption_budget, node, pod};
pub use workloads::{daemonset, deployment, statefulset};
