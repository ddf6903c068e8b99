//! Running the halves on embassy: a `static` slot, the producer awaited where the slot is split,
//! the consumer in a task.
//!
//! Embassy tasks cannot be generic, so name the slot type once, put the slot in a `static`, and
//! let [`StaticReceiver`] (and [`StaticProducer`], for a task that takes the producer) name the
//! halves from it. A `const` configuration checked at compile time
//! ([`Config::checked`](crate::Config::checked)) leaves only one run-time failure, splitting a
//! slot whose earlier halves are alive, which firmware handles without formatting anything.
//!
//! Split the slot in a task that has nothing else to do once it has spawned the others (`main`,
//! say), spawn the consumer with the receiver, and `.await` the producer right there: it is
//! stored once, in that task's future, with no task and no `StaticCell` of its own. A task that
//! must go on with other work hands the producer to a task of its own: give that task a
//! `&'static mut` producer (from a `static_cell::StaticCell`; on thumbv6m, `static_cell` needs
//! `portable-atomic` with feature `critical-section`), not the producer itself: an embassy task
//! keeps its arguments beside the future it awaits, so `async fn batcher(p: Batcher) { p.await }`
//! stores the producer twice (344 B for a 168 B producer on thumbv7em; `(&mut p).await` does not
//! help). The producer is `Unpin` when its source is (an embassy-sync channel receiver is); for a
//! `!Unpin` source, `Pin::static_mut(producer).await`. The counters (`Slot::stats`) cost RAM and
//! clock reads: they are in the build only with the `stats` feature, which is off by default.
//!
//! ```ignore
//! use core::time::Duration;
//! use embassy_executor::Spawner;
//! use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex as Cs;
//! use embassy_sync::channel::Channel;
//! use prefetch_batch::embassy::StaticReceiver;
//! use prefetch_batch::{Config, Slot, timer::EmbassyTimer};
//!
//! type Readings = Slot<Cs, u32, 32, EmbassyTimer>;   // the only parameter list
//! static SLOT: Readings = Slot::new(EmbassyTimer);      // in .bss: an empty slot is zero bits
//! static CHANNEL: Channel<Cs, u32, 64> = Channel::new(); // filled by an interrupt
//! const CONFIG: Config<32> = Config::new().max_wait(Duration::from_millis(50)).checked::<EmbassyTimer>();
//!
//! #[embassy_executor::task]
//! async fn uplink(mut batches: StaticReceiver<Readings>) {
//!     while let Some(batch) = batches.recv().await {
//!         // send `batch` (zero-copy); dropping it hands the buffer back
//!     }
//! }
//!
//! #[embassy_executor::main]
//! async fn main(spawner: Spawner) {
//!     let Ok((producer, batches)) = SLOT.split(CHANNEL.receiver(), CONFIG) else { return };
//!     spawner.spawn(uplink(batches).unwrap());
//!     producer.await // batches until the channel ends: the producer lives in this future
//! }
//! ```
//!
//! Prefer this to the one-task driver ([`for_each_batch_in`](crate::BatchExt::for_each_batch_in))
//! on a microcontroller: the driver moves each batch into the handler's argument, so its task's
//! future holds a batch beside the producer, and the copies pull in `memcpy` (the size report of
//! `examples-embassy` measures both patterns for the same job).
//!
//! `examples-embassy` runs this on an emulated Cortex-M4F and Cortex-M0, and measures it against a
//! hand-written loop (`examples-embassy/budget`). The same pattern, with the consumer task's body
//! and the producer run by a test executor and virtual time:
//!
//! ```
//! use core::time::Duration;
//! use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex as Cs;
//! use prefetch_batch::embassy::StaticReceiver;
//! use prefetch_batch::{Config, FlushReason, Slot, testing, timer::ManualClock};
//!
//! static CLOCK: ManualClock = ManualClock::new();
//! type Readings = Slot<Cs, u32, 4, &'static ManualClock>;
//! static SLOT: Readings = Slot::new(&CLOCK);
//! const CONFIG: Config<4> = Config::new().max_wait(Duration::from_millis(50)).checked::<&ManualClock>();
//!
//! async fn uplink(mut batches: StaticReceiver<Readings>) -> Vec<(Vec<u32>, FlushReason)> {
//!     let mut sent = Vec::new();
//!     while let Some(batch) = batches.recv().await {
//!         sent.push((batch.to_vec(), batch.info().reason));
//!     }
//!     sent
//! }
//!
//! let Ok((producer, batches)) = SLOT.split(testing::iter(0..6), CONFIG) else { unreachable!() };
//! let sent = CLOCK.block_on(async {
//!     let mut sent = Vec::new();
//!     // `uplink` stands for the spawned task; the producer is awaited where the slot was split
//!     testing::join(producer, async { sent = uplink(batches).await }).await;
//!     sent
//! });
//! assert_eq!(sent, [(vec![0, 1, 2, 3], FlushReason::Full), (vec![4, 5], FlushReason::End)]);
//! ```

use crate::config::Unweighted;
use crate::producer::Producer;
use crate::receiver::Receiver;
use crate::source::Plain;

/// The producer of a `static` slot of type `Sl` over a source `S`: what an embassy task takes.
/// `K` is [`Plain`] for a `Stream` (`split`), [`Bulk`](crate::source::Bulk) for a
/// [`BulkSource`](crate::source::BulkSource) such as [`ChannelBulk`](crate::source::ChannelBulk)
/// (`split_bulk`).
pub type StaticProducer<Sl, S, K = Plain, W = Unweighted> = Producer<&'static Sl, S, W, K>;

/// The receiver of a `static` slot of type `Sl`: what the consuming task takes (`K` as for
/// [`StaticProducer`]).
pub type StaticReceiver<Sl, K = Plain> = Receiver<&'static Sl, K>;
