//! The batcher: the sensor channel feeds a prefetching `prefetch_batch::Slot`, the uplink
//! task takes batches from it.

use core::time::Duration;

use embassy_executor::Spawner;
use embassy_sync::channel;
use embassy_time::Timer;
use prefetch_batch::embassy::{StaticProducer, StaticReceiver};
use prefetch_batch::timer::{EmbassyTimer, Span};
use prefetch_batch::{Config, FlushReason, Slot};

use crate::check::Checker;
use crate::scenario::{self, TOTAL};
use crate::{CAPACITY, CHANNEL_DEPTH, Cs, Io, READINGS, Reading, say};

/// The batcher's slot type: the only place its parameters are spelled out.
pub type Readings = Slot<Cs, Reading, CAPACITY, EmbassyTimer>;

/// The batcher state: two buffers of `CAPACITY` readings and the handoff between them. An empty
/// slot is zero bits, so this sits in `.bss`.
pub static SLOT: Readings = Slot::new(EmbassyTimer);

/// The producer half, as a task that takes it would name it (`firmware`'s `sizes` bin measures
/// such tasks); [`run`] awaits it in the task that splits the slot instead.
pub type Batcher = StaticProducer<Readings, channel::Receiver<'static, Cs, Reading, CHANNEL_DEPTH>>;

/// The receiver half, as the uplink task names it.
pub type Batches = StaticReceiver<Readings>;

/// A batch is emitted when it is full, or 50 ms after its first reading arrived.
pub const MAX_WAIT: Duration = Duration::from_millis(50);

/// The configuration, checked when the firmware is built: a bad one does not compile.
pub const CONFIG: Config<CAPACITY> = Config::new().max_wait(MAX_WAIT).checked::<EmbassyTimer>();

/// How long "sending" a batch takes: a fixed cost plus a little per reading.
pub fn send_time(len: usize) -> embassy_time::Duration {
    embassy_time::Duration::from_millis(4 + len as u64)
}

/// Splits the slot, spawns the sensor and uplink tasks, and runs the batcher (the producer) in
/// the calling task until the sensor closes the slot: the producer is stored once, in the
/// caller's future, with no task of its own.
pub async fn run(spawner: Spawner, io: Io) {
    say!(
        io,
        "start: {TOTAL} readings, batches of up to {CAPACITY}, max wait {} ms",
        MAX_WAIT.as_millis()
    );
    // The configuration was checked at build time; the only failure left is a slot whose
    // earlier halves are alive, which this firmware never has. Nothing is formatted for it.
    let Ok((producer, batches)) = SLOT.split(READINGS.receiver(), CONFIG) else {
        say!(io, "start: the batcher's slot is in use");
        (io.exit)(2)
    };
    spawner.spawn(uplink(batches, io).unwrap());
    spawner.spawn(sensor(io).unwrap());
    producer.await // the producer is the future
}

#[embassy_executor::task]
async fn sensor(io: Io) {
    scenario::play(io, || SLOT.flush()).await;
    // Every reading is in the batcher now: it emits what it holds and stops.
    SLOT.close();
}

#[embassy_executor::task]
async fn uplink(mut batches: Batches, io: Io) {
    let mut check = Checker::new(io);
    while let Some(batch) = batches.recv().await {
        let info = batch.info();
        check.batch(
            &batch,
            info.reason,
            info.age_at(embassy_time::Instant::now()).to_duration(),
        );
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
        stats.producer_waited().as_millis()
    );
    (io.exit)(check.finish(TOTAL))
}
