//! Who may ask at all: the checks of a caller and its group made before any lock is looked
//! at, as plain functions of the configuration and the caller's Node.

use std::net::IpAddr;

use crate::config::{FleetLockConfig, GroupConfig};
use crate::nodes::NodeView;
use crate::protocol::{Kind, Refusal};

pub(super) fn group_config<'c>(
    config: &'c FleetLockConfig,
    group: &str,
) -> Result<&'c GroupConfig, Refusal> {
    config.group(group).ok_or_else(|| {
        let known: Vec<&str> = config.groups.keys().map(String::as_str).collect();
        Refusal::new(
            Kind::UnknownGroup,
            format!(
                "group {group:?} is not configured (known: {}); fix the node's Zincati \
                 fleet_lock group or add the group",
                known.join(", ")
            ),
        )
    })
}

/// Refuses a grant that would make a Lease for yet another unknown group once
/// `maxUnknownGroups` of them hold one (`existing`: the groups that do). Configured
/// groups, and groups that already have a Lease, always have room.
pub(super) fn check_room_for_group<'a>(
    config: &FleetLockConfig,
    group: &str,
    existing: impl Iterator<Item = &'a String>,
) -> Result<(), Refusal> {
    if config.groups.contains_key(group) {
        return Ok(());
    }
    let mut unknown = 0usize;
    for name in existing {
        if name == group {
            return Ok(());
        }
        if !config.groups.contains_key(name) {
            unknown += 1;
        }
    }
    let cap = usize::try_from(config.max_unknown_groups).unwrap_or(usize::MAX);
    if unknown < cap {
        return Ok(());
    }
    tracing::warn!(%group, unknown, cap, "refused a slot in a new unknown group: maxUnknownGroups reached");
    Err(Refusal::new(
        Kind::TooManyGroups,
        format!(
            "group {group:?} is not configured, and the {cap} unknown groups allowed \
             (fleetlock.maxUnknownGroups) already exist: configure it, or delete the \
             Lease of an unused one"
        ),
    ))
}

/// Refuses a request that names another group than the node's own (its group label's, or
/// `default` without one), unless the binding is off.
pub(super) fn check_group(
    config: &FleetLockConfig,
    node: &NodeView,
    group: &str,
) -> Result<(), Refusal> {
    let label = &config.group_label;
    if label.is_empty() {
        return Ok(());
    }
    let own = node.group.as_deref().unwrap_or("default");
    if own == group {
        return Ok(());
    }
    Err(Refusal::new(
        Kind::WrongGroup,
        format!(
            "this node is in reboot group {own:?} (its {label} label), not {group:?}: \
             set that group in Zincati's [identity] group"
        ),
    ))
}

/// With `verifyCaller` on, refuses a request that did not come from the node (or whose
/// origin is unknown). The refusal names nothing; the log says who asked from where.
pub(super) fn check_caller(
    config: &FleetLockConfig,
    node: &NodeView,
    peer: Option<IpAddr>,
) -> Result<(), Refusal> {
    if !config.verify_caller {
        return Ok(());
    }
    if let Some(peer) = peer
        && node.sent_from(peer)
    {
        return Ok(());
    }
    tracing::warn!(
        node = %node.name,
        peer = %peer.map_or_else(|| "unknown".to_string(), |p| p.to_string()),
        networks = ?node.networks.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "refused a FleetLock request that did not come from the node its id belongs to"
    );
    Err(Refusal::new(
        Kind::UnverifiedCaller,
        "this request did not come from the node its id belongs to",
    ))
}

/// Refuses a node an operator keeps from rebooting ([`crate::nodes::OPT_OUT_ANNOTATION`]).
pub(super) fn check_opt_out(node: &NodeView) -> Result<(), Refusal> {
    let Some(why) = &node.opted_out else {
        return Ok(());
    };
    let why = if why.is_empty() {
        "no reason given"
    } else {
        why
    };
    Err(Refusal::new(
        Kind::NodeOptedOut,
        format!(
            "{} must not reboot for now ({}: {why}); an operator removes the annotation to let it",
            node.name,
            crate::nodes::OPT_OUT_ANNOTATION
        ),
    ))
}
