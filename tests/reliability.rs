//! Reliability: a flush storm and a timer that fires late (virtual clock, any build), and on tokio
//! (feature `tokio`) a million items across threads, a panicking handler or source, and a source
//! that never ends, stopped by a close.
//!
//! Everything that depends on time runs in virtual time (`ManualClock` or tokio's paused clock);
//! the multi-thread stress only checks exactly-once delivery, never a duration.
mod common;

use core::future::Future;
use core::pin::{Pin, pin};
use core::task::{Context, Poll, Waker};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use common::ms;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use futures_core::Stream;
use prefetch_batch::testing::join;
use prefetch_batch::timer::{ManualClock, Timer};
use prefetch_batch::{Config, FlushReason, Slot};

/// Polls `fut` once with a no-op waker; the caller polls again when it chooses.
fn poll_once<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

// ----- flush storm -----

/// A source that asks for a flush every time it yields an item, and is ready only every other
/// poll (it wakes itself), so each item is placed in a poll of its own.
struct FlushEvery<'a, F: Fn()> {
    next: u32,
    end: u32,
    flush: &'a F,
    ready: bool,
    always_ready: bool,
}

impl<F: Fn()> Stream for FlushEvery<'_, F> {
    type Item = u32;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u32>> {
        if !self.always_ready {
            self.ready = !self.ready;
            if !self.ready {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        if self.next == self.end {
            return Poll::Ready(None);
        }
        (self.flush)();
        self.next += 1;
        Poll::Ready(Some(self.next - 1))
    }
}

/// A flush requested with every item, with a caller that keeps up, a slow caller, and a source
/// that is always ready: every item exactly once, in order, no empty batch, nothing over the
/// limits, only the reasons that can apply, and no hang.
#[test]
fn flush_storm() {
    const N: usize = 4;
    const ITEMS: u32 = 2_000;
    for (always_ready, process) in [(false, 0), (false, 3), (true, 0), (true, 2)] {
        let clock = common::clock();
        let slot = Slot::<NoopRawMutex, u32, N, _>::new(clock);
        let flush = || slot.flush();
        let source = FlushEvery {
            next: 0,
            end: ITEMS,
            flush: &flush,
            ready: false,
            always_ready,
        };
        let (producer, mut rx) = slot.split(source, Config::new().max_items(3)).unwrap();
        let mut batches: Vec<(Vec<u32>, FlushReason)> = vec![];
        clock.block_on(join(producer, async {
            while let Some(b) = rx.recv().await {
                batches.push((b.to_vec(), b.info().reason));
                if process > 0 {
                    clock.sleep_until(clock.add(clock.now(), ms(process)).unwrap()).await;
                }
            }
        }));
        let case = format!("always ready {always_ready}, process {process} ms");
        let delivered: Vec<u32> = batches.iter().flat_map(|b| b.0.clone()).collect();
        assert_eq!(delivered, (0..ITEMS).collect::<Vec<_>>(), "{case}");
        for (items, reason) in &batches {
            assert!(!items.is_empty() && items.len() <= 3, "{case}: {items:?}");
            assert!(
                matches!(reason, FlushReason::Flush | FlushReason::Full | FlushReason::End),
                "{case}: {reason:?}"
            );
        }
        let stats = slot.stats();
        // An always-ready source keeps the producer in one burst until both buffers are taken; the
        // flush is read when it next stops, and by then the batch it was asked for went out
        // `Full`. Otherwise the flushes do cut batches.
        assert_eq!(stats.batches_for(FlushReason::Flush) > 0, !always_ready, "{case}");
        assert_eq!(stats.items(), u64::from(ITEMS), "{case}");
        if !always_ready && process == 0 {
            // Each item is placed in its own poll and the flush lands before the next one.
            assert!(
                batches
                    .iter()
                    .all(|(items, reason)| items.len() == 1 && *reason == FlushReason::Flush)
            );
        }
    }
}

// ----- a timer that fires late -----

/// A source fed by hand: `push` an item, `end` it; `Pending` while empty.
#[derive(Clone, Default)]
struct Fed(Rc<RefCell<(VecDeque<u32>, bool)>>);

impl Fed {
    fn push(&self, x: u32) {
        self.0.borrow_mut().0.push_back(x);
    }
    fn end(&self) {
        self.0.borrow_mut().1 = true;
    }
    fn queued(&self) -> usize {
        self.0.borrow().0.len()
    }
}

impl Stream for Fed {
    type Item = u32;
    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<u32>> {
        let mut s = self.0.borrow_mut();
        match s.0.pop_front() {
            Some(x) => Poll::Ready(Some(x)),
            None if s.1 => Poll::Ready(None),
            None => Poll::Pending, // the test polls the producer after every push
        }
    }
}

/// Virtual time jumps far past several deadlines at once (a timer that fires late, a suspended
/// device, a stalled runtime): each overdue batch is emitted once, with the earlier of its idle
/// and deadline reasons, and its real age; items that arrive after the jump start a new batch with
/// its own deadline, which an older timer never cuts short; a jump while every buffer is taken
/// pulls nothing.
#[test]
fn late_timer_jumps_past_several_deadlines() {
    static CLOCK: ManualClock = ManualClock::new();
    let clock = &CLOCK;
    let at = |t: u64| clock.advance(ms(t).saturating_sub(clock.elapsed()));
    let fed = Fed::default();
    let slot = Slot::<NoopRawMutex, u32, 4, _>::new(clock);
    let (producer, mut rx) = slot
        .split(fed.clone(), Config::new().max_wait(ms(10)).idle(ms(3)))
        .unwrap();
    let mut run = pin!(producer);
    let mut poll_producer = || {
        assert!(
            run.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending(),
            "the source has not ended"
        );
    };
    let shape = |b: &prefetch_batch::BatchGuard<'_, u32, 4, _>| {
        (
            b.to_vec(),
            b.info().reason,
            b.info().first_at,
            b.info().age_at(clock.now()),
        )
    };

    // t = 0: one item; its idle gap (3 ms) and deadline (10 ms) are armed.
    fed.push(0);
    poll_producer();
    assert!(poll_once(rx.recv()).is_none(), "nothing is due yet");
    // The clock jumps to 1 s in one step: both are long overdue. Emitted once, reason Idle (the
    // earlier of the two), with its true age.
    at(1000);
    poll_producer();
    let a = poll_once(rx.recv()).flatten().expect("the overdue batch is emitted");
    assert_eq!(shape(&a), (vec![0], FlushReason::Idle, ms(0), ms(1000)));
    // The caller holds batch A. Item 1 arrives at 1 s: a new batch, new idle gap and deadline.
    fed.push(1);
    poll_producer();
    at(1002);
    poll_producer(); // not due: the timer armed for A (at 3 ms) must not emit this batch
    at(5000); // and again far past both of its instants
    poll_producer();
    // B is ready (Idle, first at 1 s) and, while the caller is busy, keeps taking items up to N.
    for x in 2..=6 {
        fed.push(x);
        poll_producer();
    }
    assert_eq!(
        fed.queued(),
        2,
        "B is full and A is lent: items 5 and 6 stay in the source"
    );
    at(60_000); // a jump while every buffer is taken: nothing is pulled, nothing is emitted
    poll_producer();
    assert_eq!(fed.queued(), 2);
    drop(a);
    poll_producer(); // A's buffer is back: item 5 and 6 start batch C at 60 s
    assert_eq!(fed.queued(), 0);
    let b = poll_once(rx.recv()).flatten().expect("B is ready");
    assert_eq!(shape(&b), (vec![1, 2, 3, 4], FlushReason::Idle, ms(1000), ms(59_000)));
    drop(b);
    assert!(
        poll_once(rx.recv()).is_none(),
        "C is not due: its deadline counts from 60 s"
    );
    at(60_002);
    poll_producer();
    assert!(poll_once(rx.recv()).is_none(), "C is not due yet");
    at(1_000_000); // far past C's idle gap and deadline
    poll_producer();
    let c = poll_once(rx.recv()).flatten().expect("C is emitted");
    assert_eq!(shape(&c), (vec![5, 6], FlushReason::Idle, ms(60_000), ms(940_000)));
    drop(c);
    fed.end();
    assert!(run.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_ready());
    assert!(poll_once(rx.recv()).expect("ended").is_none());
    let stats = slot.stats();
    assert_eq!((stats.items(), stats.total_batches()), (7, 3));
    assert_eq!(stats.max_age(), ms(940_000));
}

