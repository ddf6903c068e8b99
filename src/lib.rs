#![no_std]
//! Fixed-capacity stream batching with background prefetch, for embassy and tokio.
//!
//! A [`Slot`] holds two `heapless::Vec<T, N>` buffers. A [`Producer`] pulls items from any
//! `futures_core::Stream`, fills one buffer and emits it when it is full, when its oldest item has
//! waited `max_wait`, when the source goes quiet, on a flush, or at the end ([`FlushReason`]). A
//! [`Receiver`] takes ready batches: zero-copy through a [`BatchGuard`], or moved out as a
//! `Stream`. While the caller holds batch N, the producer fills batch N+1; when both buffers are
//! taken it stops pulling from the source. The core is `#![no_std]` and never allocates.
//!
//! The timer ([`timer`]) and the place the producer runs ([`executor`]) are seams: the same engine
//! runs on embassy (`EmbassyTimer`, a `static` slot), on tokio (`TokioTimer`,
//! `PrefetchExt::prefetch_batches`), or in one task on any executor ([`for_each_batch`]).
//!
//! ```
//! use core::time::Duration;
//! use prefetch_batch::{Config, FlushReason, for_each_batch, testing, timer::ManualClock};
//!
//! static CLOCK: ManualClock = ManualClock::new(); // virtual time; real code uses TokioTimer or EmbassyTimer
//! let clock = &CLOCK;
//! let mut sizes = Vec::new();
//! clock.block_on(for_each_batch::<_, _, _, 4, _>(
//!     testing::iter(0..10u32),
//!     Config::new().max_wait(Duration::from_millis(5)),
//!     clock,
//!     async |batch| sizes.push((batch.len(), batch.info().reason)),
//! )).unwrap();
//! assert_eq!(sizes, [(4, FlushReason::Full), (4, FlushReason::Full), (2, FlushReason::End)]);
//! ```
//!
//! See the README for the exact emission rules, the guarantees and the tests behind them.
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

#[cfg(feature = "std")]
extern crate std;

mod config;
pub mod executor;
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

pub use config::{Config, ConfigError, Unweighted, Weigher};
#[cfg(feature = "tokio")]
pub use executor::{Handle, PrefetchExt, PrefetchStream, TokioSlot, TryPrefetchStream};
pub use executor::{for_each_batch, try_for_each_batch};
pub use policy::{BatchInfo, FlushReason};
pub use producer::{Producer, YIELD_AFTER_ITEMS};
pub use receiver::{Batch, BatchGuard, Receiver, TryBatches};
pub use slot::{Remainder, Slot, SlotRef};
#[cfg(feature = "stats")]
pub use stats::Stats;
#[cfg(feature = "std")]
pub use std_mutex::StdRawMutex;

/// A producer over a `&'static` slot and a plain source: the type an embassy task names.
/// See [`executor`] for the pattern.
pub type StaticProducer<M, T, const N: usize, Tm, S, W = Unweighted> =
    Producer<&'static Slot<M, T, N, Tm>, S, W, source::Plain>;
