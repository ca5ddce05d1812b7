//! [`ClusterApi`] over the Kubernetes API: each operation as the request it makes.

use std::collections::BTreeMap;

use async_trait::async_trait;
use cluster_api::{
    ClusterApi, ConfigKind, ConfigObject, DisruptionBudget, Error, Event, EvictOptions,
    EvictionOutcome, LabelSelector, Lease, Node, NodePatch, ObjectRef, Pod, PodFilter, Result,
    Secret, WatchEvent, WatchStream, Workload, WorkloadFilter, WorkloadKind, WorkloadRef,
};
use futures::Stream;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::{Value, json};

use crate::client::throttled;
use crate::watch::{Pieces, Selection, watch_events};
use crate::{KubeCluster, convert, errors, slim};

macro_rules! with_workload_api {
    ($self:expr, $kind:expr, $namespace:expr, |$api:ident, $convert:ident| $body:expr) => {
        match $kind {
            WorkloadKind::Deployment => {
                let $api: Api<Deployment> = workload_api($self.client(), $namespace);
                let $convert = convert::deployment;
                $body
            }
            WorkloadKind::StatefulSet => {
                let $api: Api<StatefulSet> = workload_api($self.client(), $namespace);
                let $convert = convert::statefulset;
                $body
            }
            WorkloadKind::DaemonSet => {
                let $api: Api<DaemonSet> = workload_api($self.client(), $namespace);
                let $convert = convert::daemonset;
                $body
            }
        }
    };
}

pub(crate) fn boxed<T: Send + 'static>(
    s: impl Stream<Item = Result<WatchEvent<T>>> + Send + 'static,
) -> WatchStream<T> {
    Box::pin(s)
}

fn pod_params(filter: &PodFilter) -> (Option<String>, Option<String>) {
    let fields = filter.node.as_ref().map(|n| format!("spec.nodeName={n}"));
    let labels = filter
        .labels
        .as_ref()
        .filter(|s| !s.is_empty())
        .map(|s| s.to_string());
    (fields, labels)
}

fn list_params(fields: Option<&str>, labels: Option<&str>) -> ListParams {
    let mut lp = ListParams::default();
    if let Some(f) = fields {
        lp = lp.fields(f);
    }
    if let Some(l) = labels {
        lp = lp.labels(l);
    }
    lp
}

/// `{"k": "v"}` / `{"k": null}` for a merge patch.
fn merge_map(changes: &BTreeMap<String, Option<String>>) -> Value {
    Value::Object(
        changes
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_ref().map_or(Value::Null, |v| Value::String(v.clone())),
                )
            })
            .collect(),
    )
}

fn workload_api<K>(client: Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    }
}

#[async_trait]
impl ClusterApi for KubeCluster {
    async fn get_node(&self, name: &str) -> Result<Node> {
        let api: Api<slim::SlimNode> = Api::all(self.client());
        Ok(self.node(self.call(api.get(name)).await?))
    }

    async fn list_nodes(&self) -> Result<Vec<Node>> {
        self.all_nodes().await
    }

    async fn watch_nodes(&self) -> Result<WatchStream<Node>> {
        Ok(self.node_watch())
    }

    async fn patch_node(&self, name: &str, patch: &NodePatch) -> Result<Node> {
        let mut metadata = serde_json::Map::new();
        if let Some(rv) = &patch.resource_version {
            metadata.insert("resourceVersion".into(), json!(rv));
        }
        if !patch.annotations.is_empty() {
            metadata.insert("annotations".into(), merge_map(&patch.annotations));
        }
        if !patch.labels.is_empty() {
            metadata.insert("labels".into(), merge_map(&patch.labels));
        }
        let mut body = json!({ "metadata": metadata });
        if let Some(u) = patch.unschedulable {
            body["spec"] = json!({ "unschedulable": u });
        }
        let api: Api<slim::SlimNode> = Api::all(self.client());
        let written = self
            .call(api.patch(name, &PatchParams::default(), &Patch::Merge(&body)))
            .await?;
        Ok(self.node(written))
    }

    async fn list_pods(&self, filter: &PodFilter) -> Result<Vec<Pod>> {
        let (fields, labels) = pod_params(filter);
        let lp = list_params(fields.as_deref(), labels.as_deref());
        let list = self
            .call(self.pods(filter.namespace.as_deref()).list(&lp))
            .await?;
        Ok(list.items.into_iter().map(convert::pod).collect())
    }

