//! [`ClusterApi`] on the simulated cluster: each call through its counters and faults, then
//! the API server's side of it on the state (`server.rs`).

mod server;

use std::collections::BTreeMap;

use async_trait::async_trait;
use cluster_api::{
    ClusterApi, ConfigKind, ConfigObject, DisruptionBudget, Error, Event, EvictOptions,
    EvictionOutcome, LabelSelector, Lease, Node, NodePatch, ObjectRef, Pod, PodFilter, Result,
    Secret, Timestamp, WatchEvent, WatchStream, Workload, WorkloadFilter, WorkloadRef,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::audit::{Write, Writer};
use crate::state;
use crate::{EvictionRecord, Operation, SimCluster, lease_key, workload_not_found};

fn stream<T: Send + 'static>(rx: mpsc::UnboundedReceiver<Result<WatchEvent<T>>>) -> WatchStream<T> {
    Box::pin(UnboundedReceiverStream::new(rx))
}

impl cluster_api::Clock for SimCluster {
    fn now(&self) -> Timestamp {
        SimCluster::now(self)
    }
}

#[async_trait]
impl ClusterApi for SimCluster {
    async fn get_node(&self, name: &str) -> Result<Node> {
        self.enter(Operation::GetNode).await?;
        self.node(name)
            .ok_or_else(|| Error::not_found("nodes", name))
    }

    async fn list_nodes(&self) -> Result<Vec<Node>> {
        self.enter(Operation::ListNodes).await?;
        Ok(self.nodes())
    }

    async fn watch_nodes(&self) -> Result<WatchStream<Node>> {
        self.enter(Operation::WatchNodes).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.with(|st| {
            let all = st.nodes.values().cloned().collect();
            let _ = tx.send(Ok(WatchEvent::Restarted(all)));
            st.watchers.add_nodes(tx);
        });
        Ok(self.view.deliver(Operation::WatchNodes, None, stream(rx)))
    }

    async fn patch_node(&self, name: &str, patch: &NodePatch) -> Result<Node> {
        self.enter(Operation::PatchNode).await?;
        let result = self.with(|st| {
            let node = st
                .nodes
                .get(name)
                .ok_or_else(|| Error::not_found("nodes", name))?;
            if let Some(rv) = &patch.resource_version
                && rv != &node.resource_version
            {
                return Err(Error::conflict("nodes", name));
            }
            let mut patched = node.clone();
            patch.apply_to(&mut patched);
            state::validate_annotations("Node", name, &patched.annotations)?;
            if &patched == node {
                // The API server does not bump the version for a patch that changes nothing.
                return Ok(patched);
            }
            let before = node.clone();
            let stored = st.put_node(patched);
            st.audit(&Write::Node {
                before: &before,
                after: &stored,
                by: Writer::Client,
            });
            Ok(stored)
        });
        self.leave(Operation::PatchNode, result)
    }

    async fn list_pods(&self, filter: &PodFilter) -> Result<Vec<Pod>> {
        self.enter(Operation::ListPods).await?;
        Ok(self.with(|st| st.list_pods(filter)))
    }

    async fn watch_pods(&self, filter: &PodFilter) -> Result<WatchStream<Pod>> {
        self.enter(Operation::WatchPods).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.with(|st| {
            let _ = tx.send(Ok(WatchEvent::Restarted(st.list_pods(filter))));
            st.watchers.add_pods(filter.clone(), tx);
        });
        Ok(self.view.deliver(Operation::WatchPods, None, stream(rx)))
    }

    async fn list_disruption_budgets(&self) -> Result<Vec<DisruptionBudget>> {
        self.enter(Operation::ListBudgets).await?;
        Ok(self.with(|st| {
            st.budgets
                .values()
                .map(|b| {
                    let status = st.budget_status(b);
                    DisruptionBudget {
                        namespace: b.namespace.clone(),
                        name: b.name.clone(),
                        selector: Some(b.selector.clone()),
                        expected_pods: status.expected_pods,
                        desired_healthy: status.desired_healthy,
                        current_healthy: status.current_healthy,
                        disruptions_allowed: status.disruptions_allowed,
                        always_allow_unhealthy: b.always_allow_unhealthy,
                    }
                })
                .collect()
        }))
    }

