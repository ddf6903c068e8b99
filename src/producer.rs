//! [`Producer`]: pulls items from the source, applies the batching policy, publishes batches.
//!
//! The producer is a plain future ([`Producer::run`]); where it runs is the executor seam (see
//! [`executor`](crate::executor)). It keeps each batch's deadline while the caller is busy, and
//! stops pulling from the source when both buffers are taken. Dropping it mid-way loses nothing:
//! its partial batch is published with reason [`FlushReason::Close`].

use core::future::Future;
use core::marker::PhantomData;
use core::ops::Deref;
use core::pin::Pin;
use core::task::{Context, Poll};

use embassy_sync::blocking_mutex::raw::RawMutex;
use futures_core::Stream;

use crate::config::{Config, ConfigError, Limits, Weigher};
use crate::policy::{Fill, FlushReason};
use crate::slot::{Room, Slot};
use crate::source::ItemKind;
use crate::timer::Timer;

/// How many items a burst may push before the deadline is checked without waiting for the source
/// to return `Pending`: bounds the age of a batch fed by a source that is always ready but slow.
const DEADLINE_CHECK_EVERY: u32 = 64;

/// The filling half of a [`Slot`]: owns the source, runs the batching policy.
///
/// Create with [`Slot::split`] (or [`Producer::new`] for a shared slot such as an `Arc` or a
/// `&'static`), then run [`Producer::run`] on any executor.
pub struct Producer<R, S, W, K>
where
    R: Deref,
    R::Target: SlotTypes,
{
    engine: Engine<R, W, K>,
    /// Pinned whenever the producer is: polled in place, never moved out (see `poll`).
    source: S,
    /// The deadline timer, armed in place like `source`.
    sleep: Option<<R::Target as SlotTypes>::Sleep>,
}

impl<R: Deref, S, W, K> core::fmt::Debug for Producer<R, S, W, K>
where
    R::Target: SlotTypes,
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Producer")
            .field("limits", &self.engine.limits)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl<R: Deref, S, W, K> defmt::Format for Producer<R, S, W, K>
where
    R::Target: SlotTypes,
{
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Producer {{ limits: {} }}", self.engine.limits)
    }
}

impl<R, S, W, K, M, T, const N: usize, Tm, E> Producer<R, S, W, K>
where
    R: Deref<Target = Slot<M, T, N, Tm, E>>,
    M: RawMutex,
    Tm: Timer,
    S: Stream,
    K: ItemKind<S::Item, Item = T, Error = E>,
    W: Weigher<T>,
{
    /// Attaches a producer to `slot`. Fails on a bad configuration, or if the slot already has one.
    pub fn new(slot: R, source: S, config: Config<W>) -> Result<Self, ConfigError> {
        let limits = config.validate_for::<N, Tm>()?;
        slot.attach_producer()?;
        let engine = Engine {
            slot,
            limits,
            weigher: config.weigher,
            own: None,
            fill: Fill::new(),
            armed: None,
            spilled: false,
            pushed: false,
            closing: false,
            close_when_idle: false,
            done: false,
            _kind: PhantomData,
        };
        Ok(Self {
            engine,
            source,
            sleep: None,
        })
    }

    /// Fills batches until the source ends, the slot is closed, or the receiver is gone.
    ///
    /// The producer is itself the future (this returns it): no second copy of its state, which
    /// matters in an embassy task's static memory.
    ///
    /// Cancel-safe: dropping this future publishes the partial batch, so the receiver (or
    /// [`Receiver::drain_remainder`](crate::Receiver::drain_remainder)) still gets every item.
    pub fn run(self) -> impl Future<Output = ()> {
        self
    }
}

impl<R, S, W, K, M, T, const N: usize, Tm, E> Future for Producer<R, S, W, K>
where
    R: Deref<Target = Slot<M, T, N, Tm, E>>,
    M: RawMutex,
    Tm: Timer,
    S: Stream,
    K: ItemKind<S::Item, Item = T, Error = E>,
    W: Weigher<T>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: structural pinning of `source` and `sleep` (they may be `!Unpin`: a tokio
        // `Sleep`, an `async` stream). Neither is ever moved out of the producer or replaced
        // except through `Pin::set`, the producer has no `Drop` of its own (the engine's `Drop`
        // touches only the slot), and `Producer` is `Unpin` only when both fields are (auto
        // trait). `engine` is not pinned: it is only used through `&mut`.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above; `source` stays where it is for as long as the producer lives.
        let source = unsafe { Pin::new_unchecked(&mut this.source) };
        // SAFETY: likewise for `sleep`.
        let sleep = unsafe { Pin::new_unchecked(&mut this.sleep) };
        this.engine.poll(cx, source, sleep)
    }
}

