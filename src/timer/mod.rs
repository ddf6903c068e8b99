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
//! Configuration takes [`core::time::Duration`]. The engine converts each limit once, when a
//! producer is built, into the timer's own [`Span`] (ticks on embassy), and works in that unit from
//! then on: no 128-bit or 64-bit division per item or per batch. Ages and waiting times are kept as
//! spans and become a `Duration` only when read. [`Timer::MAX_DURATION`] is the longest limit a
//! timer can represent; [`Config`](crate::Config) rejects longer ones up front.

use core::fmt::Debug;
use core::future::Future;
use core::pin::Pin;
use core::time::Duration;

mod manual;
pub use manual::{ManualClock, ManualSleep};

#[cfg(feature = "embassy")]
mod embassy;
#[cfg(feature = "embassy")]
#[cfg_attr(docsrs, doc(cfg(feature = "embassy")))]
pub use self::embassy::EmbassyTimer;

#[cfg(feature = "tokio")]
mod tokio;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use self::tokio::TokioTimer;

/// A point in time of a [`Timer`]'s clock.
///
/// Implemented for `tokio::time::Instant` (feature `tokio`), `embassy_time::Instant` (feature
/// `embassy`) and `core::time::Duration` (time since an epoch, as [`ManualClock`] uses it).
pub trait Instant: Copy + Ord + Debug {
    /// The clock's own length of time (ticks on embassy).
    type Span: Span;
    /// `self + d`, or `None` past the end of the clock.
    fn checked_add(self, d: Self::Span) -> Option<Self>;
    /// `self - earlier`, or zero if `earlier` is later.
    fn saturating_since(self, earlier: Self) -> Self::Span;
    /// The instant `d` after `self`, for a deadline: `self` is an instant the clock returned and
    /// `d` at most the timer's [`Timer::MAX_DURATION`] (the engine adds nothing else). `None` past
    /// the end of the clock, as [`checked_add`](Self::checked_add), which the default calls.
    ///
    /// A clock whose `MAX_DURATION` leaves room for every such sum may add without the check: the
    /// engine then carries no code for a deadline past the end of the clock. `embassy_time`'s
    /// does: its longest span is half the tick range, and a running system's instants stay in the
    /// other half.
    ///
    /// ```
    /// use core::time::Duration;
    /// use prefetch_batch::timer::Instant;
    ///
    /// // `Duration` is the instant of `ManualClock` (time since its epoch): the default, checked.
    /// let at = Duration::from_secs(1);
    /// assert_eq!(at.deadline_after(Duration::from_millis(5)), Some(Duration::from_millis(1005)));
    /// assert_eq!(Duration::MAX.deadline_after(Duration::from_secs(1)), None);
    /// ```
    fn deadline_after(self, d: Self::Span) -> Option<Self> {
        self.checked_add(d)
    }
}

/// A length of time in a clock's own unit.
pub trait Span: Copy + Ord + Debug {
    /// No time at all.
    const ZERO: Self;
    /// Converts a [`Duration`], rounding up so a deadline is never early; `None` if it does not fit.
    fn from_duration(d: Duration) -> Option<Self>;
    /// Converts to a [`Duration`] (rounding down), for reading.
    fn to_duration(self) -> Duration;
    /// `self + other`, saturating.
    fn saturating_add(self, other: Self) -> Self;
    /// Half of `self`, rounded down.
    fn half(self) -> Self;
}

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
    type Instant: Instant;
    /// The future returned by [`Timer::sleep_until`].
    type Sleep: Future<Output = ()>;
    /// The longest duration this timer can add to an instant; longer limits are a configuration error.
    const MAX_DURATION: Duration;
    /// Whether reading the clock costs about as little as taking one item (a tick counter, as on
    /// embassy). Then the producer takes a stream's items one at a time and checks the deadline
    /// at every item (a bulk source's after each take): no burst loop and no stride to learn,
    /// about 0.7 KB less code on thumbv7em and 0.9 KB on thumbv6m. Otherwise (the default) it
    /// pulls items in bursts and learns how often it must read the clock to cut a batch within
    /// one item of `max_wait`, as the README says: about one read per batch from a quick source.
    const CHEAP_NOW: bool = false;

    /// The current instant.
    fn now(&self) -> Self::Instant;
    /// A future that completes once the clock reaches `at`.
    fn sleep_until(&self, at: Self::Instant) -> Self::Sleep;
    /// Re-arms an existing sleep for `at`. Override when the runtime can reuse a timer entry.
    fn reset(&self, mut sleep: Pin<&mut Self::Sleep>, at: Self::Instant) {
        sleep.set(self.sleep_until(at));
    }
    /// `at + d`, or `None` if that is past the end of the clock.
    fn add(&self, at: Self::Instant, d: Duration) -> Option<Self::Instant> {
        at.checked_add(<SpanOf<Self>>::from_duration(d)?)
    }
    /// `later - earlier` as a [`Duration`], or zero if `later` is before `earlier`.
    fn since(&self, later: Self::Instant, earlier: Self::Instant) -> Duration {
        later.saturating_since(earlier).to_duration()
    }
}

/// The [`Span`] of a timer's instants.
pub type SpanOf<Tm> = <<Tm as Timer>::Instant as Instant>::Span;

impl Span for Duration {
    const ZERO: Self = Duration::ZERO;
    fn from_duration(d: Duration) -> Option<Self> {
        Some(d)
    }
    fn to_duration(self) -> Duration {
        self
    }
    fn saturating_add(self, other: Self) -> Self {
        Duration::saturating_add(self, other)
    }
    fn half(self) -> Self {
        self / 2
    }
}

/// A `Duration` as an instant: the time since an epoch (what [`ManualClock`] uses).
impl Instant for Duration {
    type Span = Duration;
    fn checked_add(self, d: Duration) -> Option<Self> {
        Duration::checked_add(self, d)
    }
    fn saturating_since(self, earlier: Self) -> Duration {
        self.saturating_sub(earlier)
    }
}
