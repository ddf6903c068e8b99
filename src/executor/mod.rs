//! The executor seam: where the producer runs.
//!
//! A [`Producer`](crate::Producer) is an ordinary future. Run it:
//!
//! - **in the caller's task**, beside the consumer, with no spawn at all: [`for_each_batch`]
//!   (or [`join`] the producer with your own consumer loop). Works on any executor, `block_on`
//!   and embassy included; the producer fills the next batch whenever the handler awaits.
//! - **spawned on tokio** (feature `tokio`): [`PrefetchExt::prefetch_batches`] returns a `Stream`
//!   of batches; the producer runs as its own task, so it fills while the caller computes too.
//! - **as an embassy task**: embassy tasks cannot be generic, so the slot lives in a `static` and
//!   [`StaticProducer`](crate::StaticProducer) names the concrete producer type for a one-line
//!   `#[embassy_executor::task]`; see [`embassy`] for the pattern.

mod in_task;
pub use in_task::{for_each_batch, for_each_batch_in, join, try_for_each_batch};

#[cfg(feature = "tokio")]
mod tokio;
#[cfg(feature = "tokio")]
pub use self::tokio::{Handle, PrefetchExt, PrefetchStream, TokioSlot, TryPrefetchStream};

pub mod embassy;
