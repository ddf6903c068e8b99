//! The batching policy: why a batch ends, what each batch says about itself, and the producer's
//! clock arithmetic for the batch it is filling (all in the timer's own [`Span`]).

use crate::timer::{Instant, Span, Timer};

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
/// it keeps its reason. New reasons may be added: match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
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

    /// This reason's position in [`FlushReason::ALL`].
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
///
/// `first_at` is an instant of the batcher's timer (a tokio `Instant` on tokio, a `Duration`
/// since its epoch on [`ManualClock`](crate::timer::ManualClock), an embassy `Instant` on
/// embassy). Handing a batch over reads no clock: the batch's age is
/// [`age_at`](Self::age_at) the instant you read yourself, when you want it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchInfo<I: Instant> {
    /// Why the batch was emitted.
    pub reason: FlushReason,
    /// When its first (oldest) item was pulled from the source, on the batcher's timer.
    pub first_at: I,
}

impl<I: Instant> BatchInfo<I> {
    /// How old the batch's oldest item is at `now` (an instant of the same timer; zero if `now`
    /// is earlier). [`Span::to_duration`] converts.
    ///
    /// ```
    /// use core::time::Duration;
    /// use prefetch_batch::{BatchExt, Config, testing, timer::ManualClock};
    ///
    /// static CLOCK: ManualClock = ManualClock::new();
    /// CLOCK.block_on(testing::iter(0..4u32).for_each_batch(Config::<4>::new(), &CLOCK, |batch| {
    ///     assert_eq!(batch.info.age_at(CLOCK.elapsed()), Duration::ZERO); // no time passed
    ///     async {}
    /// })).unwrap();
    /// ```
    pub fn age_at(&self, now: I) -> I::Span {
        now.saturating_since(self.first_at)
    }
}

#[cfg(feature = "defmt")]
impl<I: Instant> defmt::Format for BatchInfo<I> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "BatchInfo {{ reason: {} }}", self.reason)
    }
}

/// The limits a producer runs with: the configuration, checked and converted to the timer's span.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits<S> {
    pub(crate) max_items: usize,
    /// `Span::ZERO` for none (a zero `max_wait` is refused): half the size of an `Option`.
    max_wait: S,
    pub(crate) idle: Option<S>,
    /// `usize::MAX` for no limit (a weight cannot exceed it: weights add up saturating).
    pub(crate) max_weight: usize,
}

impl<S: Span> Limits<S> {
    pub(crate) fn new(max_items: usize, max_wait: Option<S>, idle: Option<S>, max_weight: usize) -> Self {
        Self {
            max_items,
            max_wait: max_wait.unwrap_or(S::ZERO),
            idle,
            max_weight,
        }
    }

    /// How long after its first item a batch is emitted at the latest, if at all.
    pub(crate) fn max_wait(&self) -> Option<S> {
        (self.max_wait != S::ZERO).then_some(self.max_wait)
    }
}

impl<S> Limits<S> {
    /// Whether an item of weight `w` may join a batch of `len` items weighing `weight` that is
    /// not full ([`Limits::is_full`]): a batch never takes an item once full, as it is published
    /// (the producer's) or closed (an open ready batch) the moment it fills. An empty batch takes
    /// any item, however heavy. `weighs` is the weigher's
    /// [`WEIGHS`](crate::config::Weigher::WEIGHS), a constant: without it, every item fits, and the
    /// weight checks are left out of the build.
    pub(crate) fn fits(&self, weighs: bool, len: usize, weight: usize, w: usize) -> bool {
        len == 0 || !weighs || weight.saturating_add(w) <= self.max_weight
    }

    /// Whether a batch of `len` items weighing `weight` is complete (`weighs` as for `fits`).
    pub(crate) fn is_full(&self, weighs: bool, len: usize, weight: usize) -> bool {
        len >= self.max_items || (weighs && weight >= self.max_weight)
    }
}

/// The producer's view of the batch it is filling: timestamps, weight, and when to look at the
/// clock next during a burst.
#[derive(Debug)]
pub(crate) struct Fill<I: Instant> {
    pub(crate) first_at: Option<I>,
    pub(crate) idle_at: Option<I>,
    pub(crate) weight: usize,
    /// The batch length at which a burst next reads the clock for the deadline (0: never). Not
    /// used on a clock cheap to read ([`Timer::CHEAP_NOW`]): every item is looked at there.
    pub(crate) check_len: usize,
    /// Items between the last two clock reads (carried to the next batch), and when the last
    /// one was.
    stride: usize,
    checked_at: Option<I>,
    /// The batch length at the last clock read (after [`Fill::advance`]: the items the previous
    /// batch took after its last read).
    checked_len: usize,
}

impl<I: Instant> Fill<I> {
    pub(crate) const fn new() -> Self {
        Self {
            first_at: None,
            idle_at: None,
            weight: 0,
            check_len: 0,
            stride: 1,
            checked_at: None,
            checked_len: 0,
        }
    }

