//! Backpressure, prefetch overlap, cancel safety and configuration errors, on the virtual clock.
mod common;

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use std::sync::atomic::Ordering;

use common::{Counter, Event, Plan, Values, ms, run};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use prefetch_batch::testing::join;
use prefetch_batch::timer::Timer;
use prefetch_batch::{Config, ConfigError, Slot, SplitError};

/// With one batch lent to a busy caller and the other full, the source is not polled at all, for
/// as long as the caller stays busy; afterwards every item arrives, in order.
#[test]
fn backpressure_stops_polling_the_source() {
    let clock = common::clock();
    let (source, polls) = Counter::new();
    let slot = Slot::<NoopRawMutex, u32, 4, _>::new(clock);
    let (producer, mut rx) = slot.split(source, Config::new()).unwrap();
    let mut delivered = vec![];
    clock.block_on(join(producer, async {
        let first = rx.recv().await.unwrap();
        delivered.extend_from_slice(&first);
        // Let the producer run: it fills the second buffer, then has no room.
        (clock).sleep_until(ms(1)).await;
        let polled = polls.load(Ordering::Relaxed);
        assert_eq!(polled, 8, "two buffers of 4, not one item more");
        (clock).sleep_until(ms(1000)).await; // a long, busy caller
        assert_eq!(
            polls.load(Ordering::Relaxed),
            polled,
            "source polled while every buffer was taken"
        );
        drop(first);
        for _ in 0..10 {
            delivered.extend_from_slice(&rx.recv().await.unwrap());
        }
        rx.slot().close();
        while let Some(b) = rx.recv().await {
            delivered.extend_from_slice(&b);
        }
    }));
    assert_eq!(delivered, (0..delivered.len() as u32).collect::<Vec<_>>());
    assert!(delivered.len() >= 44);
    assert!(slot.stats().producer_waited() >= ms(999));
}

/// K batches, each taking F to arrive and P to process, take about K * max(F, P) plus one stage,
/// not K * (F + P): the next batch fills while the caller works on the current one.
#[test]
fn prefetch_overlaps_fill_and_processing() {
    const K: u64 = 20;
    const N: usize = 10;
    for (f_per_item, p) in [(1u64, 10u64), (1, 20), (2, 10), (1, 5)] {
        let f = f_per_item * N as u64;
        let clock = common::clock();
        // Items arrive one every `f_per_item` ms, from t = f_per_item.
        let ev = (0..K * N as u64)
            .map(|i| Event::Item(ms((i + 1) * f_per_item), i as u32))
            .collect();
        let plan = Plan {
            process: ms(p),
            ..Plan::default()
        };
        let (seen, stats) = clock.block_on(run::<_, _, _, N>(clock, ev, Config::new().max_wait(ms(1000)), plan));
        assert_eq!(seen.len() as u64, K, "F = {f} ms, P = {p} ms");
        let total = clock.elapsed();
        let ideal = ms(K * f.max(p) + f.min(p));
        let serial = ms(K * (f + p));
        assert!(
            total <= ideal,
            "F = {f} ms, P = {p} ms: {total:?} > {ideal:?} (serial would be {serial:?})"
        );
        if p > f {
            // The caller waits for the first batch only (full after F), never after.
            assert_eq!(stats.consumer_waited(), ms(f), "F = {f} ms, P = {p} ms: {stats:?}");
        }
    }
}

/// Polls a future `polls` times with a no-op waker and then drops it.
fn poll_then_drop<F: Future>(fut: F, polls: usize) -> Option<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut fut = pin!(fut);
    for _ in 0..polls {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return Some(out);
        }
    }
    None
}

/// Dropping `next()` futures, the producer, or the whole pipeline at any point loses nothing:
/// what was delivered, plus the remainder, plus what the source still holds, is the input.
#[test]
fn cancel_at_every_point_loses_nothing() {
    let input: Vec<u32> = (0..37).collect();
    for producer_polls in 0..12 {
        for next_polls in 0..4 {
            let clock = common::clock();
            let source = common::Scripted::new(
                clock,
                input
                    .iter()
                    .map(|&x| Event::Item(ms(x as u64 / 5), x))
                    .collect::<Vec<_>>(),
            );
            let mut source = Values(source);
            let slot = Slot::<NoopRawMutex, u32, 4, _>::new(clock);
            let (producer, mut rx) = slot.split(&mut source, Config::new().max_wait(ms(2))).unwrap();
            let mut delivered = vec![];
            {
                let mut run = pin!(producer);
                let mut cx = Context::from_waker(Waker::noop());
                for step in 0..producer_polls {
                    let _ = run.as_mut().poll(&mut cx);
                    clock.advance(ms(1));
                    // Take a batch now and then, and drop half-polled `next()` futures.
                    if step % 3 == 0 {
                        if let Some(Some(b)) = poll_then_drop(rx.recv(), next_polls) {
                            delivered.extend_from_slice(&b);
                        }
                    }
                }
                // `run` is dropped here, mid-way: its partial batch must be published.
            }
            let remainder: Vec<u32> = rx.drain_remainder().collect();
            let rest: Vec<u32> = clock.block_on(async {
                let mut rest = vec![];
                while let Some(x) = futures_next(&mut source).await {
                    rest.push(x);
                }
                rest
            });
            let all: Vec<u32> = delivered.iter().chain(&remainder).chain(&rest).copied().collect();
            assert_eq!(all, input, "producer polls {producer_polls}, next() polls {next_polls}");
        }
    }
}

fn futures_next<S: futures_core::Stream + Unpin>(s: &mut S) -> impl Future<Output = Option<S::Item>> + '_ {
    core::future::poll_fn(move |cx| core::pin::Pin::new(&mut *s).poll_next(cx))
}

