//! `--auth kubernetes`: bearer tokens checked with TokenReview, rights with
//! SubjectAccessReview, both answered by the cluster and remembered briefly.
//!
//! Nothing a caller sends can grow the server's memory without bound or use up the turns the
//! drains need:
//! - tokens longer than [`MAX_TOKEN_LEN`](super::MAX_TOKEN_LEN) are refused before any review;
//! - answers are kept in bounded maps keyed by a SHA-256 of what was asked (a token is never
//!   kept in memory as a key), valid and refused answers apart, so that a flood of made-up
//!   tokens only ever evicts other refusals;
//! - reviews run on the adapter's separate review budget and are refused at once (429) when
//!   it is spent, instead of queueing in front of evictions and lock writes;
//! - a token not accepted recently is reviewed only within its client address's share
//!   ([`UNKNOWN_PER_CLIENT`]) and within half of that budget, so that made-up tokens sent
//!   from a few addresses cannot lock out callers whose tokens were accepted before
//!   ([`ReviewGate`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use k8s_adapter::{Access, KubeCluster, RateLimiter, User};
use parking_lot::Mutex;
use restart_core::Identity;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::error::AuthError;

/// How long an accepted token or an allowed review is taken without asking again, unless
/// configured (kube-apiserver's webhook caches keep them two and five minutes).
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(30);
/// How long a refused token or a denied review holds at the most.
const REFUSED_TTL: Duration = Duration::from_secs(10);
/// Valid tokens (and allowed reviews) remembered at most.
const VALID_ENTRIES: usize = 4096;
/// Refused tokens (and denied reviews) remembered at most.
const REFUSED_ENTRIES: usize = 1024;
/// How long a token once accepted counts as known: its reviews go ahead of unknown ones'.
const RECENT_TTL: Duration = Duration::from_secs(3600);
/// Reviews of unknown tokens one client address may cause: per second, and at once.
pub(super) const UNKNOWN_PER_CLIENT: (f64, u32) = (1.0, 5);
/// Client addresses whose allowance is remembered at most.
const CLIENTS: usize = 4096;

/// Which token reviews may go ahead. A token this server accepted within [`RECENT_TTL`]
/// always may (the review budget is then the only limit); an unknown one only within its
/// client address's share ([`UNKNOWN_PER_CLIENT`]) and within half of the review budget, so
/// that the other half stays for callers already known, however many addresses make tokens
/// up.
pub(super) struct ReviewGate {
    unknown: RateLimiter,
    per_client: Mutex<HashMap<IpAddr, RateLimiter>>,
    recent: Mutex<HashMap<[u8; 32], Instant>>,
}

