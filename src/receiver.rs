//! [`Receiver`]: the caller's half of a [`Slot`]. Batches by zero-copy guard or as a `Stream`.
//!
//! [`Receiver::next`] lends the caller a ready buffer through a [`BatchGuard`]; dropping the
//! guard hands the buffer back to the producer for refilling. The [`Stream`] impl moves each
//! batch out instead (one copy of the buffer), for combinator code. Both are cancel-safe: a
//! `next()` future dropped before it completes takes nothing.

use core::convert::Infallible;
use core::fmt;
use core::future::poll_fn;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::pin::Pin;
use core::task::{Context, Poll};

use embassy_sync::blocking_mutex::raw::RawMutex;
use futures_core::{FusedStream, Stream};
use heapless::Vec;

use crate::policy::BatchInfo;
use crate::producer::SlotTypes;
use crate::slot::{LentSlot, LentToken, Remainder, Slot, SlotRef};
#[cfg(feature = "stats")]
use crate::stats::Stats;
use crate::timer::{Instant, Timer};

/// The caller's half of a [`Slot`]. Create with [`Slot::split`].
///
/// Dropping the receiver closes the slot: the producer stops. Call
/// [`Receiver::drain_remainder`] first to keep what is still buffered.
#[must_use = "streams do nothing unless polled"]
pub struct Receiver<R>
where
    R: SlotRef,
    R::Target: SlotTypes + Detach,
{
    slot: R,
    terminated: bool,
}

impl<R: SlotRef> fmt::Debug for Receiver<R>
where
    R::Target: SlotTypes + Detach + fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("slot", &&*self.slot)
            .field("terminated", &self.terminated)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl<R: SlotRef> defmt::Format for Receiver<R>
where
    R::Target: SlotTypes + Detach,
{
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Receiver {{ terminated: {} }}", self.terminated)
    }
}

// The receiver never pins its fields: it is `Unpin` whatever the slot handle and instant are.
impl<R: SlotRef> Unpin for Receiver<R> where R::Target: SlotTypes + Detach {}

impl<R: SlotRef> Drop for Receiver<R>
where
    R::Target: SlotTypes + Detach,
{
    fn drop(&mut self) {
        self.slot.detach();
    }
}

impl<R: SlotRef> Receiver<R>
where
    R::Target: SlotTypes + Detach,
{
    /// Whether the end was delivered.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn is_terminated_inner(&self) -> bool {
        self.terminated
    }

    /// The handle to the slot (a reference or an `Arc`).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn slot_ref(&self) -> &R {
        &self.slot
    }
}

