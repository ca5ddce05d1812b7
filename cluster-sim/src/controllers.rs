//! The simulated workload controllers: Deployment (through its ReplicaSets), StatefulSet and
//! DaemonSet, moving pods and status fields the way kube-controller-manager does.

use std::collections::BTreeMap;
use std::time::Duration;

use cluster_api::{Event, EventType, WorkloadKind, WorkloadRef, WorkloadStatus};

use crate::budget::IntOrPercent;
use crate::spec::StrategyName;
use crate::state::{Key, REVISION_HISTORY_LIMIT, Revision, State, Timer, template_hash};

/// Kubernetes' default `progressDeadlineSeconds`.
const DEFAULT_PROGRESS_DEADLINE: i32 = 600;

/// A controller's view of one of its pods.
struct PodView {
    key: Key,
    revision: String,
    ready: bool,
    terminating: bool,
    ordinal: Option<i32>,
    node: Option<String>,
}

impl State {
    /// Brings one workload's pods and status one step closer to its spec.
    pub(crate) fn reconcile(&mut self, r: &WorkloadRef) {
        if !self.workloads.contains_key(r) {
            return;
        }
        match r.kind {
            WorkloadKind::Deployment => self.reconcile_deployment(r),
            WorkloadKind::StatefulSet => self.reconcile_statefulset(r),
            WorkloadKind::DaemonSet => self.reconcile_daemonset(r),
        }
    }

    fn views(&self, r: &WorkloadRef) -> Vec<PodView> {
        self.pods_of(r)
            .into_iter()
            .map(|key| {
                let sp = &self.pods[&key];
                PodView {
                    revision: sp.revision.clone(),
                    ready: sp.pod.ready,
                    terminating: sp.pod.is_terminating(),
                    ordinal: sp.ordinal,
                    node: sp.pod.node_name.clone(),
                    key,
                }
            })
            .collect()
    }

    fn current_template_hash(&self, r: &WorkloadRef) -> String {
        let sw = &self.workloads[r];
        template_hash(&sw.spec.effective_pod_labels(), &sw.w.template_annotations)
    }

    // === Deployment ===

