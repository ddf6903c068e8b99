//! The Prometheus endpoint, scraped over loopback during and after a run on the mock cluster:
//! its numbers must be the run's.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::kafka::{Env, INPUT, OUTPUT, produce, wait_committed};
use examples_tokio::app::run_member;
use examples_tokio::batching::FlushReason;
use examples_tokio::metrics;
use examples_tokio::mock::{Cluster, options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PARTITIONS: i32 = 3;
const N: u64 = 900;

/// GET `path`; returns the status line and the body.
async fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).await.unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// Sample name with labels -> value.
fn parse(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_shows_the_runs_numbers() {
    let cluster = Cluster::start(&[(INPUT, PARTITIONS), (OUTPUT, PARTITIONS)]).unwrap();
    produce(&cluster.bootstrap, PARTITIONS, 0, N).await;
    let env = Env::new(&[]).await;
    let (addr, server) = metrics::serve("127.0.0.1:0".parse().unwrap(), Arc::clone(&env.metrics))
        .await
        .unwrap();

    let opts = options(&cluster.bootstrap, "enrich-metrics", INPUT, OUTPUT);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let ctx = env.ctx();
    let run = run_member(&ctx, &opts, "0", None, |s| s, async {
        let _ = stop_rx.await;
    });
    let check = async {
        wait_committed(&cluster.bootstrap, "enrich-metrics", PARTITIONS, N as i64).await;
        // Everything committed: once librdkafka's statistics come in (every second), the lag of
        // each partition is 0.
        let mut lags = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while lags.len() < PARTITIONS as usize || lags.iter().any(|l| *l != 0.0) {
            assert!(tokio::time::Instant::now() < deadline, "lag still {lags:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            let (_, body) = get(addr, "/metrics").await;
            let m = parse(&body);
            lags = (0..PARTITIONS)
                .filter_map(|p| m.get(&format!("enrich_consumer_lag{{instance=\"0\",partition=\"{p}\"}}")))
                .copied()
                .collect();
        }
        assert_eq!(env.metrics.assigned("0"), PARTITIONS as usize);
        let _ = stop_tx.send(());
    };
    let (outcome, ()) = tokio::join!(run, check);
    let outcome = outcome.unwrap();
    assert_eq!(outcome.items, N);

    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let m = parse(&body);
    let v = |k: &str| *m.get(k).unwrap_or_else(|| panic!("{k} missing in:\n{body}"));
    for reason in FlushReason::ALL {
        let r = format!("{reason:?}").to_lowercase();
        assert_eq!(
            v(&format!("enrich_batches_total{{instance=\"0\",reason=\"{r}\"}}")),
            outcome.batches_for(reason) as f64,
            "{r}"
        );
    }
    assert_eq!(v("enrich_batch_items_total{instance=\"0\"}"), N as f64);
    assert_eq!(v("enrich_messages_written_total"), N as f64);
    assert_eq!(
        v("enrich_batch_max_age_seconds{instance=\"0\"}"),
        outcome.max_age.unwrap().as_secs_f64()
    );
    assert!(v("enrich_consumer_waited_seconds_total{instance=\"0\"}") > 0.0);
    assert!(m.contains_key("enrich_producer_waited_seconds_total{instance=\"0\"}"));
    assert_eq!(v("enrich_query_duration_seconds_count"), outcome.queries as f64);
    assert!(v("enrich_query_duration_seconds{quantile=\"0.5\"}") > 0.0);
    // One commit per batch (none failed in this run).
    assert_eq!(
        v("enrich_commit_duration_seconds_count"),
        outcome.total_batches() as f64
    );
    assert_eq!(v("enrich_commits_total"), outcome.total_batches() as f64);
    for kind in ["db", "commit", "produce"] {
        assert_eq!(v(&format!("enrich_errors_total{{kind=\"{kind}\"}}")), 0.0, "{kind}");
    }
    // The member left: its partitions are released.
    assert_eq!(v("enrich_assigned_partitions{instance=\"0\"}"), 0.0);

    let (status, _) = get(addr, "/nope").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    server.abort();
}
