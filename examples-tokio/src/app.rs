//! The `enrich` command line and its wiring: source, database, sink, one or two runs.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};

use crate::db::Db;
use crate::kafka::{self, KafkaOptions, KafkaSink};
use crate::metrics::{self, Metrics};
use crate::mock;
use crate::pipeline::{self, CAPACITY, Commit, Mode, NoCommit, Outcome, Service};
use crate::sequential::Limits;
use crate::sink::{JsonLines, Sink};
use crate::source::Arrival;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceKind {
    /// Generated messages: a steady rate with bursts and gaps.
    Synthetic,
    /// A Kafka topic, consumed in a consumer group; output goes to --output-topic.
    Kafka,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Prefetch {
    On,
    Off,
    /// Run twice, on then off, and compare.
    Both,
}

/// Enriches a stream of orders with customer rows, one database query per batch.
///
/// Every flag can also come from the environment variable named in `--help`.
#[derive(Debug, Clone, Parser)]
#[command(name = "enrich", version)]
pub struct Args {
    /// Where messages come from (`--brokers mock` implies kafka).
    #[arg(long, env = "ENRICH_SOURCE", value_enum, default_value_t = SourceKind::Synthetic)]
    pub source: SourceKind,
    /// Messages to generate (synthetic, mock), or to consume before stopping (kafka; 0 = until
    /// Ctrl-C or SIGTERM).
    #[arg(long, env = "ENRICH_MESSAGES", default_value_t = 20_000)]
    pub messages: u64,
    /// Synthetic: steady arrival rate, messages per second: 0 (a backlog, no pacing) or 1 to 10000000.
    #[arg(long, env = "ENRICH_RATE", default_value_t = 20_000.0, value_parser = parse_rate)]
    pub rate: f64,
    /// Synthetic: a burst after every this many steady messages.
    #[arg(long, env = "ENRICH_BURST_EVERY", default_value_t = 4_000, value_parser = clap::value_parser!(u64).range(0..=1_000_000_000))]
    pub burst_every: u64,
    /// Synthetic: messages in a burst, all arriving at once.
    #[arg(long, env = "ENRICH_BURST_SIZE", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(0..=1_000_000_000))]
    pub burst_size: u64,
    /// Synthetic: silence after each burst, in milliseconds (at most an hour).
    #[arg(long, env = "ENRICH_GAP_MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub gap_ms: u64,
    /// Synthetic: what pulling costs, as from a remote queue: a round trip of this many
    /// milliseconds (0 to 60000) per --fetch-size messages (0: pulling is free).
    #[arg(long, env = "ENRICH_FETCH_MS", default_value_t = 2.0, value_parser = parse_ms)]
    pub fetch_ms: f64,
    /// Synthetic: messages per fetch round trip.
    #[arg(long, env = "ENRICH_FETCH_SIZE", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub fetch_size: u64,
    /// Customers seeded in the database, 1 to 10000000 (about 5% of messages name an unknown one).
    #[arg(long, env = "ENRICH_CUSTOMERS", default_value_t = 10_000, value_parser = clap::value_parser!(i64).range(1..=MAX_CUSTOMERS))]
    pub customers: i64,
    /// sqlite::memory:, sqlite:PATH, or postgres://user@host:port/db (a password may come from
    /// PGPASSWORD).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite::memory:")]
    pub database_url: String,
    /// Delay added to each query (0 to 60000 ms), standing in for the network round trip an
    /// embedded SQLite does not have. Default: 5 for SQLite, 0 for PostgreSQL.
    #[arg(long, env = "ENRICH_DB_LATENCY_MS", value_parser = parse_ms)]
    pub db_latency_ms: Option<f64>,
    /// A query (or the PostgreSQL handshake) taking longer than this fails and is retried.
    #[arg(long, env = "ENRICH_DB_TIMEOUT_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub db_timeout_ms: u64,
    /// How long a failing database (a restart) is retried, with backoff, before the service
    /// stops with an error.
    #[arg(long, env = "ENRICH_DB_RETRY_S", default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub db_retry_s: u64,
    /// Items per batch at most (1 to 256).
    #[arg(long, env = "ENRICH_BATCH_SIZE", default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=CAPACITY as i64))]
    pub batch_size: u16,
    /// A batch is emitted at the latest this long after its first item arrived (1 ms to an hour).
    #[arg(long, env = "ENRICH_MAX_WAIT_MS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub max_wait_ms: u64,
    /// Also emit a batch when no message arrived for this long (1 ms to an hour).
    #[arg(long, env = "ENRICH_IDLE_MS", value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub idle_ms: Option<u64>,
    /// Fill the next batch while the current one is processed.
    #[arg(long, env = "ENRICH_PREFETCH", value_enum, default_value_t = Prefetch::Both)]
    pub prefetch: Prefetch,
    /// Synthetic: where the JSON-lines output goes (enriched-on.jsonl, enriched-off.jsonl).
    #[arg(long, env = "ENRICH_OUT_DIR")]
    pub out_dir: Option<PathBuf>,
    /// Kafka: bootstrap servers, or `mock`: an in-process mock cluster, fed with the generated
    /// messages and consumed by --instances members of one group.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "localhost:9092")]
    pub brokers: String,
    /// Kafka: the input topic.
    #[arg(long, env = "KAFKA_TOPIC", default_value = "orders")]
    pub topic: String,
    /// Kafka: the consumer group.
    #[arg(long, env = "KAFKA_GROUP", default_value = "enrich")]
    pub group: String,
    /// Kafka: the output topic.
    #[arg(long, env = "KAFKA_OUTPUT_TOPIC", default_value = "orders-enriched")]
    pub output_topic: String,
    /// Kafka: a librdkafka setting for the consumer and the producer (TLS, SASL, timeouts),
    /// repeatable; from the environment, separated by `;` (values may hold commas: `debug=cgrp,fetch`).
    #[arg(short = 'X', value_name = "KEY=VALUE", env = "KAFKA_CONFIG", value_delimiter = ';', value_parser = parse_key_value)]
    pub kafka_config: Vec<(String, String)>,
    /// `--brokers mock`: service instances in the group (1 to 16).
    #[arg(long, env = "ENRICH_INSTANCES", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub instances: u16,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9898).
    #[arg(long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// No progress bar.
    #[arg(long, short, env = "ENRICH_QUIET")]
    pub quiet: bool,
}

/// The largest `--customers`: seeding more would take minutes.
pub const MAX_CUSTOMERS: i64 = 10_000_000;

fn parse_float(s: &str, what: &str, ok: impl Fn(f64) -> bool) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("not a number: {s}"))?;
    if v.is_finite() && ok(v) {
        Ok(v)
    } else {
        Err(format!("{s} is out of range: {what}"))
    }
}