impl ReviewGate {
    /// A gate for a review budget of `review_qps` per second, `review_burst` at once.
    pub(super) fn new(review_qps: f64, review_burst: u32) -> Self {
        ReviewGate {
            unknown: RateLimiter::new(review_qps / 2.0, (review_burst / 2).max(1)),
            per_client: Mutex::new(HashMap::new()),
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the review of the token `key` from `client` may go ahead now.
    fn admit(&self, key: &[u8; 32], client: Option<IpAddr>) -> Result<(), AuthError> {
        let now = Instant::now();
        if self
            .recent
            .lock()
            .get(key)
            .is_some_and(|until| *until > now)
        {
            return Ok(());
        }
        let busy = |retry_after: u64| AuthError::Busy {
            message: "too many unknown tokens are being checked; try again shortly".into(),
            retry_after,
        };
        if let Some(ip) = client.map(|ip| ip.to_canonical()) {
            let mut clients = self.per_client.lock();
            if !clients.contains_key(&ip) && clients.len() >= CLIENTS {
                clients.clear();
            }
            let allowance = clients
                .entry(ip)
                .or_insert_with(|| RateLimiter::new(UNKNOWN_PER_CLIENT.0, UNKNOWN_PER_CLIENT.1));
            if let Err(late) = allowance.try_acquire() {
                return Err(busy(retry_after(late.turn, now)));
            }
        }
        self.unknown
            .try_acquire()
            .map_err(|late| busy(retry_after(late.turn, now)))
    }

    /// Remembers that the token `key` was accepted.
    fn accepted(&self, key: [u8; 32]) {
        let now = Instant::now();
        let mut recent = self.recent.lock();
        make_room(&mut recent, VALID_ENTRIES, now, |until| *until);
        recent.insert(key, now + RECENT_TTL);
    }
}

/// Whole seconds until `turn`, at least one.
fn retry_after(turn: Instant, now: Instant) -> u64 {
    turn.saturating_duration_since(now).as_secs().max(1)
}

/// TokenReview and SubjectAccessReview against the cluster, with answers cached briefly.
pub struct KubeAuth {
    cluster: KubeCluster,
    /// Where the group Leases live (pausing a group is `update` on its Lease).
    pub(super) namespace: String,
    /// The audiences a token must have been issued for; empty: the API server's own.
    audiences: Vec<String>,
    /// How long a positive answer is trusted (a negative one: up to [`REFUSED_TTL`]).
    ttl: Duration,
    tokens: Mutex<Answers<Identity>>,
    rights: Mutex<Answers<()>>,
    gate: ReviewGate,
}

impl std::fmt::Debug for KubeAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeAuth")
            .field("namespace", &self.namespace)
            .field("audiences", &self.audiences)
            .finish()
    }
}

impl KubeAuth {
    /// Reviews tokens and rights with this cluster; tokens must be good for one of
    /// `audiences` (none: the API server's own). A token accepted or a right allowed is
    /// trusted for `ttl` before the cluster is asked again: a revoked token or binding takes
    /// that long to count.
    /// `review` is the adapter's review budget (per second, at once), of which unknown tokens
    /// get half (see the module documentation).
    pub fn new(
        cluster: KubeCluster,
        namespace: impl Into<String>,
        audiences: Vec<String>,
        ttl: Duration,
        review: (f64, u32),
    ) -> Self {
        KubeAuth {
            cluster,
            namespace: namespace.into(),
            audiences,
            ttl,
            tokens: Mutex::new(Answers::default()),
            rights: Mutex::new(Answers::default()),
            gate: ReviewGate::new(review.0, review.1),
        }
    }

    pub(super) async fn identity(
        &self,
        token: &str,
        client: Option<IpAddr>,
    ) -> Result<Identity, AuthError> {
        self.identity_for(token, client, &self.audiences, b"").await
    }

    /// Who a token for the API server's own audience belongs to: for `/metrics` only, where
    /// Prometheus presents its ServiceAccount's token. Its answers are remembered apart from
    /// [`identity`](Self::identity)'s, so that such a token never counts for the API.
    pub(super) async fn scraper_identity(
        &self,
        token: &str,
        client: Option<IpAddr>,
    ) -> Result<Identity, AuthError> {
        if self.audiences.is_empty() {
            return self.identity(token, client).await;
        }
        self.identity_for(token, client, &[], b"scraper").await
    }

    async fn identity_for(
        &self,
        token: &str,
        client: Option<IpAddr>,
        audiences: &[String],
        purpose: &[u8],
    ) -> Result<Identity, AuthError> {
        let invalid = || AuthError::Unauthenticated("the bearer token is not valid".into());
        let key = digest(&[purpose, token.as_bytes()]);
        if let Some(answer) = self.tokens.lock().get(&key, Instant::now()) {
            return answer.ok_or_else(invalid);
        }
        self.gate.admit(&key, client)?;
        let reviewed = self
            .cluster
            .review_token(token, audiences)
            .await
            .map_err(|e| unavailable("check the token", e))?;
        let who = reviewed.map(|u| Identity {
            user: u.name,
            groups: u.groups,
            uid: u.uid,
            extra: u.extra,
        });
        if who.is_some() {
            self.gate.accepted(key);
        }
        self.tokens
            .lock()
            .put(key, who.clone(), Instant::now(), self.ttls());
        who.ok_or_else(invalid)
    }

