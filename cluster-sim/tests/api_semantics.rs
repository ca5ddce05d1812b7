//! resourceVersion, compare-and-swap, errors and counters: the API server's rules.

use std::sync::Arc;
use std::time::Duration;

use cluster_api::{
    ClusterApi, Error, Event, EventType, LabelSelector, Lease, Node, NodePatch, ObjectRef,
};
use cluster_sim::{Operation, SimCluster};
use tokio::sync::Barrier;

fn lease(name: &str) -> Lease {
    Lease::new("restart-manager", name)
}

#[tokio::test(start_paused = true)]
async fn lease_writes_are_compare_and_swap() {
    let sim = SimCluster::new();
    let created = sim.create_lease(&lease("lock")).await.unwrap();
    assert!(!created.resource_version.is_empty());

    let err = sim.create_lease(&lease("lock")).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "leases.coordination.k8s.io \"lock\" already exists"
    );

    let mut mine = created.clone();
    mine.holder_identity = Some("a".into());
    let updated = sim.replace_lease(&mine).await.unwrap();
    assert_ne!(updated.resource_version, created.resource_version);

    // Writing again with the version we read first is stale now.
    let mut stale = created.clone();
    stale.holder_identity = Some("b".into());
    let err = sim.replace_lease(&stale).await.unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert!(err.to_string().contains("the object has been modified"));
    assert_eq!(
        sim.lease("restart-manager", "lock")
            .unwrap()
            .holder_identity
            .as_deref(),
        Some("a"),
        "a refused write changes nothing"
    );

    // A replace without a version would be a blind overwrite: refused.
    let err = sim.replace_lease(&lease("lock")).await.unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");

    let err = sim.replace_lease(&lease("nope").clone()).await.unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
    let mut ghost = updated.clone();
    ghost.name = "ghost".into();
    assert!(matches!(
        sim.replace_lease(&ghost).await.unwrap_err(),
        Error::NotFound { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn lease_delete_honours_its_precondition() {
    let sim = SimCluster::new();
    let v1 = sim.create_lease(&lease("lock")).await.unwrap();
    let mut next = v1.clone();
    next.holder_identity = Some("a".into());
    let v2 = sim.replace_lease(&next).await.unwrap();

    let err = sim
        .delete_lease("restart-manager", "lock", Some(&v1.resource_version))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert!(sim.lease("restart-manager", "lock").is_some());

    sim.delete_lease("restart-manager", "lock", Some(&v2.resource_version))
        .await
        .unwrap();
    assert!(sim.lease("restart-manager", "lock").is_none());
    let err = sim
        .delete_lease("restart-manager", "lock", None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn lease_names_must_be_valid_object_names() {
    let sim = SimCluster::new();
    for bad in ["Upper", "", "-dash", "under_score", &"x".repeat(254)] {
        let err = sim.create_lease(&lease(bad)).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{bad:?}: {err:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn leases_list_by_namespace_and_label() {
    let sim = SimCluster::new();
    sim.create_lease(&lease("a").label("app", "fleetlock"))
        .await
        .unwrap();
    sim.create_lease(&lease("b").label("app", "restart"))
        .await
        .unwrap();
    sim.create_lease(&Lease::new("other", "c").label("app", "fleetlock"))
        .await
        .unwrap();
    let found = sim
        .list_leases("restart-manager", &LabelSelector::eq("app", "fleetlock"))
        .await
        .unwrap();
    let names: Vec<_> = found.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["a"]);
}

/// Two replicas race for the same lease, round after round: each round exactly one wins and
/// the other sees a Conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_one_winner_each_round() {
    const ROUNDS: usize = 200;
    let sim = SimCluster::new();
    sim.create_lease(&lease("race")).await.unwrap();
    let barrier = Arc::new(Barrier::new(2));

    let writer = |me: &'static str| {
        let sim = sim.clone();
        let barrier = barrier.clone();
        tokio::spawn(async move {
            let mut wins = Vec::new();
            for round in 0..ROUNDS {
                // Both read the same version...
                let mut l = sim.get_lease("restart-manager", "race").await.unwrap();
                barrier.wait().await;
                // ...and both try to write it.
                l.holder_identity = Some(format!("{me}-{round}"));
                match sim.replace_lease(&l).await {
                    Ok(_) => wins.push(round),
                    Err(Error::Conflict { .. }) => {}
                    Err(e) => panic!("unexpected error: {e}"),
                }
                barrier.wait().await;
            }
            wins
        })
    };
    let (a, b) = (writer("a"), writer("b"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());

    assert_eq!(a.len() + b.len(), ROUNDS, "exactly one winner per round");
    for round in 0..ROUNDS {
        assert!(
            a.contains(&round) ^ b.contains(&round),
            "round {round}: a won {}, b won {}",
            a.contains(&round),
            b.contains(&round)
        );
    }
    let last = sim.lease("restart-manager", "race").unwrap();
    let holder = last.holder_identity.unwrap();
    assert!(holder.ends_with(&format!("-{}", ROUNDS - 1)), "{holder}");
}

#[tokio::test(start_paused = true)]
async fn node_patches_are_conditional_when_asked() {
    let sim = SimCluster::new();
    let read = sim.add_node(Node::new("n1"));

    // An admin cordons the node after we read it.
    sim.edit_node("n1", |n| n.unschedulable = true).unwrap();

    let ours = NodePatch::new()
        .unschedulable(true)
        .annotate("example.com/cordoned-by", "us")
        .if_version(&read.resource_version);
    let err = sim.patch_node("n1", &ours).await.unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert!(
        !sim.node("n1")
            .unwrap()
            .annotations
            .contains_key("example.com/cordoned-by"),
        "a conflicting patch writes nothing"
    );

    // Without a version a patch is last-writer-wins; a no-op does not bump the version.
    let current = sim.node("n1").unwrap();
    let same = sim
        .patch_node("n1", &NodePatch::new().unschedulable(true))
        .await
        .unwrap();
    assert_eq!(same.resource_version, current.resource_version);
    let changed = sim
        .patch_node(
            "n1",
            &NodePatch::new().annotate("a", "b").remove_annotation("zz"),
        )
        .await
        .unwrap();
    assert_ne!(changed.resource_version, current.resource_version);
    assert_eq!(changed.annotations["a"], "b");

    let err = sim
        .patch_node("ghost", &NodePatch::new())
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "nodes \"ghost\" not found");
}

#[tokio::test(start_paused = true)]
async fn events_are_recorded_with_the_simulated_time() {
    let sim = SimCluster::new();
    let node = ObjectRef::cluster("Node", "n1");
    tokio::time::advance(Duration::from_secs(90)).await;
    let event = Event {
        regarding: node.clone(),
        type_: EventType::Normal,
        reason: "Cordoned".into(),
        action: "Cordon".into(),
        note: "cordoned for reboot".into(),
        reporting_controller: "restart-manager".into(),
        reporting_instance: "replica-a".into(),
        time: None,
        count: 1,
    };
    sim.record_event(&event).await.unwrap();
    sim.record_event(&Event {
        regarding: ObjectRef::cluster("Node", "n2"),
        ..event.clone()
    })
    .await
    .unwrap();

    let events = sim.list_events(&node).await.unwrap();
    assert_eq!(events.len(), 1);
    let start = cluster_sim::SimConfig::default().start_time;
    assert_eq!(
        events[0].time.unwrap(),
        start + jiff::SignedDuration::from_secs(90)
    );

    // An identical repeat within the series window counts on the first; another note does
    // not; after the window a repeat is a new Event.
    tokio::time::advance(Duration::from_secs(60)).await;
    sim.record_event(&event).await.unwrap();
    sim.record_event(&Event {
        note: "cordoned again".into(),
        ..event.clone()
    })
    .await
    .unwrap();
    let events = sim.list_events(&node).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].count, 2);
    assert_eq!(
        events[0].time.unwrap(),
        start + jiff::SignedDuration::from_secs(150)
    );
    tokio::time::advance(cluster_api::SERIES_WINDOW + Duration::from_secs(1)).await;
    sim.record_event(&event).await.unwrap();
    assert_eq!(sim.list_events(&node).await.unwrap().len(), 3);

    let err = sim
        .record_event(&Event {
            reason: String::new(),
            ..event
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }));
}

#[tokio::test(start_paused = true)]
async fn faults_fail_exactly_the_calls_asked_for_and_everything_is_counted() {
    let sim = SimCluster::new();
    sim.add_node(Node::new("n1"));
    sim.fail_next(
        Operation::GetNode,
        2,
        Error::unavailable("etcdserver: request timed out"),
    );

    for _ in 0..2 {
        let err = sim.get_node("n1").await.unwrap_err();
        assert_eq!(err.kind(), "unavailable");
        assert!(err.is_transient());
    }
    assert_eq!(sim.get_node("n1").await.unwrap().name, "n1");
    // Other operations were never affected.
    assert_eq!(sim.list_nodes().await.unwrap().len(), 1);

    sim.force_conflicts(Operation::ReplaceLease, 1);
    let created = sim.create_lease(&lease("l")).await.unwrap();
    assert!(matches!(
        sim.replace_lease(&created).await.unwrap_err(),
        Error::Conflict { .. }
    ));
    sim.replace_lease(&created).await.unwrap();

    sim.fail_always(
        Operation::ListNodes,
        Error::Forbidden {
            message: "nodes is forbidden".into(),
        },
    );
    assert!(sim.list_nodes().await.is_err());
    assert!(sim.list_nodes().await.is_err());
    sim.clear_faults();
    assert!(sim.list_nodes().await.is_ok());

    let calls = sim.calls();
    assert_eq!(calls.get(Operation::GetNode), 3);
    assert_eq!(calls.get(Operation::ListNodes), 4);
    assert_eq!(calls.get(Operation::ReplaceLease), 2);
    assert_eq!(calls.writes(), 3, "create + two replaces: {calls}");
    assert_eq!(calls.lists(), 4);

    // Inspecting the simulation is not API traffic.
    let _ = sim.node("n1");
    let _ = sim.pods();
    assert_eq!(sim.calls(), calls);
    sim.reset_calls();
    assert_eq!(sim.calls().total(), 0);
}

#[tokio::test(start_paused = true)]
async fn latency_is_spent_on_the_tokio_clock() {
    let sim = SimCluster::new();
    sim.add_node(Node::new("n1"));
    sim.set_latency(Operation::GetNode, Duration::from_millis(250));
    let before = tokio::time::Instant::now();
    sim.get_node("n1").await.unwrap();
    assert_eq!(before.elapsed(), Duration::from_millis(250));
    sim.set_latency(Operation::GetNode, Duration::ZERO);
    let before = tokio::time::Instant::now();
    sim.get_node("n1").await.unwrap();
    assert_eq!(before.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn lease_watches_see_every_write_of_their_selection() {
    use futures::StreamExt;
    let sim = SimCluster::new();
    let mut watch = sim
        .watch_leases("restart-manager", &LabelSelector::eq("app", "fleetlock"))
        .await
        .unwrap();
    assert!(matches!(
        watch.next().await.unwrap().unwrap(),
        cluster_api::WatchEvent::Restarted(l) if l.is_empty()
    ));
    let created = sim
        .create_lease(&lease("g").label("app", "fleetlock"))
        .await
        .unwrap();
    sim.create_lease(&lease("other").label("app", "restart"))
        .await
        .unwrap();
    let mut held = created.clone();
    held.holder_identity = Some("n1".into());
    let held = sim.replace_lease(&held).await.unwrap();
    sim.delete_lease("restart-manager", "g", None)
        .await
        .unwrap();

    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(watch.next().await.unwrap().unwrap());
    }
    assert_eq!(
        seen,
        [
            cluster_api::WatchEvent::Applied(created),
            cluster_api::WatchEvent::Applied(held.clone()),
            cluster_api::WatchEvent::Deleted(held),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_leaves_the_write_in_place() {
    let sim = SimCluster::new();
    sim.fail_after_next(
        Operation::CreateLease,
        1,
        Error::unavailable("context deadline exceeded"),
    );
    let err = sim.create_lease(&lease("lock")).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(
        sim.lease("restart-manager", "lock").is_some(),
        "the create took effect although its caller heard a failure"
    );
    // Only that one call: the retry meets the object it made.
    let err = sim.create_lease(&lease("lock")).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
}

/// One client's watch can lag while another's does not: held events wait, and arrive in
/// order when let through; the held client's own reads and writes are not delayed.
#[tokio::test(start_paused = true)]
async fn a_held_watch_of_one_client_lags_while_another_clients_does_not() {
    use cluster_sim::HeldWatch;
    use futures::StreamExt;
    let sim = SimCluster::new();
    let lagging = sim.client();
    let locks = LabelSelector::eq("app", "lock");
    let runs = LabelSelector::eq("app", "run");
    let mut fresh = sim.watch_leases("restart-manager", &locks).await.unwrap();
    let mut late = lagging
        .watch_leases("restart-manager", &locks)
        .await
        .unwrap();
    let mut other = lagging
        .watch_leases("restart-manager", &runs)
        .await
        .unwrap();
    for w in [&mut fresh, &mut late, &mut other] {
        assert!(matches!(
            w.next().await,
            Some(Ok(cluster_api::WatchEvent::Restarted(_)))
        ));
    }
    lagging.hold_watches(HeldWatch::leases(&locks), true);
    let first = sim
        .create_lease(&lease("a").label("app", "lock"))
        .await
        .unwrap();
    lagging
        .create_lease(&lease("b").label("app", "lock"))
        .await
        .unwrap();
    lagging
        .create_lease(&lease("r").label("app", "run"))
        .await
        .unwrap();
    let name = |e: Option<cluster_api::Result<cluster_api::WatchEvent<Lease>>>| match e {
        Some(Ok(cluster_api::WatchEvent::Applied(l))) => l.name,
        e => panic!("{e:?}"),
    };
    assert_eq!(name(fresh.next().await), "a");
    assert_eq!(name(fresh.next().await), "b");
    assert_eq!(name(other.next().await), "r", "only the lock watch is held");
    assert_eq!(
        lagging.get_lease("restart-manager", "a").await.unwrap(),
        first,
        "reads are not held"
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(600), late.next())
            .await
            .is_err(),
        "held"
    );
    lagging.hold_watches(HeldWatch::leases(&locks), false);
    assert_eq!(name(late.next().await), "a");
    assert_eq!(name(late.next().await), "b");
}

#[tokio::test(start_paused = true)]
async fn broken_watches_end_with_an_error_and_a_new_watch_lists_again() {
    use futures::StreamExt;
    let sim = SimCluster::new();
    sim.add_node(Node::new("n1"));
    let selector = LabelSelector::default();
    let mut nodes = sim.watch_nodes().await.unwrap();
    let mut leases = sim
        .watch_leases("restart-manager", &selector)
        .await
        .unwrap();
    assert!(matches!(
        nodes.next().await,
        Some(Ok(cluster_api::WatchEvent::Restarted(_)))
    ));
    assert!(matches!(
        leases.next().await,
        Some(Ok(cluster_api::WatchEvent::Restarted(_)))
    ));

    sim.break_watches();
    sim.remove_node("n1");
    let err = nodes.next().await.unwrap().unwrap_err();
    assert!(
        err.to_string().contains("too old resource version"),
        "{err}"
    );
    assert!(
        nodes.next().await.is_none(),
        "the stream ends after its error"
    );
    assert!(leases.next().await.unwrap().is_err());
    assert!(leases.next().await.is_none());

    // What changed in between shows only in the fresh list.
    let mut nodes = sim.watch_nodes().await.unwrap();
    assert_eq!(
        nodes.next().await,
        Some(Ok(cluster_api::WatchEvent::Restarted(vec![])))
    );
}

/// A ConfigMap or Secret watch: all of one kind in one namespace, then each change, as
/// digests that follow the data.
#[tokio::test(start_paused = true)]
async fn config_watches_see_one_kind_in_one_namespace_by_digest() {
    use cluster_api::{ConfigKind, WatchEvent};
    use futures::StreamExt;

    let sim = SimCluster::new();
    let first = sim.put_config_map("shop", "web", &[("a", "1")]);
    sim.put_secret("shop", "web", &[("a", "1")]);
    sim.put_config_map("ops", "web", &[("a", "1")]);
    let mut watch = sim
        .watch_config("shop", ConfigKind::ConfigMap)
        .await
        .unwrap();
    match watch.next().await.unwrap().unwrap() {
        WatchEvent::Restarted(all) => assert_eq!(all, std::slice::from_ref(&first)),
        other => panic!("{other:?}"),
    }
    // Other kinds and namespaces are not seen; the same data keeps its digest.
    sim.put_secret("shop", "web", &[("a", "2")]);
    sim.put_config_map("ops", "web", &[("a", "2")]);
    let same = sim.put_config_map("shop", "web", &[("a", "1")]);
    let changed = sim.put_config_map("shop", "web", &[("a", "2")]);
    assert_eq!(same.digest, first.digest);
    assert_ne!(changed.digest, first.digest);
    for want in [same, changed.clone()] {
        match watch.next().await.unwrap().unwrap() {
            WatchEvent::Applied(o) => assert_eq!(o, want),
            other => panic!("{other:?}"),
        }
    }
    assert!(sim.delete_config(ConfigKind::ConfigMap, "shop", "web"));
    assert!(!sim.delete_config(ConfigKind::ConfigMap, "shop", "web"));
    match watch.next().await.unwrap().unwrap() {
        WatchEvent::Deleted(o) => assert_eq!(o.name, "web"),
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.calls().get(Operation::WatchConfig), 1);
}

/// The API server refuses a core/v1 Event (with an eventTime) whose note passes 1,024 bytes.
#[tokio::test(start_paused = true)]
async fn an_event_note_over_the_limit_is_refused() {
    let sim = SimCluster::new();
    let mut event = cluster_api::Event {
        regarding: cluster_api::ObjectRef::cluster("Node", "n1"),
        type_: cluster_api::EventType::Normal,
        reason: "Drained".into(),
        action: "Drain".into(),
        note: "x".repeat(cluster_api::NOTE_LIMIT),
        reporting_controller: "restart-manager.io/fleetlock".into(),
        reporting_instance: "a".into(),
        time: None,
        count: 1,
    };
    sim.record_event(&event).await.unwrap();
    event.note.push('x');
    let err = sim.record_event(&event).await.unwrap_err();
    assert!(
        matches!(&err, cluster_api::Error::Invalid { message } if message.contains("can have at most 1024 characters")),
        "{err}"
    );
    assert_eq!(sim.events().len(), 1);
}

/// The API server refuses a write whose annotations pass 256 KiB in all (keys and values),
/// whatever the object; the stored object is left as it was.
#[tokio::test(start_paused = true)]
async fn annotations_over_256_kib_are_refused() {
    let sim = SimCluster::new();
    sim.add_node(cluster_api::Node::new("n1"));
    let big = "x".repeat(cluster_sim::ANNOTATIONS_LIMIT);
    let err = sim
        .patch_node(
            "n1",
            &cluster_api::NodePatch::new().annotate("a", big.clone()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, cluster_api::Error::Invalid { message } if message.contains("metadata.annotations: Too long")),
        "{err}"
    );
    assert!(!sim.node("n1").unwrap().annotations.contains_key("a"));

    let mut lease = cluster_api::Lease::new("ns", "group");
    lease.annotations.insert("a".into(), big[1..].to_string());
    let created = sim.create_lease(&lease).await.unwrap();
    let mut grown = created.clone();
    grown.annotations.insert("b".into(), "yy".into());
    let err = sim.replace_lease(&grown).await.unwrap_err();
    assert!(matches!(err, cluster_api::Error::Invalid { .. }), "{err}");
    lease.name = "other".into();
    lease.annotations.insert("a".into(), big);
    assert!(sim.create_lease(&lease).await.is_err());
}

/// A Lease gets its uid when it is created, as from any API server, and keeps it through every
/// replace, whatever uid the writer sent; a Lease created again is another object.
#[tokio::test(start_paused = true)]
async fn a_lease_has_a_uid_from_its_creation() {
    let sim = SimCluster::new();
    let created = sim.create_lease(&lease("lock")).await.unwrap();
    assert!(!created.uid.is_empty());
    let mut changed = created.clone();
    changed.holder_identity = Some("a".into());
    changed.uid = String::new();
    let replaced = sim.replace_lease(&changed).await.unwrap();
    assert_eq!(replaced.uid, created.uid);
    assert_eq!(
        sim.get_lease("restart-manager", "lock").await.unwrap().uid,
        created.uid
    );
    let other = sim.create_lease(&lease("other")).await.unwrap();
    assert_ne!(other.uid, created.uid);
}
