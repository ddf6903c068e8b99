//! Prefetch overlaps the database round trip with the next fill. Paused tokio time, a delay
//! injected in the query, and assertions on counters and virtual time only.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use examples_tokio::db::Db;
use examples_tokio::pipeline::{self, Mode, NoCommit, Outcome, Service, counted};
use examples_tokio::sequential::Limits;
use examples_tokio::sink::{Enriched, Sink};
use examples_tokio::source::{Arrival, Message};
use futures_util::{Stream, StreamExt};
use tokio::time::Instant;

const QUERY: Duration = Duration::from_millis(5);

/// Records, at each write, how many items the source had yielded beyond those written so far:
/// the items pulled while this batch was in the database.
#[derive(Clone)]
struct AheadSink {
    pulled: Arc<AtomicU64>,
    written: u64,
    ahead: Arc<std::sync::Mutex<Vec<u64>>>,
}

impl Sink for AheadSink {
    async fn write(&mut self, records: &[Enriched]) -> Result<()> {
        self.written += records.len() as u64;
        let pulled = self.pulled.load(Ordering::SeqCst);
        self.ahead.lock().unwrap().push(pulled - self.written);
        Ok(())
    }
}

async fn run(source: impl Stream<Item = Message> + Send + 'static, mode: Mode) -> (Outcome, Vec<u64>) {
    let db = Db::connect("sqlite::memory:").await.unwrap().with_latency(QUERY);
    db.seed(100).await.unwrap();
    let pulled = Arc::new(AtomicU64::new(0));
    let sink = AheadSink {
        pulled: Arc::clone(&pulled),
        written: 0,
        ahead: Default::default(),
    };
    let ahead = Arc::clone(&sink.ahead);
    let mut service = Service::new(Arc::new(db), sink, NoCommit, None, true);
    let limits = Limits {
        max_items: 10,
        max_wait: Duration::from_secs(1),
        idle: None,
    };
    let source = counted(source, pulled);
    let outcome = pipeline::run(source, limits, mode, &mut service, std::future::pending())
        .await
        .unwrap();
    let ahead = ahead.lock().unwrap().clone();
    (outcome, ahead)
}

/// One message per millisecond, on a schedule (open loop).
fn steady() -> impl Stream<Item = Message> + Send + 'static {
    Arrival {
        messages: 200,
        rate: 1000.0,
        burst_every: 0,
        burst_size: 0,
        gap: Duration::ZERO,
        fetch: Duration::ZERO,
        fetch_size: 1,
        customers: 100,
    }
    .stream()
}

/// Each message costs a 1 ms fetch, whenever it is asked for (closed loop: a remote source).
fn fetched() -> impl Stream<Item = Message> + Send + 'static {
    futures_util::stream::iter(0..200u64).then(|seq| async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        Message {
            seq,
            customer_id: seq as i64 % 120,
            amount_cents: 1,
            arrived: Instant::now(),
            origin: None,
        }
    })
}

#[tokio::test(start_paused = true)]
async fn prefetch_pulls_the_next_batch_while_the_query_runs() {
    let (on, ahead_on) = run(steady(), Mode::Prefetch).await;
    let (off, ahead_off) = run(steady(), Mode::Sequential).await;
    assert_eq!((on.items, off.items), (200, 200));
    assert_eq!(on.queries, on.total_batches());
    // Off: nothing is pulled while a batch is in the database.
    assert!(ahead_off.iter().all(|&a| a == 0), "{ahead_off:?}");
    // On: during every 5 ms query but the last, the next messages (one per ms) were pulled.
    let (last, rest) = ahead_on.split_last().unwrap();
    assert_eq!(*last, 0);
    assert!(rest.iter().all(|&a| a >= 4), "{ahead_on:?}");
    // Both runs end at the same virtual time here: on a schedule, the messages that arrive during
    // a query wait in the source and the next fill starts with them. The second test measures
    // time with a source that costs a fetch per message.
}

#[tokio::test(start_paused = true)]
async fn with_a_fetch_per_message_prefetch_hides_the_queries() {
    let (on, _) = run(fetched(), Mode::Prefetch).await;
    let (off, _) = run(fetched(), Mode::Sequential).await;
    assert_eq!(
        (on.items, off.items, on.total_batches(), off.total_batches()),
        (200, 200, 20, 20)
    );
    let fill = Duration::from_millis(200);
    // Off: every fetch and every query one after the other.
    assert!(off.elapsed >= fill + 20 * QUERY, "{:?}", off.elapsed);
    assert!(off.consumer_waited >= fill, "{:?}", off.consumer_waited);
    // On: the queries run during the fetches; only the last one adds to the total.
    assert!(on.elapsed <= fill + 2 * QUERY, "{:?}", on.elapsed);
    assert!(on.consumer_waited <= fill - 18 * QUERY, "{:?}", on.consumer_waited);
}
