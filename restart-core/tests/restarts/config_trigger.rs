//! Restarts on configuration changes, on the paused clock: once the changes have settled,
//! once across replicas, after whoever holds the lock, and for a change made while no replica
//! watched; never for objects a workload does not use, nor for workloads that do not opt in.

use restart_core::trigger::{ConfigTrigger, DIGESTS_ANNOTATION};

use super::*;

/// `shop/web` mounts ConfigMap web-config and reads Secret web-keys; `shop/db` mounts
/// web-config too but does not opt in.
fn configured() -> SimCluster {
    let sim = SimCluster::new();
    for n in ["n1", "n2"] {
        sim.add_node(Node::new(n));
    }
    sim.put_config_map("shop", "web-config", &[("level", "info")]);
    sim.put_secret("shop", "web-keys", &[("key", "k1")]);
    sim.put_config_map("shop", "other", &[("x", "1")]);
    sim.add_workload(
        WorkloadSpec::deployment("shop", "web")
            .replicas(2)
            .pod_start_secs(5)
            .grace_period(5)
            .uses_config_map("web-config")
            .uses_secret("web-keys"),
    )
    .unwrap();
    sim.add_workload(
        WorkloadSpec::statefulset("shop", "db")
            .replicas(1)
            .pod_start_secs(5)
            .grace_period(5)
            .uses_config_map("web-config"),
    )
    .unwrap();
    sim
}

fn opted_in() -> Allowlist {
    Allowlist::new(vec![
        ServiceEntry {
            restart_on_config_change: Some(ConfigTrigger::default()),
            ..ServiceEntry::new(web())
        },
        ServiceEntry::new(db()),
    ])
    .unwrap()
}

/// Every restart's note, once per restart (repeats of one Event are counted on it).
fn restarts(sim: &SimCluster, w: &WorkloadRef) -> Vec<String> {
    sim.events()
        .into_iter()
        .filter(|e| e.regarding.names_same(&w.object_ref()) && e.reason == "Restarted")
        .flat_map(|e| std::iter::repeat_n(e.note, usize::try_from(e.count).unwrap_or(1)))
        .collect()
}

async fn wait(secs: u64) {
    tokio::time::sleep(Duration::from_secs(secs)).await;
}

#[tokio::test(start_paused = true)]
async fn a_change_restarts_once_after_the_changes_settle() {
    let sim = configured();
    let (_r, _, _run) = replica(&sim, opted_in(), RestartConfig::default(), "a").await;
    // The first look records what the pods run with, and restarts nothing.
    wait(31).await;
    let lease = sim
        .lease("restart-manager", "restart.deployment.shop.web")
        .unwrap();
    let recorded = &lease.annotations[DIGESTS_ANNOTATION];
    assert!(recorded.contains("ConfigMap web-config") && recorded.contains("Secret web-keys"));
    assert!(restarts(&sim, &web()).is_empty());

    // Two changes ten seconds apart: one restart, 30 s after the last.
    sim.put_config_map("shop", "web-config", &[("level", "debug")]);
    wait(10).await;
    sim.put_config_map("shop", "web-config", &[("level", "trace")]);
    wait(25).await;
    assert!(restarts(&sim, &web()).is_empty(), "still settling");
    wait(10).await;
    assert_eq!(
        restarts(&sim, &web()),
        ["restarted by config-change (config change): ConfigMap web-config changed"]
    );
    // Not again; not for an object it does not use; not for a workload that did not opt in.
    sim.put_config_map("shop", "other", &[("x", "2")]);
    wait(120).await;
    assert_eq!(restarts(&sim, &web()).len(), 1);
    assert!(restarts(&sim, &db()).is_empty());

    // A Secret's change, too.
    sim.put_secret("shop", "web-keys", &[("key", "k2")]);
    wait(40).await;
    let all = restarts(&sim, &web());
    assert_eq!(all.len(), 2);
    assert!(all[1].ends_with("Secret web-keys changed"), "{all:?}");
}

#[tokio::test(start_paused = true)]
async fn a_workload_someone_restarts_is_restarted_once_they_are_done() {
    let sim = configured();
    let config = RestartConfig {
        lock_duration: Duration::from_secs(3600),
        ..RestartConfig::default()
    };
    let (r, _, _run) = replica(&sim, opted_in(), config, "a").await;
    wait(31).await;
    sim.stall_rollouts(&web(), true).unwrap();
    r.restart(&web(), &Identity::user("bob"), Some("deploy"))
        .await
        .unwrap();
    sim.put_config_map("shop", "web-config", &[("level", "debug")]);
    wait(120).await;
    assert_eq!(
        restarts(&sim, &web()).len(),
        1,
        "bob's only, while he holds the lock"
    );
    // Bob's rollout goes on and ends; the configuration's restart follows.
    sim.stall_rollouts(&web(), false).unwrap();
    let done = r.wait(&web(), |_| {}).await;
    assert_eq!(done.last_restart.unwrap().by, "bob");
    wait(60).await;
    let all = restarts(&sim, &web());
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all[1].starts_with("restarted by config-change"), "{all:?}");
}

