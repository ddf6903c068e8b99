#![no_std]
#![doc = include_str!("../README.md")]
#![warn(missing_docs, missing_debug_implementations, unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(feature = "std")]
extern crate std;

pub mod config;
pub mod executor;
pub mod policy;
pub mod producer;
pub mod receiver;
pub mod slot;
pub mod source;
pub mod stats;
#[cfg(feature = "std")]
mod std_mutex;
pub mod testing;
pub mod timer;

pub use config::{Config, ConfigError, Limits, Unweighted, Weigher};
#[cfg(feature = "tokio")]
pub use executor::{Handle, PrefetchExt, PrefetchStream, TryPrefetchStream};
pub use executor::{for_each_batch, try_for_each_batch};
pub use policy::{BatchInfo, FlushReason};
pub use producer::Producer;
pub use receiver::{Batch, BatchGuard, Receiver, TryBatches};
pub use slot::{Remainder, Slot};
pub use stats::Stats;
#[cfg(feature = "std")]
pub use std_mutex::StdRawMutex;

/// A producer over a `&'static` slot and a plain source: the type an embassy task names.
/// See [`executor`] for the pattern.
pub type StaticProducer<M, T, const N: usize, Tm, S, W = Unweighted> =
    Producer<&'static Slot<M, T, N, Tm>, S, W, source::Plain>;
