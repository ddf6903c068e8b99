//! The enrich service. `cargo run --release -p examples-tokio --bin enrich`; `--help` for flags.

use std::process::ExitCode;

use clap::Parser;
use examples_tokio::app::{self, Args};
use examples_tokio::report;

#[tokio::main]
async fn main() -> ExitCode {
    // A bad flag: clap prints the error and usage and exits with code 2.
    let args = Args::parse();
    // First Ctrl-C: stop intake, write and commit what was pulled. Second: quit at once; nothing
    // unwritten was committed, so a Kafka source redelivers it.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nenrich: stopping: finishing the batches already pulled (Ctrl-C again to quit now)");
            let _ = stop_tx.send(());
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("enrich: quit");
                std::process::exit(130);
            }
        }
    });
    let shutdown = async move {
        // A dropped sender (no Ctrl-C handler) must not read as a shutdown.
        if stop_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    match app::run(&args, shutdown).await {
        Ok(summary) => {
            println!("database: {}", summary.database);
            println!("output:   {}", summary.outputs.join(", "));
            print!("{}", report::table(&summary.runs));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("enrich: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
