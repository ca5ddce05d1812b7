//! What both cores are built with besides their own configuration: the clock, the replica's
//! name, leadership, how long a cache may go stale, and the shutdown signal.
//!
//! Each core's builder implements [`CoreBuilder`], so these options are set the same way on
//! both (`Coordinator::builder(..).clock(..).shutdown(..)`), and a program that runs both
//! builds one [`CoreOptions`] and hands it to each with [`CoreBuilder::options`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};

/// How long a cache may go without a working watch before a core says it is not ready, unless
/// set otherwise.
pub const DEFAULT_CACHE_GRACE: Duration = Duration::from_secs(30);

/// The options the two cores share.
#[derive(Clone)]
pub struct CoreOptions {
    /// The wall clock: the system clock unless set; tests pass the simulated cluster.
    pub clock: Arc<dyn Clock>,
    /// This replica's name, recorded on the locks it takes and the Events it writes.
    pub instance: String,
    /// When set, the work done once for the whole cluster (resuming drains, judging
    /// rollouts, releasing finished locks, driving sets and schedules) happens only while it
    /// says `true`: with several replicas, only the elected leader's. Requests are served
    /// regardless. Unset, this replica always does that work.
    pub leadership: Option<watch::Receiver<bool>>,
    /// How long a cache may go without a working watch before the core says it is not ready.
    pub cache_grace: Duration,
    /// Cancelled to stop the core: its `run` then stops its watches and loops, tells what it
    /// spawned to stop at the next safe point, waits for them and returns.
    pub shutdown: CancellationToken,
}

impl Default for CoreOptions {
    fn default() -> Self {
        CoreOptions {
            clock: Arc::new(SystemClock),
            instance: "restart-manager".into(),
            leadership: None,
            cache_grace: DEFAULT_CACHE_GRACE,
            shutdown: CancellationToken::new(),
        }
    }
}

impl std::fmt::Debug for CoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreOptions")
            .field("instance", &self.instance)
            .field("leadership", &self.leadership.as_ref().map(|l| *l.borrow()))
            .field("cache_grace", &self.cache_grace)
            .field("shutdown", &self.shutdown.is_cancelled())
            .finish_non_exhaustive()
    }
}

/// The builder methods for [`CoreOptions`], shared by both cores' builders.
pub trait CoreBuilder: Sized {
    /// The options being collected.
    fn options_mut(&mut self) -> &mut CoreOptions;

    /// All the shared options at once, replacing any set before.
    fn options(mut self, options: CoreOptions) -> Self {
        *self.options_mut() = options;
        self
    }

    /// The wall clock (see [`CoreOptions::clock`]).
    fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.options_mut().clock = clock;
        self
    }

    /// This replica's name (see [`CoreOptions::instance`]).
    fn instance(mut self, name: impl Into<String>) -> Self {
        self.options_mut().instance = name.into();
        self
    }

    /// Does the once-per-cluster work only while `leader` says `true` (see
    /// [`CoreOptions::leadership`]).
    fn leadership(mut self, leader: watch::Receiver<bool>) -> Self {
        self.options_mut().leadership = Some(leader);
        self
    }

    /// How long a cache may go stale before the core is not ready (see
    /// [`CoreOptions::cache_grace`]).
    fn cache_grace(mut self, grace: Duration) -> Self {
        self.options_mut().cache_grace = grace;
        self
    }

    /// The signal that stops the core (see [`CoreOptions::shutdown`]).
    fn shutdown(mut self, token: CancellationToken) -> Self {
        self.options_mut().shutdown = token;
        self
    }
}
