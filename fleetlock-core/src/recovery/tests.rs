use cluster_api::LabelSelector;

use super::*;
use crate::group::HolderPhase;

fn budget(name: &str, selector: &str, healthy: (i32, i32, i32), allowed: i32) -> DisruptionBudget {
    DisruptionBudget {
        namespace: "shop".into(),
        name: name.into(),
        selector: Some(selector.parse::<LabelSelector>().unwrap()),
        expected_pods: healthy.0,
        desired_healthy: healthy.1,
        current_healthy: healthy.2,
        disruptions_allowed: allowed,
        always_allow_unhealthy: false,
    }
}

fn holder(evicts: Vec<RecoveryTarget>) -> Holder {
    Holder {
        phase: HolderPhase::Recovering,
        approved_at: Some(Timestamp::UNIX_EPOCH),
        boot_id: Some("boot-1".into()),
        evicts,
        ..Holder::granted("id", "n1", Timestamp::UNIX_EPOCH, "")
    }
}

#[test]
fn targets_are_the_covering_budgets_else_the_controllers() {
    let web = Pod::new("shop", "web-1")
        .owned_by("ReplicaSet", "web-6f7")
        .label("app", "web");
    let web2 = Pod::new("shop", "web-2")
        .owned_by("ReplicaSet", "web-6f7")
        .label("app", "web");
    let cache = Pod::new("shop", "cache-0")
        .owned_by("StatefulSet", "cache")
        .label("app", "cache");
    let stray = Pod::new("shop", "debug");
    let budgets = [budget("web", "app=web", (3, 2, 3), 1)];
    let found = targets([&web, &web2, &cache, &stray], &budgets);
    let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        ["PodDisruptionBudget shop/web", "StatefulSet shop/cache"]
    );
    for target in &found {
        assert_eq!(
            &target.to_string().parse::<RecoveryTarget>().unwrap(),
            target
        );
    }
    let json = serde_json::to_string(&found).unwrap();
    assert_eq!(
        json,
        r#"["PodDisruptionBudget shop/web","StatefulSet shop/cache"]"#
    );
    assert!("ReplicaSet shop".parse::<RecoveryTarget>().is_err());
    assert!("ReplicaSet a/b/c".parse::<RecoveryTarget>().is_err());
}

#[test]
fn a_holder_waits_until_node_and_workloads_are_back() {
    let policy = RecoveryConfig::default();
    let h = holder(vec![
        "PodDisruptionBudget shop/web".parse().unwrap(),
        "StatefulSet shop/cache".parse().unwrap(),
    ]);
    let node = NodeNow {
        ready: false,
        boot_id: "boot-2",
        heartbeat: None,
        cordoned_by_us: true,
    };
    let short = [budget("web", "app=web", (3, 2, 2), 0)];
    let pending = Pod::new("shop", "cache-0")
        .owned_by("StatefulSet", "cache")
        .phase(cluster_api::PodPhase::Pending);
    let waiting = waiting_for(&h, &node, &policy, &short, std::slice::from_ref(&pending));
    assert_eq!(
        waiting,
        [
            "the node to be Ready",
            "our cordon to be undone",
            "PodDisruptionBudget shop/web to be available again",
            "StatefulSet shop/cache to be available again",
        ]
    );

    let node = NodeNow {
        ready: true,
        cordoned_by_us: false,
        ..node
    };
    let whole = [budget("web", "app=web", (3, 2, 3), 1)];
    let running = Pod::new("shop", "cache-0").owned_by("StatefulSet", "cache");
    assert!(waiting_for(&h, &node, &policy, &whole, &[running]).is_empty());
    // A budget that never allows a disruption is whole once every pod is healthy; a
    // budget or controller that is gone waits for nothing.
    let strict = [budget("web", "app=web", (2, 2, 2), 0)];
    assert!(waiting_for(&h, &node, &policy, &strict, &[]).is_empty());
}

#[test]
fn an_unchanged_boot_id_waits_for_the_kubelet_or_a_new_boot() {
    let t: Timestamp = "2026-01-05T09:00:00Z".parse().unwrap();
    let h = Holder {
        returned_heartbeat: Some(t),
        ..holder(Vec::new())
    };
    let stale = NodeNow {
        ready: true,
        boot_id: "boot-1",
        heartbeat: Some(t),
        cordoned_by_us: false,
    };
    // The status is the one from before the return: Ready proves nothing yet.
    let waiting = waiting_for(&h, &stale, &RecoveryConfig::default(), &[], &[]);
    assert_eq!(waiting.len(), 1);
    assert!(waiting[0].contains("kubelet to report"), "{waiting:?}");
    // The kubelet has posted its status since: `recover` takes the node as back.
    let reported = NodeNow {
        heartbeat: Some(t + SignedDuration::from_secs(10)),
        ..stale.clone()
    };
    assert!(waiting_for(&h, &reported, &RecoveryConfig::default(), &[], &[]).is_empty());
    // A new bootID is the kubelet's own report.
    let rebooted = NodeNow {
        boot_id: "boot-2",
        ..stale.clone()
    };
    assert!(waiting_for(&h, &rebooted, &RecoveryConfig::default(), &[], &[]).is_empty());
    // `wait` wants the new bootID whatever the kubelet says.
    let wait = RecoveryConfig {
        unchanged_boot_id: UnchangedBootId::Wait,
        ..RecoveryConfig::default()
    };
    let waiting = waiting_for(&h, &reported, &wait, &[], &[]);
    assert_eq!(waiting.len(), 1);
    assert!(waiting[0].contains("new bootID"), "{waiting:?}");
}