/// The same jump with a deadline only: a batch that filled before its deadline leaves a timer
/// behind; a jump past that stale instant, but not past the next batch's deadline, emits nothing.
#[test]
fn late_timer_never_fires_for_a_later_batch() {
    static CLOCK: ManualClock = ManualClock::new();
    let clock = &CLOCK;
    let at = |t: u64| clock.advance(ms(t).saturating_sub(clock.elapsed()));
    let fed = Fed::default();
    let slot = Slot::<NoopRawMutex, u32, 2, _>::new(clock);
    let (producer, mut rx) = slot.split(fed.clone(), Config::new().max_wait(ms(10))).unwrap();
    let mut run = pin!(producer);
    let mut poll_producer = || {
        let _ = run.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    };
    fed.push(0);
    poll_producer(); // A, sleep armed for 10 ms
    at(1);
    fed.push(1);
    poll_producer(); // A full
    at(5);
    fed.push(2);
    poll_producer(); // B, first at 5, deadline 15
    let a = poll_once(rx.recv()).flatten().unwrap();
    assert_eq!((a.to_vec(), a.info().reason), (vec![0, 1], FlushReason::Full));
    drop(a);
    at(14); // past A's stale 10 ms, before B's 15 ms
    poll_producer();
    assert!(poll_once(rx.recv()).is_none(), "B emitted early by A's timer");
    at(10_000);
    poll_producer();
    let b = poll_once(rx.recv()).flatten().unwrap();
    assert_eq!(
        (b.to_vec(), b.info().reason, b.info().age_at(clock.now())),
        (vec![2], FlushReason::Deadline, ms(9_995))
    );
}

