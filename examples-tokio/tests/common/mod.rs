//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use examples_tokio::db::seeded_customer;
use examples_tokio::sink::{Enriched, Sink};

/// A fresh directory under the system temp dir, named for the test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("enrich-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Reads a JSON-lines output file and checks it: `messages` records, seq 0..messages each once,
/// each customer as seeded (or null for an id above `customers`).
pub fn check_output(path: &Path, messages: u64, customers: i64) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let seq = v["seq"].as_u64().unwrap();
        *seen.entry(seq).or_default() += 1;
        let id = v["customer_id"].as_i64().unwrap();
        if id <= customers {
            let c = seeded_customer(id);
            assert_eq!(v["customer"]["name"], c.name.as_str(), "{line}");
            assert_eq!(v["customer"]["tier"], c.tier.as_str(), "{line}");
            assert_eq!(v["customer"]["country"], c.country.as_str(), "{line}");
        } else {
            assert!(v["customer"].is_null(), "unknown id must have no customer: {line}");
        }
    }
    assert_eq!(seen.len() as u64, messages, "distinct messages in {}", path.display());
    assert!(seen.values().all(|n| *n == 1), "a message was written twice");
    assert!((0..messages).all(|s| seen.contains_key(&s)), "a message is missing");
}

/// Waits for `child` to exit; kills it and panics with `what` after `secs` seconds.
pub fn wait_exit(child: &mut std::process::Child, secs: u64, what: &str) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what}: no exit within {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A sink that keeps what it was given, and calls `on_write` first (to inspect the world).
#[derive(Clone, Default)]
pub struct Recording {
    pub batches: Arc<Mutex<Vec<Vec<Enriched>>>>,
}

impl Recording {
    /// The seq of every record written, in the order written.
    pub fn seqs(batches: &Mutex<Vec<Vec<Enriched>>>) -> Vec<u64> {
        batches
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .map(|r| r.message.seq)
            .collect()
    }
}

impl Sink for Recording {
    async fn write(&mut self, records: &[Enriched]) -> Result<()> {
        self.batches.lock().unwrap().push(records.to_vec());
        Ok(())
    }
}

/// Kafka helpers for the tests on librdkafka's mock cluster.
pub mod kafka {
    use std::sync::Arc;
    use std::time::Duration;

    use clap::Parser;
    use examples_tokio::app::{Args, RunCtx};
    use examples_tokio::db::Db;
    use examples_tokio::metrics::Metrics;
    use examples_tokio::pipeline::Mode;
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{FutureProducer, FutureRecord};

    pub const INPUT: &str = "orders";
    pub const OUTPUT: &str = "orders-enriched";

    /// The service's flags for a Kafka test: small batches, no injected query latency.
    pub fn args(extra: &[&str]) -> Args {
        let base = [
            "enrich",
            "--quiet",
            "--source",
            "kafka",
            "--prefetch",
            "on",
            "--customers",
            "500",
            "--db-latency-ms",
            "1",
            "--batch-size",
            "50",
            "--max-wait-ms",
            "10",
        ];
        Args::try_parse_from(base.iter().chain(extra)).unwrap()
    }

    pub async fn db() -> Arc<Db> {
        let db = Db::connect("sqlite::memory:")
            .await
            .unwrap()
            .with_latency(Duration::from_millis(1));
        db.seed(500).await.unwrap();
        Arc::new(db)
    }

    pub fn metrics() -> Arc<Metrics> {
        Arc::default()
    }

    /// What a service instance runs with: flags, database, metrics.
    pub struct Env {
        pub args: Args,
        pub db: Arc<Db>,
        pub metrics: Arc<Metrics>,
    }

    impl Env {
        pub async fn new(extra: &[&str]) -> Self {
            Self {
                args: args(extra),
                db: db().await,
                metrics: metrics(),
            }
        }

        pub fn ctx(&self) -> RunCtx<'_> {
            RunCtx {
                args: &self.args,
                db: &self.db,
                metrics: &self.metrics,
                mode: Mode::Prefetch,
            }
        }
    }

    /// Produces messages `from..to` to INPUT: key = a customer id, payload = the index, in
    /// partition `index % partitions`.
    pub async fn produce(brokers: &str, partitions: i32, from: u64, to: u64) {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("linger.ms", "1")
            .create()
            .unwrap();
        let mut deliveries = Vec::new();
        for i in from..to {
            let (key, payload) = ((i % 700 + 1).to_string(), i.to_string());
            let record = FutureRecord::to(INPUT)
                .key(&key)
                .payload(&payload)
                .partition((i % partitions as u64) as i32);
            deliveries.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
        }
        for d in deliveries {
            d.await.unwrap().map_err(|(e, _)| e).unwrap();
        }
    }

    /// Waits until `group` has committed `n` messages of INPUT (summed over `partitions`);
    /// returns the committed total. Panics after 60 s.
    pub async fn wait_committed(brokers: &str, group: &str, partitions: i32, n: i64) -> i64 {
        let checker = Arc::new(examples_tokio::mock::checker(brokers, group).unwrap());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut committed = 0;
        while committed < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "committed only {committed} of {n}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
            let c = Arc::clone(&checker);
            committed = tokio::task::spawn_blocking(move || {
                examples_tokio::mock::committed_total(&c, INPUT, partitions).unwrap()
            })
            .await
            .unwrap();
        }
        committed
    }

    /// Polls `cond` every 20 ms until it holds; panics with `what` after `secs` seconds.
    pub async fn wait_until(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while !cond() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {secs} s waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