/// How a [`fast_fill`] burst ended.
enum Burst<T, E> {
    /// The batch reached `max_items`: publish it.
    Full,
    /// The batch's deadline passed during the burst: publish it.
    Deadline,
    /// The source gave something the general path handles (an error, the end, `Pending`).
    Other {
        pushed: bool,
        next: Poll<Option<Result<T, E>>>,
    },
}

/// The hot loop: appends items to the producer's non-empty buffer while the source is ready and
/// the batch has room, with no weight limit. Same rules as `place_item`, without the per-item
/// bookkeeping that only matters for the first item, for weights, or across buffers.
#[inline(always)]
fn fast_fill<S, K, T, E, const N: usize, Tm>(
    buf: &mut heapless::Vec<T, N>,
    limits: &Limits,
    fill: &mut Fill<Tm::Instant>,
    timer: &Tm,
    mut source: Pin<&mut S>,
    cx: &mut Context<'_>,
) -> Burst<T, E>
where
    S: Stream,
    K: ItemKind<S::Item, Item = T, Error = E>,
    Tm: Timer,
{
    let max = limits.max_items;
    let mut pushed = false;
    loop {
        match source.as_mut().poll_next(cx) {
            Poll::Ready(Some(item)) => match K::split(item) {
                Ok(item) => {
                    if let Err(item) = buf.push(item) {
                        // Unreachable while `max_items <= N`; the general path stays total.
                        return Burst::Other {
                            pushed,
                            next: Poll::Ready(Some(Ok(item))),
                        };
                    }
                    pushed = true;
                    if buf.len() >= max {
                        return Burst::Full;
                    }
                    if let Some(deadline) = fill.deadline {
                        fill.burst += 1;
                        if fill.burst >= DEADLINE_CHECK_EVERY {
                            fill.burst = 0;
                            if timer.now() >= deadline {
                                return Burst::Deadline;
                            }
                        }
                    }
                }
                Err(error) => {
                    return Burst::Other {
                        pushed,
                        next: Poll::Ready(Some(Err(error))),
                    };
                }
            },
            Poll::Ready(None) => {
                return Burst::Other {
                    pushed,
                    next: Poll::Ready(None),
                };
            }
            Poll::Pending => {
                return Burst::Other {
                    pushed,
                    next: Poll::Pending,
                };
            }
        }
    }
}

/// The producer's state apart from the source: what the policy needs between polls.
struct Engine<R, W, K>
where
    R: Deref,
    R::Target: SlotTypes,
{
    slot: R,
    limits: Limits,
    weigher: W,
    /// The buffer being filled, if any.
    own: Option<u8>,
    fill: Fill<<R::Target as SlotTypes>::Instant>,
    /// The instant the sleep future is armed for.
    armed: Option<<R::Target as SlotTypes>::Instant>,
    /// Whether this producer parked an item in the slot's spill (only it ever does), so the hot
    /// loop takes the slot's lock for the spill only when there may be one.
    spilled: bool,
    /// Items arrived since the source last returned `Pending`.
    pushed: bool,
    closing: bool,
    /// Close the next time the source has nothing ready.
    close_when_idle: bool,
    done: bool,
    _kind: PhantomData<K>,
}

/// Names a slot's timer instant without repeating all its parameters. Public only so it can
/// appear in bounds; it cannot be named outside this crate.
pub trait SlotTypes {
    /// The timer's instant.
    type Instant: Copy + Ord;
    /// The timer's sleep future.
    type Sleep: Future<Output = ()>;
    /// Publishes the producer's partial batch (if any) and marks the producer done.
    fn finish_producer(&self, own: Option<(u8, Option<Self::Instant>, usize)>, reason: FlushReason);
}

impl<M: RawMutex, T, const N: usize, Tm: Timer, E> SlotTypes for Slot<M, T, N, Tm, E> {
    type Instant = Tm::Instant;
    type Sleep = Tm::Sleep;
    fn finish_producer(&self, own: Option<(u8, Option<Tm::Instant>, usize)>, reason: FlushReason) {
        if let Some((i, first_at, weight)) = own {
            // SAFETY: the producer owns its `Filling` buffer.
            if unsafe { self.buf_mut(i) }.is_empty() {
                self.unclaim(i);
            } else {
                self.publish(i, reason, first_at, weight, None, false);
            }
        }
        self.producer_done();
    }
}

