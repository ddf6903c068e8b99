//! The service end to end on PostgreSQL. Needs a server: `scripts/ci-tokio.sh` starts a
//! throw-away one and sets `PG_TEST_URL`. Run with `--ignored`; with no server it FAILS.

mod common;

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use examples_tokio::app::{self, Args};
use examples_tokio::db::{Db, seeded_customer};
use examples_tokio::pipeline::{self, Mode, NoCommit, Service};
use examples_tokio::sequential::Limits;
use examples_tokio::sink::{Enriched, Sink};
use examples_tokio::source::Arrival;

/// The tests share one server, and one of them restarts it: they take turns.
static SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn pg_url() -> String {
    std::env::var("PG_TEST_URL")
        .expect("PG_TEST_URL is not set: this test needs a PostgreSQL server (scripts/ci-tokio.sh starts one)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set PG_TEST_URL (scripts/ci-tokio.sh starts one)"]
async fn postgres_enriches_every_message_once_with_one_query_per_batch() {
    let _turn = SERVER.lock().await;
    let url = pg_url();
    let dir = common::temp_dir("postgres");
    let out = dir.display().to_string();
    let args = Args::try_parse_from([
        "enrich",
        "--quiet",
        "--customers",
        "500",
        "--messages",
        "3000",
        "--rate",
        "0",
        "--fetch-ms",
        "0",
        "--batch-size",
        "100",
        "--database-url",
        &url,
        "--out-dir",
        &out,
    ])
    .unwrap();
    let summary = match app::run(&args, std::future::pending()).await {
        Ok(s) => s,
        Err(e) => panic!("PostgreSQL at PG_TEST_URL is not usable: {e:#}"),
    };
    assert!(summary.database.starts_with("PostgreSQL"), "{}", summary.database);
    assert_eq!(summary.runs.len(), 2);
    for run in &summary.runs {
        assert_eq!(run.items, 3000);
        assert_eq!(run.queries, run.total_batches(), "one query per batch");
    }
    common::check_output(&dir.join("enriched-on.jsonl"), 3000, 500);
    common::check_output(&dir.join("enriched-off.jsonl"), 3000, 500);

    // The SQL seed and the Rust one agree, row for row; unknown ids come back absent.
    let db = Db::connect(&url).await.unwrap();
    let ids: Vec<i64> = (1..=510).collect();
    let rows = db.lookup(&ids).await.unwrap();
    assert_eq!(rows.len(), 500);
    assert!((1..=500).all(|id| rows[&id] == seeded_customer(id)));
    assert_eq!(db.queries(), 1);
}

/// Runs `PG_RESTART_CMD` (in the background) right after the `after`-th write.
struct RestartAfter {
    inner: common::Recording,
    writes: u32,
    after: u32,
    restart: Option<tokio::task::JoinHandle<std::process::ExitStatus>>,
}

impl Sink for RestartAfter {
    async fn write(&mut self, records: &[Enriched]) -> anyhow::Result<()> {
        self.inner.write(records).await?;
        self.writes += 1;
        if self.writes == self.after {
            let cmd = std::env::var("PG_RESTART_CMD")
                .expect("PG_RESTART_CMD is not set: the command that restarts the server at PG_TEST_URL");
            self.restart = Some(tokio::task::spawn_blocking(move || {
                std::process::Command::new("sh").args(["-c", &cmd]).status().unwrap()
            }));
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set PG_TEST_URL and PG_RESTART_CMD (scripts/ci-tokio.sh sets both)"]
async fn postgres_restart_mid_run_is_retried_and_nothing_is_lost() {
    let _turn = SERVER.lock().await;
    let url = pg_url();
    let db = Db::connect(&url).await.unwrap();
    db.seed(500).await.unwrap();
    let sink = RestartAfter {
        inner: common::Recording::default(),
        writes: 0,
        after: 3,
        restart: None,
    };
    let batches = Arc::clone(&sink.inner.batches);
    let mut service = Service::new(Arc::new(db), sink, NoCommit, None, true);
    let arrival = Arrival {
        messages: 3000,
        rate: 2000.0,
        burst_every: 0,
        burst_size: 0,
        gap: Duration::ZERO,
        fetch: Duration::ZERO,
        fetch_size: 1,
        customers: 500,
    };
    let limits = Limits {
        max_items: 100,
        max_wait: Duration::from_millis(20),
        idle: None,
    };
    let outcome = pipeline::run(
        arrival.stream(),
        limits,
        Mode::Prefetch,
        &mut service,
        std::future::pending(),
    )
    .await
    .expect("the service rides out the restart");
    let restart = service.sink.restart.take().expect("the restart ran").await.unwrap();
    assert!(restart.success(), "PG_RESTART_CMD failed: {restart}");
    assert!(outcome.db_retries >= 1, "the restart broke the connection: {outcome:?}");
    let seqs = common::Recording::seqs(&batches);
    assert_eq!(seqs, (0..3000).collect::<Vec<_>>(), "every message once, in order");
}