/// A node carrying thousands of pods, each under a budget of its own: recorded precisely,
/// its targets alone would pass the API server's 256 KiB limit on the group Lease's
/// annotations, and the grant (or any later write of the group) would be refused.
#[test]
fn too_many_targets_are_recorded_by_namespace_and_the_lease_stays_small() {
    let long = "a-workload-with-a-name-as-long-as-people-give-them";
    let pods: Vec<Pod> = (0..3000)
        .map(|i| {
            Pod::new(
                if i % 2 == 0 { "shop" } else { "data" },
                format!("{long}-{i}"),
            )
            .owned_by("ReplicaSet", format!("{long}-{i}"))
            .label("app", format!("{long}-{i}"))
        })
        .collect();
    let budgets: Vec<DisruptionBudget> = pods
        .iter()
        .map(|p| DisruptionBudget {
            namespace: p.namespace.clone(),
            ..budget(&p.name, &format!("app={}", p.name), (1, 0, 1), 1)
        })
        .collect();
    let found = targets(&pods, &budgets);
    let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["Namespace data/*", "Namespace shop/*"]);
    let recorded = serde_json::to_string(&Holder {
        evicts: found.clone(),
        ..holder(Vec::new())
    })
    .unwrap();
    assert!(recorded.len() < 1024, "{} bytes", recorded.len());
    for target in &found {
        assert_eq!(
            &target.to_string().parse::<RecoveryTarget>().unwrap(),
            target
        );
    }
    // Across more namespaces than are kept: every namespace.
    let scattered: Vec<Pod> = (0..100)
        .map(|i| Pod::new(format!("ns-{i}"), "p").owned_by("ReplicaSet", "r"))
        .collect();
    let found = targets(&scattered, &[]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].to_string(), "Namespace */*");
}

#[test]
fn a_namespace_target_waits_for_every_budget_and_controller_in_it() {
    let policy = RecoveryConfig::default();
    let h = holder(vec!["Namespace shop/*".parse().unwrap()]);
    let node = NodeNow {
        ready: true,
        boot_id: "boot-2",
        heartbeat: None,
        cordoned_by_us: false,
    };
    let short = [budget("web", "app=web", (3, 2, 2), 0)];
    let waiting = waiting_for(&h, &node, &policy, &short, &[]);
    assert_eq!(waiting, ["Namespace shop/* to be available again"]);
    let starting = Pod::new("shop", "cache-0")
        .owned_by("StatefulSet", "cache")
        .not_ready();
    let whole = [budget("web", "app=web", (3, 2, 3), 1)];
    assert_eq!(
        waiting_for(&h, &node, &policy, &whole, std::slice::from_ref(&starting)).len(),
        1
    );
    let elsewhere = Pod::new("other", "x")
        .owned_by("ReplicaSet", "x")
        .not_ready();
    assert!(waiting_for(&h, &node, &policy, &whole, &[elsewhere]).is_empty());
    // `*` is every namespace.
    let everywhere = holder(vec!["Namespace */*".parse().unwrap()]);
    assert_eq!(
        waiting_for(&everywhere, &node, &policy, &whole, &[starting]).len(),
        1
    );
}

#[test]
fn waiting_for_keeps_a_bounded_list() {
    let targets: Vec<RecoveryTarget> = (0..20)
        .map(|i| format!("StatefulSet shop/db-{i}").parse().unwrap())
        .collect();
    let h = holder(targets);
    let node = NodeNow {
        ready: true,
        boot_id: "boot-2",
        heartbeat: None,
        cordoned_by_us: false,
    };
    let pods: Vec<Pod> = (0..20)
        .map(|i| {
            Pod::new("shop", format!("db-{i}-0"))
                .owned_by("StatefulSet", format!("db-{i}"))
                .not_ready()
        })
        .collect();
    let waiting = waiting_for(&h, &node, &RecoveryConfig::default(), &[], &pods);
    assert_eq!(waiting.len(), MAX_WAITING);
    assert_eq!(waiting[MAX_WAITING - 1], "13 more");
}

#[test]
fn settling_counts_from_the_first_healthy_look() {
    let t: Timestamp = "2026-01-05T09:00:00Z".parse().unwrap();
    let settle = std::time::Duration::from_secs(60);
    assert!(!settled(t, settle, t + SignedDuration::from_secs(59)));
    assert!(settled(t, settle, t + SignedDuration::from_secs(60)));
    assert!(settled(t, std::time::Duration::ZERO, t));
}
