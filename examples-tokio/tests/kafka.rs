//! The Kafka source and sink against librdkafka's built-in mock cluster: no broker needed.
//!
//! Checks that N produced messages are each written once to the output topic, and that offsets
//! are committed only after their batch was written.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, ensure};
use examples_tokio::db::Db;
use examples_tokio::kafka::{self, KafkaCommit, KafkaSink};
use examples_tokio::pipeline::{self, Mode, Service};
use examples_tokio::sequential::Limits;
use examples_tokio::sink::{Enriched, Sink};
use futures_util::StreamExt;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const INPUT: &str = "orders";
const OUTPUT: &str = "orders-enriched";
const PARTITIONS: i32 = 3;
const GROUP: &str = "enrich-test";
const TIMEOUT: Duration = Duration::from_secs(10);

async fn produce(brokers: &str, n: u64) {
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let sends = (0..n).map(|i| {
        let (key, payload) = ((i % 700 + 1).to_string(), i.to_string());
        let producer = &producer;
        async move {
            let record = FutureRecord::to(INPUT).key(&key).payload(&payload);
            producer.send(record, TIMEOUT).await.map_err(|(e, _)| e).unwrap();
        }
    });
    futures_util::future::join_all(sends).await;
}

/// The group's committed offset per input partition (absent: nothing committed yet).
fn committed(checker: &BaseConsumer) -> BTreeMap<i32, i64> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(INPUT, p);
    }
    let got = checker.committed_offsets(tpl, TIMEOUT).unwrap();
    got.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// Wraps the Kafka sink: before each write, the broker's committed offsets must not pass what
/// was already written; a commit ahead of its write would show here.
struct CommitAfterWrite {
    inner: KafkaSink,
    checker: Arc<BaseConsumer>,
    written: BTreeMap<i32, i64>,
    checks: Arc<Mutex<u32>>,
}

impl Sink for CommitAfterWrite {
    async fn write(&mut self, records: &[Enriched]) -> Result<()> {
        let checker = Arc::clone(&self.checker);
        let now = tokio::task::spawn_blocking(move || committed(&checker)).await?;
        for (p, offset) in &now {
            let written = self.written.get(p).copied().unwrap_or(0);
            ensure!(
                *offset <= written,
                "partition {p}: committed {offset} but written only up to {written}"
            );
        }
        self.inner.write(records).await?;
        for o in records.iter().filter_map(|r| r.message.origin) {
            let w = self.written.entry(o.partition).or_insert(0);
            *w = (*w).max(o.offset + 1);
        }
        *self.checks.lock().unwrap() += 1;
        Ok(())
    }
}

/// Reads the output topic from the start until `n` records arrived; returns amount -> count.
async fn read_output(brokers: &str, n: u64) -> HashMap<i64, u32> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "output-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[OUTPUT]).unwrap();
    let mut seen = HashMap::new();
    let mut stream = consumer.stream();
    for _ in 0..n {
        let m = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("output record within 30 s")
            .unwrap()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        *seen.entry(v["amount_cents"].as_i64().unwrap()).or_insert(0) += 1;
    }
    seen
}

