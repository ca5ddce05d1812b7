//! Restarts on changes to real ConfigMaps and Secrets.

use super::*;

/// `restartOnConfigChange` on real ConfigMaps and Secrets: the first look records what the
/// pods started with; a change to the ConfigMap the Deployment reads restarts it once,
/// naming the ConfigMap, and so does a change to its Secret afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (scripts/cluster up; see the file's doc)"]
async fn changes_to_real_configmaps_and_secrets_restart_the_workload() {
    let real = real();
    let mut made = Made::new(&real, "config");
    let ns = made.namespace("config", &[]);
    real.apply(&format!(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {{name: web-config, namespace: {ns}}}
data: {{greeting: hello}}
---
apiVersion: v1
kind: Secret
metadata: {{name: web-secret, namespace: {ns}}}
stringData: {{password: one}}
"#
    ));
    real.apply(&workload(
        "Deployment",
        &ns,
        "web",
        2,
        serde_json::json!({
            "envFrom": [{"configMapRef": {"name": "web-config"}}],
            "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "web-secret", "key": "password"}}}],
        }),
    ));
    real.wait_rolled_out(&ns, "deployment/web");
    let config = format!(
        "services:\n  - {{kind: Deployment, name: web, namespace: {ns}, restartOnConfigChange: {{debounce: 1s}}}}\n"
    );
    let server = start(&made, "rm-real-config", &real.kubeconfig, &config, &ns, &[]).await;
    // The first look records the digests on the workload's lock Lease.
    until("the recorded configuration", async || {
        let leases = real.json(&["get", "leases", "-n", &ns]);
        leases["items"]
            .as_array()?
            .iter()
            .any(|l| {
                l["metadata"]["annotations"]["restart-manager.io/config-digests"]
                    .as_str()
                    .is_some_and(|d| {
                        d.contains("ConfigMap web-config") && d.contains("Secret web-secret")
                    })
            })
            .then_some(())
    })
    .await;
    assert_eq!(restarted_at(&real, &ns, "deployment/web"), None);

    for (change, what) in [
        (
            vec![
                "patch",
                "configmap",
                "web-config",
                "--type=merge",
                "-p",
                r#"{"data":{"greeting":"hi"}}"#,
            ],
            "ConfigMap web-config changed",
        ),
        (
            vec![
                "patch",
                "secret",
                "web-secret",
                "--type=merge",
                "-p",
                r#"{"stringData":{"password":"two"}}"#,
            ],
            "Secret web-secret changed",
        ),
    ] {
        let before = restarted_at(&real, &ns, "deployment/web");
        let mut args = change.clone();
        args.extend(["-n", &ns]);
        real.ok(&args);
        let s = until(what, async || {
            let s = status(server.addr, &format!("Deployment/{ns}/web")).await;
            let note = s["lastRestart"]["reason"]
                .as_str()
                .unwrap_or("")
                .to_string();
            (note.contains(what) && s["lastRestart"]["outcome"] == "complete").then_some(s)
        })
        .await;
        assert_eq!(s["lastRestart"]["by"], "config-change", "{s}");
        assert_ne!(restarted_at(&real, &ns, "deployment/web"), before);
        assert_eq!(
            s["message"],
            real.rollout_status(&ns, "deployment/web").as_str()
        );
        let events = described_events(&real, &ns, "deployment/web");
        assert!(events.contains(what), "{events}");
    }
}
