//! Bulk intake: a `BulkSource` is batched under exactly the rules a `Stream` is, and the tokio
//! and embassy-sync adapters deliver every item once, in order.

mod common;

use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use common::timers::{Cheap, Counted, reads};
use common::{Event, Scripted, Seen, ms};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use futures_core::Stream;
use prefetch_batch::source::BulkSource;
use prefetch_batch::timer::{ManualClock, Span, Timer};
use prefetch_batch::{Config, FlushReason, Slot};

/// Any stream as a bulk source: each poll moves every item the stream has ready, up to the limit.
struct Drain<S>(S);

impl<S: Stream + Unpin> BulkSource for Drain<S> {
    type Item = S::Item;
    fn poll_extend<const N: usize>(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        batch: &mut heapless::Vec<S::Item, N>,
        limit: usize,
    ) -> Poll<Option<usize>> {
        let before = batch.len();
        while batch.len() < limit {
            match Pin::new(&mut self.0).poll_next(cx) {
                Poll::Ready(Some(x)) => {
                    let _ = batch.push(x);
                }
                Poll::Ready(None) if batch.len() == before => return Poll::Ready(None),
                Poll::Pending if batch.len() == before => return Poll::Pending,
                _ => break,
            }
        }
        Poll::Ready(Some(batch.len() - before))
    }
}

/// Runs `events` through a slot on `clock` (or, with `cheap`, on [`Cheap`] over it), as a
/// `Stream` or (with `bulk`) as a `BulkSource`, the caller holding each batch for `process`; what
/// the caller saw.
fn run(events: Vec<Event<u32>>, config: Config<4>, process: Duration, bulk: bool, cheap: bool) -> Vec<Seen<u32>> {
    let clock = common::clock();
    if cheap {
        run_on(clock, Cheap(clock), events, config, process, bulk)
    } else {
        run_on(clock, clock, events, config, process, bulk)
    }
}

fn run_on<Tm: Timer<Instant = Duration>>(
    clock: &'static ManualClock,
    timer: Tm,
    events: Vec<Event<u32>>,
    config: Config<4>,
    process: Duration,
    bulk: bool,
) -> Vec<Seen<u32>> {
    // The scripted source yields `Result`s; these events hold no error.
    let source = futures_util::StreamExt::map(Scripted::new(clock, events), |r| r.expect("no error scripted"));
    let start = clock.now();
    let slot = Slot::<NoopRawMutex, u32, 4, _>::new(timer);
    let mut seen = vec![];
    macro_rules! drive {
        ($producer:expr, $rx:expr) => {{
            let (producer, mut rx) = ($producer, $rx);
            clock.block_on(slot.join(producer, async {
                while let Some(batch) = rx.recv().await {
                    let info = batch.info();
                    seen.push(Seen {
                        items: batch.to_vec(),
                        reason: Some(info.reason),
                        error: None,
                        first_at: clock.since(info.first_at, start),
                        taken_at: clock.since(clock.now(), start),
                        age: info.age_at(clock.now()).to_duration(),
                    });
                    if !process.is_zero() {
                        clock.sleep_until(clock.add(clock.now(), process).unwrap()).await;
                    }
                }
            }));
        }};
    }
    if bulk {
        let (producer, rx) = slot.split_bulk(Drain(source), config).unwrap();
        drive!(producer, rx);
    } else {
        let (producer, rx) = slot.split(source, config).unwrap();
        drive!(producer, rx);
    }
    seen
}

/// Arrivals with gaps and bursts: every reason the scripted clock can produce.
fn events(seed: u64) -> Vec<Event<u32>> {
    let mut x = seed;
    let mut t = 0;
    let mut out = vec![];
    for i in 0..60u32 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        t += match (x >> 33) % 5 {
            0 => 0,
            1 => 1,
            2 => 2,
            3 => 7,
            _ => 13,
        };
        out.push(Event::Item(ms(t), i));
    }
    out
}

