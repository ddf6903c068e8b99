//! [`ManualClock`]: virtual time for deterministic tests on any executor.
//!
//! It locks with a critical section by default: a crate with no `critical-section`
//! implementation (the linker then reports `_critical_section_1_0_acquire`) uses
//! `ManualClock<StdRawMutex>` (feature `std`) or, on one thread, `ManualClock<NoopRawMutex>`.
//!
//! Time only moves when you call [`ManualClock::advance`] (or [`ManualClock::advance_to_next`]),
//! so a test that batches with it never depends on how fast the machine is. It needs no heap and
//! can live in a `static`. Pick it to test batching logic without a runtime; pick tokio's paused
//! time or embassy's mock driver to test the runtime adapters themselves.

use core::cell::RefCell;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::{CriticalSectionRawMutex, RawMutex};

use super::Timer;

/// How many sleepers one clock tracks at once; a sleeper beyond that is woken at once and polls
/// again (spurious wake-ups are harmless, a lost one would hang).
const SLEEPERS: usize = 8;

struct Inner {
    now: Duration,
    sleepers: [Option<(Duration, Waker)>; SLEEPERS],
}

/// A virtual clock, in nanoseconds since it was created, advanced only by hand.
///
/// `&ManualClock` implements [`Timer`]. `M` is the lock around its state: a critical section by
/// default; [`StdRawMutex`](crate::StdRawMutex) or `NoopRawMutex` where the crate has no
/// `critical-section` implementation.
///
/// ```
/// use embassy_sync::blocking_mutex::raw::NoopRawMutex;
/// use prefetch_batch::timer::{ManualClock, Timer};
/// let clock = ManualClock::<NoopRawMutex>::with_lock(); // no critical section needed
/// clock.advance(core::time::Duration::from_millis(1));
/// assert_eq!((&clock).now(), core::time::Duration::from_millis(1));
/// ```
///
/// ```
/// use core::time::Duration;
/// use prefetch_batch::timer::ManualClock;
///
/// static CLOCK: ManualClock = ManualClock::new();
/// CLOCK.advance(Duration::from_millis(3));
/// assert_eq!(CLOCK.elapsed(), Duration::from_millis(3));
/// ```
pub struct ManualClock<M: RawMutex = CriticalSectionRawMutex> {
    inner: Mutex<M, RefCell<Inner>>,
    /// Set by the wakers [`ManualClock::block_on`] hands out.
    woken: AtomicBool,
}

impl<M: RawMutex> Default for ManualClock<M> {
    fn default() -> Self {
        Self::with_lock()
    }
}

impl<M: RawMutex> core::fmt::Debug for ManualClock<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ManualClock").field("now", &self.elapsed()).finish()
    }
}

#[cfg(feature = "defmt")]
impl<M: RawMutex> defmt::Format for ManualClock<M> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "ManualClock {{ now: {} }}", self.elapsed())
    }
}

impl ManualClock {
    /// A clock at time zero with no sleepers, locked with a critical section.
    pub const fn new() -> Self {
        Self::with_lock()
    }
}

impl<M: RawMutex> ManualClock<M> {
    /// A clock at time zero with no sleepers, locked with `M` (for a crate with no
    /// `critical-section` implementation: `StdRawMutex`, or `NoopRawMutex` on one thread).
    pub const fn with_lock() -> Self {
        const NONE: Option<(Duration, Waker)> = None;
        Self {
            inner: Mutex::new(RefCell::new(Inner {
                now: Duration::ZERO,
                sleepers: [NONE; SLEEPERS],
            })),
            woken: AtomicBool::new(false),
        }
    }

    /// Time since the clock was created.
    pub fn elapsed(&self) -> Duration {
        self.inner.lock(|i| i.borrow().now)
    }

    /// Moves time forward by `d` and wakes every sleeper whose instant has come.
    pub fn advance(&self, d: Duration) {
        let to = self.elapsed().saturating_add(d);
        self.advance_to(to);
    }

    /// Moves time forward to the earliest pending sleep, if any; returns whether there was one.
    ///
    /// A test executor calls this when every task is idle: it is what "auto-advance" means for
    /// tokio's paused clock.
    pub fn advance_to_next(&self) -> bool {
        let next = self
            .inner
            .lock(|i| i.borrow().sleepers.iter().flatten().map(|(at, _)| *at).min());
        match next {
            Some(at) => {
                self.advance_to(at);
                true
            }
            None => false,
        }
    }

