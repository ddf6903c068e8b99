//! Size budget, the reference half: batches of `N` readings with a deadline `MAX_WAIT_MS` after
//! the first, by a hand-written loop (a `heapless::Vec` and a select of the channel against a
//! timer). `budget-crate` does the same job with prefetch-batch; `size-report.sh` compares the two.
#![no_std]
#![no_main]

use budget::{MAX_WAIT_MS, N, READINGS, Tally};
use embassy_executor::Spawner;
use embassy_futures::select::{Either, select};
use embassy_time::{Duration, Instant, Timer};
use heapless::Vec;

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    budget::start(spawner);
    match consumer() {
        Ok(token) => spawner.spawn(token),
        Err(_) => budget::panic(),
    }
}

#[embassy_executor::task]
async fn consumer() {
    let mut tally = Tally::new();
    let mut batch: Vec<u32, N> = Vec::new();
    loop {
        let first = READINGS.receive().await;
        let deadline = Instant::now() + Duration::from_millis(MAX_WAIT_MS);
        let _ = batch.push(first);
        while !batch.is_full() {
            match select(READINGS.receive(), Timer::at(deadline)).await {
                Either::First(reading) => {
                    let _ = batch.push(reading);
                }
                Either::Second(()) => break,
            }
        }
        tally.batch(&batch);
        batch.clear();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    budget::panic()
}
