//! Simulated workload controllers: rollouts move pods and status as Kubernetes moves them.

use std::collections::BTreeMap;
use std::time::Duration;

use cluster_api::{
    ClusterApi, Node, NodePatch, WatchEvent, WatchStream, Workload, WorkloadFilter, WorkloadRef,
};
use cluster_sim::{SimCluster, StrategyName, WorkloadSpec};
use futures::StreamExt;
use tokio::time::advance;

const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

fn cluster(nodes: usize) -> SimCluster {
    let sim = SimCluster::new();
    for i in 1..=nodes {
        sim.add_node(Node::new(format!("n{i}")));
    }
    sim
}

async fn restart(sim: &SimCluster, r: &WorkloadRef, at: &str) -> Workload {
    let patch = BTreeMap::from([(RESTARTED_AT.to_string(), Some(at.to_string()))]);
    sim.patch_template_annotations(r, &patch).await.unwrap()
}

/// `kubectl rollout status`'s verdict, written out here so the simulation is checked against
/// the rule rather than against itself.
fn rollout_done(w: &Workload) -> bool {
    let s = &w.status;
    if s.observed_generation.unwrap_or(0) < w.generation {
        return false;
    }
    match w.kind {
        cluster_api::WorkloadKind::Deployment => {
            let want = w.replicas.unwrap_or(1);
            s.updated_replicas >= want
                && s.replicas <= s.updated_replicas
                && s.available_replicas >= s.updated_replicas
        }
        cluster_api::WorkloadKind::StatefulSet => {
            s.ready_replicas >= w.replicas.unwrap_or(1) && s.update_revision == s.current_revision
        }
        cluster_api::WorkloadKind::DaemonSet => {
            s.updated_replicas >= s.desired_number_scheduled
                && s.available_replicas >= s.desired_number_scheduled
        }
    }
}

async fn watch(sim: &SimCluster, r: &WorkloadRef) -> WatchStream<Workload> {
    sim.watch_workloads(&WorkloadFilter::one(r)).await.unwrap()
}

/// Steps simulated time until the workload's rollout is done, returning every state the watch
/// showed on the way.
async fn run_rollout(mut watch: WatchStream<Workload>, limit: Duration) -> Vec<Workload> {
    let mut seen = Vec::new();
    let step = Duration::from_millis(500);
    let mut waited = Duration::ZERO;
    loop {
        while let Some(Some(event)) = futures::FutureExt::now_or_never(watch.next()) {
            match event.unwrap() {
                WatchEvent::Restarted(ws) => seen.extend(ws),
                WatchEvent::Applied(w) | WatchEvent::Listed(w) => seen.push(w),
                WatchEvent::Deleted(_) => panic!("workload deleted"),
            }
        }
        if seen.last().is_some_and(rollout_done) {
            return seen;
        }
        assert!(
            waited < limit,
            "rollout not done after {limit:?}: {:#?}",
            seen.last()
        );
        advance(step).await;
        waited += step;
    }
}

#[tokio::test(start_paused = true)]
async fn deployment_restart_rolls_within_surge_and_unavailability() {
    let sim = cluster(4);
    let spec = WorkloadSpec::deployment("shop", "web")
        .replicas(4)
        .pod_start_secs(5);
    let r = spec.reference();
    sim.add_workload(spec).unwrap();
    let before: Vec<String> = sim.pods_of(&r).into_iter().map(|p| p.name).collect();

    let watcher = watch(&sim, &r).await;
    let patched = restart(&sim, &r, "2026-01-05T09:00:00Z").await;
    assert_eq!(patched.generation, 2);
    assert_eq!(
        patched.status.observed_generation,
        Some(1),
        "the controller has not seen it yet"
    );
    assert!(!rollout_done(&patched));

    let seen = run_rollout(watcher, Duration::from_secs(120)).await;
    for w in &seen {
        let s = &w.status;
        // maxSurge 25% of 4 = 1, maxUnavailable 25% of 4 = 1.
        assert!(
            s.replicas <= 5,
            "never more than replicas + maxSurge: {s:?}"
        );
        assert!(
            s.available_replicas >= 3,
            "never below replicas - maxUnavailable: {s:?}"
        );
    }
    assert!(
        seen.iter()
            .any(|w| w.status.observed_generation == Some(2) && w.status.updated_replicas == 1)
    );
    let done = seen.last().unwrap();
    assert_eq!(done.status.updated_replicas, 4);
    let progressing = done.condition("Progressing").unwrap();
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_str()),
        ("True", "NewReplicaSetAvailable")
    );

    advance(Duration::from_secs(60)).await;
    let after: Vec<String> = sim.pods_of(&r).into_iter().map(|p| p.name).collect();
    assert_eq!(after.len(), 4, "old pods terminated and gone");
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "every pod was replaced"
    );
}

