//! Messages, and a synthetic source whose arrivals look like real traffic.

use std::time::Duration;

use futures_util::Stream;
use tokio::time::Instant;

/// One incoming message: an order for a customer, to be enriched with the customer's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Position in the source (the Kafka offset for a Kafka source).
    pub seq: u64,
    /// The key looked up in the database.
    pub customer_id: i64,
    pub amount_cents: i64,
    /// When the message arrived, so the report can show arrival-to-written latency.
    pub arrived: Instant,
    /// Where it came from in Kafka, so its offset can be committed once it is written.
    pub origin: Option<Origin>,
}

/// A Kafka partition and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub partition: i32,
    pub offset: i64,
}

/// How synthetic messages arrive: a steady rate, broken by bursts and gaps.
///
/// Each cycle is `burst_every` messages at `rate` per second, then `burst_size` messages all at
/// once, then `gap` of silence. A `rate` of 0 means no pacing: a backlog replayed as fast as the
/// service pulls it. `fetch` is what pulling costs, as with a remote queue: every `fetch_size`
/// messages, a round trip of `fetch` (zero: pulling is free).
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub messages: u64,
    pub rate: f64,
    pub burst_every: u64,
    pub burst_size: u64,
    pub gap: Duration,
    pub fetch: Duration,
    pub fetch_size: u64,
    /// Customer ids are drawn from `1..=customers * 21 / 20`: about 5% are unknown to the database.
    pub customers: i64,
}

impl Arrival {
    /// The arrivals as a stream. Message `i` arrives at its scheduled instant (tokio's clock, so
    /// paused time in tests drives it); when the service falls behind, the late messages are
    /// ready at once, as a broker's backlog would be, and `arrived` keeps the scheduled instant.
    pub fn stream(self) -> impl Stream<Item = Message> + Send + 'static {
        let start = Instant::now();
        futures_util::stream::unfold((0u64, Duration::ZERO), move |(i, offset)| async move {
            if i >= self.messages {
                return None;
            }
            let due = start + offset;
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            if !self.fetch.is_zero() && i % self.fetch_size.max(1) == 0 {
                tokio::time::sleep(self.fetch).await;
            }
            let msg = Message {
                seq: i,
                customer_id: customer_for(i, self.customers),
                amount_cents: (mix(i ^ 0xa5a5) % 100_000) as i64,
                arrived: due,
                origin: None,
            };
            Some((msg, (i + 1, offset + self.delay_after(i))))
        })
    }

    /// The pause between message `i` and message `i + 1`.
    fn delay_after(&self, i: u64) -> Duration {
        let cycle = self.burst_every + self.burst_size;
        let pos = if cycle == 0 { 0 } else { i % cycle };
        if self.burst_size > 0 && pos >= self.burst_every {
            // Inside a burst: no pause, except the gap after its last message.
            return if pos + 1 == cycle { self.gap } else { Duration::ZERO };
        }
        if self.rate > 0.0 {
            Duration::from_secs_f64(1.0 / self.rate)
        } else {
            Duration::ZERO
        }
    }
}

/// A deterministic customer id for message `i`.
pub fn customer_for(i: u64, customers: i64) -> i64 {
    let span = (customers.max(1) as u64 * 21).div_ceil(20);
    1 + (mix(i) % span) as i64
}

/// splitmix64: cheap, deterministic scrambling so keys look random but runs are repeatable.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test(start_paused = true)]
    async fn schedule_has_steady_part_burst_and_gap() {
        let arrival = Arrival {
            messages: 8,
            rate: 1000.0,
            burst_every: 2,
            burst_size: 2,
            gap: Duration::from_millis(10),
            fetch: Duration::ZERO,
            fetch_size: 1,
            customers: 100,
        };
        let start = Instant::now();
        let at: Vec<Duration> = arrival.stream().map(|m| m.arrived - start).collect().await;
        let ms = |n| Duration::from_millis(n);
        // steady 1 ms apart, burst of two at once, gap of 10 ms, again.
        assert_eq!(at, [ms(0), ms(1), ms(2), ms(2), ms(12), ms(13), ms(14), ms(14)]);
    }
}
