//! Size budget, the measured half: the same job as `budget-hand` (batches of `N` readings, a
//! deadline `MAX_WAIT_MS` after the first, each batch summed), done with prefetch-batch's
//! documented embassy pattern: a `static` slot, a producer task, a consumer task.
//! `size-report.sh` compares the two and checks the budget.
#![no_std]
#![no_main]

use board::budget::{self, Cs, DEPTH, MAX_WAIT_MS, N, READINGS, Tally};
use embassy_executor::Spawner;

// ---- prefetch-batch usage: the documented embassy pattern. ----
use prefetch_batch::embassy::{StaticProducer, StaticReceiver};
use prefetch_batch::{Config, Slot, timer::EmbassyTimer};
type Readings = Slot<Cs, u32, N, EmbassyTimer>;
static SLOT: Readings = Slot::new(EmbassyTimer);
const CONFIG: Config<N> = Config::new()
    .max_wait(core::time::Duration::from_millis(MAX_WAIT_MS))
    .checked::<EmbassyTimer>();
type Batcher = StaticProducer<Readings, embassy_sync::channel::Receiver<'static, Cs, u32, DEPTH>>;
type Batches = StaticReceiver<Readings>;

#[embassy_executor::task]
async fn batcher(producer: Batcher) {
    producer.await
}

fn split() -> Option<(Batcher, Batches)> {
    SLOT.split(READINGS.receiver(), CONFIG).ok()
}
// ---- end of prefetch-batch usage (plus `batches.recv()` below). ----

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    budget::start(spawner);
    let Some((producer, batches)) = split() else { budget::panic() };
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
    while let Some(batch) = batches.recv().await {
        tally.batch(&batch);
    }
    budget::panic() // the channel never ends, so neither do the batches
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    budget::panic()
}
