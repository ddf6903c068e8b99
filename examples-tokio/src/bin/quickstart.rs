//! The shortest useful program: a stream in, `prefetch_batches`, a loop over batches.
//!
//! `cargo run -p examples-tokio --bin quickstart`

use std::time::Duration;

use futures_util::StreamExt;
use prefetch_batch::{BatchExt, Config};

#[tokio::main]
async fn main() -> Result<(), prefetch_batch::ConfigError> {
    // Any `Stream` will do: here 1000 numbers, arriving in small bursts.
    let source = futures_util::stream::iter(0..1000u32).then(|x| async move {
        if x % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        x
    });

    // Batches of up to 64 items, emitted at the latest 5 ms after their first item arrived.
    // A task fills the next batch while the loop below works on this one.
    let mut batches = source.prefetch_batches::<64>(Config::new().max_wait(Duration::from_millis(5)))?;

    while let Some(batch) = batches.next().await {
        // One round trip per batch (a database write, an HTTP call) instead of one per item.
        tokio::time::sleep(Duration::from_millis(1)).await;
        println!("{:>3} items, {:?}", batch.len(), batch.info.reason);
    }
    println!("{:?}", batches.slot().stats());
    Ok(())
}
