//! Events: what is written, series, and reading them back.

use super::*;

/// What `kubectl describe` needs to show our Events (`involvedObject.uid`), times that keep a
/// history within one second in order (`eventTime`, to the microsecond), and repeats counted
/// in one Event's `series` instead of one Event per retry.
#[tokio::test]
async fn events_carry_the_uid_and_microseconds_and_repeats_make_a_series() {
    let (c, mut fake) = cluster();
    let event = Event {
        regarding: ObjectRef::cluster("Node", "n1")
            .with_uid("0f6a2c1e-9d63-4b8e-9a55-1d5c2b7e4f10"),
        type_: EventType::Warning,
        reason: "DrainBlocked".into(),
        action: "Drain".into(),
        note: "pods without a controller: default/debug".into(),
        reporting_controller: "restart-manager.io/fleetlock".into(),
        reporting_instance: "replica-a".into(),
        time: Some("2026-01-05T09:00:00.123456Z".parse().unwrap()),
        count: 1,
    };
    let mut created: Value = serde_json::from_str(&fixture("event-core-v1.json")).unwrap();
    created["metadata"]["name"] = json!("n1.188a3f2c9d1e0b7a");
    exchange(
        c.record_event(&event),
        &mut fake,
        |s| {
            assert_eq!(
                (s.method.clone(), s.path.as_str()),
                (Method::POST, "/api/v1/namespaces/default/events")
            );
            let b = &s.body;
            assert_eq!(b["metadata"]["generateName"], "n1.");
            assert_eq!(
                b["involvedObject"],
                json!({"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "0f6a2c1e-9d63-4b8e-9a55-1d5c2b7e4f10"})
            );
            assert_eq!(
                (b["type"].as_str(), b["reason"].as_str()),
                (Some("Warning"), Some("DrainBlocked"))
            );
            assert_eq!(b["message"], "pods without a controller: default/debug");
            assert_eq!(b["eventTime"], "2026-01-05T09:00:00.123456Z");
            assert_eq!(b["reportingComponent"], "restart-manager.io/fleetlock");
            assert_eq!(b["reportingInstance"], "replica-a");
            assert_eq!(b["action"], "Drain");
            assert_eq!(b["source"]["component"], "restart-manager.io/fleetlock");
            assert!(b.get("series").is_none() && b.get("count").is_none(), "{b}");
        },
        201,
        created.to_string(),
    )
    .await
    .unwrap();

    // The same Event again: counted on the first one.
    for (count, at) in [(2, "2026-01-05T09:00:30.5Z"), (3, "2026-01-05T09:01:00Z")] {
        let again = Event {
            time: Some(at.parse().unwrap()),
            ..event.clone()
        };
        exchange(
            c.record_event(&again),
            &mut fake,
            |s| {
                assert_eq!(
                    (s.method.clone(), s.path.as_str()),
                    (
                        Method::PATCH,
                        "/api/v1/namespaces/default/events/n1.188a3f2c9d1e0b7a"
                    )
                );
                assert_eq!(s.content_type, "application/merge-patch+json");
                let expected: jiff::Timestamp = at.parse().unwrap();
                assert_eq!(s.body["series"]["count"], count);
                assert_eq!(
                    s.body["series"]["lastObservedTime"]
                        .as_str()
                        .unwrap()
                        .parse::<jiff::Timestamp>()
                        .unwrap(),
                    expected
                );
            },
            200,
            created.to_string(),
        )
        .await
        .unwrap();
    }

    // Another note is another Event.
    exchange(
        c.record_event(&Event {
            note: "pods without a controller: default/other".into(),
            ..event.clone()
        }),
        &mut fake,
        |s| assert_eq!(s.method, Method::POST),
        201,
        created.to_string(),
    )
    .await
    .unwrap();

    // A series whose Event has expired starts a new Event.
    let server = async {
        let seen = next(&mut fake).await;
        assert_eq!(seen.method, Method::PATCH);
        seen.answer(404, fixture("status-404-not-found.json"));
        let seen = next(&mut fake).await;
        assert_eq!(seen.method, Method::POST);
        seen.answer(201, created.to_string());
    };
    let (result, ()) = tokio::join!(c.record_event(&event), server);
    result.unwrap();
}

#[tokio::test]
async fn events_read_back_with_their_series_or_their_old_fields() {
    let (c, mut fake) = cluster();
    let pod = ObjectRef::namespaced("Pod", "default", "hello-1567197780-mn4mv");
    let old: Value = serde_json::from_str(&fixture("event-core-v1.json")).unwrap();
    let mut series = old.clone();
    series["series"] = json!({"count": 4, "lastObservedTime": "2019-08-30T20:50:00.250000Z"});
    series["eventTime"] = json!("2019-08-30T20:43:05.000001Z");
    let events = exchange(
        c.list_events(&pod),
        &mut fake,
        |s| {
            assert_eq!(s.path, "/api/v1/namespaces/default/events");
            assert_eq!(
                s.query.get("fieldSelector").map(String::as_str),
                Some("involvedObject.kind=Pod,involvedObject.name=hello-1567197780-mn4mv")
            );
        },
        200,
        json!({"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": [series, old]})
            .to_string(),
    )
    .await
    .unwrap();
    assert_eq!(
        events[0].regarding,
        pod.with_uid("c31fdeb8-cb66-11e9-990f-42010a800218")
    );
    assert_eq!(events[0].reason, "Pulled");
    assert_eq!(events[0].reporting_controller, "kubelet");
    assert_eq!(events[0].time.unwrap().to_string(), "2019-08-30T20:43:05Z");
    assert_eq!(events[0].count, 1);
    assert_eq!(events[1].count, 4, "oldest first, the series last");
    assert_eq!(
        events[1].time.unwrap().to_string(),
        "2019-08-30T20:50:00.25Z"
    );
}
