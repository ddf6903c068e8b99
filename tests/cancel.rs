//! Cancellation: each public future is polled a chosen number of times and then dropped, for
//! every count up to completion. Delivered items, plus what the slot hands back, plus what the
//! source still holds, must equal the input, in order.
mod common;

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use common::{Event, Scripted, Values, ms};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use futures_core::Stream;

use prefetch_batch::timer::ManualClock;
use prefetch_batch::{BatchExt, Config, Slot};

const ITEMS: u32 = 30;

fn source(clock: &'static ManualClock) -> Values<Scripted<&'static ManualClock, u32>> {
    // Bursts and gaps: three items every 4 ms.
    Values(Scripted::new(
        clock,
        (0..ITEMS).map(|x| Event::Item(ms(u64::from(x / 3) * 4), x)).collect(),
    ))
}

fn rest_of<S: Stream<Item = u32> + Unpin>(clock: &'static ManualClock, mut s: S) -> Vec<u32> {
    clock.block_on(async {
        let mut rest = vec![];
        while let Some(x) = core::future::poll_fn(|cx| core::pin::Pin::new(&mut s).poll_next(cx)).await {
            rest.push(x);
        }
        rest
    })
}

/// Polls `fut` up to `polls` times, moving virtual time to the next sleep between polls.
fn poll_n<F: Future>(clock: &ManualClock, fut: F, polls: usize) -> Option<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut fut = pin!(fut);
    for _ in 0..polls {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return Some(out);
        }
        clock.advance_to_next();
    }
    None
}

#[test]
fn in_task_driver_cancelled_after_every_poll_count() {
    let mut completed = false;
    for polls in 0..500 {
        let clock = common::clock();
        let mut src = source(clock);
        let slot = Slot::<NoopRawMutex, u32, 4, _>::new(clock);
        let mut delivered = vec![];
        let config = Config::new().max_wait(ms(3));
        let done = poll_n(
            clock,
            (&mut src).for_each_batch_in(&slot, config, |b| {
                delivered.extend_from_slice(&b);
                // The handler takes 2 ms per batch, so cancellation also lands mid-handler.
                prefetch_batch::timer::Timer::sleep_until(&clock, clock.elapsed() + ms(2))
            }),
            polls,
        );
        let all: Vec<u32> = delivered
            .iter()
            .copied()
            .chain(slot.drain_remainder())
            .chain(rest_of(clock, src))
            .collect();
        assert_eq!(all, (0..ITEMS).collect::<Vec<_>>(), "cancelled after {polls} polls");
        if done.is_some() {
            completed = true;
            break;
        }
    }
    assert!(completed, "the driver completes within the harness's poll budget");
}

#[test]
fn next_futures_cancelled_after_every_poll_count() {
    for next_polls in 0..4 {
        let clock = common::clock();
        let slot = Slot::<NoopRawMutex, u32, 4, _>::new(clock);
        let (producer, mut rx) = slot.split(source(clock), Config::new().max_wait(ms(3))).unwrap();
        let mut delivered = vec![];
        clock.block_on(prefetch_batch::testing::join(producer, async {
            loop {
                // A `next()` polled `next_polls` times and dropped takes nothing...
                {
                    let mut cx = Context::from_waker(Waker::noop());
                    let mut next = pin!(rx.recv());
                    for _ in 0..next_polls {
                        if let Poll::Ready(got) = next.as_mut().poll(&mut cx) {
                            if let Some(b) = got {
                                delivered.extend_from_slice(&b);
                            }
                            break;
                        }
                    }
                }
                // ...and the next one that completes gets what is there.
                match rx.recv().await {
                    Some(b) => delivered.extend_from_slice(&b),
                    None => break,
                }
            }
        }));
        assert_eq!(
            delivered,
            (0..ITEMS).collect::<Vec<_>>(),
            "next() polled {next_polls} times, then dropped"
        );
    }
}

#[cfg(feature = "tokio")]
mod on_tokio {
    use super::*;
    use futures_util::StreamExt;
    use prefetch_batch::BatchExt;

    /// Polls `fut` up to `polls` times, letting the runtime run between polls.
    async fn poll_n_tokio<F: Future>(fut: F, polls: usize) -> Option<F::Output> {
        let mut fut = pin!(fut);
        for _ in 0..polls {
            let polled = core::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
            if let Poll::Ready(out) = polled {
                return Some(out);
            }
            tokio::time::sleep(ms(1)).await;
        }
        None
    }

    fn timed_source() -> impl Stream<Item = u32> + Send + 'static {
        futures_util::stream::iter(0..ITEMS).then(|x| async move {
            if x % 3 == 0 {
                tokio::time::sleep(ms(4)).await;
            }
            x
        })
    }

    /// `next()` on the stream and `drain_remainder()`, each dropped after every poll count.
    #[tokio::test(start_paused = true)]
    async fn stream_next_and_drain_cancelled_after_every_poll_count() {
        for polls in 0..12 {
            let mut batches = timed_source()
                .prefetch_batches::<4>(Config::new().max_wait(ms(3)))
                .unwrap();
            let mut delivered = vec![];
            for _ in 0..3 {
                if let Some(Some(b)) = poll_n_tokio(batches.next(), polls).await {
                    delivered.extend(b);
                }
            }
            // A drain dropped mid-way loses nothing: the next one still gets everything.
            let early = poll_n_tokio(batches.drain_remainder(), polls % 3).await;
            let rest: Vec<u32> = match early {
                Some(r) => r.collect(),
                None => batches.drain_remainder().await.collect(),
            };
            let all: Vec<u32> = delivered.iter().chain(&rest).copied().collect();
            assert_eq!(all, (0..all.len() as u32).collect::<Vec<_>>(), "{polls} polls");
        }
    }
}
