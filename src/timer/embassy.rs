//! [`EmbassyTimer`]: the `embassy-time` clock (feature `embassy`).
//!
//! This crate enables no time driver and no timer queue: inside `embassy-executor` the executor
//! provides the queue; elsewhere the application enables an `embassy-time/generic-queue-*` feature.

use core::time::Duration;

use embassy_time::{Instant, TICK_HZ};

use super::Timer;

/// The `embassy-time` clock. Zero-sized; `Timer::at` futures are `Unpin` and cheap to re-create.
///
/// ```
/// use prefetch_batch::timer::{EmbassyTimer, Timer};
/// let t = EmbassyTimer;
/// let later = t.add(embassy_time::Instant::from_ticks(0), core::time::Duration::from_millis(1));
/// assert!(later.is_some());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EmbassyTimer;

/// Converts to ticks, rounding up so a deadline is never early.
fn ticks(d: Duration) -> Option<u64> {
    let t = (d.as_nanos() * TICK_HZ as u128).div_ceil(1_000_000_000);
    u64::try_from(t).ok()
}

impl Timer for EmbassyTimer {
    type Instant = Instant;
    type Sleep = embassy_time::Timer;
    /// Half the tick range, so adding it to any instant of a running system cannot overflow.
    const MAX_DURATION: Duration = Duration::from_secs(u64::MAX / 2 / TICK_HZ);

    fn now(&self) -> Instant {
        Instant::now()
    }
    fn add(&self, at: Instant, d: Duration) -> Option<Instant> {
        at.checked_add(embassy_time::Duration::from_ticks(ticks(d)?))
    }
    fn since(&self, later: Instant, earlier: Instant) -> Duration {
        let t = later.saturating_duration_since(earlier).as_ticks();
        Duration::from_nanos((t as u128 * 1_000_000_000 / TICK_HZ as u128) as u64)
    }
    fn sleep_until(&self, at: Instant) -> embassy_time::Timer {
        embassy_time::Timer::at(at)
    }
}
