#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc = include_str!("../README.md")]
//!
//! # The crate in one place
//!
//! A [`Slot`] holds two `heapless::Vec<T, N>` buffers. A [`Producer`] pulls items from any
//! `futures_core::Stream`, fills one buffer and emits it when it is full, when its oldest item has
//! waited `max_wait`, when the source goes quiet, on a flush, or at the end ([`FlushReason`]). A
//! [`Receiver`] takes ready batches: zero-copy through a [`BatchGuard`] ([`Receiver::recv`]), or
//! moved out as a `Stream`. While the caller holds batch N, the producer fills batch N+1; when
//! both buffers are taken it stops pulling from the source. The core is `#![no_std]` and never
//! allocates. [`BatchExt`] runs it all for any stream: in one task, or (feature `tokio`) with a
//! spawned producer; [`embassy`] shows the `static` pattern for firmware.
//!
//! ```
//! use core::time::Duration;
//! use prefetch_batch::{BatchExt, Config, FlushReason, testing, timer::ManualClock};
//!
//! static CLOCK: ManualClock = ManualClock::new(); // virtual time; real code uses TokioTimer or EmbassyTimer
//! let mut sizes = Vec::new();
//! let config = Config::<4>::new().max_wait(Duration::from_millis(5));
//! CLOCK.block_on(testing::iter(0..10u32).for_each_batch(config, &CLOCK, |batch| {
//!     sizes.push((batch.len(), batch.info.reason));
//!     async {}
//! })).unwrap();
//! assert_eq!(sizes, [(4, FlushReason::Full), (4, FlushReason::Full), (2, FlushReason::End)]);
//! ```
//!
//! # Soundness
//!
//! The two buffers of a [`Slot`] are reached without its lock only by the side that owns them,
//! through a token the slot hands out when a buffer changes role. Tokens, and the traits whose
//! methods take them, cannot be named, made or implemented outside this crate. Each of these is
//! a compile error:
//!
//! Handing back a buffer that a guard still lends:
//! ```compile_fail
//! use embassy_sync::blocking_mutex::raw::NoopRawMutex;
//! use prefetch_batch::{Slot, timer::ManualClock};
//! use prefetch_batch::slot::LentSlot; // private module: not reachable
//! static CLOCK: ManualClock = ManualClock::new();
//! let slot: Slot<NoopRawMutex, u32, 4, _> = Slot::new(&CLOCK);
//! ```
//! ```compile_fail
//! use prefetch_batch::LentToken; // not exported: a token cannot be forged
//! ```
//! Publishing a buffer the producer does not own:
//! ```compile_fail
//! use prefetch_batch::FillToken; // not exported
//! ```
//! ```compile_fail
//! use embassy_sync::blocking_mutex::raw::NoopRawMutex;
//! use prefetch_batch::{Slot, timer::ManualClock};
//! static CLOCK: ManualClock = ManualClock::new();
//! let slot: Slot<NoopRawMutex, u32, 4, _> = Slot::new(&CLOCK);
//! slot.finish_erased(None); // the finishing hook's trait is not in scope, and cannot be
//! ```
//! Standing in for a slot handle with a `Deref` that may change its target:
//! ```compile_fail
//! use prefetch_batch::SlotRef;
//! struct Alternating;
//! impl core::ops::Deref for Alternating {
//!     type Target = u8;
//!     fn deref(&self) -> &u8 { &0 }
//! }
//! impl SlotRef for Alternating {} // sealed
//! ```
//! ```compile_fail
//! use prefetch_batch::{Config, Producer};
//! // A producer is made only by `Slot::split`, over `&Slot`: there is no constructor that takes
//! // another handle.
//! let p = Producer::new(std::rc::Rc::new(()), (), Config::new());
//! ```
//! Sharing a slot on `NoopRawMutex` between threads (it is for one executor):
//! ```compile_fail
//! use embassy_sync::blocking_mutex::raw::NoopRawMutex;
//! use prefetch_batch::{Slot, timer::ManualClock};
//! fn sync<T: Sync>() {}
//! sync::<Slot<NoopRawMutex, u32, 4, &'static ManualClock>>();
//! ```
#![warn(missing_docs, missing_debug_implementations, unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(any(feature = "std", loom))]
extern crate std;

mod config;
pub mod embassy;
mod executor;
mod intake;
mod policy;
mod producer;
mod receiver;
mod slot;
pub mod source;
#[cfg(feature = "stats")]
mod stats;
#[cfg(feature = "std")]
mod std_mutex;
pub mod testing;
pub mod timer;

pub use config::{Config, ConfigError, SplitError, Unweighted, Weigher};
pub use executor::{BatchExt, TaskRawMutex, TaskSlot};
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use executor::{BoxSource, MpscBulk, PrefetchStream, TokioSlot, TryPrefetchStream, prefetch_bulk};
pub use policy::{BatchInfo, FlushReason};
pub use producer::{Producer, YIELD_AFTER_ITEMS};
pub use receiver::{Batch, BatchGuard, Receiver};
pub use slot::{Remainder, Slot, SlotRef};
#[cfg(feature = "stats")]
#[cfg_attr(docsrs, doc(cfg(feature = "stats")))]
pub use stats::Stats;
#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub use std_mutex::StdRawMutex;
