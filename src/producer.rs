//! [`Producer`]: pulls items from the source, applies the batching policy, publishes batches.
//!
//! The producer is a plain future ([`Producer`] itself); where it runs is the executor seam (see
//! [`executor`](crate::executor)). It keeps each batch's deadline while the caller is busy, and
//! stops pulling from the source when both buffers are taken. Dropping it mid-way loses nothing:
//! its partial batch is published with reason [`FlushReason::Close`], and an item it had pulled
//! but not placed is parked in the slot.
//!
//! It yields to its executor after handing over a batch the caller is waiting for (after filling
//! the other buffer too, when the batch was full and its source quick: see the README's
//! `Deadline` rule), and after [`YIELD_AFTER_ITEMS`] items in one poll, so an always-ready
//! source can starve neither the caller on the same thread nor the executor's other tasks, and a
//! close is seen within a batch.

use core::future::Future;
use core::marker::PhantomData;
use core::pin::Pin;
use core::task::{Context, Poll};

use embassy_sync::blocking_mutex::raw::RawMutex;

use crate::config::{Config, SplitError, Weigher};
use crate::intake::{Burst, Intake};
use crate::policy::{Fill, FlushReason, Limits};
use crate::receiver::Receiver;
use crate::slot::{AfterPublish, Control, FillToken, Published, Room, Slot, SlotRef};
use crate::source::{Kind, Plain};
use crate::timer::{Instant, SpanOf, Timer};

/// How many items one poll of the producer may pull before it yields to its executor (at the next
/// batch boundary): bounds how long an always-ready source keeps other tasks from running.
pub const YIELD_AFTER_ITEMS: usize = 256;

/// What a burst ([`Engine::burst`]) got: what the source gave instead of an item of the batch,
/// for the general path, or the burst's end, with what the slot said if a batch left.
enum Pass<X> {
    Next(Poll<Option<X>>),
    Burst(Option<AfterPublish>),
}

/// Names a slot's types without repeating its parameters. Sealed.
pub trait SlotTypes: crate::slot::sealed::Sealed {
    /// The items.
    type Item;
    /// The source's error.
    type Error;
    /// The timer.
    type Timer: Timer;
    #[doc(hidden)]
    #[allow(clippy::type_complexity)]
    fn finish_erased(
        &self,
        own: Option<FillToken>,
        first_at: Option<<Self::Timer as Timer>::Instant>,
        reason: FlushReason,
    );
}

impl<M: RawMutex, T, const N: usize, Tm: Timer, E> SlotTypes for Slot<M, T, N, Tm, E> {
    type Item = T;
    type Error = E;
    type Timer = Tm;
    fn finish_erased(&self, own: Option<FillToken>, first_at: Option<Tm::Instant>, reason: FlushReason) {
        self.finish(own, first_at, reason);
    }
}

type InstantOf<R> = <<<R as core::ops::Deref>::Target as SlotTypes>::Timer as Timer>::Instant;
type SleepOf<R> = <<<R as core::ops::Deref>::Target as SlotTypes>::Timer as Timer>::Sleep;

/// The filling half of a [`Slot`]: owns the source, runs the batching policy.
///
/// Create with [`Slot::split`]. It is a future: `.await` it in its own task, or beside the
/// consumer in one task. It finishes when the source ends, the slot is closed, or the receiver is
/// gone.
///
/// The producer is itself the future: awaiting it in place (`(&mut producer).await` when it is
/// `Unpin`, or a `&'static mut` in an embassy task, see [`embassy`](crate::embassy)) keeps one copy
/// of its state.
///
/// # Cancel safety
/// Dropping it publishes the partial batch and leaves an item it pulled but had not placed in the
/// slot, so the receiver (or [`Receiver::drain_remainder`]) still gets every item it took. Items
/// it never pulled stay in the source ([`Producer::into_inner`] gives the source back).
#[must_use = "futures do nothing unless polled"]
pub struct Producer<R, S, W, K = Plain>
where
    R: SlotRef,
    R::Target: SlotTypes,
{
    engine: Engine<R, W, K>,
    /// Pinned whenever the producer is: polled in place, never moved out (see `poll`).
    source: S,
    /// The deadline timer, armed in place like `source`.
    sleep: Option<SleepOf<R>>,
}

