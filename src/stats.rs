//! [`Stats`]: counters that show where time goes between the producer and the caller.
//!
//! Kept only with the `stats` feature (on by default). Without it the slot stores no counter and
//! reads no clock for them: firmware that does not read counters turns it off.

use core::time::Duration;

use crate::FlushReason;
use crate::timer::Span;

/// Counters kept by a [`Slot`](crate::Slot), read with [`Slot::stats`](crate::Slot::stats)
/// (feature `stats`).
///
/// `consumer_waited` large and `producer_waited` small: the source is the bottleneck (batches are
/// not ready when asked for). The reverse: the caller is, and prefetch is hiding the source's
/// latency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Stats {
    batches: [u64; 7],
    /// Items emitted in batches.
    pub items: u64,
    /// Errors from the source, delivered after their batch.
    pub errors: u64,
    /// The largest age of a batch's oldest item when the batch was handed to the caller.
    pub max_age: Duration,
    /// Total time the caller waited in `next()` for a batch. Under the in-task driver, a wait
    /// that ends within the same poll of the task (the producer was working, not waiting for the
    /// source or a timer) counts as zero.
    pub consumer_waited: Duration,
    /// Total time the producer waited for the caller to hand a buffer back (under the in-task
    /// driver, as for `consumer_waited`).
    pub producer_waited: Duration,
}

impl Stats {
    /// Batches emitted for `reason`.
    ///
    /// ```
    /// use prefetch_batch::{FlushReason, Stats};
    /// assert_eq!(Stats::default().batches_for(FlushReason::Deadline), 0);
    /// ```
    pub const fn batches_for(&self, reason: FlushReason) -> u64 {
        self.batches[reason.index()]
    }

    /// All batches emitted.
    pub fn total_batches(&self) -> u64 {
        self.batches.iter().sum()
    }
}

/// The counters as a slot stores them: times in the timer's own span, converted when read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counters<S> {
    batches: [u64; 7],
    items: u64,
    errors: u64,
    max_age: S,
    consumer: S,
    producer: S,
}

impl<S: Span> Counters<S> {
    pub(crate) const fn new() -> Self {
        Self {
            batches: [0; 7],
            items: 0,
            errors: 0,
            max_age: S::ZERO,
            consumer: S::ZERO,
            producer: S::ZERO,
        }
    }

    pub(crate) fn batch(&mut self, reason: FlushReason, len: usize, age: S) {
        self.batches[reason.index()] += 1;
        self.items += len as u64;
        if age > self.max_age {
            self.max_age = age;
        }
    }

    pub(crate) fn error(&mut self) {
        self.errors += 1;
    }

    pub(crate) fn consumer_waited(&mut self, d: S) {
        self.consumer = self.consumer.saturating_add(d);
    }

    pub(crate) fn producer_waited(&mut self, d: S) {
        self.producer = self.producer.saturating_add(d);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            batches: self.batches,
            items: self.items,
            errors: self.errors,
            max_age: self.max_age.to_duration(),
            consumer_waited: self.consumer.to_duration(),
            producer_waited: self.producer.to_duration(),
        }
    }
}
