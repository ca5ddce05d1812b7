//! Reboots and deleted nodes, as the kubelet and the node controller show them.

use super::*;

/// A short reboot, as a real cluster shows it: Zincati is up (and says steady-state) before
/// the kubelet has reported, and the Node still shows the old bootID and Ready=True from
/// before, since the node controller's grace period has not run out.
#[tokio::test(start_paused = true)]
async fn a_short_reboot_shows_the_old_status_until_the_kubelet_reports() {
    let config = cluster_sim::SimConfig::default();
    assert!(config.reboot_duration + config.kubelet_start < config.node_monitor_grace_period);
    let sim = SimCluster::new();
    sim.add_node(Node::new("n1"));
    sim.add_workload(WorkloadSpec::daemonset("kube-system", "agent").pod_start_secs(3))
        .unwrap();
    let before = sim.node("n1").unwrap();
    assert!(before.ready && !before.boot_id.is_empty() && before.heartbeat.is_some());

    sim.reboot_node("n1").unwrap();
    assert_eq!(sim.os_up("n1"), Some(false));
    assert_eq!(
        sim.node("n1").unwrap(),
        before,
        "nothing is seen of the reboot yet"
    );

    advance(config.reboot_duration).await;
    assert_eq!(sim.os_up("n1"), Some(true), "Zincati runs again");
    let booted = sim.node("n1").unwrap();
    assert!(booted.ready, "stale Ready from before the reboot");
    assert_eq!(
        booted.boot_id, before.boot_id,
        "the kubelet has not reported"
    );
    assert_eq!(booted.heartbeat, before.heartbeat);
    // A kubelet that is not running reports nothing.
    sim.report_node_status("n1").unwrap();
    assert_eq!(sim.node("n1").unwrap().heartbeat, before.heartbeat);

    advance(config.kubelet_start).await;
    let up = sim.node("n1").unwrap();
    assert!(up.ready);
    assert_ne!(up.boot_id, before.boot_id);
    assert!(up.heartbeat > before.heartbeat);
    assert!(
        sim.pods_on("n1").iter().all(|p| !p.ready),
        "its containers start afresh"
    );
    advance(secs(3)).await;
    assert!(sim.pods_on("n1").iter().all(|p| p.ready));
}

/// With `node_status_report`, every running kubelet posts a fresh heartbeat that often; a
/// rebooting one does not.
#[tokio::test(start_paused = true)]
async fn running_kubelets_report_their_status_periodically() {
    let sim = SimCluster::with_config(cluster_sim::SimConfig {
        node_status_report: Some(secs(300)),
        ..cluster_sim::SimConfig::default()
    });
    sim.add_node(Node::new("n1"));
    sim.add_node(Node::new("n2"));
    let first = sim.node("n1").unwrap().heartbeat.unwrap();
    sim.reboot_node("n2").unwrap();
    let n2 = sim.node("n2").unwrap().heartbeat;
    advance(secs(299)).await;
    assert_eq!(sim.node("n1").unwrap().heartbeat, Some(first));
    advance(secs(1)).await;
    let later = sim.node("n1").unwrap().heartbeat.unwrap();
    assert_eq!(later.duration_since(first).as_secs(), 300);
    // n2 came back at 45 s, and reported then; the periodic one at 300 s too.
    assert!(sim.node("n2").unwrap().heartbeat > n2);
    assert_eq!(sim.node("n2").unwrap().heartbeat, Some(later));
}

/// A reboot longer than the grace period: the node controller marks the node NotReady
/// (Unknown) and its pods NotReady, until the kubelet reports after the boot.
#[tokio::test(start_paused = true)]
async fn a_long_reboot_turns_the_node_not_ready_after_the_grace_period() {
    let config = cluster_sim::SimConfig {
        reboot_duration: secs(120),
        ..cluster_sim::SimConfig::default()
    };
    let sim = SimCluster::with_config(config.clone());
    sim.add_node(Node::new("n1"));
    sim.add_workload(WorkloadSpec::daemonset("kube-system", "agent").pod_start_secs(3))
        .unwrap();
    let before = sim.node("n1").unwrap();
    sim.reboot_node("n1").unwrap();
    advance(config.node_monitor_grace_period - secs(1)).await;
    assert!(sim.node("n1").unwrap().ready);
    advance(secs(1)).await;
    let down = sim.node("n1").unwrap();
    assert!(!down.ready);
    assert_eq!(down.boot_id, before.boot_id);
    assert_eq!(
        down.heartbeat, before.heartbeat,
        "the kubelet posted nothing"
    );
    assert!(
        sim.pods_on("n1").iter().all(|p| !p.ready),
        "pods on a down node are not ready"
    );
    advance(config.reboot_duration + config.kubelet_start - config.node_monitor_grace_period).await;
    let up = sim.node("n1").unwrap();
    assert!(up.ready);
    assert_ne!(up.boot_id, before.boot_id);
    advance(secs(3)).await;
    assert!(sim.pods_on("n1").iter().all(|p| p.ready));
}

#[tokio::test(start_paused = true)]
async fn a_deleted_node_takes_its_pods_with_it() {
    let (sim, r) = shop();
    sim.remove_budget("shop", "web");
    sim.remove_node("n3");
    assert!(sim.pods_on("n3").is_empty());
    assert!(sim.node("n3").is_none());
    let active = sim
        .pods_of(&r)
        .into_iter()
        .filter(|p| !p.is_terminating())
        .count();
    assert_eq!(active, 3, "the ReplicaSet replaced the collected pod");
}
