//! [`cluster_api::ClusterApi`] over a real Kubernetes API server, with kube-rs.
//!
//! [`KubeCluster`] performs every operation the cores need:
//!
//! | operation | request |
//! |---|---|
//! | `list_nodes`, `watch_nodes` | `/api/v1/nodes` in pages of 100, trimmed to the metadata asked for; nothing cached here |
//! | `get_node` | `GET /api/v1/nodes/{name}` (fresh, for compare-and-swap) |
//! | `patch_node` | JSON merge patch; `metadata.resourceVersion` in the patch makes it conditional |
//! | `list_pods`, `watch_pods` | `/api/v1/pods?fieldSelector=spec.nodeName=...` |
//! | `evict_pod` | `POST /api/v1/namespaces/{ns}/pods/{name}/eviction` (`policy/v1`) |
//! | leases | `coordination.k8s.io/v1`, replace with `resourceVersion` (409 when stale) |
//! | workloads | `apps/v1` get, list, watch; merge patch of the pod template's annotations |
//! | events | `v1` Events (what `kubectl describe` shows), listed by `involvedObject` |
//!
//! API errors map onto [`cluster_api::Error`] by status (see [`errors`]); every call but the
//! watches goes through a client-side token bucket and a timeout ([`KubeOptions`]).
//! [`required_permissions`] lists exactly the RBAC the adapter needs;
//! [`KubeCluster::missing_permissions`] checks them at start-up.
//!
//! | file | what it holds |
//! |---|---|
//! | `client.rs` | [`KubeCluster`]: connecting, options, the limiter and timeout every call passes |
//! | `api.rs` | the `ClusterApi` implementation, one request per operation |
//! | `nodes.rs` | Nodes listed in pages and watched, trimmed |
//! | `watch.rs` | watches that resume from the last resourceVersion seen and list again only on `410 Gone` |
//! | `reviews.rs` | the start-up permission check and the access reviews for the server's callers |
//! | [`rbac`] | the permissions the adapter needs, and the Roles that grant them |
//!
//! The Kubernetes API version of the k8s-openapi types is chosen by the binaries.

mod api;
mod client;
pub mod convert;
pub mod errors;
mod limiter;
mod nodes;
pub mod rbac;
mod reviews;
pub mod slim;
pub mod throttle;
mod watch;

pub use client::{ConnectError, KubeCluster, KubeOptions};
pub use limiter::{RateLimiter, TooLate};
pub use rbac::{EVENT_KEY_SECRET, Permission, config_watch_permissions, required_permissions};
pub use reviews::{Access, User};
pub use throttle::RetryAfterLayer;
