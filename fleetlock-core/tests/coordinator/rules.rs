//! Drain rules on the simulated cluster: eviction order, pods left alone, pods waited for.

use cluster_api::PodPhase;
use fleetlock_core::drain::SkipReason;
use fleetlock_core::rules::DrainRule;

use super::*;

fn rules(yaml: &str) -> Vec<DrainRule> {
    serde_saphyr::from_str(yaml).unwrap()
}

/// Two nodes; what `place` adds lands on n1 (n2 is cordoned meanwhile).
fn on_n1(place: impl FnOnce(&cluster_sim::SimCluster)) -> cluster_sim::SimCluster {
    let sim = fleet(2);
    sim.edit_node("n2", |n| n.unschedulable = true).unwrap();
    place(&sim);
    sim.edit_node("n2", |n| n.unschedulable = false).unwrap();
    sim
}

#[tokio::test(start_paused = true)]
async fn frontends_leave_before_their_database() {
    let sim = on_n1(|sim| {
        for (name, tier, grace) in [("db", "db", 5), ("web", "web", 20), ("api", "api", 10)] {
            sim.add_workload(
                WorkloadSpec::deployment("shop", name)
                    .replicas(1)
                    .grace_period(grace)
                    .pod_label("tier", tier),
            )
            .unwrap();
        }
    });
    let mut config = config();
    config.drain.rules = rules(
        "- {namespaces: [shop], selector: tier=web, priority: 10}\n\
         - {namespaces: [shop], selector: tier=db, priority: -10}\n",
    );
    let (c, _run) = replica(&sim, config, "a").await;

    let plan = c.plan_node("n1").await.unwrap();
    let order: Vec<(&str, i32)> = plan
        .evict
        .iter()
        .map(|p| (p.pod.split('-').next().unwrap(), p.priority))
        .collect();
    assert_eq!(order, [("shop/web", 10), ("shop/api", 0), ("shop/db", -10)]);

    let asked = Instant::now();
    c.pre_reboot(&zincati("n1", "default")).await.unwrap();
    // One tier at a time, each gone before the next is evicted: 20s + 10s + 5s.
    assert_eq!(asked.elapsed(), Duration::from_secs(35));
    let evicted: Vec<(String, i64)> = sim
        .evictions()
        .into_iter()
        .map(|e| {
            let tier = e.name.split('-').next().unwrap().to_string();
            (tier, e.at.duration_since(sim.evictions()[0].at).as_secs())
        })
        .collect();
    assert_eq!(
        evicted,
        [("web".into(), 0), ("api".into(), 20), ("db".into(), 30)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_batch_pod_finishes_its_work_before_the_reboot() {
    let sim = on_n1(|sim| {
        for name in ["etl-1", "etl-2"] {
            sim.add_pod(
                Pod::new("batch", name)
                    .on("n1")
                    .owned_by("Job", name)
                    .label("kind", "etl"),
            )
            .unwrap();
        }
    });
    let mut config = config();
    config.drain.rules = rules(
        "- {namespaces: [batch], selector: kind=etl, action: waitForCompletion, limit: 10m}\n",
    );
    let (c, _run) = replica(&sim, config, "a").await;
    let n1 = zincati("n1", "default");

    let plan = c.plan_node("n1").await.unwrap();
    assert!(plan.evict.is_empty());
    assert_eq!(plan.wait.len(), 2);
    assert_eq!(plan.wait[0].limit_seconds, 600);

    let refusal = c.pre_reboot(&n1).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::Draining);
    assert!(refusal.value.contains("finishing its work"), "{refusal}");
    assert!(
        sim.evictions().is_empty(),
        "nothing evicted while they work"
    );

    // One finishes: it stays on the node, done, and no longer holds the drain.
    sim.finish_pod("batch", "etl-1", PodPhase::Succeeded)
        .unwrap();
    settle().await;
    assert_eq!(c.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);
    assert!(sim.evictions().is_empty());

    // The other never does: at the limit it is evicted, and once gone the reboot goes ahead.
    advance(Duration::from_secs(600)).await;
    settle().await;
    c.pre_reboot(&n1).await.unwrap();
    let evicted: Vec<String> = sim.evictions().into_iter().map(|e| e.name).collect();
    assert_eq!(evicted, ["etl-2"]);
    assert_eq!(
        sim.pod("batch", "etl-1").unwrap().phase,
        PodPhase::Succeeded,
        "the finished pod was left alone"
    );
}

#[tokio::test(start_paused = true)]
async fn a_skipped_pod_stays_and_does_not_block() {
    let sim = on_n1(|sim| {
        // No controller: without the rule, the pre-flight would refuse the drain.
        sim.add_pod(Pod::new("ops", "shell").on("n1").label("app", "debug"))
            .unwrap();
    });
    let mut bad = config();
    bad.drain.rules = rules("- {selector: app=debug, action: skip, priority: 1}\n");
    let error = bad.validate().unwrap_err().to_string();
    assert!(error.starts_with("drain.rules[0]: priority"), "{error}");

    assert_eq!(
        replica(&sim, config(), "a")
            .await
            .0
            .pre_reboot(&zincati("n1", "default"))
            .await
            .unwrap_err()
            .kind,
        Kind::DrainWouldBlock
    );
    let mut config = config();
    config.drain.rules = rules("- {selector: app=debug, action: skip}\n");
    let (c, _run) = replica(&sim, config, "b").await;
    let plan = c.plan_node("n1").await.unwrap();
    assert_eq!(plan.blocked, None);
    assert_eq!(plan.skip[0].reason, SkipReason::DrainRule);
    c.pre_reboot(&zincati("n1", "default")).await.unwrap();
    assert!(sim.pod("ops", "shell").is_some(), "left on the node");
    assert!(sim.evictions().is_empty());
}
