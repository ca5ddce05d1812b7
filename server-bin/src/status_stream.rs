//! The live status stream (`GET /api/v1/service/status`, a websocket): a snapshot of the
//! workloads and restart sets the client may see, then every change, with keep-alive pings. Clients are
//! checked again while connected, may send only small frames, and are dropped when they stop
//! reading rather than queued for.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use cluster_api::WorkloadRef;
use restart_core::{ServiceStatus, SetStatus};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::AppState;
use crate::api::access::{Caller, Visible, WorkloadPath, peer_of, viewable, visible};
use crate::api::error::ApiError;
use crate::auth::{Action, AuthError, Peer};

/// A websocket client that does not take a message within this time is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest message or frame a status-stream client may send (it has nothing to say but
/// pongs and a close).
const MAX_CLIENT_MESSAGE: usize = 4 * 1024;
/// A client's read buffer to start with: its pongs and close frames are a few bytes.
const READ_BUFFER: usize = 512;
/// Keep-alive pings on the status stream.
const PING_EVERY: Duration = Duration::from_secs(30);

/// `?kind=&namespace=&name=`: one workload only.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct StreamFilter {
    kind: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
}

/// Upgrades an authorised client to the stream.
pub(crate) async fn status_stream(
    State(app): State<AppState>,
    extensions: axum::http::Extensions,
    Caller(who): Caller,
    headers: HeaderMap,
    Query(filter): Query<StreamFilter>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    app.auth.check_origin(&headers)?;
    let only = match (filter.kind, filter.namespace, filter.name) {
        (None, None, None) => None,
        (Some(kind), Some(namespace), Some(name)) => Some(
            viewable(
                &app,
                &who,
                WorkloadPath {
                    kind,
                    namespace,
                    name,
                },
            )
            .await?,
        ),
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "give all of kind, namespace and name, or none",
            ));
        }
    };
    let caller = StreamCaller {
        visible: match &only {
            Some(w) => Visible::Only(HashSet::from([w.clone()])),
            None => visible(&app, &who).await?,
        },
        headers: app.auth.credentials(&headers),
        peer: peer_of(&extensions),
        only,
    };
    let Ok(permit) = app.status_clients.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_clients",
            "the status stream has as many clients as it takes; try again later",
        ));
    };
    // Clients only answer pings and close: anything large is refused before it is read, and
    // the read buffer starts small (tungstenite's default, 128 KiB per socket, was most of
    // what a watcher cost; it grows for a larger frame, up to the limit). Messages are
    // written and flushed one by one.
    Ok(ws
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .on_upgrade(move |socket| async move {
            stream(app, socket, caller).await;
            drop(permit);
        }))
}

/// What a status-stream client is, kept to check again while it stays connected.
struct StreamCaller {
    /// The one workload it asked for, if it asked for one.
    only: Option<WorkloadRef>,
    /// What it may see, as last checked.
    visible: Visible,
    /// The headers that identified it.
    headers: HeaderMap,
    peer: Peer,
}

impl StreamCaller {
    /// Identifies and authorises the client again: `Err` with the reason to close the socket
    /// when it no longer may watch, `Ok(true)` when what it may see changed.
    async fn recheck(&mut self, app: &AppState) -> Result<bool, String> {
        let checked = async {
            let who = app.auth.authenticate(&self.headers, self.peer).await?;
            match &self.only {
                Some(w) => app
                    .auth
                    .may(&who, Action::View(w))
                    .await
                    .map(|()| Visible::Only(HashSet::from([w.clone()]))),
                None => visible(app, &who).await,
            }
        };
        match checked.await {
            Ok(visible) => {
                let changed = visible != self.visible;
                self.visible = visible;
                Ok(changed)
            }
            Err(e @ (AuthError::Unauthenticated(_) | AuthError::Forbidden(_))) => {
                Err(e.to_string())
            }
            // The authority could not be asked: keep what was checked last, ask again later.
            Err(e) => {
                tracing::info!(error = %e, "status stream: could not check a client again");
                Ok(false)
            }
        }
    }