#[tokio::test(start_paused = true)]
async fn a_paused_deployment_observes_the_change_but_does_not_roll() {
    let sim = cluster(2);
    let spec = WorkloadSpec::deployment("shop", "web").replicas(2).paused();
    let r = spec.reference();
    sim.add_workload(spec).unwrap();
    let before: Vec<String> = sim.pods_of(&r).into_iter().map(|p| p.name).collect();

    restart(&sim, &r, "2026-01-05T09:00:00Z").await;
    advance(Duration::from_secs(60)).await;
    let w = sim.workload(&r).unwrap();
    assert_eq!(w.status.observed_generation, Some(w.generation));
    let progressing = w.condition("Progressing").unwrap();
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_str()),
        ("Unknown", "DeploymentPaused")
    );
    let now: Vec<String> = sim.pods_of(&r).into_iter().map(|p| p.name).collect();
    assert_eq!(now, before, "no pod was touched");

    let watcher = watch(&sim, &r).await;
    sim.set_paused(&r, false).unwrap();
    let seen = run_rollout(watcher, Duration::from_secs(120)).await;
    assert_eq!(seen.last().unwrap().status.updated_replicas, 2);
    advance(Duration::from_secs(60)).await;
    assert!(sim.pods_of(&r).iter().all(|p| !before.contains(&p.name)));
}

#[tokio::test(start_paused = true)]
async fn a_stalled_rollout_runs_into_its_progress_deadline() {
    let sim = cluster(3);
    let spec = WorkloadSpec::deployment("shop", "web")
        .replicas(3)
        .progress_deadline(120);
    let r = spec.reference();
    sim.add_workload(spec).unwrap();
    sim.stall_rollouts(&r, true).unwrap();

    restart(&sim, &r, "2026-01-05T09:00:00Z").await;
    advance(Duration::from_secs(119)).await;
    let w = sim.workload(&r).unwrap();
    assert_eq!(w.condition("Progressing").unwrap().status, "True", "{w:#?}");
    assert!(!rollout_done(&w));

    advance(Duration::from_secs(2)).await;
    let w = sim.workload(&r).unwrap();
    let progressing = w.condition("Progressing").unwrap();
    assert_eq!(progressing.status, "False");
    assert_eq!(progressing.reason, "ProgressDeadlineExceeded");
    assert!(
        progressing.message.contains("has timed out progressing"),
        "{}",
        progressing.message
    );
    // The old pods that were not replaced keep serving.
    assert!(w.status.available_replicas >= 2, "{:?}", w.status);
}

#[tokio::test(start_paused = true)]
async fn recreate_removes_every_old_pod_before_creating_new_ones() {
    let sim = cluster(2);
    let spec = WorkloadSpec::deployment("shop", "batch")
        .replicas(2)
        .strategy(StrategyName::Recreate)
        .grace_period(5);
    let r = spec.reference();
    sim.add_workload(spec).unwrap();
    let watcher = watch(&sim, &r).await;
    restart(&sim, &r, "2026-01-05T09:00:00Z").await;
    advance(Duration::from_millis(100)).await;
    let pods = sim.pods_of(&r);
    assert!(pods.iter().all(|p| p.is_terminating()), "{pods:#?}");
    advance(Duration::from_secs(5)).await;
    let pods = sim.pods_of(&r);
    assert_eq!(pods.len(), 2);
    assert!(pods.iter().all(|p| !p.is_terminating()));
    run_rollout(watcher, Duration::from_secs(60)).await;
}