    fn reconcile_deployment(&mut self, r: &WorkloadRef) {
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
        let revisions: std::collections::BTreeSet<&String> =
            before.keys().chain(after.keys()).collect();
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
        let now = self.now;
        let wall = self.wall();
        let hash = self.current_template_hash(r);
        let Some(sw) = self.workloads.get_mut(r) else {
            return;
        };
        let desired = sw.w.replicas.unwrap_or(1).max(0);
        let mut new_rollout = false;
        if !sw.w.paused && sw.target_revision != hash {
            // A new ReplicaSet for the new template (or an old one taken back into use, which
            // gets the next revision number as the real controller gives it).
            new_rollout = !sw.target_revision.is_empty();
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
        let target = sw.target_revision.clone();
        let recreate = sw.spec.strategy == Some(StrategyName::Recreate);
        let surge = scaled(sw.spec.max_surge, IntOrPercent::Percent(25), desired, true);
        let mut unavailable = scaled(
            sw.spec.max_unavailable,
            IntOrPercent::Percent(25),
            desired,
            false,
        );
        if surge == 0 && unavailable == 0 {
            unavailable = 1;
        }

        let create = |st: &mut State, n: i32| {
            for _ in 0..n.max(0) {
                let name = format!("{}-{target}-{}", r.name, st.next_pod_suffix(r));
                st.create_workload_pod(r, name, &target, None, None);
            }
        };

        let views = self.views(r);
        let active: Vec<&PodView> = views.iter().filter(|p| !p.terminating).collect();
        let new_count = count(&active, |p| p.revision == target);
        let old: Vec<Key> = active
            .iter()
            .filter(|p| p.revision != target)
            .map(|p| p.key.clone())
            .collect();

        if recreate {
            if !old.is_empty() {
                for key in &old {
                    self.terminate_pod(key, None);
                }
            } else if views.iter().all(|p| p.revision == target) {
                create(self, desired - new_count);
            }
        } else {
            // Scale the new ReplicaSet up, within maxSurge.
            let room = desired + surge - active.len() as i32;
            create(self, (desired - new_count).min(room));

            // Scale old ReplicaSets down, keeping desired - maxUnavailable available.
            let views = self.views(r);
            let active: Vec<&PodView> = views.iter().filter(|p| !p.terminating).collect();
            let mut old: Vec<&&PodView> = active.iter().filter(|p| p.revision != target).collect();
            if !old.is_empty() {
                let new_unavailable = count(&active, |p| p.revision == target && !p.ready);
                let mut allowed = active.len() as i32 - (desired - unavailable) - new_unavailable;
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
        }

        // Scale down a new ReplicaSet that has more pods than wanted.
        let views = self.views(r);
        let mut extra: Vec<&PodView> = views
            .iter()
            .filter(|p| !p.terminating && p.revision == target)
            .collect();
        if extra.len() as i32 > desired
            && views.iter().all(|p| p.terminating || p.revision == target)
        {
            extra.sort_by_key(|p| p.ready);
            let doomed: Vec<Key> = extra
                .iter()
                .take(extra.len() - desired as usize)
                .map(|p| p.key.clone())
                .collect();
            for key in &doomed {
                self.terminate_pod(key, None);
            }
        }

        self.update_deployment_status(r, desired, unavailable, new_rollout);
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

        let st = &w.status;
        let (available, message) = if st.available_replicas >= desired - max_unavailable {
            ("True", "Deployment has minimum availability.")
        } else {
            ("False", "Deployment does not have minimum availability.")
        };
        let reason = if available == "True" {
            "MinimumReplicasAvailable"
        } else {
            "MinimumReplicasUnavailable"
        };
        State::set_condition(&mut w, "Available", available, reason, message.into());

        let rs = format!("{}-{target}", r.name);
        let deadline = Duration::from_secs(
            w.progress_deadline_seconds
                .unwrap_or(DEFAULT_PROGRESS_DEADLINE)
                .max(0)
                .unsigned_abs()
                .into(),
        );
        let st = &w.status;
        let complete = st.updated_replicas == desired
            && st.replicas == desired
            && st.available_replicas == desired;
        let progressed = st.updated_replicas > prev.updated_replicas
            || st.ready_replicas > prev.ready_replicas
            || st.available_replicas > prev.available_replicas
            || st.replicas - st.updated_replicas < prev.replicas - prev.updated_replicas;
        let mut rearm = false;
        if w.paused {
            State::set_condition(
                &mut w,
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused".into(),
            );
        } else if new_rollout {
            State::set_condition(
                &mut w,
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                format!("Created new replica set \"{rs}\""),
            );
            rearm = true;
        } else if complete {
            State::set_condition(
                &mut w,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{rs}\" has successfully progressed."),
            );
        } else if progressed {
            sw.progress_at = now;
            State::set_condition(
                &mut w,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{rs}\" is progressing."),
            );
            rearm = true;
        } else if now >= sw.progress_at + deadline {
            State::set_condition(
                &mut w,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                format!("ReplicaSet \"{rs}\" has timed out progressing."),
            );
        }
        if rearm {
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

    // === StatefulSet ===

    fn reconcile_statefulset(&mut self, r: &WorkloadRef) {
        let hash = self.current_template_hash(r);
        let Some(sw) = self.workloads.get_mut(r) else {
            return;
        };
        let update = format!("{}-{hash}", r.name);
        sw.target_revision = update.clone();
        let current =
            sw.w.status
                .current_revision
                .clone()
                .unwrap_or_else(|| update.clone());
        let desired = sw.w.replicas.unwrap_or(1).max(0);
        let on_delete = sw.spec.strategy == Some(StrategyName::OnDelete);
        let partition = if on_delete {
            0
        } else {
            sw.spec.partition.unwrap_or(0).max(0)
        };

        let views = self.views(r);
        let by_ordinal: BTreeMap<i32, &PodView> =
            views.iter().filter_map(|p| Some((p.ordinal?, p))).collect();

        // OrderedReady: create missing ordinals one at a time, each after the ones below it
        // are Running and Ready.
        let mut busy = false;
        for i in 0..desired {
            match by_ordinal.get(&i) {
                None => {
                    let rev = if on_delete || i >= partition {
                        &update
                    } else {
                        &current
                    };
                    let rev = rev.clone();
                    self.create_workload_pod(r, format!("{}-{i}", r.name), &rev, Some(i), None);
                    busy = true;
                    break;
                }
                Some(p) if p.terminating || !p.ready => {
                    busy = true;
                    break;
                }
                Some(_) => {}
            }
        }
        // Scale down from the highest ordinal, one at a time.
        if !busy && let Some((_, p)) = by_ordinal.iter().rev().find(|(i, _)| **i >= desired) {
            if !p.terminating {
                let key = p.key.clone();
                self.terminate_pod(&key, None);
            }
            busy = true;
        }
        // RollingUpdate: replace the highest ordinal not at the update revision.
        if !busy && !on_delete {
            let stale = (partition..desired)
                .rev()
                .filter_map(|i| by_ordinal.get(&i))
                .find(|p| p.revision != update)
                .map(|p| p.key.clone());
            if let Some(key) = stale {
                self.terminate_pod(&key, None);
            }
        }

        let views = self.views(r);
        let active: Vec<&PodView> = views.iter().filter(|p| !p.terminating).collect();
        let updated = count(&active, |p| p.revision == update);
        let all_updated = updated == desired && active.len() as i32 == desired;
        let Some(sw) = self.workloads.get(r) else {
            return;
        };
        let mut w = sw.w.clone();
        w.status = WorkloadStatus {
            observed_generation: Some(w.generation),
            replicas: active.len() as i32,
            updated_replicas: updated,
            ready_replicas: count(&active, |p| p.ready),
            available_replicas: count(&active, |p| p.ready),
            desired_number_scheduled: 0,
            current_revision: Some(if all_updated { update.clone() } else { current }),
            update_revision: Some(update),
            conditions: w.status.conditions.clone(),
        };
        if w.status != sw.w.status {
            self.put_workload(w);
        }
    }

    // === DaemonSet ===

    fn reconcile_daemonset(&mut self, r: &WorkloadRef) {
        let rev = self.current_template_hash(r);
        let Some(sw) = self.workloads.get_mut(r) else {
            return;
        };
        sw.target_revision = rev.clone();
        let selector = sw.spec.node_selector.clone();
        let on_delete = sw.spec.strategy == Some(StrategyName::OnDelete);
        let eligible: Vec<String> = self
            .nodes
            .values()
            .filter(|n| selector.iter().all(|(k, v)| n.labels.get(k) == Some(v)))
            .map(|n| n.name.clone())
            .collect();
        let desired = eligible.len() as i32;
        let max_unavailable =
            scaled(sw.spec.max_unavailable, IntOrPercent::Int(1), desired, true).max(1);

        let views = self.views(r);
        let mut by_node: BTreeMap<&str, Vec<&PodView>> = BTreeMap::new();
        for p in &views {
            by_node
                .entry(p.node.as_deref().unwrap_or(""))
                .or_default()
                .push(p);
        }
        // Pods on nodes that no longer qualify go.
        let doomed: Vec<Key> = views
            .iter()
            .filter(|p| !p.terminating)
            .filter(|p| !p.node.as_ref().is_some_and(|n| eligible.contains(n)))
            .map(|p| p.key.clone())
            .collect();
        for key in &doomed {
            self.terminate_pod(key, None);
        }
        // Every eligible node gets a pod once its old one has fully gone.
        for node in &eligible {
            if by_node.get(node.as_str()).is_none_or(Vec::is_empty) {
                let name = format!("{}-{}", r.name, self.next_pod_suffix(r));
                self.create_workload_pod(r, name, &rev, None, Some(node));
            }
        }
        if !on_delete {
            let active: Vec<&PodView> = views.iter().filter(|p| !p.terminating).collect();
            let mut unavailable = eligible
                .iter()
                .filter(|n| {
                    !active
                        .iter()
                        .any(|p| p.node.as_deref() == Some(n.as_str()) && p.ready)
                })
                .count() as i32;
            let mut old: Vec<&&PodView> = active.iter().filter(|p| p.revision != rev).collect();
            old.sort_by_key(|p| p.ready);
            let mut doomed = Vec::new();
            for p in old {
                // Replacing an unready pod costs nothing; a ready one costs one unavailable.
                if p.ready {
                    if unavailable >= max_unavailable {
                        break;
                    }
                    unavailable += 1;
                }
                doomed.push(p.key.clone());
            }
            for key in &doomed {
                self.terminate_pod(key, None);
            }
        }

        let views = self.views(r);
        let active: Vec<&PodView> = views.iter().filter(|p| !p.terminating).collect();
        let Some(sw) = self.workloads.get(r) else {
            return;
        };
        let mut w = sw.w.clone();
        w.status = WorkloadStatus {
            observed_generation: Some(w.generation),
            replicas: active.len() as i32,
            updated_replicas: count(&active, |p| p.revision == rev),
            ready_replicas: count(&active, |p| p.ready),
            available_replicas: count(&active, |p| p.ready),
            desired_number_scheduled: desired,
            current_revision: None,
            update_revision: None,
            conditions: w.status.conditions.clone(),
        };
        if w.status != sw.w.status {
            self.put_workload(w);
        }
    }
}

fn count(pods: &[&PodView], pred: impl Fn(&PodView) -> bool) -> i32 {
    pods.iter().filter(|p| pred(p)).count() as i32
}

/// Resolves `maxSurge`/`maxUnavailable` against the desired replicas.
fn scaled(value: Option<IntOrPercent>, default: IntOrPercent, of: i32, round_up: bool) -> i32 {
    match value.unwrap_or(default) {
        IntOrPercent::Int(n) => n,
        IntOrPercent::Percent(p) => {
            let p = i32::from(p);
            if round_up {
                (p * of + 99) / 100
            } else {
                p * of / 100
            }
        }
    }
}
