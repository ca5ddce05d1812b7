//! Watches that resume where they stopped, as client-go's reflector and kube-runtime's
//! watcher do.
//!
//! A stream lists (in pages), then watches from the list's `resourceVersion`, and keeps the
//! `resourceVersion` of the last event or bookmark it saw. When the watch ends (the API
//! server closes every watch after `timeoutSeconds`), breaks, or cannot be reopened for a
//! while, it is opened again *from that version*: the API server replays what happened
//! meanwhile, so nothing is missed and nothing is listed again. Only a `410 Gone` (that
//! version has left the API server's window) makes the stream list again, and it does so
//! itself: the consumer sees the new list as `Listed`/`Restarted` events, never an error, and
//! keeps serving what it had until the list is complete.
//!
//! An `Err` is passed on, ending the stream, only for what resuming cannot mend: a refusal
//! (403, 400, ...), a list that broke off after some of it was passed on, a list without a
//! `resourceVersion`.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cluster_api::{Error, Result, WatchEvent};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use kube::api::{Api, ListParams, WatchParams};
use kube::core::WatchEvent as KubeEvent;
use serde::de::DeserializeOwned;

use crate::errors;

/// The longest wait between attempts to resume a watch.
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// How long the API server is asked to keep a watch open (client-go picks 5 to 10 minutes,
/// kube-runtime 290 s).
const WATCH_SECONDS: u32 = 290;

/// A watch that has said nothing, not even a bookmark, for this long past its own timeout is
/// taken for a dead connection and resumed.
const IDLE_MARGIN: Duration = Duration::from_secs(5);

/// Whether a watch passes a list on object by object (`WatchEvent::Listed`, then an empty
/// `Restarted`) or gathers it into one `Restarted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pieces {
    Yes,
    No,
}

/// Objects per list page unless a watch says otherwise: client-go's pager's default.
const PAGE: u32 = 500;

/// What a watch selects, and how large its list pages are.
#[derive(Debug, Clone)]
pub(crate) struct Selection {
    pub fields: Option<String>,
    pub labels: Option<String>,
    /// Objects per list page.
    pub page: u32,
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            fields: None,
            labels: None,
            page: PAGE,
        }
    }
}

impl Selection {
    pub(crate) fn new(fields: Option<&str>, labels: Option<&str>) -> Self {
        Selection {
            fields: fields.map(str::to_string),
            labels: labels.map(str::to_string),
            ..Selection::default()
        }
    }

    fn list(&self, continue_token: Option<&str>) -> ListParams {
        ListParams {
            field_selector: self.fields.clone(),
            label_selector: self.labels.clone(),
            limit: Some(self.page),
            continue_token: continue_token.map(str::to_string),
            ..ListParams::default()
        }
    }

    fn watch(&self) -> WatchParams {
        WatchParams {
            field_selector: self.fields.clone(),
            label_selector: self.labels.clone(),
            timeout: Some(WATCH_SECONDS),
            bookmarks: true,
            ..WatchParams::default()
        }
    }
}

/// Where a stream is.
enum Phase<K> {
    /// Listing; the token of the next page, if the list is under way.
    List { continue_token: Option<String> },
    /// About to (re)open the watch from `version`.
    Resume { version: String },
    /// Watching; `version` is the last one seen.
    Watching {
        version: String,
        stream: BoxStream<'static, kube::Result<KubeEvent<K>>>,
    },
    /// Ended after an error.
    Done,
}

/// A failure, sorted by what it calls for.
enum Failure {
    /// `410 Gone`: the version (or list continue token) expired; list again.
    Gone(Error),
    /// The API server could not answer now: try again, from the same place, after a wait.
    Transient(Error, Option<Duration>),
    /// Trying again will not help.
    Fatal(Error),
}

impl Failure {
    fn of(e: kube::Error) -> Self {
        if let kube::Error::Api(status) = &e {
            return Self::of_status(status);
        }
        Self::sort(errors::map(e))
    }

