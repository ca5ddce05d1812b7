//! Secrets: the service's own, read and created whole.

use super::*;

use cluster_api::Secret;

#[tokio::test]
async fn secrets_are_read_with_their_data_and_created_immutable() {
    let (c, mut fake) = cluster();
    // `a2V5` is base64 for `key`: the data comes back decoded.
    let secret = exchange(
        c.get_secret("restart-manager", "restart-manager-event-key"),
        &mut fake,
        |s| {
            assert_eq!(
                (s.method.clone(), s.path.as_str()),
                (
                    Method::GET,
                    "/api/v1/namespaces/restart-manager/secrets/restart-manager-event-key"
                )
            );
        },
        200,
        json!({
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": {
                "name": "restart-manager-event-key",
                "namespace": "restart-manager",
                "resourceVersion": "4711",
            },
            "type": "Opaque",
            "immutable": true,
            "data": {"key": "a2V5"},
        })
        .to_string(),
    )
    .await
    .unwrap();
    assert_eq!(secret.resource_version, "4711");
    assert_eq!(secret.data["key"], b"key");

    // Create: POST of an immutable Opaque Secret, data base64-encoded; a taken name is
    // AlreadyExists.
    let new = Secret::new("restart-manager", "restart-manager-event-key").with("key", [0u8, 255]);
    let err = exchange(
        c.create_secret(&new),
        &mut fake,
        |s| {
            assert_eq!(
                (s.method.clone(), s.path.as_str()),
                (Method::POST, "/api/v1/namespaces/restart-manager/secrets")
            );
            assert_eq!(s.body["metadata"]["name"], "restart-manager-event-key");
            assert_eq!(s.body["type"], "Opaque");
            assert_eq!(s.body["immutable"], true);
            assert_eq!(s.body["data"], json!({"key": "AP8="}));
            assert!(s.body["metadata"].get("resourceVersion").is_none());
        },
        409,
        fixture("status-409-already-exists-core.json"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");

    // A missing one is NotFound.
    let err = exchange(
        c.get_secret("restart-manager", "restart-manager-event-key"),
        &mut fake,
        |_| {},
        404,
        fixture("status-404-not-found.json"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}
