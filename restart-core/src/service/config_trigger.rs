//! Restarts on configuration changes: the ConfigMaps and Secrets of the namespaces whose
//! workloads opt in, which workloads to look at and when, and the baselines to record first.

use std::collections::{BTreeSet, HashMap};

use cluster_api::{CacheHealth, ConfigKind, ConfigObject, Store, Workload, WorkloadRef};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::allowlist::Allowlist;
use crate::trigger::{self, Digests};

/// Who restarts on a configuration change, on locks and in Events.
pub const CONFIG_CHANGE_USER: &str = "config-change";

/// One kind of configuration object in one namespace where a workload opts in: its watch's
/// health, and the objects it has seen.
pub(super) struct ConfigPlace {
    pub(super) namespace: String,
    pub(super) kind: ConfigKind,
    /// `configmaps in shop`, for logs and readiness.
    pub(super) what: String,
    objects: Store<String, ConfigObject>,
    pub(super) health: CacheHealth,
}

impl ConfigPlace {
    pub(super) fn reset(&self, all: Vec<ConfigObject>) {
        let all: Vec<(String, ConfigObject)> =
            all.into_iter().map(|o| (o.name.clone(), o)).collect();
        self.objects.reset(all);
    }

    /// Keeps `object` if it is newer; whether it was.
    pub(super) fn insert(&self, object: ConfigObject) -> bool {
        self.objects.insert(object.name.clone(), object)
    }

    /// Forgets `object`; whether it was held.
    pub(super) fn remove(&self, object: &ConfigObject) -> bool {
        self.objects.remove(&object.name)
    }
}

/// A template's baseline: the digests of the moment it changed, and its fingerprint.
type Baseline = (Digests, String);

/// The configuration watches and what they have made due.
pub(super) struct ConfigTrigger {
    places: Vec<ConfigPlace>,
    /// Workloads to look at for a configuration change, and when.
    due: Mutex<HashMap<WorkloadRef, Instant>>,
    wake: Notify,
    /// Baselines to record before any look.
    baselines: Mutex<HashMap<WorkloadRef, Baseline>>,
}

impl ConfigTrigger {
    /// ConfigMaps and Secrets of each namespace with a workload that opts in, in order; none
    /// for a process that leads nothing (it restarts on no configuration change).
    pub(super) fn new(allowlist: &Allowlist, limited: bool) -> Self {
        let places = if limited {
            Vec::new()
        } else {
            places(allowlist)
        };
        ConfigTrigger {
            places,
            due: Mutex::default(),
            wake: Notify::new(),
            baselines: Mutex::default(),
        }
    }

    pub(super) fn places(&self) -> &[ConfigPlace] {
        &self.places
    }

    pub(super) fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    pub(super) fn healths(&self) -> impl Iterator<Item = &CacheHealth> {
        self.places.iter().map(|p| &p.health)
    }

    /// Looks at `w` at `at` (replacing any earlier time).
    pub(super) fn due_at(&self, w: WorkloadRef, at: Instant) {
        self.due.lock().insert(w, at);
    }

    /// Looks at `w` at `at`, unless it is due already.
    pub(super) fn due_again(&self, w: WorkloadRef, at: Instant) {
        self.due.lock().entry(w).or_insert(at);
    }

    /// The earliest time a workload is due.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.due.lock().values().min().copied()
    }

    /// Takes the workloads due by `now`.
    pub(super) fn take_due(&self, now: Instant) -> Vec<WorkloadRef> {
        let mut due = self.due.lock();
        let ready: Vec<WorkloadRef> = due
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(w, _)| w.clone())
            .collect();
        for w in &ready {
            due.remove(w);
        }
        ready
    }

    pub(super) fn set_baseline(&self, w: WorkloadRef, baseline: Baseline) {
        self.baselines.lock().insert(w, baseline);
    }

    /// Puts back a baseline that could not be recorded, unless a newer one came meanwhile.
    pub(super) fn restore_baseline(&self, w: WorkloadRef, baseline: Baseline) {
        self.baselines.lock().entry(w).or_insert(baseline);
    }

    pub(super) fn take_baselines(&self) -> Vec<(WorkloadRef, Baseline)> {
        self.baselines.lock().drain().collect()
    }

    pub(super) fn clear_baselines(&self) {
        self.baselines.lock().clear();
    }

    pub(super) fn has_baseline(&self, w: &WorkloadRef) -> bool {
        self.baselines.lock().contains_key(w)
    }

    pub(super) fn wake(&self) {
        self.wake.notify_one();
    }

    pub(super) async fn woken(&self) {
        self.wake.notified().await;
    }

    /// The digests of what the workload's pods use, as the watches see them now; `None` while
    /// a watch of its namespace is not healthy.
    pub(super) fn current_digests(&self, workload: &Workload) -> Option<Digests> {
        let places: Vec<&ConfigPlace> = self
            .places
            .iter()
            .filter(|p| p.namespace == workload.namespace)
            .collect();
        if !places.iter().all(|p| p.health.is_healthy()) {
            return None;
        }
        let known: HashMap<String, String> = places
            .iter()
            .flat_map(|p| p.objects.read(|m| m.values().cloned().collect::<Vec<_>>()))
            .map(|o| (o.reference().to_string(), o.digest))
            .collect();
        Some(trigger::digests(&workload.config_refs, |r| {
            known.get(&r.to_string()).map(String::as_str)
        }))
    }
}

/// ConfigMaps and Secrets of each namespace with a workload that opts in, in order.
fn places(allowlist: &Allowlist) -> Vec<ConfigPlace> {
    let namespaces: BTreeSet<&str> = allowlist
        .iter()
        .filter(|a| a.config_trigger.is_some())
        .map(|a| a.workload.namespace.as_str())
        .collect();
    namespaces
        .into_iter()
        .flat_map(|namespace| {
            [ConfigKind::ConfigMap, ConfigKind::Secret].map(|kind| {
                let what = match kind {
                    ConfigKind::ConfigMap => "configmaps",
                    ConfigKind::Secret => "secrets",
                };
                let what = format!("{what} in {namespace}");
                ConfigPlace {
                    namespace: namespace.to_string(),
                    kind,
                    objects: Store::new(),
                    health: CacheHealth::new(what.clone()),
                    what,
                }
            })
        })
        .collect()
}
