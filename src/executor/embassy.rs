//! Running the producer as an embassy task.
//!
//! Embassy tasks cannot be generic, so the pattern is: put the [`Slot`](crate::Slot) in a
//! `static`, name the concrete producer type once with [`StaticProducer`](crate::StaticProducer), and declare a task
//! that runs it. The consumer takes batches in another task through the same `static`.
//!
//! ```ignore
//! use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex as Cs;
//! use embassy_sync::channel::{Channel, Receiver as ChannelRx};
//! use prefetch_batch::{Config, Slot, StaticProducer, timer::EmbassyTimer};
//!
//! static READINGS: Channel<Cs, u32, 64> = Channel::new();
//! static SLOT: Slot<Cs, u32, 32, EmbassyTimer> = Slot::new(EmbassyTimer);
//!
//! type Batcher = StaticProducer<Cs, u32, 32, EmbassyTimer, ChannelRx<'static, Cs, u32, 64>>;
//!
//! #[embassy_executor::task]
//! async fn batcher(producer: Batcher) {
//!     producer.run().await
//! }
//!
//! #[embassy_executor::task]
//! async fn uplink(mut rx: prefetch_batch::Receiver<&'static Slot<Cs, u32, 32, EmbassyTimer>>) {
//!     while let Some(batch) = rx.next().await {
//!         // send `batch` ...
//!     }
//! }
//!
//! // in main:
//! let config = Config::new().max_wait(core::time::Duration::from_millis(50));
//! let (producer, rx) = SLOT.split(READINGS.receiver(), config).unwrap();
//! spawner.spawn(batcher(producer).unwrap());
//! spawner.spawn(uplink(rx).unwrap());
//! ```
//!
//! `examples-embassy` runs exactly this on an emulated Cortex-M.
