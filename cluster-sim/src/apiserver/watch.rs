//! Watches: from a resourceVersion still in the change window (or from now, with the current
//! objects as `ADDED`), in order, with bookmarks when asked, ending after `timeoutSeconds`.
//! A version older than the window, or a watcher that falls too far behind, gets the API
//! server's in-stream `410 Gone`.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::discovery::Resource;
use super::reads::list_candidates;
use super::render;
use super::select::{Selection, key_of};
use super::shared::Shared;
use super::status::ApiError;
use super::table::{Include, table};
use crate::changes::{Change, ChangeType, Object};
use crate::faults::Operation;
use crate::state::State;

/// How often a watch that asked for bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);
/// How long a watch lasts when the client does not say (the API server picks 30-60 min).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

fn watch_op(resource: Resource) -> Option<Operation> {
    Some(match resource {
        Resource::Nodes => Operation::WatchNodes,
        Resource::Pods => Operation::WatchPods,
        Resource::Leases => Operation::WatchLeases,
        Resource::Workloads(_) => Operation::WatchWorkloads,
        _ => return None,
    })
}

/// The change's object in JSON, if it is of this resource.
fn render_change(st: &State, resource: Resource, change: &Change) -> Option<Value> {
    let mut json = match (&change.object, resource) {
        (Object::Node(n), Resource::Nodes) => render::node(st, n),
        (Object::Pod(p), Resource::Pods) => render::pod(st, p),
        (Object::Lease(l), Resource::Leases) => render::lease(st, l),
        (Object::Workload(w), Resource::Workloads(kind)) if w.kind == kind => {
            render::workload(st, w)
        }
        _ => return None,
    };
    if change.type_ == ChangeType::Deleted {
        json["metadata"]["resourceVersion"] = json!(change.rv.to_string());
    }
    Some(json)
}

/// The object as the client asked for it: itself, or a one-row Table.
fn printed(
    resource: Resource,
    object: &Value,
    printing: Option<Include>,
    now: jiff::Timestamp,
) -> Value {
    match printing {
        Some(include) => table(resource, std::slice::from_ref(object), None, include, now),
        None => object.clone(),
    }
}

