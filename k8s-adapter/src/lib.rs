//! [`cluster_api::ClusterApi`] over a real Kubernetes API server.
//!
//! `KubeCluster` will serve Nodes from a watch cache trimmed to what the cores need, list pods
//! by `spec.nodeName`, evict through `policy/v1`, keep Leases with resourceVersion
//! compare-and-swap, and map API errors onto [`cluster_api::Error`]. It is filled in by the
//! real-cluster work (issue 5); until then the server runs on `cluster-sim` only.
