//! Prometheus metrics.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `fleetlock_requests_total` | counter | `endpoint`, `outcome` (`ok` or a refusal kind) |
//! | `fleetlock_request_duration_seconds` | histogram | `endpoint` |
//! | `fleetlock_slots` | gauge | `group` |
//! | `fleetlock_slots_held` | gauge | `group` |
//! | `fleetlock_lock_age_seconds` | gauge | `group` (the oldest holder's) |
//! | `fleetlock_stuck_holders` | gauge | `group` |
//! | `fleetlock_group_paused` | gauge | `group` |
//! | `fleetlock_rate_grants_left` | gauge | `group` (only groups with a `rate`) |
//! | `fleetlock_drain_duration_seconds` | histogram | `group`, `outcome` |
//! | `fleetlock_evictions_total` | counter | `outcome` |
//!
//!
//! Workload restarts, with k8s-restart-app's names and labels:
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `restart_app_connected_status_watchers` | gauge | `kind`, `namespace`, `name`: status-stream clients watching the workload |
//! | `restart_app_restarts_total` | counter | `kind`, `namespace`, `name`: restarts applied (refused attempts are not restarts) |
//! | `restart_app_restarts_failed_total` | counter | `kind`, `namespace`, `name`: restarts that could not be applied, failed, or timed out |
//! | `restart_app_rollout_duration_seconds` | histogram | `kind`, `namespace`, `name`, `outcome` |
//!
//! and `restart_manager_notifications_total` (`sink`, `outcome`) and
//! `restart_manager_scheduled_restarts_total` (`target`, `result`: `started` or `skipped`).
//!
//! plus the `process_*` metrics of the server process.

use std::time::Duration;

use anyhow::Result;
use cluster_api::WorkloadRef;
use fleetlock_core::Kind;
use fleetlock_core::{GroupSnapshot, Observer};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use restart_core::schedule::DueState;
use restart_core::{Outcome, RestartObserver};

/// Every metric the server exports, in one registry.
pub struct Metrics {
    registry: Registry,
    /// The FleetLock request series, resolved once per endpoint: an answer from memory costs
    /// about as much as looking a labelled series up would.
    fleetlock: [FleetLockSeries; 2],
    slots: IntGaugeVec,
    slots_held: IntGaugeVec,
    lock_age: IntGaugeVec,
    stuck: IntGaugeVec,
    paused: IntGaugeVec,
    rate_left: IntGaugeVec,
    drain_seconds: HistogramVec,
    evictions: IntCounterVec,
    watchers: IntGaugeVec,
    restarts: IntCounterVec,
    restarts_failed: IntCounterVec,
    rollout_seconds: HistogramVec,
    notifications: IntCounterVec,
    scheduled: IntCounterVec,
}

/// One FleetLock endpoint's series.
struct FleetLockSeries {
    ok: IntCounter,
    /// By the kind's place in [`Kind::ALL`].
    refused: Vec<IntCounter>,
    seconds: Histogram,
}

const WORKLOAD_LABELS: [&str; 3] = ["kind", "namespace", "name"];

/// A FleetLock endpoint ([`crate::fleetlock_http`]); its value indexes the request series in
/// [`Metrics`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Endpoint {
    PreReboot = 0,
    SteadyState = 1,
}

impl Endpoint {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Endpoint::PreReboot => "pre-reboot",
            Endpoint::SteadyState => "steady-state",
        }
    }
}

/// The buckets of `fleetlock_request_duration_seconds`: an answer from memory takes under a
/// millisecond, a pre-reboot that waits for a drain minutes.
const REQUEST_BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10.0, 30.0, 60.0, 300.0,
];

/// The buckets of `fleetlock_drain_duration_seconds`: up to two hours.
const DRAIN_BUCKETS: [f64; 11] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
];

/// The buckets of `restart_app_rollout_duration_seconds`: up to an hour.
const ROLLOUT_BUCKETS: [f64; 10] = [
    5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
];

/// Creates metrics and registers them in one registry.
struct Registrar<'a>(&'a Registry);

// === impl Registrar ===

