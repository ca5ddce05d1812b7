//! The grant policy: whether a group may hand out a slot now, as a plain function of its
//! configuration, its stored state and the time.

use std::time::Duration;

use cluster_api::Timestamp;
use jiff::SignedDuration;

use crate::config::GroupConfig;
use crate::group::GroupState;
use crate::nodes::NodeView;
use crate::protocol::{Kind, Refusal};
use crate::window::{describe, in_any_window, next_opening_text};

/// Whether a new slot may be granted in this group now.
pub(super) fn check_grant(
    group: &str,
    config: &GroupConfig,
    state: &GroupState,
    now: Timestamp,
) -> Result<(), Refusal> {
    if config.paused || state.paused {
        let by = if config.paused {
            "the configuration"
        } else {
            "an operator"
        };
        return Err(Refusal::new(
            Kind::GroupPaused,
            format!("reboots in group {group} are paused by {by}"),
        ));
    }
    if !in_any_window(&config.windows, now) {
        return Err(Refusal::new(
            Kind::OutsideWindow,
            format!(
                "group {group} reboots only in its windows ({}){}",
                describe(&config.windows),
                next_opening_text(&config.windows, now)
            ),
        ));
    }
    // The gap runs from the later of the last approval and the last return of a healed node.
    if let Some(last) = state.last_approval.max(state.last_return)
        && !config.min_gap.is_zero()
    {
        let gap = SignedDuration::try_from(config.min_gap).unwrap_or(SignedDuration::MAX);
        let ready_at = last.checked_add(gap).unwrap_or(last);
        if now < ready_at {
            let since = if state.last_return == Some(last) {
                "after the last node healed"
            } else {
                "between reboots"
            };
            return Err(Refusal::new(
                Kind::TooSoon,
                format!(
                    "group {group} waits {} {since}; the next may start at {ready_at}",
                    humanize(config.min_gap)
                ),
            ));
        }
    }
    if state.slots_taken() >= config.slots as usize {
        // The caller is not told which nodes hold the slots; the fleet view and the Lease
        // show it to those allowed to see.
        return Err(Refusal::new(
            Kind::LockHeld,
            format!(
                "all {} reboot slots of group {group} are taken; ask again later",
                config.slots
            ),
        ));
    }
    Ok(())
}

pub(super) fn needs_tidying(view: &NodeView) -> bool {
    view.cordoned_by_us || view.state.as_deref().is_some_and(|s| s != "ready")
}

pub(super) fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs / 3600, (secs % 3600) / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}
