//! Batching with prefetch OFF, for the comparison run: fill a batch, process it, fill the next.
//!
//! Same limits and the same flush reasons as the library, but nothing pulls from the source while
//! the caller processes a batch. A hand loop rather than `tokio-stream`'s `chunks_timeout`, so
//! that the two runs differ in one thing only: the overlap.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::batching::FlushReason;
use futures_util::{Stream, StreamExt};
use tokio::time::Instant;

/// When a batch ends: the same knobs as the batcher's configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_items: usize,
    pub max_wait: Duration,
    pub idle: Option<Duration>,
}

/// Pulls batches from a stream in the caller's task.
pub struct Filler<S: Stream> {
    source: Pin<Box<S>>,
    limits: Limits,
    ended: bool,
    /// Total time spent waiting for the source inside [`Filler::next_batch`].
    pub waited: Duration,
}

impl<S: Stream> Filler<S> {
    pub fn new(source: S, limits: Limits) -> Self {
        Self {
            source: Box::pin(source),
            limits,
            ended: false,
            waited: Duration::ZERO,
        }
    }

    /// The next batch and why it ended, or `None` when the source ended (or `stop` fired) and
    /// nothing is left. `stop` firing ends the batch being filled with [`FlushReason::Close`].
    pub async fn next_batch<F: Future<Output = ()>>(
        &mut self,
        mut stop: Pin<&mut Option<F>>,
    ) -> Option<(Vec<S::Item>, FlushReason)> {
        if self.ended {
            return None;
        }
        let started = Instant::now();
        let mut items = Vec::with_capacity(self.limits.max_items);
        let mut deadline = None;
        let mut last = None;
        let reason = loop {
            // The deadline starts with the first item, as in the library; the idle gap with each.
            let due = deadline.map(|d| match (self.limits.idle, last) {
                (Some(idle), Some(l)) if l + idle < d => (l + idle, FlushReason::Idle),
                _ => (d, FlushReason::Deadline),
            });
            let sleep = async {
                match due {
                    Some((at, reason)) => {
                        tokio::time::sleep_until(at).await;
                        reason
                    }
                    None => std::future::pending().await,
                }
            };
            let stopped = async {
                match stop.as_mut().as_pin_mut() {
                    Some(f) => f.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = stopped => {
                    stop.set(None);
                    self.ended = true;
                    break FlushReason::Close;
                }
                // An item that is ready goes in before a due timer fires, as in the library.
                next = self.source.next() => match next {
                    Some(item) => {
                        let now = Instant::now();
                        if items.is_empty() {
                            deadline = Some(now + self.limits.max_wait);
                        }
                        last = Some(now);
                        items.push(item);
                        if items.len() >= self.limits.max_items {
                            break FlushReason::Full;
                        }
                    }
                    None => {
                        self.ended = true;
                        break FlushReason::End;
                    }
                },
                reason = sleep => break reason,
            }
        };
        self.waited += started.elapsed();
        if items.is_empty() { None } else { Some((items, reason)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ends_batches_on_count_deadline_and_end() {
        // 5 items 1 ms apart, then a 50 ms pause, then 1 item.
        let source = futures_util::stream::iter(0..6u32).then(|i| async move {
            let pause = if i == 5 { 50 } else { 1 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
            i
        });
        let limits = Limits {
            max_items: 3,
            max_wait: Duration::from_millis(10),
            idle: None,
        };
        let mut filler = Filler::new(source, limits);
        let mut stop = std::pin::pin!(None::<std::future::Pending<()>>);
        let mut got = Vec::new();
        while let Some(b) = filler.next_batch(stop.as_mut()).await {
            got.push(b);
        }
        use FlushReason::*;
        assert_eq!(got, [(vec![0, 1, 2], Full), (vec![3, 4], Deadline), (vec![5], End)]);
    }
}
