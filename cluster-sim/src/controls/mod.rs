//! The test controls of [`SimCluster`](crate::SimCluster), by topic:
//!
//! | file | what it holds |
//! |---|---|
//! | `nodes.rs` | time, Nodes and Pods to set up and change |
//! | `setup.rs` | users and access rules, ConfigMaps and Secrets, budgets |
//! | `workloads.rs` | workloads to add, change and remove |
//! | `inspect.rs` | inspection that counts nothing; counters and faults |

mod inspect;
mod nodes;
mod setup;
mod workloads;