#[tokio::test(start_paused = true)]
async fn statefulset_rolls_from_the_highest_ordinal_one_at_a_time() {
    let sim = cluster(3);
    let spec = WorkloadSpec::statefulset("db", "pg")
        .replicas(3)
        .grace_period(3)
        .pod_start_secs(4);
    let r = spec.reference();
    sim.add_workload(spec).unwrap();
    let uid = |name: &str| sim.pod("db", name).unwrap().uid;
    let original: Vec<String> = (0..3).map(|i| uid(&format!("pg-{i}"))).collect();

    let watcher = watch(&sim, &r).await;
    restart(&sim, &r, "2026-01-05T09:00:00Z").await;
    advance(Duration::from_millis(100)).await;
    let w = sim.workload(&r).unwrap();
    assert_ne!(w.status.update_revision, w.status.current_revision);
    assert!(sim.pod("db", "pg-2").unwrap().is_terminating());
    assert!(
        !sim.pod("db", "pg-1").unwrap().is_terminating(),
        "one at a time"
    );

    let seen = run_rollout(watcher, Duration::from_secs(120)).await;
    // Replaced in the order 2, 1, 0: each ordinal's new pod was ready before the next went.
    let terminating_order: Vec<i32> = seen
        .windows(2)
        .filter(|w| w[1].status.replicas < w[0].status.replicas)
        .map(|w| w[1].status.updated_replicas)
        .collect();
    assert_eq!(
        terminating_order,
        [0, 1, 2],
        "{:#?}",
        seen.iter().map(|w| &w.status).collect::<Vec<_>>()
    );
    for (i, old) in original.iter().enumerate() {
        assert_ne!(&uid(&format!("pg-{i}")), old, "pg-{i} was replaced");
    }
    let done = seen.last().unwrap();
    assert_eq!(done.status.update_revision, done.status.current_revision);
}

#[tokio::test(start_paused = true)]
async fn statefulset_partition_and_on_delete_hold_pods_back() {
    let sim = cluster(3);
    let spec = WorkloadSpec::statefulset("db", "pg")
        .replicas(3)
        .partition(2)
        .grace_period(1);
    let r = spec.reference();
    sim.add_workload(spec).unwrap();
    let before: Vec<String> = (0..3)
        .map(|i| sim.pod("db", &format!("pg-{i}")).unwrap().uid)
        .collect();
    restart(&sim, &r, "2026-01-05T09:00:00Z").await;
    advance(Duration::from_secs(60)).await;
    let w = sim.workload(&r).unwrap();
    assert_eq!(w.status.updated_replicas, 1, "only ordinals >= 2");
    assert_ne!(w.status.update_revision, w.status.current_revision);
    assert_eq!(sim.pod("db", "pg-0").unwrap().uid, before[0]);
    assert_ne!(sim.pod("db", "pg-2").unwrap().uid, before[2]);

    let spec = WorkloadSpec::statefulset("db", "manual")
        .replicas(2)
        .strategy(StrategyName::OnDelete)
        .grace_period(1);
    let r = spec.reference();
    sim.add_workload(spec).unwrap();
    restart(&sim, &r, "2026-01-05T09:00:00Z").await;
    advance(Duration::from_secs(60)).await;
    assert_eq!(
        sim.workload(&r).unwrap().status.updated_replicas,
        0,
        "OnDelete never rolls by itself"
    );
    sim.delete_pod("db", "manual-1");
    advance(Duration::from_secs(60)).await;
    assert_eq!(
        sim.workload(&r).unwrap().status.updated_replicas,
        1,
        "a deleted pod comes back new"
    );
}

#[tokio::test(start_paused = true)]
async fn daemonset_rolls_node_by_node() {
    let sim = cluster(4);
    let spec = WorkloadSpec::daemonset("kube-system", "agent")
        .grace_period(2)
        .pod_start_secs(3);
    let r = spec.reference();
    sim.add_workload(spec).unwrap();
    let w = sim.workload(&r).unwrap();
    assert_eq!(
        (
            w.status.desired_number_scheduled,
            w.status.available_replicas
        ),
        (4, 4)
    );

    let watcher = watch(&sim, &r).await;
    restart(&sim, &r, "2026-01-05T09:00:00Z").await;
    let seen = run_rollout(watcher, Duration::from_secs(120)).await;
    for w in &seen {
        assert!(
            w.status.available_replicas >= 3,
            "maxUnavailable 1: {:?}",
            w.status
        );
    }
    assert_eq!(seen.last().unwrap().status.updated_replicas, 4);

    // A new node gets its pod; the DaemonSet's desired count follows the fleet.
    sim.add_node(Node::new("n5"));
    assert_eq!(sim.pods_on("n5").len(), 1);
    assert_eq!(sim.workload(&r).unwrap().status.desired_number_scheduled, 5);
}

