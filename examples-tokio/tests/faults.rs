//! Faults on the Kafka path, on librdkafka's mock cluster (no broker): failing commits, failing
//! produces, a database outage mid-run, a topic that does not exist. Nothing is lost, nothing is
//! committed ahead of its write, and what cannot be recovered is a clear error, not a hang.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::Result;
use common::kafka::{Env, INPUT, OUTPUT, produce, wait_committed};
use examples_tokio::app::run_member;
use examples_tokio::db::Db;
use examples_tokio::kafka::{KafkaOptions, KafkaSink};
use examples_tokio::metrics::ErrorKind;
use examples_tokio::mock::{Cluster, checker, committed_total, options, read_all};
use examples_tokio::pipeline::Outcome;
use examples_tokio::sink::{Enriched, Sink};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

const PARTITIONS: i32 = 3;
const GROUP: &str = "enrich-faults";
const N: u64 = 600;

fn start() -> (Cluster, KafkaOptions) {
    let cluster = Cluster::start(&[(INPUT, PARTITIONS), (OUTPUT, PARTITIONS)]).unwrap();
    let opts = options(&cluster.bootstrap, GROUP, INPUT, OUTPUT);
    (cluster, opts)
}

/// The group's committed total, and how many output records each input (partition, offset) has.
async fn results(brokers: &str) -> (i64, HashMap<(i64, i64), u32>) {
    let brokers = brokers.to_string();
    tokio::task::spawn_blocking(move || {
        let c = checker(&brokers, GROUP).unwrap();
        let committed = committed_total(&c, INPUT, PARTITIONS).unwrap();
        let mut count = HashMap::new();
        for r in read_all(&brokers, OUTPUT, PARTITIONS).unwrap() {
            let key = (
                r.json["partition"].as_i64().unwrap(),
                r.json["offset"].as_i64().unwrap(),
            );
            *count.entry(key).or_insert(0) += 1;
        }
        (committed, count)
    })
    .await
    .unwrap()
}

/// Runs one instance over the N messages; `wrap` may wrap the sink.
async fn run<S: Sink>(env: &Env, opts: &KafkaOptions, wrap: impl FnOnce(KafkaSink) -> S) -> Result<Outcome> {
    run_member(&env.ctx(), opts, "0", Some(N), wrap, std::future::pending()).await
}

/// N messages produced, then `errors` injected for the next `api` requests, then one run.
async fn run_with_errors(api: RDKafkaApiKey, errors: &[RDKafkaRespErr]) -> (Cluster, Env, Result<Outcome>) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let (cluster, opts) = start();
    produce(&cluster.bootstrap, PARTITIONS, 0, N).await;
    cluster.request_errors(api, errors);
    let env = Env::new(&[]).await;
    let result = run(&env, &opts, |s| s).await;
    (cluster, env, result)
}

