//! Size budget, the one-task driver: the same job as `budget-crate`, with prefetch-batch's
//! `for_each_batch_in` over the same `static` slot, producer and consumer in one task.
#![no_std]
#![no_main]

use budget::{Cs, MAX_WAIT_MS, N, READINGS, Tally};
use embassy_executor::Spawner;
use prefetch_batch::{BatchExt, Config, Slot, timer::EmbassyTimer};

static SLOT: Slot<Cs, u32, N, EmbassyTimer> = Slot::new(EmbassyTimer);
const CONFIG: Config<N> = Config::new()
    .max_wait(core::time::Duration::from_millis(MAX_WAIT_MS))
    .checked::<EmbassyTimer>();

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    budget::start(spawner);
    match consumer() {
        Ok(c) => spawner.spawn(c),
        _ => budget::panic(),
    }
}

#[embassy_executor::task]
async fn consumer() {
    let mut tally = Tally::new();
    let done = READINGS.receiver().for_each_batch_in(&SLOT, CONFIG, |batch| {
        tally.batch(&batch);
        async {}
    });
    let _ = done.await;
    budget::panic() // the channel never ends, so neither do the batches
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    budget::panic()
}
