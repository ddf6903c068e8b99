//! The timer seam: how the engine reads the clock and sleeps until a deadline.
//!
//! The batching engine needs exactly two things from time: the current instant (to stamp the first
//! item of a batch) and a future that completes at an instant (to emit a batch when its deadline
//! passes). [`Timer`] is that seam. Pick the implementation that matches your runtime:
//!
//! - [`TokioTimer`] (feature `tokio`): tokio's own clock, so
//!   `tokio::time::pause()` and `#[tokio::test(start_paused = true)]` drive it.
//! - [`EmbassyTimer`] (feature `embassy`): `embassy-time`. The
//!   application chooses the time driver and timer queue; this crate enables neither.
//! - [`ManualClock`]: virtual time you advance by hand, for deterministic tests on any executor.
//!
//! Durations are always [`core::time::Duration`]; each timer converts to its own instant type and
//! states the longest duration it can represent in [`Timer::MAX_DURATION`], which
//! [`Config`](crate::Config) checks up front.

use core::fmt::Debug;
use core::future::Future;
use core::pin::Pin;
use core::time::Duration;

mod manual;
pub use manual::{ManualClock, ManualSleep};

#[cfg(feature = "embassy")]
mod embassy;
#[cfg(feature = "embassy")]
pub use self::embassy::EmbassyTimer;

#[cfg(feature = "tokio")]
mod tokio;
#[cfg(feature = "tokio")]
pub use self::tokio::TokioTimer;

/// A clock and a way to sleep until an instant of it.
///
/// Implementations are small handles (usually zero-sized) that are cheap to clone; the producer and
/// the receiver each keep one.
///
/// # Example: a timer over a virtual clock
///
/// ```
/// use core::time::Duration;
/// use prefetch_batch::timer::{ManualClock, Timer};
///
/// static CLOCK: ManualClock = ManualClock::new();
/// let timer = &CLOCK;
/// let t0 = timer.now();
/// CLOCK.advance(Duration::from_millis(5));
/// assert_eq!(timer.since(timer.now(), t0), Duration::from_millis(5));
/// ```
pub trait Timer: Clone {
    /// A point in time of this clock.
    type Instant: Copy + Ord + Debug;
    /// The future returned by [`Timer::sleep_until`].
    type Sleep: Future<Output = ()>;
    /// The longest duration this timer can add to an instant; longer limits are a configuration error.
    const MAX_DURATION: Duration;

    /// The current instant.
    fn now(&self) -> Self::Instant;
    /// `at + d`, or `None` if that is past the end of the clock.
    fn add(&self, at: Self::Instant, d: Duration) -> Option<Self::Instant>;
    /// `later - earlier`, or zero if `later` is before `earlier`.
    fn since(&self, later: Self::Instant, earlier: Self::Instant) -> Duration;
    /// A future that completes once the clock reaches `at`.
    fn sleep_until(&self, at: Self::Instant) -> Self::Sleep;
    /// Re-arms an existing sleep for `at`. Override when the runtime can reuse a timer entry.
    fn reset(&self, mut sleep: Pin<&mut Self::Sleep>, at: Self::Instant) {
        sleep.set(self.sleep_until(at));
    }
}