#[test]
fn a_bulk_source_is_batched_exactly_as_the_same_stream() {
    let configs = [
        Config::<4>::new().max_wait(ms(5)),
        Config::<4>::new().max_wait(ms(10)).idle(ms(2)),
        Config::<4>::new().max_items(3).idle(ms(0)),
    ];
    for seed in 0..8 {
        for (k, config) in configs.iter().enumerate() {
            for (process, cheap) in [ms(0), ms(3), ms(20)].into_iter().flat_map(|p| [(p, false), (p, true)]) {
                let plain = run(events(seed), *config, process, false, cheap);
                let bulk = run(events(seed), *config, process, true, cheap);
                assert_eq!(
                    plain, bulk,
                    "seed {seed}, config {k}, process {process:?}, cheap {cheap}"
                );
                let delivered: Vec<u32> = bulk.iter().flat_map(|s| s.items.clone()).collect();
                assert_eq!(delivered, (0..60).collect::<Vec<_>>());
                assert!(
                    bulk.iter()
                        .all(|s| matches!(s.reason, Some(r) if r != FlushReason::Error))
                );
            }
        }
    }
}

/// On a cheap clock a bulk fill is looked at once per take from the source, not once per item (a
/// take holds only what was ready at one instant): 40 items arriving in groups of 10 at 0, 1, 2
/// and 3 ms, N = 64, are one `End` batch. The producer reads the clock for its stamp, after each
/// take, and each time the source has nothing ready (for the deadline's timer): 9 reads, where a
/// look per item takes 35. The `stats` counters this file builds with read it once more, for the
/// take.
#[test]
fn a_cheap_clock_looks_once_per_bulk_take() {
    let clock = common::clock();
    let timer = Counted(Cheap(clock));
    let mut events: Vec<Event<u32>> = (0..40).map(|i| Event::Item(ms(u64::from(i / 10)), i)).collect();
    events.push(Event::End(ms(3)));
    let source = futures_util::StreamExt::map(Scripted::new(clock, events), |r| r.expect("no error scripted"));
    let slot = Slot::<NoopRawMutex, u32, 64, _>::new(timer);
    let (producer, mut rx) = slot.split_bulk(Drain(source), Config::new().max_wait(ms(10))).unwrap();
    let before = reads();
    let got = clock.block_on(slot.join(producer, async {
        let mut got = vec![];
        while let Some(batch) = rx.recv().await {
            got.push((batch.len(), batch.info().reason));
        }
        got
    }));
    assert_eq!(got, [(40, FlushReason::End)]);
    assert_eq!(
        reads() - before,
        9 + 1,
        "clock reads: the producer's, then the counters'"
    );
}

#[cfg(feature = "tokio")]
mod on_tokio {
    use futures_util::StreamExt;
    use prefetch_batch::{Config, MpscBulk, prefetch_bulk};

    /// 100,000 items from a sender task on 2 workers: every one once, in order, in full batches
    /// but the last.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mpsc_bulk_delivers_everything_in_order() {
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move {
            for i in 0..100_000u32 {
                tx.send(i).await.unwrap();
            }
        });
        let config = Config::<64>::new().max_wait(std::time::Duration::from_millis(5));
        let mut batches = prefetch_bulk(MpscBulk::new(rx), config).unwrap();
        let mut next = 0;
        while let Some(batch) = tokio::time::timeout(std::time::Duration::from_secs(60), batches.next())
            .await
            .expect("hang guard")
        {
            for x in batch {
                assert_eq!(x, next);
                next += 1;
            }
        }
        assert_eq!(next, 100_000);
    }

    /// `close_when_idle` drains a backlog through bulk intake too, and `into_parts` hands the
    /// receiver back with what was never pulled.
    #[tokio::test(start_paused = true)]
    async fn mpsc_bulk_close_when_idle_and_into_parts() {
        let (tx, rx) = tokio::sync::mpsc::channel(2_000);
        for i in 0..1_000u32 {
            tx.try_send(i).unwrap();
        }
        let mut batches = prefetch_bulk(MpscBulk::new(rx), Config::<512>::new()).unwrap();
        batches.slot().close_when_idle();
        let mut seen = vec![];
        while let Some(b) = batches.next().await {
            seen.extend(b);
        }
        assert_eq!(seen, (0..1_000).collect::<Vec<_>>());
        tx.try_send(1_000).unwrap();
        let (rest, source) = batches.into_parts().await;
        assert_eq!(rest.len(), 0);
        let mut source = source.expect("the source comes back");
        drop(tx);
        assert_eq!(source.next().await, Some(1_000));
        assert_eq!(source.next().await, None);
    }
}
