//! A client-side token bucket, like client-go's QPS and burst.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Lets `qps` requests per second through on average, `burst` at once, and nothing while
/// the API server has asked us to wait ([`hold_until`](Self::hold_until)).
#[derive(Debug)]
pub struct RateLimiter {
    qps: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
    hold: std::sync::Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A limiter that starts full.
    pub fn new(qps: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        RateLimiter {
            qps: qps.max(0.001),
            burst,
            state: Mutex::new((burst, Instant::now())),
            hold: std::sync::Mutex::new(None),
        }
    }

    /// Lets no request through before `until` (a `Retry-After` from the API server); an
    /// earlier hold is only ever extended.
    pub fn hold_until(&self, until: Instant) {
        let mut hold = self.hold.lock().unwrap_or_else(|e| e.into_inner());
        if hold.is_none_or(|h| h < until) {
            *hold = Some(until);
        }
    }

    /// Waits out any hold, then for a token.
    pub async fn acquire(&self) {
        let hold = *self.hold.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(until) = hold.filter(|u| *u > Instant::now()) {
            tokio::time::sleep_until(until).await;
        }
        loop {
            let wait = {
                let mut state = self.state.lock().await;
                let now = Instant::now();
                let (tokens, last) = *state;
                let tokens =
                    (tokens + now.duration_since(last).as_secs_f64() * self.qps).min(self.burst);
                if tokens >= 1.0 {
                    *state = (tokens - 1.0, now);
                    return;
                }
                *state = (tokens, now);
                Duration::from_secs_f64((1.0 - tokens) / self.qps)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bursts_then_paces() {
        let limiter = RateLimiter::new(10.0, 5);
        let start = Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst is free");
        for _ in 0..10 {
            limiter.acquire().await;
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(999) && took <= Duration::from_millis(1001),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_stops_every_request_until_it_ends() {
        let limiter = RateLimiter::new(100.0, 100);
        let start = Instant::now();
        limiter.hold_until(start + Duration::from_secs(5));
        limiter.hold_until(start + Duration::from_secs(2)); // shorter: ignored
        limiter.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        limiter.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(5), "the hold is over");
    }
}
