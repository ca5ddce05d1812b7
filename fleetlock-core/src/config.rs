//! FleetLock configuration: groups and their policies, drains, stuck holders.

use std::collections::BTreeMap;
use std::time::Duration;

use cluster_api::LabelSelector;
use serde::{Deserialize, Deserializer};

use crate::protocol::validate_group;

mod rate;

use crate::window::RebootWindow;
pub use rate::{MAX_RATE_REBOOTS, RateLimit, RateNow};

/// Everything the coordinator is configured with.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct FleetLockConfig {
    /// The namespace holding the group Leases.
    pub namespace: String,
    /// The reboot groups, by name. `default` (Zincati's default group) with one slot unless
    /// configured otherwise.
    pub groups: BTreeMap<String, GroupConfig>,
    /// What to do with a group that is not configured.
    pub unknown_groups: UnknownGroups,
    /// With unknown groups allowed, how many of them may hold a Lease (each one also a row
    /// in the fleet view and a series per group metric): past it, a request that would make
    /// another is refused (`too_many_groups`), and the groups there are keep working. An
    /// unknown group's Lease stays after its last slot is given back; deleting it by hand
    /// frees its place. [`DEFAULT_MAX_UNKNOWN_GROUPS`] unless set.
    pub max_unknown_groups: u32,
    /// The Node label that names a node's reboot group ([`DEFAULT_GROUP_LABEL`]); a node
    /// without it is in `default`. A request naming another group is refused
    /// (`wrong_group`), so a node cannot dodge its group's policies or free another
    /// group's slot. Empty: the group a request names is believed.
    pub group_label: String,
    /// Refuse a FleetLock request that does not come from the node its id belongs to: from
    /// one of its addresses, its pod ranges, or its `restart-manager.io/fleetlock-addresses`.
    /// Whether that holds depends on the network between the node and the server (see
    /// docs/security.md), so it is off unless configured; the shipped manifests turn it on.
    pub verify_caller: bool,
    /// The settings an unknown group gets when unknown groups are allowed.
    pub group_defaults: GroupConfig,
    /// How nodes are drained.
    pub drain: DrainConfig,
    /// What happens to a holder that keeps its slot too long.
    pub stuck: StuckConfig,
    /// The server's own pod (`namespace`, `name`), evicted only after every other pod on its
    /// node. Set from the downward API, not the file.
    #[serde(skip)]
    pub own_pod: Option<(String, String)>,
    /// Where the groups' alert gates read firing alerts (none: alert gates cannot open).
    pub alerts: Option<AlertsConfig>,
}

/// How many unknown groups may hold a Lease unless configured otherwise
/// ([`FleetLockConfig::max_unknown_groups`]).
pub const DEFAULT_MAX_UNKNOWN_GROUPS: u32 = 32;

/// The Node label that names a node's reboot group, unless configured otherwise.
pub const DEFAULT_GROUP_LABEL: &str = "restart-manager.io/reboot-group";

/// Whether a request for a group that is not configured is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UnknownGroups {
    /// Refuse it with `unknown_group`: a typo in a node's Zincati config should be loud.
    #[default]
    Reject,
    /// Serve it with [`FleetLockConfig::group_defaults`], with its own slots.
    Allow,
}

/// One reboot group.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct GroupConfig {
    /// How many nodes of the group may be draining or rebooting at once.
    pub slots: u32,
    /// Grant no new slots (holders keep theirs). Can also be switched at run time.
    pub paused: bool,
    /// Windows in which a new slot may be granted; any time when empty.
    pub windows: Vec<RebootWindow>,
    /// The least time between two approvals in the group, e.g. to let a node settle.
    #[serde(deserialize_with = "duration")]
    pub min_gap: Duration,
    /// At most this many grants in any sliding window, besides the slots (`{reboots: 3,
    /// per: 1h}`); unset (the default): no limit.
    pub rate: Option<RateLimit>,
    /// Label selectors of pods that block a reboot while one runs on the node
    /// (`app=batch,critical=true`).
    #[serde(deserialize_with = "selectors")]
    pub blocking_pods: Vec<LabelSelector>,
    /// Grant no new slot while too many nodes are down or cordoned by someone else.
    pub health_gates: HealthGates,
    /// Keep a holder's slot after its steady-state until its node has really healed.
    pub recovery: RecoveryConfig,
    /// How long an approved node may be back from its reboot (a new bootID, Ready) without a
    /// steady-state that reached its slot before it is taken as returned, as if it had said
    /// one. Zincati stops asking at its first 200, which a replica whose view lags may give
    /// without seeing the slot; a dropped answer is the same. Zero: wait for the steady-state
    /// however long (`stuck` still applies).
    #[serde(deserialize_with = "duration")]
    pub steady_state_wait: Duration,
}