impl<R, M, T, const N: usize, Tm, E> Receiver<R>
where
    R: SlotRef<Target = Slot<M, T, N, Tm, E>>,
    M: RawMutex,
    Tm: Timer,
{
    /// A receiver for a slot `split` has just attached.
    pub(crate) fn attached(slot: R) -> Self {
        Self {
            slot,
            terminated: false,
        }
    }

    /// The next batch, or the next error from the source, or `None` once the producer is done and
    /// every batch was taken (and forever after).
    #[allow(clippy::type_complexity)]
    pub async fn try_next<'a>(
        &'a mut self,
    ) -> Option<Result<BatchGuard<'a, T, N, Tm::Instant, Slot<M, T, N, Tm, E>>, E>>
    where
        Slot<M, T, N, Tm, E>: 'a,
    {
        let taken = poll_fn(|cx| self.poll_taken(cx)).await?;
        Some(taken.map(|(token, info)| BatchGuard {
            token: Some(token),
            info,
            slot: &*self.slot,
            _lent: PhantomData,
        }))
    }

    #[allow(clippy::type_complexity)]
    fn poll_taken(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<(LentToken, BatchInfo<Tm::Instant>), E>>> {
        if self.terminated {
            return Poll::Ready(None);
        }
        match self.slot.poll_take(cx) {
            Poll::Ready(None) => {
                self.terminated = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(r)) => Poll::Ready(Some(r)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Polls for the next batch, moved out of its buffer (the buffer goes straight back).
    #[allow(clippy::type_complexity)]
    pub fn poll_next_owned(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Batch<T, N, Tm::Instant>, E>>> {
        self.poll_taken(cx).map(|o| {
            o.map(|r| {
                r.map(|(token, info)| Batch {
                    items: self.slot.take_lent(token),
                    info,
                })
            })
        })
    }

    /// See [`Slot::flush`].
    pub fn flush(&self) {
        self.slot.flush();
    }

    /// See [`Slot::close`]. Keep calling `next()` to get the batches still buffered.
    pub fn close(&self) {
        self.slot.close();
    }

    /// See [`Slot::close_when_idle`].
    pub fn close_when_idle(&self) {
        self.slot.close_when_idle();
    }

    /// See [`Slot::stats`].
    #[cfg(feature = "stats")]
    pub fn stats(&self) -> Stats {
        self.slot.stats()
    }

    /// The slot this receiver reads.
    pub fn slot(&self) -> &Slot<M, T, N, Tm, E> {
        &self.slot
    }

    /// Closes the slot and takes every item it still holds, oldest first.
    ///
    /// Everything is there once the producer has finished or was dropped (it publishes its
    /// partial batch when it stops). While the producer still runs, it publishes its partial
    /// batch on its next poll; call this again after that to get it.
    pub fn drain_remainder(&mut self) -> Remainder<T, N> {
        self.slot.drain_remainder()
    }

    /// [`drain_remainder`](Self::drain_remainder), consuming the receiver.
    pub fn into_remainder(mut self) -> Remainder<T, N> {
        self.drain_remainder()
    }

    /// A `Stream` of `Result<Batch, E>`, for sources that can fail.
    pub fn into_try_stream(self) -> TryBatches<R>
    where
        R: Unpin,
    {
        TryBatches(self)
    }
}

impl<R, M, T, const N: usize, Tm> Receiver<R>
where
    R: SlotRef<Target = Slot<M, T, N, Tm, Infallible>>,
    M: RawMutex,
    Tm: Timer,
{
    /// The next batch, or `None` once the source ended (or the slot was closed) and every batch
    /// was taken.
    ///
    /// ```
    /// use core::time::Duration;
    /// use embassy_sync::blocking_mutex::raw::NoopRawMutex;
    /// use prefetch_batch::{Config, FlushReason, Slot, timer::ManualClock};
    ///
    /// static CLOCK: ManualClock = ManualClock::new();
    /// let clock = &CLOCK;
    /// let slot: Slot<NoopRawMutex, u32, 4, _> = Slot::new(clock);
    /// let source = prefetch_batch::testing::iter(0..6);
    /// let (producer, mut rx) = slot.split(source, Config::new()).unwrap();
    /// clock.block_on(async {
    ///     let consume = async {
    ///         let batch = rx.next().await.unwrap();
    ///         assert_eq!(batch.as_slice(), &[0, 1, 2, 3]);
    ///         assert_eq!(batch.info().reason, FlushReason::Full);
    ///         drop(batch);
    ///         let batch = rx.next().await.unwrap();
    ///         assert_eq!((batch.as_slice(), batch.info().reason), (&[4, 5][..], FlushReason::End));
    ///     };
    ///     prefetch_batch::testing::join(producer.run(), consume).await;
    /// });
    /// ```
    pub async fn next<'a>(&'a mut self) -> Option<BatchGuard<'a, T, N, Tm::Instant, Slot<M, T, N, Tm, Infallible>>>
    where
        Slot<M, T, N, Tm, Infallible>: 'a,
    {
        match self.try_next().await? {
            Ok(guard) => Some(guard),
            Err(never) => match never {},
        }
    }
}

impl<R, M, T, const N: usize, Tm> Stream for Receiver<R>
where
    R: SlotRef<Target = Slot<M, T, N, Tm, Infallible>> + Unpin,
    M: RawMutex,
    Tm: Timer,
{
    type Item = Batch<T, N, Tm::Instant>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_owned(cx).map(|o| {
            o.map(|r| match r {
                Ok(b) => b,
                Err(never) => match never {},
            })
        })
    }
}

impl<R, M, T, const N: usize, Tm> FusedStream for Receiver<R>
where
    R: SlotRef<Target = Slot<M, T, N, Tm, Infallible>> + Unpin,
    M: RawMutex,
    Tm: Timer,
{
    fn is_terminated(&self) -> bool {
        self.terminated
    }
}

/// A [`Receiver`] as a `Stream` of `Result<Batch, E>`. From [`Receiver::into_try_stream`].
#[must_use = "streams do nothing unless polled"]
pub struct TryBatches<R>(pub Receiver<R>)
where
    R: SlotRef,
    R::Target: SlotTypes + Detach;

impl<R: SlotRef> fmt::Debug for TryBatches<R>
where
    R::Target: SlotTypes + Detach + fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TryBatches").field(&self.0).finish()
    }
}

impl<R, M, T, const N: usize, Tm, E> Stream for TryBatches<R>
where
    R: SlotRef<Target = Slot<M, T, N, Tm, E>> + Unpin,
    M: RawMutex,
    Tm: Timer,
{
    type Item = Result<Batch<T, N, Tm::Instant>, E>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().0.poll_next_owned(cx)
    }
}

