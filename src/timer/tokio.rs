//! [`TokioTimer`]: tokio's clock (feature `tokio`).
//!
//! Uses `tokio::time`, so paused time (`#[tokio::test(start_paused = true)]`) drives batching
//! deadlines deterministically. Needs a runtime with the time driver enabled.

use core::pin::Pin;
use core::time::Duration;

use tokio::time::{Instant, Sleep};

use super::Timer;

/// tokio's clock. Zero-sized; re-arms one `Sleep` with `Sleep::reset` instead of allocating.
///
/// ```
/// use prefetch_batch::timer::{Timer, TokioTimer};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let t = TokioTimer;
/// let start = t.now();
/// t.sleep_until(t.add(start, std::time::Duration::from_secs(1)).unwrap()).await;
/// assert_eq!(t.since(t.now(), start), std::time::Duration::from_secs(1));
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokioTimer;

impl super::Instant for Instant {
    type Span = Duration;
    fn checked_add(self, d: Duration) -> Option<Self> {
        Instant::checked_add(&self, d)
    }
    fn saturating_since(self, earlier: Self) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl Timer for TokioTimer {
    type Instant = Instant;
    type Sleep = Sleep;
    /// tokio's timer wheel reaches about 2.2 years; longer sleeps are clamped by tokio.
    const MAX_DURATION: Duration = Duration::from_millis(64 * 1024 * 1024 * 1024 - 2);

    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep_until(&self, at: Instant) -> Sleep {
        tokio::time::sleep_until(at)
    }
    fn reset(&self, sleep: Pin<&mut Sleep>, at: Instant) {
        sleep.reset(at);
    }
}