/// When a rebooted node counts as back, so that its slot can go to the next one.
///
/// With recovery on, a `steady-state` answers 200 at once and undoes our cordon, but the slot
/// stays held, in the `recovering` phase, until the node is Ready, its bootID has changed
/// since the approval, and the workloads its drain evicted are available again; then for
/// `settle` more. `minGap` counts from that return.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RecoveryConfig {
    /// Hold the slot until the node has healed (on by default); off, a steady-state gives the
    /// slot back at once.
    pub enabled: bool,
    /// How long everything must have looked healthy before the slot is given back.
    #[serde(deserialize_with = "duration")]
    pub settle: Duration,
    /// What a steady-state means when the node's bootID has not changed since the approval.
    pub unchanged_boot_id: UnchangedBootId,
}

/// What to make of a `steady-state` from a node whose bootID is the one it had when its
/// reboot was approved: the reboot did not happen (Zincati failed to finalize the update, or
/// was restarted), or the kubelet has not reported the new boot yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UnchangedBootId {
    /// Take the node as back without a reboot: it recovers like a rebooted node (Ready, our
    /// cordon undone, its evicted workloads available), without waiting for a new bootID. A
    /// Warning Event `RebootNotObserved` says so. The default: Zincati has stopped asking,
    /// so holding the slot for a reboot that will not come would stop the whole group.
    #[default]
    Recover,
    /// Hold the slot, recovering, until the kubelet reports a new bootID: for fleets where a
    /// reboot must have happened before the next node goes. A node that never reboots keeps
    /// the slot until `stuck` deals with it.
    Wait,
    /// Give the slot back at once, as without recovery.
    Release,
}

/// Limits on the nodes that are down or held back by someone else, past which a group grants
/// no new slot (`health_gate_closed`). Nodes holding a slot of any group are not counted:
/// their being down is the reboot itself.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct HealthGates {
    /// At most this many nodes may be NotReady; unset: no limit.
    pub max_not_ready: Option<u32>,
    /// At most this many nodes may be cordoned by someone else than restart-manager; unset:
    /// no limit.
    pub max_cordoned: Option<u32>,
    /// Whose nodes are counted: the group's own (the default) or the whole cluster's.
    pub scope: GateScope,
    /// Label selectors over firing alerts (`severity=critical`, `alertname in (A,B)`): while
    /// an alert matching any of them fires, no new slot. Read from [`FleetLockConfig::alerts`].
    #[serde(deserialize_with = "selectors")]
    pub alerts: Vec<LabelSelector>,
}

/// Where firing alerts are read from, for the groups' alert gates.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertsConfig {
    /// The server's base URL (`http://prometheus.monitoring:9090`).
    pub url: String,
    /// Which API it speaks.
    #[serde(default)]
    pub api: AlertsApi,
    /// How often the firing alerts are read.
    #[serde(default = "fifteen_seconds", deserialize_with = "duration")]
    pub interval: Duration,
    /// How long a read may take.
    #[serde(default = "five_seconds", deserialize_with = "duration")]
    pub timeout: Duration,
    /// What the gates do while the alerts cannot be read.
    #[serde(default)]
    pub on_unreachable: OnUnreachable,
    /// A file holding a bearer token to send (`Authorization: Bearer ...`), read at every
    /// request so a rotation applies: a mounted Secret, rather than a token in the URL.
    #[serde(default)]
    pub bearer_token_file: Option<std::path::PathBuf>,
    /// HTTP basic authentication, its password read from a file at every request.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
}

/// HTTP basic authentication for the alerts server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuth {
    /// The user name.
    pub username: String,
    /// A file holding the password (a mounted Secret).
    pub password_file: std::path::PathBuf,
}

fn fifteen_seconds() -> Duration {
    Duration::from_secs(15)
}

