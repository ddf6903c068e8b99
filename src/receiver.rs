//! [`Receiver`]: the caller's half of a [`Slot`]. Batches by zero-copy guard or as a `Stream`.
//!
//! [`Receiver::recv`] lends the caller a ready buffer through a [`BatchGuard`]; dropping the
//! guard hands the buffer back to the producer for refilling. The [`Stream`] impl moves each
//! batch out instead (one copy of the buffer), for combinator code. Both are cancel-safe: a
//! `recv()` future dropped before it completes takes nothing.
//!
//! For a fallible source ([`Fallible`](crate::source::Fallible)) both hand out `Result`s: each
//! error comes right after the batch of the items before it.

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
use crate::slot::{LentSlot, LentToken, Remainder, Slot, SlotRef};
use crate::source::{Kind, Plain};
use crate::timer::Timer;

/// The caller's half of a [`Slot`]: from [`Slot::split`] or [`Slot::try_split`].
///
/// `K` is the source's kind: [`Plain`] (batches are handed out as they are) or
/// [`Fallible<E>`](crate::source::Fallible) (as `Result`s).
///
/// Dropping the receiver closes the slot: the producer stops. Call
/// [`Receiver::drain_remainder`] first to keep what is still buffered.
#[must_use = "streams do nothing unless polled"]
pub struct Receiver<R, K = Plain>
where
    R: SlotRef,
    R::Target: Detach,
{
    slot: R,
    _kind: PhantomData<fn() -> K>,
}

impl<R: SlotRef, K> fmt::Debug for Receiver<R, K>
where
    R::Target: Detach + fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").field("slot", &&*self.slot).finish()
    }
}

#[cfg(feature = "defmt")]
impl<R: SlotRef, K> defmt::Format for Receiver<R, K>
where
    R::Target: Detach,
{
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Receiver")
    }
}

// The receiver never pins its fields: it is `Unpin` whatever the slot handle is.
impl<R: SlotRef, K> Unpin for Receiver<R, K> where R::Target: Detach {}

impl<R: SlotRef, K> Drop for Receiver<R, K>
where
    R::Target: Detach,
{
    fn drop(&mut self) {
        self.slot.detach();
    }
}

impl<R: SlotRef, K> Receiver<R, K>
where
    R::Target: Detach,
{
    /// A receiver for a slot `split` has just attached.
    pub(crate) fn attached(slot: R) -> Self {
        Self {
            slot,
            _kind: PhantomData,
        }
    }

    /// The handle to the slot (a reference or an `Arc`).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn handle(&self) -> &R {
        &self.slot
    }
}

impl<R, K, M, T, const N: usize, Tm> Receiver<R, K>
where
    R: SlotRef<Target = Slot<M, T, N, Tm, K::Error>>,
    K: Kind,
    M: RawMutex,
    Tm: Timer,
{
    /// The next batch, lent without copying (for a fallible source: or the next error), or `None`
    /// once the producer is done and every batch was taken (and forever after).
    ///
    /// # Cancel safety
    /// Cancel-safe: a future dropped before it completes has taken nothing.
    ///
    /// ```
    /// use embassy_sync::blocking_mutex::raw::NoopRawMutex;
    /// use prefetch_batch::{Config, FlushReason, Slot, testing, timer::ManualClock};
    ///
    /// static CLOCK: ManualClock = ManualClock::new();
    /// let slot: Slot<NoopRawMutex, u32, 4, _> = Slot::new(&CLOCK);
    /// let (producer, mut rx) = slot.split(testing::iter(0..6), Config::new()).unwrap();
    /// CLOCK.block_on(async {
    ///     let consume = async {
    ///         let batch = rx.recv().await.unwrap();
    ///         assert_eq!((batch.as_slice(), batch.info().reason), (&[0, 1, 2, 3][..], FlushReason::Full));
    ///         drop(batch); // hands the buffer back
    ///         let batch = rx.recv().await.unwrap();
    ///         assert_eq!((batch.as_slice(), batch.info().reason), (&[4, 5][..], FlushReason::End));
    ///     };
    ///     testing::join(producer, consume).await;
    /// });
    /// ```
    #[allow(clippy::type_complexity)]
    pub async fn recv<'a>(&'a mut self) -> Option<K::Out<BatchGuard<'a, T, N, Slot<M, T, N, Tm, K::Error>>>>
    where
        Slot<M, T, N, Tm, K::Error>: 'a,
    {
        let taken = poll_fn(|cx| self.poll_taken(cx)).await?;
        let slot = &*self.slot;
        Some(K::out(taken.map(|(token, info)| BatchGuard {
            token: Some(token),
            info,
            slot,
            _lent: PhantomData,
        })))
    }

    /// The next ready buffer's token, or error, or the end.
    #[allow(clippy::type_complexity)]
    pub(crate) fn poll_taken(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(LentToken, BatchInfo<Tm::Instant>), K::Error>>> {
        self.slot.poll_take(cx)
    }

    /// The slot this receiver reads: flush, close, read counters, from here or from anywhere
    /// else that can reach the slot.
    pub fn slot(&self) -> &Slot<M, T, N, Tm, K::Error> {
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
}

impl<R, K, M, T, const N: usize, Tm> Stream for Receiver<R, K>
where
    R: SlotRef<Target = Slot<M, T, N, Tm, K::Error>>,
    K: Kind,
    M: RawMutex,
    Tm: Timer,
{
    type Item = K::Out<Batch<T, N, Tm::Instant>>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.poll_taken(cx).map(|o| {
            o.map(|r| {
                K::out(r.map(|(token, info)| Batch {
                    items: this.slot.take_lent(token),
                    info,
                }))
            })
        })
    }
}

