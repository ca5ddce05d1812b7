//! What the API server refuses or assigns: note and annotation limits, uids.

use super::*;

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
