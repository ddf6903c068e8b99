//! Prometheus metrics: counters kept in memory of constant size, and a tiny HTTP endpoint
//! (`--metrics-addr`) serving them in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::batching::{Counters, FlushReason, Flusher};

/// What went wrong, for `enrich_errors_total{kind=...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A query failed or timed out (each failed try counts).
    Db,
    /// A commit failed (each failed try counts).
    Commit,
    /// A record could not be produced.
    Produce,
    /// The consumer reported an error.
    Consume,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 4] = [ErrorKind::Db, ErrorKind::Commit, ErrorKind::Produce, ErrorKind::Consume];
    fn name(self) -> &'static str {
        match self {
            ErrorKind::Db => "db",
            ErrorKind::Commit => "commit",
            ErrorKind::Produce => "produce",
            ErrorKind::Consume => "consume",
        }
    }
}

/// A latency histogram of fixed size: microseconds from 1 µs to 1 hour, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Records `d` (clamped into the histogram's range).
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).clamp(1, h.high());
    h.saturating_record(us);
}

/// A metric family read from each batcher's counters: name, type, help, value.
type Family = (&'static str, &'static str, &'static str, fn(&Counters) -> String);

/// Everything the endpoint shows. Shared by every instance in the process.
#[derive(Debug)]
pub struct Metrics {
    written: AtomicU64,
    commits: AtomicU64,
    errors: [AtomicU64; 4],
    query: Mutex<Histogram<u64>>,
    commit: Mutex<Histogram<u64>>,
    lag: Mutex<BTreeMap<(String, i32), i64>>,
    assigned: Mutex<BTreeMap<String, usize>>,
    batchers: Mutex<Vec<(String, Flusher)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            written: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            errors: Default::default(),
            query: Mutex::new(histogram()),
            commit: Mutex::new(histogram()),
            lag: Mutex::default(),
            assigned: Mutex::default(),
            batchers: Mutex::default(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Metrics {
    pub fn written(&self, n: u64) {
        self.written.fetch_add(n, Ordering::Relaxed);
    }
    pub fn written_total(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
    pub fn error(&self, kind: ErrorKind) {
        self.errors[kind as usize].fetch_add(1, Ordering::Relaxed);
    }
    pub fn errors(&self, kind: ErrorKind) -> u64 {
        self.errors[kind as usize].load(Ordering::Relaxed)
    }
    pub fn query_took(&self, d: Duration) {
        record(&mut lock(&self.query), d);
    }
    pub fn commit_took(&self, d: Duration) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        record(&mut lock(&self.commit), d);
    }
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
    /// Consumer lag of `instance` on `partition` (messages not yet committed).
    pub fn set_lag(&self, instance: &str, partition: i32, lag: i64) {
        lock(&self.lag).insert((instance.to_string(), partition), lag);
    }
    /// Forgets the lag of partitions `instance` no longer owns.
    pub fn clear_lag(&self, instance: &str, partition: i32) {
        lock(&self.lag).remove(&(instance.to_string(), partition));
    }
    /// How many input partitions `instance` owns.
    pub fn set_assigned(&self, instance: &str, partitions: usize) {
        lock(&self.assigned).insert(instance.to_string(), partitions);
    }
    /// Input partitions `instance` owns.
    pub fn assigned(&self, instance: &str) -> usize {
        lock(&self.assigned).get(instance).copied().unwrap_or(0)
    }
    /// Input partitions owned, summed over the instances.
    pub fn assigned_total(&self) -> usize {
        lock(&self.assigned).values().sum()
    }
    /// The batcher of `instance`, whose counters the endpoint reads at each scrape.
    pub fn add_batcher(&self, instance: &str, flusher: Flusher) {
        let mut b = lock(&self.batchers);
        b.retain(|(i, _)| i != instance);
        b.push((instance.to_string(), flusher));
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let batchers: Vec<(String, Counters)> = lock(&self.batchers)
            .iter()
            .map(|(i, f)| (i.clone(), f.counters()))
            .collect();
        let _ = writeln!(
            out,
            "# HELP enrich_batches_total Batches emitted by the batcher, per flush reason.\n# TYPE enrich_batches_total counter"
        );
        for (i, c) in &batchers {
            for reason in FlushReason::ALL {
                let r = format!("{reason:?}").to_lowercase();
                let _ = writeln!(
                    out,
                    "enrich_batches_total{{instance=\"{i}\",reason=\"{r}\"}} {}",
                    c.batches[reason.index()]
                );
            }
        }
        let per_batcher: [Family; 4] = [
            (
                "enrich_batch_items_total",
                "counter",
                "Items emitted in batches.",
                |c| c.items.to_string(),
            ),
            (
                "enrich_batch_max_age_seconds",
                "gauge",
                "Largest age of a batch's oldest item when the batch was handed over.",
                |c| secs(c.max_age),
            ),
            (
                "enrich_consumer_waited_seconds_total",
                "counter",
                "Time the service waited for the batcher to have a batch ready.",
                |c| secs(c.consumer_waited),
            ),
            (
                "enrich_producer_waited_seconds_total",
                "counter",
                "Time the batcher waited for the service to take a batch.",
                |c| secs(c.producer_waited),
            ),
        ];
        for (name, kind, help, value) in per_batcher {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (i, c) in &batchers {
                let _ = writeln!(out, "{name}{{instance=\"{i}\"}} {}", value(c));
            }
        }
        for (name, help, hist) in [
            (
                "enrich_query_duration_seconds",
                "Database lookups, one per batch (each try).",
                &self.query,
            ),
            (
                "enrich_commit_duration_seconds",
                "Offset commits (each try).",
                &self.commit,
            ),
        ] {
            let h = lock(hist).clone();
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} summary");
            for q in [0.5, 0.9, 0.99, 1.0] {
                let v = Duration::from_micros(h.value_at_quantile(q));
                let _ = writeln!(out, "{name}{{quantile=\"{q}\"}} {}", secs(v));
            }
            let sum = h
                .iter_recorded()
                .map(|v| v.value_iterated_to() as f64 * v.count_at_value() as f64)
                .sum::<f64>();
            let _ = writeln!(out, "{name}_sum {}", sum / 1e6);
            let _ = writeln!(out, "{name}_count {}", h.len());
        }
        let _ = writeln!(
            out,
            "# HELP enrich_consumer_lag Messages in the partition after the group's committed offset.\n# TYPE enrich_consumer_lag gauge"
        );
        for ((i, p), lag) in lock(&self.lag).iter() {
            let _ = writeln!(out, "enrich_consumer_lag{{instance=\"{i}\",partition=\"{p}\"}} {lag}");
        }
        let _ = writeln!(
            out,
            "# HELP enrich_assigned_partitions Input partitions the instance owns.\n# TYPE enrich_assigned_partitions gauge"
        );
        for (i, n) in lock(&self.assigned).iter() {
            let _ = writeln!(out, "enrich_assigned_partitions{{instance=\"{i}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP enrich_errors_total Errors, per kind (retried ones included).\n# TYPE enrich_errors_total counter"
        );
        for kind in ErrorKind::ALL {
            let _ = writeln!(
                out,
                "enrich_errors_total{{kind=\"{}\"}} {}",
                kind.name(),
                self.errors(kind)
            );
        }
        for (name, help, v) in [
            (
                "enrich_messages_written_total",
                "Enriched records written.",
                self.written_total(),
            ),
            (
                "enrich_commits_total",
                "Offset commits that succeeded or failed.",
                self.commits(),
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        }
        out
    }
}

fn secs(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

/// Serves `GET /metrics` on `addr` until the returned task is aborted. Returns the bound address
/// (useful with port 0).
pub async fn serve(
    addr: SocketAddr,
    metrics: std::sync::Arc<Metrics>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on --metrics-addr {addr}"))?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                continue;
            };
            let metrics = std::sync::Arc::clone(&metrics);
            tokio::spawn(async move {
                // One request per connection; the head must arrive within 5 s and 8 KiB.
                let mut head = Vec::with_capacity(1024);
                let read = tokio::time::timeout(Duration::from_secs(5), async {
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                })
                .await;
                if read.is_err() {
                    return;
                }
                let (status, body) = if head.starts_with(b"GET /metrics ") || head.starts_with(b"GET / ") {
                    ("200 OK", metrics.render())
                } else {
                    ("404 Not Found", "try GET /metrics\n".to_string())
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(response.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    Ok((bound, task))
}
