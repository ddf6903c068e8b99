//! The `enrich` command line and its wiring: source, database, sink, one or two runs.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};

use crate::db::Db;
use crate::kafka::{self, KafkaCommit, KafkaSink};
use crate::pipeline::{self, CAPACITY, Mode, NoCommit, Outcome, Service};
use crate::sequential::Limits;
use crate::sink::JsonLines;
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
#[derive(Debug, Clone, Parser)]
#[command(name = "enrich", version)]
pub struct Args {
    /// Where messages come from.
    #[arg(long, value_enum, default_value_t = SourceKind::Synthetic)]
    pub source: SourceKind,
    /// Messages to generate (synthetic), or to consume before stopping (kafka; 0 = until Ctrl-C).
    #[arg(long, default_value_t = 20_000)]
    pub messages: u64,
    /// Synthetic: steady arrival rate, messages per second (0 = a backlog, no pacing).
    #[arg(long, default_value_t = 20_000.0)]
    pub rate: f64,
    /// Synthetic: a burst after every this many steady messages.
    #[arg(long, default_value_t = 4_000)]
    pub burst_every: u64,
    /// Synthetic: messages in a burst, all arriving at once.
    #[arg(long, default_value_t = 1_000)]
    pub burst_size: u64,
    /// Synthetic: silence after each burst, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub gap_ms: u64,
    /// Synthetic: what pulling costs, as from a remote queue: a round trip of this many
    /// milliseconds per --fetch-size messages (0: pulling is free).
    #[arg(long, default_value_t = 2.0)]
    pub fetch_ms: f64,
    /// Synthetic: messages per fetch round trip.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub fetch_size: u64,
    /// Customers seeded in the database (about 5% of messages name an unknown one).
    #[arg(long, default_value_t = 10_000)]
    pub customers: i64,
    /// sqlite::memory:, sqlite:PATH, or postgres://user@host:port/db.
    #[arg(long, default_value = "sqlite::memory:")]
    pub database_url: String,
    /// Delay added to each query, standing in for the network round trip an embedded SQLite does
    /// not have. Default: 5 for SQLite, 0 for PostgreSQL.
    #[arg(long)]
    pub db_latency_ms: Option<f64>,
    /// Items per batch at most (1 to 256).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=CAPACITY as i64))]
    pub batch_size: u16,
    /// A batch is emitted at the latest this long after its first item arrived.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_wait_ms: u64,
    /// Also emit a batch when no message arrived for this long.
    #[arg(long)]
    pub idle_ms: Option<u64>,
    /// Fill the next batch while the current one is processed.
    #[arg(long, value_enum, default_value_t = Prefetch::Both)]
    pub prefetch: Prefetch,
    /// Synthetic: where the JSON-lines output goes (enriched-on.jsonl, enriched-off.jsonl).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Kafka: bootstrap servers.
    #[arg(long, default_value = "localhost:9092")]
    pub brokers: String,
    /// Kafka: the input topic.
    #[arg(long, default_value = "orders")]
    pub topic: String,
    /// Kafka: the consumer group.
    #[arg(long, default_value = "enrich")]
    pub group: String,
    /// Kafka: the output topic.
    #[arg(long, default_value = "orders-enriched")]
    pub output_topic: String,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
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
}

/// What `run` did: the database it used and one outcome per run.
#[derive(Debug)]
pub struct Summary {
    pub database: String,
    pub outputs: Vec<String>,
    pub runs: Vec<Outcome>,
}

/// Connects, seeds, and runs the service once per mode. `shutdown` resolving stops intake
/// (Ctrl-C in the binary); whatever was already pulled is still written and committed.
pub async fn run(args: &Args, shutdown: impl Future<Output = ()> + Send) -> Result<Summary> {
    if args.source == SourceKind::Kafka && args.prefetch == Prefetch::Both {
        bail!(
            "--prefetch both needs the synthetic source: a Kafka run consumes its messages; use --prefetch on or off"
        );
    }
    let latency = args
        .db_latency_ms
        .unwrap_or(if args.database_url.starts_with("sqlite:") {
            5.0
        } else {
            0.0
        });
    if !(0.0..=60_000.0).contains(&latency) {
        bail!("--db-latency-ms must be between 0 and 60000, got {latency}");
    }
    if !(0.0..=60_000.0).contains(&args.fetch_ms) || !(0.0..=1e7).contains(&args.rate) {
        bail!("--fetch-ms must be between 0 and 60000 and --rate between 0 and 10000000");
    }
    let db = Db::connect(&args.database_url)
        .await?
        .with_latency(Duration::from_secs_f64(latency / 1e3));
    db.seed(args.customers).await?;
    let db = Arc::new(db);
    let mut summary = Summary {
        database: format!("{} (+{latency} ms per query)", db.describe()),
        outputs: Vec::new(),
        runs: Vec::new(),
    };
    // Ctrl-C during the first run also ends the whole command: the second run is skipped.
    let shutdown = futures_util::FutureExt::shared(Box::pin(shutdown));
    for mode in args.modes() {
        let before = db.queries();
        let mut outcome = match args.source {
            SourceKind::Synthetic => run_synthetic(args, &db, mode, shutdown.clone(), &mut summary.outputs).await?,
            SourceKind::Kafka => {
                summary.outputs.push(format!("topic {}", args.output_topic));
                run_kafka(args, &db, mode, shutdown.clone()).await?
            }
        };
        outcome.queries -= before;
        summary.runs.push(outcome);
        if futures_util::FutureExt::now_or_never(shutdown.clone()).is_some() {
            break;
        }
    }
    Ok(summary)
}

async fn run_synthetic(
    args: &Args,
    db: &Arc<Db>,
    mode: Mode,
    shutdown: impl Future<Output = ()> + Send,
    outputs: &mut Vec<String>,
) -> Result<Outcome> {
    let dir = args
        .out_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("prefetch-batch-enrich"));
    std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let name = if mode == Mode::Prefetch {
        "enriched-on.jsonl"
    } else {
        "enriched-off.jsonl"
    };
    let sink = JsonLines::create(&dir.join(name)).await?;
    outputs.push(sink.path().display().to_string());
    let arrival = Arrival {
        messages: args.messages,
        rate: args.rate,
        burst_every: args.burst_every,
        burst_size: args.burst_size,
        gap: Duration::from_millis(args.gap_ms),
        fetch: Duration::from_secs_f64(args.fetch_ms / 1e3),
        fetch_size: args.fetch_size,
        customers: args.customers,
    };
    let mut service = Service::new(Arc::clone(db), sink, NoCommit, Some(args.messages), args.quiet);
    pipeline::run(arrival.stream(), args.limits(), mode, &mut service, shutdown).await
}

async fn run_kafka(
    args: &Args,
    db: &Arc<Db>,
    mode: Mode,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<Outcome> {
    let consumer = kafka::consumer(&args.brokers, &args.group, &args.topic).await?;
    let sink = KafkaSink::new(&args.brokers, &args.output_topic)?;
    let commit = KafkaCommit::new(Arc::clone(&consumer), &args.topic);
    let limit = (args.messages > 0).then_some(args.messages);
    let mut service = Service::new(Arc::clone(db), sink, commit, limit, args.quiet);
    pipeline::run(
        kafka::source(consumer, limit),
        args.limits(),
        mode,
        &mut service,
        shutdown,
    )
    .await
}
