//! Size budget, the measured half: the same job as `budget-hand` (batches of `N` readings, a
//! deadline `MAX_WAIT_MS` after the first, each batch summed), done with prefetch-batch's
//! documented embassy pattern: a `static` slot, a producer task, a consumer task.
//! `size-report.sh` compares the two and checks the budget.
#![no_std]
#![no_main]

use board::budget::{self, Cs, DEPTH, MAX_WAIT_MS, N, READINGS, Tally};
use embassy_executor::Spawner;

// ---- prefetch-batch usage, current API (issue 10 will change it): keep it this small. ----
use prefetch_batch::{Config, Receiver, Slot, StaticProducer, timer::EmbassyTimer};
static SLOT: Slot<Cs, u32, N, EmbassyTimer> = Slot::new(EmbassyTimer);
type Batcher = StaticProducer<Cs, u32, N, EmbassyTimer, embassy_sync::channel::Receiver<'static, Cs, u32, DEPTH>>;
type Batches = Receiver<&'static Slot<Cs, u32, N, EmbassyTimer>>;

#[embassy_executor::task]
async fn batcher(producer: Batcher) {
    producer.run().await
}

fn split() -> (Batcher, Batches) {
    let config = Config::new().max_wait(core::time::Duration::from_millis(MAX_WAIT_MS));
    SLOT.split(READINGS.receiver(), config).unwrap()
}
// ---- end of prefetch-batch usage (plus `batches.next()` below). ----

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    budget::start(spawner);
    let (producer, batches) = split();
    match (batcher(producer), consumer(batches)) {
        (Ok(b), Ok(c)) => {
            spawner.spawn(b);
            spawner.spawn(c);
        }
        _ => budget::panic(),
    }
}

#[embassy_executor::task]
async fn consumer(mut batches: Batches) {
    let mut tally = Tally::new();
    while let Some(batch) = batches.next().await {
        tally.batch(&batch);
    }
    budget::panic() // the channel never ends, so neither do the batches
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    budget::panic()
}
