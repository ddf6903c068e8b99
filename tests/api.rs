//! The smaller public entry points, each used once the way a caller would.
mod common;

use common::{Event, Scripted, ms};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use futures_core::{FusedStream, Stream};
use prefetch_batch::testing::join;
use prefetch_batch::{BatchExt, Config, ConfigError, FlushReason, Slot, testing};

fn next<S: Stream + Unpin>(s: &mut S) -> impl core::future::Future<Output = Option<S::Item>> + '_ {
    core::future::poll_fn(move |cx| core::pin::Pin::new(&mut *s).poll_next(cx))
}

#[derive(Debug, PartialEq)]
enum Fail {
    Source(&'static str),
    Config(ConfigError),
}

impl From<&'static str> for Fail {
    fn from(e: &'static str) -> Self {
        Fail::Source(e)
    }
}

impl From<ConfigError> for Fail {
    fn from(e: ConfigError) -> Self {
        Fail::Config(e)
    }
}

/// As futures' `try_for_each`: the batch before the error is handled, then the error ends the
/// run, and nothing past it was pulled from the source.
#[test]
fn try_for_each_batch_stops_at_the_first_error() {
    use futures_util::StreamExt;
    let clock = common::clock();
    let ev = vec![
        Event::Item(ms(0), 1u32),
        Event::Error(ms(1), "bad"),
        Event::Item(ms(2), 2),
    ];
    let mut source = Scripted::new(clock, ev);
    let mut got = vec![];
    let end = clock.block_on(
        (&mut source).try_for_each_batch(Config::<4>::new().max_wait(ms(10)), clock, |b| {
            got.push((b.to_vec(), b.info.reason));
            async { Ok::<(), Fail>(()) }
        }),
    );
    assert_eq!(got, vec![(vec![1], FlushReason::Error)]);
    assert_eq!(end, Err(Fail::Source("bad")));
    assert_eq!(
        clock.block_on(source.next()),
        Some(Ok(2)),
        "the item after the error stays in the source"
    );
}