    async fn evict_pod(
        &self,
        namespace: &str,
        name: &str,
        options: &EvictOptions,
    ) -> Result<EvictionOutcome> {
        self.with(|st| {
            if st.auditors.is_empty() {
                return;
            }
            // A uid precondition that names another pod than the one of that name now asks
            // for a pod that is gone: it can evict nothing, on no node.
            let node = st
                .pods
                .get(&lease_key(namespace, name))
                .filter(|sp| options.uid.as_ref().is_none_or(|uid| uid == &sp.pod.uid))
                .and_then(|sp| sp.pod.node_name.clone());
            st.audit(&Write::EvictionRequested {
                namespace,
                name,
                node: node.as_deref(),
            });
        });
        self.enter(Operation::EvictPod).await?;
        let outcome = self.with(|st| {
            let pod = st
                .pods
                .get(&lease_key(namespace, name))
                .map(|sp| (sp.pod.uid.clone(), sp.pod.node_name.clone()));
            let outcome = st.evict(namespace, name, options);
            let (uid, node) = pod.map_or((None, None), |(uid, node)| (Some(uid), node));
            st.record_eviction(EvictionRecord {
                at: st.wall(),
                namespace: namespace.to_string(),
                name: name.to_string(),
                uid,
                node,
                outcome: outcome.clone(),
            });
            outcome
        });
        self.leave(Operation::EvictPod, Ok(outcome))
    }

    async fn get_lease(&self, namespace: &str, name: &str) -> Result<Lease> {
        self.enter(Operation::GetLease).await?;
        self.lease(namespace, name)
            .ok_or_else(|| Error::not_found("leases.coordination.k8s.io", name))
    }

    async fn list_leases(&self, namespace: &str, selector: &LabelSelector) -> Result<Vec<Lease>> {
        self.enter(Operation::ListLeases).await?;
        Ok(self.with(|st| st.list_leases(namespace, selector)))
    }

    async fn watch_leases(
        &self,
        namespace: &str,
        selector: &LabelSelector,
    ) -> Result<WatchStream<Lease>> {
        self.enter(Operation::WatchLeases).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.with(|st| {
            let current = st.list_leases(namespace, selector);
            let _ = tx.send(Ok(WatchEvent::Restarted(current)));
            st.watchers
                .add_leases((namespace.to_string(), selector.clone()), tx);
        });
        Ok(self
            .view
            .deliver(Operation::WatchLeases, Some(selector), stream(rx)))
    }

    async fn watch_config(
        &self,
        namespace: &str,
        kind: ConfigKind,
    ) -> Result<WatchStream<ConfigObject>> {
        self.enter(Operation::WatchConfig).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.with(|st| {
            let _ = tx.send(Ok(WatchEvent::Restarted(st.list_configs(namespace, kind))));
            st.watchers.add_configs(namespace, kind, tx);
        });
        Ok(self.view.deliver(Operation::WatchConfig, None, stream(rx)))
    }

    async fn get_secret(&self, namespace: &str, name: &str) -> Result<Secret> {
        self.enter(Operation::GetSecret).await?;
        let found = self.with(|st| {
            st.secrets
                .get(&(namespace.to_string(), name.to_string()))
                .cloned()
        });
        self.leave(
            Operation::GetSecret,
            found.ok_or_else(|| Error::not_found("secrets", name)),
        )
    }

    async fn create_secret(&self, secret: &Secret) -> Result<Secret> {
        self.enter(Operation::CreateSecret).await?;
        cluster_api::validate_name(&secret.name).map_err(|e| Error::invalid(e.to_string()))?;
        let result = self.with(|st| st.create_secret(secret));
        self.leave(Operation::CreateSecret, result)
    }

    async fn create_lease(&self, lease: &Lease) -> Result<Lease> {
        self.enter(Operation::CreateLease).await?;
        cluster_api::validate_name(&lease.name).map_err(|e| Error::invalid(e.to_string()))?;
        let result = state::validate_annotations(
            "Lease.coordination.k8s.io",
            &lease.name,
            &lease.annotations,
        )
        .and_then(|()| {
            self.with(|st| {
                let key = lease_key(&lease.namespace, &lease.name);
                if st.leases.contains_key(&key) {
                    return Err(Error::already_exists(
                        "leases.coordination.k8s.io",
                        &lease.name,
                    ));
                }
                Ok(st.put_lease(lease.clone()))
            })
        });
        self.leave(Operation::CreateLease, result)
    }

