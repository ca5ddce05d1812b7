//! The allowlisted workloads as their watches see them: one watch per kind and namespace the
//! allowlist names.

use std::collections::BTreeSet;

use cluster_api::{CacheHealth, Store, Workload, WorkloadKind, WorkloadRef};

use crate::allowlist::Allowlist;

/// One kind in one namespace of the allowlist: its watch's health, and the workloads it has
/// seen.
pub(super) struct Place {
    pub(super) kind: WorkloadKind,
    pub(super) namespace: String,
    workloads: Store<WorkloadRef, Workload>,
    pub(super) health: CacheHealth,
}

impl Place {
    fn holds(&self, r: &WorkloadRef) -> bool {
        r.kind == self.kind && r.namespace == self.namespace
    }

    /// Replaces what the place holds with a full list; the workloads that changed or went.
    pub(super) fn reset(&self, all: Vec<(WorkloadRef, Workload)>) -> Vec<WorkloadRef> {
        self.workloads.reset(all)
    }
}

/// The workload caches, ordered, so readiness names the same problem first every time.
pub(super) struct Workloads {
    places: Vec<Place>,
}

/// What keeping a workload changed.
pub(super) enum Kept {
    /// Nothing: not newer than what is held, or not watched here.
    Unchanged,
    /// Newer, with the same pod template annotations as before (or no earlier copy).
    Newer,
    /// Newer, and its pod template annotations changed: the workload as now held.
    TemplateChanged(Box<Workload>),
}

impl Workloads {
    /// Each kind and namespace the allowlist names, once, in order.
    pub(super) fn new(allowlist: &Allowlist) -> Self {
        let places: BTreeSet<(WorkloadKind, &str)> = allowlist
            .iter()
            .map(|a| (a.workload.kind, a.workload.namespace.as_str()))
            .collect();
        let places = places
            .into_iter()
            .map(|(kind, namespace)| Place {
                kind,
                namespace: namespace.to_string(),
                workloads: Store::new(),
                health: CacheHealth::new(format!("{} in {namespace}", kind.resource())),
            })
            .collect();
        Workloads { places }
    }

    pub(super) fn places(&self) -> &[Place] {
        &self.places
    }

    fn place(&self, r: &WorkloadRef) -> Option<&Place> {
        self.places.iter().find(|p| p.holds(r))
    }

    /// The workload `r` as last seen.
    pub(super) fn get(&self, r: &WorkloadRef) -> Option<Workload> {
        self.place(r)?.workloads.get(r)
    }

    /// Keeps `w` if it is newer than what is held; `compare_template` asks whether its pod
    /// template annotations changed.
    pub(super) fn insert(&self, w: Workload, compare_template: bool) -> Kept {
        let r = w.reference();
        let Some(place) = self.place(&r) else {
            return Kept::Unchanged;
        };
        let template = compare_template.then(|| w.template_annotations.clone());
        let before = template.as_ref().and_then(|_| place.workloads.get(&r));
        if !place.workloads.insert(r.clone(), w) {
            return Kept::Unchanged;
        }
        if let (Some(now), Some(before)) = (&template, &before)
            && before.template_annotations != *now
            && let Some(w) = place.workloads.get(&r)
        {
            return Kept::TemplateChanged(Box::new(w));
        }
        Kept::Newer
    }

    /// Forgets `r`; whether it was held.
    pub(super) fn remove(&self, r: &WorkloadRef) -> bool {
        self.place(r).is_some_and(|p| p.workloads.remove(r))
    }

    pub(super) fn healths(&self) -> impl Iterator<Item = &CacheHealth> {
        self.places.iter().map(|p| &p.health)
    }
}
