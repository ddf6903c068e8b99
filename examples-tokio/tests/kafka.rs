//! The Kafka source and sink against librdkafka's built-in mock cluster: no broker needed.
//!
//! Checks that N produced messages are each written once to the output topic, that offsets are
//! committed only after their batch was written, and that a stop and a restart lose nothing.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, ensure};
use common::kafka::{Env, INPUT, OUTPUT, metrics, produce};
use examples_tokio::app::run_member;
use examples_tokio::kafka::{self, KafkaOptions, KafkaSink};
use examples_tokio::mock::{Cluster, checker, read_all, topic_len};
use examples_tokio::sink::{Enriched, Sink};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 3;
const GROUP: &str = "enrich";
const TIMEOUT: Duration = Duration::from_secs(10);

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

/// Amount (= input index) -> how many output records carry it.
fn amounts(brokers: &str) -> HashMap<i64, u32> {
    let mut seen = HashMap::new();
    for r in read_all(brokers, OUTPUT, PARTITIONS).unwrap() {
        assert!(r.dedup_key.is_some(), "a record without dedup key: {r:?}");
        *seen.entry(r.json["amount_cents"].as_i64().unwrap()).or_insert(0) += 1;
    }
    seen
}

fn start() -> (Cluster, KafkaOptions, Arc<BaseConsumer>) {
    let cluster = Cluster::start(&[(INPUT, PARTITIONS), (OUTPUT, PARTITIONS)]).unwrap();
    let opts = examples_tokio::mock::options(&cluster.bootstrap, GROUP, INPUT, OUTPUT);
    let checker = Arc::new(checker(&cluster.bootstrap, GROUP).unwrap());
    (cluster, opts, checker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_once_and_commits_after_writes() {
    const N: u64 = 2_000;
    let (cluster, opts, checker) = start();
    produce(&cluster.bootstrap, PARTITIONS, 0, N).await;
    assert!(committed(&checker).is_empty(), "nothing committed before the run");

    let env = Env::new(&[]).await;
    let ctx = env.ctx();
    let checks = Arc::new(Mutex::new(0));
    let wrap = |inner| CommitAfterWrite {
        inner,
        checker: Arc::clone(&checker),
        written: BTreeMap::new(),
        checks: Arc::clone(&checks),
    };
    let outcome = run_member(&ctx, &opts, "0", Some(N), wrap, std::future::pending())
        .await
        .unwrap();
    assert_eq!(outcome.items, N);
    assert_eq!(outcome.queries, outcome.total_batches(), "one query per batch");
    assert_eq!(*checks.lock().unwrap() as u64, outcome.total_batches());

    // Committed: exactly everything, per partition up to its end.
    let c = Arc::clone(&checker);
    let (done, out) = tokio::task::spawn_blocking(move || (committed(&c), topic_len(&c, OUTPUT, PARTITIONS).unwrap()))
        .await
        .unwrap();
    assert_eq!(done.values().sum::<i64>(), N as i64, "{done:?}");
    assert_eq!(out, N as i64);

    // Written: each input exactly once.
    let seen = amounts(&cluster.bootstrap);
    assert_eq!(seen.len() as u64, N);
    assert!(seen.values().all(|&n| n == 1));
    assert!((0..N as i64).all(|a| seen.contains_key(&a)));
}

#[tokio::test]
async fn unreachable_broker_is_a_clear_error() {
    // Nothing listens on port 1: the metadata request times out after a few seconds.
    let opts = KafkaOptions::new("127.0.0.1:1", "g", "t", "o");
    let Err(err) = kafka::join(&opts, "0", metrics(), None).await else {
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
async fn run_once(opts: &KafkaOptions, limit: u64, stop_after: u32) -> u64 {
    let env = Env::new(&[]).await;
    let ctx = env.ctx();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let wrap = |inner| StopAfter {
        inner,
        writes: 0,
        after: stop_after,
        stop: Some(tx),
    };
    let shutdown = async {
        if rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    run_member(&ctx, opts, "0", Some(limit), wrap, shutdown)
        .await
        .unwrap()
        .items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_midway_commits_what_was_written_and_a_restart_gets_the_rest() {
    const N: u64 = 1_000;
    let (cluster, opts, checker) = start();
    produce(&cluster.bootstrap, PARTITIONS, 0, N).await;

    // Stopped after its third batch: the batches already pulled are still written and committed.
    let first = run_once(&opts, N, 3).await;
    assert!((150..N).contains(&first), "first run wrote {first}");
    let c = Arc::clone(&checker);
    let (done, out) = tokio::task::spawn_blocking(move || (committed(&c), topic_len(&c, OUTPUT, PARTITIONS).unwrap()))
        .await
        .unwrap();
    assert_eq!(
        done.values().sum::<i64>(),
        first as i64,
        "committed = written: {done:?}"
    );
    assert_eq!(out, first as i64);

    // A restart in the same group resumes at the committed offsets: the rest, nothing twice.
    let second = run_once(&opts, N - first, u32::MAX).await;
    assert_eq!(first + second, N);
    let seen = amounts(&cluster.bootstrap);
    assert!((0..N as i64).all(|a| seen.get(&a) == Some(&1)), "each message once");
    assert_eq!(seen.len() as u64, N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_service_pauses_the_partitions_and_loses_nothing() {
    // 3000 messages are fetched far faster than batches of 50 at 20 ms a query are written:
    // the channel and the backlog fill up and the partitions are paused, then resumed.
    const N: u64 = 3_000;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let (cluster, opts, checker) = start();
    produce(&cluster.bootstrap, PARTITIONS, 0, N).await;
    let mut env = Env::new(&[]).await;
    let db = examples_tokio::db::Db::connect("sqlite::memory:")
        .await
        .unwrap()
        .with_latency(Duration::from_millis(20));
    db.seed(500).await.unwrap();
    env.db = Arc::new(db);
    let outcome = run_member(&env.ctx(), &opts, "0", Some(N), |s| s, std::future::pending())
        .await
        .unwrap();
    assert_eq!(outcome.items, N);
    let c = Arc::clone(&checker);
    let done = tokio::task::spawn_blocking(move || committed(&c)).await.unwrap();
    assert_eq!(done.values().sum::<i64>(), N as i64);
    let seen = amounts(&cluster.bootstrap);
    assert!((0..N as i64).all(|a| seen.get(&a) == Some(&1)), "each message once");
}