fn five_seconds() -> Duration {
    Duration::from_secs(5)
}

/// The API firing alerts are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AlertsApi {
    /// Prometheus: `GET /api/v1/alerts`, alerts in state `firing`.
    #[default]
    Prometheus,
    /// Alertmanager: `GET /api/v2/alerts`, active and neither silenced nor inhibited.
    Alertmanager,
}

/// What an alert gate does while its alerts cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OnUnreachable {
    /// Grant nothing: an alert might be firing (the default).
    #[default]
    Block,
    /// Grant as if nothing fired.
    Allow,
}

/// Which nodes a [`HealthGates`] limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GateScope {
    /// The nodes of the group.
    #[default]
    Group,
    /// Every node.
    Cluster,
}

/// How nodes are drained.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DrainConfig {
    /// Evictions in flight at once per node.
    pub parallelism: usize,
    /// How long a `pre-reboot` request is held open waiting for the drain (Zincati's client
    /// waits up to 30 minutes; proxies in between often less).
    #[serde(deserialize_with = "duration")]
    pub request_wait: Duration,
    /// How long a drain may take before [`DrainConfig::on_timeout`] applies.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// What happens when a drain overruns its timeout.
    pub on_timeout: OnDrainTimeout,
    /// Evict pods no controller will recreate (kubectl's `--force`).
    pub delete_unmanaged: bool,
    /// Evict pods with `emptyDir` volumes, losing that data (`--delete-emptydir-data`).
    pub delete_empty_dir_data: bool,
    /// Override the pods' termination grace period.
    pub grace_period_seconds: Option<i64>,
    /// How long to wait before asking again for an eviction a disruption budget refused
    /// (or longer, if the API server says so). Fixed, as `kubectl drain` waits 5 s: a budget
    /// such as `maxUnavailable: 1` over several pods of the node lets the next one go as soon
    /// as the last one's replacement is ready, and a growing backoff would miss that by minutes.
    #[serde(deserialize_with = "duration")]
    pub budget_retry: Duration,
    /// First wait before retrying an eviction (or a cordon) that failed; doubles up to
    /// `retry_max`.
    #[serde(deserialize_with = "duration")]
    pub retry_initial: Duration,
    /// Longest wait between retries of a failed eviction.
    #[serde(deserialize_with = "duration")]
    pub retry_max: Duration,
    /// Plan the drain before taking a slot, and refuse (`drain_would_block`) without a
    /// cordon when it could not finish: pods no controller would bring back or with
    /// `emptyDir` data (unless allowed above), disruption budgets that never allow an
    /// eviction, pods under more than one budget.
    pub preflight: bool,
    /// Ordered rules, first match wins, by namespace and pod labels: evict (with an eviction
    /// priority), skip, or wait for completion up to a limit ([`crate::rules`]).
    pub rules: Vec<crate::rules::DrainRule>,
}

/// What happens when a drain overruns its timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OnDrainTimeout {
    /// Keep the slot and keep draining; report it (Event, metric, annotation).
    #[default]
    KeepWaiting,
    /// Give the slot back and uncordon, so other nodes get their turn.
    Release,
}

/// Holders that keep a slot too long.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct StuckConfig {
    /// A holder is stuck when it has held its slot this long.
    #[serde(deserialize_with = "duration")]
    pub after: Duration,
    /// Take the slot back from a stuck holder. Off by default: a node that never came back
    /// from an update may be one that the update broke, and a blind timeout would let the next
    /// node take the same update.
    pub release: bool,
}

// === impl FleetLockConfig ===

impl Default for FleetLockConfig {
    fn default() -> Self {
        FleetLockConfig {
            namespace: "restart-manager".into(),
            groups: BTreeMap::from([("default".to_string(), GroupConfig::default())]),
            unknown_groups: UnknownGroups::Reject,
            max_unknown_groups: DEFAULT_MAX_UNKNOWN_GROUPS,
            group_label: DEFAULT_GROUP_LABEL.into(),
            verify_caller: false,
            group_defaults: GroupConfig::default(),
            drain: DrainConfig::default(),
            stuck: StuckConfig::default(),
            own_pod: None,
            alerts: None,
        }
    }
}

