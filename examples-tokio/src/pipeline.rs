//! The service loop: batch, look up all keys in one query, write, commit. Prefetch on or off.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use futures_util::{Stream, StreamExt};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;

use crate::batching::{Batches, Flusher, REASONS};
pub use crate::batching::{CAPACITY, FlushReason};
use crate::db::Db;
use crate::metrics::{self, ErrorKind, Metrics};
use crate::retry::Backoff;
use crate::sequential::{Filler, Limits};
use crate::sink::{Enriched, Sink};
use crate::source::Message;

/// Whether the next batch fills while this one is processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Prefetch,
    Sequential,
}

/// Tells the source that a batch is written, so it may commit it. Kafka commits offsets; the
/// synthetic source has nothing to do.
pub trait Commit: Send {
    fn commit(&mut self, batch: &[Message]) -> impl Future<Output = Result<()>> + Send;
    /// The batcher started: a Kafka source flushes it when its partitions are being revoked.
    fn attach(&mut self, _flusher: &Flusher) {}
}

/// No commit: the synthetic source.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCommit;

impl Commit for NoCommit {
    async fn commit(&mut self, _: &[Message]) -> Result<()> {
        Ok(())
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub mode: Mode,
    pub items: u64,
    pub elapsed: Duration,
    /// Batches per [`FlushReason`], indexed by `FlushReason::index`.
    pub batches: [u64; REASONS],
    /// The largest age of a batch's oldest item when the batch was handed over (prefetch only).
    pub max_age: Option<Duration>,
    /// The consumer waiting for a batch to be ready.
    pub consumer_waited: Duration,
    /// The producer waiting for the consumer to hand a buffer back (prefetch only).
    pub producer_waited: Option<Duration>,
    /// Time spent in the query, the write and the commit.
    pub busy: Duration,
    /// Arrival-to-written latency (microseconds), in a histogram of fixed size. Arrival is the
    /// message's Kafka timestamp for a Kafka source.
    pub latency: Histogram<u64>,
    pub queries: u64,
    /// Lookups that failed and were tried again.
    pub db_retries: u64,
}

impl Outcome {
    pub fn total_batches(&self) -> u64 {
        self.batches.iter().sum()
    }
    pub fn batches_for(&self, reason: FlushReason) -> u64 {
        self.batches[reason.index()]
    }
}

/// The per-batch work: query, write, commit; and what it measured.
pub struct Service<S, C> {
    pub db: Arc<Db>,
    pub sink: S,
    pub commit: C,
    pub metrics: Arc<Metrics>,
    /// Names this service in metrics and logs (several instances may share a process).
    pub instance: String,
    /// How long a failing database is retried before the service gives up.
    pub db_backoff: Backoff,
    progress: ProgressBar,
    quiet: bool,
    started: Instant,
    busy: Duration,
    latency: Histogram<u64>,
    db_retries: u64,
    /// How many items this service has written (what a progress bar or a test reads).
    pub written: u64,
}

impl<S: Sink, C: Commit> Service<S, C> {
    /// `expected`: the number of messages, if known, for the progress bar.
    pub fn new(db: Arc<Db>, sink: S, commit: C, expected: Option<u64>, quiet: bool) -> Self {
        // Hidden at first: the bar appears only on runs longer than a second.
        let progress = ProgressBar::with_draw_target(expected, ProgressDrawTarget::hidden());
        let template = if expected.is_some() {
            "{msg} {bar:40} {pos}/{len} messages ({elapsed})"
        } else {
            "{msg} {spinner} {pos} messages ({elapsed})"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            progress.set_style(style);
        }
        Self {
            db,
            sink,
            commit,
            metrics: Arc::default(),
            instance: "0".into(),
            db_backoff: Backoff::default(),
            progress,
            quiet,
            started: Instant::now(),
            busy: Duration::ZERO,
            latency: metrics::histogram(),
            db_retries: 0,
            written: 0,
        }
    }

    /// Reports to `metrics` as `instance`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>, instance: &str) -> Self {
        self.metrics = metrics;
        self.instance = instance.to_string();
        self
    }

    /// One batch: one query for all its keys, then the write, then the commit. The order is the
    /// guarantee: nothing is committed before it is written. A failing query is retried with
    /// backoff (a database restart); a failing write or commit ends the run, uncommitted.
    pub async fn handle(&mut self, batch: &[Message]) -> Result<()> {
        let start = Instant::now();
        let ids: Vec<i64> = batch.iter().map(|m| m.customer_id).collect();
        let rows = self.lookup(&ids).await?;
        let records: Vec<Enriched> = batch
            .iter()
            .map(|m| Enriched {
                message: m.clone(),
                customer: rows.get(&m.customer_id).cloned(),
            })
            .collect();
        if let Err(e) = self.sink.write(&records).await {
            self.metrics.error(ErrorKind::Produce);
            return Err(e);
        }
        self.commit.commit(batch).await?;
        let now = Instant::now();
        self.busy += now - start;
        for m in batch {
            metrics::record(&mut self.latency, now.saturating_duration_since(m.arrived));
        }
        self.written += batch.len() as u64;
        self.metrics.written(batch.len() as u64);
        self.tick(batch.len() as u64, now);
        Ok(())
    }

