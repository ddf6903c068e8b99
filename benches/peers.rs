//! Workloads 1 and 2 of BENCHMARKS.md (criterion): cost per item beside the usual choices.
//!
//! `cargo bench -p prefetch-batch --all-features --bench peers`; `PB_QUICK=1` shrinks the inputs
//! for a sanity pass. Every contender gets the same input and the same per-batch work (a sum).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use futures_util::StreamExt as _;
use prefetch_batch::timer::TokioTimer;
use prefetch_batch::{BatchExt as _, Config, Slot};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

const N: usize = 64;
/// Generous: every batch of workload 1 is emitted because it is full.
const MAX_WAIT: Duration = Duration::from_secs(1);

fn quick() -> bool {
    std::env::var_os("PB_QUICK").is_some()
}

fn items_w1() -> u64 {
    if quick() { 100_000 } else { 1_000_000 }
}

fn items_w2() -> u64 {
    if quick() { 20_000 } else { 200_000 }
}

fn source(n: u64) -> futures_util::stream::Iter<std::ops::Range<u64>> {
    futures_util::stream::iter(0..n)
}

fn sum(items: &[u64]) -> u64 {
    items.iter().fold(0u64, |a, &x| a.wrapping_add(x))
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Workload 1: an always-ready source, N = 64, a generous `max_wait`.
fn ready_source(c: &mut Criterion) {
    let n = items_w1();
    let rt = current_thread();
    let mut g = c.benchmark_group("w1_ready");
    g.throughput(Throughput::Elements(n));
    g.sample_size(if quick() { 10 } else { 20 });
    g.warm_up_time(Duration::from_millis(if quick() { 200 } else { 1000 }));
    g.measurement_time(Duration::from_secs(if quick() { 1 } else { 4 }));

    g.bench_function("ours_in_task", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut acc = 0u64;
                source(n)
                    .for_each_batch(Config::<N>::new().max_wait(MAX_WAIT), TokioTimer, |batch| {
                        acc = acc.wrapping_add(sum(&batch));
                        async {}
                    })
                    .await
                    .unwrap();
                black_box(acc)
            })
        })
    });

    g.bench_function("ours_zero_copy", |b| {
        b.iter(|| {
            rt.block_on(async {
                let slot = Slot::<NoopRawMutex, u64, N, _>::new(TokioTimer);
                let (producer, mut rx) = slot.split(source(n), Config::new().max_wait(MAX_WAIT)).unwrap();
                let mut acc = 0u64;
                prefetch_batch::testing::join(producer, async {
                    while let Some(batch) = rx.recv().await {
                        acc = acc.wrapping_add(sum(&batch));
                    }
                })
                .await;
                black_box(acc)
            })
        })
    });

    g.bench_function("tokio_stream_chunks_timeout", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut s = std::pin::pin!(tokio_stream::StreamExt::chunks_timeout(source(n), N, MAX_WAIT));
                let mut acc = 0u64;
                while let Some(batch) = tokio_stream::StreamExt::next(&mut s).await {
                    acc = acc.wrapping_add(sum(&batch));
                }
                black_box(acc)
            })
        })
    });

    g.bench_function("futures_batch_chunks_timeout", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut s = std::pin::pin!(futures_batch::ChunksTimeoutStreamExt::chunks_timeout(
                    source(n),
                    N,
                    MAX_WAIT
                ));
                let mut acc = 0u64;
                while let Some(batch) = futures_util::StreamExt::next(&mut s).await {
                    acc = acc.wrapping_add(sum(&batch));
                }
                black_box(acc)
            })
        })
    });

    g.bench_function("futures_util_ready_chunks", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut s = source(n).ready_chunks(N);
                let mut acc = 0u64;
                while let Some(batch) = futures_util::StreamExt::next(&mut s).await {
                    acc = acc.wrapping_add(sum(&batch));
                }
                black_box(acc)
            })
        })
    });
    g.finish();
}

/// The sending side of workload 2: a task that sends `0..n` into a bounded channel.
fn feed(n: u64) -> mpsc::Receiver<u64> {
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(async move {
        for i in 0..n {
            if tx.send(i).await.is_err() {
                return;
            }
        }
    });
    rx
}

/// Workload 2: a producer task sends into a bounded channel; the batcher consumes, on tokio's
/// multi-thread runtime (2 workers). Both ends run as tasks.
fn channel_source(c: &mut Criterion) {
    let n = items_w2();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("w2_channel");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(if quick() { 200 } else { 1000 }));
    g.measurement_time(Duration::from_secs(if quick() { 1 } else { 4 }));

    g.bench_function("ours_tokio_adapter", |b| {
        b.iter(|| {
            rt.block_on(async {
                tokio::spawn(async move {
                    let rx = ReceiverStream::new(feed(n));
                    let mut batches = rx.prefetch_batches::<N>(Config::new().max_wait(MAX_WAIT)).unwrap();
                    let mut acc = 0u64;
                    while let Some(batch) = batches.recv().await {
                        acc = acc.wrapping_add(sum(&batch));
                    }
                    black_box(acc)
                })
                .await
                .unwrap()
            })
        })
    });

    g.bench_function("tokio_recv_many_timeout", |b| {
        b.iter(|| {
            rt.block_on(async {
                tokio::spawn(async move {
                    let mut rx = feed(n);
                    let mut acc = 0u64;
                    let mut buf = Vec::with_capacity(N);
                    loop {
                        if rx.recv_many(&mut buf, N).await == 0 {
                            break;
                        }
                        let deadline = tokio::time::Instant::now() + MAX_WAIT;
                        while buf.len() < N {
                            let room = N - buf.len();
                            match tokio::time::timeout_at(deadline, rx.recv_many(&mut buf, room)).await {
                                Ok(0) | Err(_) => break,
                                Ok(_) => {}
                            }
                        }
                        acc = acc.wrapping_add(sum(&buf));
                        buf.clear();
                    }
                    black_box(acc)
                })
                .await
                .unwrap()
            })
        })
    });

    g.bench_function("tokio_stream_chunks_timeout", |b| {
        b.iter(|| {
            rt.block_on(async {
                tokio::spawn(async move {
                    let s = tokio_stream::StreamExt::chunks_timeout(ReceiverStream::new(feed(n)), N, MAX_WAIT);
                    let mut s = std::pin::pin!(s);
                    let mut acc = 0u64;
                    while let Some(batch) = tokio_stream::StreamExt::next(&mut s).await {
                        acc = acc.wrapping_add(sum(&batch));
                    }
                    black_box(acc)
                })
                .await
                .unwrap()
            })
        })
    });
    g.finish();
}

criterion_group!(benches, ready_source, channel_source);
criterion_main!(benches);
