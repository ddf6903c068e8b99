//! Workloads 3, 4 and 5 of BENCHMARKS.md: prefetch overlap, latency under a busy caller,
//! allocations and state size. These are about time, not CPU, so they run in real time on tokio
//! (current-thread runtime, its 1 ms timer) and write `$CARGO_TARGET_DIR/bench-report/timing.json`
//! for `scripts/bench-report`.
//!
//! `cargo bench -p prefetch-batch --features tokio --bench timing`; `PB_QUICK=1` for a short pass.
//! The crate's API is used only through `api` (benches/api/mod.rs).

mod api;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_stream::wrappers::ReceiverStream;

// ---------------------------------------------------------------------------------------------
// Counting allocator (workload 5): every allocation on every thread.

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to `System` unchanged; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---------------------------------------------------------------------------------------------

fn quick() -> bool {
    std::env::var_os("PB_QUICK").is_some()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// The hand-rolled batcher users write today: a spawned task fills a `Vec` (deadline from its
/// first item) and sends it into `mpsc::channel(1)`.
fn spawn_channel1<S>(source: S, cap: usize, max_wait: Duration) -> mpsc::Receiver<Vec<S::Item>>
where
    S: Stream + Send + 'static,
    S::Item: Send + 'static,
{
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let mut source = pin!(source);
        let mut ended = false;
        while !ended {
            let Some(first) = source.next().await else { break };
            let mut batch = Vec::with_capacity(cap);
            batch.push(first);
            let deadline = Instant::now() + max_wait;
            while batch.len() < cap {
                match tokio::time::timeout_at(deadline, source.next()).await {
                    Ok(Some(item)) => batch.push(item),
                    Ok(None) => {
                        ended = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            if tx.send(batch).await.is_err() {
                break;
            }
        }
    });
    rx
}

// ---------------------------------------------------------------------------------------------
// Workload 3: prefetch overlap.

const W3_N: usize = 64;
/// The source delivers a batch's worth of items in `ROUNDS` rounds of `ROUND` each.
const ROUNDS: usize = 4;
const ROUND: Duration = Duration::from_millis(4);
const F_NOMINAL: Duration = Duration::from_millis(16);
const RATIOS: [f64; 8] = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0];

/// A source that needs time to deliver: each round of `W3_N / ROUNDS` items takes `ROUND`. It
/// makes progress only while it is polled, like a fetch from a remote service: a batcher that
/// stops pulling stops the source. A round starts when the previous one ended if the batcher asked
/// again within a round's time (so the 1 ms timer's late wake-ups do not add up), else when the
/// batcher asks again (no credit for time it spent not pulling).
struct FetchSource {
    left: u64,
    in_round: usize,
    sleep: Pin<Box<Sleep>>,
    armed: bool,
    last_end: Option<Instant>,
}

impl FetchSource {
    fn new(items: u64) -> Self {
        Self {
            left: items,
            in_round: 0,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: false,
            last_end: None,
        }
    }
}

impl Stream for FetchSource {
    type Item = u64;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u64>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        if self.in_round == 0 {
            if !self.armed {
                let now = Instant::now();
                let start = match self.last_end {
                    Some(end) if now < end + ROUND => end,
                    _ => now,
                };
                self.sleep.as_mut().reset(start + ROUND);
                self.last_end = Some(start + ROUND);
                self.armed = true;
            }
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.armed = false;
            self.in_round = W3_N / ROUNDS;
        }
        self.in_round -= 1;
        self.left -= 1;
        Poll::Ready(Some(self.left))
    }
}

/// Handler completion instants of `batches` batches: throughput is taken between the first and
/// the last (steady state, the pipeline's start-up excluded).
fn steady_rate(done: &[Instant]) -> f64 {
    let span = done.last().unwrap().duration_since(done[0]).as_secs_f64();
    (done.len() - 1) as f64 / span
}

