//! Scale-out on librdkafka's mock cluster (no broker): one topic of 6 partitions, three service
//! instances in one consumer group in this process. B and A start; C joins mid-run; B leaves
//! gracefully mid-run; A is aborted mid-batch (after a write, before its commit); C finishes.
//!
//! Every input offset must have an output record; the only duplicates are the records of A's
//! aborted batch (written, never committed); each partition's order is kept; every record
//! carries its dedup key. Events are triggered by progress, never by timing, and each wait is
//! bounded.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use common::kafka::{Env, INPUT, OUTPUT, produce, wait_committed, wait_until};
use examples_tokio::app::run_member;
use examples_tokio::kafka::{KafkaOptions, KafkaSink};
use examples_tokio::metrics::Metrics;
use examples_tokio::mock::{Cluster, checker, read_all, topic_len};
use examples_tokio::sink::{Enriched, Sink};
use rdkafka::consumer::Consumer;
use tokio::sync::{oneshot, watch};

const PARTITIONS: i32 = 6;
const PHASE: u64 = 1_200;
const GROUP: &str = "enrich-scale";

/// (partition, offset) of an input message.
type Key = (i32, i64);

/// What the test sees of the writes: per instance, each batch written, as dedup keys.
#[derive(Default)]
struct Log {
    batches: Mutex<Vec<(&'static str, Vec<Key>)>>,
}

impl Log {
    fn distinct(&self) -> usize {
        let b = self.batches.lock().unwrap();
        b.iter().flat_map(|(_, k)| k).collect::<HashSet<_>>().len()
    }
    fn written_by(&self, instance: &str) -> usize {
        let b = self.batches.lock().unwrap();
        b.iter().filter(|(i, _)| *i == instance).map(|(_, k)| k.len()).sum()
    }
}

/// The Kafka sink, logging each batch; once armed, the next write (after it completed) signals
/// and then never returns: the batch is written and its commit never happens.
struct Tap {
    inner: KafkaSink,
    instance: &'static str,
    log: Arc<Log>,
    abort_after_next: Option<Trigger>,
}

impl Sink for Tap {
    async fn write(&mut self, records: &[Enriched]) -> Result<()> {
        self.inner.write(records).await?;
        let keys: Vec<Key> = records
            .iter()
            .filter_map(|r| r.message.origin)
            .map(|o| (o.partition, o.offset))
            .collect();
        self.log.batches.lock().unwrap().push((self.instance, keys.clone()));
        let armed = self.abort_after_next.as_ref().and_then(|a| a.lock().unwrap().take());
        if let Some(signal) = armed {
            let _ = signal.send(keys);
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

type Trigger = Arc<Mutex<Option<oneshot::Sender<Vec<Key>>>>>;

/// Starts one instance as a task: it runs until `stop` turns true (or is aborted).
fn spawn(
    metrics: &Arc<Metrics>,
    opts: &KafkaOptions,
    instance: &'static str,
    log: &Arc<Log>,
    trigger: Option<Trigger>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Result<u64>> {
    let (opts, log, metrics) = (opts.clone(), Arc::clone(log), Arc::clone(metrics));
    tokio::spawn(async move {
        let mut env = Env::new(&[]).await;
        env.metrics = metrics;
        let wrap = |inner| Tap {
            inner,
            instance,
            log,
            abort_after_next: trigger,
        };
        let mut stop = stop;
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        run_member(&env.ctx(), &opts, instance, None, wrap, shutdown)
            .await
            .map(|o| o.items)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_join_leave_and_abort_without_loss() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let cluster = Cluster::start(&[(INPUT, PARTITIONS), (OUTPUT, PARTITIONS)]).unwrap();
    let brokers = cluster.bootstrap.clone();
    let mut opts = examples_tokio::mock::options(&brokers, GROUP, INPUT, OUTPUT);
    if let Ok(debug) = std::env::var("KAFKA_DEBUG") {
        opts.extra.push(("debug".into(), debug));
    }
    let log = Arc::new(Log::default());
    let (stop_a, rx_a) = watch::channel(false);
    let (stop_b, rx_b) = watch::channel(false);
    let (stop_c, rx_c) = watch::channel(false);
    let trigger: Trigger = Arc::new(Mutex::new(None));

    // Phase 1: A and B share the backlog.
    produce(&brokers, PARTITIONS, 0, PHASE).await;
    let metrics = Arc::new(Metrics::default());
    let a = spawn(&metrics, &opts, "a", &log, Some(Arc::clone(&trigger)), rx_a);
    let b = spawn(&metrics, &opts, "b", &log, None, rx_b);
    wait_until("phase 1 written", 60, || log.distinct() >= PHASE as usize).await;

    // Phase 2: C joins mid-run, and gets messages once it has partitions.
    let c = spawn(&metrics, &opts, "c", &log, None, rx_c);
    wait_until("C has partitions", 60, || metrics.assigned("c") > 0).await;
    produce(&brokers, PARTITIONS, PHASE, 2 * PHASE).await;
    wait_until("C took partitions and wrote", 60, || log.written_by("c") > 0).await;
    wait_until("phase 2 written", 60, || log.distinct() >= 2 * PHASE as usize).await;

    // Phase 3: B leaves gracefully mid-run.
    produce(&brokers, PARTITIONS, 2 * PHASE, 3 * PHASE).await;
    stop_b.send(true).unwrap();
    let b_items = b.await.unwrap().expect("B leaves cleanly");
    wait_until("phase 3 written", 60, || log.distinct() >= 3 * PHASE as usize).await;

    // Phase 4: A is aborted right after a write, before that batch's commit.
    let (tx, rx) = oneshot::channel();
    *trigger.lock().unwrap() = Some(tx);
    produce(&brokers, PARTITIONS, 3 * PHASE, 4 * PHASE).await;
    let uncommitted: HashSet<Key> = tokio::time::timeout(Duration::from_secs(60), rx)
        .await
        .expect("A writes a batch within 60 s")
        .unwrap()
        .into_iter()
        .collect();
    a.abort();
    assert!(a.await.unwrap_err().is_cancelled());
    drop(stop_a);

    // C takes over A's partitions from their last commit: everything gets written, committed.
    let total = 4 * PHASE as i64;
    let group_checker = Arc::new(checker(&brokers, GROUP).unwrap());
    let committed = wait_committed(&brokers, GROUP, PARTITIONS, total).await;
    stop_c.send(true).unwrap();
    let c_items = c.await.unwrap().expect("C ends cleanly");

    // The output, and the input's extent per partition.
    let (out, ends) = tokio::task::spawn_blocking(move || {
        let records = read_all(&brokers, OUTPUT, PARTITIONS).unwrap();
        let ends: Vec<i64> = (0..PARTITIONS)
            .map(|p| {
                group_checker
                    .fetch_watermarks(INPUT, p, Duration::from_secs(10))
                    .unwrap()
                    .1
            })
            .collect();
        assert_eq!(topic_len(&group_checker, INPUT, PARTITIONS).unwrap(), total);
        (records, ends)
    })
    .await
    .unwrap();

    // Every record carries its dedup key, and it names the message in the record.
    let mut count: HashMap<Key, u32> = HashMap::new();
    for r in &out {
        let key = r.dedup_key.as_deref().expect("every record has a dedup-key header");
        let (p, o) = (
            r.json["partition"].as_i64().unwrap() as i32,
            r.json["offset"].as_i64().unwrap(),
        );
        assert_eq!(key, format!("{INPUT}/{p}/{o}"));
        *count.entry((p, o)).or_default() += 1;
    }
    // Every input offset has an output record.
    for (p, end) in ends.iter().enumerate() {
        for o in 0..*end {
            assert!(count.contains_key(&(p as i32, o)), "input {p}/{o} was never written");
        }
    }
    assert_eq!(count.len() as i64, total);
    // Duplicates: exactly the aborted batch, each written twice.
    let duplicated: HashSet<Key> = count.iter().filter(|(_, n)| **n > 1).map(|(k, _)| *k).collect();
    assert!(count.values().all(|n| *n <= 2), "a record written three times");
    assert!(!uncommitted.is_empty());
    if duplicated != uncommitted {
        let extra: HashSet<Key> = duplicated.difference(&uncommitted).copied().collect();
        for (i, keys) in log.batches.lock().unwrap().iter() {
            let n = keys.iter().filter(|k| extra.contains(k)).count();
            if n > 0 {
                eprintln!(
                    "instance {i} wrote {n} of the unexpected duplicates in a batch of {}: {:?}..{:?}",
                    keys.len(),
                    keys.first(),
                    keys.last()
                );
            }
        }
    }
    assert_eq!(
        duplicated, uncommitted,
        "duplicates are the aborted, uncommitted batch and nothing else"
    );
    let duplicates = out.len() - count.len();
    assert!(duplicates <= 50, "bounded by one batch (--batch-size 50): {duplicates}");
    // Per-partition order: output partition p holds input partition p; each first occurrence
    // comes after every earlier offset (a duplicate may repeat an earlier one).
    let mut seen = HashSet::new();
    let mut max: BTreeMap<i32, i64> = BTreeMap::new();
    for r in &out {
        let (p, o) = (
            r.json["partition"].as_i64().unwrap() as i32,
            r.json["offset"].as_i64().unwrap(),
        );
        assert_eq!(r.partition, p, "input partition {p} goes to output partition {p}");
        if seen.insert((p, o)) {
            let m = max.entry(p).or_insert(-1);
            assert!(o > *m, "partition {p}: offset {o} after {m}");
            *m = o;
        }
    }

    let by = |i| log.written_by(i);
    eprintln!(
        "scale-out: in {total}, committed {committed}, written {}, duplicates {duplicates}; \
         written per instance: a {} (aborted, {} uncommitted), b {} (left), c {} (joined)",
        out.len(),
        by("a"),
        uncommitted.len(),
        by("b"),
        by("c"),
    );
    assert_eq!(b_items as usize, by("b"));
    assert_eq!(c_items as usize, by("c"));
    assert_eq!(by("a") + by("b") + by("c"), out.len());
}
