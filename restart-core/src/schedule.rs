//! Scheduled restarts: a cron schedule on a workload or a restart set, and the plain rules
//! that say which due time to act on.
//!
//! ```yaml
//! services:
//!   - {kind: Deployment, namespace: shop, name: web,
//!      schedule: {cron: "0 3 * * *", timeZone: Europe/Berlin}}
//! restartSets:
//!   - name: storefront
//!     members: [Deployment/shop/api, Deployment/shop/web]
//!     schedule: {cron: "30 2 * * sun", timeZone: Europe/Berlin, startingDeadline: 10m}
//! ```
//!
//! The leader acts on each due time once: it claims the due time in the target's schedule
//! Lease (`restart-schedule.<target>`) with compare-and-swap before it restarts anything,
//! and the restart (or the set's run) carries an id derived from the due time, so a replica
//! that dies between the claim and the restart leaves the next leader to finish it, never to
//! do it twice. A due time further back than `startingDeadline` (a replica-less outage) is
//! not acted on, like a CronJob's `startingDeadlineSeconds`.

use std::time::Duration;

use cluster_api::cron::Cron;
use cluster_api::{Lease, Timestamp, WorkloadRef};
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

/// The label value (on [`crate::lock::LOCK_LABEL`]) of schedule Leases.
pub const SCHEDULE_LABEL_VALUE: &str = "restart-schedule";
/// The annotation with the last due time claimed (RFC 3339).
pub const DUE_ANNOTATION: &str = "restart-manager.io/schedule-due";
/// The annotation with what became of it: `claimed`, `started` or `skipped`.
pub const STATE_ANNOTATION: &str = "restart-manager.io/schedule-state";
/// The annotation with a sentence about it.
pub const NOTE_ANNOTATION: &str = "restart-manager.io/schedule-note";

/// How long after its due time a scheduled restart may still start, unless configured.
pub const DEFAULT_STARTING_DEADLINE: Duration = Duration::from_secs(300);

/// A restart schedule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ScheduleSpec")]
pub struct Schedule {
    /// When.
    pub cron: Cron,
    /// How late a due time may still be acted on.
    pub starting_deadline: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ScheduleSpec {
    cron: String,
    #[serde(default)]
    time_zone: Option<String>,
    #[serde(default, deserialize_with = "some_duration")]
    starting_deadline: Option<Duration>,
}

fn some_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    cluster_api::duration::duration(d).map(Some)
}

impl TryFrom<ScheduleSpec> for Schedule {
    type Error = String;

    fn try_from(spec: ScheduleSpec) -> Result<Self, String> {
        let starting_deadline = spec.starting_deadline.unwrap_or(DEFAULT_STARTING_DEADLINE);
        if starting_deadline < Duration::from_secs(1) {
            return Err("startingDeadline must be at least 1s".into());
        }
        Ok(Schedule {
            cron: Cron::parse(&spec.cron, spec.time_zone.as_deref()).map_err(|e| e.to_string())?,
            starting_deadline,
        })
    }
}

impl Schedule {
    /// A schedule with the default starting deadline.
    pub fn new(cron: Cron) -> Self {
        Schedule {
            cron,
            starting_deadline: DEFAULT_STARTING_DEADLINE,
        }
    }
}

/// What a schedule restarts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// One workload.
    Workload(WorkloadRef),
    /// A restart set, by name.
    Set(String),
}

impl Target {
    /// The name of its schedule Lease.
    pub fn lease_name(&self) -> String {
        match self {
            Target::Workload(w) => {
                // The workload's lock name, whose shape (and shortening) it shares.
                let lock = crate::lock::lease_name(w);
                format!("restart-schedule.{}", lock.trim_start_matches("restart."))
            }
            Target::Set(name) => format!("restart-schedule.set.{name}"),
        }
    }

    /// The restart (or run) id of the due time `due`: the same on every replica.
    pub fn id_for(&self, due: Timestamp) -> String {
        format!("schedule-{}", due.as_second())
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Workload(w) => write!(f, "{w}"),
            Target::Set(name) => write!(f, "restart set {name}"),
        }
    }
}

/// What became of a claimed due time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum DueState {
    /// Claimed; the restart is being started (or its replica died first).
    Claimed,
    /// The restart or run started.
    Started,
    /// Not started: locked, outside a window, or it could not be.
    Skipped,
}

impl DueState {
    fn as_str(self) -> &'static str {
        match self {
            DueState::Claimed => "claimed",
            DueState::Started => "started",
            DueState::Skipped => "skipped",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "claimed" => DueState::Claimed,
            "started" => DueState::Started,
            "skipped" => DueState::Skipped,
            _ => return None,
        })
    }
}

/// The last due time a schedule Lease records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LastDue {
    /// The due time.
    pub due: Timestamp,
    /// What became of it.
    pub state: DueState,
    /// Why it was skipped, or what started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl LastDue {
    /// What a schedule Lease records, if anything.
    pub fn of(lease: &Lease) -> Option<LastDue> {
        let a = &lease.annotations;
        Some(LastDue {
            due: a.get(DUE_ANNOTATION)?.parse().ok()?,
            state: DueState::parse(a.get(STATE_ANNOTATION)?)?,
            note: a.get(NOTE_ANNOTATION).cloned(),
        })
    }

    /// Writes this into a schedule Lease.
    pub fn write(&self, lease: &mut Lease) {
        let a = &mut lease.annotations;
        a.insert(DUE_ANNOTATION.into(), self.due.to_string());
        a.insert(STATE_ANNOTATION.into(), self.state.as_str().into());
        match &self.note {
            Some(n) => a.insert(NOTE_ANNOTATION.into(), n.clone()),
            None => a.remove(NOTE_ANNOTATION),
        };
    }
}