    fn of_status(status: &kube::core::Status) -> Self {
        if status.code == 410 {
            return Failure::Gone(Error::unavailable(format!(
                "the watch expired: {}",
                status.message
            )));
        }
        Self::sort(errors::from_status(status))
    }

    fn sort(e: Error) -> Self {
        match e {
            Error::TooManyRequests { retry_after, .. } => Failure::Transient(e, retry_after),
            Error::Unavailable { .. } => Failure::Transient(e, None),
            other => Failure::Fatal(other),
        }
    }
}

/// One second, doubling to thirty; back to one after anything arrives.
struct Backoff(Duration);

impl Backoff {
    fn reset(&mut self) {
        self.0 = Duration::from_secs(1);
    }

    /// Waits the current backoff (or `at_least`, if longer), then doubles it.
    async fn wait(&mut self, at_least: Option<Duration>) {
        tokio::time::sleep(self.0.max(at_least.unwrap_or_default())).await;
        self.0 = (self.0 * 2).min(BACKOFF_MAX);
    }
}

struct Run<K, T> {
    api: Api<K>,
    selection: Selection,
    pieces: Pieces,
    convert: Arc<dyn Fn(K) -> T + Send + Sync>,
    phase: Phase<K>,
    backoff: Backoff,
    /// A list being gathered (`Pieces::No`).
    gathered: Vec<T>,
    /// Whether part of the current list was passed on (`Pieces::Yes`).
    passed_on: bool,
    /// Events ready to hand out.
    ready: VecDeque<Result<WatchEvent<T>>>,
}

/// A watch as a stream of `cluster-api` events that resumes from its last
/// `resourceVersion`; see the [module](self) documentation.
pub(crate) fn watch_events<K, T>(
    api: Api<K>,
    selection: Selection,
    pieces: Pieces,
    convert: impl Fn(K) -> T + Send + Sync + 'static,
) -> impl Stream<Item = Result<WatchEvent<T>>> + Send
where
    K: kube::Resource + Clone + DeserializeOwned + fmt::Debug + Send + 'static,
    T: Send + 'static,
{
    let run = Run {
        api,
        selection,
        pieces,
        convert: Arc::new(convert),
        phase: Phase::List {
            continue_token: None,
        },
        backoff: Backoff(Duration::from_secs(1)),
        gathered: Vec::new(),
        passed_on: false,
        ready: VecDeque::new(),
    };
    futures::stream::unfold(run, |mut run| async move {
        let event = run.next().await?;
        Some((event, run))
    })
}

// === impl Run ===

