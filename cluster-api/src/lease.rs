//! Leases, and [`modify`]: the one read-change-write loop by which every lock, run and
//! schedule Lease is written with compare-and-swap.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::{ClusterApi, Error};

/// How many times [`modify`] reads afresh after losing a race before giving up.
pub const CAS_ATTEMPTS: usize = 32;

/// A `coordination.k8s.io/v1` Lease: the cluster-side lock every replica agrees on.
///
/// Updates go through [`ClusterApi::replace_lease`] (best through [`modify`]), which
/// is a compare-and-swap on [`resource_version`](Lease::resource_version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.resourceVersion`; empty for a Lease not yet created.
    #[serde(default)]
    pub resource_version: String,
    /// `metadata.uid`, set by the API server at creation; empty for a Lease not yet created.
    /// Events about the Lease carry it (`kubectl describe lease` shows only those).
    #[serde(default)]
    pub uid: String,
    /// `metadata.labels`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`; where a lock keeps what does not fit the Lease spec.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// `spec.holderIdentity`.
    #[serde(default)]
    pub holder_identity: Option<String>,
    /// `spec.leaseDurationSeconds`.
    #[serde(default)]
    pub lease_duration_seconds: Option<i32>,
    /// `spec.acquireTime`.
    #[serde(default)]
    pub acquire_time: Option<Timestamp>,
    /// `spec.renewTime`.
    #[serde(default)]
    pub renew_time: Option<Timestamp>,
    /// `spec.leaseTransitions`.
    #[serde(default)]
    pub lease_transitions: Option<i32>,
}

// === impl Lease ===

impl Lease {
    /// An empty, unheld Lease that does not exist in the cluster yet.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Lease {
            namespace: namespace.into(),
            name: name.into(),
            resource_version: String::new(),
            uid: String::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            holder_identity: None,
            lease_duration_seconds: None,
            acquire_time: None,
            renew_time: None,
            lease_transitions: None,
        }
    }

    /// With one more label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The holder, treating an empty string as nobody (client-go writes `""` on release).
    pub fn holder(&self) -> Option<&str> {
        self.holder_identity.as_deref().filter(|h| !h.is_empty())
    }

    /// When the lease runs out: the last renewal (or acquisition) plus its duration.
    pub fn expires_at(&self) -> Option<Timestamp> {
        let since = self.renew_time.or(self.acquire_time)?;
        let duration = SignedDuration::from_secs(i64::from(self.lease_duration_seconds?));
        since.checked_add(duration).ok()
    }

    /// Whether the lease is held by someone and has not expired at `now`.
    ///
    /// A held lease without a duration never expires.
    pub fn is_held_at(&self, now: Timestamp) -> bool {
        if self.holder().is_none() {
            return false;
        }
        match (self.lease_duration_seconds, self.expires_at()) {
            (None, _) => true,
            (Some(_), Some(at)) => now < at,
            (Some(_), None) => true,
        }
    }
}

/// What a [`modify`] decides, having read the Lease: `W` goes with a write, `K` answers
/// when nothing is written.
// Built and taken apart at once, never stored: boxing the Lease would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Decision<W, K> {
    /// Write this Lease: create it if none was read, replace the one read otherwise.
    Write(Lease, W),
    /// Write nothing; answer this.
    Keep(K),
}

/// What a [`modify`] did.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Modified<W, K> {
    /// It wrote; the Lease as the API server stored it, and what went with the write.
    Written(Lease, W),
    /// It decided not to write.
    Kept(K),
}

/// Why a [`modify`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModifyError {
    /// The Lease could not be read.
    #[error("reading Lease {namespace}/{name}: {source}")]
    Read {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// What the API said.
        source: Error,
    },
    /// The write failed other than by losing a race. If `source` is
    /// [`Error::Unavailable`], the write may have landed all the same (its answer was lost).
    #[error("writing Lease {namespace}/{name}: {source}")]
    Write {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// What the API said.
        source: Error,
    },
    /// Every attempt lost a race with another writer.
    #[error("Lease {namespace}/{name} kept changing; try again")]
    Contended {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
}

impl From<ModifyError> for Error {
    /// The API's own error for a failed read or write; a lost race is a transient
    /// unavailability (asking again may succeed).
    fn from(e: ModifyError) -> Self {
        match e {
            ModifyError::Read { source, .. } | ModifyError::Write { source, .. } => source,
            contended @ ModifyError::Contended { .. } => Error::unavailable(contended.to_string()),
        }
    }
}

/// Reads a Lease (`None` if there is none), lets `decide` say what to write, and writes it with
/// compare-and-swap: created if it was not there, replaced at the version read otherwise.
/// When another writer got there first, it reads afresh and asks `decide` again.
///
/// `decide` may run several times; it must decide from the Lease it is given, not from
/// anything an earlier run saw.
pub async fn modify<W, K>(
    api: &dyn ClusterApi,
    namespace: &str,
    name: &str,
    mut decide: impl FnMut(Option<Lease>) -> Decision<W, K>,
) -> Result<Modified<W, K>, ModifyError> {
    for _ in 0..CAS_ATTEMPTS {
        let current = match api.get_lease(namespace, name).await {
            Ok(lease) => Some(lease),
            Err(Error::NotFound { .. }) => None,
            Err(source) => {
                return Err(ModifyError::Read {
                    namespace: namespace.into(),
                    name: name.into(),
                    source,
                });
            }
        };
        let existed = current.is_some();
        let (lease, answer) = match decide(current) {
            Decision::Keep(answer) => return Ok(Modified::Kept(answer)),
            Decision::Write(lease, answer) => (lease, answer),
        };
        let written = if existed {
            api.replace_lease(&lease).await
        } else {
            api.create_lease(&lease).await
        };
        match written {
            Ok(lease) => return Ok(Modified::Written(lease, answer)),
            Err(Error::Conflict { .. } | Error::AlreadyExists { .. }) => continue,
            Err(source) => {
                return Err(ModifyError::Write {
                    namespace: namespace.into(),
                    name: name.into(),
                    source,
                });
            }
        }
    }
    Err(ModifyError::Contended {
        namespace: namespace.into(),
        name: name.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_follows_renewal() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut lease = Lease::new("ns", "l");
        assert!(!lease.is_held_at(t0), "nobody holds an empty lease");
        lease.holder_identity = Some("a".into());
        lease.lease_duration_seconds = Some(30);
        lease.acquire_time = Some(t0);
        assert!(lease.is_held_at(t0 + SignedDuration::from_secs(29)));
        assert!(!lease.is_held_at(t0 + SignedDuration::from_secs(30)));
        lease.renew_time = Some(t0 + SignedDuration::from_secs(20));
        assert!(lease.is_held_at(t0 + SignedDuration::from_secs(49)));
        lease.holder_identity = Some(String::new());
        assert!(!lease.is_held_at(t0), "an empty holder is nobody");
    }
}
