//! Restarts on configuration changes at run time: the ConfigMap and Secret watches of the
//! namespaces whose workloads opt in, and the loop (on the leader only) that restarts a
//! workload once the changes to what its pods use have been quiet for its debounce time.

use cluster_api::window::next_opening;
use cluster_api::{ConfigObject, ConfigRef, Timestamp, WatchCache, Workload, WorkloadRef, feed};
use tokio::time::Instant;

use super::ask::{Ask, Windows};
use super::config_trigger::{CONFIG_CHANGE_USER, ConfigPlace};
use super::core::Core;
use crate::allowlist::Identity;
use crate::error::RestartError;
use crate::lock;
use crate::trigger::{self, DIGESTS_ANNOTATION, Digests, TEMPLATE_ANNOTATION};

/// A place's objects as its watch sees them: a change marks the workloads that use it.
struct ConfigPlaceCache<'a> {
    core: &'a Core,
    place: &'a ConfigPlace,
}

impl WatchCache<ConfigObject> for ConfigPlaceCache<'_> {
    fn reset(&self, all: Vec<ConfigObject>) {
        self.place.reset(all);
        // What the pods use may have changed while nobody watched: look at every workload.
        self.core.config_changed(&self.place.namespace, None);
    }

    fn apply(&self, object: ConfigObject) {
        let r = object.reference();
        if self.place.insert(object) {
            self.core.config_changed(&self.place.namespace, Some(&r));
        }
    }

    fn delete(&self, object: ConfigObject) {
        if self.place.remove(&object) {
            let r = object.reference();
            self.core.config_changed(&self.place.namespace, Some(&r));
        }
    }
}

impl Core {
    pub(super) async fn watch_configs(&self) {
        let watches = self.config_trigger.places().iter().map(|place| {
            let cache = ConfigPlaceCache { core: self, place };
            async move {
                let open = || self.api.watch_config(&place.namespace, place.kind);
                feed(&place.what, open, &cache, &place.health).await;
            }
        });
        futures::future::join_all(watches).await;
    }

    /// Marks the opted-in workloads of `namespace` that use `changed` (all of them, when
    /// `None`) to be looked at once their debounce time has passed.
    fn config_changed(&self, namespace: &str, changed: Option<&ConfigRef>) {
        let now = Instant::now();
        for a in self.allowlist().iter() {
            let Some(t) = a.config_trigger else {
                continue;
            };
            if a.workload.namespace != namespace {
                continue;
            }
            let uses = changed.is_none_or(|c| {
                (self.workloads.get(&a.workload)).is_some_and(|w| w.config_refs.contains(c))
            });
            if uses {
                self.config_trigger
                    .due_at(a.workload.clone(), now + t.debounce);
            }
        }
        self.config_trigger.wake();
    }

    /// An opted-in workload's pod template changed (seen by the leader): its rollout starts
    /// the pods on the configuration as it is at this moment, which becomes its baseline
    /// (recorded by the loop, before it looks at any change that comes after).
    pub(super) fn template_changed(&self, workload: &Workload) {
        if !self.role.leads() {
            return;
        }
        let w = workload.reference();
        match self.config_trigger.current_digests(workload) {
            Some(digests) => {
                let template = trigger::template_fingerprint(&workload.template_annotations);
                self.config_trigger.set_baseline(w, (digests, template));
            }
            // The configuration is not known right now: look when it is.
            None => self.config_trigger.due_at(w, Instant::now()),
        }
        self.config_trigger.wake();
    }

    /// Looks at each workload whose time has come; on the leader only.
    pub(super) async fn config_trigger_forever(&self) {
        let config = &self.config_trigger;
        if config.is_empty() {
            return;
        }
        loop {
            let resync = Instant::now() + self.config.resync;
            let wake_at = config.next_due().map_or(resync, |n| n.min(resync));
            tokio::select! {
                () = tokio::time::sleep_until(wake_at) => {}
                () = config.woken() => {}
            }
            if !self.role.leads() {
                config.clear_baselines();
                continue;
            }
            // Baselines first: a template change came before any look due now.
            for (w, (digests, template)) in config.take_baselines() {
                if !self.record_config(&w, &digests, &template).await {
                    config.restore_baseline(w, (digests, template));
                }
            }
            for w in config.take_due(Instant::now()) {
                if let Some(again) = self.look_at_config(&w).await {
                    config.due_again(w, again);
                }
            }
        }
    }

