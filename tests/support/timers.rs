//! Timers over `ManualClock` for the tests and the fuzz interpreter (included by path, so it
//! needs no `stats` feature): [`Cheap`], declared cheap to read as `EmbassyTimer` is, and
//! [`Counted`], which counts its clock reads on this thread ([`reads`]).
#![allow(dead_code)]

use core::cell::Cell;
use core::pin::Pin;
use core::time::Duration;

use prefetch_batch::timer::{ManualClock, ManualSleep, Timer};

/// `ManualClock`, declared cheap to read ([`Timer::CHEAP_NOW`], as `EmbassyTimer` is): the
/// producer takes items one at a time and checks the deadline at every item.
#[derive(Debug, Clone, Copy)]
pub struct Cheap<'c>(pub &'c ManualClock);

impl<'c> Timer for Cheap<'c> {
    type Instant = Duration;
    type Sleep = ManualSleep<'c>;
    const MAX_DURATION: Duration = <&ManualClock as Timer>::MAX_DURATION;
    const CHEAP_NOW: bool = true;
    fn now(&self) -> Duration {
        self.0.now()
    }
    fn sleep_until(&self, at: Duration) -> Self::Sleep {
        self.0.sleep_until(at)
    }
}

thread_local! {
    static READS: Cell<u64> = const { Cell::new(0) };
}

/// `Tm`, counting each `now()` on this thread (see [`reads`]). Everything else, `CHEAP_NOW`
/// included, is `Tm`'s.
#[derive(Debug, Clone, Copy)]
pub struct Counted<Tm>(pub Tm);

impl<Tm: Timer> Timer for Counted<Tm> {
    type Instant = Tm::Instant;
    type Sleep = Tm::Sleep;
    const MAX_DURATION: Duration = Tm::MAX_DURATION;
    const CHEAP_NOW: bool = Tm::CHEAP_NOW;
    fn now(&self) -> Tm::Instant {
        READS.with(|r| r.set(r.get() + 1));
        self.0.now()
    }
    fn sleep_until(&self, at: Tm::Instant) -> Tm::Sleep {
        self.0.sleep_until(at)
    }
    fn reset(&self, sleep: Pin<&mut Tm::Sleep>, at: Tm::Instant) {
        self.0.reset(sleep, at);
    }
}

/// How many times a [`Counted`] timer read its clock on this thread so far.
pub fn reads() -> u64 {
    READS.with(Cell::get)
}
