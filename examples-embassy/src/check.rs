//! The uplink's bookkeeping: one log line per batch, and the exactly-once, in-order check.

use core::fmt::Debug;
use core::time::Duration;

use crate::{Io, Reading, say};

/// Follows the readings as batches arrive. A reading other than the next expected one means a
/// reading was lost, duplicated or reordered.
pub struct Checker {
    io: Io,
    next: Reading,
    batches: u32,
    /// The first violation seen: (expected, got).
    wrong: Option<(Reading, Reading)>,
}

impl Checker {
    pub const fn new(io: Io) -> Self {
        Self {
            io,
            next: 0,
            batches: 0,
            wrong: None,
        }
    }

    /// Logs and checks one batch. `age` is how long its oldest reading waited in the batcher.
    pub fn batch(&mut self, items: &[Reading], reason: impl Debug, age: Duration) {
        self.batches += 1;
        let (first, last) = match items {
            [first, .., last] => (*first, *last),
            [only] => (*only, *only),
            [] => {
                say!(self.io, "uplink: batch {} is empty", self.batches);
                self.wrong.get_or_insert((self.next, Reading::MAX));
                return;
            }
        };
        say!(
            self.io,
            "uplink: batch {:>2}: {:>2} readings #{}..#{}, reason {:?}, oldest waited {} ms",
            self.batches,
            items.len(),
            first,
            last,
            reason,
            age.as_millis()
        );
        for &r in items {
            if r != self.next {
                self.wrong.get_or_insert((self.next, r));
            }
            self.next = r.wrapping_add(1);
        }
    }

    /// Prints the verdict and returns the exit status: 0 when exactly `total` readings arrived,
    /// each once, in order.
    pub fn finish(self, total: Reading) -> i32 {
        match self.wrong {
            None if self.next == total => {
                say!(
                    self.io,
                    "check: all {total} readings arrived once, in order, in {} batches",
                    self.batches
                );
                0
            }
            None => {
                say!(self.io, "check FAILED: {} of {total} readings arrived", self.next);
                1
            }
            Some((expected, got)) => {
                say!(self.io, "check FAILED: expected reading #{expected}, got #{got}");
                1
            }
        }
    }
}
