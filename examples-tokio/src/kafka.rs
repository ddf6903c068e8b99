//! Kafka through `rdkafka`: a consumer-group source, offset commits after the write, a topic sink.
//!
//! Message format on the input topic: key = the customer id as text, payload = the amount in
//! cents as text. The output topic gets the enriched record as JSON, keyed by customer id.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use futures_util::Stream;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;

use crate::pipeline::Commit;
use crate::sink::{Enriched, Sink};
use crate::source::{Message, Origin};

/// How long to wait for the broker when checking that it is there.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A consumer in `group`, subscribed to `topic`, that never commits on its own.
///
/// Fails with a clear message if no broker answers within a few seconds (librdkafka itself would
/// retry forever in the background).
pub async fn consumer(brokers: &str, group: &str, topic: &str) -> Result<Arc<StreamConsumer>> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        // Offsets are committed by the service, after the batch is written.
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .context("cannot create the Kafka consumer")?;
    let consumer = Arc::new(consumer);
    check_reachable(&consumer, brokers, topic).await?;
    consumer
        .subscribe(&[topic])
        .with_context(|| format!("cannot subscribe to topic {topic}"))?;
    Ok(consumer)
}

async fn check_reachable(consumer: &Arc<StreamConsumer>, brokers: &str, topic: &str) -> Result<()> {
    let c = Arc::clone(consumer);
    let topic = topic.to_string();
    // fetch_metadata blocks: keep it off the runtime's worker threads.
    let metadata = tokio::task::spawn_blocking(move || c.fetch_metadata(Some(&topic), CONNECT_TIMEOUT)).await?;
    metadata
        .map(|_| ())
        .map_err(|e| anyhow!("cannot reach the Kafka broker(s) at {brokers}: {e}"))
}

/// The consumer's messages as a stream of [`Message`], ending after `limit` messages if given.
///
/// Receive errors are reported and skipped: librdkafka reports transient broker trouble this way
/// and recovers by itself. A message is never skipped; its offset is committed only once written.
pub fn source(consumer: Arc<StreamConsumer>, limit: Option<u64>) -> impl Stream<Item = Message> + Send + 'static {
    let remaining = limit.unwrap_or(u64::MAX);
    futures_util::stream::unfold((consumer, remaining), |(consumer, remaining)| async move {
        if remaining == 0 {
            return None;
        }
        loop {
            match consumer.recv().await {
                Ok(m) => {
                    let msg = Message {
                        seq: m.offset() as u64,
                        // A key that is not a number is looked up as -1: it is still written.
                        customer_id: number(m.key()).unwrap_or(-1),
                        amount_cents: number(m.payload()).unwrap_or(0),
                        arrived: Instant::now(),
                        origin: Some(Origin {
                            partition: m.partition(),
                            offset: m.offset(),
                        }),
                    };
                    drop(m);
                    return Some((msg, (consumer, remaining - 1)));
                }
                Err(e) => eprintln!("enrich: kafka: {e}"),
            }
        }
    })
}

/// A key or payload holding a decimal number.
fn number(bytes: Option<&[u8]>) -> Option<i64> {
    std::str::from_utf8(bytes?).ok()?.trim().parse().ok()
}

/// Commits, per partition, the offset after the last message of a written batch.
pub struct KafkaCommit {
    consumer: Arc<StreamConsumer>,
    topic: String,
}

impl KafkaCommit {
    pub fn new(consumer: Arc<StreamConsumer>, topic: &str) -> Self {
        Self {
            consumer,
            topic: topic.to_string(),
        }
    }
}

impl Commit for KafkaCommit {
    async fn commit(&mut self, batch: &[Message]) -> Result<()> {
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        for o in batch.iter().filter_map(|m| m.origin) {
            let e = next.entry(o.partition).or_insert(0);
            *e = (*e).max(o.offset + 1);
        }
        if next.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for (p, offset) in next {
            tpl.add_partition_offset(&self.topic, p, Offset::Offset(offset))?;
        }
        let consumer = Arc::clone(&self.consumer);
        // A synchronous commit: when it returns, the broker has the offsets.
        tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync))
            .await?
            .context("committing offsets")
    }
}

/// Produces each enriched record to a topic; a batch is written when the broker acked all of it.
pub struct KafkaSink {
    producer: FutureProducer,
    topic: String,
}

impl KafkaSink {
    pub fn new(brokers: &str, topic: &str) -> Result<Self> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("message.timeout.ms", "10000")
            .set("linger.ms", "2")
            .create()
            .context("cannot create the Kafka producer")?;
        Ok(Self {
            producer,
            topic: topic.to_string(),
        })
    }
}

impl Sink for KafkaSink {
    async fn write(&mut self, records: &[Enriched]) -> Result<()> {
        let lines: Vec<(String, String)> = records
            .iter()
            .map(|r| (r.message.customer_id.to_string(), r.to_json()))
            .collect();
        // All sends in flight at once, then wait for every ack.
        let sends = lines.iter().map(|(key, payload)| {
            let record = FutureRecord::to(&self.topic).key(key).payload(payload);
            self.producer.send(record, Duration::from_secs(10))
        });
        for result in futures_util::future::join_all(sends).await {
            result.map_err(|(e, _)| anyhow!("producing to topic {}: {e}", self.topic))?;
        }
        Ok(())
    }
}
