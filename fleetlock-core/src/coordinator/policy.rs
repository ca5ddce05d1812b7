//! The grant policy: whether a group may hand out a slot now, as a plain function of its
//! configuration, its stored state and the time.

use cluster_api::Timestamp;
use cluster_api::duration::humanize;
use jiff::SignedDuration;

use crate::config::{GroupConfig, RateNow};
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
    check_rate(group, config, state, now)?;
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

/// Refuses (`rate_limited`) a grant while the group's rate counts as many grants in the
/// window ending now as it allows.
fn check_rate(
    group: &str,
    config: &GroupConfig,
    state: &GroupState,
    now: Timestamp,
) -> Result<(), Refusal> {
    let Some(rate) = &config.rate else {
        return Ok(());
    };
    let RateNow { granted, next_at } = rate.at(&state.recent_grants, now);
    match next_at {
        None => Ok(()),
        Some(next) => Err(Refusal::new(
            Kind::RateLimited,
            format!(
                "group {group} granted {granted} reboot{} in the last {} (its rate: {}); the \
                 next can be granted at {next}",
                if granted == 1 { "" } else { "s" },
                humanize(rate.per),
                rate.describe(),
            ),
        )),
    }
}

/// `state` after a grant `now`: its recent grants recorded for the group's rate (and
/// forgotten without one).
pub(super) fn record_grant(config: &GroupConfig, state: &mut GroupState, now: Timestamp) {
    state.recent_grants = match &config.rate {
        Some(rate) => rate.record(&state.recent_grants, now),
        None => Vec::new(),
    };
}

pub(super) fn needs_tidying(view: &NodeView) -> bool {
    view.cordoned_by_us || view.state.as_deref().is_some_and(|s| s != "ready")
}

#[cfg(test)]
mod tests;
