//! A restart's dry run: the checks a restart makes and what it would touch, with nothing
//! changed and nothing recorded.

use cluster_api::{DisruptionBudget, Pod, PodFilter, UpdateStrategy, Workload, WorkloadRef};
use serde::{Deserialize, Serialize};

use super::ask::Ask;
use super::core::Core;
use crate::allowlist::Identity;
use crate::error::RestartError;
use crate::lock::LockInfo;

/// What a restart of one workload would do now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RestartPlan {
    /// `Kind/namespace/name`.
    pub workload: String,
    /// Always `true`: this is what would happen, not what did.
    pub dry_run: bool,
    /// Whether a restart now would be accepted.
    pub allowed: bool,
    /// Why it would be refused, if it would.
    pub refusal: Option<PlanRefusal>,
    /// Its restart lock, if one is held (an expired one would be taken over).
    pub lock: Option<LockInfo>,
    /// How its pods are replaced: `RollingUpdate`, `Recreate`, `OnDelete`, with the
    /// StatefulSet partition if there is one.
    pub strategy: String,
    /// `spec.replicas`; `None` for a DaemonSet.
    pub replicas: Option<i32>,
    /// The pods a restart would replace (those its selector matches now; a StatefulSet with a
    /// partition replaces only the ordinals at or above it).
    pub pods: Vec<PodToReplace>,
    /// The disruption budgets covering those pods. A rollout does not ask them (only
    /// evictions do), but they say how much disruption the owners expect to tolerate.
    pub budgets: Vec<GoverningBudget>,
}

/// Why a restart would be refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanRefusal {
    /// The refusal's kind, as a real restart would answer it (`locked`, `paused`, ...).
    pub kind: String,
    /// What it would say.
    pub message: String,
}

/// A pod a restart would replace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PodToReplace {
    /// `namespace/name`.
    pub pod: String,
    /// `spec.nodeName`; `None` while the pod is not yet scheduled.
    pub node: Option<String>,
    /// Whether it is ready now.
    pub ready: bool,
}

/// A disruption budget over pods a restart would replace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct GoverningBudget {
    /// `namespace/name`.
    pub budget: String,
    /// `status.disruptionsAllowed`.
    pub disruptions_allowed: i32,
    /// `status.currentHealthy`.
    pub current_healthy: i32,
    /// `status.desiredHealthy`.
    pub desired_healthy: i32,
}

impl Core {
    /// Makes the checks of a restart by `who` and lists what it would touch. An error is what
    /// the restart itself would answer before looking further (not allowlisted, not allowed,
    /// not in the cluster); a refusal after that (paused, strategy, windows, lock) is in the
    /// plan.
    pub(super) async fn dry_run(
        &self,
        workload: &WorkloadRef,
        who: &Identity,
        reason: Option<&str>,
    ) -> Result<RestartPlan, RestartError> {
        let ask = Ask::default();
        // Read fresh, as a restart reads it, but on the callers' own budget, as everything
        // else a dry run reads: a flood of dry runs never takes the turns of lock writes.
        let read = self.caller_reads.as_ref();
        let candidate = (self.admission.gate(read, workload, who, reason, &ask).await)
            .map_err(|refused| refused.error)?;
        // Held as this replica has watched it (see `crate::observed`).
        let lock = self.view(workload).lock;
        let refusal = (self.admission.judge(workload, who, &candidate, ask.windows))
            .err()
            .map(|refused| refused.error)
            .or_else(|| {
                let held = lock.as_ref()?;
                Some(RestartError::Locked {
                    workload: workload.clone(),
                    lock: Box::new(held.clone()),
                })
            })
            .map(|e| PlanRefusal {
                kind: e.kind().as_str().to_string(),
                message: e.to_string(),
            });
        let current = candidate.current;
        let (pods, budgets) = self.touched(workload, &current).await?;
        Ok(RestartPlan {
            workload: workload.to_string(),
            dry_run: true,
            allowed: refusal.is_none(),
            refusal,
            lock,
            strategy: strategy(&current),
            replicas: current.replicas,
            pods: pods.iter().map(PodToReplace::of).collect(),
            budgets: budgets.iter().map(GoverningBudget::of).collect(),
        })
    }

    /// The pods a restart would replace, and the disruption budgets over them.
    async fn touched(
        &self,
        workload: &WorkloadRef,
        current: &Workload,
    ) -> Result<(Vec<Pod>, Vec<DisruptionBudget>), RestartError> {
        let filter = PodFilter {
            namespace: Some(workload.namespace.clone()),
            labels: Some(current.selector.clone()),
            ..PodFilter::default()
        };
        let pods: Vec<_> = self
            .caller_reads
            .list_pods(&filter)
            .await
            .map_err(RestartError::Cluster)?
            .into_iter()
            .filter(|p| !p.is_terminating() && !p.is_finished())
            .collect();
        let budgets: Vec<DisruptionBudget> = self
            .caller_reads
            .list_disruption_budgets()
            .await
            .map_err(RestartError::Cluster)?
            .into_iter()
            .filter(|b| pods.iter().any(|p| b.covers(p)))
            .collect();
        Ok((pods, budgets))
    }
}

impl PodToReplace {
    fn of(p: &Pod) -> Self {
        PodToReplace {
            pod: p.to_string(),
            node: p.node_name.clone(),
            ready: p.ready,
        }
    }
}

impl GoverningBudget {
    fn of(b: &DisruptionBudget) -> Self {
        GoverningBudget {
            budget: b.key(),
            disruptions_allowed: b.disruptions_allowed,
            current_healthy: b.current_healthy,
            desired_healthy: b.desired_healthy,
        }
    }
}

fn strategy(w: &Workload) -> String {
    match w.strategy {
        UpdateStrategy::RollingUpdate { partition: Some(p) } if p > 0 => {
            format!("RollingUpdate (partition {p})")
        }
        UpdateStrategy::RollingUpdate { .. } => "RollingUpdate".into(),
        UpdateStrategy::Recreate => "Recreate".into(),
        UpdateStrategy::OnDelete => "OnDelete".into(),
    }
}
