//! API errors onto the `cluster-api` error kinds, and eviction answers onto outcomes.

use std::time::Duration;

use cluster_api::{Error, EvictionOutcome};
use kube::core::Status;

/// Maps a kube error onto the kind the cores act on.
pub fn map(e: kube::Error) -> Error {
    match e {
        kube::Error::Api(status) => from_status(&status),
        kube::Error::HyperError(e) => {
            Error::unavailable(format!("the Kubernetes API could not be reached: {e}"))
        }
        kube::Error::Service(e) => {
            Error::unavailable(format!("the Kubernetes API could not be reached: {e}"))
        }
        kube::Error::SerdeError(e) => {
            Error::unavailable(format!("the Kubernetes API sent something unreadable: {e}"))
        }
        other => Error::unavailable(other.to_string()),
    }
}

/// Maps a watch failure: the list or watch request's own error, or the API server's `ERROR`
/// event (a `410 Gone` when the watch's resourceVersion is too old).
pub fn watch(e: kube::runtime::watcher::Error) -> Error {
    use kube::runtime::watcher::Error as W;
    match e {
        W::InitialListFailed(e) | W::WatchStartFailed(e) | W::WatchFailed(e) => map(e),
        W::WatchError(status) => match status.code {
            // Not "not found": the watch expired, and a new one lists afresh.
            410 => Error::unavailable(format!("the watch expired: {}", status.message)),
            _ => from_status(&status),
        },
        W::NoResourceVersion => {
            Error::unavailable("the API server sent a list without a resourceVersion")
        }
    }
}

/// Maps an API `Status` by its code (and, for 409, its reason).
pub fn from_status(s: &Status) -> Error {
    let message = if s.message.is_empty() {
        format!("{} {}", s.code, s.reason)
    } else {
        s.message.clone()
    };
    match s.code {
        404 => Error::NotFound { message },
        409 if s.reason == "AlreadyExists" => Error::AlreadyExists { message },
        409 => Error::Conflict { message },
        429 => Error::TooManyRequests {
            message,
            retry_after: retry_after(s),
        },
        401 | 403 => Error::Forbidden { message },
        400 | 405 | 406 | 415 | 422 => Error::Invalid { message },
        _ => Error::Unavailable { message },
    }
}

fn retry_after(s: &Status) -> Option<Duration> {
    s.details
        .as_ref()
        .map(|d| d.retry_after_seconds)
        .filter(|s| *s > 0)
        .map(|s| Duration::from_secs(u64::from(s)))
}

/// What an eviction's answer means to a drain.
pub fn eviction(result: Result<Status, kube::Error>) -> Result<EvictionOutcome, Error> {
    let status = match result {
        Ok(_) => return Ok(EvictionOutcome::Evicted),
        Err(kube::Error::Api(status)) => status,
        Err(e) => return Err(map(e)),
    };
    match status.code {
        404 => Ok(EvictionOutcome::Gone),
        // `deleteOptions.preconditions.uid` names a pod that is no longer there: the pod by
        // that name now is another one, which was not asked for. (kube-apiserver v1.37 says
        // "the UID in the precondition (..) does not match the UID in record (..)"; older
        // versions and the simulation said "Precondition failed: UID in precondition".)
        409 if status.message.contains("UID in the precondition")
            || status.message.contains("Precondition failed") =>
        {
            Ok(EvictionOutcome::Gone)
        }
        429 if is_budget_refusal(&status) => {
            // The PodDisruptionBudget's own words are in the causes.
            let causes: Vec<&str> = status
                .details
                .iter()
                .flat_map(|d| d.causes.iter())
                .map(|c| c.message.as_str())
                .filter(|m| !m.is_empty())
                .collect();
            let message = if causes.is_empty() {
                status.message.clone()
            } else {
                format!("{} {}", status.message, causes.join("; "))
            };
            Ok(EvictionOutcome::Blocked {
                message,
                retry_after: retry_after(&status),
            })
        }
        // Any other 429 is the API server (or a proxy) throttling us, not a budget.
        500 if status.message.contains("more than one PodDisruptionBudget") => {
            Ok(EvictionOutcome::Failed {
                message: status.message.clone(),
            })
        }
        _ => Err(from_status(&status)),
    }
}

/// Whether a 429 from the Eviction API comes from a PodDisruptionBudget: the API server
/// names the budget in a `DisruptionBudget` cause (and says so in its message).
fn is_budget_refusal(status: &Status) -> bool {
    status
        .details
        .iter()
        .flat_map(|d| d.causes.iter())
        .any(|c| c.reason == "DisruptionBudget")
        || status.message.contains("disruption budget")
}
