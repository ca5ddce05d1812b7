//! Per-client request rates: one allowance per client address (or per user, for the requests
//! that read the cluster on a caller's behalf), so that one busy or hostile client is slowed
//! down without touching anyone else. A client over its rate gets 429 with `Retry-After`.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// One allowance per user name.
pub type PerUser = Keyed<String>;

/// A rate: requests per second, and how many may come at once after a quiet spell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Sustained requests per second.
    pub per_second: u32,
    /// Requests allowed at once.
    pub burst: u32,
}

/// One allowance per client address.
pub type PerClient = Keyed<IpAddr>;

/// One allowance per key (a client address, a user).
#[derive(Debug)]
pub struct Keyed<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    clock: DefaultClock,
    rate: Rate,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    /// A limiter at `rate`; `None` when the rate is zero (no limit).
    pub fn new(rate: Rate) -> Option<Self> {
        let per_second = NonZeroU32::new(rate.per_second)?;
        let burst = NonZeroU32::new(rate.burst.max(1)).unwrap_or(per_second);
        Some(Keyed {
            limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            clock: DefaultClock::default(),
            rate,
        })
    }

    /// The rate it allows.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Takes one request from `key`'s allowance, or says how long until it may ask again.
    pub fn check_key(&self, key: &K) -> Result<(), Duration> {
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets clients whose allowance is full again, so that the map does not grow with every
    /// address ever seen.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

impl Keyed<IpAddr> {
    /// Takes one request from `client`'s allowance (an IPv4-mapped IPv6 address counts as
    /// the IPv4 one), or says how long until it may ask again.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        self.check_key(&client.to_canonical())
    }
}

/// `Retry-After` for a wait: whole seconds, at least one.
pub fn retry_after(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_has_its_own_allowance() {
        let limiter = PerClient::new(Rate {
            per_second: 1,
            burst: 2,
        })
        .unwrap();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(limiter.check(a).is_ok() && limiter.check(a).is_ok());
        let wait = limiter.check(a).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert_eq!(retry_after(wait), 1);
        assert!(limiter.check(b).is_ok(), "another client is not slowed");
        // The same client over IPv4-mapped IPv6 is the same client.
        assert!(limiter.check("::ffff:10.0.0.1".parse().unwrap()).is_err());
        assert!(
            PerClient::new(Rate {
                per_second: 0,
                burst: 5
            })
            .is_none(),
            "0: no limit"
        );
    }
}
