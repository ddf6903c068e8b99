//! Graceful stop: intake stops, what was pulled is written, nothing is lost or doubled.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use examples_tokio::batching::FlushReason;
use examples_tokio::db::Db;
use examples_tokio::pipeline::{self, Mode, NoCommit, Service, counted};
use examples_tokio::sequential::Limits;
use examples_tokio::source::Arrival;

async fn stop_midway(mode: Mode) {
    let db = Db::connect("sqlite::memory:")
        .await
        .unwrap()
        .with_latency(Duration::from_millis(3));
    db.seed(100).await.unwrap();
    let sink = common::Recording::default();
    let batches = Arc::clone(&sink.batches);
    let mut service = Service::new(Arc::new(db), sink, NoCommit, None, true);
    let pulled = Arc::new(AtomicU64::new(0));
    let arrival = Arrival {
        messages: 1000,
        rate: 1000.0,
        burst_every: 0,
        burst_size: 0,
        gap: Duration::ZERO,
        fetch: Duration::ZERO,
        fetch_size: 1,
        customers: 100,
    };
    let source = counted(arrival.stream(), Arc::clone(&pulled));
    let limits = Limits {
        max_items: 32,
        max_wait: Duration::from_millis(50),
        idle: None,
    };
    // Ctrl-C, 250 ms into the run: mid-batch (batches fill in 32 ms).
    let shutdown = tokio::time::sleep(Duration::from_millis(250));
    let outcome = pipeline::run(source, limits, mode, &mut service, shutdown)
        .await
        .unwrap();

    let written = common::Recording::seqs(&batches);
    let pulled = pulled.load(Ordering::SeqCst);
    // Everything pulled was written, once, in order; the rest stays in the source.
    assert_eq!(written, (0..pulled).collect::<Vec<_>>(), "{mode:?}");
    assert!((240..1000).contains(&pulled), "{mode:?}: pulled {pulled}");
    assert_eq!(outcome.items, pulled);
    // The partial batch was cut by the stop, not dropped.
    assert_eq!(outcome.batches_for(FlushReason::Close), 1, "{mode:?}: {outcome:?}");
}

#[tokio::test(start_paused = true)]
async fn stop_with_prefetch_writes_the_partial_and_prefetched_batches() {
    stop_midway(Mode::Prefetch).await;
}

#[tokio::test(start_paused = true)]
async fn stop_without_prefetch_writes_the_partial_batch() {
    stop_midway(Mode::Sequential).await;
}
