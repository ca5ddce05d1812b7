//! What the tests on a real cluster share: a scratch namespace, the group Lease's holders,
//! the approvals Events count, a FleetLock refusal.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Namespace};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

/// A namespace for one test, deleted when dropped.
pub struct Scratch {
    pub client: kube::Client,
    pub name: String,
}

impl Scratch {
    pub async fn new(client: &kube::Client, prefix: &str) -> Self {
        let name = format!("{prefix}-{}", std::process::id());
        let api: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        api.create(&PostParams::default(), &ns).await.unwrap();
        Scratch {
            client: client.clone(),
            name,
        }
    }

    pub async fn deployment(&self, name: &str, replicas: i32) {
        self.deployment_ready_for(name, replicas, 0).await;
    }

    /// A Deployment whose new pods count as available only after `min_ready_seconds`: its
    /// rollouts last at least that long even where pods start at once (KWOK's).
    pub async fn deployment_ready_for(&self, name: &str, replicas: i32, min_ready_seconds: i32) {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.name);
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "minReadySeconds": min_ready_seconds,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "terminationGracePeriodSeconds": 2,
                        "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}]
                    }
                }
            }
        }))
        .unwrap();
        api.create(&PostParams::default(), &d).await.unwrap();
    }

    pub async fn budget(&self, app: &str, min_available: i32) {
        let api: Api<PodDisruptionBudget> = Api::namespaced(self.client.clone(), &self.name);
        let b: PodDisruptionBudget = serde_json::from_value(json!({
            "metadata": {"name": app},
            "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": app}}}
        }))
        .unwrap();
        api.create(&PostParams::default(), &b).await.unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let (client, name) = (self.client.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                let api: Api<Namespace> = Api::all(client);
                let _ = api.delete(&name, &DeleteParams::default()).await;
            });
        })
        .join();
    }
}

/// The nodes holding the default group's slots (its Lease's holders annotation).
pub async fn slot_holders(client: &kube::Client, namespace: &str) -> Vec<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let Some(lease) = leases.get_opt("fleetlock-default").await.unwrap() else {
        return Vec::new();
    };
    let holders = lease
        .metadata
        .annotations
        .and_then(|a| a.get(fleetlock_core::group::HOLDERS_ANNOTATION).cloned())
        .unwrap_or_else(|| "[]".into());
    serde_json::from_str::<Vec<serde_json::Value>>(&holders)
        .unwrap()
        .iter()
        .map(|h| h["node"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// How many `RebootApproved` Events the cluster holds for `node` (counting repeats).
pub async fn approvals(client: &kube::Client, node: &str) -> i32 {
    let events: Api<CoreEvent> = Api::all(client.clone());
    events
        .list(
            &ListParams::default()
                .fields(&format!("involvedObject.name={node},reason=RebootApproved")),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            e.series
                .and_then(|s| s.count)
                .or(e.count)
                .unwrap_or(1)
                .max(1)
        })
        .sum()
}

/// Asserts `answer` is a FleetLock refusal of `kind`.
pub fn refused_as(answer: &restartctl::fleetlock::Answer, kind: &str, what: &str) {
    assert!(
        !answer.allowed() && answer.kind.as_deref() == Some(kind),
        "{what}: expected a {kind} refusal, got {answer:?}"
    );
}

/// A file deleted when dropped.
pub struct TempFile(pub std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
