//! The executor seam: where the producer runs.
//!
//! A [`Producer`](crate::Producer) is an ordinary future. Run it:
//!
//! - **in the caller's task**, beside the consumer, with no spawn at all:
//!   [`BatchExt::for_each_batch`] (or `try_for_each_batch`, or `for_each_batch_in` over your own
//!   slot). Works on any executor, `block_on` and embassy included; the producer fills the next
//!   batch whenever the handler awaits.
//! - **spawned on tokio** (feature `tokio`): [`BatchExt::prefetch_batches`] returns a `Stream` of
//!   batches; the producer runs as its own task, so it fills while the caller computes too.
//! - **as an embassy task**: a `static` slot; see [`embassy`](crate::embassy).

mod in_task;
pub(crate) use in_task::join_slot;
pub use in_task::{BatchExt, TaskRawMutex, TaskSlot};

#[cfg(feature = "tokio")]
mod tokio;
#[cfg(feature = "tokio")]
pub use self::tokio::{BoxSource, MpscBulk, PrefetchStream, TokioSlot, TryPrefetchStream, prefetch_bulk};