#[tokio::test(start_paused = true)]
async fn watches_deliver_every_change_in_order() {
    let sim = cluster(1);
    let mut nodes = sim.watch_nodes().await.unwrap();
    match nodes.next().await.unwrap().unwrap() {
        WatchEvent::Restarted(all) => assert_eq!(all.len(), 1),
        other => panic!("a watch starts with the current set, got {other:?}"),
    }
    for i in 0..20 {
        sim.patch_node("n1", &NodePatch::new().annotate("step", i.to_string()))
            .await
            .unwrap();
    }
    sim.remove_node("n1");
    let mut last_rv = 0u64;
    for i in 0..20 {
        match nodes.next().await.unwrap().unwrap() {
            WatchEvent::Applied(n) => {
                assert_eq!(n.annotations["step"], i.to_string());
                let rv: u64 = n.resource_version.parse().unwrap();
                assert!(rv > last_rv, "resource versions increase");
                last_rv = rv;
            }
            other => panic!("expected step {i}, got {other:?}"),
        }
    }
    assert!(
        matches!(nodes.next().await.unwrap().unwrap(), WatchEvent::Deleted(n) if n.name == "n1")
    );
}

#[tokio::test(start_paused = true)]
async fn pod_watches_follow_the_node_filter() {
    let sim = cluster(2);
    let mut on_n2 = sim
        .watch_pods(&cluster_api::PodFilter::on_node("n2"))
        .await
        .unwrap();
    assert!(
        matches!(on_n2.next().await.unwrap().unwrap(), WatchEvent::Restarted(p) if p.is_empty())
    );
    sim.edit_node("n1", |n| n.unschedulable = true).unwrap();
    sim.add_workload(
        WorkloadSpec::deployment("shop", "web")
            .replicas(1)
            .grace_period(1),
    )
    .unwrap();
    // Created unscheduled (not on n2 yet, so unseen), then bound to n2, then started.
    let bound = match on_n2.next().await.unwrap().unwrap() {
        WatchEvent::Applied(p) => p,
        other => panic!("{other:?}"),
    };
    assert_eq!(bound.node_name.as_deref(), Some("n2"));
    let started = match on_n2.next().await.unwrap().unwrap() {
        WatchEvent::Applied(p) => p,
        other => panic!("{other:?}"),
    };
    assert!(started.ready);
    sim.delete_pod("shop", &bound.name);
    assert!(
        matches!(on_n2.next().await.unwrap().unwrap(), WatchEvent::Applied(p) if p.is_terminating())
    );
    advance(Duration::from_secs(1)).await;
    // Its replacement is created and bound before the old one is gone: both are seen in order.
    let mut rest = Vec::new();
    while let Some(Some(e)) = futures::FutureExt::now_or_never(on_n2.next()) {
        rest.push(e.unwrap());
    }
    assert!(
        rest.iter()
            .any(|e| matches!(e, WatchEvent::Deleted(p) if p.name == bound.name)),
        "{rest:#?}"
    );
}

/// The real API server stores a RollingUpdate StatefulSet created without a partition with
/// `rollingUpdate.partition: 0` (kubectl then judges its rollout by the partitioned branch);
/// Deployments and DaemonSets have none.
#[tokio::test(start_paused = true)]
async fn a_statefulset_without_a_partition_has_partition_zero() {
    let sim = cluster(1);
    for spec in [
        WorkloadSpec::statefulset("db", "pg"),
        WorkloadSpec::deployment("db", "web"),
        WorkloadSpec::daemonset("db", "agent"),
    ] {
        sim.add_workload(spec).unwrap();
    }
    let strategy = |kind, name| {
        sim.workload(&WorkloadRef::new(kind, "db", name))
            .unwrap()
            .strategy
    };
    use cluster_api::{UpdateStrategy, WorkloadKind};
    assert_eq!(
        strategy(WorkloadKind::StatefulSet, "pg"),
        UpdateStrategy::RollingUpdate { partition: Some(0) }
    );
    for (kind, name) in [
        (WorkloadKind::Deployment, "web"),
        (WorkloadKind::DaemonSet, "agent"),
    ] {
        assert_eq!(
            strategy(kind, name),
            UpdateStrategy::RollingUpdate { partition: None }
        );
    }
}
