//! The enrich service. `cargo run --release -p examples-tokio --bin enrich`; `--help` for flags.
//! Logs go to stderr through `tracing`; `RUST_LOG` filters them (default `warn`; librdkafka's
//! own lines have the target `librdkafka`).

use std::process::ExitCode;

use clap::Parser;
use examples_tokio::app::{self, Args};
use examples_tokio::report;
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_writer(std::io::stderr)
        .init();
    // A bad flag: clap prints the error and usage and exits with code 2.
    let args = Args::parse();
    // First Ctrl-C or SIGTERM (what systemd and Kubernetes send): stop intake, write and commit
    // what was pulled, print the report. A second one: quit at once; nothing unwritten was
    // committed, so a Kafka source redelivers it.
    let (mut int, mut term) = match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        (Ok(i), Ok(t)) => (i, t),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("enrich: error: cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = int.recv() => "interrupt",
            _ = term.recv() => "SIGTERM",
        };
        eprintln!("\nenrich: {name}: finishing the batches already pulled (again to quit now)");
        let _ = stop_tx.send(());
        let code = tokio::select! {
            _ = int.recv() => 130,
            _ = term.recv() => 143,
        };
        eprintln!("enrich: quit");
        std::process::exit(code);
    });
    let shutdown = async move {
        // A dropped sender (no signal handler) must not read as a shutdown.
        if stop_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    match app::run(&args, shutdown).await {
        Ok(summary) => {
            println!("database: {}", summary.database);
            println!("output:   {}", summary.outputs.join(", "));
            print!("{}", report::table(&summary.runs));
            for note in &summary.notes {
                println!("{note}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("enrich: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
