//! Workload restarts, exactly like `kubectl rollout restart`.
//!
//! An allowlist says which Deployments, StatefulSets and DaemonSets may be restarted; a Lease
//! per workload makes sure only one restart runs at a time across every replica and the CLI;
//! rollout progress is judged the way `kubectl rollout status` judges it and streamed to
//! everyone watching.
//!
//! The crate talks to the cluster only through [`cluster_api::ClusterApi`]. It is filled in by
//! the restart work (issue 4).
