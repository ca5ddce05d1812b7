//! ConfigMaps and Secrets: their data, and the watches that see their digests. A Secret's
//! data is kept whole, as `get_secret` serves it; a ConfigMap's only as its digest.

use std::collections::BTreeMap;

use cluster_api::{ConfigKind, ConfigObject, Error, Secret, WatchEvent, config_digest};
use tokio::sync::mpsc::UnboundedSender;

use super::{State, Watchers};

impl State {
    /// Creates or replaces a ConfigMap's or Secret's data; the stored object.
    pub(crate) fn put_config(
        &mut self,
        kind: ConfigKind,
        namespace: &str,
        name: &str,
        data: BTreeMap<String, String>,
    ) -> ConfigObject {
        let data = data.into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
        self.put_config_bytes(kind, namespace, name, data)
    }

    fn put_config_bytes(
        &mut self,
        kind: ConfigKind,
        namespace: &str,
        name: &str,
        data: BTreeMap<String, Vec<u8>>,
    ) -> ConfigObject {
        let object = ConfigObject {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
            resource_version: self.next_rv(),
            digest: config_digest(data.iter().map(|(k, v)| (k.as_str(), v.as_slice()))),
        };
        let key = (kind, namespace.to_string(), name.to_string());
        if kind == ConfigKind::Secret {
            let secret = Secret {
                namespace: namespace.to_string(),
                name: name.to_string(),
                resource_version: object.resource_version.clone(),
                labels: BTreeMap::new(),
                data,
            };
            self.secrets
                .insert((namespace.to_string(), name.to_string()), secret);
        }
        self.configs.insert(key, object.clone());
        self.notify_config(WatchEvent::Applied(object.clone()));
        object
    }

    /// Deletes a ConfigMap or Secret; whether it existed.
    pub(crate) fn delete_config(&mut self, kind: ConfigKind, namespace: &str, name: &str) -> bool {
        let key = (kind, namespace.to_string(), name.to_string());
        if kind == ConfigKind::Secret {
            self.secrets
                .remove(&(namespace.to_string(), name.to_string()));
        }
        match self.configs.remove(&key) {
            Some(gone) => {
                self.notify_config(WatchEvent::Deleted(gone));
                true
            }
            None => false,
        }
    }

    /// Creates a Secret; [`Error::AlreadyExists`] if the name is taken. Watches of the
    /// namespace's Secrets see its digest.
    pub(crate) fn create_secret(&mut self, secret: &Secret) -> Result<Secret, Error> {
        let key = (secret.namespace.clone(), secret.name.clone());
        if self.secrets.contains_key(&key) {
            return Err(Error::already_exists("secrets", &secret.name));
        }
        let object = self.put_config_bytes(
            ConfigKind::Secret,
            &secret.namespace,
            &secret.name,
            secret.data.clone(),
        );
        let stored = Secret {
            resource_version: object.resource_version,
            ..secret.clone()
        };
        self.secrets.insert(key, stored.clone());
        Ok(stored)
    }

    /// The ConfigMaps (or Secrets) of a namespace.
    pub(crate) fn list_configs(&self, namespace: &str, kind: ConfigKind) -> Vec<ConfigObject> {
        self.configs
            .values()
            .filter(|c| c.kind == kind && c.namespace == namespace)
            .cloned()
            .collect()
    }

    fn notify_config(&mut self, event: WatchEvent<ConfigObject>) {
        let (WatchEvent::Applied(o) | WatchEvent::Deleted(o)) = &event else {
            return;
        };
        let (namespace, kind) = (o.namespace.clone(), o.kind);
        self.watchers.configs.retain(|((ns, k), tx)| {
            if *ns == namespace && *k == kind {
                tx.send(Ok(event.clone())).is_ok()
            } else {
                !tx.is_closed()
            }
        });
    }
}

impl Watchers {
    pub(crate) fn add_configs(
        &mut self,
        namespace: &str,
        kind: ConfigKind,
        tx: UnboundedSender<cluster_api::Result<WatchEvent<ConfigObject>>>,
    ) {
        self.configs.push(((namespace.to_string(), kind), tx));
    }
}
