//! The restart lock: one Lease per workload, shared by every replica and by `restartctl`.
//!
//! The Lease `restart.<kind>.<namespace>.<name>` in the server's namespace says who restarts
//! the workload (`spec.holderIdentity`), since when (`acquireTime`) and for how long
//! (`leaseDurationSeconds`, the seed's `FORCE_UNLOCK_SEC`). It is taken and released only by
//! compare-and-swap. Released, it keeps the last restart's who, why and outcome in its
//! annotations, so every replica shows the same "last restarted by".
//!
//! | file | what it holds |
//! |---|---|
//! | `lease.rs` | the names, [`LockInfo`], [`LastRestart`], reading them from a Lease |
//! | `take.rs` | [`take`] and [`take_observed`] |
//! | `write.rs` | [`annotate`], [`update`], [`release`] |

mod lease;
mod take;
mod write;

pub use lease::{
    BY_ANNOTATION, CONFIRM_ATTEMPTS, ENDED_ANNOTATION, LOCK_LABEL, LOCK_LABEL_VALUE, LastRestart,
    LockInfo, OUTCOME_ANNOTATION, Outcome, REASON_ANNOTATION, RECENT_IDS, RECENT_IDS_ANNOTATION,
    RESTART_ID_ANNOTATION, RESTARTED_AT_ANNOTATION, WORKLOAD_ANNOTATION, last_restart_of,
    lease_name, lease_selector, lock_of, took,
};
pub use take::{Take, TakeRequest, take, take_observed};
pub(crate) use write::read_back;
pub use write::{annotate, release, update};