impl Registrar<'_> {
    fn counter(&self, name: &str, help: &str, labels: &[&str]) -> Result<IntCounterVec> {
        let c = IntCounterVec::new(Opts::new(name, help), labels)?;
        self.0.register(Box::new(c.clone()))?;
        Ok(c)
    }

    fn gauge(&self, name: &str, help: &str, labels: &[&str]) -> Result<IntGaugeVec> {
        let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
        self.0.register(Box::new(g.clone()))?;
        Ok(g)
    }

    /// A gauge per reboot group.
    fn group_gauge(&self, name: &str, help: &str) -> Result<IntGaugeVec> {
        self.gauge(name, help, &["group"])
    }

    fn histogram(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: &[f64],
    ) -> Result<HistogramVec> {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        let h = HistogramVec::new(opts, labels)?;
        self.0.register(Box::new(h.clone()))?;
        Ok(h)
    }

    /// The FleetLock request series of both endpoints.
    fn fleetlock_series(&self) -> Result<[FleetLockSeries; 2]> {
        let requests = self.counter(
            "fleetlock_requests_total",
            "FleetLock requests by endpoint and outcome (ok, or the refusal kind).",
            &["endpoint", "outcome"],
        )?;
        let request_seconds = self.histogram(
            "fleetlock_request_duration_seconds",
            "Time to answer a FleetLock request (pre-reboot includes waiting for a drain).",
            &["endpoint"],
            &REQUEST_BUCKETS,
        )?;
        let series = |endpoint: Endpoint| FleetLockSeries {
            ok: requests.with_label_values(&[endpoint.as_str(), "ok"]),
            refused: Kind::ALL
                .iter()
                .map(|k| requests.with_label_values(&[endpoint.as_str(), k.as_str()]))
                .collect(),
            seconds: request_seconds.with_label_values(&[endpoint.as_str()]),
        };
        Ok([series(Endpoint::PreReboot), series(Endpoint::SteadyState)])
    }
}

