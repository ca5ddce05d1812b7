//! `cluster-sim serve` as its own process: the Kubernetes API over the scenario, and the
//! simulation's controls (`/sim/v1/`) reachable while it serves, so that a test or a person
//! can inject faults into a cluster another process talks to.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const DEADLINE: Duration = Duration::from_secs(60);
const TOKEN: &str = "serve-test-admin";

const SCENARIO: &str = "
nodes:
  - name: n
    count: 2
workloads:
  - kind: Deployment
    namespace: shop
    name: web
    replicas: 2
users:
  - name: alice
    token: alice-token
";

struct Served {
    child: Child,
    url: String,
    dir: PathBuf,
    http: reqwest::Client,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Served {
    /// Starts `cluster-sim serve`; `name` keeps each test's files apart.
    async fn start(name: &str) -> Served {
        Served::start_with(name, &[]).await
    }

    /// Starts `cluster-sim serve` with more arguments.
    async fn start_with(name: &str, args: &[&str]) -> Served {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir =
            std::env::temp_dir().join(format!("cluster-sim-serve-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let scenario = dir.join("cluster.yaml");
        std::fs::write(&scenario, SCENARIO).unwrap();
        let kubeconfig = dir.join("kubeconfig");
        let child = Command::new(env!("CARGO_BIN_EXE_cluster-sim"))
            .args([
                "serve",
                "--plain-http",
                "--listen",
                "127.0.0.1:0",
                "--token",
                TOKEN,
            ])
            .args(["--watch-window", "5"])
            .args(args)
            .arg("--scenario")
            .arg(&scenario)
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let url = tokio::time::timeout(DEADLINE, server_url(&kubeconfig))
            .await
            .expect("cluster-sim serve wrote no kubeconfig");
        Served {
            child,
            url,
            dir,
            http: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    async fn control(&self, path: &str, body: Value) {
        let r = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert_eq!(r.status(), 200, "{path}: {}", r.text().await.unwrap());
    }
}

/// The server URL in the kubeconfig, once the process has written it.
async fn server_url(kubeconfig: &Path) -> String {
    loop {
        if let Ok(text) = std::fs::read_to_string(kubeconfig)
            && let Some(line) = text.lines().find(|l| l.trim_start().starts_with("server:"))
        {
            return line
                .trim_start()
                .trim_start_matches("server:")
                .trim()
                .to_string();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_injected_into_a_cluster_served_by_another_process() {
    let s = Served::start("faults").await;
    let nodes = s.call(reqwest::Method::GET, "/api/v1/nodes", None).await;
    assert_eq!(nodes.status(), 200);
    let nodes: Value = nodes.json().await.unwrap();
    assert_eq!(nodes["items"].as_array().unwrap().len(), 2);

    // Only the administrator reaches the controls.
    let alice = s
        .http
        .get(format!("{}/sim/v1/calls", s.url))
        .bearer_auth("alice-token")
        .send()
        .await
        .unwrap();
    assert_eq!(alice.status(), 403);
    let anonymous = s
        .http
        .get(format!("{}/sim/v1/calls", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // Throttling, as priority and fairness answers: plain text and Retry-After; then served.
    s.control(
        "/sim/v1/faults/errors",
        json!({"operation": "list_nodes", "error": {"code": 429, "retryAfterSeconds": 3}}),
    )
    .await;
    let throttled = s.call(reqwest::Method::GET, "/api/v1/nodes", None).await;
    assert_eq!(throttled.status(), 429);
    assert_eq!(throttled.headers()["retry-after"], "3");
    assert!(
        throttled.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let again = s.call(reqwest::Method::GET, "/api/v1/nodes", None).await;
    assert_eq!(again.status(), 200, "one failure only");

    // An unavailable API server, in the Status shape.
    s.control(
        "/sim/v1/faults/errors",
        json!({"operation": "get_workload", "error": {"code": 503}, "times": 2}),
    )
    .await;
    for _ in 0..2 {
        let r = s
            .call(
                reqwest::Method::GET,
                "/apis/apps/v1/namespaces/shop/deployments/web",
                None,
            )
            .await;
        assert_eq!(r.status(), 500);
        let status: Value = r.json().await.unwrap();
        assert_eq!(status["reason"], "InternalError");
    }

    // A dropped watch: the open stream ends with an error event.
    let watch = s
        .call(reqwest::Method::GET, "/api/v1/nodes?watch=true", None)
        .await;
    assert_eq!(watch.status(), 200);
    let mut stream = watch.bytes_stream();
    s.control("/sim/v1/watches/break", json!({})).await;
    let ended = tokio::time::timeout(DEADLINE, async {
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        text
    })
    .await
    .expect("the watch never ended");
    let last: Value = serde_json::from_str(ended.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "ERROR", "{ended}");

    // The counters saw all of it.
    let calls: Value = s
        .call(reqwest::Method::GET, "/sim/v1/calls", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(calls["operations"]["list_nodes"], 3, "{calls}");
    assert!(calls["requests"].as_u64().unwrap() >= 10, "{calls}");

    // Bad controls are named, not guessed at.
    let bad = s
        .call(
            reqwest::Method::POST,
            "/sim/v1/faults/latency",
            Some(json!({"operation": "list_everything", "millis": 5})),
        )
        .await;
    assert_eq!(bad.status(), 400);
    let message = bad.json::<Value>().await.unwrap()["message"].to_string();
    assert!(
        message.contains("unknown operation \\\"list_everything\\\"")
            && message.contains("evict_pod"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_version_older_than_the_window_is_told_410_gone() {
    let s = Served::start("window").await;
    let list: Value = s
        .call(reqwest::Method::GET, "/api/v1/nodes", None)
        .await
        .json()
        .await
        .unwrap();
    let listed_at = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    // More changes than the window keeps (5).
    for i in 0..8 {
        let patch = json!({"metadata": {"labels": {"step": i.to_string()}}});
        let r = s
            .http
            .patch(format!("{}/api/v1/nodes/n-1", s.url))
            .bearer_auth(TOKEN)
            .header("content-type", "application/merge-patch+json")
            .body(patch.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    let watch = s
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/nodes?watch=true&resourceVersion={listed_at}"),
            None,
        )
        .await;
    assert_eq!(
        watch.status(),
        200,
        "the API server answers 200 and says 410 in the stream"
    );
    let text = tokio::time::timeout(DEADLINE, watch.text())
        .await
        .unwrap()
        .unwrap();
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "ERROR", "{text}");
    assert_eq!(first["object"]["code"], 410, "{text}");
    assert_eq!(first["object"]["reason"], "Expired", "{text}");

    // A version still in the window replays what came after it, in order.
    let recent = listed_at.parse::<u64>().unwrap() + 6;
    let watch = s
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/nodes?watch=true&resourceVersion={recent}&timeoutSeconds=1"),
            None,
        )
        .await;
    let text = tokio::time::timeout(DEADLINE, watch.text())
        .await
        .unwrap()
        .unwrap();
    let steps: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|e| {
            e["object"]["metadata"]["labels"]["step"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(steps, ["6", "7"], "{text}");
}

/// Listed Nodes carry the same images as a Node read alone (a list splices them in as text).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_nodes_carry_their_images_like_a_node_read_alone() {
    let s = Served::start_with("images", &["--node-images", "3"]).await;
    let list: Value = s
        .call(reqwest::Method::GET, "/api/v1/nodes?limit=1", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["kind"], "NodeList");
    assert_eq!(list["apiVersion"], "v1");
    assert!(
        list["metadata"]["continue"].is_string(),
        "{}",
        list["metadata"]
    );
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert!(
        item.get("kind").is_none(),
        "list items have no kind of their own"
    );
    let name = item["metadata"]["name"].as_str().unwrap();
    let alone: Value = s
        .call(reqwest::Method::GET, &format!("/api/v1/nodes/{name}"), None)
        .await
        .json()
        .await
        .unwrap();
    let images = item["status"]["images"].as_array().unwrap();
    assert_eq!(images.len(), 3);
    assert_eq!(item["status"]["images"], alone["status"]["images"]);
    assert_eq!(item["status"]["nodeInfo"], alone["status"]["nodeInfo"]);
    assert_eq!(item["metadata"], alone["metadata"]);
}
