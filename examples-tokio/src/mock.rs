//! `--brokers mock`: the Kafka path with no broker. An in-process mock cluster (librdkafka's),
//! the generated messages produced to it at their scheduled times, and `--instances` members of
//! one consumer group consuming them; then the counts a Kafka operator would check.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message as _};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{Offset, TopicPartitionList};

use crate::app::{RunCtx, run_member};
use crate::kafka::KafkaOptions;
use crate::metrics;
use crate::pipeline::{Mode, Outcome};

/// Partitions of the mock's input and output topics.
pub const PARTITIONS: i32 = 6;
const TIMEOUT: Duration = Duration::from_secs(10);

/// The output topic of one run (`-on` or `-off` after `--output-topic`).
pub fn output_topic(args: &crate::app::Args, mode: Mode) -> String {
    let suffix = if mode == Mode::Prefetch { "on" } else { "off" };
    format!("{}-{suffix}", args.output_topic)
}

/// A mock cluster on a thread of its own (its handle is not `Send`), with `topics` created.
/// Dropping it stops the cluster.
pub struct Cluster {
    pub bootstrap: String,
    commands: Option<std::sync::mpsc::Sender<(RDKafkaApiKey, Vec<RDKafkaRespErr>)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Cluster {
    pub fn start(topics: &[(&str, i32)]) -> Result<Self> {
        let topics: Vec<(String, i32)> = topics.iter().map(|(t, p)| (t.to_string(), *p)).collect();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (cmd_tx, cmd_rx) = std::sync::mpsc::channel::<(RDKafkaApiKey, Vec<RDKafkaRespErr>)>();
        let thread = std::thread::Builder::new().name("kafka-mock".into()).spawn(move || {
            let started = (|| -> Result<MockCluster<'static, _>> {
                let cluster = MockCluster::new(1).context("cannot start the mock cluster")?;
                for (t, p) in &topics {
                    cluster
                        .create_topic(t, *p, 1)
                        .with_context(|| format!("creating topic {t}"))?;
                }
                Ok(cluster)
            })();
            match started {
                Ok(cluster) => {
                    let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                    // Until the sender is dropped: inject the errors asked for.
                    while let Ok((api, errors)) = cmd_rx.recv() {
                        cluster.request_errors(api, &errors);
                    }
                    drop(cluster);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })?;
        let bootstrap = ready_rx.recv().map_err(|_| anyhow!("the mock cluster thread died"))??;
        Ok(Self {
            bootstrap,
            commands: Some(cmd_tx),
            thread: Some(thread),
        })
    }

    /// The next requests of kind `api` fail with `errors`, one each, in order (fault injection).
    pub fn request_errors(&self, api: RDKafkaApiKey, errors: &[RDKafkaRespErr]) {
        if let Some(c) = &self.commands {
            let _ = c.send((api, errors.to_vec()));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        drop(self.commands.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Settings for clients of the mock cluster. Its group coordinator holds every rebalance open
/// for the session timeout less a second, waiting for members: a short session keeps each
/// rebalance to two seconds.
pub fn settings() -> Vec<(String, String)> {
    vec![("session.timeout.ms".into(), "3000".into())]
}

/// [`KafkaOptions`] for the mock cluster at `bootstrap`.
pub fn options(bootstrap: &str, group: &str, input: &str, output: &str) -> KafkaOptions {
    let mut opts = KafkaOptions::new(bootstrap, group, input, output);
    opts.extra = settings();
    opts
}

/// A consumer in `group` that only reads offsets and watermarks (it never subscribes).
pub fn checker(brokers: &str, group: &str) -> Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .context("cannot create a Kafka client")
}

/// The group's committed offsets on `topic`, summed over `partitions` (0 where none).
pub fn committed_total(checker: &BaseConsumer, topic: &str, partitions: i32) -> Result<i64> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = checker.committed_offsets(tpl, TIMEOUT)?;
    Ok(got
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .sum())
}

/// Messages in `topic` (high minus low watermark, summed).
pub fn topic_len(checker: &BaseConsumer, topic: &str, partitions: i32) -> Result<i64> {
    (0..partitions)
        .map(|p| Ok(checker.fetch_watermarks(topic, p, TIMEOUT).map(|(lo, hi)| hi - lo)?))
        .sum()
}

/// One output record: its partition and offset, its input's dedup key, its JSON.
#[derive(Debug, Clone)]
pub struct OutputRecord {
    pub partition: i32,
    pub offset: i64,
    pub dedup_key: Option<String>,
    pub json: serde_json::Value,
}

/// Reads every record of `topic` from the start (up to its current end).
pub fn read_all(brokers: &str, topic: &str, partitions: i32) -> Result<Vec<OutputRecord>> {
    let consumer = checker(brokers, "enrich-output-reader")?;
    let total = topic_len(&consumer, topic, partitions)?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut out = Vec::with_capacity(total as usize);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while (out.len() as i64) < total {
        if std::time::Instant::now() > deadline {
            bail!("read only {} of {total} records of {topic}", out.len());
        }
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m?;
        let dedup_key = m.headers().and_then(|h| {
            h.iter()
                .find(|h| h.key == "dedup-key")
                .and_then(|h| h.value.map(|v| String::from_utf8_lossy(v).into_owned()))
        });
        out.push(OutputRecord {
            partition: m.partition(),
            offset: m.offset(),
            dedup_key,
            json: serde_json::from_slice(m.payload().unwrap_or_default()).unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Records whose dedup key was already seen: what a downstream deduplication would drop.
pub fn duplicates(records: &[OutputRecord]) -> u64 {
    let mut seen = HashSet::new();
    records
        .iter()
        .filter(|r| !seen.insert(r.dedup_key.clone().unwrap_or_default()))
        .count() as u64
}

/// Produces the generated messages to `topic`, each at its scheduled time, in partition
/// `seq % partitions`; returns how many.
pub async fn produce(brokers: &str, topic: &str, arrival: crate::source::Arrival) -> Result<u64> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "1")
        .create()?;
    let no_fetch_cost = crate::source::Arrival {
        fetch: Duration::ZERO,
        ..arrival
    };
    let mut stream = std::pin::pin!(no_fetch_cost.stream());
    let mut deliveries = Vec::new();
    while let Some(m) = stream.next().await {
        let (key, payload) = (m.customer_id.to_string(), m.amount_cents.to_string());
        let mut record = FutureRecord::to(topic)
            .key(&key)
            .payload(&payload)
            .partition((m.seq % PARTITIONS as u64) as i32);
        loop {
            match producer.send_result(record) {
                Ok(d) => break deliveries.push(d),
                Err((_, back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }
    let n = deliveries.len() as u64;
    for d in deliveries {
        d.await?
            .map_err(|(e, _)| anyhow!("producing to the mock cluster: {e}"))?;
    }
    Ok(n)
}

/// One run on a fresh mock cluster: returns the merged outcome of every instance, and lines
/// for the report.
pub async fn run(ctx: &RunCtx<'_>, shutdown: impl Future<Output = ()> + Send) -> Result<(Outcome, Vec<String>)> {
    let args = ctx.args;
    let input = args.topic.as_str();
    let output = output_topic(args, ctx.mode);
    let cluster = Cluster::start(&[(input, PARTITIONS), (&output, PARTITIONS)])?;
    let mut opts = options(&cluster.bootstrap, &args.group, input, &output);
    opts.extra.extend(args.kafka_config.iter().cloned());
    let checker = Arc::new(checker(&cluster.bootstrap, &args.group)?);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop = |rx: tokio::sync::watch::Receiver<bool>| async move {
        let mut rx = rx;
        let _ = rx.wait_for(|s| *s).await;
    };
    // Each instance is a task of its own, as it would be a process of its own.
    let instances: Vec<_> = (0..args.instances)
        .map(|i| {
            let stop = stop(stop_rx.clone());
            let (args, db, metrics, opts, mode) = (
                args.clone(),
                Arc::clone(ctx.db),
                Arc::clone(ctx.metrics),
                opts.clone(),
                ctx.mode,
            );
            tokio::spawn(async move {
                let ctx = RunCtx {
                    args: &args,
                    db: &db,
                    metrics: &metrics,
                    mode,
                };
                run_member(&ctx, &opts, &format!("{i}"), None, |s| s, stop).await
            })
        })
        .collect();
    // Produce, then stop the group once everything produced is committed, or on Ctrl-C.
    let feed = async {
        // Owned here: however this ends, the instances are told to stop.
        let stop_tx = stop_tx;
        let mut shutdown = std::pin::pin!(shutdown);
        // Start producing once the group has its partitions: latency counts from production.
        let started = tokio::time::Instant::now();
        while ctx.metrics.assigned_total() < PARTITIONS as usize && started.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::info!("mock: the group has its partitions; producing");
        let producing = tokio::time::Instant::now();
        let produced = tokio::select! {
            r = produce(&cluster.bootstrap, input, args.arrival()) => r?,
            () = &mut shutdown => {
                let _ = stop_tx.send(true);
                return Ok(producing.elapsed());
            }
        };
        tracing::info!("mock: produced {produced}");
        loop {
            let (c, topic) = (Arc::clone(&checker), input.to_string());
            let committed = tokio::task::spawn_blocking(move || committed_total(&c, &topic, PARTITIONS)).await??;
            if committed >= produced as i64 {
                break;
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        let _ = stop_tx.send(true);
        Ok::<_, anyhow::Error>(producing.elapsed())
    };
    let (results, wall) = tokio::join!(futures_util::future::join_all(instances), feed);
    // Wall time: from the first message produced to the last one committed (not the group's
    // first rebalance, which the mock cluster delays by three seconds).
    let wall = wall?;
    let outcomes: Vec<Outcome> = results
        .into_iter()
        .map(|r| r.map_err(anyhow::Error::from).and_then(|r| r))
        .collect::<Result<_>>()?;

    let (c, topic) = (Arc::clone(&checker), input.to_string());
    let produced = tokio::task::spawn_blocking(move || topic_len(&c, &topic, PARTITIONS)).await??;
    let (out, bootstrap) = (output.clone(), cluster.bootstrap.clone());
    let records = tokio::task::spawn_blocking(move || read_all(&bootstrap, &out, PARTITIONS)).await??;
    let (c, input_s) = (Arc::clone(&checker), input.to_string());
    let committed = tokio::task::spawn_blocking(move || committed_total(&c, &input_s, PARTITIONS)).await??;
    let mut notes = vec![format!(
        "mock ({}, {} instances): produced {produced}, committed {committed}, written {}, duplicates {}",
        if ctx.mode == Mode::Prefetch {
            "prefetch on"
        } else {
            "prefetch off"
        },
        args.instances,
        records.len(),
        duplicates(&records)
    )];
    for (i, o) in outcomes.iter().enumerate() {
        notes.push(format!("  instance {i}: written {}", o.items));
    }
    let mut merged = merge(ctx.mode, &outcomes);
    merged.elapsed = wall;
    Ok((merged, notes))
}

/// The instances' outcomes as one: counts and waits summed, the latency histograms merged.
pub fn merge(mode: Mode, outcomes: &[Outcome]) -> Outcome {
    let mut m = Outcome {
        mode,
        items: 0,
        elapsed: Duration::ZERO,
        batches: Default::default(),
        max_age: None,
        consumer_waited: Duration::ZERO,
        producer_waited: None,
        busy: Duration::ZERO,
        latency: metrics::histogram(),
        queries: 0,
        db_retries: 0,
    };
    for o in outcomes {
        m.items += o.items;
        m.elapsed = m.elapsed.max(o.elapsed);
        for (a, b) in m.batches.iter_mut().zip(o.batches) {
            *a += b;
        }
        m.max_age = m.max_age.max(o.max_age);
        m.consumer_waited += o.consumer_waited;
        m.producer_waited = match (m.producer_waited, o.producer_waited) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        m.busy += o.busy;
        let _ = m.latency.add(&o.latency);
        m.db_retries += o.db_retries;
    }
    m
}