impl FleetLockConfig {
    /// The settings of a group, or `None` when it is unknown and unknown groups are refused.
    pub fn group(&self, name: &str) -> Option<&GroupConfig> {
        match (self.groups.get(name), self.unknown_groups) {
            (Some(g), _) => Some(g),
            (None, UnknownGroups::Allow) => Some(&self.group_defaults),
            (None, UnknownGroups::Reject) => None,
        }
    }

    /// Checks what serde cannot: group names and numbers that make sense.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        self.problems().map_err(InvalidConfig)
    }

    fn problems(&self) -> Result<(), String> {
        cluster_api::validate_namespace(&self.namespace).map_err(|e| e.to_string())?;
        if self.group_label.len() > 316
            || self
                .group_label
                .chars()
                .any(|c| !(c.is_ascii_alphanumeric() || "-_./".contains(c)))
        {
            return Err(format!(
                "groupLabel {:?} is not a label key (like {DEFAULT_GROUP_LABEL})",
                self.group_label
            ));
        }
        for (name, group) in self
            .groups
            .iter()
            .map(|(n, g)| (n.as_str(), g))
            .chain([("groupDefaults", &self.group_defaults)])
        {
            if name != "groupDefaults" {
                validate_group(name).map_err(|r| format!("groups: {}", r.value))?;
            }
            if group.slots == 0 {
                return Err(format!(
                    "group {name:?}: slots must be at least 1 (use paused: true to stop reboots)"
                ));
            }
            if let Some(rate) = &group.rate {
                rate.problem()
                    .map_or(Ok(()), |p| Err(format!("group {name:?}: {p}")))?;
            }
            if !group.health_gates.alerts.is_empty() && self.alerts.is_none() {
                return Err(format!(
                    "group {name:?}: healthGates.alerts needs fleetlock.alerts (the Prometheus or \
                     Alertmanager URL to read them from)"
                ));
            }
        }
        if let Some(alerts) = &self.alerts
            && !(alerts.url.starts_with("http://") || alerts.url.starts_with("https://"))
        {
            return Err(format!(
                "alerts.url {:?} must be an http:// or https:// URL",
                crate::alerts::shown_url(&alerts.url)
            ));
        }
        for (i, rule) in self.drain.rules.iter().enumerate() {
            if let Some(problem) = rule.problem() {
                return Err(format!("drain.rules[{i}]: {problem}"));
            }
        }
        if self.drain.parallelism == 0 {
            return Err("drain.parallelism must be at least 1".into());
        }
        if self.drain.retry_initial.is_zero() || self.drain.retry_max < self.drain.retry_initial {
            return Err("drain.retryInitial must be positive and at most drain.retryMax".into());
        }
        if self.drain.budget_retry.is_zero() {
            return Err("drain.budgetRetry must be positive (kubectl drain waits 5s)".into());
        }
        Ok(())
    }
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            slots: 1,
            paused: false,
            windows: Vec::new(),
            min_gap: Duration::ZERO,
            rate: None,
            blocking_pods: Vec::new(),
            health_gates: HealthGates::default(),
            recovery: RecoveryConfig::default(),
            steady_state_wait: Duration::from_secs(600),
        }
    }
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            enabled: true,
            settle: Duration::ZERO,
            unchanged_boot_id: UnchangedBootId::Recover,
        }
    }
}

impl Default for DrainConfig {
    fn default() -> Self {
        DrainConfig {
            parallelism: 5,
            request_wait: Duration::from_secs(60),
            timeout: Duration::from_secs(60 * 60),
            on_timeout: OnDrainTimeout::KeepWaiting,
            delete_unmanaged: false,
            delete_empty_dir_data: false,
            grace_period_seconds: None,
            budget_retry: Duration::from_secs(5),
            retry_initial: Duration::from_secs(5),
            retry_max: Duration::from_secs(120),
            preflight: true,
            rules: Vec::new(),
        }
    }
}

impl Default for StuckConfig {
    fn default() -> Self {
        StuckConfig {
            after: Duration::from_secs(2 * 60 * 60),
            release: false,
        }
    }
}

/// A FleetLock setting that cannot be used; the message names it and says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidConfig(String);

pub use cluster_api::duration::{InvalidDuration, duration, humanize, parse_duration};

fn selectors<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<LabelSelector>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| s.parse().map_err(serde::de::Error::custom))
        .collect()
}

#[cfg(test)]
mod tests;