    /// The instant of the earliest pending sleep.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.inner
            .lock(|i| i.borrow().sleepers.iter().flatten().map(|(at, _)| *at).min())
    }

    fn advance_to(&self, to: Duration) {
        // Collect the due wakers under the lock, wake them outside it: a waker may poll this clock.
        let mut due: [Option<Waker>; SLEEPERS] = Default::default();
        self.inner.lock(|i| {
            let mut i = i.borrow_mut();
            if to > i.now {
                i.now = to;
            }
            let now = i.now;
            for (slot, out) in i.sleepers.iter_mut().zip(due.iter_mut()) {
                if slot.as_ref().is_some_and(|(at, _)| *at <= now) {
                    *out = slot.take().map(|(_, w)| w);
                }
            }
        });
        due.into_iter().flatten().for_each(Waker::wake);
    }

    fn poll_sleep(&self, at: Duration, cx: &mut Context<'_>) -> Poll<()> {
        let evicted = self.inner.lock(|i| {
            let mut i = i.borrow_mut();
            if i.now >= at {
                return Ok(None);
            }
            // Re-use this waker's entry if it has one, else a free one, else evict the latest.
            let sleepers = &mut i.sleepers;
            if let Some(s) = sleepers.iter_mut().flatten().find(|(_, w)| w.will_wake(cx.waker())) {
                s.0 = s.0.min(at);
                return Err(());
            }
            if let Some(free) = sleepers.iter_mut().find(|s| s.is_none()) {
                *free = Some((at, cx.waker().clone()));
                return Err(());
            }
            let latest = sleepers
                .iter_mut()
                .max_by_key(|s| s.as_ref().map(|(at, _)| *at))
                .expect("SLEEPERS > 0");
            Ok(latest.replace((at, cx.waker().clone())).map(|(_, w)| w))
        });
        match evicted {
            Ok(None) => Poll::Ready(()),
            Ok(Some(w)) => {
                w.wake();
                Poll::Pending
            }
            Err(()) => Poll::Pending,
        }
    }
}

/// The sleep future of [`ManualClock`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct ManualSleep<'a, M: RawMutex = CriticalSectionRawMutex> {
    clock: &'a ManualClock<M>,
    at: Duration,
}

impl<M: RawMutex> Future for ManualSleep<'_, M> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.clock.poll_sleep(self.at, cx)
    }
}

impl<'a, M: RawMutex> Timer for &'a ManualClock<M> {
    type Instant = Duration;
    type Sleep = ManualSleep<'a, M>;
    const MAX_DURATION: Duration = Duration::from_secs(u64::MAX / 4);

    fn now(&self) -> Duration {
        self.elapsed()
    }
    fn sleep_until(&self, at: Duration) -> ManualSleep<'a, M> {
        ManualSleep { clock: self, at }
    }
}

impl<M: RawMutex> ManualClock<M> {
    /// Runs `fut` to completion on this thread in virtual time: whenever `fut` waits and nothing
    /// woke it, the clock jumps to the earliest pending sleep (tokio's auto-advance, for any
    /// future). No heap, no threads. Run one `block_on` per clock at a time.
    ///
    /// The clock is `'static` because the wakers handed to `fut` point at it, and they may be
    /// kept (in a slot, a channel) after `block_on` returns.
    ///
    /// # Panics
    /// If `fut` waits with no pending sleep and nothing that could wake it: a deadlock in the
    /// code under test.
    ///
    /// ```
    /// use core::time::Duration;
    /// use prefetch_batch::timer::{ManualClock, Timer};
    /// static CLOCK: ManualClock = ManualClock::new();
    /// let t = &CLOCK;
    /// CLOCK.block_on(async { t.sleep_until(Duration::from_secs(60)).await });
    /// assert_eq!(CLOCK.elapsed(), Duration::from_secs(60));
    /// ```
    pub fn block_on<F: Future>(&'static self, fut: F) -> F::Output {
        use core::task::{RawWaker, RawWakerVTable};

        fn clone(p: *const ()) -> RawWaker {
            RawWaker::new(p, &VTABLE)
        }
        fn wake(p: *const ()) {
            // SAFETY: `p` was made from the `woken` flag of a `&'static ManualClock` below, so it
            // is valid forever.
            unsafe { &*(p as *const AtomicBool) }.store(true, Ordering::Release);
        }
        fn drop(_: *const ()) {}
        static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop);

        // SAFETY: the vtable upholds the `RawWaker` contract (clone copies the pointer, wake only
        // stores to an atomic, drop does nothing), and the pointer is to the `'static` clock's
        // flag, an atomic: the waker may be used from any thread.
        let waker = unsafe { Waker::from_raw(RawWaker::new(&self.woken as *const AtomicBool as *const (), &VTABLE)) };
        let mut cx = Context::from_waker(&waker);
        let mut fut = core::pin::pin!(fut);
        self.woken.store(true, Ordering::Release);
        loop {
            self.woken.store(false, Ordering::Release);
            if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return out;
            }
            if !self.woken.load(Ordering::Acquire) && !self.advance_to_next() {
                panic!("ManualClock::block_on: the future waits, nothing can wake it, and no sleep is pending");
            }
        }
    }
}
