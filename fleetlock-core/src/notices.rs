//! What the coordinator tells whoever listens (notifications) about a node's reboot: one
//! notice per transition, sent by the one replica that made it.
//!
//! A transition written to a group Lease (granted, approved, healed) is announced by the
//! replica whose compare-and-swap made it. One seen rather than written (a drain blocked or
//! overdue, a node back, a holder stuck) is first claimed in the holder's entry of the Lease,
//! with compare-and-swap too, so that a replica taking over after a crash does not announce it
//! again.

use cluster_api::Timestamp;
use serde::Serialize;

/// A reboot transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RebootTransition {
    /// A slot was granted; the drain begins.
    Granted,
    /// The drain needs an operator (pods no controller would bring back, and so on).
    DrainBlocked,
    /// The drain overran `drain.timeout` (and, with `onTimeout: release`, lost its slot).
    Overdue,
    /// The node is drained and may reboot.
    Approved,
    /// The node came back with a new bootID.
    Back,
    /// The node has healed (or said steady-state, without recovery) and gave its slot back.
    Healed,
    /// The holder has kept its slot longer than `stuck.after`.
    Stuck,
}

impl RebootTransition {
    /// `granted`, `drain_blocked`, `overdue`, `approved`, `back`, `healed`, `stuck`.
    pub fn as_str(self) -> &'static str {
        match self {
            RebootTransition::Granted => "granted",
            RebootTransition::DrainBlocked => "drain_blocked",
            RebootTransition::Overdue => "overdue",
            RebootTransition::Approved => "approved",
            RebootTransition::Back => "back",
            RebootTransition::Healed => "healed",
            RebootTransition::Stuck => "stuck",
        }
    }
}

/// One reboot transition, for notifications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RebootNotice {
    /// What happened.
    pub transition: RebootTransition,
    /// The slot holder's Node name, not the FleetLock id it asked with.
    pub node: String,
    /// Its reboot group.
    pub group: String,
    /// A sentence for a person, as the Event on the Node says it.
    pub message: String,
    /// When (the coordinator's clock).
    pub time: Timestamp,
}