impl<K, T> Run<K, T>
where
    K: kube::Resource + Clone + DeserializeOwned + fmt::Debug + Send + 'static,
{
    async fn next(&mut self) -> Option<Result<WatchEvent<T>>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            match std::mem::replace(&mut self.phase, Phase::Done) {
                Phase::Done => return None,
                Phase::List { continue_token } => self.list_page(continue_token).await,
                Phase::Resume { version } => self.resume(version).await,
                Phase::Watching { version, stream } => self.watch(version, stream).await,
            }
        }
    }

    fn what(&self) -> &str {
        self.api.resource_url()
    }

    /// Ends the stream with `error`.
    fn fail(&mut self, error: Error) {
        self.gathered.clear();
        self.ready.push_back(Err(error));
        self.phase = Phase::Done;
    }

    /// Starts a fresh list.
    fn relist(&mut self, why: &Error) {
        tracing::info!(watch = %self.what(), reason = %why, "listing again");
        self.gathered.clear();
        self.passed_on = false;
        self.phase = Phase::List {
            continue_token: None,
        };
    }

    async fn list_page(&mut self, continue_token: Option<String>) {
        let params = self.selection.list(continue_token.as_deref());
        let page = match self.api.list(&params).await {
            Ok(page) => page,
            Err(e) => {
                match Failure::of(e) {
                    // An expired continue token: the list must start over, which a consumer
                    // that was handed part of it cannot be told but by an error.
                    Failure::Gone(e) if self.passed_on => self.fail(e),
                    Failure::Gone(e) => self.relist(&e),
                    Failure::Transient(e, wait) => {
                        tracing::warn!(watch = %self.what(), error = %e, "list failed; trying again");
                        self.backoff.wait(wait).await;
                        self.phase = Phase::List { continue_token };
                    }
                    Failure::Fatal(e) => self.fail(e),
                }
                return;
            }
        };
        self.backoff.reset();
        let version = page.metadata.resource_version.filter(|v| !v.is_empty());
        let next = page.metadata.continue_.filter(|c| !c.is_empty());
        for object in page.items {
            let object = (self.convert)(object);
            match self.pieces {
                Pieces::Yes => {
                    self.passed_on = true;
                    self.ready.push_back(Ok(WatchEvent::Listed(object)));
                }
                Pieces::No => self.gathered.push(object),
            }
        }
        match (next, version) {
            (Some(token), _) => {
                self.phase = Phase::List {
                    continue_token: Some(token),
                }
            }
            (None, Some(version)) => {
                let all = std::mem::take(&mut self.gathered);
                self.passed_on = false;
                self.ready.push_back(Ok(WatchEvent::Restarted(all)));
                self.phase = Phase::Resume { version };
            }
            (None, None) => self.fail(Error::unavailable(
                "the API server sent a list without a resourceVersion",
            )),
        }
    }

    async fn resume(&mut self, version: String) {
        match self.api.watch(&self.selection.watch(), &version).await {
            Ok(stream) => {
                self.phase = Phase::Watching {
                    version,
                    stream: stream.boxed(),
                }
            }
            Err(e) => self.failed_watch(version, Failure::of(e)).await,
        }
    }

    async fn watch(
        &mut self,
        mut version: String,
        mut stream: BoxStream<'static, kube::Result<KubeEvent<K>>>,
    ) {
        let idle = Duration::from_secs(WATCH_SECONDS.into()) + IDLE_MARGIN;
        let event = match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(event)) => event,
            // Closed by the API server at its timeout, or silent for too long: reopen.
            Ok(None) | Err(_) => {
                self.phase = Phase::Resume { version };
                return;
            }
        };
        let object_version = |o: &K| o.meta().resource_version.clone().filter(|v| !v.is_empty());
        match event {
            Ok(KubeEvent::Added(o) | KubeEvent::Modified(o)) => {
                self.backoff.reset();
                version = object_version(&o).unwrap_or(version);
                self.ready
                    .push_back(Ok(WatchEvent::Applied((self.convert)(o))));
            }
            Ok(KubeEvent::Deleted(o)) => {
                self.backoff.reset();
                version = object_version(&o).unwrap_or(version);
                self.ready
                    .push_back(Ok(WatchEvent::Deleted((self.convert)(o))));
            }
            Ok(KubeEvent::Bookmark(mark)) => {
                self.backoff.reset();
                if !mark.metadata.resource_version.is_empty() {
                    version = mark.metadata.resource_version;
                }
            }
            Ok(KubeEvent::Error(status)) => {
                return self
                    .failed_watch(version, Failure::of_status(&status))
                    .await;
            }
            Err(e) => return self.failed_watch(version, Failure::of(e)).await,
        }
        self.phase = Phase::Watching { version, stream };
    }

    /// A watch that could not be opened or broke: resume it from `version` after a wait, or
    /// list again if the version expired.
    async fn failed_watch(&mut self, version: String, failure: Failure) {
        match failure {
            Failure::Gone(e) => self.relist(&e),
            Failure::Transient(e, wait) => {
                tracing::warn!(
                    watch = %self.what(),
                    error = %e,
                    %version,
                    "watch failed; resuming it from the last version seen"
                );
                self.backoff.wait(wait).await;
                self.phase = Phase::Resume { version };
            }
            Failure::Fatal(e) => self.fail(e),
        }
    }
}