    /// Ends this batch of `len` items, handing back its first item's instant and its weight, and
    /// makes this the state for the next one, in place: empty, with the stride this one learned,
    /// at most half a batch (so a source that turns slow is looked at within half a batch, then
    /// closely), and the last clock read of this batch, for [`Fill::start`]. On a timer whose clock
    /// is cheap to read ([`Timer::CHEAP_NOW`]) there is no stride to carry.
    pub(crate) fn advance<Tm: Timer<Instant = I>>(&mut self, max_items: usize, len: usize) -> (Option<I>, usize) {
        let ended = (self.first_at.take(), core::mem::take(&mut self.weight));
        self.idle_at = None;
        if !Tm::CHEAP_NOW {
            self.check_len = 0;
            self.stride = self.stride.min(max_items / 2).max(1);
            self.checked_len = len.saturating_sub(self.checked_len);
        }
        ended
    }

    /// The batch's first `len` items (one, or what one bulk fill took) were pulled at `at` (a
    /// clock read the batch needs anyway).
    ///
    /// If, since the previous batch's last clock read, at least half a batch arrived within a
    /// quarter of `max_wait`, a whole batch at that rate fills within half of `max_wait` (the
    /// source is quick): the burst reads the clock no more until the batch is full (a source
    /// that turns slow in the middle of such a batch is looked at when it is full or has nothing
    /// ready, and its next batch is read closely again). Otherwise the burst reads the clock at
    /// the stride of [`Fill::deadline_passed`]. The deadline itself is worked out when first
    /// needed ([`Fill::deadline`]): a quick batch never needs it.
    ///
    /// On a timer whose clock is cheap to read ([`Timer::CHEAP_NOW`]) every item is looked at.
    pub(crate) fn start<Tm: Timer<Instant = I>>(&mut self, at: I, limits: &Limits<I::Span>, len: usize) {
        self.first_at = Some(at);
        if !Tm::CHEAP_NOW && limits.max_wait().is_some() {
            let items = self.checked_len + len;
            let quick = match (self.checked_at, limits.max_wait()) {
                (Some(last), Some(d)) if items.saturating_mul(2) >= limits.max_items => {
                    let quick = last.deadline_after(d.half().half()).is_some_and(|by| at <= by);
                    if !quick {
                        // Half a batch took longer than that: look closely from the start.
                        self.stride = 1;
                    }
                    quick
                }
                _ => false,
            };
            self.checked_at = Some(at);
            self.checked_len = len;
            self.check_len = if quick { 0 } else { len + self.stride };
        }
    }

    /// The batch filled from a quick source: [`Fill::start`] found that half a batch came within
    /// a quarter of `max_wait`, so this burst read no clock. Handed to a caller that waits, such a
    /// batch does not make the producer wait for the take: it fills the other buffer first (at
    /// the rate seen, within half of `max_wait`), and the caller on the same thread then takes
    /// two batches per trip through the executor.
    pub(crate) fn quick<Tm: Timer<Instant = I>>(&self, max_wait: Option<I::Span>) -> bool {
        !Tm::CHEAP_NOW && max_wait.is_some() && self.first_at.is_some() && self.check_len == 0
    }

    /// `max_wait` after the first item, worked out each time a check needs it (rarely: a quick
    /// batch never does), so the producer stores no deadline.
    fn deadline(&self, max_wait: Option<I::Span>) -> Option<I> {
        self.first_at.zip(max_wait).and_then(|(at, d)| at.deadline_after(d))
    }

    /// A burst reached `check_len` items: whether the deadline has passed, by a clock read (none
    /// without a deadline). If not, plans the next look so that, at the rate items arrived since
    /// the last look, it falls at most one item after the deadline: the stride doubles while the
    /// deadline is far, and shrinks as it nears. The stride carries over to the next batch (at
    /// most half a batch): an always-ready source that is fast costs about log2(N) clock reads for
    /// its first batch and none in the burst after that (see [`Fill::start`]); one that is slow is
    /// cut within one item of `max_wait`.
    /// On a timer whose clock is cheap to read, every item is looked at: nothing to plan.
    pub(crate) fn deadline_passed<Tm: Timer<Instant = I>>(
        &mut self,
        tm: &Tm,
        len: usize,
        max_wait: Option<I::Span>,
    ) -> bool {
        let Some(deadline) = self.deadline(max_wait) else {
            self.check_len = 0;
            return false;
        };
        let now = tm.now();
        if now >= deadline || Tm::CHEAP_NOW {
            return now >= deadline;
        }
        // Set by `start` whenever there is a deadline.
        let Some(last) = self.checked_at else {
            self.check_len = 0;
            return false;
        };
        let left = deadline.saturating_since(now);
        let mut took = now.saturating_since(last);
        let mut stride = self.stride;
        if took.saturating_add(took) <= left {
            stride = stride.saturating_mul(2);
        } else {
            while stride > 1 && took > left {
                stride /= 2;
                took = took.half();
            }
        }
        self.stride = stride;
        self.checked_at = Some(now);
        self.checked_len = len;
        self.check_len = len.saturating_add(stride);
        false
    }

    /// The earliest instant at which this batch must be emitted, and for which reason.
    pub(crate) fn due(&self, max_wait: Option<I::Span>) -> Option<(I, FlushReason)> {
        match (self.deadline(max_wait), self.idle_at) {
            (Some(d), Some(i)) if i < d => Some((i, FlushReason::Idle)),
            (Some(d), _) => Some((d, FlushReason::Deadline)),
            (None, Some(i)) => Some((i, FlushReason::Idle)),
            (None, None) => None,
        }
    }
}
