//! Reaching a real cluster: the kubeconfig, the client-side budgets, leader election.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args as ClapArgs;
use fleetlock_core::config::parse_duration;

/// Reaching a real cluster.
#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "Cluster")]
pub struct KubeArgs {
    /// A kubeconfig file. Without it: `KUBECONFIG`, `~/.kube/config`, then the in-cluster
    /// service account, as kubectl does.
    #[arg(long = "kubeconfig", env = "KUBE_CONFIG_PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use.
    #[arg(long = "context", env = "KUBE_CONTEXT")]
    pub context: Option<String>,

    /// Client-side limit on API requests per second.
    #[arg(long = "kube-qps", env = "KUBE_QPS", default_value_t = 50.0)]
    pub qps: f64,

    /// Requests allowed at once above the QPS after a quiet spell.
    #[arg(long = "kube-burst", env = "KUBE_BURST", default_value_t = 100)]
    pub burst: u32,

    /// Access reviews (TokenReview, SubjectAccessReview) per second made for callers of
    /// this server, on a budget of their own: callers with made-up tokens cannot use up the
    /// requests that drains and lock writes need. Past the budget callers get 429.
    #[arg(
        long = "kube-review-qps",
        env = "KUBE_REVIEW_QPS",
        default_value_t = 20.0
    )]
    pub review_qps: f64,

    /// Access reviews allowed at once above `--kube-review-qps` after a quiet spell.
    #[arg(
        long = "kube-review-burst",
        env = "KUBE_REVIEW_BURST",
        default_value_t = 40
    )]
    pub review_burst: u32,

    /// Reads made on callers' behalf (dry runs, drain plans, history: pods, disruption
    /// budgets, Events) per second, on a budget of their own: however many callers ask,
    /// evictions and lock writes under `--kube-qps` never wait behind them.
    #[arg(long = "kube-read-qps", env = "KUBE_READ_QPS", default_value_t = 10.0)]
    pub read_qps: f64,

    /// Reads for callers allowed at once above `--kube-read-qps`.
    #[arg(
        long = "kube-read-burst",
        env = "KUBE_READ_BURST",
        default_value_t = 20
    )]
    pub read_burst: u32,

    /// Leader-election requests (reading and renewing the leader Lease) per second, on a
    /// budget of their own: a burst of other requests queued under `--kube-qps` cannot push
    /// a renewal past its deadline and make leadership change hands.
    #[arg(
        long = "kube-election-qps",
        env = "KUBE_ELECTION_QPS",
        default_value_t = 5.0
    )]
    pub election_qps: f64,

    /// Leader-election requests allowed at once above `--kube-election-qps`.
    #[arg(
        long = "kube-election-burst",
        env = "KUBE_ELECTION_BURST",
        default_value_t = 10
    )]
    pub election_burst: u32,

    /// How long one API request may take.
    #[arg(long = "kube-timeout", env = "KUBE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// How long a watch of the cluster may keep failing before `/readyz` says no. Answers
    /// are never given from a cache whose watch is failing, whatever this is.
    #[arg(long = "cache-grace", env = "CACHE_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub cache_grace: Duration,

    /// Run background loops (resuming drains, releasing finished restarts) only while holding
    /// the leader Lease, so that one replica at a time does them.
    #[arg(long = "leader-election", env = "LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
}
