//! Size budget, the measured half: the same job as `budget-hand` (batches of `N` readings, a
//! deadline `MAX_WAIT_MS` after the first, each batch summed), done with prefetch-batch's
//! documented embassy pattern: a `static` slot split in `main`, the consumer in a task, the
//! producer awaited in `main`. `size-report.sh` compares the two and checks the budget.
//!
//! Both firmwares run three tasks: `main`, the sensor, the consumer; here `main` does the
//! batching after it has spawned the others. The producer is stored once, in `main`'s future.
//! Awaiting it in a task of its own instead costs a `StaticCell` for it (a task that took it by
//! value would store it twice) and a task: 148 B more flash on thumbv7em, 132 B on thumbv6m, and
//! 56 B more static RAM (measured once, by editing this file).
#![no_std]
#![no_main]

use budget::{Cs, MAX_WAIT_MS, N, READINGS, Tally};
use embassy_executor::Spawner;

// ---- prefetch-batch usage: the documented embassy pattern. ----
use prefetch_batch::embassy::StaticReceiver;
use prefetch_batch::{Config, Slot, timer::EmbassyTimer};
type Readings = Slot<Cs, u32, N, EmbassyTimer>;
static SLOT: Readings = Slot::new(EmbassyTimer);
const CONFIG: Config<N> = Config::new()
    .max_wait(core::time::Duration::from_millis(MAX_WAIT_MS))
    .checked::<EmbassyTimer>();
type Batches = StaticReceiver<Readings>;
// ---- end of prefetch-batch usage (plus `split`, `producer.await` and `batches.recv()` below). ----

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    budget::start(spawner);
    let Ok((producer, batches)) = SLOT.split(READINGS.receiver(), CONFIG) else {
        budget::panic()
    };
    match consumer(batches) {
        Ok(c) => spawner.spawn(c),
        Err(_) => budget::panic(),
    }
    producer.await;
    budget::panic() // the channel never ends, so neither does the producer
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
