//! The deployment controller, through its ReplicaSets: `RollingUpdate` within
//! `maxSurge`/`maxUnavailable` or `Recreate`, the revision history, and the `Available` and
//! `Progressing` conditions.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cluster_api::{Event, EventType, Workload, WorkloadRef, WorkloadStatus};
use jiff::Timestamp;
use tokio::time::Instant;

use super::pods::{PodView, count, scaled};
use crate::budget::IntOrPercent;
use crate::spec::StrategyName;
use crate::state::{Key, REVISION_HISTORY_LIMIT, Revision, SimWorkload, State, Timer};

/// Kubernetes' default `progressDeadlineSeconds`.
const DEFAULT_PROGRESS_DEADLINE: i32 = 600;

/// What one pass of the controller works towards.
struct Rollout {
    /// The new ReplicaSet's template hash.
    target: String,
    desired: i32,
    surge: i32,
    max_unavailable: i32,
    recreate: bool,
    /// This pass made a new ReplicaSet for a changed template.
    new_rollout: bool,
}

/// Where a rollout stands, for the `Progressing` condition.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Progress {
    Paused,
    NewReplicaSet,
    Complete,
    Progressed,
    DeadlineExceeded,
    /// Neither progress nor a passed deadline: the condition stays as it is.
    Waiting,
}

impl State {
    pub(super) fn reconcile_deployment(&mut self, r: &WorkloadRef) {
        let before = self.replica_set_sizes(r);
        self.scale_deployment(r);
        let after = self.replica_set_sizes(r);
        self.announce_scaling(r, &before, &after);
    }

    /// Each of a Deployment's ReplicaSets with its pods that are not terminating.
    fn replica_set_sizes(&self, r: &WorkloadRef) -> BTreeMap<String, i32> {
        let mut sizes = BTreeMap::new();
        for p in self.views(r).iter().filter(|p| !p.terminating) {
            *sizes.entry(p.revision.clone()).or_insert(0) += 1;
        }
        sizes
    }

    /// The deployment controller's `ScalingReplicaSet` Events for what one pass changed.
    fn announce_scaling(
        &mut self,
        r: &WorkloadRef,
        before: &BTreeMap<String, i32>,
        after: &BTreeMap<String, i32>,
    ) {
        let Some(uid) = self.workloads.get(r).map(|sw| sw.w.uid.clone()) else {
            return;
        };
        let revisions: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        let mut notes = Vec::new();
        for rev in revisions {
            let (from, to) = (
                before.get(rev).copied().unwrap_or(0),
                after.get(rev).copied().unwrap_or(0),
            );
            if from != to {
                let way = if to > from { "up" } else { "down" };
                notes.push(format!(
                    "Scaled {way} replica set {}-{rev} from {from} to {to}",
                    r.name
                ));
            }
        }
        for note in notes {
            self.push_event(Event {
                regarding: r.object_ref().with_uid(&uid),
                type_: EventType::Normal,
                reason: "ScalingReplicaSet".into(),
                action: String::new(),
                note,
                reporting_controller: "deployment-controller".into(),
                reporting_instance: String::new(),
                time: None,
                count: 1,
            });
        }
    }

    fn scale_deployment(&mut self, r: &WorkloadRef) {
        let Some(plan) = self.plan_rollout(r) else {
            return;
        };
        if plan.recreate {
            self.recreate_pods(r, &plan);
        } else {
            self.roll_pods(r, &plan);
        }
        self.trim_new_replica_set(r, &plan);
        self.update_deployment_status(r, plan.desired, plan.max_unavailable, plan.new_rollout);
    }

    /// Moves the Deployment to a new ReplicaSet if its template changed (unless paused), and
    /// resolves its strategy against the desired replicas.
    fn plan_rollout(&mut self, r: &WorkloadRef) -> Option<Rollout> {
        let now = self.now;
        let wall = self.wall();
        let hash = self.current_template_hash(r);
        let sw = self.workloads.get_mut(r)?;
        let desired = sw.w.replicas.unwrap_or(1).max(0);
        let mut new_rollout = false;
        if !sw.w.paused && sw.target_revision != hash {
            new_rollout = !sw.target_revision.is_empty();
            start_revision(sw, hash, now, wall);
        }
        let surge = scaled(sw.spec.max_surge, IntOrPercent::Percent(25), desired, true);
        let mut max_unavailable = scaled(
            sw.spec.max_unavailable,
            IntOrPercent::Percent(25),
            desired,
            false,
        );
        if surge == 0 && max_unavailable == 0 {
            max_unavailable = 1;
        }
        Some(Rollout {
            target: sw.target_revision.clone(),
            desired,
            surge,
            max_unavailable,
            recreate: sw.spec.strategy == Some(StrategyName::Recreate),
            new_rollout,
        })
    }

