//! Workloads 1 and 2 of BENCHMARKS.md: cost per item beside the usual choices, every contender in
//! this one binary so that ratios come from one run.
//!
//! - `cargo bench -p prefetch-batch --features tokio --bench peers [-- w1|w2]`: interleaved
//!   timing. Each round runs every contender once, in an order rotated per round; the table gives
//!   the median over rounds of each round's ratio to tokio-stream `chunks_timeout` (so a load
//!   spike hits one round, not one contender). W1 is timed in thread CPU time (everything runs on
//!   the calling thread), W2 in wall time (two workers). Writes
//!   `$CARGO_TARGET_DIR/bench-report/peers-w1.json` and `peers-w2.json`. `PB_QUICK=1` for a short sanity pass.
//! - `peers w1-one CONTENDER ITEMS` / `peers w2-one CONTENDER ITEMS`: one run of one contender,
//!   for instruction counts under callgrind (`scripts/bench-callgrind`, `scripts/callgrind-check`).
//!
//! Every contender gets the same source and the same per-batch work (a sum). The crate's API is
//! used only through `api` (benches/api/mod.rs).

mod api;

use std::future::poll_fn;
use std::hint::black_box;
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_core::Stream;
use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

const N: usize = 64;
/// The `max_wait` of both workloads: far longer than a ready source needs to fill 64 items, so
/// every batch of workload 1 is full, but a batcher still has to arm its deadline.
const MAX_WAIT: Duration = Duration::from_millis(5);

/// Workload 1's `max_wait`: `MAX_WAIT`, or `PB_W1_MAX_WAIT_MS` to see what the deadline costs.
fn w1_max_wait() -> Duration {
    std::env::var("PB_W1_MAX_WAIT_MS")
        .map(|v| Duration::from_millis(v.parse().expect("PB_W1_MAX_WAIT_MS: milliseconds")))
        .unwrap_or(MAX_WAIT)
}

fn quick() -> bool {
    std::env::var_os("PB_QUICK").is_some()
}

fn source(n: u64) -> futures_util::stream::Iter<std::ops::Range<u64>> {
    futures_util::stream::iter(0..n)
}

/// The same items, each through `black_box`: the compiler can no longer see that they are
/// consecutive integers, so no batcher's loop is turned into vector stores (`PB_W1_SOURCE=opaque`,
/// workload 1b). Closer to a real source, whose items come from memory or a channel.
fn opaque_source(n: u64) -> OpaqueSource {
    OpaqueSource { next: 0, end: n }
}

/// `0..end` as a stream, each item passed through `black_box` where it is yielded (inline: no call
/// through a function pointer, which the compiler may or may not see through).
struct OpaqueSource {
    next: u64,
    end: u64,
}

impl Stream for OpaqueSource {
    type Item = u64;
    fn poll_next(mut self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> Poll<Option<u64>> {
        if self.next == self.end {
            return Poll::Ready(None);
        }
        self.next += 1;
        Poll::Ready(Some(black_box(self.next - 1)))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.end - self.next) as usize;
        (n, Some(n))
    }
}

/// Workload 1 with `opaque_source` (1b) rather than `source`.
fn opaque() -> bool {
    std::env::var("PB_W1_SOURCE").is_ok_and(|v| v == "opaque")
}

fn sum(items: &[u64]) -> u64 {
    items.iter().fold(0u64, |a, &x| a.wrapping_add(x))
}

// ---------------------------------------------------------------------------------------------
// Workload 1: `stream::iter(0..n)`, N = 64, max_wait 5 ms, current-thread runtime.

/// Workload 1's contenders, in the order the tables list them.
const W1: [&str; 9] = [
    "source_alone",
    "floor_poll_next_heapless",
    "futures_util_ready_chunks",
    "tokio_stream_chunks_timeout",
    "futures_batch_chunks_timeout",
    "ours_in_task",
    "ours_zero_copy",
    "ours_prefetch_guard",
    "ours_prefetch_stream",
];

