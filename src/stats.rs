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
    items: u64,
    errors: u64,
    max_age: Duration,
    consumer_waited: Duration,
    producer_waited: Duration,
}

impl Stats {
    /// Items emitted in batches.
    pub const fn items(&self) -> u64 {
        self.items
    }

    /// Errors from the source, delivered after their batch.
    pub const fn errors(&self) -> u64 {
        self.errors
    }

    /// The largest age of a batch's oldest item when the batch was handed to the caller.
    pub const fn max_age(&self) -> Duration {
        self.max_age
    }

    /// Total time the caller waited for a batch. Under a one-task driver, a wait that ends
    /// within the same poll of the task (the producer was working, not waiting for the source or
    /// a timer) counts as zero.
    pub const fn consumer_waited(&self) -> Duration {
        self.consumer_waited
    }

    /// Total time the producer waited for the caller to hand a buffer back (under a one-task
    /// driver, as for [`consumer_waited`](Self::consumer_waited)).
    pub const fn producer_waited(&self) -> Duration {
        self.producer_waited
    }

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