    pub(super) async fn may(&self, who: &Identity, access: &Access<'_>) -> Result<bool, AuthError> {
        let key = digest(&[
            who.user.as_bytes(),
            who.uid.as_bytes(),
            who.groups.join("\n").as_bytes(),
            format!("{:?}", who.extra).as_bytes(),
            access.verb.as_bytes(),
            access.group.as_bytes(),
            access.resource.as_bytes(),
            access.namespace.as_bytes(),
            access.name.as_bytes(),
        ]);
        if let Some(answer) = self.rights.lock().get(&key, Instant::now()) {
            return Ok(answer.is_some());
        }
        let user = User {
            name: who.user.clone(),
            uid: who.uid.clone(),
            groups: who.groups.clone(),
            extra: who.extra.clone(),
        };
        let allowed = self
            .cluster
            .subject_may(&user, access)
            .await
            .map_err(|e| unavailable("check rights", e))?;
        self.rights
            .lock()
            .put(key, allowed.then_some(()), Instant::now(), self.ttls());
        Ok(allowed)
    }

    fn ttls(&self) -> (Duration, Duration) {
        (self.ttl, self.ttl.min(REFUSED_TTL))
    }
}

/// A review that could not be made: the review budget is spent (429), or the cluster did
/// not answer (503). The API's own words stay in the log.
fn unavailable(what: &str, e: cluster_api::Error) -> AuthError {
    match e {
        cluster_api::Error::TooManyRequests { retry_after, .. } => AuthError::Busy {
            message: format!("too many callers are being checked right now; could not {what}"),
            retry_after: retry_after.map_or(1, |d| d.as_secs().max(1)),
        },
        e => {
            tracing::warn!(error = %e, "an access review failed");
            AuthError::Unavailable(format!(
                "could not {what} with the Kubernetes API; try again"
            ))
        }
    }
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().into()
}

/// Positive and negative answers, each in a map of bounded size whose entries expire.
#[derive(Debug)]
struct Answers<V> {
    valid: HashMap<[u8; 32], (V, Instant)>,
    refused: HashMap<[u8; 32], Instant>,
}

impl<V> Default for Answers<V> {
    fn default() -> Self {
        Answers {
            valid: HashMap::new(),
            refused: HashMap::new(),
        }
    }
}

impl<V: Clone> Answers<V> {
    /// A remembered answer still in force: `Some(None)` for a refusal.
    fn get(&self, key: &[u8; 32], now: Instant) -> Option<Option<V>> {
        if let Some((v, until)) = self.valid.get(key)
            && *until > now
        {
            return Some(Some(v.clone()));
        }
        match self.refused.get(key) {
            Some(until) if *until > now => Some(None),
            _ => None,
        }
    }