/// `--rate`: 0 (no pacing) or 1 to 10 million per second. A rate below one message a second
/// would make the default 20000 messages take more than five hours: refused.
fn parse_rate(s: &str) -> Result<f64, String> {
    parse_float(s, "expected 0 or 1 to 10000000 messages per second", |v| {
        v == 0.0 || (1.0..=1e7).contains(&v)
    })
}

/// Milliseconds from 0 to 60000.
fn parse_ms(s: &str) -> Result<f64, String> {
    parse_float(s, "expected 0 to 60000 milliseconds", |v| (0.0..=60_000.0).contains(&v))
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE (a librdkafka setting), got {s:?}")),
    }
}

impl Args {
    pub fn limits(&self) -> Limits {
        Limits {
            max_items: self.batch_size as usize,
            max_wait: Duration::from_millis(self.max_wait_ms),
            idle: self.idle_ms.map(Duration::from_millis),
        }
    }

    fn modes(&self) -> Vec<Mode> {
        match self.prefetch {
            Prefetch::On => vec![Mode::Prefetch],
            Prefetch::Off => vec![Mode::Sequential],
            Prefetch::Both => vec![Mode::Prefetch, Mode::Sequential],
        }
    }

    pub fn is_mock(&self) -> bool {
        self.brokers == "mock"
    }

    pub fn arrival(&self) -> Arrival {
        Arrival {
            messages: self.messages,
            rate: self.rate,
            burst_every: self.burst_every,
            burst_size: self.burst_size,
            gap: Duration::from_millis(self.gap_ms),
            fetch: Duration::from_secs_f64(self.fetch_ms / 1e3),
            fetch_size: self.fetch_size,
            customers: self.customers,
        }
    }

    pub fn kafka_options(&self) -> KafkaOptions {
        let mut opts = KafkaOptions::new(&self.brokers, &self.group, &self.topic, &self.output_topic);
        opts.extra = self.kafka_config.clone();
        opts
    }
}

/// What `run` did: the database it used and one outcome per run.
#[derive(Debug)]
pub struct Summary {
    pub database: String,
    pub outputs: Vec<String>,
    pub runs: Vec<Outcome>,
    /// `--brokers mock`: what the group did, one line per fact.
    pub notes: Vec<String>,
    /// `--metrics-addr`: where the endpoint listened.
    pub metrics_addr: Option<SocketAddr>,
}