// ----- tokio -----

#[cfg(feature = "tokio")]
mod on_tokio {
    use core::time::Duration;
    use std::panic::AssertUnwindSafe;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, OnceLock};

    use futures_util::{FutureExt, StreamExt};
    use prefetch_batch::BatchExt;

    /// A control handle: the shared slot of a `PrefetchStream<u32, 16>`.
    type Handle = Arc<prefetch_batch::TokioSlot<u32, 16>>;

    use super::*;

    /// A small seeded PRNG (splitmix64): the same seed gives the same delays on every machine.
    #[derive(Clone)]
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// 0, 1, 2, ... up to `end` (exclusive; `u32::MAX` never ends in practice), from a shared
    /// counter so the test knows exactly what the producer pulled. With `jitter`, it is sometimes
    /// not ready (it wakes itself), as a real source would be.
    struct Numbers {
        next: Arc<AtomicU32>,
        end: u32,
        jitter: Option<Rng>,
        flush: Option<Arc<OnceLock<Handle>>>,
    }

    impl Numbers {
        fn new(end: u32) -> (Self, Arc<AtomicU32>) {
            let next = Arc::new(AtomicU32::new(0));
            let s = Self {
                next: next.clone(),
                end,
                jitter: None,
                flush: None,
            };
            (s, next)
        }
    }

    impl Stream for Numbers {
        type Item = u32;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u32>> {
            if let Some(rng) = self.jitter.as_mut() {
                if rng.below(16) == 0 {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
            let x = self.next.load(Ordering::Relaxed);
            if x == self.end {
                return Poll::Ready(None);
            }
            if let Some(h) = self.flush.as_ref().and_then(|h| h.get()) {
                h.flush();
            }
            self.next.store(x + 1, Ordering::Relaxed);
            Poll::Ready(Some(x))
        }
    }

    /// Busy work for `micros` microseconds (a handler computing), not a sleep.
    fn spin(micros: u64) {
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_micros(micros) {
            std::hint::spin_loop();
        }
    }

    fn stress_items() -> u32 {
        std::env::var("RELIABILITY_ITEMS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000)
    }

    async fn stress<const N: usize>(seed: u64, items: u32) {
        let mut rng = Rng(seed);
        let (mut source, _) = Numbers::new(items);
        source.jitter = Some(Rng(seed ^ 0xA5A5));
        let mut config = Config::new().max_wait(Duration::from_micros(50 + rng.below(2_000)));
        if seed % 2 == 0 {
            config = config.idle(Duration::ZERO);
        }
        let mut batches = source.prefetch_batches::<N>(config).unwrap();
        let mut expect = 0u32;
        let mut check = |items: &[u32]| {
            assert!(
                !items.is_empty() && items.len() <= N,
                "seed {seed}: batch of {}",
                items.len()
            );
            for &x in items {
                assert_eq!(x, expect, "seed {seed}: exactly once, in order");
                expect += 1;
            }
        };
        loop {
            // Half the batches through the zero-copy guard (held across the delay), half moved out.
            let delay = rng.below(10);
            if rng.below(2) == 0 {
                let Some(b) = batches.recv().await else { break };
                check(&b);
                spin(delay);
            } else {
                let Some(b) = batches.next().await else { break };
                spin(delay);
                check(&b);
            }
            match rng.below(64) {
                0 => tokio::task::yield_now().await,
                1 => batches.slot().flush(),
                _ => {}
            }
        }
        assert_eq!(expect, items, "seed {seed}: every item");
        assert_eq!(batches.slot().stats().items(), u64::from(items));
    }

    /// A million items (`RELIABILITY_ITEMS` to change) through the spawned producer on a
    /// multi-thread runtime, per seed: random handler delays (0-9 µs of busy work, guard held or
    /// batch moved out), a source that is sometimes not ready, random flushes, deadlines on the
    /// real clock. Exactly once, in order, no empty or oversized batch.
    #[test]
    fn million_items_exactly_once_across_threads() {
        let items = stress_items();
        for seed in 1..=4u64 {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(3)
                .enable_time()
                .build()
                .unwrap();
            match seed {
                1 | 2 => rt.block_on(stress::<8>(seed, items)),
                _ => rt.block_on(stress::<64>(seed, items)),
            }
        }
    }

    /// A generous virtual deadline: with the paused clock, a hang turns into a timeout at once
    /// instead of a test that never ends.
    const HANG: Duration = Duration::from_secs(3600);

    /// The handler panics holding a batch; the caller catches it. The producer stops cleanly
    /// and nothing it pulled is lost: the batches before, the one that panicked, and the
    /// remainder are exactly what the source gave.
    #[tokio::test(start_paused = true)]
    async fn handler_panic_is_caught_and_the_rest_recovered() {
        let (source, pulled) = Numbers::new(u32::MAX);
        let mut batches = source.prefetch_batches::<4>(Config::new()).unwrap();
        let mut seen = vec![];
        for k in 0.. {
            let b = batches.recv().await.expect("a never-ending source");
            let handled = AssertUnwindSafe(async {
                seen.extend_from_slice(&b);
                tokio::time::sleep(ms(1)).await;
                assert!(k < 3, "handler fails on batch {k}");
                drop(b);
            })
            .catch_unwind()
            .await;
            if handled.is_err() {
                break;
            }
        }
        let rest = tokio::time::timeout(HANG, batches.into_remainder())
            .await
            .expect("the producer stops");
        seen.extend(rest);
        let pulled = pulled.load(Ordering::Relaxed);
        assert_eq!(seen, (0..pulled).collect::<Vec<_>>());
        assert!(pulled >= 16);
    }

    /// The same on a multi-thread runtime, for several seeds of where the panic hits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn handler_panic_on_threads_loses_nothing() {
        for seed in 0..8 {
            let (mut source, pulled) = Numbers::new(u32::MAX);
            source.jitter = Some(Rng(seed));
            let mut batches = source
                .prefetch_batches::<8>(Config::new().idle(Duration::ZERO))
                .unwrap();
            let fail_at = Rng(seed).below(50);
            let mut seen = vec![];
            for k in 0.. {
                let b = batches.recv().await.expect("a never-ending source");
                let handled = AssertUnwindSafe(async {
                    seen.extend_from_slice(&b);
                    tokio::task::yield_now().await;
                    assert!(k < fail_at, "handler fails on batch {k}");
                })
                .catch_unwind()
                .await;
                if handled.is_err() {
                    break;
                }
            }
            seen.extend(batches.into_remainder().await);
            let pulled = pulled.load(Ordering::Relaxed);
            assert_eq!(seen, (0..pulled).collect::<Vec<_>>(), "seed {seed}");
        }
    }

    /// The consumer task panics (not caught) holding a batch: the receiver is dropped with it, so
    /// the producer task stops and drops its source; nothing hangs.
    #[tokio::test(start_paused = true)]
    async fn consumer_task_panic_stops_the_producer() {
        struct DropSignal(Option<tokio::sync::oneshot::Sender<u32>>, Numbers);
        impl Stream for DropSignal {
            type Item = u32;
            fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u32>> {
                Pin::new(&mut self.1).poll_next(cx)
            }
        }
        impl Drop for DropSignal {
            fn drop(&mut self) {
                let _ = self.0.take().unwrap().send(self.1.next.load(Ordering::Relaxed));
            }
        }
        let (tx, dropped) = tokio::sync::oneshot::channel();
        let (numbers, _) = Numbers::new(u32::MAX);
        let mut batches = DropSignal(Some(tx), numbers)
            .prefetch_batches::<4>(Config::new())
            .unwrap();
        let consumer = tokio::spawn(async move {
            let _first = batches.next().await;
            tokio::time::sleep(ms(5)).await;
            // A `BatchGuard` is not `Send` (it erases its slot to `&dyn Release`), so a spawned
            // task cannot hold one across an await; it panics holding it without awaiting.
            let _held = batches.recv().await;
            panic!("handler fails");
        });
        assert!(consumer.await.unwrap_err().is_panic());
        let pulled = tokio::time::timeout(HANG, dropped)
            .await
            .expect("the producer task stops")
            .unwrap();
        assert!(
            pulled <= 4 * 3 + 1,
            "bounded: two buffers and a parked item past the first batch"
        );
    }

    /// The source panics mid-batch: the producer task stops, its partial batch is still published
    /// (reason Close), the stream ends, nothing hangs.
    #[tokio::test(start_paused = true)]
    async fn source_panic_ends_the_stream_cleanly() {
        let source = futures_util::stream::iter(0..100u32).map(|x| {
            assert!(x != 6, "source fails at 6");
            x
        });
        let mut batches = source.prefetch_batches::<4>(Config::new()).unwrap();
        let got = tokio::time::timeout(HANG, async {
            let mut got = vec![];
            while let Some(b) = batches.next().await {
                got.push((b.items.to_vec(), b.info.reason));
            }
            got
        })
        .await
        .expect("the stream ends");
        assert_eq!(
            got,
            vec![(vec![0, 1, 2, 3], FlushReason::Full), (vec![4, 5], FlushReason::Close)]
        );
    }

    /// A source that never ends, a busy caller, and a close from another task at a deadline: no
    /// item is pulled after the close, every item pulled is delivered once, then the stream ends.
    #[tokio::test(start_paused = true)]
    async fn close_at_a_deadline_stops_a_never_ending_source() {
        let (source, pulled) = Numbers::new(u32::MAX);
        let mut batches = source.prefetch_batches::<4>(Config::new()).unwrap();
        let handle = batches.slot().clone();
        let pulled_at_close = Arc::new(AtomicU32::new(0));
        let closer = {
            let (pulled, at_close) = (pulled.clone(), pulled_at_close.clone());
            tokio::spawn(async move {
                tokio::time::sleep(ms(50)).await;
                handle.close();
                at_close.store(pulled.load(Ordering::Relaxed), Ordering::Relaxed);
            })
        };
        let start = tokio::time::Instant::now();
        let mut seen = vec![];
        let mut reasons = vec![];
        tokio::time::timeout(HANG, async {
            while let Some(b) = batches.next().await {
                reasons.push(b.info.reason);
                seen.extend(b.items);
                tokio::time::sleep(ms(20)).await; // a busy caller
            }
        })
        .await
        .expect("the stream ends after the close");
        closer.await.unwrap();
        let pulled = pulled.load(Ordering::Relaxed);
        assert_eq!(
            pulled,
            pulled_at_close.load(Ordering::Relaxed),
            "pulled after the close"
        );
        assert_eq!(seen, (0..pulled).collect::<Vec<_>>());
        assert!(reasons.iter().all(|r| *r == FlushReason::Full), "{reasons:?}");
        // Batches at 0, 20, 40 ms; the close at 50 ms; the two still buffered at 60 and 80 ms.
        assert_eq!(reasons.len(), 5);
        assert_eq!(tokio::time::Instant::now() - start, ms(100));
    }

    /// A source that yields a few items and then never yields nor ends: its deadline emits them,
    /// a close ends the stream at once, and a close before the deadline emits them with reason
    /// Close, at the instant of the close.
    #[tokio::test(start_paused = true)]
    async fn close_a_quiet_never_ending_source() {
        for (close_at, want) in [(25, FlushReason::Deadline), (3, FlushReason::Close)] {
            let source = futures_util::stream::iter(0..5u32).chain(futures_util::stream::pending());
            let mut batches = source.prefetch_batches::<8>(Config::new().max_wait(ms(10))).unwrap();
            let handle = batches.slot().clone();
            tokio::spawn(async move {
                tokio::time::sleep(ms(close_at)).await;
                handle.close();
            });
            let start = tokio::time::Instant::now();
            let b = tokio::time::timeout(HANG, batches.next()).await.unwrap().unwrap();
            assert_eq!((b.items.to_vec(), b.info.reason), (vec![0, 1, 2, 3, 4], want));
            let taken_at = tokio::time::Instant::now() - start;
            assert_eq!(taken_at, ms(10.min(close_at)));
            assert!(tokio::time::timeout(HANG, batches.next()).await.unwrap().is_none());
            assert_eq!(tokio::time::Instant::now() - start, ms(close_at));
        }
    }

    /// Shutdown with a deadline: a never-ending source nobody reads; `into_remainder` finishes
    /// (well within the deadline) and hands back the prefix the producer pulled.
    #[tokio::test(start_paused = true)]
    async fn into_remainder_of_a_never_ending_source_within_a_deadline() {
        let (source, pulled) = Numbers::new(u32::MAX);
        let batches = source.prefetch_batches::<4>(Config::new()).unwrap();
        tokio::task::yield_now().await;
        let rest: Vec<u32> = tokio::time::timeout(ms(100), batches.into_remainder())
            .await
            .expect("shutdown finishes within its deadline")
            .collect();
        let pulled = pulled.load(Ordering::Relaxed);
        assert_eq!(rest, (0..pulled).collect::<Vec<_>>());
        assert!(
            (1..=9).contains(&pulled),
            "two buffers of 4 and at most one parked item: {pulled}"
        );
    }

    /// A flush requested with every item, from a clone of the stream's slot, on a multi-thread runtime, with a source
    /// that is sometimes not ready (so the producer reads the flushes between bursts).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn flush_storm_on_threads() {
        const ITEMS: u32 = 200_000;
        let (mut source, _) = Numbers::new(ITEMS);
        source.jitter = Some(Rng(7));
        let handle = Arc::new(OnceLock::new());
        source.flush = Some(handle.clone());
        let mut batches = source.prefetch_batches::<16>(Config::new()).unwrap();
        handle.set(batches.slot().clone()).unwrap();
        let mut expect = 0;
        while let Some(b) = batches.next().await {
            assert!(!b.is_empty());
            assert!(matches!(
                b.info.reason,
                FlushReason::Flush | FlushReason::Full | FlushReason::End
            ));
            for x in b {
                assert_eq!(x, expect);
                expect += 1;
            }
        }
        assert_eq!(expect, ITEMS);
        assert!(batches.slot().stats().batches_for(FlushReason::Flush) > 0);
    }
}