    async fn watch_pods(&self, filter: &PodFilter) -> Result<WatchStream<Pod>> {
        let (fields, labels) = pod_params(filter);
        let wc = Selection::new(fields.as_deref(), labels.as_deref());
        Ok(boxed(watch_events(
            self.pods(filter.namespace.as_deref()),
            wc,
            Pieces::No,
            convert::pod,
        )))
    }

    async fn list_disruption_budgets(&self) -> Result<Vec<DisruptionBudget>> {
        let api: Api<PodDisruptionBudget> = Api::all(self.client());
        let list = self.call(api.list(&ListParams::default())).await?;
        Ok(list
            .items
            .into_iter()
            .map(convert::disruption_budget)
            .collect())
    }

    async fn evict_pod(
        &self,
        namespace: &str,
        name: &str,
        options: &EvictOptions,
    ) -> Result<EvictionOutcome> {
        // Written by hand: kube's `Api::evict` sends `delete_options` in snake case, which the
        // API server ignores, so a grace-period override would be silently dropped.
        let mut body = json!({
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        });
        if let Some(grace) = options.grace_period_seconds {
            body["deleteOptions"]["gracePeriodSeconds"] = json!(grace.max(0));
        }
        if let Some(uid) = &options.uid {
            body["deleteOptions"]["preconditions"] = json!({"uid": uid});
        }
        let request = http::Request::post(format!(
            "/api/v1/namespaces/{namespace}/pods/{name}/eviction"
        ))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.to_string().into_bytes())
        .map_err(|e| Error::invalid(format!("cannot build the eviction request: {e}")))?;
        let deadline = tokio::time::Instant::now() + self.inner.options.timeout;
        self.turn(&self.inner.limiter, deadline).await?;
        let client = self.client();
        match tokio::time::timeout_at(deadline, client.request::<kube::core::Status>(request)).await
        {
            Ok(result) => errors::eviction(result).map_err(|e| throttled(&self.inner.limiter, e)),
            Err(_) => Err(Error::unavailable(
                "the eviction did not get an answer in time",
            )),
        }
    }

    async fn get_lease(&self, namespace: &str, name: &str) -> Result<Lease> {
        Ok(convert::lease(
            self.call(self.leases(namespace).get(name)).await?,
        ))
    }

    async fn list_leases(&self, namespace: &str, selector: &LabelSelector) -> Result<Vec<Lease>> {
        let labels = (!selector.is_empty()).then(|| selector.to_string());
        let lp = list_params(None, labels.as_deref());
        let list = self.call(self.leases(namespace).list(&lp)).await?;
        Ok(list.items.into_iter().map(convert::lease).collect())
    }

    async fn watch_leases(
        &self,
        namespace: &str,
        selector: &LabelSelector,
    ) -> Result<WatchStream<Lease>> {
        let labels = (!selector.is_empty()).then(|| selector.to_string());
        let wc = Selection::new(None, labels.as_deref());
        Ok(boxed(watch_events(
            self.leases(namespace),
            wc,
            Pieces::No,
            convert::lease,
        )))
    }

    async fn watch_config(
        &self,
        namespace: &str,
        kind: ConfigKind,
    ) -> Result<WatchStream<ConfigObject>> {
        let wc = Selection::default();
        let client = self.client();
        Ok(match kind {
            ConfigKind::ConfigMap => boxed(watch_events(
                Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client, namespace),
                wc,
                Pieces::No,
                convert::config_map,
            )),
            ConfigKind::Secret => boxed(watch_events(
                Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client, namespace),
                wc,
                Pieces::No,
                convert::secret,
            )),
        })
    }

    async fn create_lease(&self, lease: &Lease) -> Result<Lease> {
        let mut object = convert::to_lease(lease);
        object.metadata.resource_version = None;
        let written = self
            .call(
                self.leases(&lease.namespace)
                    .create(&PostParams::default(), &object),
            )
            .await?;
        Ok(convert::lease(written))
    }

    async fn get_secret(&self, namespace: &str, name: &str) -> Result<Secret> {
        Ok(convert::secret_data(
            self.call(self.secrets(namespace).get(name)).await?,
        ))
    }

    async fn create_secret(&self, secret: &Secret) -> Result<Secret> {
        let written = self
            .call(
                self.secrets(&secret.namespace)
                    .create(&PostParams::default(), &convert::to_secret(secret)),
            )
            .await?;
        Ok(convert::secret_data(written))
    }

    async fn replace_lease(&self, lease: &Lease) -> Result<Lease> {
        if lease.resource_version.is_empty() {
            return Err(Error::invalid(format!(
                "leases.coordination.k8s.io \"{}\": a replace must carry the resourceVersion it was read at",
                lease.name
            )));
        }
        let object = convert::to_lease(lease);
        let written = self
            .call(self.leases(&lease.namespace).replace(
                &lease.name,
                &PostParams::default(),
                &object,
            ))
            .await?;
        Ok(convert::lease(written))
    }

    async fn delete_lease(
        &self,
        namespace: &str,
        name: &str,
        resource_version: Option<&str>,
    ) -> Result<()> {
        let dp = DeleteParams {
            preconditions: resource_version.map(|rv| Preconditions {
                resource_version: Some(rv.to_string()),
                uid: None,
            }),
            ..Default::default()
        };
        self.call(self.leases(namespace).delete(name, &dp)).await?;
        Ok(())
    }

    async fn get_workload(&self, w: &WorkloadRef) -> Result<Workload> {
        with_workload_api!(self, w.kind, Some(w.namespace.as_str()), |api, convert| {
            Ok(convert(self.call(api.get(&w.name)).await?))
        })
    }

    async fn list_workloads(&self, filter: &WorkloadFilter) -> Result<Vec<Workload>> {
        let fields = filter.name.as_ref().map(|n| format!("metadata.name={n}"));
        let lp = list_params(fields.as_deref(), None);
        with_workload_api!(
            self,
            filter.kind,
            filter.namespace.as_deref(),
            |api, convert| {
                Ok(self
                    .call(api.list(&lp))
                    .await?
                    .items
                    .into_iter()
                    .map(convert)
                    .collect())
            }
        )
    }

    async fn watch_workloads(&self, filter: &WorkloadFilter) -> Result<WatchStream<Workload>> {
        let fields = filter.name.as_ref().map(|n| format!("metadata.name={n}"));
        let wc = Selection::new(fields.as_deref(), None);
        with_workload_api!(
            self,
            filter.kind,
            filter.namespace.as_deref(),
            |api, convert| Ok(boxed(watch_events(api, wc, Pieces::No, convert)))
        )
    }

    async fn patch_template_annotations(
        &self,
        w: &WorkloadRef,
        annotations: &BTreeMap<String, Option<String>>,
    ) -> Result<Workload> {
        let body =
            json!({"spec": {"template": {"metadata": {"annotations": merge_map(annotations)}}}});
        with_workload_api!(self, w.kind, Some(w.namespace.as_str()), |api, convert| {
            Ok(convert(
                self.call(api.patch(&w.name, &PatchParams::default(), &Patch::Merge(&body)))
                    .await?,
            ))
        })
    }

    async fn record_event(&self, event: &Event) -> Result<()> {
        let now = jiff::Timestamp::now();
        let repeat = self.inner.series.lock().repeat(event);
        if let Some(((namespace, name), count)) = repeat {
            let patch = convert::series_patch(count, event.time.unwrap_or(now));
            let patched = self
                .call(self.events(&namespace).patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                ))
                .await;
            match patched {
                Ok(_) => return Ok(()),
                // Expired (Events live an hour): start a new series below.
                Err(Error::NotFound { .. }) => self.inner.series.lock().forget(event),
                Err(e) => return Err(e),
            }
        }
        let object = convert::to_event(event, now);
        let namespace = convert::event_namespace(&event.regarding);
        let created = self
            .call(
                self.events(&namespace)
                    .create(&PostParams::default(), &object),
            )
            .await?;
        if let Some(name) = created.metadata.name {
            self.inner.series.lock().started(event, (namespace, name));
        }
        Ok(())
    }

    async fn list_events(&self, regarding: &ObjectRef) -> Result<Vec<Event>> {
        let fields = format!(
            "involvedObject.kind={},involvedObject.name={}",
            regarding.kind, regarding.name
        );
        let lp = list_params(Some(&fields), None);
        let list = self
            .call(self.events(&convert::event_namespace(regarding)).list(&lp))
            .await?;
        let mut events: Vec<Event> = list.items.into_iter().map(convert::event).collect();
        events.sort_by_key(|e| e.time);
        Ok(events)
    }
}
