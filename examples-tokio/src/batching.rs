//! The one module that calls prefetch-batch's API for the service: start a batcher over a
//! stream, take its batches, flush or close it from elsewhere, read its counters.
//!
//! Everything else in the service uses the types here ([`Batches`], [`Flusher`], [`Counters`]),
//! so a change in the crate's API touches this file only (and `sequential.rs`, `report.rs`,
//! which name [`FlushReason`]).

use std::ops::Deref;
use std::time::Duration;

use anyhow::Result;
use futures_util::{Stream, StreamExt};
pub use prefetch_batch::FlushReason;
use std::sync::Arc;

use prefetch_batch::{BatchExt, Config, PrefetchStream, Stats, TokioSlot};

use crate::sequential::Limits;

/// Batch capacity. `--batch-size` (`max_items`) may be lower, never higher.
pub const CAPACITY: usize = 256;

/// Number of flush reasons ([`FlushReason::ALL`]).
pub const REASONS: usize = FlushReason::ALL.len();

/// What the batcher counted, in the service's own type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Batches per [`FlushReason`], indexed by `FlushReason::index`.
    pub batches: [u64; REASONS],
    pub items: u64,
    /// The oldest item's age when its batch was handed over, at most.
    pub max_age: Duration,
    /// The consumer waiting for a batch to be ready.
    pub consumer_waited: Duration,
    /// The producer waiting for the consumer to hand a buffer back.
    pub producer_waited: Duration,
}

impl From<Stats> for Counters {
    fn from(s: Stats) -> Self {
        Self {
            batches: FlushReason::ALL.map(|r| s.batches_for(r)),
            items: s.items(),
            max_age: s.max_age(),
            consumer_waited: s.consumer_waited(),
            producer_waited: s.producer_waited(),
        }
    }
}

/// One batch, oldest item first.
pub struct Batch<T>(prefetch_batch::Batch<T, CAPACITY, tokio::time::Instant>);

impl<T> Deref for Batch<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0.items
    }
}

/// Flushes the batch being filled, or reads the counters, from another task or thread: the
/// batcher's shared slot, seen without its item type.
#[derive(Clone)]
pub struct Flusher(Arc<dyn Control>);

/// What a [`Flusher`] does to a slot, for any item type.
trait Control: Send + Sync {
    fn flush(&self);
    fn stats(&self) -> Stats;
}

impl<T: Send> Control for TokioSlot<T, CAPACITY> {
    fn flush(&self) {
        TokioSlot::flush(self);
    }
    fn stats(&self) -> Stats {
        TokioSlot::stats(self)
    }
}

impl std::fmt::Debug for Flusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Flusher").field(&self.0.stats()).finish()
    }
}

impl Flusher {
    /// Emits the batch being filled now, without waiting for its deadline.
    pub fn flush(&self) {
        self.0.flush();
    }
    pub fn counters(&self) -> Counters {
        self.0.stats().into()
    }
}

/// Batches of a stream, the next one filling (prefetched) while the caller works on this one.
pub struct Batches<T: Send + 'static>(PrefetchStream<T, CAPACITY>);

impl<T: Send + 'static> Batches<T> {
    /// Starts the batcher (a spawned task pulls from `source`).
    pub fn start<S>(source: S, limits: Limits) -> Result<Self>
    where
        S: Stream<Item = T> + Send + 'static,
    {
        let mut config = Config::<CAPACITY>::new()
            .max_items(limits.max_items)
            .max_wait(limits.max_wait);
        if let Some(idle) = limits.idle {
            config = config.idle(idle);
        }
        Ok(Self(source.prefetch_batches::<CAPACITY>(config)?))
    }

    /// The next batch, or `None` once the source ended (or the batcher was closed) and every
    /// buffered batch was taken.
    pub async fn next(&mut self) -> Option<Batch<T>> {
        self.0.next().await.map(Batch)
    }

    /// Stops intake: the batch being filled is emitted (reason `Close`), then the buffered ones.
    pub fn close(&self) {
        self.0.slot().close();
    }

    pub fn flusher(&self) -> Flusher {
        Flusher(self.0.slot().clone())
    }

    pub fn counters(&self) -> Counters {
        self.0.slot().stats().into()
    }

    /// Closes, and returns how many items were still buffered (dropped, not processed).
    pub async fn abandon(self) -> usize {
        self.0.into_remainder().await.len()
    }
}
