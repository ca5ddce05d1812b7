//! Secrets the service keeps for itself (the key its Events are marked with), read and
//! created whole; unlike the digests of [`ConfigObject`](crate::ConfigObject), the data is
//! here in full.

use std::collections::BTreeMap;

/// A core/v1 Secret of type `Opaque`: its name and its (decoded) `data`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.resourceVersion`; empty for a Secret not yet created.
    pub resource_version: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `data`, decoded: the bytes of each entry.
    pub data: BTreeMap<String, Vec<u8>>,
}

// === impl Secret ===

impl Secret {
    /// An empty Secret that does not exist in the cluster yet.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Secret {
            namespace: namespace.into(),
            name: name.into(),
            resource_version: String::new(),
            labels: BTreeMap::new(),
            data: BTreeMap::new(),
        }
    }

    /// With this entry in its data.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.data.insert(key.into(), value.into());
        self
    }
}

/// Names the Secret and its data's keys, never the data: a Secret logged or shown in a test
/// failure gives nothing away.
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("resource_version", &self.resource_version)
            .field("labels", &self.labels)
            .field("data", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}
