//! What a caller may do: [`Action`]s, and [`Auth::may`] deciding them, by the cluster's RBAC
//! with Kubernetes authentication and by `--admins` and `--viewers` otherwise.

use std::collections::{BTreeMap, BTreeSet};

use cluster_api::WorkloadRef;
use k8s_adapter::Access;
use restart_core::Identity;

use super::error::AuthError;
use super::identify::{Auth, Authenticator};

/// Where Prometheus reads the metrics; with Kubernetes authentication also the non-resource
/// URL a scraper needs `get` on.
pub const METRICS_PATH: &str = "/metrics";

/// Something a caller wants to do, for authorisation.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// Restart a workload.
    Restart(&'a WorkloadRef),
    /// Break a workload's restart lock.
    Unlock(&'a WorkloadRef),
    /// Pause or resume a reboot group.
    PauseGroup(&'a str),
    /// See a workload's status and restart history.
    View(&'a WorkloadRef),
    /// See the fleet: nodes, groups and slots.
    ViewFleet,
    /// See the pods of a namespace (`""`: of every namespace), as a dry run and a drain plan
    /// list them.
    ViewPods(&'a str),
    /// Read `/metrics`, which names the allowlisted workloads.
    ReadMetrics,
}

/// What Kubernetes authorisation asks for seeing a workload.
fn view(w: &WorkloadRef) -> Access<'_> {
    Access {
        verb: "get",
        group: "apps",
        resource: w.kind.resource(),
        namespace: &w.namespace,
        name: &w.name,
    }
}

/// What Kubernetes authorisation asks for `action`; `lease` is the Lease of the group a
/// [`Action::PauseGroup`] names, in the server's `namespace`.
fn rbac_access<'a>(action: Action<'a>, namespace: &'a str, lease: &'a str) -> Access<'a> {
    let (verb, group, resource, namespace, name) = match action {
        Action::Restart(w) => (
            "restart",
            "apps",
            w.kind.resource(),
            &*w.namespace,
            &*w.name,
        ),
        Action::Unlock(w) => ("unlock", "apps", w.kind.resource(), &*w.namespace, &*w.name),
        Action::PauseGroup(_) => ("update", "coordination.k8s.io", "leases", namespace, lease),
        Action::View(w) => return view(w),
        Action::ViewFleet => ("list", "", "nodes", "", ""),
        Action::ViewPods(namespace) => ("list", "", "pods", namespace, ""),
        // The non-resource URL, as controller-runtime's and kube-rbac-proxy's metrics
        // filters ask: `nonResourceURLs: ["/metrics"], verbs: ["get"]` in a ClusterRole.
        Action::ReadMetrics => ("get", "", METRICS_PATH, "", ""),
    };
    Access {
        verb,
        group,
        resource,
        namespace,
        name,
    }
}

// === impl Auth ===

impl Auth {
    /// Whether the caller may do `action`: with Kubernetes authentication, asked of the
    /// cluster's RBAC; otherwise restarts are governed by the allowlist and the rest by
    /// `--admins`.
    pub async fn may(&self, who: &Identity, action: Action<'_>) -> Result<(), AuthError> {
        let allowed = match (&self.authenticator, action) {
            (Authenticator::Kubernetes(kube), _) => {
                let lease = match action {
                    Action::PauseGroup(group) => fleetlock_core::group::lease_name(group),
                    _ => String::new(),
                };
                kube.may(who, &rbac_access(action, &kube.namespace, &lease))
                    .await?
            }
            (_, Action::Restart(_)) => true,
            (_, Action::Unlock(_) | Action::PauseGroup(_)) => self.is_admin(who),
            (
                _,
                Action::View(_) | Action::ViewFleet | Action::ViewPods(_) | Action::ReadMetrics,
            ) => self.is_viewer(who),
        };
        if allowed {
            return Ok(());
        }
        Err(AuthError::Forbidden(self.refusal(who, action)))
    }

    /// Why `who` may not do `action`, naming what would let them.
    fn refusal(&self, who: &Identity, action: Action<'_>) -> String {
        match action {
            Action::Restart(w) => format!(
                "{who} may not restart {w} (needs the verb restart on {}.apps)",
                w.kind.resource()
            ),
            Action::Unlock(w) => {
                format!("{who} may not break the restart lock of {w} (not an admin)")
            }
            Action::PauseGroup(g) => format!("{who} may not pause reboot group {g} (not an admin)"),
            Action::View(w) if self.is_kubernetes() => format!(
                "{who} may not see {w} (needs the verb get on {}.apps)",
                w.kind.resource()
            ),
            Action::View(w) => format!("{who} may not see {w} (not a viewer)"),
            Action::ViewFleet if self.is_kubernetes() => {
                format!("{who} may not see the fleet (needs the verb list on nodes)")
            }
            Action::ViewFleet => format!("{who} may not see the fleet (not a viewer)"),
            Action::ViewPods(namespace) if self.is_kubernetes() => match namespace {
                "" => format!(
                    "{who} may not see the pods of every namespace (needs the verb list on pods \
                     cluster-wide)"
                ),
                ns => format!(
                    "{who} may not see the pods in {ns} (needs the verb list on pods in {ns})"
                ),
            },
            Action::ViewPods(_) => format!("{who} may not see pods (not a viewer)"),
            Action::ReadMetrics if self.is_kubernetes() => format!(
                "{who} may not read the metrics (needs the verb get on the non-resource URL \
                 {METRICS_PATH})"
            ),
            Action::ReadMetrics => format!("{who} may not read the metrics (not a viewer)"),
        }
    }

    /// Which of `workloads` the caller may see. With Kubernetes authentication one review
    /// asks for each kind and namespace at once (`get` on every Deployment in `shop`), and
    /// only where that is denied is each workload asked about by name; answers are cached.
    pub async fn visible<'a>(
        &self,
        who: &Identity,
        workloads: impl IntoIterator<Item = &'a WorkloadRef>,
    ) -> Result<BTreeSet<&'a WorkloadRef>, AuthError> {
        let Authenticator::Kubernetes(kube) = &self.authenticator else {
            return Ok(if self.is_viewer(who) {
                workloads.into_iter().collect()
            } else {
                BTreeSet::new()
            });
        };
        let mut by_place: BTreeMap<(&str, &str), Vec<&WorkloadRef>> = BTreeMap::new();
        for w in workloads {
            by_place
                .entry((w.kind.resource(), w.namespace.as_str()))
                .or_default()
                .push(w);
        }
        let mut seen = BTreeSet::new();
        for list in by_place.into_values() {
            let all = Access {
                name: "",
                ..view(list[0])
            };
            if kube.may(who, &all).await? {
                seen.extend(list);
                continue;
            }
            for w in list {
                if kube.may(who, &view(w)).await? {
                    seen.insert(w);
                }
            }
        }
        Ok(seen)
    }
}