/// Total messages in `topic`, from the broker's watermarks: exact, no waiting for "no more".
fn topic_len(checker: &BaseConsumer, topic: &str) -> i64 {
    (0..PARTITIONS)
        .map(|p| {
            let (low, high) = checker.fetch_watermarks(topic, p, TIMEOUT).unwrap();
            high - low
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_once_and_commits_after_writes() {
    const N: u64 = 2_000;
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(INPUT, PARTITIONS, 1).unwrap();
    cluster.create_topic(OUTPUT, PARTITIONS, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    produce(&brokers, N).await;

    let checker: Arc<BaseConsumer> = Arc::new(
        ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", GROUP)
            .create()
            .unwrap(),
    );
    assert!(committed(&checker).is_empty(), "nothing committed before the run");

    let db = Db::connect("sqlite::memory:").await.unwrap();
    db.seed(500).await.unwrap();
    let consumer = kafka::consumer(&brokers, GROUP, INPUT).await.unwrap();
    let checks = Arc::new(Mutex::new(0));
    let sink = CommitAfterWrite {
        inner: KafkaSink::new(&brokers, OUTPUT).unwrap(),
        checker: Arc::clone(&checker),
        written: BTreeMap::new(),
        checks: Arc::clone(&checks),
    };
    let commit = KafkaCommit::new(Arc::clone(&consumer), INPUT);
    let mut service = Service::new(Arc::new(db), sink, commit, Some(N), true);
    let limits = Limits {
        max_items: 100,
        max_wait: Duration::from_millis(20),
        idle: None,
    };
    let source = kafka::source(Arc::clone(&consumer), Some(N));
    let outcome = pipeline::run(source, limits, Mode::Prefetch, &mut service, std::future::pending())
        .await
        .unwrap();
    assert_eq!(outcome.items, N);
    assert_eq!(outcome.queries, outcome.total_batches(), "one query per batch");
    assert_eq!(*checks.lock().unwrap() as u64, outcome.total_batches());

    // Committed: exactly everything, per partition up to its end.
    let done = committed(&checker);
    assert_eq!(done.values().sum::<i64>(), N as i64, "{done:?}");
    let c = Arc::clone(&checker);
    assert_eq!(
        tokio::task::spawn_blocking(move || topic_len(&c, OUTPUT))
            .await
            .unwrap(),
        N as i64
    );

    // Written: each input exactly once.
    let seen = read_output(&brokers, N).await;
    assert_eq!(seen.len() as u64, N);
    assert!(seen.values().all(|&n| n == 1));
    assert!((0..N as i64).all(|a| seen.contains_key(&a)));
}

#[tokio::test]
async fn unreachable_broker_is_a_clear_error() {
    // Nothing listens on port 1: the metadata request times out after a few seconds.
    let Err(err) = kafka::consumer("127.0.0.1:1", "g", "t").await else {
        panic!("a consumer with no broker");
    };
    assert!(
        format!("{err:#}").contains("cannot reach the Kafka broker(s) at 127.0.0.1:1"),
        "{err:#}"
    );
}

/// Fires `stop` after the `after`-th write: Ctrl-C in the middle of a run.
struct StopAfter {
    inner: KafkaSink,
    writes: u32,
    after: u32,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Sink for StopAfter {
    async fn write(&mut self, records: &[Enriched]) -> Result<()> {
        self.inner.write(records).await?;
        self.writes += 1;
        if self.writes == self.after {
            let _ = self.stop.take().map(|s| s.send(()));
        }
        Ok(())
    }
}

/// One run of the service on the input topic: stops after `limit` messages, or when the sink
/// fires the stop after `stop_after` writes. Returns the number of items written.
async fn run_once(brokers: &str, limit: u64, stop_after: u32) -> u64 {
    let db = Db::connect("sqlite::memory:").await.unwrap();
    db.seed(500).await.unwrap();
    let consumer = kafka::consumer(brokers, GROUP, INPUT).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sink = StopAfter {
        inner: KafkaSink::new(brokers, OUTPUT).unwrap(),
        writes: 0,
        after: stop_after,
        stop: Some(tx),
    };
    let commit = KafkaCommit::new(Arc::clone(&consumer), INPUT);
    let mut service = Service::new(Arc::new(db), sink, commit, None, true);
    let limits = Limits {
        max_items: 50,
        max_wait: Duration::from_millis(20),
        idle: None,
    };
    let shutdown = async {
        if rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let source = kafka::source(consumer, Some(limit));
    let outcome = pipeline::run(source, limits, Mode::Prefetch, &mut service, shutdown)
        .await
        .unwrap();
    outcome.items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_midway_commits_what_was_written_and_a_restart_gets_the_rest() {
    const N: u64 = 1_000;
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(INPUT, PARTITIONS, 1).unwrap();
    cluster.create_topic(OUTPUT, PARTITIONS, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    produce(&brokers, N).await;
    let checker: Arc<BaseConsumer> = Arc::new(
        ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", GROUP)
            .create()
            .unwrap(),
    );

    // Stopped after its third batch: the batches already pulled are still written and committed.
    let first = run_once(&brokers, N, 3).await;
    assert!((150..N).contains(&first), "first run wrote {first}");
    let c = Arc::clone(&checker);
    let (done, out) = tokio::task::spawn_blocking(move || (committed(&c), topic_len(&c, OUTPUT)))
        .await
        .unwrap();
    assert_eq!(
        done.values().sum::<i64>(),
        first as i64,
        "committed = written: {done:?}"
    );
    assert_eq!(out, first as i64);

    // A restart in the same group resumes at the committed offsets: the rest, nothing twice.
    let second = run_once(&brokers, N - first, u32::MAX).await;
    assert_eq!(first + second, N);
    let seen = read_output(&brokers, N).await;
    assert!((0..N as i64).all(|a| seen.get(&a) == Some(&1)), "each message once");
    let c = Arc::clone(&checker);
    assert_eq!(
        tokio::task::spawn_blocking(move || topic_len(&c, OUTPUT))
            .await
            .unwrap(),
        N as i64
    );
}