    /// Creates `n` pods (none if `n` is not positive) in the ReplicaSet `target`.
    fn create_replica_set_pods(&mut self, r: &WorkloadRef, target: &str, n: i32) {
        for _ in 0..n.max(0) {
            let name = format!("{}-{target}-{}", r.name, self.next_pod_suffix(r));
            self.create_workload_pod(r, name, target, None, None);
        }
    }

    /// `Recreate`: every old pod goes, and only once all are gone do new ones come.
    fn recreate_pods(&mut self, r: &WorkloadRef, plan: &Rollout) {
        let views = self.views(r);
        let active: Vec<&PodView> = views.iter().filter(|p| !p.terminating).collect();
        let new_count = count(&active, |p| p.revision == plan.target);
        let old: Vec<Key> = active
            .iter()
            .filter(|p| p.revision != plan.target)
            .map(|p| p.key.clone())
            .collect();
        if !old.is_empty() {
            for key in &old {
                self.terminate_pod(key, None);
            }
        } else if views.iter().all(|p| p.revision == plan.target) {
            self.create_replica_set_pods(r, &plan.target, plan.desired - new_count);
        }
    }

    /// `RollingUpdate`: the new ReplicaSet grows within `maxSurge` and the old ones shrink
    /// within `maxUnavailable`.
    fn roll_pods(&mut self, r: &WorkloadRef, plan: &Rollout) {
        let views = self.views(r);
        let active: Vec<&PodView> = views.iter().filter(|p| !p.terminating).collect();
        let new_count = count(&active, |p| p.revision == plan.target);
        // Scale the new ReplicaSet up, within maxSurge.
        let room = plan.desired + plan.surge - active.len() as i32;
        self.create_replica_set_pods(r, &plan.target, (plan.desired - new_count).min(room));

        // Scale old ReplicaSets down, keeping desired - maxUnavailable available.
        let views = self.views(r);
        let active: Vec<&PodView> = views.iter().filter(|p| !p.terminating).collect();
        let mut old: Vec<&&PodView> = active
            .iter()
            .filter(|p| p.revision != plan.target)
            .collect();
        if old.is_empty() {
            return;
        }
        let new_unavailable = count(&active, |p| p.revision == plan.target && !p.ready);
        let mut allowed =
            active.len() as i32 - (plan.desired - plan.max_unavailable) - new_unavailable;
        // Unready pods go first: removing them costs no availability.
        old.sort_by_key(|p| p.ready);
        let doomed: Vec<Key> = old
            .iter()
            .take_while(|_| {
                allowed -= 1;
                allowed >= 0
            })
            .map(|p| p.key.clone())
            .collect();
        for key in &doomed {
            self.terminate_pod(key, None);
        }
    }

    /// Scales down a new ReplicaSet that has more pods than wanted, once the old ones are gone.
    fn trim_new_replica_set(&mut self, r: &WorkloadRef, plan: &Rollout) {
        let views = self.views(r);
        let mut extra: Vec<&PodView> = views
            .iter()
            .filter(|p| !p.terminating && p.revision == plan.target)
            .collect();
        if extra.len() as i32 > plan.desired
            && views
                .iter()
                .all(|p| p.terminating || p.revision == plan.target)
        {
            extra.sort_by_key(|p| p.ready);
            let doomed: Vec<Key> = extra
                .iter()
                .take(extra.len() - plan.desired as usize)
                .map(|p| p.key.clone())
                .collect();
            for key in &doomed {
                self.terminate_pod(key, None);
            }
        }
    }