    /// Remembers an answer for its time to live, making room if the map is full.
    fn put(&mut self, key: [u8; 32], answer: Option<V>, now: Instant, ttl: (Duration, Duration)) {
        match answer {
            Some(v) => {
                self.refused.remove(&key);
                make_room(&mut self.valid, VALID_ENTRIES, now, |(_, until)| *until);
                self.valid.insert(key, (v, now + ttl.0));
            }
            None => {
                self.valid.remove(&key);
                make_room(&mut self.refused, REFUSED_ENTRIES, now, |until| *until);
                self.refused.insert(key, now + ttl.1);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> (usize, usize) {
        (self.valid.len(), self.refused.len())
    }
}

/// Keeps `map` under `cap` entries: first what has expired goes, then what expires soonest.
fn make_room<T>(
    map: &mut HashMap<[u8; 32], T>,
    cap: usize,
    now: Instant,
    until: impl Fn(&T) -> Instant,
) {
    if map.len() < cap {
        return;
    }
    map.retain(|_, v| until(v) > now);
    if map.len() >= cap
        && let Some(first) = map.iter().min_by_key(|(_, v)| until(v)).map(|(k, _)| *k)
    {
        map.remove(&first);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn refusals_never_push_out_valid_answers_and_both_stay_bounded() {
        let mut answers: Answers<&str> = Answers::default();
        let ttl = (Duration::from_secs(60), REFUSED_TTL);
        let now = Instant::now();
        let alice = digest(&[b"alice's token"]);
        answers.put(alice, Some("alice"), now, ttl);
        for i in 0..10_000u32 {
            answers.put(digest(&[&i.to_be_bytes()]), None, now, ttl);
        }
        assert_eq!(answers.len(), (1, REFUSED_ENTRIES));
        assert_eq!(answers.get(&alice, now), Some(Some("alice")));
        assert_eq!(
            answers.get(&digest(&[&9_999u32.to_be_bytes()]), now),
            Some(None)
        );
        // Answers expire: a refusal sooner than an acceptance.
        let later = now + REFUSED_TTL;
        assert_eq!(
            answers.get(&digest(&[&9_999u32.to_be_bytes()]), later),
            None
        );
        assert_eq!(answers.get(&alice, later), Some(Some("alice")));
        assert_eq!(answers.get(&alice, now + Duration::from_secs(60)), None);
        for i in 0..(VALID_ENTRIES as u32 + 100) {
            answers.put(digest(&[b"valid", &i.to_be_bytes()]), Some("x"), now, ttl);
        }
        assert_eq!(answers.len().0, VALID_ENTRIES);
    }

    /// The probe's attack: 40 clients on 4 addresses, each within its request rate, sending
    /// made-up tokens. They use their addresses' shares and half the review budget; a caller
    /// whose token was accepted before (its cached answer since expired) is still reviewed.
    #[tokio::test(start_paused = true)]
    async fn made_up_tokens_cannot_lock_out_a_known_caller() {
        let gate = ReviewGate::new(20.0, 20);
        let alice = digest(&[b"alice's token"]);
        gate.admit(&alice, Some("10.0.9.9".parse().unwrap()))
            .unwrap();
        gate.accepted(alice);
        let mut refused = 0;
        let mut admitted = 0;
        for second in 0..16u64 {
            tokio::time::advance(Duration::from_secs(1)).await;
            for i in 0..40u32 {
                let client: IpAddr = format!("10.0.0.{}", i % 4).parse().unwrap();
                let made_up = digest(&[b"made up", &second.to_be_bytes(), &i.to_be_bytes()]);
                match gate.admit(&made_up, Some(client)) {
                    Ok(()) => admitted += 1,
                    Err(AuthError::Busy { .. }) => refused += 1,
                    Err(e) => panic!("{e}"),
                }
            }
            // The known caller is reviewed every time it needs to be.
            assert!(
                gate.admit(&alice, Some("10.0.9.9".parse().unwrap()))
                    .is_ok()
            );
        }
        // The first second, half the review budget's burst (10); then each address's one a
        // second. The rest were refused at once, before any review.
        assert_eq!(admitted, 10 + 15 * 4, "refused {refused}");
        assert_eq!(refused, 16 * 40 - admitted);
        // A new address with an unknown token is still served while the flood's share lasts.
        let stranger = digest(&[b"a new caller"]);
        assert!(
            gate.admit(&stranger, Some("10.0.5.5".parse().unwrap()))
                .is_ok()
        );
    }

    /// Unknown tokens from many addresses together get no more than half the budget.
    #[tokio::test(start_paused = true)]
    async fn unknown_tokens_get_at_most_half_the_review_budget() {
        let gate = ReviewGate::new(20.0, 20);
        let mut admitted = 0;
        for i in 0..1000u32 {
            let client: IpAddr = format!("10.1.{}.{}", i / 250, i % 250).parse().unwrap();
            if gate
                .admit(&digest(&[&i.to_be_bytes()]), Some(client))
                .is_ok()
            {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 10, "half the burst of 20");
    }

    #[test]
    fn keys_keep_their_parts_apart() {
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"a", b"bc"]));
    }
}
