//! Every emission reason on tokio's paused clock, and the spawned `prefetch_batches` adapter.
#![cfg(feature = "tokio")]
mod common;

use std::time::Duration;

use common::{Counter, ms, scenarios};
use futures_util::StreamExt;
use prefetch_batch::timer::TokioTimer;
use prefetch_batch::{BatchExt, Config, FlushReason};

macro_rules! on_tokio {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(start_paused = true)]
        async fn $name() {
            scenarios::$name(TokioTimer).await;
        }
    )*};
}

common::scenarios::each_scenario!(on_tokio);

/// A channel source whose sender pushes `(at_ms, value)` at those instants of paused time.
fn timed(items: Vec<(u64, u32)>) -> impl futures_core::Stream<Item = u32> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        for (at, x) in items {
            tokio::time::sleep_until(start + ms(at)).await;
            tx.send(x).await.unwrap();
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}

#[tokio::test(start_paused = true)]
async fn spawned_stream_full_deadline_end() {
    let start = tokio::time::Instant::now();
    let src = timed(vec![(0, 0), (0, 1), (0, 2), (0, 3), (2, 4), (3, 5), (40, 6)]);
    let mut batches = src.prefetch_batches::<4>(Config::new().max_wait(ms(10))).unwrap();
    let mut got = vec![];
    while let Some(b) = batches.next().await {
        got.push((
            b.items.to_vec(),
            b.info.reason,
            b.info.first_at - start,
            tokio::time::Instant::now() - start,
        ));
    }
    assert_eq!(
        got,
        vec![
            (vec![0, 1, 2, 3], FlushReason::Full, ms(0), ms(0)),
            (vec![4, 5], FlushReason::Deadline, ms(2), ms(12)),
            (vec![6], FlushReason::End, ms(40), ms(40)),
        ]
    );
    assert!(batches.next().await.is_none(), "fused: stays ended");
    let stats = batches.slot().stats();
    assert_eq!((stats.items(), stats.total_batches()), (7, 3));
}

#[tokio::test(start_paused = true)]
async fn spawned_stream_flush_and_close_from_handle() {
    let src = timed((0..10).map(|i| (i * 10, i as u32)).collect());
    let mut batches = src
        .prefetch_batches::<8>(Config::new().max_wait(Duration::from_secs(60)))
        .unwrap();
    let handle = batches.slot().clone();
    tokio::spawn(async move {
        tokio::time::sleep(ms(25)).await;
        handle.flush();
        tokio::time::sleep(ms(20)).await; // t = 45
        handle.close();
    });
    let mut got = vec![];
    while let Some(b) = batches.next().await {
        got.push((b.items.to_vec(), b.info.reason));
    }
    assert_eq!(
        got,
        vec![(vec![0, 1, 2], FlushReason::Flush), (vec![3, 4], FlushReason::Close)]
    );
}

#[tokio::test(start_paused = true)]
async fn spawned_try_stream_delivers_error_after_its_batch() {
    let src = futures_util::stream::iter(vec![Ok(1), Ok(2), Err("bad"), Ok(3)]);
    let mut batches = src.try_prefetch_batches::<8>(Config::new()).unwrap();
    let mut got = vec![];
    while let Some(r) = batches.next().await {
        got.push(r.map(|b| (b.items.to_vec(), b.info.reason)));
    }
    assert_eq!(
        got,
        vec![
            Ok((vec![1, 2], FlushReason::Error)),
            Err("bad"),
            Ok((vec![3], FlushReason::End))
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn spawned_zero_copy_guard() {
    let mut batches = futures_util::stream::iter(0..10u32)
        .prefetch_batches::<4>(Config::new())
        .unwrap();
    let mut sum = 0;
    while let Some(mut b) = batches.recv().await {
        sum += b.drain(..).sum::<u32>();
    }
    assert_eq!(sum, 45);
}

/// Stopping early loses nothing: delivered ++ remainder == the prefix the source yielded.
#[tokio::test(start_paused = true)]
async fn into_remainder_hands_back_everything_buffered() {
    for taken in 0..5 {
        let (src, _polls) = Counter::new();
        let mut batches = src.prefetch_batches::<4>(Config::new()).unwrap();
        let mut delivered = vec![];
        for _ in 0..taken {
            delivered.extend(batches.next().await.unwrap().items);
        }
        tokio::task::yield_now().await;
        let rest: Vec<u32> = batches.into_remainder().await.collect();
        let all: Vec<u32> = delivered.iter().chain(&rest).copied().collect();
        assert_eq!(all, (0..all.len() as u32).collect::<Vec<_>>(), "after {taken} batches");
        assert!(rest.len() <= 8, "at most two buffers are held");
    }
}

/// Real threads: exactly once, in order, with the consumer on another worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_exactly_once() {
    let n = 200_000u32;
    let src = futures_util::stream::iter(0..n);
    let mut batches = src.prefetch_batches::<64>(Config::new().max_wait(ms(1))).unwrap();
    let mut expect = 0u32;
    while let Some(b) = batches.next().await {
        for x in b {
            assert_eq!(x, expect);
            expect += 1;
        }
    }
    assert_eq!(expect, n);
}

#[tokio::test(start_paused = true)]
async fn config_error_surfaces_before_spawning() {
    let err = futures_util::stream::iter(0..1u32)
        .prefetch_batches::<4>(Config::new().max_items(5))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "max_items (5) must not exceed the batch capacity N (4)"
    );
}

/// Guards are `Send` on tokio: a spawned task can hold one across an `.await` (a database round
/// trip), and producer and consumer can share one spawned task over a `TokioSlot`.
#[tokio::test(start_paused = true)]
async fn guards_cross_awaits_in_spawned_tasks() {
    let mut batches = futures_util::stream::iter(0..10u32)
        .prefetch_batches::<4>(Config::new())
        .unwrap();
    let total = tokio::spawn(async move {
        let mut total = 0;
        while let Some(batch) = batches.recv().await {
            tokio::time::sleep(ms(1)).await; // the "round trip", guard held
            total += batch.len();
        }
        total
    });
    assert_eq!(total.await.unwrap(), 10);

    let in_task = tokio::spawn(async {
        let slot = prefetch_batch::TokioSlot::<u32, 4>::new(TokioTimer);
        let mut seen = 0;
        let (producer, mut rx) = slot.split(futures_util::stream::iter(0..10u32), Config::new()).unwrap();
        prefetch_batch::testing::join(producer, async {
            while let Some(batch) = rx.recv().await {
                tokio::time::sleep(ms(1)).await;
                seen += batch.len();
            }
        })
        .await;
        seen
    });
    assert_eq!(in_task.await.unwrap(), 10);
}
