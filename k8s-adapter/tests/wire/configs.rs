//! ConfigMap and Secret watches: one kind in one namespace, read as digests of their data.

use cluster_api::{ConfigKind, config_digest};

use super::*;

fn config_map_list(data: Value) -> String {
    json!({
        "kind": "ConfigMapList", "apiVersion": "v1",
        "metadata": {"resourceVersion": "700"},
        "items": [{
            "metadata": {"name": "web", "namespace": "shop", "uid": "c1", "resourceVersion": "650"},
            "data": data
        }]
    })
    .to_string()
}

#[tokio::test]
async fn config_map_watches_list_then_follow_changes_as_digests() {
    let (c, mut fake) = cluster();
    let mut stream = c.watch_config("shop", ConfigKind::ConfigMap).await.unwrap();
    let server = async {
        let seen = next(&mut fake).await;
        assert_eq!(seen.path, "/api/v1/namespaces/shop/configmaps");
        assert!(!seen.query.contains_key("watch"));
        seen.answer(200, config_map_list(json!({"app.conf": "level=info"})));
        let seen = next(&mut fake).await;
        assert_eq!(seen.query.get("watch").map(String::as_str), Some("true"));
        let changed = json!({
            "kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "web", "namespace": "shop", "uid": "c1", "resourceVersion": "701"},
            "data": {"app.conf": "level=debug"},
            "binaryData": {"logo.png": "iVBORw=="}
        });
        seen.answer(
            200,
            format!("{}\n", json!({"type": "MODIFIED", "object": changed})),
        );
    };
    let client = async {
        let WatchEvent::Restarted(all) = stream.next().await.unwrap().unwrap() else {
            panic!("a list first");
        };
        assert_eq!(
            (all[0].name.as_str(), all[0].kind),
            ("web", ConfigKind::ConfigMap)
        );
        assert_eq!(
            all[0].digest,
            config_digest([("app.conf", &b"level=info"[..])])
        );
        let WatchEvent::Applied(changed) = stream.next().await.unwrap().unwrap() else {
            panic!("then the change");
        };
        assert_eq!(changed.resource_version, "701");
        // binaryData counts, decoded from base64.
        let png: &[u8] = &[0x89, b'P', b'N', b'G'];
        assert_eq!(
            changed.digest,
            config_digest([("app.conf", &b"level=debug"[..]), ("logo.png", png)])
        );
    };
    tokio::join!(server, client);
}

/// A Secret's data arrives base64-encoded; its digest is of the decoded values, the same
/// the simulation gives the same Secret.
#[tokio::test]
async fn secret_digests_are_of_the_decoded_data_as_in_the_simulation() {
    let (c, mut fake) = cluster();
    let mut stream = c.watch_config("shop", ConfigKind::Secret).await.unwrap();
    let server = async {
        let seen = next(&mut fake).await;
        assert_eq!(seen.path, "/api/v1/namespaces/shop/secrets");
        let list = json!({
            "kind": "SecretList", "apiVersion": "v1",
            "metadata": {"resourceVersion": "800"},
            "items": [{
                "metadata": {"name": "db", "namespace": "shop", "uid": "s1", "resourceVersion": "790"},
                "type": "Opaque",
                "data": {"password": "aHVudGVyMg=="}
            }]
        });
        seen.answer(200, list.to_string());
        // The watch that follows stays open, unanswered, for the rest of the test.
        let _watch = next(&mut fake).await;
        std::future::pending::<()>().await;
    };
    let client = async {
        let WatchEvent::Restarted(all) = stream.next().await.unwrap().unwrap() else {
            panic!("a list first");
        };
        let sim = cluster_sim::SimCluster::new();
        let same = sim.put_secret("shop", "db", &[("password", "hunter2")]);
        assert_eq!(all[0].kind, ConfigKind::Secret);
        assert_eq!(all[0].digest, same.digest);
    };
    tokio::select! {
        () = client => {}
        () = server => {}
    }
}
