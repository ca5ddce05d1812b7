//! Wall-clock time, behind a trait so that tests can control it.

use jiff::Timestamp;

/// Where the cores get wall-clock time: the system clock in production, the simulated clock
/// on `cluster-sim`, so that lease ages, reboot windows and event times follow the time a test
/// controls.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
