//! The batcher: the sensor channel feeds a prefetching `prefetch_batch::Slot`, the uplink
//! task takes batches from it.

use core::time::Duration;

use embassy_executor::Spawner;
use embassy_sync::channel;
use embassy_time::Timer;
use prefetch_batch::timer::{EmbassyTimer, Span};
use prefetch_batch::{Config, FlushReason, Slot, StaticProducer};

use crate::check::Checker;
use crate::scenario::{self, TOTAL};
use crate::{CAPACITY, CHANNEL_DEPTH, Cs, Io, READINGS, Reading, say};

/// The batcher state: two buffers of `CAPACITY` readings and the handoff between them.
pub static SLOT: Slot<Cs, Reading, CAPACITY, EmbassyTimer> = Slot::new(EmbassyTimer);

/// The producer half, as the batcher task names it.
pub type Batcher =
    StaticProducer<Cs, Reading, CAPACITY, EmbassyTimer, channel::Receiver<'static, Cs, Reading, CHANNEL_DEPTH>>;

/// The receiver half, as the uplink task names it.
pub type Batches = prefetch_batch::Receiver<&'static Slot<Cs, Reading, CAPACITY, EmbassyTimer>>;

/// A batch is emitted when it is full, or 50 ms after its first reading arrived.
pub const MAX_WAIT: Duration = Duration::from_millis(50);

/// How long "sending" a batch takes: a fixed cost plus a little per reading.
pub fn send_time(len: usize) -> embassy_time::Duration {
    embassy_time::Duration::from_millis(4 + len as u64)
}

/// Splits the slot and spawns the sensor, batcher and uplink tasks.
pub fn start(spawner: Spawner, io: Io) {
    say!(
        io,
        "start: {TOTAL} readings, batches of up to {CAPACITY}, max wait {} ms",
        MAX_WAIT.as_millis()
    );
    // Not `unwrap()`: formatting a `ConfigError` (it holds `Duration`s) costs about 2.5 KB of
    // flash, for an error this constant configuration cannot have.
    let Ok((producer, batches)) = SLOT.split(READINGS.receiver(), Config::new().max_wait(MAX_WAIT)) else {
        say!(io, "start: batcher configuration rejected");
        (io.exit)(2)
    };
    spawner.spawn(batcher(producer).unwrap());
    spawner.spawn(uplink(batches, io).unwrap());
    spawner.spawn(sensor(io).unwrap());
}

#[embassy_executor::task]
async fn sensor(io: Io) {
    scenario::play(io, || SLOT.flush()).await;
    // Every reading is in the batcher now: it emits what it holds and stops.
    SLOT.close();
}

#[embassy_executor::task]
async fn batcher(producer: Batcher) {
    producer.run().await
}

#[embassy_executor::task]
async fn uplink(mut batches: Batches, io: Io) {
    let mut check = Checker::new(io);
    while let Some(batch) = batches.next().await {
        let info = batch.info();
        check.batch(&batch, info.reason, info.age.to_duration());
        Timer::after(send_time(batch.len())).await;
        // Dropping the guard hands the buffer back to the batcher.
    }
    let stats = SLOT.stats();
    say!(
        io,
        "stats: {} batches (full {}, deadline {}, flush {}, close {}), batcher waited {} ms for the uplink",
        stats.total_batches(),
        stats.batches_for(FlushReason::Full),
        stats.batches_for(FlushReason::Deadline),
        stats.batches_for(FlushReason::Flush),
        stats.batches_for(FlushReason::Close),
        stats.producer_waited.as_millis()
    );
    (io.exit)(check.finish(TOTAL))
}