fn assert_each_once(count: &HashMap<(i64, i64), u32>) {
    assert_eq!(count.len() as u64, N, "every input has an output record");
    assert!(count.values().all(|n| *n == 1), "and only one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_commits_are_retried_and_nothing_is_lost() {
    let errors = [RDKafkaRespErr::RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS; 3];
    let (cluster, env, result) = run_with_errors(RDKafkaApiKey::OffsetCommit, &errors).await;
    let outcome = result.unwrap();
    assert_eq!(outcome.items, N);
    assert_eq!(env.metrics.errors(ErrorKind::Commit), 3, "each failed try counted");
    let (committed, count) = results(&cluster.bootstrap).await;
    assert_eq!(committed, N as i64);
    assert_each_once(&count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn illegal_generation_and_unknown_member_do_not_stop_the_service() {
    let (cluster, opts) = start();
    produce(&cluster.bootstrap, PARTITIONS, 0, N).await;
    use RDKafkaRespErr::*;
    let errors = [
        RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION,
        RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID,
    ];
    cluster.request_errors(RDKafkaApiKey::OffsetCommit, &errors);
    let env = Env::new(&[]).await;
    let ctx = env.ctx();
    // No message limit: a fenced member may have to read some messages again. It runs until
    // the group has committed everything.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = run_member(&ctx, &opts, "0", None, |s| s, async {
        let _ = stop_rx.await;
    });
    let wait = async {
        wait_committed(&cluster.bootstrap, GROUP, PARTITIONS, N as i64).await;
        let _ = stop_tx.send(());
    };
    let (outcome, ()) = tokio::join!(run, wait);
    let outcome = outcome.expect("the service goes on");
    assert!(env.metrics.errors(ErrorKind::Commit) >= 2);
    let (committed, count) = results(&cluster.bootstrap).await;
    assert_eq!(committed, N as i64);
    assert_eq!(count.len() as u64, N, "every input has an output record");
    // What could not be committed was written again by the member's next generation.
    let duplicates: u64 = count.values().map(|n| u64::from(n - 1)).sum();
    assert_eq!(outcome.items, N + duplicates);
    eprintln!("fenced commits: {} written, {duplicates} duplicates", outcome.items);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_error_that_does_not_pass_is_reported_and_nothing_unwritten_is_committed() {
    let errors = [RDKafkaRespErr::RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED];
    let (cluster, _, result) = run_with_errors(RDKafkaApiKey::OffsetCommit, &errors).await;
    let err = result.unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("committing offsets"), "{msg}");
    assert!(msg.contains("GroupAuthorizationFailed"), "{msg}");
    let (committed, count) = results(&cluster.bootstrap).await;
    assert_eq!(committed, 0, "the first commit failed: nothing committed");
    assert!(!count.is_empty() && count.len() < N as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_produce_errors_are_retried_without_duplicates() {
    use RDKafkaRespErr::*;
    let errors = [
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
    ];
    let (cluster, _, result) = run_with_errors(RDKafkaApiKey::Produce, &errors).await;
    let outcome = result.unwrap();
    assert_eq!(outcome.items, N);
    let (committed, count) = results(&cluster.bootstrap).await;
    assert_eq!(committed, N as i64);
    // The idempotent producer: librdkafka's retries write no record twice.
    assert_each_once(&count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_produce_error_that_does_not_pass_stops_the_run_uncommitted() {
    let errors = [RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 50];
    let (cluster, env, result) = run_with_errors(RDKafkaApiKey::Produce, &errors).await;
    let err = result.unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("producing to topic orders-enriched"), "{msg}");
    assert!(env.metrics.errors(ErrorKind::Produce) >= 1);
    let (committed, _) = results(&cluster.bootstrap).await;
    assert_eq!(committed, 0, "nothing was written, nothing committed");
}

/// Makes the database fail its next `queries` lookups after the `after`-th write.
struct OutageAfter {
    inner: KafkaSink,
    db: Arc<Db>,
    writes: u32,
    after: u32,
    queries: u64,
}

impl Sink for OutageAfter {
    async fn write(&mut self, records: &[Enriched]) -> Result<()> {
        self.inner.write(records).await?;
        self.writes += 1;
        if self.writes == self.after {
            self.db.simulate_outage(self.queries);
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_mid_run_is_retried_and_nothing_is_lost() {
    let (cluster, opts) = start();
    produce(&cluster.bootstrap, PARTITIONS, 0, N).await;
    let env = Env::new(&[]).await;
    let wrap = |inner| OutageAfter {
        inner,
        db: Arc::clone(&env.db),
        writes: 0,
        after: 2,
        queries: 4,
    };
    let outcome = run(&env, &opts, wrap).await.unwrap();
    assert_eq!(outcome.items, N);
    assert_eq!(outcome.db_retries, 4, "four failed lookups, each retried");
    assert_eq!(env.metrics.errors(ErrorKind::Db), 4);
    assert_eq!(outcome.queries, outcome.total_batches() + 4);
    let (committed, count) = results(&cluster.bootstrap).await;
    assert_eq!(committed, N as i64);
    assert_each_once(&count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_topic_is_a_clear_error_and_a_non_zero_exit() {
    let (cluster, _) = start();
    let mut child = Command::new(env!("CARGO_BIN_EXE_enrich"))
        .args(["--quiet", "--source", "kafka", "--prefetch", "on", "--topic", "nope"])
        .args(["--brokers", &cluster.bootstrap])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // No hang: it must exit on its own, well within 30 s.
    let status = common::wait_exit(&mut child, 30, "enrich --topic nope");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("enrich: error: topic nope does not exist"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