/// Dropping the receiver stops the producer (no task left filling buffers nobody reads).
#[test]
fn dropping_the_receiver_stops_the_producer() {
    let clock = common::clock();
    let (source, polls) = Counter::new();
    let slot = Slot::<NoopRawMutex, u32, 4, _>::new(clock);
    let (producer, rx) = slot.split(source, Config::new()).unwrap();
    drop(rx);
    clock.block_on(producer);
    assert_eq!(polls.load(Ordering::Relaxed), 0);
}

/// A clock in whole milliseconds whose spans round a `Duration` *down* (against
/// `Span::from_duration`'s contract): a `max_wait` under a millisecond would become no time at all,
/// which the limits read as "no `max_wait`". Refused as `MaxWaitZero` instead.
#[test]
fn a_max_wait_a_timer_rounds_to_nothing_is_refused() {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    struct Ms(u64);
    impl prefetch_batch::timer::Span for Ms {
        const ZERO: Self = Ms(0);
        fn from_duration(d: Duration) -> Option<Self> {
            u64::try_from(d.as_millis()).ok().map(Ms)
        }
        fn to_duration(self) -> Duration {
            Duration::from_millis(self.0)
        }
        fn saturating_add(self, other: Self) -> Self {
            Ms(self.0.saturating_add(other.0))
        }
        fn half(self) -> Self {
            Ms(self.0 / 2)
        }
    }
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    struct At(u64);
    impl prefetch_batch::timer::Instant for At {
        type Span = Ms;
        fn checked_add(self, d: Ms) -> Option<Self> {
            self.0.checked_add(d.0).map(At)
        }
        fn saturating_since(self, earlier: Self) -> Ms {
            Ms(self.0.saturating_sub(earlier.0))
        }
    }
    #[derive(Debug, Clone, Copy)]
    struct Coarse;
    impl Timer for Coarse {
        type Instant = At;
        type Sleep = core::future::Pending<()>;
        const MAX_DURATION: Duration = Duration::from_secs(3600);
        fn now(&self) -> At {
            At(0)
        }
        fn sleep_until(&self, _: At) -> Self::Sleep {
            core::future::pending()
        }
    }
    assert_eq!(
        Config::<4>::new()
            .max_wait(Duration::from_micros(500))
            .validate::<Coarse>(),
        Err(ConfigError::MaxWaitZero)
    );
    assert!(Config::<4>::new().max_wait(ms(1)).validate::<Coarse>().is_ok());
}

#[test]
fn each_invalid_field_gets_its_error() {
    type C = &'static prefetch_batch::timer::ManualClock;
    let cases: Vec<(Result<_, ConfigError>, ConfigError, &str)> = vec![
        (
            Config::<4>::new().max_items(0).validate::<C>(),
            ConfigError::MaxItemsZero,
            "max_items",
        ),
        (
            Config::<4>::new().max_items(5).validate::<C>(),
            ConfigError::MaxItemsAboveCapacity {
                max_items: 5,
                capacity: 4,
            },
            "max_items (5)",
        ),
        (
            Config::<4>::new().max_weight(0, |_: &u32| 1).validate::<C>(),
            ConfigError::MaxWeightZero,
            "max_weight",
        ),
        (
            Config::<4>::new().max_wait(Duration::ZERO).validate::<C>(),
            ConfigError::MaxWaitZero,
            "max_wait",
        ),
        (
            Config::<4>::new().max_wait(Duration::MAX).validate::<C>(),
            ConfigError::MaxWaitTooLong,
            "max_wait is longer",
        ),
        (
            Config::<4>::new().idle(Duration::MAX).validate::<C>(),
            ConfigError::IdleTooLong,
            "idle is longer",
        ),
    ];
    for (got, want, field) in cases {
        assert_eq!(got, Err(want));
        assert!(want.to_string().starts_with(field), "{want} should name {field}");
    }
    // Through the public constructors too, and for each timer's own range.
    let clock = common::clock();
    let slot = Slot::<NoopRawMutex, u32, 4, _>::new(clock);
    let err = slot
        .split(prefetch_batch::testing::iter(0..1), Config::new().max_items(9))
        .unwrap_err();
    assert_eq!(
        err,
        SplitError::Config(ConfigError::MaxItemsAboveCapacity {
            max_items: 9,
            capacity: 4
        })
    );
    let _ok = slot.split(prefetch_batch::testing::iter(0..1), Config::new()).unwrap();
    let again = slot
        .split(prefetch_batch::testing::iter(0..1), Config::new())
        .unwrap_err();
    assert_eq!(again, SplitError::InUse);
    assert!(again.to_string().contains("still alive"));
}

/// An item the producer pulled but had no room for (here: too heavy to join the open batch while
/// the other buffer is taken) is still delivered after the producer is dropped.
#[test]
fn parked_item_survives_a_dropped_producer() {
    let clock = common::clock();
    let (source, polls) = Counter::new();
    let slot = Slot::<NoopRawMutex, u32, 4, _>::new(clock);
    // Every item weighs 6 against a limit of 10: each batch holds one item.
    let config = Config::new().max_weight(10, |_: &u32| 6);
    let (producer, mut rx) = slot.split(source, config).unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    {
        let mut run = pin!(producer);
        assert!(run.as_mut().poll(&mut cx).is_pending()); // fills both buffers, parks the third item
    } // dropped
    assert_eq!(polls.load(Ordering::Relaxed), 3);
    let mut delivered = vec![];
    clock.block_on(async {
        while let Some(b) = rx.recv().await {
            delivered.push((b.to_vec(), b.info().reason));
        }
    });
    use prefetch_batch::FlushReason::{Close, Full};
    assert_eq!(delivered, vec![(vec![0], Full), (vec![1], Full), (vec![2], Close)]);
}