// === impl Metrics ===

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Result<Self> {
        let registry = Registry::new();
        let r = Registrar(&registry);
        let metrics = Metrics {
            fleetlock: r.fleetlock_series()?,
            slots: r.group_gauge("fleetlock_slots", "Configured reboot slots per group.")?,
            slots_held: r.group_gauge("fleetlock_slots_held", "Reboot slots held per group.")?,
            lock_age: r.group_gauge(
                "fleetlock_lock_age_seconds",
                "How long the oldest holder of the group has held its slot.",
            )?,
            stuck: r.group_gauge(
                "fleetlock_stuck_holders",
                "Holders that have held their slot longer than stuck.after.",
            )?,
            paused: r.group_gauge(
                "fleetlock_group_paused",
                "1 while new reboots in the group are paused.",
            )?,
            rate_left: r.group_gauge(
                "fleetlock_rate_grants_left",
                "Grants the group's rate still allows in the window ending now (groups with a rate).",
            )?,
            drain_seconds: r.histogram(
                "fleetlock_drain_duration_seconds",
                "Time from slot grant to the end of the drain, by outcome (completed, timed_out, cancelled).",
                &["group", "outcome"],
                &DRAIN_BUCKETS,
            )?,
            evictions: r.counter(
                "fleetlock_evictions_total",
                "Eviction answers by outcome (evicted, gone, blocked, throttled, failed, error).",
                &["outcome"],
            )?,
            watchers: r.gauge(
                "restart_app_connected_status_watchers",
                "The number of connected status watchers.",
                &WORKLOAD_LABELS,
            )?,
            restarts: r.counter(
                "restart_app_restarts_total",
                "The total number of restarts.",
                &WORKLOAD_LABELS,
            )?,
            restarts_failed: r.counter(
                "restart_app_restarts_failed_total",
                "The total number of failed restarts.",
                &WORKLOAD_LABELS,
            )?,
            rollout_seconds: r.histogram(
                "restart_app_rollout_duration_seconds",
                "Time from a restart to the end of its rollout, by outcome.",
                &["kind", "namespace", "name", "outcome"],
                &ROLLOUT_BUCKETS,
            )?,
            notifications: r.counter(
                "restart_manager_notifications_total",
                "Notifications by sink and outcome (sent, failed after its retries, dropped on a full queue).",
                &["sink", "outcome"],
            )?,
            scheduled: r.counter(
                "restart_manager_scheduled_restarts_total",
                "Scheduled restarts by target (a workload, or restart set NAME) and result (started or skipped), counted once across replicas.",
                &["target", "result"],
            )?,
            registry,
        };
        #[cfg(target_os = "linux")]
        metrics.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(metrics)
    }

    /// Creates the restart series of every allowlisted workload at zero, so dashboards see
    /// them before the first restart.
    pub fn register_workloads<'a>(&self, workloads: impl IntoIterator<Item = &'a WorkloadRef>) {
        for w in workloads {
            let l = labels(w);
            self.restarts.with_label_values(&l);
            self.restarts_failed.with_label_values(&l);
            self.watchers.with_label_values(&l);
        }
    }

    /// A status-stream client started (`+1`) or stopped (`-1`) watching a workload.
    pub fn status_watchers(&self, w: &WorkloadRef, delta: i64) {
        self.watchers.with_label_values(&labels(w)).add(delta);
    }

    /// Counts an answered FleetLock request: `Ok`, or refused with a kind.
    pub(crate) fn fleetlock_request(
        &self,
        endpoint: Endpoint,
        outcome: Result<(), Kind>,
        took: Duration,
    ) {
        let series = &self.fleetlock[endpoint as usize];
        let counter = match outcome {
            Ok(()) => Some(&series.ok),
            Err(kind) => Kind::ALL
                .iter()
                .position(|k| *k == kind)
                .and_then(|i| series.refused.get(i)),
        };
        if let Some(counter) = counter {
            counter.inc();
        }
        series.seconds.observe(took.as_secs_f64());
    }

    /// Sets the per-group gauges.
    pub fn update_fleet(&self, groups: &[GroupSnapshot]) {
        for gauge in [
            &self.slots,
            &self.slots_held,
            &self.lock_age,
            &self.stuck,
            &self.paused,
            &self.rate_left,
        ] {
            gauge.reset();
        }
        for group in groups {
            let g = [group.name.as_str()];
            self.slots.with_label_values(&g).set(i64::from(group.slots));
            self.slots_held
                .with_label_values(&g)
                .set(group.holders.len() as i64);
            let oldest = group
                .holders
                .iter()
                .map(|h| h.held_seconds)
                .max()
                .unwrap_or(0);
            self.lock_age.with_label_values(&g).set(oldest);
            self.stuck
                .with_label_values(&g)
                .set(group.holders.iter().filter(|h| h.stuck).count() as i64);
            self.paused
                .with_label_values(&g)
                .set(i64::from(group.paused));
            if let Some(rate) = &group.rate {
                self.rate_left
                    .with_label_values(&g)
                    .set(i64::from(rate.reboots.saturating_sub(rate.granted)));
            }
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "could not encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Metrics {
    /// A notification's fate: `sent`, `failed` or `dropped`.
    pub fn notification(&self, sink: &str, outcome: &str) {
        self.notifications.with_label_values(&[sink, outcome]).inc();
    }
}

fn labels(w: &WorkloadRef) -> [&str; 3] {
    [w.kind.as_str(), w.namespace.as_str(), w.name.as_str()]
}

impl RestartObserver for Metrics {
    fn restarted(&self, w: &WorkloadRef) {
        self.restarts.with_label_values(&labels(w)).inc();
    }

    fn restart_failed(&self, w: &WorkloadRef) {
        self.restarts_failed.with_label_values(&labels(w)).inc();
    }

    fn rollout_finished(&self, w: &WorkloadRef, outcome: Outcome, took: Duration) {
        let [kind, namespace, name] = labels(w);
        self.rollout_seconds
            .with_label_values(&[kind, namespace, name, outcome.as_str()])
            .observe(took.as_secs_f64());
    }

    fn scheduled(&self, target: &str, state: DueState) {
        let result = match state {
            DueState::Skipped => "skipped",
            _ => "started",
        };
        self.scheduled.with_label_values(&[target, result]).inc();
    }
}

impl Observer for Metrics {
    fn eviction(&self, outcome: &'static str) {
        self.evictions.with_label_values(&[outcome]).inc();
    }

    fn drain_finished(&self, group: &str, outcome: &'static str, duration: Duration) {
        self.drain_seconds
            .with_label_values(&[group, outcome])
            .observe(duration.as_secs_f64());
    }
}