/// Connects, seeds, and runs the service once per mode. `shutdown` resolving stops intake
/// (Ctrl-C or SIGTERM in the binary); whatever was already pulled is still written and committed.
pub async fn run(args: &Args, shutdown: impl Future<Output = ()> + Send) -> Result<Summary> {
    let kafka = args.source == SourceKind::Kafka || args.is_mock();
    if kafka && !args.is_mock() && args.prefetch == Prefetch::Both {
        bail!(
            "--prefetch both needs the synthetic source or --brokers mock: a Kafka run consumes its messages; use --prefetch on or off"
        );
    }
    let latency = args
        .db_latency_ms
        .unwrap_or(if args.database_url.starts_with("sqlite:") {
            5.0
        } else {
            0.0
        });
    let db = Db::connect_with_timeout(&args.database_url, Duration::from_millis(args.db_timeout_ms))
        .await?
        .with_latency(Duration::from_secs_f64(latency / 1e3));
    db.seed(args.customers).await?;
    let db = Arc::new(db);
    let metrics = Arc::new(Metrics::default());
    let mut summary = Summary {
        database: format!("{} (+{latency} ms per query)", db.describe()),
        outputs: Vec::new(),
        runs: Vec::new(),
        notes: Vec::new(),
        metrics_addr: None,
    };
    let server = match args.metrics_addr {
        Some(addr) => {
            let (bound, task) = metrics::serve(addr, Arc::clone(&metrics)).await?;
            tracing::info!("metrics at http://{bound}/metrics");
            summary.metrics_addr = Some(bound);
            Some(task)
        }
        None => None,
    };
    // A stop during the first run also ends the whole command: the second run is skipped.
    let shutdown = futures_util::FutureExt::shared(Box::pin(shutdown));
    for mode in args.modes() {
        let before = db.queries();
        let ctx = RunCtx {
            args,
            db: &db,
            metrics: &metrics,
            mode,
        };
        let mut outcome = if args.is_mock() {
            let (outcome, notes) = mock::run(&ctx, shutdown.clone()).await?;
            summary
                .outputs
                .push(format!("topic {} (mock)", mock::output_topic(args, mode)));
            summary.notes.extend(notes);
            outcome
        } else if kafka {
            summary.outputs.push(format!("topic {}", args.output_topic));
            let limit = (args.messages > 0).then_some(args.messages);
            run_member(&ctx, &args.kafka_options(), "0", limit, |s| s, shutdown.clone()).await?
        } else {
            run_synthetic(&ctx, shutdown.clone(), &mut summary.outputs).await?
        };
        outcome.queries = db.queries() - before;
        summary.runs.push(outcome);
        if futures_util::FutureExt::now_or_never(shutdown.clone()).is_some() {
            break;
        }
    }
    if let Some(task) = server {
        task.abort();
    }
    Ok(summary)
}

/// What every run shares.
pub struct RunCtx<'a> {
    pub args: &'a Args,
    pub db: &'a Arc<Db>,
    pub metrics: &'a Arc<Metrics>,
    pub mode: Mode,
}

impl RunCtx<'_> {
    fn service<S: Sink, C: Commit>(&self, sink: S, commit: C, expected: Option<u64>, instance: &str) -> Service<S, C> {
        let mut service = Service::new(Arc::clone(self.db), sink, commit, expected, self.args.quiet)
            .with_metrics(Arc::clone(self.metrics), instance);
        service.db_backoff.give_up_after = Duration::from_secs(self.args.db_retry_s);
        service
    }
}

async fn run_synthetic(
    ctx: &RunCtx<'_>,
    shutdown: impl Future<Output = ()> + Send,
    outputs: &mut Vec<String>,
) -> Result<Outcome> {
    let args = ctx.args;
    let dir = args
        .out_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("prefetch-batch-enrich"));
    std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let name = if ctx.mode == Mode::Prefetch {
        "enriched-on.jsonl"
    } else {
        "enriched-off.jsonl"
    };
    let sink = JsonLines::create(&dir.join(name)).await?;
    outputs.push(sink.path().display().to_string());
    let label = if ctx.mode == Mode::Prefetch { "on" } else { "off" };
    let mut service = ctx.service(sink, NoCommit, Some(args.messages), label);
    pipeline::run(args.arrival().stream(), args.limits(), ctx.mode, &mut service, shutdown).await
}

/// Runs one member of the consumer group until `shutdown` fires, the source ends (after `limit`
/// messages) or an error. The member then leaves the group; what it did not write stays
/// uncommitted. `wrap` may wrap the Kafka sink (the tests inject faults there).
pub async fn run_member<S: Sink>(
    ctx: &RunCtx<'_>,
    opts: &KafkaOptions,
    instance: &str,
    limit: Option<u64>,
    wrap: impl FnOnce(KafkaSink) -> S,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<Outcome> {
    let sink = wrap(KafkaSink::new(opts).await?);
    let (member, source, commit) = kafka::join(opts, instance, Arc::clone(ctx.metrics), limit).await?;
    let mut service = ctx.service(sink, commit, limit, instance);
    let result = pipeline::run(source, ctx.args.limits(), ctx.mode, &mut service, shutdown).await;
    drop(service);
    let closed = member.close().await;
    let outcome = result?;
    closed?;
    Ok(outcome)
}
