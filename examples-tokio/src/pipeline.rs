//! The service loop: batch, look up all keys in one query, write, commit. Prefetch on or off.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use futures_util::{Stream, StreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use prefetch_batch::{Config, FlushReason, PrefetchExt};
use tokio::time::Instant;

use crate::db::Db;
use crate::sequential::{Filler, Limits};
use crate::sink::{Enriched, Sink};
use crate::source::Message;

/// Batch capacity. `--batch-size` (`max_items`) may be lower, never higher.
pub const CAPACITY: usize = 256;

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
    pub batches: [u64; 7],
    /// The consumer waiting for a batch to be ready.
    pub consumer_waited: Duration,
    /// The producer waiting for the consumer to hand a buffer back (prefetch only).
    pub producer_waited: Option<Duration>,
    /// Time spent in the query, the write and the commit.
    pub busy: Duration,
    /// Arrival-to-written latency of each item, sorted.
    pub latencies: Vec<Duration>,
    pub queries: u64,
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
    progress: ProgressBar,
    quiet: bool,
    started: Instant,
    busy: Duration,
    latencies: Vec<Duration>,
    /// How many items this service has written (what a progress bar or a test reads).
    pub written: u64,
}

impl<S: Sink, C: Commit> Service<S, C> {
    /// `expected`: the number of messages, if known, for the progress bar.
    pub fn new(db: Arc<Db>, sink: S, commit: C, expected: Option<u64>, quiet: bool) -> Self {
        // Hidden at first: the bar appears only on runs longer than a second.
        let progress = ProgressBar::with_draw_target(expected, ProgressDrawTarget::hidden());
        let template = if expected.is_some() {
            "{bar:40} {pos}/{len} messages ({elapsed})"
        } else {
            "{spinner} {pos} messages ({elapsed})"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            progress.set_style(style);
        }
        Self {
            db,
            sink,
            commit,
            progress,
            quiet,
            started: Instant::now(),
            busy: Duration::ZERO,
            latencies: Vec::new(),
            written: 0,
        }
    }

    /// One batch: one query for all its keys, then the write, then the commit. The order is the
    /// guarantee: nothing is committed before it is written.
    pub async fn handle(&mut self, batch: &[Message]) -> Result<()> {
        let start = Instant::now();
        let ids: Vec<i64> = batch.iter().map(|m| m.customer_id).collect();
        let rows = self.db.lookup(&ids).await?;
        let records: Vec<Enriched> = batch
            .iter()
            .map(|m| Enriched {
                message: m.clone(),
                customer: rows.get(&m.customer_id).cloned(),
            })
            .collect();
        self.sink.write(&records).await?;
        self.commit.commit(batch).await?;
        let now = Instant::now();
        self.busy += now - start;
        self.latencies
            .extend(batch.iter().map(|m| now.saturating_duration_since(m.arrived)));
        self.written += batch.len() as u64;
        self.tick(batch.len() as u64, now);
        Ok(())
    }

    fn tick(&mut self, n: u64, now: Instant) {
        if !self.quiet && self.progress.is_hidden() && now - self.started > Duration::from_secs(1) {
            self.progress.set_draw_target(ProgressDrawTarget::stderr());
        }
        self.progress.inc(n);
    }

    fn finish(&mut self, mode: Mode, batches: [u64; 7], waited: (Duration, Option<Duration>)) -> Outcome {
        self.progress.finish_and_clear();
        let mut latencies = std::mem::take(&mut self.latencies);
        latencies.sort_unstable();
        Outcome {
            mode,
            items: latencies.len() as u64,
            elapsed: self.started.elapsed(),
            batches,
            consumer_waited: waited.0,
            producer_waited: waited.1,
            busy: self.busy,
            latencies,
            queries: self.db.queries(),
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
    let mut config = Config::new().max_items(limits.max_items).max_wait(limits.max_wait);
    if let Some(idle) = limits.idle {
        config = config.idle(idle);
    }
    let mut batches = source.prefetch_batches::<CAPACITY>(config)?;
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
            let lost = batches.into_remainder().await.len();
            return Err(e.context(format!(
                "batch of {} failed; it and {lost} buffered items were not committed",
                batch.len()
            )));
        }
    }
    let stats = batches.stats();
    Ok(service.finish(
        Mode::Prefetch,
        prefetch_batch::FlushReason::ALL.map(|r| stats.batches_for(r)),
        (stats.consumer_waited, Some(stats.producer_waited)),
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
    let mut batches = [0u64; 7];
    while let Some((batch, reason)) = filler.next_batch(shutdown.as_mut()).await {
        batches[reason.index()] += 1;
        service
            .handle(&batch)
            .await
            .map_err(|e| e.context(format!("batch of {} failed; it was not committed", batch.len())))?;
    }
    Ok(service.finish(Mode::Sequential, batches, (filler.waited, None)))
}

/// `source`, counting what has been pulled from it (for tests and progress).
pub fn counted<St: Stream>(source: St, pulled: Arc<std::sync::atomic::AtomicU64>) -> impl Stream<Item = St::Item> {
    source.inspect(move |_| {
        pulled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })
}
