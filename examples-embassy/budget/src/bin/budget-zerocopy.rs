//! Size budget, the prefetching reference: the same job as `budget-hand`, with the next batch
//! filled while the consumer works on the current one, written by hand over `embassy-sync`'s
//! `zerocopy_channel` (two batch buffers; the filling loop in `main` and a consuming task, as
//! `budget-crate` has). What it adds over `budget-hand` is what prefetching costs on this runtime
//! before any of prefetch-batch's rules (close, flush, idle, open batches, errors).
#![no_std]
#![no_main]

use budget::{Cs, MAX_WAIT_MS, N, READINGS, Tally};
use embassy_executor::Spawner;
use embassy_futures::select::{Either, select};
use embassy_sync::zerocopy_channel::{Channel, Receiver, Sender};
use embassy_time::{Duration, Instant, Timer};
use heapless::Vec;
use static_cell::StaticCell;

type Batch = Vec<u32, N>;
static BUFFERS: StaticCell<[Batch; 2]> = StaticCell::new();
static CHANNEL: StaticCell<Channel<'static, Cs, Batch>> = StaticCell::new();

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    budget::start(spawner);
    let Some(buffers) = BUFFERS.try_init([Vec::new(), Vec::new()]) else {
        budget::panic()
    };
    let Some(channel) = CHANNEL.try_init(Channel::new(buffers)) else {
        budget::panic()
    };
    let (tx, rx) = channel.split();
    match consumer(rx) {
        Ok(c) => spawner.spawn(c),
        Err(_) => budget::panic(),
    }
    batcher(tx).await
}

/// The filling loop, run in `main`.
async fn batcher(mut tx: Sender<'static, Cs, Batch>) -> ! {
    loop {
        let batch = tx.send().await;
        batch.clear();
        // budget-hand's loop, as written there (not shared: as a function of the library, it
        // would change budget-hand's own code, the reference, by 156 B).
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
        tx.send_done();
    }
}

#[embassy_executor::task]
async fn consumer(mut rx: Receiver<'static, Cs, Batch>) {
    let mut tally = Tally::new();
    loop {
        tally.batch(rx.receive().await);
        rx.receive_done();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    budget::panic()
}
