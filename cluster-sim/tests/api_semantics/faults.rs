//! Node patches, Events, and the faults and latency a test injects.

use super::*;

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