impl<R, K, M, T, const N: usize, Tm> FusedStream for Receiver<R, K>
where
    R: SlotRef<Target = Slot<M, T, N, Tm, K::Error>>,
    K: Kind,
    M: RawMutex,
    Tm: Timer,
{
    /// Once a poll has returned `None` (the producer is done, and every batch and item was
    /// taken): every poll from then on does too.
    fn is_terminated(&self) -> bool {
        self.slot.has_ended()
    }
}

/// A ready batch, lent to the caller without copying. Derefs to the `heapless::Vec`.
///
/// Read it, sort it, `drain(..)` it: it is yours until the guard drops. Dropping the guard drops
/// the items left in it and hands the buffer back to the producer. [`BatchGuard::into_batch`]
/// moves the items out instead.
///
/// `S` is the slot it came from. The guard is `Send` and `Sync` as a `&mut heapless::Vec<T, N>`
/// is, when the slot is `Sync` (tokio's slot is), so it can be held across an `.await` in a
/// spawned task.
#[must_use = "dropping the guard hands the batch back at once"]
pub struct BatchGuard<'a, T, const N: usize, S: LentSlot<T, N> + ?Sized> {
    /// `None` only while `into_batch` moves the items out.
    token: Option<LentToken>,
    info: BatchInfo<S::Instant>,
    slot: &'a S,
    /// The guard lends the batch like a `&mut Vec<T, N>`.
    _lent: PhantomData<&'a mut Vec<T, N>>,
}

impl<T: fmt::Debug, const N: usize, S: LentSlot<T, N> + ?Sized> fmt::Debug for BatchGuard<'_, T, N, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchGuard")
            .field("items", &self.as_slice())
            .field("info", &self.info)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl<T: defmt::Format, const N: usize, S: LentSlot<T, N> + ?Sized> defmt::Format for BatchGuard<'_, T, N, S> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "BatchGuard {{ items: {}, info: {} }}", self.as_slice(), self.info)
    }
}

impl<T, const N: usize, S: LentSlot<T, N> + ?Sized> BatchGuard<'_, T, N, S> {
    /// Why the batch was emitted and when its first item was pulled
    /// ([`BatchInfo::age_at`] gives its age).
    pub fn info(&self) -> BatchInfo<S::Instant> {
        self.info
    }

    /// Moves the items out (one copy of the buffer) and hands the buffer back.
    pub fn into_batch(mut self) -> Batch<T, N, S::Instant> {
        let Some(mut token) = self.token.take() else {
            unreachable!("a guard holds its token until dropped")
        };
        let items = core::mem::take(self.slot.lent_items_mut(&mut token));
        self.slot.give_back(token);
        Batch { items, info: self.info }
    }

    fn token(&self) -> &LentToken {
        match &self.token {
            Some(t) => t,
            None => unreachable!("a guard holds its token until dropped"),
        }
    }
}

impl<T, const N: usize, S: LentSlot<T, N> + ?Sized> Deref for BatchGuard<'_, T, N, S> {
    type Target = Vec<T, N>;
    fn deref(&self) -> &Vec<T, N> {
        self.slot.lent_items(self.token())
    }
}

impl<T, const N: usize, S: LentSlot<T, N> + ?Sized> DerefMut for BatchGuard<'_, T, N, S> {
    fn deref_mut(&mut self) -> &mut Vec<T, N> {
        let Some(token) = &mut self.token else {
            unreachable!("a guard holds its token until dropped")
        };
        self.slot.lent_items_mut(token)
    }
}

impl<T, const N: usize, S: LentSlot<T, N> + ?Sized> Drop for BatchGuard<'_, T, N, S> {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            self.slot.give_back(token);
        }
    }
}

/// A batch moved out of the slot: the items and what the batch says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch<T, const N: usize, I: crate::timer::Instant> {
    /// The items, oldest first.
    pub items: Vec<T, N>,
    /// Why it was emitted and when its first item was pulled.
    pub info: BatchInfo<I>,
}

#[cfg(feature = "defmt")]
impl<T: defmt::Format, const N: usize, I: crate::timer::Instant> defmt::Format for Batch<T, N, I> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Batch {{ items: {}, info: {} }}", self.items.as_slice(), self.info)
    }
}

impl<T, const N: usize, I: crate::timer::Instant> Deref for Batch<T, N, I> {
    type Target = Vec<T, N>;
    fn deref(&self) -> &Vec<T, N> {
        &self.items
    }
}

impl<T, const N: usize, I: crate::timer::Instant> DerefMut for Batch<T, N, I> {
    fn deref_mut(&mut self) -> &mut Vec<T, N> {
        &mut self.items
    }
}

impl<T, const N: usize, I: crate::timer::Instant> IntoIterator for Batch<T, N, I> {
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