/// The floor: what any batcher of a ready source must do, hand-written: `poll_next` into a
/// `heapless::Vec`, hand it over when full. No timer, no clock.
async fn floor(src: impl Stream<Item = u64>) -> u64 {
    let mut src = pin!(src);
    let mut buf = heapless::Vec::<u64, N>::new();
    let mut acc = 0u64;
    poll_fn(|cx| {
        loop {
            match src.as_mut().poll_next(cx) {
                Poll::Ready(Some(x)) => {
                    let _ = buf.push(x);
                    if buf.is_full() {
                        acc = acc.wrapping_add(sum(&buf));
                        buf.clear();
                    }
                }
                Poll::Ready(None) => {
                    acc = acc.wrapping_add(sum(&buf));
                    return Poll::Ready(acc);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await
}

/// One run of a workload 1 contender over `n` items; returns the sum (so nothing is elided).
async fn w1_run(name: &str, n: u64) -> u64 {
    if opaque() {
        w1_opaque(name, n).await
    } else {
        w1_plain(name, n).await
    }
}

/// One body for both sources, each its own non-generic function: the default's code is then
/// exactly what it is without workload 1b (a generic function shifted the compiler's inlining
/// and moved our instruction counts by 2 per item).
macro_rules! w1_contenders {
    ($name:ident, $source:ident) => {
        async fn $name(name: &str, n: u64) -> u64 {
            let source = $source;
            let mut acc = 0u64;
            let max_wait = w1_max_wait();
            match name {
                "source_alone" => {
                    let mut s = source(n);
                    while let Some(x) = s.next().await {
                        acc = acc.wrapping_add(x);
                    }
                }
                "floor_poll_next_heapless" => acc = floor(source(n)).await,
                "futures_util_ready_chunks" => {
                    let mut s = source(n).ready_chunks(N);
                    while let Some(b) = s.next().await {
                        acc = acc.wrapping_add(sum(&b));
                    }
                }
                "tokio_stream_chunks_timeout" => {
                    let mut s = pin!(tokio_stream::StreamExt::chunks_timeout(source(n), N, max_wait));
                    while let Some(b) = s.next().await {
                        acc = acc.wrapping_add(sum(&b));
                    }
                }
                "futures_batch_chunks_timeout" => {
                    let mut s = pin!(futures_batch::ChunksTimeoutStreamExt::chunks_timeout(
                        source(n),
                        N,
                        max_wait
                    ));
                    while let Some(b) = s.next().await {
                        acc = acc.wrapping_add(sum(&b));
                    }
                }
                "ours_in_task" => api::in_task!(source(n), N, max_wait, |b| acc = acc.wrapping_add(sum(b))),
                "ours_zero_copy" => api::zero_copy!(source(n), N, max_wait, |b| acc = acc.wrapping_add(sum(b))),
                "ours_prefetch_guard" => {
                    api::prefetch_guard!(source(n), N, max_wait, |b| acc = acc.wrapping_add(sum(b)))
                }
                "ours_prefetch_stream" => {
                    api::prefetch_stream!(source(n), N, max_wait, |b| acc = acc.wrapping_add(sum(b)))
                }
                other => panic!("unknown workload 1 contender {other}; one of {W1:?}"),
            }
            acc
        }
    };
}
w1_contenders!(w1_plain, source);
w1_contenders!(w1_opaque, opaque_source);

/// Workload 2's runtime: multi-thread, 2 workers.
fn w2_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Workload 2: a sender task into `mpsc::channel(1024)`, a consumer task batching it; tokio
// multi-thread runtime, 2 workers.

const W2: [&str; 5] = [
    "tokio_recv_many_timeout",
    "tokio_stream_chunks_timeout",
    "ours_prefetch_guard",
    "ours_prefetch_stream",
    "ours_prefetch_bulk",
];

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

/// The consuming task of workload 2 for one contender.
async fn w2_run(name: &'static str, n: u64) -> u64 {
    tokio::spawn(async move {
        let mut acc = 0u64;
        match name {
            // The strongest hand-written baseline: one reused `Vec`, many items per channel lock,
            // filled up to N until the first item's deadline.
            "tokio_recv_many_timeout" => {
                let mut rx = feed(n);
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
            }
            "tokio_stream_chunks_timeout" => {
                let s = tokio_stream::StreamExt::chunks_timeout(ReceiverStream::new(feed(n)), N, MAX_WAIT);
                let mut s = pin!(s);
                while let Some(b) = s.next().await {
                    acc = acc.wrapping_add(sum(&b));
                }
            }
            "ours_prefetch_guard" => api::prefetch_guard!(ReceiverStream::new(feed(n)), N, MAX_WAIT, |b| acc =
                acc.wrapping_add(sum(b))),
            "ours_prefetch_stream" => api::prefetch_stream!(ReceiverStream::new(feed(n)), N, MAX_WAIT, |b| acc =
                acc.wrapping_add(sum(b))),
            "ours_prefetch_bulk" => api::prefetch_bulk!(feed(n), N, MAX_WAIT, |b| acc = acc.wrapping_add(sum(b))),
            other => panic!("unknown workload 2 contender {other}; one of {W2:?}"),
        }
        acc
    })
    .await
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Interleaved timing.

/// CPU time of the calling thread.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn thread_cpu() -> Duration {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: libc's `clock_gettime` (std links libc on Linux) writes one `struct timespec`, which
    // is two 64-bit fields on 64-bit Linux, to a pointer that is valid for that write.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    Duration::new(ts.sec as u64, ts.nsec as u32)
}

/// Elsewhere: wall time (the tables say which).
#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn thread_cpu() -> Duration {
    use std::sync::OnceLock;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs `rounds` rounds (plus one discarded warm-up round) of every contender, in an order rotated
/// per round; returns per contender the median time per item (ns) and the median of each round's
/// ratio `time(reference) / time(contender)` (throughput relative to the reference).
fn interleave(
    names: &[&'static str],
    reference: &str,
    rounds: usize,
    items: u64,
    mut run: impl FnMut(&'static str) -> Duration,
) -> Vec<(&'static str, f64, f64)> {
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for round in 0..=rounds {
        for k in 0..names.len() {
            let i = (k + round) % names.len();
            let t = run(names[i]).as_secs_f64();
            if round > 0 {
                times[i].push(t);
            }
        }
    }
    let r = names.iter().position(|n| *n == reference).unwrap();
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut ratios: Vec<f64> = (0..rounds).map(|k| times[r][k] / times[i][k]).collect();
            let mut t = times[i].clone();
            (*name, median(&mut t) * 1e9 / items as f64, median(&mut ratios))
        })
        .collect()
}

fn table(title: &str, clock: &str, rows: &[(&str, f64, f64)]) -> String {
    let mut s = format!(
        "{title}\n{:<30} {:>12} {:>22}\n",
        "contender",
        format!("{clock} ns/item"),
        "vs chunks_timeout"
    );
    for (name, ns, ratio) in rows {
        s += &format!("{name:<30} {ns:>12.2} {ratio:>21.2}x\n");
    }
    s
}

fn json(rows: &[(&str, f64, f64)]) -> String {
    let v: Vec<String> = rows
        .iter()
        .map(|(n, ns, r)| format!("\"{n}\":{{\"ns_per_item\":{ns:.4},\"vs_chunks_timeout\":{r:.4}}}"))
        .collect();
    format!("{{{}}}", v.join(","))
}

/// `$CARGO_TARGET_DIR/bench-report/peers-<w>.json`, for `scripts/bench-report`.
fn write_json(w: &str, items: u64, rounds: usize, rows: &[(&str, f64, f64)]) {
    let dir = std::path::Path::new(&std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
        .join("bench-report");
    std::fs::create_dir_all(&dir).unwrap();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let path = dir.join(format!("peers-{w}.json"));
    let body = format!(
        "{{\"quick\":{},\"loadavg\":\"{}\",\"items\":{items},\"rounds\":{rounds},\"rows\":{}}}\n",
        quick(),
        load.trim(),
        json(rows)
    );
    std::fs::write(&path, body).unwrap();
    eprintln!("wrote {}", path.display());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("w1-one") {
        let n: u64 = args[3].parse().unwrap();
        black_box(current_thread().block_on(w1_run(&args[2], n)));
        return;
    }
    if args.get(1).map(String::as_str) == Some("w2-one") {
        let n: u64 = args[3].parse().unwrap();
        let name: &'static str = W2.iter().find(|c| **c == args[2]).expect("a workload 2 contender");
        black_box(w2_runtime().block_on(w2_run(name, n)));
        return;
    }
    // `cargo bench` passes `--bench`; a filter argument picks workloads: w1, w2.
    let filter: Vec<String> = args.iter().skip(1).filter(|a| !a.starts_with("--")).cloned().collect();
    let want = |w: &str| filter.is_empty() || filter.iter().any(|f| f == w);
    let rounds = if quick() { 5 } else { 21 };

    if want("w1") {
        let items = if quick() { 100_000 } else { 1_000_000 };
        let rt = current_thread();
        let rows = interleave(&W1, "tokio_stream_chunks_timeout", rounds, items, |name| {
            let t0 = thread_cpu();
            black_box(rt.block_on(w1_run(name, items)));
            thread_cpu() - t0
        });
        println!(
            "{}",
            table(
                &format!(
                    "W1{}: ready source, {items} items, N = {N}, max_wait 5 ms; {rounds} interleaved rounds",
                    if opaque() { "b (opaque items)" } else { "" }
                ),
                "CPU",
                &rows
            )
        );
        write_json(if opaque() { "w1-opaque" } else { "w1" }, items, rounds, &rows);
    }
    if want("w2") {
        let items = if quick() { 20_000 } else { 200_000 };
        let rt = w2_runtime();
        let rows = interleave(&W2, "tokio_stream_chunks_timeout", rounds, items, |name| {
            let t0 = Instant::now();
            black_box(rt.block_on(w2_run(name, items)));
            t0.elapsed()
        });
        println!(
            "{}",
            table(
                &format!("W2: mpsc::channel(1024), {items} items, 2 workers; {rounds} interleaved rounds"),
                "wall",
                &rows
            )
        );
        write_json("w2", items, rounds, &rows);
    }
}
