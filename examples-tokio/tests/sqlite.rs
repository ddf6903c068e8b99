//! The service end to end on SQLite: no server needed.

mod common;

use std::process::Command;

use clap::Parser;
use examples_tokio::app::{self, Args};
use examples_tokio::batching::FlushReason;

fn args(extra: &[&str]) -> Args {
    let base = ["enrich", "--quiet", "--customers", "500", "--db-latency-ms", "0"];
    Args::try_parse_from(base.iter().chain(extra)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_enriched_once_with_one_query_per_batch() {
    let dir = common::temp_dir("sqlite");
    let db = format!("sqlite:{}", dir.join("customers.db").display());
    let out = dir.display().to_string();
    let args = args(&[
        "--messages",
        "3000",
        "--rate",
        "0",
        "--batch-size",
        "100",
        "--database-url",
        &db,
        "--out-dir",
        &out,
    ]);
    let summary = app::run(&args, std::future::pending()).await.unwrap();
    assert_eq!(summary.runs.len(), 2, "prefetch on, then off");
    for run in &summary.runs {
        assert_eq!(run.items, 3000);
        assert_eq!(run.queries, run.total_batches(), "one query per batch");
        // A backlog: every batch but the last is full.
        assert_eq!(run.batches_for(FlushReason::Full), 30);
    }
    common::check_output(&dir.join("enriched-on.jsonl"), 3000, 500);
    common::check_output(&dir.join("enriched-off.jsonl"), 3000, 500);
}

#[tokio::test]
async fn unsupported_database_url_is_a_clear_error() {
    let err = app::run(
        &args(&["--database-url", "mysql://localhost/x"]),
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("unsupported database URL mysql://localhost/x"),
        "{err:#}"
    );
}

#[tokio::test]
async fn unreachable_postgres_is_a_clear_error() {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let url = "postgres://nobody:secret@127.0.0.1:1/none";
    let err = app::run(&args(&["--database-url", url]), std::future::pending())
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("cannot connect to PostgreSQL at postgres://nobody:***@127.0.0.1:1/none"),
        "{msg}"
    );
    assert!(!msg.contains("secret"), "password leaked: {msg}");
}

#[test]
fn bad_flag_and_bad_url_exit_non_zero_without_panic() {
    let exe = env!("CARGO_BIN_EXE_enrich");
    let out = Command::new(exe).args(["--batch-size", "1000"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--batch-size"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let out = Command::new(exe)
        .args(["--quiet", "--database-url", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("enrich: error: unsupported database URL nope"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout_not_a_hang() {
    // Accepts connections and never says a word: the handshake must give up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    let url = format!("postgres://u:p@127.0.0.1:{port}/db");
    let err = examples_tokio::db::Db::connect_with_timeout(&url, std::time::Duration::from_millis(300))
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("PostgreSQL handshake timed out after 300ms"), "{msg}");
    assert!(
        msg.contains(&format!(
            "cannot connect to PostgreSQL at postgres://u:***@127.0.0.1:{port}/db"
        )),
        "{msg}"
    );
}