/// What the page, the API and the CLI show about a schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ScheduleStatus {
    /// The cron expression and its time zone.
    pub cron: String,
    /// When it fires next.
    pub next: Option<Timestamp>,
    /// The last due time acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<LastDue>,
}

/// The due time to act on now, if any: the last one claimed but not finished (while it is
/// within the deadline), else the latest due time within the deadline that is newer than the
/// last claimed.
pub fn due_now(schedule: &Schedule, last: Option<&LastDue>, now: Timestamp) -> Option<Timestamp> {
    let deadline = SignedDuration::try_from(schedule.starting_deadline).ok()?;
    let oldest = now.checked_sub(deadline).ok()?;
    if let Some(l) = last
        && l.state == DueState::Claimed
        && l.due >= oldest
        && l.due <= now
    {
        return Some(l.due);
    }
    // Due times at `oldest` or later, and after the last one claimed.
    let mut since = oldest.checked_sub(SignedDuration::from_nanos(1)).ok()?;
    if let Some(l) = last
        && l.due > since
    {
        since = l.due;
    }
    schedule.cron.last_at_or_before(now, since)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn hourly() -> Schedule {
        Schedule::new(Cron::parse("0 * * * *", None).unwrap())
    }

    fn last(due: &str, state: DueState) -> LastDue {
        LastDue {
            due: at(due),
            state,
            note: None,
        }
    }

    #[test]
    fn a_due_time_is_acted_on_once_and_only_while_it_is_recent() {
        let s = hourly();
        // Within the 5 minutes after 10:00, 10:00 is due.
        assert_eq!(
            due_now(&s, None, at("2026-11-26T10:04:00Z")),
            Some(at("2026-11-26T10:00:00Z"))
        );
        assert_eq!(
            due_now(&s, None, at("2026-11-26T10:00:00Z")),
            Some(at("2026-11-26T10:00:00Z"))
        );
        // Too late, and not yet.
        assert_eq!(due_now(&s, None, at("2026-11-26T10:06:00Z")), None);
        assert_eq!(due_now(&s, None, at("2026-11-26T09:59:00Z")), None);
        // Claimed and done: not again.
        let done = last("2026-11-26T10:00:00Z", DueState::Started);
        assert_eq!(due_now(&s, Some(&done), at("2026-11-26T10:01:00Z")), None);
        let skipped = last("2026-11-26T10:00:00Z", DueState::Skipped);
        assert_eq!(
            due_now(&s, Some(&skipped), at("2026-11-26T10:01:00Z")),
            None
        );
        // Claimed by a replica that died before it started: finished by whoever comes next,
        // within the deadline.
        let claimed = last("2026-11-26T10:00:00Z", DueState::Claimed);
        assert_eq!(
            due_now(&s, Some(&claimed), at("2026-11-26T10:03:00Z")),
            Some(at("2026-11-26T10:00:00Z"))
        );
        assert_eq!(
            due_now(&s, Some(&claimed), at("2026-11-26T10:06:00Z")),
            None
        );
        // The next hour is due in its turn.
        assert_eq!(
            due_now(&s, Some(&done), at("2026-11-26T11:00:30Z")),
            Some(at("2026-11-26T11:00:00Z"))
        );
    }

    #[test]
    fn several_due_times_within_the_deadline_act_once_on_the_latest() {
        let s = Schedule {
            cron: Cron::parse("* * * * *", None).unwrap(),
            starting_deadline: Duration::from_secs(600),
        };
        let done = last("2026-11-26T10:00:00Z", DueState::Started);
        assert_eq!(
            due_now(&s, Some(&done), at("2026-11-26T10:05:30Z")),
            Some(at("2026-11-26T10:05:00Z"))
        );
    }

    #[test]
    fn schedules_read_from_the_config_and_name_their_lease() {
        #[derive(Deserialize)]
        struct File {
            schedule: Schedule,
        }
        let f: File = serde_saphyr::from_str(
            "schedule: {cron: \"0 3 * * *\", timeZone: Europe/Berlin, startingDeadline: 10m}\n",
        )
        .unwrap();
        assert_eq!(f.schedule.cron.to_string(), "0 3 * * * Europe/Berlin");
        assert_eq!(f.schedule.starting_deadline, Duration::from_secs(600));
        let err = serde_saphyr::from_str::<File>("schedule: {cron: \"0 3 * *\"}\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("expected 5"), "{err}");
        let err = serde_saphyr::from_str::<File>("schedule: {cron: \"0 3 * * *\", at: 3}\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("unknown field"), "{err}");

        let web = WorkloadRef::new(cluster_api::WorkloadKind::Deployment, "shop", "web");
        assert_eq!(
            Target::Workload(web).lease_name(),
            "restart-schedule.deployment.shop.web"
        );
        assert_eq!(
            Target::Set("nightly".into()).lease_name(),
            "restart-schedule.set.nightly"
        );
        assert_eq!(
            Target::Set("x".into()).id_for(at("2026-11-26T10:00:00Z")),
            "schedule-1795687200"
        );
    }
}