fn line(type_: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": type_, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

fn gone(message: String) -> Bytes {
    line("ERROR", &ApiError::expired(message).status())
}

/// What a watch request asks for, from its query.
struct WatchRequest {
    /// A streaming list (`sendInitialEvents=true`, kubectl 1.35+ and client-go's WatchList):
    /// the current objects, then a bookmark that says the initial events are over.
    initial_events: bool,
    /// The resourceVersion to start after; none: from now, with the current objects.
    from: Option<u64>,
    timeout: Duration,
    bookmarks: bool,
}

impl WatchRequest {
    fn from_query(query: &HashMap<String, String>) -> Result<Self, ApiError> {
        let initial_events = query.get("sendInitialEvents").map(String::as_str) == Some("true");
        let from = match query.get("resourceVersion").map(String::as_str) {
            _ if initial_events => None,
            None | Some("" | "0") => None,
            Some(v) => Some(
                v.parse::<u64>()
                    .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {v:?}")))?,
            ),
        };
        let timeout = query
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
        let bookmarks = query.get("allowWatchBookmarks").map(String::as_str) == Some("true");
        Ok(WatchRequest {
            initial_events,
            from,
            timeout,
            bookmarks,
        })
    }
}

/// Serves one watch.
pub(crate) async fn watch(
    shared: &Shared,
    resource: Resource,
    selection: Selection,
    query: &HashMap<String, String>,
    printing: Option<Include>,
) -> Result<Response, ApiError> {
    let Some(op) = watch_op(resource) else {
        return Err(ApiError::method_not_allowed(
            "the simulated API cannot watch this resource",
        ));
    };
    shared.sim.enter(op).await?;
    let request = WatchRequest::from_query(query)?;
    let from = request.from;

    // Everything up to now, under the lock, so nothing falls between it and the live feed.
    let start = shared.sim.with(|st| {
        let current: Vec<Value> = list_candidates(st, resource, &selection)
            .into_iter()
            .filter(|o| selection.matches(o))
            .collect();
        let present: HashSet<String> = current.iter().map(key_of).collect();
        let (first, replay, rx) = match from {
            None => {
                let now = st.current_rv();
                let (replay, rx) = st.changes.since(now)?;
                let end = request.initial_events.then_some(now);
                let added = added_lines(resource, &current, printing, st.wall(), end);
                (added, replay, rx)
            }
            Some(rv) => {
                let (replay, rx) = st.changes.since(rv)?;
                (Vec::new(), replay, rx)
            }
        };
        Some((first, replay, rx, present))
    });
    let Some((first, replay, rx, present)) = start else {
        let oldest = shared.sim.with(|st| st.changes.oldest());
        let message = format!(
            "too old resource version: {} ({oldest})",
            from.unwrap_or_default()
        );
        return Ok(stream_response(
            futures::stream::iter([Ok::<_, Infallible>(gone(message))]).boxed(),
        ));
    };
    let sim = shared.sim.clone();
    let kind = kind_name(resource);
    let state = Feed {
        sim,
        resource,
        selection: Arc::new(selection),
        present,
        replay: replay.into_iter().collect(),
        rx,
        deadline: tokio::time::Instant::now() + request.timeout,
        bookmark_at: request
            .bookmarks
            .then(|| tokio::time::Instant::now() + BOOKMARK_EVERY),
        kind,
        printing,
        done: false,
    };
    let live = futures::stream::unfold(state, |mut feed| async move {
        let bytes = feed.next().await?;
        Some((Ok::<_, Infallible>(bytes), feed))
    });
    let stream = futures::stream::iter(first.into_iter().map(Ok)).chain(live);
    Ok(stream_response(stream.boxed()))
}

/// The current objects as `ADDED` lines; with `end_at`, a streaming list's, then the bookmark
/// at that resourceVersion that says the initial events are over.
fn added_lines(
    resource: Resource,
    current: &[Value],
    printing: Option<Include>,
    wall: jiff::Timestamp,
    end_at: Option<u64>,
) -> Vec<Bytes> {
    let mut added: Vec<Bytes> = current
        .iter()
        .map(|o| line("ADDED", &printed(resource, o, printing, wall)))
        .collect();
    if let Some(now) = end_at {
        let (kind, api_version) = kind_name(resource);
        added.push(line(
            "BOOKMARK",
            &json!({
                "kind": kind,
                "apiVersion": api_version,
                "metadata": {
                    "resourceVersion": now.to_string(),
                    "annotations": {"k8s.io/initial-events-end": "true"},
                },
            }),
        ));
    }
    added
}

fn stream_response(
    stream: futures::stream::BoxStream<'static, Result<Bytes, Infallible>>,
) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache, private"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

fn kind_name(resource: Resource) -> (&'static str, &'static str) {
    match resource {
        Resource::Nodes => ("Node", "v1"),
        Resource::Pods => ("Pod", "v1"),
        Resource::Leases => ("Lease", "coordination.k8s.io/v1"),
        Resource::Workloads(k) => (k.as_str(), "apps/v1"),
        _ => ("Status", "v1"),
    }
}

/// The state of one watch after its start.
struct Feed {
    sim: crate::SimCluster,
    resource: Resource,
    selection: Arc<Selection>,
    present: HashSet<String>,
    replay: std::collections::VecDeque<Arc<Change>>,
    rx: broadcast::Receiver<Arc<Change>>,
    deadline: tokio::time::Instant,
    bookmark_at: Option<tokio::time::Instant>,
    kind: (&'static str, &'static str),
    /// Objects go out as one-row Tables (`kubectl get --watch`).
    printing: Option<Include>,
    done: bool,
}

impl Feed {
    /// The next line to send, or `None` when the watch is over.
    async fn next(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        loop {
            let change = match self.replay.pop_front() {
                Some(change) => change,
                None => {
                    let bookmark = async {
                        match self.bookmark_at {
                            Some(at) => tokio::time::sleep_until(at).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        received = self.rx.recv() => match received {
                            Ok(change) => change,
                            Err(broadcast::error::RecvError::Lagged(_)) => {
                                self.done = true;
                                return Some(gone("the watch fell too far behind; list again".into()));
                            }
                            Err(broadcast::error::RecvError::Closed) => {
                                // The history was dropped (break_watches): list again.
                                self.done = true;
                                return Some(gone("too old resource version: the watch was closed".into()));
                            }
                        },
                        () = tokio::time::sleep_until(self.deadline) => return None,
                        () = bookmark => {
                            self.bookmark_at = Some(tokio::time::Instant::now() + BOOKMARK_EVERY);
                            let rv = self.sim.with(|st| st.current_rv());
                            return Some(line("BOOKMARK", &json!({
                                "kind": self.kind.0,
                                "apiVersion": self.kind.1,
                                "metadata": {"resourceVersion": rv.to_string()},
                            })));
                        }
                    }
                }
            };
            let resource = self.resource;
            let Some((object, wall)) = self
                .sim
                .with(|st| Some((render_change(st, resource, &change)?, st.wall())))
            else {
                continue;
            };
            let key = key_of(&object);
            let matches = self.selection.matches(&object);
            let was = self.present.contains(&key);
            let type_ = match change.type_ {
                ChangeType::Deleted if was || matches => {
                    self.present.remove(&key);
                    "DELETED"
                }
                ChangeType::Deleted => continue,
                _ if matches => {
                    self.present.insert(key);
                    if was { "MODIFIED" } else { "ADDED" }
                }
                // It left the selection (a label changed, a pod was bound elsewhere).
                _ if was => {
                    self.present.remove(&key);
                    "DELETED"
                }
                _ => continue,
            };
            return Some(line(
                type_,
                &printed(resource, &object, self.printing, wall),
            ));
        }
    }
}