    async fn lookup(&mut self, ids: &[i64]) -> Result<std::collections::HashMap<i64, crate::db::Customer>> {
        let (db, metrics, instance) = (&self.db, &self.metrics, &self.instance);
        let retries = &mut self.db_retries;
        self.db_backoff
            .run(
                || async {
                    let t = Instant::now();
                    let r = db.lookup(ids).await;
                    metrics.query_took(t.elapsed());
                    r
                },
                |_| true,
                |e, retry| {
                    metrics.error(ErrorKind::Db);
                    if let Some(delay) = retry {
                        *retries += 1;
                        tracing::warn!(instance = %instance, "database lookup failed, retrying in {delay:?}: {e:#}");
                    }
                },
            )
            .await
    }

    fn tick(&mut self, n: u64, now: Instant) {
        if !self.quiet && self.progress.is_hidden() && now - self.started > Duration::from_secs(1) {
            self.progress.set_draw_target(ProgressDrawTarget::stderr());
        }
        self.progress.inc(n);
    }

    fn finish(
        &mut self,
        mode: Mode,
        batches: [u64; REASONS],
        max_age: Option<Duration>,
        waited: (Duration, Option<Duration>),
    ) -> Outcome {
        self.progress.finish_and_clear();
        let latency = std::mem::replace(&mut self.latency, metrics::histogram());
        Outcome {
            mode,
            items: latency.len(),
            elapsed: self.started.elapsed(),
            batches,
            max_age,
            consumer_waited: waited.0,
            producer_waited: waited.1,
            busy: self.busy,
            latency,
            queries: self.db.queries(),
            db_retries: std::mem::take(&mut self.db_retries),
        }
    }
}

/// Runs `source` through `service` until the source ends or `shutdown` fires.
///
/// On shutdown, intake stops; the batch being filled and the batches already prefetched are
/// still processed and committed, and the run ends. Messages not yet pulled stay in the source.
/// On an error, the batches not yet written are dropped uncommitted, and the error is returned.
pub async fn run<St, S, C>(
    source: St,
    limits: Limits,
    mode: Mode,
    service: &mut Service<S, C>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<Outcome>
where
    St: Stream<Item = Message> + Send + 'static,
    S: Sink,
    C: Commit,
{
    service.started = Instant::now();
    let label = match mode {
        Mode::Prefetch => "prefetch on ",
        Mode::Sequential => "prefetch off",
    };
    service.progress.set_message(label);
    match mode {
        Mode::Prefetch => run_prefetch(source, limits, service, shutdown).await,
        Mode::Sequential => run_sequential(source, limits, service, shutdown).await,
    }
}

async fn run_prefetch<St, S, C>(
    source: St,
    limits: Limits,
    service: &mut Service<S, C>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<Outcome>
where
    St: Stream<Item = Message> + Send + 'static,
    S: Sink,
    C: Commit,
{
    let mut batches = Batches::start(source, limits)?;
    let flusher = batches.flusher();
    service.commit.attach(&flusher);
    service.metrics.add_batcher(&service.instance, flusher);
    let mut shutdown = pin!(shutdown);
    let mut closing = false;
    loop {
        let next = tokio::select! {
            biased;
            () = &mut shutdown, if !closing => {
                // Stop intake: the partial batch is emitted (reason Close) and the stream ends
                // after the batches still buffered, which the loop goes on to process.
                batches.close();
                closing = true;
                continue;
            }
            next = batches.next() => next,
        };
        let Some(batch) = next else { break };
        if let Err(e) = service.handle(&batch).await {
            let len = batch.len();
            drop(batch);
            let lost = batches.abandon().await;
            return Err(e.context(format!(
                "batch of {len} failed; it and {lost} buffered items were not committed"
            )));
        }
    }
    let c = batches.counters();
    Ok(service.finish(
        Mode::Prefetch,
        c.batches,
        Some(c.max_age),
        (c.consumer_waited, Some(c.producer_waited)),
    ))
}

async fn run_sequential<St, S, C>(
    source: St,
    limits: Limits,
    service: &mut Service<S, C>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<Outcome>
where
    St: Stream<Item = Message> + Send + 'static,
    S: Sink,
    C: Commit,
{
    let mut filler = Filler::new(source, limits);
    let mut shutdown = pin!(Some(shutdown));
    let mut batches = [0u64; REASONS];
    while let Some((batch, reason)) = filler.next_batch(shutdown.as_mut()).await {
        batches[reason.index()] += 1;
        service
            .handle(&batch)
            .await
            .map_err(|e| e.context(format!("batch of {} failed; it was not committed", batch.len())))?;
    }
    Ok(service.finish(Mode::Sequential, batches, None, (filler.waited, None)))
}

/// `source`, counting what has been pulled from it (for tests and progress).
pub fn counted<St: Stream>(source: St, pulled: Arc<std::sync::atomic::AtomicU64>) -> impl Stream<Item = St::Item> {
    source.inspect(move |_| {
        pulled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })
}