/// A handler error ends the run the same way, and a bad configuration comes back through `From`.
#[test]
fn try_for_each_batch_stops_at_a_handler_error_and_reports_bad_config() {
    let clock = common::clock();
    let source = testing::iter((0..10u32).map(Ok::<u32, &'static str>));
    let mut calls = 0;
    let end = clock.block_on(source.try_for_each_batch(Config::<4>::new(), clock, |_b| {
        calls += 1;
        async { Err::<(), Fail>(Fail::Source("handler")) }
    }));
    assert_eq!((calls, end), (1, Err(Fail::Source("handler"))));
    let source = testing::iter((0..10u32).map(Ok::<u32, &'static str>));
    let end = clock.block_on(
        source.try_for_each_batch(Config::<4>::new().max_items(9), clock, |_b| async {
            Ok::<(), Fail>(())
        }),
    );
    assert_eq!(
        end,
        Err(Fail::Config(ConfigError::MaxItemsAboveCapacity {
            max_items: 9,
            capacity: 4
        }))
    );
}

#[test]
fn receiver_is_a_fused_stream_of_owned_batches() {
    let clock = common::clock();
    let slot = Slot::<NoopRawMutex, u32, 3, _>::new(clock);
    let (producer, mut rx) = slot.split(testing::iter(0..7), Config::new()).unwrap();
    let mut got = vec![];
    assert!(!rx.is_terminated(), "a producer is attached");
    clock.block_on(join(producer, async {
        while let Some(batch) = next(&mut rx).await {
            assert!(!rx.is_terminated(), "the last batch may come next");
            got.push((batch.info.reason, batch.into_iter().collect::<Vec<_>>()));
        }
        assert!(rx.is_terminated());
        assert!(next(&mut rx).await.is_none(), "stays ended");
    }));
    use FlushReason::*;
    assert_eq!(got, vec![(Full, vec![0, 1, 2]), (Full, vec![3, 4, 5]), (End, vec![6])]);
}

#[test]
fn try_stream_and_guard_take() {
    let clock = common::clock();
    let slot = Slot::<NoopRawMutex, u32, 2, _, &str>::new(clock);
    let src = testing::iter([Ok(1), Ok(2), Ok(3), Err("x")]);
    let (producer, mut rx) = slot.try_split(src, Config::new()).unwrap();
    clock.block_on(join(producer, async {
        let first = rx.recv().await.unwrap().unwrap().into_batch(); // moved out; the buffer goes back
        assert_eq!(
            (first.items.as_slice(), first.info.reason),
            (&[1, 2][..], FlushReason::Full)
        );
        let mut rest = rx;
        let b = next(&mut rest).await.unwrap().unwrap();
        assert_eq!((b.items.as_slice(), b.info.reason), (&[3][..], FlushReason::Error));
        assert_eq!(next(&mut rest).await.unwrap().unwrap_err(), "x");
        assert!(next(&mut rest).await.is_none());
        assert!(rest.is_terminated());
    }));
}

#[test]
fn remainder_counts_and_debug_output() {
    let clock = common::clock();
    let slot = Slot::<NoopRawMutex, u32, 4, _>::new(clock);
    let (producer, mut rx) = slot.split(testing::iter(0..6), Config::new()).unwrap();
    clock.block_on(producer); // fills [0..4] and [4, 5]; nobody takes them
    assert!(format!("{slot:?}").contains("capacity: 4"));
    let rest = rx.drain_remainder();
    assert_eq!((rest.len(), rest.size_hint()), (6, (6, Some(6))));
    assert_eq!(rest.collect::<Vec<_>>(), vec![0, 1, 2, 3, 4, 5]);
    assert!(slot.is_closed());
}

/// A drain drops the errors still queued after it releases the slot's lock: an error whose `Drop`
/// reaches the slot (here: asks whether it is closed) neither panics nor deadlocks.
#[test]
fn a_drain_drops_queued_errors_outside_the_lock() {
    use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
    use prefetch_batch::timer::ManualClock;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static CLOCK: ManualClock = ManualClock::new();
    static SLOT: Slot<CriticalSectionRawMutex, u32, 2, &ManualClock, Reaches> = Slot::new(&CLOCK);
    static SAW_CLOSED: AtomicUsize = AtomicUsize::new(0);
    #[derive(Debug)]
    struct Reaches;
    impl Drop for Reaches {
        fn drop(&mut self) {
            if SLOT.is_closed() {
                SAW_CLOSED.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    // [1] with the error after it, then [2] as the end: both buffers ready, nobody takes them.
    let src = testing::iter([Ok(1), Err(Reaches), Ok(2)]);
    let (producer, mut rx) = SLOT.try_split(src, Config::new()).unwrap();
    CLOCK.block_on(producer);
    assert_eq!(SAW_CLOSED.load(Ordering::SeqCst), 0);
    let rest: Vec<u32> = rx.drain_remainder().collect();
    assert_eq!(rest, vec![1, 2]);
    assert_eq!(
        SAW_CLOSED.load(Ordering::SeqCst),
        1,
        "the queued error was dropped, once"
    );
}

/// A waker whose clone, wake and drop reach the slot (here: ask whether it is closed), and a
/// formatter that does too, work: the slot runs none of the user's code while its state is
/// borrowed. (A waker was cloned and dropped with the state borrowed before, which panicked.)
#[test]
fn a_waker_and_a_formatter_that_reach_the_slot_work() {
    use core::future::Future;
    use core::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
    use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
    use prefetch_batch::timer::ManualClock;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    static CLOCK: ManualClock = ManualClock::new();
    static SLOT: Slot<CriticalSectionRawMutex, u32, 2, &ManualClock> = Slot::new(&CLOCK);
    static CLONES: AtomicUsize = AtomicUsize::new(0);
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    static WAKES: AtomicUsize = AtomicUsize::new(0);
    static REACHED: AtomicUsize = AtomicUsize::new(0);
    fn reach() {
        let _ = SLOT.is_closed();
        REACHED.fetch_add(1, SeqCst);
    }
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop_waker);
    unsafe fn clone(data: *const ()) -> RawWaker {
        CLONES.fetch_add(1, SeqCst);
        reach();
        RawWaker::new(data, &VTABLE)
    }
    unsafe fn wake(_: *const ()) {
        WAKES.fetch_add(1, SeqCst);
        reach();
    }
    unsafe fn drop_waker(_: *const ()) {
        DROPS.fetch_add(1, SeqCst);
        reach();
    }
    // Three wakers told apart by their data pointer (never dereferenced).
    // SAFETY: the vtable's functions do what a waker's must, for any data pointer.
    let waker = |tag: usize| unsafe { Waker::from_raw(RawWaker::new(core::ptr::without_provenance(tag), &VTABLE)) };
    let (a, b, c) = (waker(1), waker(2), waker(3));

    let (producer, mut rx) = SLOT.split(testing::iter([1, 2, 3]), Config::new()).unwrap();
    let mut producer = core::pin::pin!(producer);
    let mut take = |w: &Waker| {
        let mut next = core::pin::pin!(rx.recv());
        match next.as_mut().poll(&mut Context::from_waker(w)) {
            Poll::Ready(b) => Some(b.map(|b| b.to_vec())),
            Poll::Pending => None,
        }
    };
    assert_eq!(take(&a), None, "nothing yet: waker a registered");
    assert_eq!(take(&c), None, "c replaces a, which is dropped");
    assert_eq!(DROPS.load(SeqCst), 1);
    assert!(producer.as_mut().poll(&mut Context::from_waker(&b)).is_pending());
    assert_eq!(WAKES.load(SeqCst), 1, "the batch woke the consumer");
    assert_eq!(take(&c), Some(Some(vec![1, 2])));
    assert!(producer.as_mut().poll(&mut Context::from_waker(&b)).is_ready());
    assert_eq!(take(&c), Some(Some(vec![3])));
    assert_eq!(take(&c), Some(None));
    assert!(CLONES.load(SeqCst) >= 3, "a, c and b were cloned in");
    assert_eq!(
        REACHED.load(SeqCst),
        CLONES.load(SeqCst) + WAKES.load(SeqCst) + DROPS.load(SeqCst)
    );

    struct Reaching(String);
    impl core::fmt::Write for Reaching {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            reach();
            self.0.push_str(s);
            Ok(())
        }
    }
    let mut out = Reaching(String::new());
    core::fmt::write(&mut out, format_args!("{SLOT:?}")).unwrap();
    assert!(out.0.starts_with("Slot { capacity: 2"), "{}", out.0);
    drop((a, b, c));
}

/// `ManualClock` needs no critical section: with `StdRawMutex` it lives in a `static` and drives a
/// batcher like the default one.
#[cfg(feature = "std")]
#[test]
fn manual_clock_without_a_critical_section() {
    use prefetch_batch::StdRawMutex;
    use prefetch_batch::timer::ManualClock;
    static CLOCK: ManualClock<StdRawMutex> = ManualClock::with_lock();
    let mut seen = vec![];
    CLOCK
        .block_on(
            testing::iter(0..10u32).for_each_batch(Config::<4>::new().max_wait(ms(5)), &CLOCK, |b| {
                seen.push(b.len());
                async {}
            }),
        )
        .unwrap();
    assert_eq!(seen, [4, 4, 2]);
}

/// A slot split again drops what its earlier halves left, exactly once, for items with and without
/// destructors (the two take different paths: a drain outside the lock, or a clear in place).
#[test]
fn a_slot_split_again_drops_what_was_left() {
    use std::rc::Rc;
    let clock = common::clock();
    let counter = Rc::new(());
    {
        let slot = Slot::<NoopRawMutex, Rc<()>, 2, _>::new(clock);
        let items: Vec<Rc<()>> = (0..3).map(|_| Rc::clone(&counter)).collect();
        let (producer, rx) = slot.split(testing::iter(items), Config::new()).unwrap();
        clock.block_on(producer); // [a, b] and [c], then the end; nobody takes them
        drop(rx);
        assert_eq!(Rc::strong_count(&counter), 4, "3 items wait in the slot");
        let (producer, rx) = slot.split(testing::iter(Vec::new()), Config::new()).unwrap();
        assert_eq!(Rc::strong_count(&counter), 1, "the split dropped the 3 left behind");
        drop((producer, rx));
    }
    let slot = Slot::<NoopRawMutex, u32, 2, _>::new(clock);
    let (producer, rx) = slot.split(testing::iter(0..3u32), Config::new()).unwrap();
    clock.block_on(producer);
    drop(rx);
    let (producer, mut rx) = slot.split(testing::iter(10..13u32), Config::new()).unwrap();
    let got = clock.block_on(slot.join(producer, async {
        let mut got = vec![];
        while let Some(b) = rx.recv().await {
            got.extend_from_slice(&b);
        }
        got
    }));
    assert_eq!(got, [10, 11, 12], "nothing of the first run leaks into the second");
}
