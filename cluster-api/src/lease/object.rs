//! The Lease object itself, apart from [`modify`](super::modify) which writes it through
//! [`ClusterApi`](crate::ClusterApi) (the trait names `Lease`, so the two live apart).

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// A `coordination.k8s.io/v1` Lease: the cluster-side lock every replica agrees on.
///
/// Updates go through [`ClusterApi::replace_lease`](crate::ClusterApi::replace_lease) (best
/// through [`modify`](super::modify)), which
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
