//! [`EmbassyTimer`]: the `embassy-time` clock (feature `embassy`).
//!
//! This crate enables no time driver and no timer queue: inside `embassy-executor` the executor
//! provides the queue; elsewhere the application enables an `embassy-time/generic-queue-*` feature.
//!
//! The engine works in ticks: `max_wait` and `idle` are converted once when a producer is built
//! (with 32-bit arithmetic when the tick rate divides a second into whole nanoseconds), and no
//! `Duration` is computed on the hot path.

use core::time::Duration;

use embassy_time::{Instant, TICK_HZ};

use super::{Span, Timer};

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

/// Nanoseconds per tick when a tick is a whole number of nanoseconds (every usual rate).
const NANOS_PER_TICK: Option<u32> = if 1_000_000_000 % TICK_HZ == 0 {
    Some((1_000_000_000 / TICK_HZ) as u32)
} else {
    None
};

/// The longest span: half the tick range, so adding it to any instant of a running system
/// cannot overflow.
const MAX_TICKS: u64 = u64::MAX / 2;

impl Span for embassy_time::Duration {
    const ZERO: Self = embassy_time::Duration::from_ticks(0);
    fn from_duration(d: Duration) -> Option<Self> {
        let sub = match NANOS_PER_TICK {
            Some(per) => u64::from(d.subsec_nanos().div_ceil(per)),
            None => (u64::from(d.subsec_nanos()) * TICK_HZ).div_ceil(1_000_000_000),
        };
        let ticks = d.as_secs().checked_mul(TICK_HZ)?.checked_add(sub)?;
        (ticks <= MAX_TICKS).then_some(embassy_time::Duration::from_ticks(ticks))
    }
    fn to_duration(self) -> Duration {
        let t = self.as_ticks();
        match NANOS_PER_TICK {
            Some(per) => Duration::new(t / TICK_HZ, (t % TICK_HZ) as u32 * per),
            None => Duration::new(t / TICK_HZ, ((t % TICK_HZ) * 1_000_000_000 / TICK_HZ) as u32),
        }
    }
    fn saturating_add(self, other: Self) -> Self {
        embassy_time::Duration::from_ticks(self.as_ticks().saturating_add(other.as_ticks()))
    }
    fn half(self) -> Self {
        embassy_time::Duration::from_ticks(self.as_ticks() / 2)
    }
}

impl super::Instant for Instant {
    type Span = embassy_time::Duration;
    fn checked_add(self, d: embassy_time::Duration) -> Option<Self> {
        Instant::checked_add(&self, d)
    }
    fn saturating_since(self, earlier: Self) -> embassy_time::Duration {
        self.saturating_duration_since(earlier)
    }
    /// Never `None`: `d` is at most [`EmbassyTimer`]'s `MAX_DURATION`, half the tick range, and
    /// `self` came from the clock, which would need to run for the other half (292 years at a GHz
    /// tick) to reach it. (48 B less flash on thumbv7em, 52 B on thumbv6m, than a check that
    /// cannot fail.)
    ///
    /// ```
    /// use embassy_time::{Duration, Instant};
    /// use prefetch_batch::timer::Instant as _;
    ///
    /// let at = Instant::from_ticks(5);
    /// assert_eq!(at.deadline_after(Duration::from_ticks(3)), Some(Instant::from_ticks(8)));
    /// ```
    fn deadline_after(self, d: embassy_time::Duration) -> Option<Self> {
        Some(Instant::from_ticks(self.as_ticks().wrapping_add(d.as_ticks())))
    }
}

impl Timer for EmbassyTimer {
    type Instant = Instant;
    type Sleep = embassy_time::Timer;
    /// Half the tick range, so adding it to any instant of a running system cannot overflow.
    const MAX_DURATION: Duration = Duration::from_secs(MAX_TICKS / TICK_HZ);
    /// A read is a tick counter's: the deadline is checked at every item.
    const CHEAP_NOW: bool = true;

    /// Not inlined: a read is a critical section and a call into the time driver, and the producer
    /// reads the clock in four places (56 B less flash on thumbv7em, 52 B on thumbv6m).
    #[inline(never)]
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep_until(&self, at: Instant) -> embassy_time::Timer {
        embassy_time::Timer::at(at)
    }
}