    fn sees(&self, s: &ServiceStatus) -> bool {
        self.visible.sees(s)
    }

    /// A set is streamed to a client that watches everything and may see all its members.
    fn sees_set(&self, s: &SetStatus) -> bool {
        self.only.is_none() && self.visible.sees_all(&s.set.members)
    }
}

/// Counts a connected watcher for every workload it watches, for as long as it is connected.
struct Watching {
    app: AppState,
    workloads: Vec<WorkloadRef>,
}

impl Watching {
    fn new(app: AppState, only: Option<&WorkloadRef>) -> Self {
        let workloads: Vec<WorkloadRef> = match only {
            Some(w) => vec![w.clone()],
            None => app
                .restarter
                .allowlist()
                .iter()
                .map(|a| a.workload.clone())
                .collect(),
        };
        for w in &workloads {
            app.metrics.status_watchers(w, 1);
        }
        Watching { app, workloads }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        for w in &self.workloads {
            self.app.metrics.status_watchers(w, -1);
        }
    }
}

async fn stream(app: AppState, mut socket: WebSocket, mut caller: StreamCaller) {
    let _watching = Watching::new(app.clone(), caller.only.as_ref());
    let snapshot = |app: &AppState, caller: &StreamCaller| {
        let services: Vec<ServiceStatus> = app
            .restarter
            .statuses()
            .into_iter()
            .filter(|s| caller.sees(s))
            .collect();
        let sets: Vec<SetStatus> = app
            .restarter
            .set_statuses()
            .into_iter()
            .filter(|s| caller.sees_set(s))
            .collect();
        json!({"type": "snapshot", "services": services, "sets": sets}).to_string()
    };
    // Subscribe before the snapshot, so no change falls between them.
    let mut updates = app.restarter.subscribe();
    let mut set_updates = app.restarter.subscribe_sets();
    if !send(&mut socket, snapshot(&app, &caller)).await {
        return;
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut recheck = tokio::time::interval(app.stream_recheck);
    recheck.tick().await;
    loop {
        tokio::select! {
            update = updates.recv() => {
                let text = match update {
                    Ok(s) if caller.sees(&s) => json!({"type": "update", "service": s}).to_string(),
                    Ok(_) => continue,
                    // This client fell behind: it gets the whole picture again, nobody waits.
                    Err(RecvError::Lagged(_)) => snapshot(&app, &caller),
                    Err(RecvError::Closed) => break,
                };
                if !send(&mut socket, text).await {
                    break;
                }
            }
            update = set_updates.recv() => {
                let text = match update {
                    Ok(s) if caller.sees_set(&s) => json!({"type": "set", "set": s}).to_string(),
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => snapshot(&app, &caller),
                    Err(RecvError::Closed) => break,
                };
                if !send(&mut socket, text).await {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Ping(Bytes::new()))).await.map_or(true, |r| r.is_err()) {
                    break;
                }
            }
            // Boxed: authenticating (an access review through kube's client) is a large future,
            // and inline it would make every connected client's task that large for good.
            _ = recheck.tick() => match Box::pin(caller.recheck(&app)).await {
                Ok(false) => {}
                Ok(true) => {
                    if !send(&mut socket, snapshot(&app, &caller)).await {
                        break;
                    }
                }
                Err(reason) => {
                    // 1008: policy violation, the code for "you may no longer be here".
                    let frame = CloseFrame { code: 1008, reason: Utf8Bytes::from(truncate(reason)) };
                    let _ = tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
                    break;
                }
            },
        }
    }
}

/// A close frame's reason holds at most 123 bytes.
fn truncate(mut reason: String) -> String {
    if reason.len() > 123 {
        let mut end = 120;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push_str("...");
    }
    reason
}

/// Sends one message; false if the client is gone or too slow to take it.
async fn send(socket: &mut WebSocket, text: String) -> bool {
    matches!(
        tokio::time::timeout(
            SEND_TIMEOUT,
            socket.send(Message::Text(Utf8Bytes::from(text)))
        )
        .await,
        Ok(Ok(()))
    )
}
