//! Whether a rollout is done, judged exactly as `kubectl rollout status` judges it.

use cluster_api::{UpdateStrategy, Workload, WorkloadKind, WorkloadStatus};
use serde::{Deserialize, Serialize};

/// Where a rollout is, with kubectl's own sentence for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// Done, still going, or failed.
    pub verdict: Verdict,
    /// What `kubectl rollout status` would print.
    pub message: String,
    /// Replicas wanted (DaemonSet: nodes that should run a pod).
    pub desired: i32,
    /// Replicas at the newest template.
    pub updated: i32,
    /// Replicas passing readiness.
    pub ready: i32,
    /// Replicas available.
    pub available: i32,
}

/// `kubectl rollout status`'s verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// Still waiting.
    Progressing,
    /// Successfully rolled out.
    Complete,
    /// Failed (a Deployment past its progress deadline, or a strategy that cannot be watched).
    Failed,
}

/// Judges a workload's rollout from its status fields, as kubectl's status viewers do.
pub fn rollout(w: &Workload) -> Rollout {
    let s = &w.status;
    let observed = s.observed_generation.unwrap_or(0);
    let (verdict, message, desired) = match w.kind {
        WorkloadKind::Deployment => deployment(w, s, observed),
        WorkloadKind::DaemonSet => daemon_set(w, s, observed),
        WorkloadKind::StatefulSet => stateful_set(w, s, observed),
    };
    Rollout {
        verdict,
        message,
        desired,
        updated: s.updated_replicas,
        ready: s.ready_replicas,
        available: s.available_replicas,
    }
}

/// kubectl's `DeploymentStatusViewer`: the verdict, its message, the replicas wanted.
fn deployment(w: &Workload, s: &WorkloadStatus, observed: i64) -> (Verdict, String, i32) {
    let desired = w.replicas.unwrap_or(1);
    let (verdict, message) = if w.generation > observed {
        (
            Verdict::Progressing,
            "Waiting for deployment spec update to be observed...".to_string(),
        )
    } else if w
        .condition("Progressing")
        .is_some_and(|c| c.reason == "ProgressDeadlineExceeded")
    {
        (
            Verdict::Failed,
            format!("deployment {:?} exceeded its progress deadline", w.name),
        )
    } else if s.updated_replicas < desired {
        (
            Verdict::Progressing,
            format!(
                "Waiting for deployment {:?} rollout to finish: {} out of {desired} new replicas have been updated...",
                w.name, s.updated_replicas
            ),
        )
    } else if s.replicas > s.updated_replicas {
        (
            Verdict::Progressing,
            format!(
                "Waiting for deployment {:?} rollout to finish: {} old replicas are pending termination...",
                w.name,
                s.replicas - s.updated_replicas
            ),
        )
    } else if s.available_replicas < s.updated_replicas {
        (
            Verdict::Progressing,
            format!(
                "Waiting for deployment {:?} rollout to finish: {} of {} updated replicas are available...",
                w.name, s.available_replicas, s.updated_replicas
            ),
        )
    } else {
        (
            Verdict::Complete,
            format!("deployment {:?} successfully rolled out", w.name),
        )
    };
    (verdict, message, desired)
}

/// kubectl's `DaemonSetStatusViewer`: the verdict, its message, the nodes that should run a pod.
fn daemon_set(w: &Workload, s: &WorkloadStatus, observed: i64) -> (Verdict, String, i32) {
    let desired = s.desired_number_scheduled;
    let (verdict, message) = if !matches!(w.strategy, UpdateStrategy::RollingUpdate { .. }) {
        (
            Verdict::Failed,
            "rollout status is only available for RollingUpdate strategy type".to_string(),
        )
    } else if w.generation > observed {
        (
            Verdict::Progressing,
            "Waiting for daemon set spec update to be observed...".to_string(),
        )
    } else if s.updated_replicas < desired {
        (
            Verdict::Progressing,
            format!(
                "Waiting for daemon set {:?} rollout to finish: {} out of {desired} new pods have been updated...",
                w.name, s.updated_replicas
            ),
        )
    } else if s.available_replicas < desired {
        (
            Verdict::Progressing,
            format!(
                "Waiting for daemon set {:?} rollout to finish: {} of {desired} updated pods are available...",
                w.name, s.available_replicas
            ),
        )
    } else {
        (
            Verdict::Complete,
            format!("daemon set {:?} successfully rolled out", w.name),
        )
    };
    (verdict, message, desired)
}

