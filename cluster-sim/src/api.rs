//! [`ClusterApi`] on the simulated cluster: each call through its counters and faults, then
//! the API server's side of it on the state.

use std::collections::BTreeMap;

use async_trait::async_trait;
use cluster_api::{
    ClusterApi, ConfigKind, ConfigObject, DisruptionBudget, Error, Event, EvictOptions,
    EvictionOutcome, LabelSelector, Lease, Node, NodePatch, ObjectRef, Pod, PodFilter, PodPhase,
    Result, Secret, Timestamp, WatchEvent, WatchStream, Workload, WorkloadFilter, WorkloadRef,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::audit::{Write, Writer};
use crate::state::{self, SimPod, State};
use crate::{
    Budget, BudgetStatus, EvictionRecord, Operation, SimCluster, lease_key, workload_not_found,
};

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

// === impl State: the API server's side of the calls ===

impl State {
    pub(crate) fn list_pods(&self, filter: &PodFilter) -> Vec<Pod> {
        match &filter.node {
            Some(node) => self
                .pods_on_node(node)
                .iter()
                .map(|k| &self.pods[k].pod)
                .filter(|p| filter.matches(p))
                .cloned()
                .collect(),
            None => self
                .pods
                .values()
                .map(|sp| &sp.pod)
                .filter(|p| filter.matches(p))
                .cloned()
                .collect(),
        }
    }

    pub(crate) fn list_leases(&self, namespace: &str, selector: &LabelSelector) -> Vec<Lease> {
        self.leases
            .range(lease_key(namespace, "")..)
            .take_while(|((ns, _), _)| ns == namespace)
            .filter(|(_, l)| selector.matches(&l.labels))
            .map(|(_, l)| l.clone())
            .collect()
    }

    pub(crate) fn list_workloads(&self, filter: &WorkloadFilter) -> Vec<Workload> {
        self.workloads
            .values()
            .map(|sw| &sw.w)
            .filter(|w| filter.matches(w))
            .cloned()
            .collect()
    }

    pub(crate) fn budget_status(&self, budget: &Budget) -> BudgetStatus {
        let matching: Vec<&SimPod> = self
            .pods
            .range((budget.namespace.clone(), String::new())..)
            .take_while(|((ns, _), _)| ns == &budget.namespace)
            .map(|(_, sp)| sp)
            .filter(|sp| budget.selector.matches(&sp.pod.labels))
            .collect();
        let healthy = matching
            .iter()
            .filter(|sp| sp.pod.ready && !sp.pod.is_terminating())
            .count() as i32;
        // Percentages and maxUnavailable count against the owners' desired scale.
        let mut owners: Vec<&WorkloadRef> =
            matching.iter().filter_map(|sp| sp.owner.as_ref()).collect();
        owners.sort();
        owners.dedup();
        let unowned = matching.iter().filter(|sp| sp.owner.is_none()).count() as i32;
        let scale = unowned
            + owners
                .iter()
                .filter_map(|o| self.workloads.get(o))
                .map(|sw| {
                    sw.w.replicas
                        .unwrap_or(sw.w.status.desired_number_scheduled)
                })
                .sum::<i32>();
        budget.status(matching.len() as i32, healthy, scale)
    }

    /// The Eviction subresource: budgets first, then graceful deletion.
    pub(crate) fn evict(
        &mut self,
        namespace: &str,
        name: &str,
        options: &EvictOptions,
    ) -> EvictionOutcome {
        let key = (namespace.to_string(), name.to_string());
        let Some(sp) = self.pods.get(&key) else {
            return EvictionOutcome::Gone;
        };
        let pod = &sp.pod;
        // `deleteOptions.preconditions.uid`: the pod asked for is gone; the one by its name
        // now is another (the API server answers 409; see `ClusterApi::evict_pod`).
        if options.uid.as_ref().is_some_and(|uid| uid != &pod.uid) {
            return EvictionOutcome::Gone;
        }
        // Pods that are not running, or already going, disrupt nothing more.
        let ignores_budgets = pod.is_terminating()
            || matches!(
                pod.phase,
                PodPhase::Pending | PodPhase::Succeeded | PodPhase::Failed
            );
        if !ignores_budgets {
            let budgets: Vec<&Budget> = self
                .budgets
                .values()
                .filter(|b| b.namespace == namespace && b.selector.matches(&pod.labels))
                .collect();
            match budgets.as_slice() {
                [] => {}
                [budget] => {
                    let status = self.budget_status(budget);
                    // An unready pod may go without spending a disruption while the budget
                    // is satisfied and wants healthy pods at all (IfHealthyBudget); otherwise
                    // it needs a disruption like any other pod.
                    let free = !pod.ready
                        && (budget.always_allow_unhealthy
                            || status.desired_healthy > 0
                                && status.current_healthy >= status.desired_healthy);
                    let allowed = free || status.disruptions_allowed > 0;
                    if !allowed {
                        return EvictionOutcome::Blocked {
                            message: format!(
                                "Cannot evict pod as it would violate the pod's disruption \
                                 budget. The disruption budget {} needs {} healthy pods and has \
                                 {} currently",
                                budget.name, status.desired_healthy, status.current_healthy
                            ),
                            retry_after: None,
                        };
                    }
                }
                _ => {
                    return EvictionOutcome::Failed {
                        message: "This pod has more than one PodDisruptionBudget, which the \
                                  eviction subresource does not support."
                            .into(),
                    };
                }
            }
        }
        self.terminate_pod(&key, options.grace_period_seconds);
        EvictionOutcome::Evicted
    }
}
