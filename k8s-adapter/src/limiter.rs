//! A client-side token bucket, like client-go's QPS and burst.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Lets `qps` requests per second through on average, `burst` at once, and nothing while
/// the API server has asked us to wait ([`hold_until`](Self::hold_until)).
///
/// Each request reserves its turn when it asks (the bucket may go into debt, as Go's
/// `rate.Limiter` does), so waiters go in the order they came and a request that could not
/// go before its deadline is told so at once instead of waiting in vain. A waiter dropped
/// before its turn gives the turn back.
#[derive(Debug)]
pub struct RateLimiter {
    qps: f64,
    burst: f64,
    /// Tokens (negative: turns already promised) as of the instant beside them.
    state: Mutex<(f64, Instant)>,
    hold: Mutex<Option<Instant>>,
}

/// A request would have had to wait past its deadline; it was not given a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLate {
    /// When its turn would have come.
    pub turn: Instant,
}

impl RateLimiter {
    /// A limiter that starts full.
    pub fn new(qps: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        RateLimiter {
            qps: qps.max(0.001),
            burst,
            state: Mutex::new((burst, Instant::now())),
            hold: Mutex::new(None),
        }
    }

    /// Lets no request through before `until` (a `Retry-After` from the API server); an
    /// earlier hold is only ever extended.
    pub fn hold_until(&self, until: Instant) {
        let mut hold = self.hold.lock();
        if hold.is_none_or(|h| h < until) {
            *hold = Some(until);
        }
    }

    /// Waits out any hold, then for a turn.
    pub async fn acquire(&self) {
        // Without a deadline a turn is always given.
        let _ = self.acquire_before(None).await;
    }

    /// Waits for a turn if it comes by `deadline`; otherwise returns at once, taking no turn.
    pub async fn acquire_before(&self, deadline: Option<Instant>) -> Result<(), TooLate> {
        let hold = *self.hold.lock();
        let turn = {
            let mut state = self.state.lock();
            let now = Instant::now();
            let (tokens, last) = *state;
            let tokens =
                (tokens + now.duration_since(last).as_secs_f64() * self.qps).min(self.burst);
            let mut turn = now + Duration::from_secs_f64((1.0 - tokens).max(0.0) / self.qps);
            if let Some(hold) = hold {
                turn = turn.max(hold);
            }
            if deadline.is_some_and(|d| turn > d) {
                *state = (tokens, now);
                return Err(TooLate { turn });
            }
            *state = (tokens - 1.0, now);
            turn
        };
        // Dropped before its turn (the caller timed out or went away), the reservation gives
        // the turn back, so that later requests do not wait behind turns nobody takes.
        let reservation = Reservation(self);
        tokio::time::sleep_until(turn).await;
        std::mem::forget(reservation);
        Ok(())
    }

    /// Takes a turn if one is free now; never waits.
    pub fn try_acquire(&self) -> Result<(), TooLate> {
        let hold = *self.hold.lock();
        let mut state = self.state.lock();
        let now = Instant::now();
        let (tokens, last) = *state;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * self.qps).min(self.burst);
        let mut turn = now + Duration::from_secs_f64((1.0 - tokens).max(0.0) / self.qps);
        if let Some(hold) = hold {
            turn = turn.max(hold);
        }
        if turn > now {
            *state = (tokens, now);
            return Err(TooLate { turn });
        }
        *state = (tokens - 1.0, now);
        Ok(())
    }

    /// Gives back a turn reserved and not taken.
    fn give_back(&self) {
        let mut state = self.state.lock();
        let now = Instant::now();
        let (tokens, last) = *state;
        let tokens = tokens + now.duration_since(last).as_secs_f64() * self.qps;
        *state = ((tokens + 1.0).min(self.burst), now);
    }
}

/// A turn reserved and not yet taken; see [`RateLimiter::acquire_before`].
struct Reservation<'a>(&'a RateLimiter);

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.0.give_back();
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

    /// Callers that give up before their turn (a timeout, a dropped request) give it back:
    /// the requests after them do not wait behind turns nobody takes.
    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_gives_up_gives_its_turn_back() {
        use futures::FutureExt;
        let limiter = RateLimiter::new(1.0, 1);
        let start = Instant::now();
        limiter.acquire().await;
        for _ in 0..10 {
            // Polled once (the turn is reserved), then dropped.
            assert!(limiter.acquire().now_or_never().is_none());
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(500), limiter.acquire())
                .await
                .is_err()
        );
        // Only the turn already due is taken: the next is at one second, not at twelve.
        limiter
            .acquire_before(Some(start + Duration::from_secs(1)))
            .await
            .unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        // A waiter that got its turn keeps it.
        limiter.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
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

    #[tokio::test(start_paused = true)]
    async fn a_turn_past_the_deadline_is_refused_at_once_and_takes_nothing() {
        let limiter = RateLimiter::new(1.0, 2);
        let start = Instant::now();
        limiter.acquire().await;
        limiter.acquire().await;
        // The next turn is a second away: a half-second deadline is refused without waiting.
        let refused = limiter
            .acquire_before(Some(start + Duration::from_millis(500)))
            .await
            .unwrap_err();
        assert_eq!(refused.turn, start + Duration::from_secs(1));
        assert_eq!(start.elapsed(), Duration::ZERO);
        // The refusal took no turn: the next request goes at one second, not two.
        limiter
            .acquire_before(Some(start + Duration::from_secs(1)))
            .await
            .unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        // A hold past the deadline refuses too.
        limiter.hold_until(start + Duration::from_secs(30));
        assert!(
            limiter
                .acquire_before(Some(start + Duration::from_secs(10)))
                .await
                .is_err()
        );
    }
}