    async fn replace_lease(&self, lease: &Lease) -> Result<Lease> {
        self.enter(Operation::ReplaceLease).await?;
        if lease.resource_version.is_empty() {
            return Err(Error::invalid(format!(
                "leases.coordination.k8s.io \"{}\": a replace must carry the resourceVersion it \
                 was read at",
                lease.name
            )));
        }
        state::validate_annotations("Lease.coordination.k8s.io", &lease.name, &lease.annotations)?;
        let result = self.with(|st| {
            let key = lease_key(&lease.namespace, &lease.name);
            let current = st
                .leases
                .get(&key)
                .ok_or_else(|| Error::not_found("leases.coordination.k8s.io", &lease.name))?;
            if current.resource_version != lease.resource_version {
                return Err(Error::conflict("leases.coordination.k8s.io", &lease.name));
            }
            Ok(st.put_lease(lease.clone()))
        });
        self.leave(Operation::ReplaceLease, result)
    }

    async fn delete_lease(
        &self,
        namespace: &str,
        name: &str,
        resource_version: Option<&str>,
    ) -> Result<()> {
        self.enter(Operation::DeleteLease).await?;
        let result = self.with(|st| {
            let key = lease_key(namespace, name);
            let current = st
                .leases
                .get(&key)
                .ok_or_else(|| Error::not_found("leases.coordination.k8s.io", name))?;
            if let Some(rv) = resource_version
                && rv != current.resource_version
            {
                return Err(Error::Conflict {
                    message: format!(
                        "Operation cannot be fulfilled on Lease.coordination.k8s.io \"{name}\": \
                         the ResourceVersion in the precondition ({rv}) does not match the \
                         ResourceVersion in record ({}). The object might have been modified",
                        current.resource_version
                    ),
                });
            }
            st.remove_lease(&key);
            Ok(())
        });
        self.leave(Operation::DeleteLease, result)
    }

    async fn get_workload(&self, workload: &WorkloadRef) -> Result<Workload> {
        self.enter(Operation::GetWorkload).await?;
        self.workload(workload)
            .ok_or_else(|| workload_not_found(workload))
    }

    async fn list_workloads(&self, filter: &WorkloadFilter) -> Result<Vec<Workload>> {
        self.enter(Operation::ListWorkloads).await?;
        Ok(self.with(|st| st.list_workloads(filter)))
    }

    async fn watch_workloads(&self, filter: &WorkloadFilter) -> Result<WatchStream<Workload>> {
        self.enter(Operation::WatchWorkloads).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.with(|st| {
            let _ = tx.send(Ok(WatchEvent::Restarted(st.list_workloads(filter))));
            st.watchers.add_workloads(filter.clone(), tx);
        });
        Ok(self
            .view
            .deliver(Operation::WatchWorkloads, None, stream(rx)))
    }

    async fn patch_template_annotations(
        &self,
        workload: &WorkloadRef,
        annotations: &BTreeMap<String, Option<String>>,
    ) -> Result<Workload> {
        self.with(|st| {
            st.audit(&Write::WorkloadPatchRequested {
                workload,
                changes: annotations,
            })
        });
        self.enter(Operation::PatchWorkload).await?;
        let result = self.with(|st| {
            let sw = st
                .workloads
                .get(workload)
                .ok_or_else(|| workload_not_found(workload))?;
            let mut w = sw.w.clone();
            cluster_api::apply_changes(&mut w.template_annotations, annotations);
            if w.template_annotations == sw.w.template_annotations {
                return Ok(w);
            }
            w.generation += 1;
            let before = sw.w.clone();
            st.put_workload(w);
            st.audit(&Write::Workload {
                before: &before,
                after: &st.workloads[workload].w,
            });
            let delay = st.config.controller_delay;
            st.schedule(
                delay,
                state::Timer::Sync {
                    workload: workload.clone(),
                },
            );
            Ok(st.workloads[workload].w.clone())
        });
        self.leave(Operation::PatchWorkload, result)
    }

    async fn record_event(&self, event: &Event) -> Result<()> {
        self.enter(Operation::RecordEvent).await?;
        if event.reason.is_empty() {
            return Err(Error::invalid("Event: reason: Required value"));
        }
        // core/v1 validation of an Event with an eventTime (every Event written here).
        if event.note.len() > cluster_api::NOTE_LIMIT {
            return Err(state::note_too_long(&format!("{}.", event.regarding.name)));
        }
        self.with(|st| st.push_event(event.clone()));
        self.leave(Operation::RecordEvent, Ok(()))
    }

    async fn list_events(&self, regarding: &ObjectRef) -> Result<Vec<Event>> {
        self.enter(Operation::ListEvents).await?;
        Ok(self.with(|st| {
            st.events
                .iter()
                .map(|(_, e)| e)
                .filter(|e| e.regarding.names_same(regarding))
                .cloned()
                .collect()
        }))
    }
}