    fn update_deployment_status(
        &mut self,
        r: &WorkloadRef,
        desired: i32,
        max_unavailable: i32,
        new_rollout: bool,
    ) {
        let views = self.views(r);
        let now = self.now;
        let Some(sw) = self.workloads.get_mut(r) else {
            return;
        };
        let target = sw.target_revision.clone();
        let active: Vec<&PodView> = views.iter().filter(|p| !p.terminating).collect();
        let prev = sw.w.status.clone();
        let mut w = sw.w.clone();
        w.status.observed_generation = Some(w.generation);
        w.status.replicas = active.len() as i32;
        w.status.updated_replicas = count(&active, |p| p.revision == target);
        w.status.ready_replicas = count(&active, |p| p.ready);
        w.status.available_replicas = w.status.ready_replicas;
        set_available(&mut w, desired, max_unavailable);

        let deadline = progress_deadline(&w);
        let stalled = now >= sw.progress_at + deadline;
        let progress = Progress::of(&w, &prev, desired, new_rollout, stalled);
        if progress == Progress::Progressed {
            sw.progress_at = now;
        }
        progress.set_condition(&mut w, &format!("{}-{target}", r.name));
        if matches!(progress, Progress::NewReplicaSet | Progress::Progressed) {
            // Look again once the deadline has passed, as the controller's resync does.
            self.schedule(
                deadline,
                Timer::Sync {
                    workload: r.clone(),
                },
            );
        }
        if w.status != prev {
            self.put_workload(w);
        }
    }
}

/// Makes `hash` the Deployment's new ReplicaSet: a new one, or an old one taken back into use,
/// which gets the next revision number as the real controller gives it.
fn start_revision(sw: &mut SimWorkload, hash: String, now: Instant, wall: Timestamp) {
    sw.target_revision = hash.clone();
    sw.progress_at = now;
    let number = sw.history.last().map_or(1, |r| r.number + 1);
    let created = match sw.history.iter().position(|r| r.hash == hash) {
        Some(i) => sw.history.remove(i).created,
        None => wall,
    };
    sw.history.push(Revision {
        hash,
        number,
        template_annotations: sw.w.template_annotations.clone(),
        created,
    });
    if sw.history.len() > REVISION_HISTORY_LIMIT + 1 {
        sw.history.remove(0);
    }
}

/// Sets the `Available` condition from the available replicas.
fn set_available(w: &mut Workload, desired: i32, max_unavailable: i32) {
    let (available, message) = if w.status.available_replicas >= desired - max_unavailable {
        ("True", "Deployment has minimum availability.")
    } else {
        ("False", "Deployment does not have minimum availability.")
    };
    let reason = if available == "True" {
        "MinimumReplicasAvailable"
    } else {
        "MinimumReplicasUnavailable"
    };
    State::set_condition(w, "Available", available, reason, message.into());
}

/// The Deployment's `progressDeadlineSeconds`, or Kubernetes' default.
fn progress_deadline(w: &Workload) -> Duration {
    Duration::from_secs(
        w.progress_deadline_seconds
            .unwrap_or(DEFAULT_PROGRESS_DEADLINE)
            .max(0)
            .unsigned_abs()
            .into(),
    )
}

impl Progress {
    /// Where the rollout of `w` stands, its status before this pass being `prev`; `stalled`
    /// says the deadline has passed since it last progressed.
    fn of(
        w: &Workload,
        prev: &WorkloadStatus,
        desired: i32,
        new_rollout: bool,
        stalled: bool,
    ) -> Self {
        let st = &w.status;
        let complete = st.updated_replicas == desired
            && st.replicas == desired
            && st.available_replicas == desired;
        let progressed = st.updated_replicas > prev.updated_replicas
            || st.ready_replicas > prev.ready_replicas
            || st.available_replicas > prev.available_replicas
            || st.replicas - st.updated_replicas < prev.replicas - prev.updated_replicas;
        if w.paused {
            Progress::Paused
        } else if new_rollout {
            Progress::NewReplicaSet
        } else if complete {
            Progress::Complete
        } else if progressed {
            Progress::Progressed
        } else if stalled {
            Progress::DeadlineExceeded
        } else {
            Progress::Waiting
        }
    }

    /// Sets the `Progressing` condition for this state of the new ReplicaSet `rs`.
    fn set_condition(self, w: &mut Workload, rs: &str) {
        let (status, reason, message) = match self {
            Progress::Paused => ("Unknown", "DeploymentPaused", "Deployment is paused".into()),
            Progress::NewReplicaSet => (
                "True",
                "NewReplicaSetCreated",
                format!("Created new replica set \"{rs}\""),
            ),
            Progress::Complete => (
                "True",
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{rs}\" has successfully progressed."),
            ),
            Progress::Progressed => (
                "True",
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{rs}\" is progressing."),
            ),
            Progress::DeadlineExceeded => (
                "False",
                "ProgressDeadlineExceeded",
                format!("ReplicaSet \"{rs}\" has timed out progressing."),
            ),
            Progress::Waiting => return,
        };
        State::set_condition(w, "Progressing", status, reason, message);
    }
}
