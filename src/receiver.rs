//! [`Receiver`]: the caller's half of a [`Slot`]. Batches by zero-copy guard or as a `Stream`.
//!
//! [`Receiver::next`] lends the caller a ready buffer through a [`BatchGuard`]; dropping the
//! guard hands the buffer back to the producer for refilling. The [`Stream`] impl moves each
//! batch out instead (one copy of the buffer), for combinator code. Both are cancel-safe: a
//! `next()` future dropped before it completes takes nothing.

use core::convert::Infallible;
use core::fmt;
use core::future::poll_fn;
use core::ops::{Deref, DerefMut};
use core::pin::Pin;
use core::task::{Context, Poll};

use embassy_sync::blocking_mutex::raw::RawMutex;
use futures_core::{FusedStream, Stream};
use heapless::Vec;

use crate::config::ConfigError;
use crate::policy::BatchInfo;
use crate::producer::SlotTypes;
use crate::slot::{Release, Remainder, Slot};
use crate::stats::Stats;
use crate::timer::Timer;

/// The caller's half of a [`Slot`]. Create with [`Slot::split`] or [`Receiver::new`].
///
/// Dropping the receiver closes the slot: the producer stops. Call
/// [`Receiver::drain_remainder`] first to keep what is still buffered.
pub struct Receiver<R>
where
    R: Deref,
    R::Target: Release + SlotTypes,
{
    slot: R,
    terminated: bool,
}

impl<R: Deref> fmt::Debug for Receiver<R>
where
    R::Target: Release + SlotTypes + fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("slot", &&*self.slot)
            .field("terminated", &self.terminated)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl<R: Deref> defmt::Format for Receiver<R>
where
    R::Target: Release + SlotTypes,
{
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Receiver {{ terminated: {} }}", self.terminated)
    }
}

// The receiver never pins its fields: it is `Unpin` whatever the slot handle and instant are.
impl<R: Deref> Unpin for Receiver<R> where R::Target: Release + SlotTypes {}

impl<R: Deref> Drop for Receiver<R>
where
    R::Target: Release + SlotTypes,
{
    fn drop(&mut self) {
        self.slot.detach();
    }
}

impl<R: Deref> Receiver<R>
where
    R::Target: Release + SlotTypes,
{
    /// The handle to the slot (a reference or an `Arc`).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn slot_ref(&self) -> &R {
        &self.slot
    }
}