/// kubectl's `StatefulSetStatusViewer`: the verdict, its message, the replicas wanted.
fn stateful_set(w: &Workload, s: &WorkloadStatus, observed: i64) -> (Verdict, String, i32) {
    let desired = w.replicas.unwrap_or(1);
    let partition = match w.strategy {
        UpdateStrategy::RollingUpdate { partition } => partition,
        _ => None,
    };
    let (verdict, message) = if !matches!(w.strategy, UpdateStrategy::RollingUpdate { .. }) {
        (
            Verdict::Failed,
            "rollout status is only available for RollingUpdate strategy type".to_string(),
        )
    } else if observed == 0 || w.generation > observed {
        (
            Verdict::Progressing,
            "Waiting for statefulset spec update to be observed...".to_string(),
        )
    } else if s.ready_replicas < desired {
        (
            Verdict::Progressing,
            format!(
                "Waiting for {} pods to be ready...",
                desired - s.ready_replicas
            ),
        )
    } else if let Some(p) = partition {
        // kubectl takes this branch whenever a partition is set, 0 included, and the
        // API server sets 0 on every RollingUpdate StatefulSet: on a real cluster
        // this is how every StatefulSet is judged.
        if s.updated_replicas < desired - p {
            (
                Verdict::Progressing,
                format!(
                    "Waiting for partitioned roll out to finish: {} out of {} new pods have been updated...",
                    s.updated_replicas,
                    desired - p
                ),
            )
        } else {
            (
                Verdict::Complete,
                format!(
                    "partitioned roll out complete: {} new pods have been updated...",
                    s.updated_replicas
                ),
            )
        }
    } else if s.update_revision != s.current_revision {
        (
            Verdict::Progressing,
            format!(
                "waiting for statefulset rolling update to complete {} pods at revision {}...",
                s.updated_replicas,
                s.update_revision.as_deref().unwrap_or("")
            ),
        )
    } else {
        (
            Verdict::Complete,
            format!(
                "statefulset rolling update complete {} pods at revision {}...",
                s.updated_replicas,
                s.current_revision.as_deref().unwrap_or("")
            ),
        )
    };
    (verdict, message, desired)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use cluster_api::{Condition, LabelSelector, WorkloadStatus};

    use super::*;

    fn deployment(replicas: i32, generation: i64, status: WorkloadStatus) -> Workload {
        Workload {
            kind: WorkloadKind::Deployment,
            namespace: "shop".into(),
            name: "web".into(),
            uid: String::new(),
            resource_version: "1".into(),
            generation,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            replicas: Some(replicas),
            paused: false,
            strategy: UpdateStrategy::RollingUpdate { partition: None },
            progress_deadline_seconds: Some(600),
            selector: LabelSelector::default(),
            template_annotations: BTreeMap::new(),
            config_refs: Vec::new(),
            status,
        }
    }

    fn status(
        observed: i64,
        replicas: i32,
        updated: i32,
        ready: i32,
        available: i32,
    ) -> WorkloadStatus {
        WorkloadStatus {
            observed_generation: Some(observed),
            replicas,
            updated_replicas: updated,
            ready_replicas: ready,
            available_replicas: available,
            ..WorkloadStatus::default()
        }
    }

    #[test]
    fn deployments_pass_through_kubectls_stages() {
        let cases = [
            (
                deployment(3, 2, status(1, 3, 3, 3, 3)),
                Verdict::Progressing,
                "Waiting for deployment spec update to be observed...",
            ),
            (
                deployment(3, 2, status(2, 4, 1, 3, 3)),
                Verdict::Progressing,
                "Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated...",
            ),
            (
                deployment(3, 2, status(2, 4, 3, 4, 4)),
                Verdict::Progressing,
                "Waiting for deployment \"web\" rollout to finish: 1 old replicas are pending termination...",
            ),
            (
                deployment(3, 2, status(2, 3, 3, 2, 2)),
                Verdict::Progressing,
                "Waiting for deployment \"web\" rollout to finish: 2 of 3 updated replicas are available...",
            ),
            (
                deployment(3, 2, status(2, 3, 3, 3, 3)),
                Verdict::Complete,
                "deployment \"web\" successfully rolled out",
            ),
        ];
        for (w, verdict, message) in cases {
            let r = rollout(&w);
            assert_eq!((r.verdict, r.message.as_str()), (verdict, message));
        }
    }

    #[test]
    fn a_deployment_past_its_deadline_failed() {
        let mut w = deployment(3, 2, status(2, 4, 1, 3, 3));
        w.status.conditions.push(Condition {
            type_: "Progressing".into(),
            status: "False".into(),
            reason: "ProgressDeadlineExceeded".into(),
            message: String::new(),
        });
        assert_eq!(rollout(&w).verdict, Verdict::Failed);
        assert_eq!(
            rollout(&w).message,
            "deployment \"web\" exceeded its progress deadline"
        );
    }

    #[test]
    fn statefulsets_wait_for_revisions_and_respect_partitions() {
        let mut w = deployment(3, 2, status(2, 3, 1, 3, 3));
        w.kind = WorkloadKind::StatefulSet;
        w.status.current_revision = Some("web-a".into());
        w.status.update_revision = Some("web-b".into());
        let r = rollout(&w);
        assert_eq!(r.verdict, Verdict::Progressing);
        assert_eq!(
            r.message,
            "waiting for statefulset rolling update to complete 1 pods at revision web-b..."
        );
        w.strategy = UpdateStrategy::RollingUpdate { partition: Some(2) };
        assert_eq!(
            rollout(&w).verdict,
            Verdict::Complete,
            "{}",
            rollout(&w).message
        );
        w.strategy = UpdateStrategy::OnDelete;
        assert_eq!(rollout(&w).verdict, Verdict::Failed);
    }

    /// What the API server stores for a StatefulSet created without a partition (0), judged
    /// as `kubectl rollout status` judged it against the real controller: by the partitioned
    /// branch, whatever the revisions say.
    #[test]
    fn statefulsets_with_the_default_partition_are_judged_as_partitioned() {
        let mut w = deployment(2, 2, status(2, 2, 2, 2, 2));
        w.kind = WorkloadKind::StatefulSet;
        w.strategy = UpdateStrategy::RollingUpdate { partition: Some(0) };
        w.status.current_revision = Some("db-a".into());
        w.status.update_revision = Some("db-a".into());
        let r = rollout(&w);
        assert_eq!(r.verdict, Verdict::Complete);
        assert_eq!(
            r.message,
            "partitioned roll out complete: 2 new pods have been updated..."
        );
        w.status.updated_replicas = 1;
        w.status.update_revision = Some("db-b".into());
        let r = rollout(&w);
        assert_eq!(r.verdict, Verdict::Progressing);
        assert_eq!(
            r.message,
            "Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated..."
        );
        w.status.ready_replicas = 1;
        assert_eq!(rollout(&w).message, "Waiting for 1 pods to be ready...");
    }

    #[test]
    fn daemonsets_count_nodes() {
        let mut w = deployment(0, 2, status(2, 4, 3, 4, 4));
        w.kind = WorkloadKind::DaemonSet;
        w.replicas = None;
        w.status.desired_number_scheduled = 4;
        assert_eq!(
            rollout(&w).message,
            "Waiting for daemon set \"web\" rollout to finish: 3 out of 4 new pods have been updated..."
        );
        w.status.updated_replicas = 4;
        w.status.available_replicas = 3;
        assert_eq!(rollout(&w).verdict, Verdict::Progressing);
        w.status.available_replicas = 4;
        assert_eq!(rollout(&w).verdict, Verdict::Complete);
    }
}
