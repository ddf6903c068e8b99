//! The service end to end on PostgreSQL. Needs a server: `scripts/ci-tokio.sh` starts a
//! throw-away one and sets `PG_TEST_URL`. Run with `--ignored`; with no server it FAILS.

mod common;

use clap::Parser;
use examples_tokio::app::{self, Args};
use examples_tokio::db::{Db, seeded_customer};

fn pg_url() -> String {
    std::env::var("PG_TEST_URL")
        .expect("PG_TEST_URL is not set: this test needs a PostgreSQL server (scripts/ci-tokio.sh starts one)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set PG_TEST_URL (scripts/ci-tokio.sh starts one)"]
async fn postgres_enriches_every_message_once_with_one_query_per_batch() {
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