#[tokio::test(start_paused = true)]
async fn two_replicas_restart_once_and_a_change_made_while_none_watched_is_caught() {
    let sim = configured();
    let (_a, _, run_a) = replica(&sim, opted_in(), RestartConfig::default(), "a").await;
    let (_b, _, run_b) = replica(&sim, opted_in(), RestartConfig::default(), "b").await;
    wait(31).await;
    sim.put_config_map("shop", "web-config", &[("level", "debug")]);
    wait(60).await;
    assert_eq!(restarts(&sim, &web()).len(), 1, "once for both replicas");

    run_a.abort();
    run_b.abort();
    sim.put_config_map("shop", "web-config", &[("level", "trace")]);
    wait(60).await;
    let (_c, _, _run_c) = replica(&sim, opted_in(), RestartConfig::default(), "c").await;
    wait(60).await;
    let all = restarts(&sim, &web());
    assert_eq!(
        all.len(),
        2,
        "the change made while nobody watched: {all:?}"
    );
}

/// Sets the pod template annotation `key`, as a Helm upgrade sets `checksum/config`.
async fn annotate_template(sim: &SimCluster, key: &str, value: &str) {
    use cluster_api::ClusterApi;
    let changes = [(key.to_string(), Some(value.to_string()))]
        .into_iter()
        .collect();
    sim.patch_template_annotations(&web(), &changes)
        .await
        .unwrap();
}

/// A Helm upgrade changes a ConfigMap and, with it, the pod template's `checksum/config`:
/// the template's own rollout starts the pods on the new configuration, so no restart
/// follows; the next change alone restarts as usual.
#[tokio::test(start_paused = true)]
async fn a_template_rollout_after_a_change_has_picked_it_up() {
    let sim = configured();
    let (_r, _, _run) = replica(&sim, opted_in(), RestartConfig::default(), "a").await;
    wait(31).await;
    sim.put_config_map("shop", "web-config", &[("level", "debug")]);
    wait(1).await;
    annotate_template(&sim, "checksum/config", "2").await;
    wait(120).await;
    assert!(
        restarts(&sim, &web()).is_empty(),
        "{:?}",
        restarts(&sim, &web())
    );

    sim.put_config_map("shop", "web-config", &[("level", "trace")]);
    wait(40).await;
    assert_eq!(restarts(&sim, &web()).len(), 1);
}

/// A template change made before the configuration changed rolled the pods out on the old
/// configuration: the change still restarts them.
#[tokio::test(start_paused = true)]
async fn a_template_change_before_a_config_change_does_not_hide_it() {
    let sim = configured();
    let (_r, _, _run) = replica(&sim, opted_in(), RestartConfig::default(), "a").await;
    wait(31).await;
    annotate_template(&sim, "checksum/config", "2").await;
    wait(5).await;
    sim.put_config_map("shop", "web-config", &[("level", "debug")]);
    wait(40).await;
    assert_eq!(
        restarts(&sim, &web()),
        ["restarted by config-change (config change): ConfigMap web-config changed"]
    );
}

/// The same, while no replica watched: the next finds the template changed since the record
/// and takes the configuration as picked up.
#[tokio::test(start_paused = true)]
async fn a_template_rollout_while_none_watched_has_picked_the_change_up() {
    let sim = configured();
    let (_a, _, run_a) = replica(&sim, opted_in(), RestartConfig::default(), "a").await;
    wait(31).await;
    run_a.abort();
    sim.put_config_map("shop", "web-config", &[("level", "debug")]);
    annotate_template(&sim, "checksum/config", "2").await;
    wait(60).await;
    let (_b, _, _run_b) = replica(&sim, opted_in(), RestartConfig::default(), "b").await;
    wait(60).await;
    assert!(
        restarts(&sim, &web()).is_empty(),
        "{:?}",
        restarts(&sim, &web())
    );
}

/// The restart for a change happened but recording it was lost, and someone restarted the
/// workload after it: the retry finds the change picked up and restarts nothing again.
#[tokio::test(start_paused = true)]
async fn a_lost_record_after_a_restart_does_not_restart_again() {
    let sim = configured();
    let (r, _, _run) = replica(&sim, opted_in(), RestartConfig::default(), "a").await;
    wait(31).await;
    sim.put_config_map("shop", "web-config", &[("level", "debug")]);
    // The restart takes the lock (one replace); recording the digests (the next) fails.
    sim.fail_later(
        Operation::ReplaceLease,
        1,
        1,
        Error::Forbidden {
            message: "leases.coordination.k8s.io is forbidden".into(),
        },
    );
    wait(35).await;
    assert_eq!(restarts(&sim, &web()).len(), 1);
    wait(15).await;
    r.restart(&web(), &Identity::user("bob"), Some("deploy"))
        .await
        .unwrap();
    wait(120).await;
    assert_eq!(
        restarts(&sim, &web()),
        [
            "restarted by config-change (config change): ConfigMap web-config changed",
            "restarted by bob: deploy"
        ]
    );
}
