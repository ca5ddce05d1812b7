//! The fleet's reboot state as data, for the UI, the CLI and metrics.

use cluster_api::Timestamp;
use serde::{Deserialize, Serialize};

use crate::drain::DrainStatus;
use crate::group::HolderPhase;

/// Every group and node, as this replica sees them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FleetSnapshot {
    /// Whether the caches have synced (before that, everything below may be incomplete).
    pub ready: bool,
    /// When the snapshot was taken.
    pub time: Timestamp,
    /// The groups, configured ones and any others that hold a Lease.
    pub groups: Vec<GroupSnapshot>,
    /// Every Node in this replica's cache, in a reboot group or not, sorted by name.
    pub nodes: Vec<NodeSnapshot>,
}

/// One reboot group.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct GroupSnapshot {
    /// The group name as Zincati sends it; `groups` is sorted by it.
    pub name: String,
    /// Whether it is in the configuration (or only has a Lease).
    pub configured: bool,
    /// How many nodes may hold a slot at once (at least 1): the group's `slots`, or the
    /// defaults' for a group not in the configuration.
    pub slots: u32,
    /// Paused by config or by an operator.
    pub paused: bool,
    /// Its reboot windows, as text.
    pub windows: Vec<String>,
    /// Whether now is inside a window.
    pub in_window: bool,
    /// Minimum time between approvals.
    pub min_gap_seconds: u64,
    /// When the group last approved a reboot, from its Lease; `None` if it never has.
    pub last_approval: Option<Timestamp>,
    /// Its rate and where it stands against it now; absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateSnapshot>,
    /// Who holds its slots.
    pub holders: Vec<HolderSnapshot>,
    /// Its health gates that are closed now, in words: no new slot until they open.
    #[serde(default)]
    pub closed_gates: Vec<String>,
}

/// A group's rate ([`crate::RateLimit`]) at the snapshot's time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RateSnapshot {
    /// How many grants the window allows.
    pub reboots: u32,
    /// The sliding window's length, in seconds.
    pub per_seconds: u64,
    /// Grants within the window ending now (more than `reboots` only after it was lowered).
    pub granted: u32,
    /// While the window is full: when the next grant becomes possible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_grant_at: Option<Timestamp>,
}

/// One slot's holder.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct HolderSnapshot {
    /// Client id.
    pub id: String,
    /// The Node the client id maps to, by name.
    pub node: String,
    /// Draining, approved, or recovering after its steady-state.
    pub phase: HolderPhase,
    /// Since when it holds the slot.
    pub since: Timestamp,
    /// For how long, in seconds.
    pub held_seconds: i64,
    /// When its reboot was approved.
    pub approved_at: Option<Timestamp>,
    /// Whether its bootID changed since approval (`None` before approval).
    pub rebooted: Option<bool>,
    /// Whether it has held the slot longer than `stuck.after`.
    pub stuck: bool,
    /// Its drain, if this replica runs it.
    pub drain: Option<DrainStatus>,
    /// When its steady-state came (it has been recovering since).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returned_at: Option<Timestamp>,
    /// While recovering: what it still waits for before the slot is given back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_for: Vec<String>,
    /// What its drain disrupts, to be seen available again: budgets, and the controllers of
    /// evicted pods no budget covers (`Kind namespace/name`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evicts: Vec<String>,
}

/// One node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NodeSnapshot {
    /// `metadata.name`; `nodes` is sorted by it.
    pub name: String,
    /// `ready`, `draining`, `rebooting`, `back` or `recovering`.
    pub state: String,
    /// When it entered that state.
    pub state_since: Option<Timestamp>,
    /// Ready condition.
    pub ready: bool,
    /// Cordoned (by anyone).
    pub unschedulable: bool,
    /// Whether the cordon is ours (`restart-manager.io/cordoned`), to be lifted when the slot
    /// goes; `unschedulable` without it is someone else's.
    pub cordoned_by_us: bool,
    /// The group whose slot it holds.
    pub holds_slot_in: Option<String>,
    /// Current bootID.
    pub boot_id: String,
    /// Why an operator keeps it from rebooting (`restart-manager.io/no-reboot`); absent: it
    /// may reboot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opted_out: Option<String>,
}