impl<R, M, T, const N: usize, Tm, E> FusedStream for TryBatches<R>
where
    R: SlotRef<Target = Slot<M, T, N, Tm, E>> + Unpin,
    M: RawMutex,
    Tm: Timer,
{
    fn is_terminated(&self) -> bool {
        self.0.terminated
    }
}

/// A ready batch, lent to the caller without copying. Derefs to the `heapless::Vec`.
///
/// Read it, sort it, `drain(..)` it: it is yours until the guard drops. Dropping the guard drops
/// the items left in it and hands the buffer back to the producer. [`BatchGuard::take`] moves the
/// items out instead.
///
/// `S` is the slot it came from; the guard is `Send` when the slot is `Sync` (tokio's slot is),
/// so it can be held across an `.await` in a spawned task.
#[must_use = "dropping the guard hands the batch back at once"]
pub struct BatchGuard<'a, T, const N: usize, I: Instant, S: LentSlot<T, N> + ?Sized> {
    /// `None` only while `take` moves the items out.
    token: Option<LentToken>,
    info: BatchInfo<I>,
    slot: &'a S,
    /// The guard lends the batch like a `&mut Vec<T, N>`: `Send` and `Sync` as that is.
    _lent: PhantomData<&'a mut Vec<T, N>>,
}

impl<T: fmt::Debug, const N: usize, I: Instant, S: LentSlot<T, N> + ?Sized> fmt::Debug for BatchGuard<'_, T, N, I, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchGuard")
            .field("items", &self.as_slice())
            .field("info", &self.info)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl<T: defmt::Format, const N: usize, I: Instant, S: LentSlot<T, N> + ?Sized> defmt::Format
    for BatchGuard<'_, T, N, I, S>
{
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "BatchGuard {{ items: {}, info: {} }}", self.as_slice(), self.info)
    }
}

impl<T, const N: usize, I: Instant, S: LentSlot<T, N> + ?Sized> BatchGuard<'_, T, N, I, S> {
    /// Why the batch was emitted, when its first item arrived, and how old that item was when the
    /// batch was handed over.
    pub fn info(&self) -> BatchInfo<I> {
        self.info
    }

    /// Moves the items out (one copy of the buffer) and hands the buffer back.
    pub fn take(mut self) -> Batch<T, N, I> {
        let mut token = self.token.take().expect("a guard holds its token until dropped");
        let items = core::mem::take(self.slot.lent_items_mut(&mut token));
        self.slot.give_back(token);
        Batch { items, info: self.info }
    }
}

impl<T, const N: usize, I: Instant, S: LentSlot<T, N> + ?Sized> Deref for BatchGuard<'_, T, N, I, S> {
    type Target = Vec<T, N>;
    fn deref(&self) -> &Vec<T, N> {
        self.slot
            .lent_items(self.token.as_ref().expect("a guard holds its token until dropped"))
    }
}

impl<T, const N: usize, I: Instant, S: LentSlot<T, N> + ?Sized> DerefMut for BatchGuard<'_, T, N, I, S> {
    fn deref_mut(&mut self) -> &mut Vec<T, N> {
        self.slot
            .lent_items_mut(self.token.as_mut().expect("a guard holds its token until dropped"))
    }
}

impl<T, const N: usize, I: Instant, S: LentSlot<T, N> + ?Sized> Drop for BatchGuard<'_, T, N, I, S> {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            self.slot.give_back(token);
        }
    }
}

/// A batch moved out of the slot: the items and what the batch says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch<T, const N: usize, I: Instant> {
    /// The items, oldest first.
    pub items: Vec<T, N>,
    /// Why it was emitted and when its first item arrived.
    pub info: BatchInfo<I>,
}

impl<T, const N: usize, I: Instant> Deref for Batch<T, N, I> {
    type Target = Vec<T, N>;
    fn deref(&self) -> &Vec<T, N> {
        &self.items
    }
}

impl<T, const N: usize, I: Instant> DerefMut for Batch<T, N, I> {
    fn deref_mut(&mut self) -> &mut Vec<T, N> {
        &mut self.items
    }
}

impl<T, const N: usize, I: Instant> IntoIterator for Batch<T, N, I> {
    type Item = T;
    type IntoIter = <Vec<T, N> as IntoIterator>::IntoIter;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// What a receiver does to its slot when it drops. Sealed.
pub trait Detach: crate::slot::sealed::Sealed {
    #[doc(hidden)]
    fn detach(&self);
}

impl<M: RawMutex, T, const N: usize, Tm: Timer, E> Detach for Slot<M, T, N, Tm, E> {
    fn detach(&self) {
        self.detach_receiver();
    }
}