fn w3(rt: &tokio::runtime::Runtime, out: &mut String) {
    let batches: usize = if quick() { 6 } else { 31 };
    let items = (batches * W3_N) as u64;
    let generous = Duration::from_secs(1);

    // F in isolation: the source drained as fast as it can go.
    let measure_f = || {
        rt.block_on(async {
            let mut s = FetchSource::new(items);
            let mut done = Vec::with_capacity(batches);
            let mut k = 0;
            while s.next().await.is_some() {
                k += 1;
                if k % W3_N == 0 {
                    done.push(Instant::now());
                }
            }
            1.0 / steady_rate(&done)
        })
    };
    let mut rows = Vec::new();
    let ratios: Vec<f64> = match std::env::var("PB_RATIOS") {
        Ok(v) => v.split(',').map(|x| x.parse().unwrap()).collect(),
        Err(_) => RATIOS.to_vec(),
    };
    for ratio in ratios {
        let f_measured = measure_f();
        let p = F_NOMINAL.mul_f64(ratio);
        // P in isolation.
        let p_measured = rt.block_on(async {
            let mut done = vec![Instant::now()];
            for _ in 1..batches {
                tokio::time::sleep(p).await;
                done.push(Instant::now());
            }
            1.0 / steady_rate(&done)
        });
        let ideal = 1.0 / f_measured.max(p_measured);
        let mut rates: BTreeMap<&str, f64> = BTreeMap::new();

        // Best of two runs per contender: the machine is shared, a stall hits one run, not the engine.
        let best = |f: &dyn Fn() -> f64| f().max(f());
        rates.insert(
            "ours_in_task",
            best(&|| {
                rt.block_on(async {
                    let done = &std::cell::RefCell::new(Vec::with_capacity(batches));
                    api::in_task_async!(FetchSource::new(items), W3_N, generous, |_b| {
                        tokio::time::sleep(p).await;
                        done.borrow_mut().push(Instant::now());
                    });
                    steady_rate(&done.borrow())
                })
            }),
        );
        rates.insert(
            "ours_tokio_adapter",
            best(&|| {
                rt.block_on(async {
                    let mut done = Vec::with_capacity(batches);
                    api::prefetch_guard!(FetchSource::new(items), W3_N, generous, |_b| {
                        tokio::time::sleep(p).await;
                        done.push(Instant::now());
                    });
                    steady_rate(&done)
                })
            }),
        );
        rates.insert(
            "tokio_stream_chunks_timeout",
            best(&|| {
                rt.block_on(async {
                    let mut done = Vec::with_capacity(batches);
                    let mut s = pin!(tokio_stream::StreamExt::chunks_timeout(
                        FetchSource::new(items),
                        W3_N,
                        generous
                    ));
                    while let Some(_b) = s.next().await {
                        tokio::time::sleep(p).await;
                        done.push(Instant::now());
                    }
                    steady_rate(&done)
                })
            }),
        );
        rates.insert(
            "spawn_channel1",
            best(&|| {
                rt.block_on(async {
                    let mut done = Vec::with_capacity(batches);
                    let mut rx = spawn_channel1(FetchSource::new(items), W3_N, generous);
                    while let Some(_b) = rx.recv().await {
                        tokio::time::sleep(p).await;
                        done.push(Instant::now());
                    }
                    steady_rate(&done)
                })
            }),
        );
        let fr = |r: f64| r / ideal;
        eprintln!(
            "w3 P/F={ratio}: F={:.2}ms P={:.2}ms ideal={:.1}/s {}",
            f_measured * 1e3,
            p_measured * 1e3,
            ideal,
            rates
                .iter()
                .map(|(k, v)| format!("{k}={:.3}", fr(*v)))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let mut row = format!(
            "{{\"ratio\":{ratio},\"f_ms\":{:.4},\"p_ms\":{:.4},\"ideal\":{ideal:.4},\"serial\":{:.4},\"rates\":{{",
            f_measured * 1e3,
            p_measured * 1e3,
            1.0 / (f_measured + p_measured)
        );
        let parts: Vec<String> = rates.iter().map(|(k, v)| format!("\"{k}\":{v:.4}")).collect();
        row.push_str(&parts.join(","));
        row.push_str("}}");
        rows.push(row);
    }
    write!(
        out,
        "\"w3\":{{\"n\":{W3_N},\"batches\":{batches},\"f_nominal_ms\":{},\"points\":[{}]}}",
        F_NOMINAL.as_millis(),
        rows.join(",")
    )
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Workload 4: latency under a busy caller.

const W4_N: usize = 1000;
const W4_EVERY: Duration = Duration::from_micros(50);
const W4_MAX_WAIT: Duration = Duration::from_millis(5);
const W4_HANDLER: Duration = Duration::from_millis(20);

/// Items every 50 us for `run`, each stamped with the instant it entered the channel. tokio's
/// timer ticks every millisecond, so they arrive 20 at a time, on schedule.
fn feeder(run: Duration) -> (ReceiverStream<Instant>, Instant) {
    let (tx, rx) = mpsc::channel(1 << 16);
    let start = Instant::now();
    let total = (run.as_nanos() / W4_EVERY.as_nanos()) as u64;
    tokio::spawn(async move {
        let mut sent = 0u64;
        while sent < total {
            tokio::time::sleep(Duration::from_micros(500)).await;
            let due = ((start.elapsed().as_nanos() / W4_EVERY.as_nanos()) as u64).min(total);
            while sent < due {
                if tx.try_send(Instant::now()).is_err() {
                    return;
                }
                sent += 1;
            }
        }
    });
    (ReceiverStream::new(rx), start + run)
}

/// What the handler sees: per batch, when it started, when it ended, the age of its oldest item.
#[derive(Default)]
struct Record {
    start: Vec<Instant>,
    end: Vec<Instant>,
    age: Vec<Duration>,
    items: Vec<usize>,
}

impl Record {
    async fn handle(&mut self, batch: &[Instant]) {
        self.begin(batch);
        tokio::time::sleep(W4_HANDLER).await;
        self.end.push(Instant::now());
    }

    /// A batch is handed over: when, how old, how many.
    fn begin(&mut self, batch: &[Instant]) {
        let now = Instant::now();
        self.start.push(now);
        self.age.push(now.duration_since(batch[0]));
        self.items.push(batch.len());
    }

    /// Batches that began while items were still arriving, the first one left out.
    fn json(&self, until: Instant) -> String {
        let k = self.start.iter().take_while(|s| **s < until).count();
        let range = 1..k.max(2);
        let mut ages: Vec<f64> = self.age[range.clone()].iter().map(|a| a.as_secs_f64() * 1e3).collect();
        ages.sort_by(f64::total_cmp);
        let q = |p: f64| ages[((ages.len() - 1) as f64 * p).round() as usize];
        let waited: f64 = range
            .clone()
            .map(|i| self.start[i].duration_since(self.end[i - 1]).as_secs_f64())
            .sum();
        let span = self.end[range.end - 1].duration_since(self.end[0]).as_secs_f64();
        let mean_items = self.items[range.clone()].iter().sum::<usize>() as f64 / range.len() as f64;
        format!(
            "{{\"batches\":{},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3},\"wait_fraction\":{:.4},\"mean_items\":{:.1}}}",
            range.len(),
            q(0.5),
            q(0.99),
            ages.last().unwrap(),
            waited / span,
            mean_items
        )
    }
}

fn w4(rt: &tokio::runtime::Runtime, out: &mut String) {
    let run = Duration::from_millis(if quick() { 600 } else { 4000 });
    let mut rows: Vec<String> = Vec::new();

    let r = rt.block_on(async {
        let (src, until) = feeder(run);
        let rec = &std::cell::RefCell::new(Record::default());
        api::in_task_async!(src, W4_N, W4_MAX_WAIT, |b| {
            rec.borrow_mut().begin(b);
            tokio::time::sleep(W4_HANDLER).await;
            rec.borrow_mut().end.push(Instant::now());
        });
        rec.borrow().json(until)
    });
    rows.push(format!("\"ours_in_task\":{r}"));

    let r = rt.block_on(async {
        let (src, until) = feeder(run);
        let mut rec = Record::default();
        api::prefetch_guard!(src, W4_N, W4_MAX_WAIT, |b| rec.handle(b).await);
        rec.json(until)
    });
    rows.push(format!("\"ours_tokio_adapter\":{r}"));

    let r = rt.block_on(async {
        let (src, until) = feeder(run);
        let mut rec = Record::default();
        let mut s = pin!(tokio_stream::StreamExt::chunks_timeout(src, W4_N, W4_MAX_WAIT));
        while let Some(b) = s.next().await {
            rec.handle(&b).await;
        }
        rec.json(until)
    });
    rows.push(format!("\"tokio_stream_chunks_timeout\":{r}"));

    let r = rt.block_on(async {
        let (src, until) = feeder(run);
        let mut rec = Record::default();
        let mut rx = spawn_channel1(src, W4_N, W4_MAX_WAIT);
        while let Some(b) = rx.recv().await {
            rec.handle(&b).await;
        }
        rec.json(until)
    });
    rows.push(format!("\"spawn_channel1\":{r}"));
    for r in &rows {
        eprintln!("w4 {r}");
    }
    write!(out, "\"w4\":{{{}}}", rows.join(",")).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Workload 5: allocations per batch and bytes of state.

const W5_N: usize = 64;
type Src = futures_util::stream::Iter<std::ops::Range<u64>>;

fn src(batches: u64) -> Src {
    futures_util::stream::iter(0..batches * W5_N as u64)
}

/// Allocations per batch: the difference between a run of 1,100 and one of 100 batches, so the
/// set-up (runtime, task, first buffers) cancels out.
fn per_batch(rt: &tokio::runtime::Runtime, run: impl Fn(&tokio::runtime::Runtime, u64) -> u64) -> f64 {
    let count = |batches| {
        let before = ALLOCS.load(Relaxed);
        let got = run(rt, batches);
        assert_eq!(got, batches, "every contender sees every batch");
        ALLOCS.load(Relaxed) - before
    };
    let small = count(100);
    let large = count(1100);
    (large as f64 - small as f64) / 1000.0
}

fn w5(rt: &tokio::runtime::Runtime, out: &mut String) {
    let generous = Duration::from_secs(1);
    let mut allocs: Vec<(&str, f64)> = Vec::new();
    allocs.push((
        "ours_in_task",
        per_batch(rt, |rt, k| {
            rt.block_on(async {
                let mut n = 0;
                api::in_task!(src(k), W5_N, generous, |_b| n += 1);
                n
            })
        }),
    ));
    allocs.push((
        "ours_zero_copy",
        per_batch(rt, |rt, k| {
            rt.block_on(async {
                let mut n = 0;
                api::zero_copy!(src(k), W5_N, generous, |_b| n += 1);
                n
            })
        }),
    ));
    allocs.push((
        "ours_tokio_adapter",
        per_batch(rt, |rt, k| {
            rt.block_on(async {
                let mut n = 0;
                api::prefetch_guard!(src(k), W5_N, generous, |_b| n += 1);
                n
            })
        }),
    ));
    allocs.push((
        "tokio_stream_chunks_timeout",
        per_batch(rt, |rt, k| {
            rt.block_on(async {
                let mut s = pin!(tokio_stream::StreamExt::chunks_timeout(src(k), W5_N, generous));
                let mut n = 0;
                while let Some(_b) = s.next().await {
                    n += 1;
                }
                n
            })
        }),
    ));
    allocs.push((
        "futures_batch_chunks_timeout",
        per_batch(rt, |rt, k| {
            rt.block_on(async {
                let mut s = pin!(futures_batch::ChunksTimeoutStreamExt::chunks_timeout(
                    src(k),
                    W5_N,
                    generous
                ));
                let mut n = 0;
                while let Some(_b) = s.next().await {
                    n += 1;
                }
                n
            })
        }),
    ));
    allocs.push((
        "futures_util_ready_chunks",
        per_batch(rt, |rt, k| {
            rt.block_on(async {
                let mut s = src(k).ready_chunks(W5_N);
                let mut n = 0;
                while let Some(_b) = s.next().await {
                    n += 1;
                }
                n
            })
        }),
    ));
    allocs.push((
        "spawn_channel1",
        per_batch(rt, |rt, k| {
            rt.block_on(async {
                let mut rx = spawn_channel1(src(k), W5_N, generous);
                let mut n = 0;
                while let Some(_b) = rx.recv().await {
                    n += 1;
                }
                n
            })
        }),
    ));
    for (k, v) in &allocs {
        eprintln!("w5 allocations per batch: {k} = {v:.3}");
    }

    // Bytes of state beyond the source, u64 items, N = 64. `inline` is size_of; `heap` is the
    // buffer memory on the heap at steady state (one batch filling, one with the caller).
    let buffers = 2 * W5_N * size_of::<u64>();
    let size_src = size_of::<Src>();
    let ours = api::state_sizes::<_, W5_N>(|| src(1));
    let (zero_copy, in_task, slot_size, stats_size, run_size, producer_size) = (
        ours.zero_copy,
        ours.in_task,
        ours.slot,
        ours.stats,
        ours.producer_run,
        ours.producer,
    );
    let sleep = size_of::<Sleep>();
    let vec_heap = W5_N * size_of::<u64>();
    let tokio_ct = size_of::<tokio_stream::adapters::ChunksTimeout<Src>>() - size_src;
    let fb_ct = size_of::<futures_batch::ChunksTimeout<Src>>() - size_src;
    let rc = size_of::<futures_util::stream::ReadyChunks<Src>>() - size_src;
    let sizes: Vec<(&str, usize, usize)> = vec![
        ("ours_in_task", in_task, 0),
        ("ours_zero_copy", zero_copy, 0),
        ("tokio_stream_chunks_timeout", tokio_ct, 2 * vec_heap),
        ("futures_batch_chunks_timeout", fb_ct, 2 * vec_heap),
        ("futures_util_ready_chunks", rc, 2 * vec_heap),
    ];
    for (k, i, h) in &sizes {
        eprintln!(
            "w5 state: {k} inline={i} heap={h} overhead={}",
            *i as i64 + *h as i64 - buffers as i64
        );
    }
    let a: Vec<String> = allocs.iter().map(|(k, v)| format!("\"{k}\":{v:.3}")).collect();
    let s: Vec<String> = sizes
        .iter()
        .map(|(k, i, h)| format!("\"{k}\":{{\"inline\":{i},\"heap\":{h}}}"))
        .collect();
    write!(
        out,
        "\"w5\":{{\"n\":{W5_N},\"buffers\":{buffers},\"tokio_sleep\":{sleep},\"slot\":{slot_size},\"stats\":{stats_size},\"producer_run\":{run_size},\"producer\":{producer_size},\"allocs_per_batch\":{{{}}},\"state\":{{{}}}}}",
        a.join(","),
        s.join(",")
    )
    .unwrap();
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument picks workloads: w3, w4, w5.
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let want = |w: &str| filter.is_empty() || filter.iter().any(|f| f == w);
    let rt = runtime();
    let mut parts = Vec::new();
    for (name, f) in [
        ("w5", w5 as fn(&tokio::runtime::Runtime, &mut String)),
        ("w3", w3),
        ("w4", w4),
    ] {
        if want(name) {
            let mut s = String::new();
            f(&rt, &mut s);
            parts.push(s);
        }
    }
    let dir = std::path::Path::new(&std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
        .join("bench-report");
    std::fs::create_dir_all(&dir).unwrap();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let json = format!(
        "{{\"quick\":{},\"loadavg\":\"{}\",{}}}\n",
        quick(),
        load.trim(),
        parts.join(",")
    );
    let path = dir.join("timing.json");
    std::fs::write(&path, json).unwrap();
    eprintln!("wrote {}", path.display());
}
