//! Every adapter operation against a fake API server at the HTTP level: the request it sends
//! (method, path, query, body) and how it reads each answer, using bodies real API servers
//! send.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::time::Duration;

use cluster_api::{
    ClusterApi, Error, Event, EventType, EvictOptions, EvictionOutcome, LabelSelector, Lease,
    NodePatch, ObjectRef, PodFilter, PodPhase, WatchEvent, WorkloadFilter, WorkloadKind,
    WorkloadRef, whole_lists,
};
use futures::StreamExt;
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use k8s_adapter::{Access, KubeCluster, KubeOptions, RetryAfterLayer, required_permissions};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{Handle, SendResponse};

type Fake = Pin<Box<Handle<Request<Body>, Response<Body>>>>;

/// A cluster over a fake API server, with the adapter's own layer in the client's stack as
/// `KubeCluster::connect` puts it there.
fn cluster_with(options: KubeOptions) -> (KubeCluster, Fake) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let service = tower::Layer::layer(&RetryAfterLayer, service);
    (
        KubeCluster::new(Client::new(service, "default"), options),
        Box::pin(handle),
    )
}

fn cluster() -> (KubeCluster, Fake) {
    cluster_with(KubeOptions::default())
}

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One request the fake server received.
struct Seen {
    method: Method,
    path: String,
    query: HashMap<String, String>,
    content_type: String,
    body: Value,
    send: SendResponse<Response<Body>>,
}

impl Seen {
    /// Answers as the API server's throttling filters do: plain text and `Retry-After`.
    fn answer_throttled(self, retry_after: &str) {
        let response = Response::builder()
            .status(429)
            .header("content-type", "text/plain; charset=utf-8")
            .header("x-content-type-options", "nosniff")
            .header("retry-after", retry_after)
            .body(Body::from(
                b"Too many requests, please try again later.\n".to_vec(),
            ))
            .unwrap();
        self.send.send_response(response);
    }

    fn answer(self, status: u16, body: String) {
        let response = Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(body.into_bytes()))
            .unwrap();
        self.send.send_response(response);
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

async fn next(fake: &mut Fake) -> Seen {
    let (request, send) = tokio::time::timeout(Duration::from_secs(10), fake.next_request())
        .await
        .expect("a request")
        .expect("the client is alive");
    let (parts, body) = request.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let query = parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect();
    Seen {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query,
        content_type: parts
            .headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default(),
        body: if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        },
        send,
    }
}

/// Runs `call` while answering its one request with `status` and `body`, after `check`.
async fn exchange<T>(
    call: impl Future<Output = T>,
    fake: &mut Fake,
    check: impl FnOnce(&Seen),
    status: u16,
    body: String,
) -> T {
    let server = async {
        let seen = next(fake).await;
        check(&seen);
        seen.answer(status, body);
    };
    let (result, ()) = tokio::join!(call, server);
    result
}

/// The watch request a stream sends after its list, while the stream waits for events.
async fn watch_request<T: std::fmt::Debug>(
    stream: &mut cluster_api::WatchStream<T>,
    fake: &mut Fake,
) -> Seen {
    let seen = tokio::select! {
        event = stream.next() => panic!("an event before the watch was answered: {event:?}"),
        seen = next(fake) => seen,
    };
    assert_eq!(seen.query.get("watch").map(String::as_str), Some("true"));
    seen
}

mod configs;
mod errors;
mod events;
mod leases;
mod nodes;
mod pods;
mod secrets;
mod watches;
mod workloads;