impl<R: SlotRef, S, W, K> core::fmt::Debug for Producer<R, S, W, K>
where
    R::Target: SlotTypes,
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Producer")
            .field("max_items", &self.engine.limits.max_items)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl<R: SlotRef, S, W, K> defmt::Format for Producer<R, S, W, K>
where
    R::Target: SlotTypes,
{
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Producer {{ max_items: {} }}", self.engine.limits.max_items)
    }
}

/// Attaches a producer and a receiver to the slot behind `slot`.
#[allow(clippy::type_complexity)]
pub(crate) fn split<R, S, W, K, M, T, const N: usize, Tm, E>(
    slot: R,
    source: S,
    config: Config<N, W>,
) -> Result<(Producer<R, S, W, K>, Receiver<R, K>), SplitError>
where
    R: SlotRef<Target = Slot<M, T, N, Tm, E>> + Clone,
    M: RawMutex,
    Tm: Timer,
    S: Intake<K, Item = T>,
    K: Kind<Error = E>,
    W: Weigher<T>,
{
    let (engine, rx) = attach::<R, W, K, M, T, N, Tm, E>(slot, config)?;
    Ok((engine.with_source(source), rx))
}

/// Attaches a receiver, and a producer that gets its source later ([`Engine::with_source`]): the
/// tokio adapter builds the producer inside its task, over a source it hands back at the end.
#[allow(clippy::type_complexity)]
pub(crate) fn attach<R, W, K, M, T, const N: usize, Tm, E>(
    slot: R,
    config: Config<N, W>,
) -> Result<(Engine<R, W, K>, Receiver<R, K>), SplitError>
where
    R: SlotRef<Target = Slot<M, T, N, Tm, E>> + Clone,
    M: RawMutex,
    Tm: Timer,
    W: Weigher<T>,
{
    let limits = config.limits::<Tm>()?;
    slot.attach()?;
    let engine = Engine {
        slot: slot.clone(),
        limits,
        weigher: config.weigher,
        own: None,
        fill: Fill::new(),
        parked: false,
        armed: false,
        pushed: false,
        requests: Control::default(),
        idle_probe: false,
        stop_on_error: false,
        done: false,
        _kind: PhantomData,
    };
    Ok((engine, Receiver::attached(slot)))
}

impl<R: SlotRef, W, K> Engine<R, W, K>
where
    R::Target: SlotTypes,
{
    /// Stop at the first error from the source (after handing it over), as `try_for_each` does.
    pub(crate) fn stop_on_error(mut self) -> Self {
        self.stop_on_error = true;
        self
    }

    /// The producer over `source`.
    pub(crate) fn with_source<S>(self, source: S) -> Producer<R, S, W, K> {
        Producer {
            engine: self,
            source,
            sleep: None,
        }
    }
}

impl<R, S, W, K> Producer<R, S, W, K>
where
    R: SlotRef,
    R::Target: SlotTypes,
{
    /// Stops the producer and gives the source back, with every item it never pulled. The
    /// partial batch is published as if the producer was dropped ([`FlushReason::Close`]).
    ///
    /// A producer that was polled is pinned, so this takes one that was not, or one that is
    /// `Unpin` (polled through `&mut`).
    pub fn into_inner(self) -> S {
        let Producer { engine, source, sleep } = self;
        drop(sleep);
        drop(engine);
        source
    }
}

impl<R, S, W, K, M, T, const N: usize, Tm, E> Future for Producer<R, S, W, K>
where
    R: SlotRef<Target = Slot<M, T, N, Tm, E>>,
    M: RawMutex,
    Tm: Timer,
    S: Intake<K, Item = T>,
    K: Kind<Error = E>,
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
        this.engine.poll::<S>(cx, source, sleep)
    }
}