    /// Compares what the workload's pods use with what they started with, and restarts it
    /// if that changed; the first look only records it. `Some(when)` to look again then.
    async fn look_at_config(&self, w: &WorkloadRef) -> Option<Instant> {
        let trigger = self.allowlist().get(w)?.config_trigger?;
        let later = Instant::now() + trigger.debounce;
        let workload = self.workloads.get(w)?;
        let Some(now) = self.config_trigger.current_digests(&workload) else {
            return Some(later);
        };
        if self.config_trigger.has_baseline(w) {
            // A template change's baseline is not recorded yet: it comes first.
            return Some(later);
        }
        let lease = self.locks.get(w);
        let recorded = lease
            .as_ref()
            .and_then(|l| l.annotations.get(DIGESTS_ANNOTATION))
            .and_then(|a| trigger::parse(a));
        let recorded_template = lease
            .as_ref()
            .and_then(|l| l.annotations.get(TEMPLATE_ANNOTATION).cloned());
        let Some(recorded) = recorded else {
            // First sight: what the pods run with now is the baseline.
            return self.record_digests(w, &now).await.then_some(later);
        };
        let changed = trigger::changed(&recorded, &now);
        // The template changed since the record, and no replica recorded its baseline when it
        // did (a leader change, a watch that was down): its rollout started the pods on the
        // configuration as it is now, or later; a Helm upgrade's `checksum/config` for one.
        let template = trigger::template_fingerprint(&workload.template_annotations);
        let rolled = recorded_template.as_ref().is_some_and(|t| *t != template);
        if changed.is_empty() || rolled {
            if !changed.is_empty() {
                tracing::info!(workload = %w, changed = ?changed, "the pod template rolled out after the configuration changed; no restart");
            }
            // Its new baseline: what the template references now, as it is now.
            if recorded != now || recorded_template.as_deref() != Some(template.as_str()) {
                return self.record_digests(w, &now).await.then_some(later);
            }
            return None;
        }
        self.restart_for_config(w, &now, &changed, later).await
    }

    /// Restarts the workload because what its pods use changed; when to look again, if at
    /// all.
    async fn restart_for_config(
        &self,
        w: &WorkloadRef,
        now: &Digests,
        changed: &[String],
        later: Instant,
    ) -> Option<Instant> {
        let id = trigger::restart_id(now);
        let ask = Ask {
            windows: Windows::Enforce,
            on_behalf_of: Some("config change"),
            restart_id: Some(&id),
        };
        let who = Identity::user(CONFIG_CHANGE_USER);
        let reason = format!("{} changed", changed.join(", "));
        match self.restart(w, &who, Some(&reason), ask).await {
            Ok(_) => self.record_digests(w, now).await.then_some(later),
            // Someone restarts it now: look again after a while.
            Err(RestartError::Locked { .. }) => Some(later),
            Err(RestartError::Cluster(e)) if e.is_transient() => Some(later),
            // Outside its windows: when the next opens.
            Err(RestartError::OutsideWindow { .. }) => {
                let at = self.clock.now();
                let opens = next_opening(&self.allowlist().get(w)?.windows, at)?;
                Some(Instant::now() + until(opens.timestamp(), at))
            }
            Err(e) => {
                tracing::warn!(workload = %w, error = %e, "a configuration change could not restart the workload");
                None
            }
        }
    }

    /// Records on the workload's lock Lease what its pods run with; `true` if that failed
    /// (to try again).
    async fn record_digests(&self, w: &WorkloadRef, digests: &Digests) -> bool {
        // With the template they go with (as this replica last saw it: after its own restart,
        // the template that restart wrote).
        let template = (self.workloads.get(w))
            .map(|now| trigger::template_fingerprint(&now.template_annotations))
            .unwrap_or_default();
        !self.record_config(w, digests, &template).await
    }

    /// Records digests and the template fingerprint they go with on the workload's lock
    /// Lease; `true` if it did.
    async fn record_config(&self, w: &WorkloadRef, digests: &Digests, template: &str) -> bool {
        let value = trigger::render(digests);
        let pairs = [
            (DIGESTS_ANNOTATION, value.as_str()),
            (TEMPLATE_ANNOTATION, template),
        ];
        match lock::annotate(self.api.as_ref(), &self.config.namespace, w, &pairs).await {
            Ok(lease) => {
                self.store_lease(w, lease);
                true
            }
            Err(e) => {
                tracing::warn!(workload = %w, error = %e, "could not record the configuration a workload runs with");
                false
            }
        }
    }
}

/// How long from `now` to `at` (zero if past).
fn until(at: Timestamp, now: Timestamp) -> std::time::Duration {
    std::time::Duration::try_from(at.duration_since(now)).unwrap_or_default()
}