impl<R: Deref, W, K> Engine<R, W, K>
where
    R::Target: SlotTypes,
{
    /// Publishes the partial batch (if any) and tells the slot the producer is done. Once.
    fn finish(&mut self, reason: FlushReason) -> Poll<()> {
        if !self.done {
            self.done = true;
            let own = self.own.take().map(|i| (i, self.fill.first_at, self.fill.weight));
            self.slot.finish_producer(own, reason);
        }
        Poll::Ready(())
    }
}

impl<R: Deref, W, K> Drop for Engine<R, W, K>
where
    R::Target: SlotTypes,
{
    fn drop(&mut self) {
        let _ = self.finish(FlushReason::Close);
    }
}

impl<R, W, K, M, T, const N: usize, Tm, E> Engine<R, W, K>
where
    R: Deref<Target = Slot<M, T, N, Tm, E>>,
    M: RawMutex,
    Tm: Timer,
    W: Weigher<T>,
{
    fn poll<S>(
        &mut self,
        cx: &mut Context<'_>,
        mut source: Pin<&mut S>,
        mut sleep: Pin<&mut Option<Tm::Sleep>>,
    ) -> Poll<()>
    where
        S: Stream,
        K: ItemKind<S::Item, Item = T, Error = E>,
    {
        if self.done {
            return Poll::Ready(());
        }
        let control = self.slot.control(cx);
        if control.receiver_gone {
            return self.finish(FlushReason::Close);
        }
        if control.flush {
            self.publish_own(FlushReason::Flush);
            self.slot.seal_open();
        }
        self.closing |= control.closed;
        self.close_when_idle |= control.close_when_idle;
        loop {
            // An item that found no room waits in the slot; it goes first.
            if self.spilled {
                if let Some(x) = self.slot.take_spill() {
                    if let Err(x) = self.place(x, cx) {
                        self.slot.put_spill(x);
                        return Poll::Pending;
                    }
                }
                self.spilled = false;
            }
            if self.closing {
                return self.finish(FlushReason::Close);
            }
            // Never pull an item there is no room for: that is the backpressure.
            if self.own.is_none() {
                match self.slot.room(cx, &self.limits) {
                    Room::Open => {}
                    Room::Own(i) => self.own = Some(i),
                    Room::None => return Poll::Pending,
                }
            }
            let next = match (self.own, self.limits.max_weight) {
                (Some(i), None) => {
                    // SAFETY: buffer `i` is this producer's (`Filling`) until it publishes it.
                    let buf = unsafe { self.slot.buf_mut(i) };
                    if buf.is_empty() {
                        // The first item of a batch takes the general path: it stamps the batch.
                        source.as_mut().poll_next(cx).map(|o| o.map(K::split))
                    } else {
                        let timer = self.slot.timer();
                        match fast_fill::<S, K, T, E, N, Tm>(
                            buf,
                            &self.limits,
                            &mut self.fill,
                            timer,
                            source.as_mut(),
                            cx,
                        ) {
                            Burst::Full => {
                                self.pushed = true;
                                self.publish_own(FlushReason::Full);
                                continue;
                            }
                            Burst::Deadline => {
                                self.pushed = true;
                                self.publish_own(FlushReason::Deadline);
                                continue;
                            }
                            Burst::Other { pushed, next } => {
                                self.pushed |= pushed;
                                next
                            }
                        }
                    }
                }
                _ => source.as_mut().poll_next(cx).map(|o| o.map(K::split)),
            };
            match next {
                Poll::Ready(Some(x)) => {
                    if let Err(x) = self.place(x, cx) {
                        self.slot.put_spill(x);
                        self.spilled = true;
                    }
                }
                Poll::Ready(None) => return self.finish(FlushReason::End),
                Poll::Pending if self.close_when_idle => self.closing = true,
                Poll::Pending => {
                    if self.poll_due(cx, sleep.as_mut()).is_pending() {
                        return Poll::Pending;
                    }
                }
            }
        }
    }

    /// Places an item or an error; hands it back if there is no room (the waker is registered).
    #[inline(always)]
    fn place(&mut self, x: Result<T, E>, cx: &mut Context<'_>) -> Result<(), Result<T, E>> {
        match x {
            Ok(item) => self.place_item(item, cx).map_err(Ok),
            Err(error) => self.place_error(error, cx).map_err(Err),
        }
    }

    #[inline(always)]
    fn place_item(&mut self, item: T, cx: &mut Context<'_>) -> Result<(), T> {
        let w = self.weigher.weigh(&item);
        let mut item = item;
        loop {
            let i = match self.own {
                Some(i) => i,
                None => {
                    item = match self.slot.append_open(item, w, &self.limits) {
                        Ok(()) => return Ok(()),
                        Err(item) => item,
                    };
                    match self.claim(cx) {
                        Some(i) => i,
                        None => return Err(item),
                    }
                }
            };
            // SAFETY: buffer `i` is this producer's (`Filling`) until it publishes it.
            let buf = unsafe { self.slot.buf_mut(i) };
            if !self.limits.fits(buf.len(), self.fill.weight, w) {
                self.publish_own(FlushReason::Full);
                continue;
            }
            let first = buf.is_empty();
            if let Err(back) = buf.push(item) {
                // Unreachable while `max_items <= N`; kept total rather than panicking.
                item = back;
                self.publish_own(FlushReason::Full);
                continue;
            }
            let len = buf.len();
            self.fill.weight += w;
            self.pushed = true;
            let timer = self.slot.timer();
            if first {
                let now = timer.now();
                self.fill.first_at = Some(now);
                self.fill.deadline = self.limits.max_wait.and_then(|d| timer.add(now, d));
                self.fill.burst = 0;
            }
            if self.limits.is_full(len, self.fill.weight) {
                self.publish_own(FlushReason::Full);
            } else if let Some(deadline) = self.fill.deadline {
                self.fill.burst += 1;
                if self.fill.burst >= DEADLINE_CHECK_EVERY {
                    self.fill.burst = 0;
                    if timer.now() >= deadline {
                        self.publish_own(FlushReason::Deadline);
                    }
                }
            }
            return Ok(());
        }
    }

    fn place_error(&mut self, error: E, cx: &mut Context<'_>) -> Result<(), E> {
        let mut error = error;
        if self.own.is_none() {
            error = match self.slot.append_error_open(error) {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            if self.claim(cx).is_none() {
                return Err(error);
            }
        }
        let i = self.own.take().expect("set above");
        let fill = core::mem::replace(&mut self.fill, Fill::new());
        self.slot
            .publish(i, FlushReason::Error, fill.first_at, fill.weight, Some(error), false);
        Ok(())
    }

    /// The source has nothing now: emit the batch if its deadline or idle gap has passed, else
    /// arm the sleep for whichever comes first. `Ready` means a batch was emitted.
    fn poll_due(&mut self, cx: &mut Context<'_>, mut sleep: Pin<&mut Option<Tm::Sleep>>) -> Poll<()> {
        let Some(i) = self.own else {
            return Poll::Pending;
        };
        // SAFETY: buffer `i` is this producer's (`Filling`).
        if unsafe { self.slot.buf_mut(i) }.is_empty() {
            return Poll::Pending; // never a timer for an empty batch
        }
        let timer = self.slot.timer();
        let now = timer.now();
        if core::mem::take(&mut self.pushed) {
            self.fill.idle_at = self.limits.idle.and_then(|d| timer.add(now, d));
        }
        let Some((at, reason)) = self.fill.due() else {
            return Poll::Pending;
        };
        if at <= now {
            self.publish_own(reason);
            return Poll::Ready(());
        }
        if self.armed != Some(at) {
            match sleep.as_mut().as_pin_mut() {
                Some(s) => timer.reset(s, at),
                None => sleep.set(Some(timer.sleep_until(at))),
            }
            self.armed = Some(at);
        }
        let fired = sleep.as_pin_mut().is_some_and(|s| s.poll(cx).is_ready());
        if fired {
            // Re-checked against the current batch on the next pass: a sleep armed for an older
            // batch can never emit this one early.
            self.armed = None;
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Claims a free buffer as the producer's own.
    fn claim(&mut self, cx: &mut Context<'_>) -> Option<u8> {
        let claimed = self.slot.claim(cx);
        if claimed.is_some() {
            self.own = claimed;
        }
        claimed
    }

    /// Publishes the buffer being filled, if it holds anything.
    fn publish_own(&mut self, reason: FlushReason) {
        let Some(i) = self.own else { return };
        // SAFETY: buffer `i` is this producer's (`Filling`).
        let len = unsafe { self.slot.buf_mut(i) }.len();
        if len == 0 {
            return;
        }
        self.own = None;
        let fill = core::mem::replace(&mut self.fill, Fill::new());
        let open = reason.stays_open() && !self.limits.is_full(len, fill.weight);
        self.slot.publish(i, reason, fill.first_at, fill.weight, None, open);
    }
}