impl<R, M, T, const N: usize, Tm, E> Receiver<R>
where
    R: Deref<Target = Slot<M, T, N, Tm, E>>,
    M: RawMutex,
    Tm: Timer,
{
    /// Attaches a receiver to `slot`. Fails if the slot already has one.
    pub fn new(slot: R) -> Result<Self, ConfigError> {
        slot.attach_receiver()?;
        Ok(Self {
            slot,
            terminated: false,
        })
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
        Some(taken.map(|(index, info)| BatchGuard {
            // SAFETY: the slot lent buffer `index` to this receiver (`Lent`), and the guard borrows
            // the receiver mutably, so no second guard can exist until this one hands it back.
            items: unsafe { self.slot.buf_mut(index) },
            info,
            slot: &*self.slot,
            index,
        }))
    }

    #[allow(clippy::type_complexity)]
    fn poll_taken(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<(u8, BatchInfo<Tm::Instant>), E>>> {
        if self.terminated {
            return Poll::Ready(None);
        }
        match self.slot.poll_take(cx) {
            Poll::Ready(None) => {
                self.terminated = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(r)) => Poll::Ready(Some(r.map(|t| (t.index, t.info)))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Polls for the next batch, moved out of its buffer (the buffer goes straight back).
    #[allow(clippy::type_complexity)]
    pub fn poll_next_owned(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Batch<T, N, Tm::Instant>, E>>> {
        self.poll_taken(cx).map(|o| {
            o.map(|r| {
                r.map(|(index, info)| {
                    // SAFETY: buffer `index` was just lent to this receiver; no guard exists.
                    let items = core::mem::take(unsafe { self.slot.buf_mut(index) });
                    self.slot.release(index);
                    Batch { items, info }
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
    pub fn into_try_stream(self) -> TryBatches<R> {
        TryBatches(self)
    }
}

impl<R, M, T, const N: usize, Tm> Receiver<R>
where
    R: Deref<Target = Slot<M, T, N, Tm, Infallible>>,
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
    R: Deref<Target = Slot<M, T, N, Tm, Infallible>> + Unpin,
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
    R: Deref<Target = Slot<M, T, N, Tm, Infallible>> + Unpin,
    M: RawMutex,
    Tm: Timer,
{
    fn is_terminated(&self) -> bool {
        self.terminated
    }
}

/// A [`Receiver`] as a `Stream` of `Result<Batch, E>`. From [`Receiver::into_try_stream`].
pub struct TryBatches<R>(pub Receiver<R>)
where
    R: Deref,
    R::Target: Release + SlotTypes;

impl<R: Deref> fmt::Debug for TryBatches<R>
where
    R::Target: Release + SlotTypes + fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TryBatches").field(&self.0).finish()
    }
}

impl<R, M, T, const N: usize, Tm, E> Stream for TryBatches<R>
where
    R: Deref<Target = Slot<M, T, N, Tm, E>> + Unpin,
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
    R: Deref<Target = Slot<M, T, N, Tm, E>> + Unpin,
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
pub struct BatchGuard<'a, T, const N: usize, I, S: Release + ?Sized> {
    items: &'a mut Vec<T, N>,
    info: BatchInfo<I>,
    slot: &'a S,
    index: u8,
}

impl<T: fmt::Debug, const N: usize, I: fmt::Debug, S: Release + ?Sized> fmt::Debug for BatchGuard<'_, T, N, I, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchGuard")
            .field("items", &self.items)
            .field("info", &self.info)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl<T: defmt::Format, const N: usize, I: defmt::Format, S: Release + ?Sized> defmt::Format
    for BatchGuard<'_, T, N, I, S>
{
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "BatchGuard {{ items: {}, info: {} }}",
            self.items.as_slice(),
            self.info
        )
    }
}

impl<T, const N: usize, I: Copy, S: Release + ?Sized> BatchGuard<'_, T, N, I, S> {
    /// Why the batch was emitted, when its first item arrived, and how old that item was when the
    /// batch was handed over.
    pub fn info(&self) -> BatchInfo<I> {
        self.info
    }

    /// Moves the items out (one copy of the buffer) and hands the buffer back.
    pub fn take(self) -> Batch<T, N, I> {
        Batch {
            items: core::mem::take(self.items),
            info: self.info,
        }
    }
}

impl<T, const N: usize, I, S: Release + ?Sized> Deref for BatchGuard<'_, T, N, I, S> {
    type Target = Vec<T, N>;
    fn deref(&self) -> &Vec<T, N> {
        self.items
    }
}

impl<T, const N: usize, I, S: Release + ?Sized> DerefMut for BatchGuard<'_, T, N, I, S> {
    fn deref_mut(&mut self) -> &mut Vec<T, N> {
        self.items
    }
}

impl<T, const N: usize, I, S: Release + ?Sized> Drop for BatchGuard<'_, T, N, I, S> {
    fn drop(&mut self) {
        // Item destructors run here, outside the slot's lock.
        self.items.clear();
        self.slot.release(self.index);
    }
}

/// A batch moved out of the slot: the items and what the batch says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Batch<T, const N: usize, I> {
    /// The items, oldest first.
    pub items: Vec<T, N>,
    /// Why it was emitted and when its first item arrived.
    pub info: BatchInfo<I>,
}

impl<T, const N: usize, I> Deref for Batch<T, N, I> {
    type Target = Vec<T, N>;
    fn deref(&self) -> &Vec<T, N> {
        &self.items
    }
}

impl<T, const N: usize, I> DerefMut for Batch<T, N, I> {
    fn deref_mut(&mut self) -> &mut Vec<T, N> {
        &mut self.items
    }
}

impl<T, const N: usize, I> IntoIterator for Batch<T, N, I> {
    type Item = T;
    type IntoIter = <Vec<T, N> as IntoIterator>::IntoIter;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}
