//! A group's rate ([`RateLimit`]): how many grants a sliding window allows, and the plain
//! arithmetic over the grant times its Lease keeps.

use std::time::Duration;

use cluster_api::Timestamp;
use jiff::SignedDuration;
use serde::Deserialize;

use cluster_api::duration::duration;

/// A group's rate: at most `reboots` grants within any `per`, counted in the group's Lease
/// (`restart-manager.io/recent-grants`) so that every replica, and one started since, sees
/// the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    /// How many grants the window allows: 1 to [`MAX_RATE_REBOOTS`].
    pub reboots: u32,
    /// The sliding window's length (`1h`, `24h`): positive.
    #[serde(deserialize_with = "duration")]
    pub per: Duration,
}

/// The most grants a [`RateLimit`] may count: each is a timestamp kept in the group's Lease.
pub const MAX_RATE_REBOOTS: u32 = 1000;

/// Where a group stands against its rate at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateNow {
    /// Grants within the window that ends now.
    pub granted: u32,
    /// When the next grant becomes possible, if the window is full now.
    pub next_at: Option<Timestamp>,
}

// === impl RateLimit ===

impl RateLimit {
    /// What makes this rate unusable, in words naming the field.
    pub(super) fn problem(&self) -> Option<String> {
        if self.reboots == 0 {
            return Some(
                "rate.reboots must be at least 1 (use paused: true to stop reboots)".into(),
            );
        }
        if self.reboots > MAX_RATE_REBOOTS {
            return Some(format!(
                "rate.reboots must be at most {MAX_RATE_REBOOTS} (each grant is recorded in the \
                 group's Lease)"
            ));
        }
        if self.per.is_zero() {
            return Some("rate.per must be positive (like 1h or 24h)".into());
        }
        None
    }

    fn window(&self) -> SignedDuration {
        SignedDuration::try_from(self.per).unwrap_or(SignedDuration::MAX)
    }

    /// Whether a grant made `at` still counts `now`: it does for `per` after it (a grant at
    /// 13:05 counts until 14:05 under `per: 1h`, and no longer at 14:05).
    fn counts(&self, at: Timestamp, now: Timestamp) -> bool {
        at.checked_add(self.window()).is_ok_and(|end| now < end) || at > now
    }

    /// Where a group whose recent grants are `grants` (oldest first) stands now.
    pub fn at(&self, grants: &[Timestamp], now: Timestamp) -> RateNow {
        let counted: Vec<Timestamp> = grants
            .iter()
            .copied()
            .filter(|at| self.counts(*at, now))
            .collect();
        let granted = u32::try_from(counted.len()).unwrap_or(u32::MAX);
        // Full: the next grant is possible once enough of those counted now have aged out
        // that fewer than `reboots` remain.
        let next_at = (granted >= self.reboots).then(|| {
            let oldest_that_must_go = counted[counted.len() - self.reboots as usize];
            oldest_that_must_go
                .checked_add(self.window())
                .unwrap_or(Timestamp::MAX)
        });
        RateNow { granted, next_at }
    }

    /// `grants` after a grant `now`: with it, without those that no longer count, the
    /// latest `reboots` at most, oldest first.
    pub fn record(&self, grants: &[Timestamp], now: Timestamp) -> Vec<Timestamp> {
        let mut kept: Vec<Timestamp> = grants
            .iter()
            .copied()
            .chain([now])
            .filter(|at| self.counts(*at, now))
            .collect();
        kept.sort_unstable();
        let extra = kept.len().saturating_sub(self.reboots as usize);
        kept.drain(..extra);
        kept
    }

    /// The rate in words: `3 reboots per 1h`.
    pub fn describe(&self) -> String {
        let plural = if self.reboots == 1 { "" } else { "s" };
        format!(
            "{} reboot{plural} per {}",
            self.reboots,
            cluster_api::duration::humanize(self.per)
        )
    }
}
