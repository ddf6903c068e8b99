//! The batching policy: why a batch ends, and what each batch says about itself.

use core::time::Duration;

/// Why a batch was emitted.
///
/// | reason | when |
/// |---|---|
/// | `Full` | it reached `max_items` (or `N`), or its weight reached `max_weight`, or the next item would not fit |
/// | `Deadline` | `max_wait` passed since its first item arrived |
/// | `Idle` | no item arrived for `idle` since the last one |
/// | `Flush` | a flush was requested ([`Slot::flush`](crate::Slot::flush)) |
/// | `End` | the source ended; this is the last batch |
/// | `Error` | the source yielded an error; the error follows this batch |
/// | `Close` | the batcher was closed or its producer stopped; this is the last batch |
///
/// A `Deadline` or `Idle` batch that waits for a busy caller keeps taking items up to its limits;
/// it keeps its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FlushReason {
    /// Count or weight limit reached.
    Full,
    /// `max_wait` passed since the first item.
    Deadline,
    /// No item for `idle`.
    Idle,
    /// A flush was requested.
    Flush,
    /// The source ended.
    End,
    /// The source yielded an error, delivered right after this batch.
    Error,
    /// The batcher was closed, or its producer stopped.
    Close,
}

impl FlushReason {
    /// Every reason, in declaration order.
    pub const ALL: [FlushReason; 7] = [
        FlushReason::Full,
        FlushReason::Deadline,
        FlushReason::Idle,
        FlushReason::Flush,
        FlushReason::End,
        FlushReason::Error,
        FlushReason::Close,
    ];

    /// This reason's position in [`FlushReason::ALL`] and in [`Stats::batches`](crate::Stats::batches).
    ///
    /// ```
    /// use prefetch_batch::FlushReason;
    /// assert!(FlushReason::ALL.iter().enumerate().all(|(i, r)| r.index() == i));
    /// ```
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Whether a batch emitted for this reason may keep taking items while it waits for the caller.
    pub(crate) const fn stays_open(self) -> bool {
        matches!(self, FlushReason::Deadline | FlushReason::Idle)
    }
}

/// What a batch says about itself: why it was emitted and when its first item arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct BatchInfo<I> {
    /// Why the batch was emitted.
    pub reason: FlushReason,
    /// When its first (oldest) item arrived, on the batcher's timer.
    pub first_at: I,
    /// How old its oldest item was when the batch was handed to the caller.
    pub age: Duration,
}

/// The producer's view of the batch it is filling: timestamps and weight.
#[derive(Debug)]
pub(crate) struct Fill<I> {
    pub(crate) first_at: Option<I>,
    pub(crate) deadline: Option<I>,
    pub(crate) idle_at: Option<I>,
    pub(crate) weight: usize,
    /// Items pushed since the source last returned `Pending` (for the idle gap) or since the
    /// deadline was last checked during a burst.
    pub(crate) burst: u32,
}

impl<I: Copy + Ord> Fill<I> {
    pub(crate) const fn new() -> Self {
        Self {
            first_at: None,
            deadline: None,
            idle_at: None,
            weight: 0,
            burst: 0,
        }
    }

    /// The earliest instant at which this batch must be emitted, and for which reason.
    pub(crate) fn due(&self) -> Option<(I, FlushReason)> {
        match (self.deadline, self.idle_at) {
            (Some(d), Some(i)) if i < d => Some((i, FlushReason::Idle)),
            (Some(d), _) => Some((d, FlushReason::Deadline)),
            (None, Some(i)) => Some((i, FlushReason::Idle)),
            (None, None) => None,
        }
    }
}