/// The producer's state apart from the source: what the policy needs between polls.
pub(crate) struct Engine<R, W, K>
where
    R: SlotRef,
    R::Target: SlotTypes,
{
    slot: R,
    limits: Limits<SpanOf<<R::Target as SlotTypes>::Timer>>,
    weigher: W,
    /// The buffer being filled, if any.
    own: Option<FillToken>,
    fill: Fill<InstantOf<R>>,
    /// This producer parked an item (or error) in the slot: it pulled it with no room for it.
    /// The slot keeps it (so a drain or a dropped producer loses nothing) until it is placed.
    parked: bool,
    /// The sleep is armed for the batch's due instant ([`Fill::due`]) as it is now. Cleared for
    /// each new batch and when that instant may have moved (an idle gap restarted): the producer
    /// then arms it again.
    armed: bool,
    /// Items arrived since the source last returned `Pending` (for the idle gap).
    pushed: bool,
    /// What was asked of it so far: [`Control::CLOSED`] (it is closing) and
    /// [`Control::CLOSE_WHEN_IDLE`].
    requests: Control,
    /// The source returned `Pending` and the producer yielded once to see if it stays so.
    idle_probe: bool,
    /// Finish after the first error from the source.
    stop_on_error: bool,
    done: bool,
    _kind: PhantomData<K>,
}

impl<R: SlotRef, W, K> Drop for Engine<R, W, K>
where
    R::Target: SlotTypes,
{
    fn drop(&mut self) {
        self.finish(FlushReason::Close);
    }
}

impl<R: SlotRef, W, K> Engine<R, W, K>
where
    R::Target: SlotTypes,
{
    /// Publishes the partial batch (if any) with `reason` and tells the slot the producer is
    /// done. Once: from the poll that ends it, or from `Drop`.
    fn finish(&mut self, reason: FlushReason) {
        if !self.done {
            self.done = true;
            // Through the slot's erased hook: `Drop` cannot name the slot's `M` and `N`.
            SlotTypes::finish_erased(&*self.slot, self.own.take(), self.fill.first_at, reason);
        }
    }
}

impl<R, W, K, M, T, const N: usize, Tm, E> Engine<R, W, K>
where
    R: SlotRef<Target = Slot<M, T, N, Tm, E>>,
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
        S: Intake<K, Item = T>,
        K: Kind<Error = E>,
    {
        if self.done {
            return Poll::Ready(());
        }
        // One critical section: the controls, and room if the producer holds no buffer and has
        // no item waiting to be placed (that one claims room by itself).
        let need_room = self.own.is_none() && !self.parked;
        let (control, mut room) = self.slot.producer_step(cx, need_room);
        self.requests.absorb(control);
        if control.has(Control::FLUSH) {
            // The slot has sealed the open batch already, as it handed over the flush. What the
            // slot says after this publish is read again at the next (a close stays set there).
            let _ = self.publish_own(FlushReason::Flush);
        }
        let mut pulled = 0usize;
        loop {
            // Closing: the partial batch goes; an item that found no room stays in the slot, for
            // the receiver or a drain.
            if self.closing() {
                self.finish(FlushReason::Close);
                return Poll::Ready(());
            }
            // The next item, or what the source says instead: an item that found no room waits in
            // the slot with the instant it was pulled, and goes first; else one from the source,
            // if there is room for it.
            let mut parked_at = None;
            let next = if self.parked {
                self.parked = false;
                match self.slot.unpark() {
                    Some((x, at)) => {
                        parked_at = Some(at);
                        Poll::Ready(Some(x))
                    }
                    None => continue,
                }
            } else {
                // Never pull an item there is no room for: that is the backpressure.
                if self.own.is_none() {
                    match room.take().unwrap_or_else(|| self.slot.room()) {
                        Room::Open => {}
                        Room::Own(t) => self.own = Some(t),
                        Room::None => return Poll::Pending,
                    }
                }
                // The burst loop (streams: the first item alone, then up to the next clock read)
                // pays off where the clock is not read at every item; on a cheap clock a stream's
                // items take the general path one by one (`place_item` reads the clock for each).
                let burst =
                    (!Tm::CHEAP_NOW || S::STAMP_AFTER_FILL) && (!W::WEIGHS || self.limits.max_weight == usize::MAX);
                if burst && self.own.is_some() {
                    match self.burst(cx, source.as_mut(), &mut pulled) {
                        Pass::Next(next) => next,
                        Pass::Burst(None) => continue,
                        Pass::Burst(Some(after)) => {
                            if let Some(p) = self.after_publish(&after, &mut pulled, cx) {
                                return p;
                            }
                            continue;
                        }
                    }
                } else {
                    source.as_mut().poll_item(cx)
                }
            };
            // What left, if anything: one place for every path that may hand a batch over.
            let left = match next {
                Poll::Ready(Some(x)) => {
                    if parked_at.is_none() {
                        self.idle_probe = false;
                        pulled += 1;
                    }
                    match self.place(x, parked_at) {
                        Ok(left) => left,
                        Err(x) => {
                            // No room after all: parked in the slot, and placed first in the next
                            // poll. Its waker, registered at the start of this one, is woken when a
                            // buffer is handed back (or was already, and that poll comes anyway).
                            let at = parked_at.unwrap_or_else(|| self.slot.timer().now());
                            self.slot.park(x, at);
                            self.parked = true;
                            return Poll::Pending;
                        }
                    }
                }
                Poll::Ready(None) => {
                    self.finish(FlushReason::End);
                    return Poll::Ready(());
                }
                Poll::Pending if self.requests.has(Control::CLOSE_WHEN_IDLE) => {
                    if self.idle_probe {
                        // `Pending` again after a yield to the executor: the source is idle.
                        self.requests.set(Control::CLOSED);
                    } else {
                        // A `Pending` may only mean the task's budget ran out (tokio's coop):
                        // yield once, and look again.
                        self.idle_probe = true;
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    None
                }
                Poll::Pending => match self.poll_due(cx, sleep.as_mut()) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(left) => left,
                },
            };
            if let Some(after) = left {
                if let Some(p) = self.after_publish(&after, &mut pulled, cx) {
                    return p;
                }
            }
        }
    }

    fn closing(&self) -> bool {
        self.requests.has(Control::CLOSED)
    }

    /// One burst into the buffer the producer holds (streams: the first item of a batch alone,
    /// stamped at once, or items up to the next clock read; bulk sources: what one fill takes).
    /// `Pass::Burst` says what left, if a batch did (full or due at the burst's end); what the
    /// source gave instead of an item of this batch goes to the general path, as `Pass::Next`.
    fn burst<S>(&mut self, cx: &mut Context<'_>, mut source: Pin<&mut S>, pulled: &mut usize) -> Pass<Result<T, E>>
    where
        S: Intake<K, Item = T>,
        K: Kind<Error = E>,
    {
        // Called only while the producer holds a buffer (the open batch takes items by the general
        // path); the `else` is there for the borrow.
        let Some(t) = &mut self.own else {
            return Pass::Burst(None);
        };
        let buf = self.slot.filling(t);
        if buf.is_empty() && !S::STAMP_AFTER_FILL {
            // The first item of a batch, pulled alone and stamped at once; what is not an item of
            // a batch that goes on takes the general path.
            return match source.as_mut().poll_item(cx) {
                Poll::Ready(Some(Ok(item))) if self.limits.max_items > 1 => {
                    // An empty buffer has room: `N >= max_items > 1`.
                    let _ = buf.push(item);
                    *pulled += 1;
                    self.pushed = true;
                    self.idle_probe = false;
                    self.fill.start::<Tm>(self.slot.timer().now(), &self.limits, 1);
                    Pass::Burst(None)
                }
                other => Pass::Next(other),
            };
        }
        let max = self.limits.max_items;
        // On a cheap clock a bulk fill, which takes only what is ready at one instant, is looked
        // at after each take from the source, not each item.
        let each_take = Tm::CHEAP_NOW && S::STAMP_AFTER_FILL;
        let stop = match self.fill.check_len {
            _ if each_take => max,
            0 => max,
            c => c.min(max),
        };
        let before = buf.len();
        let res = source.as_mut().poll_fill(cx, buf, stop, each_take);
        if before == 0 && !buf.is_empty() {
            // Bulk intake: what one fill took was all ready at once.
            self.fill.start::<Tm>(self.slot.timer().now(), &self.limits, buf.len());
        }
        match res {
            Burst::Stop => {
                let len = buf.len();
                *pulled += len - before;
                self.pushed = true;
                self.idle_probe = false;
                // A burst stops where a clock read is planned (or at `max`).
                let reason = self.leaves(len, true);
                Pass::Burst(reason.and_then(|r| self.publish_own(r)))
            }
            Burst::Other { pushed, next } => {
                *pulled += buf.len() - before;
                self.pushed |= pushed;
                self.idle_probe &= !pushed;
                Pass::Next(next)
            }
        }
    }

    /// After an error from the source: closes if the producer stops at the first one.
    fn close_on_error(&mut self) {
        if self.stop_on_error {
            self.requests.set(Control::CLOSED);
        }
    }

    /// After a publish: yields (returns `Some(Pending)`) when the caller waits for that batch, so a
    /// caller on the same thread takes it now, or when this poll pulled enough items.
    fn after_publish(&mut self, after: &AfterPublish, pulled: &mut usize, cx: &mut Context<'_>) -> Option<Poll<()>> {
        self.requests.absorb(after.control);
        if after.control.has(Control::DRIVEN) {
            // The in-task driver polls the caller right after this returns, and polls the
            // producer again by itself since a handoff happened: no wake-up needed, so it
            // always hands over at once.
            return Some(Poll::Pending);
        }
        if after.consumer_waiting {
            // Hand over, and wait until the caller has taken it: the slot wakes this producer
            // then. Waking itself instead would not be enough: an executor may poll it again
            // before the caller (tokio's `block_on` polls its own future last).
            *pulled = 0;
            return Some(Poll::Pending);
        }
        if after.open || *pulled >= YIELD_AFTER_ITEMS {
            // A batch left by time, for a caller that has not asked yet: yield, so a caller on
            // this thread can take it before it fills up. And an always-ready source: let the
            // executor run its other tasks now and then.
            *pulled = 0;
            cx.waker().wake_by_ref();
            return Some(Poll::Pending);
        }
        None
    }

    /// Places an item or an error pulled at `at` (now, if `None`). Hands it back if there is no
    /// room (the producer's waker, registered at the start of the poll, is woken when there is);
    /// returns what the slot said if a batch left.
    fn place(&mut self, x: Result<T, E>, at: Option<Tm::Instant>) -> Result<Option<AfterPublish>, Result<T, E>> {
        match x {
            Ok(item) => self.place_item(item, at).map_err(Ok),
            Err(error) => self.place_error(error).map_err(Err),
        }
    }

    fn place_item(&mut self, item: T, at: Option<Tm::Instant>) -> Result<Option<AfterPublish>, T> {
        let w = if W::WEIGHS { self.weigher.weigh(&item) } else { 0 };
        let mut item = item;
        let mut published = None;
        loop {
            if self.own.is_none() {
                match self.slot.append_or_claim::<W>(item, w, &self.limits) {
                    Ok(()) => return Ok(published),
                    Err((back, Some(t))) => {
                        item = back;
                        self.own = Some(t);
                    }
                    Err((back, None)) => return Err(back),
                }
            }
            let Some(t) = &mut self.own else { unreachable!() };
            let buf = self.slot.filling(t);
            let first = buf.is_empty();
            let fits = self.limits.fits(W::WEIGHS, buf.len(), self.fill.weight, w);
            // A push fails only past `N`, unreachable while `max_items <= N`: kept total rather
            // than panicking, as an item that does not fit.
            if let Err(back) = if fits { buf.push(item) } else { Err(item) } {
                // The batch is full for this item: it goes, and the item starts the next one.
                item = back;
                published = self.publish_own(FlushReason::Full).or(published);
                continue;
            }
            let len = buf.len();
            self.fill.weight += w;
            self.pushed = true;
            if first {
                let at = at.unwrap_or_else(|| self.slot.timer().now());
                self.fill.start::<Tm>(at, &self.limits, 1);
            }
            if let Some(reason) = self.leaves(len, Tm::CHEAP_NOW || len == self.fill.check_len) {
                published = self.publish_own(reason).or(published);
            }
            return Ok(published);
        }
    }

    /// Why the batch being filled, now `len` items, leaves at once, if it does: it is full, or,
    /// when `look` (a clock read is planned at this length: every item on a cheap clock), its
    /// deadline has passed. One rule for the burst and the general path.
    fn leaves(&mut self, len: usize, look: bool) -> Option<FlushReason> {
        if self.limits.is_full(W::WEIGHS, len, self.fill.weight) {
            Some(FlushReason::Full)
        } else if look
            && self
                .fill
                .deadline_passed::<Tm>(self.slot.timer(), len, self.limits.max_wait())
        {
            Some(FlushReason::Deadline)
        } else {
            None
        }
    }

    /// Ends the fill state of the batch that leaves ([`Fill::advance`]), handing back its first
    /// item's instant and its weight, and disarms the sleep, which was armed for that batch.
    fn end_fill(&mut self, len: usize) -> (Option<Tm::Instant>, usize) {
        self.armed = false;
        self.fill.advance::<Tm>(self.limits.max_items, len)
    }

    fn place_error(&mut self, error: E) -> Result<Option<AfterPublish>, E> {
        let mut error = error;
        if self.own.is_none() {
            error = match self.slot.append_error_open(error) {
                Ok(()) => {
                    self.close_on_error();
                    return Ok(None);
                }
                Err(error) => error,
            };
            match self.slot.claim() {
                Some(t) => self.own = Some(t),
                None => return Err(error),
            }
        }
        let Some(t) = self.own.take() else { unreachable!() };
        self.close_on_error();
        let (first_at, weight) = self.end_fill(0);
        let p = Published {
            error: Some(error),
            ..Published::sealed(FlushReason::Error, first_at, weight)
        };
        Ok(Some(self.slot.publish(t, p)))
    }

    /// The source has nothing now: emit the batch if its deadline or idle gap has passed, else
    /// arm the sleep for whichever comes first. `Ready` means look again: with what the slot said
    /// if a batch was emitted.
    fn poll_due(&mut self, cx: &mut Context<'_>, mut sleep: Pin<&mut Option<Tm::Sleep>>) -> Poll<Option<AfterPublish>> {
        // Never a timer without a batch: it has no first item yet (or no buffer is held: then
        // neither, as a batch's fill state ends whenever its buffer goes).
        if self.fill.first_at.is_none() {
            return Poll::Pending;
        }
        let timer = self.slot.timer();
        let now = timer.now();
        if core::mem::take(&mut self.pushed) {
            if let Some(idle) = self.limits.idle {
                self.fill.idle_at = now.deadline_after(idle);
                self.armed = false;
            }
        }
        let Some((at, reason)) = self.fill.due(self.limits.max_wait()) else {
            return Poll::Pending;
        };
        if at <= now {
            return Poll::Ready(self.publish_own(reason));
        }
        if !self.armed {
            match sleep.as_mut().as_pin_mut() {
                Some(s) => timer.reset(s, at),
                None => sleep.set(Some(timer.sleep_until(at))),
            }
            self.armed = true;
        }
        let fired = sleep.as_pin_mut().is_some_and(|s| s.poll(cx).is_ready());
        if fired {
            // Re-checked against the current batch on the next pass: a sleep armed for an older
            // batch can never emit this one early.
            self.armed = false;
            return Poll::Ready(None);
        }
        Poll::Pending
    }

    /// Publishes the buffer being filled, if it holds anything.
    fn publish_own(&mut self, reason: FlushReason) -> Option<AfterPublish> {
        let t = self.own.as_mut()?;
        let len = self.slot.filling(t).len();
        if len == 0 {
            return None;
        }
        let t = self.own.take()?;
        let quick = reason == FlushReason::Full && self.fill.quick::<Tm>(self.limits.max_wait());
        let (first_at, weight) = self.end_fill(len);
        let p = Published {
            reason,
            first_at,
            // An unweighted batch weighs nothing (said so, the compiler stores a constant).
            weight: if W::WEIGHS { weight } else { 0 },
            error: None,
            // Not full: a batch that fills goes at once, for that reason.
            open: reason.stays_open(),
            quick,
        };
        Some(self.slot.publish(t, p))
    }
}
