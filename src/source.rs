//! The two kinds of source: plain and fallible.
//!
//! A plain `Stream<Item = T>` never fails ([`Plain`]). A `Stream<Item = Result<T, E>>` may
//! ([`Fallible<E>`]): an error ends the current batch and is delivered right after it. One set of
//! methods serves both: what a receiver hands out is [`Kind::Out`] of a batch, the batch itself
//! for a plain source and a `Result` for a fallible one (as futures' `TryStream` is a `Stream` of
//! `Result`s). The kind is chosen by the constructor ([`Slot::split`](crate::Slot::split) or
//! [`Slot::try_split`](crate::Slot::try_split), `for_each_batch` or `try_for_each_batch`, ...), so
//! code rarely names it.

use core::convert::Infallible;
use core::marker::PhantomData;

mod sealed {
    pub trait Sealed {}
}

/// A kind of source: [`Plain`] or [`Fallible`]. Sealed.
pub trait Kind: sealed::Sealed {
    /// The source's error: `Infallible` for a plain source.
    type Error;
    /// What the receiver hands out for an `X`: `X` itself, or `Result<X, Self::Error>`.
    type Out<X>;
    #[doc(hidden)]
    fn out<X>(r: Result<X, Self::Error>) -> Self::Out<X>;
}

/// How a kind splits one stream item into a value or an error. Sealed.
pub trait Split<I>: Kind {
    /// The value batched.
    type Item;
    #[doc(hidden)]
    fn split(item: I) -> Result<Self::Item, Self::Error>;
}

/// A plain source: every item is a value, and batches are handed out as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

/// A source of `Result<T, E>`: batches are handed out as `Ok`, and each error as `Err` right after
/// the batch of items that came before it.
#[derive(Debug)]
pub struct Fallible<E>(PhantomData<fn() -> E>);

impl sealed::Sealed for Plain {}
impl<E> sealed::Sealed for Fallible<E> {}

impl Kind for Plain {
    type Error = Infallible;
    type Out<X> = X;
    fn out<X>(r: Result<X, Infallible>) -> X {
        match r {
            Ok(x) => x,
            Err(never) => match never {},
        }
    }
}

impl<I> Split<I> for Plain {
    type Item = I;
    fn split(item: I) -> Result<I, Infallible> {
        Ok(item)
    }
}

impl<E> Kind for Fallible<E> {
    type Error = E;
    type Out<X> = Result<X, E>;
    fn out<X>(r: Result<X, E>) -> Result<X, E> {
        r
    }
}

impl<I: TryItem> Split<I> for Fallible<I::Err> {
    type Item = I::Ok;
    fn split(item: I) -> Result<I::Ok, I::Err> {
        item.into_result()
    }
}

/// An item that is a value or an error: `Result<T, E>`. Sealed. Lets methods name the value and
/// error types of a fallible stream's items without type parameters of their own.
pub trait TryItem: sealed::Sealed {
    /// The value.
    type Ok;
    /// The error.
    type Err;
    #[doc(hidden)]
    fn into_result(self) -> Result<Self::Ok, Self::Err>;
}

impl<T, E> sealed::Sealed for Result<T, E> {}

impl<T, E> TryItem for Result<T, E> {
    type Ok = T;
    type Err = E;
    fn into_result(self) -> Result<T, E> {
        self
    }
}

/// A source that fills many items per poll: bulk intake.
///
/// Where a `Stream` gives one item per `poll_next`, a bulk source moves everything it has ready
/// (up to a limit) into the batch in one call: one lock of a channel, one wake-up, one budget
/// check for many items. The batching rules do not change: the producer fills, emits and waits
/// exactly as it does for a `Stream`. Split a slot over one with
/// [`Slot::split_bulk`](crate::Slot::split_bulk), or on tokio use
/// [`MpscBulk`](crate::MpscBulk) with [`BatchExt::prefetch_batches`](crate::BatchExt::prefetch_batches)'s
/// bulk twin [`prefetch_bulk`](crate::prefetch_bulk).
///
/// The adapters here: [`ChannelBulk`] for an embassy-sync `Channel`, and (feature `tokio`)
/// [`MpscBulk`](crate::MpscBulk) for a tokio `mpsc::Receiver`.
pub trait BulkSource {
    /// The items.
    type Item;

    /// Moves ready items into `batch`, oldest first, until it holds `limit` items or nothing more
    /// is ready.
    ///
    /// Returns `Ready(Some(n))` with `n >= 1` items moved, `Ready(None)` once the source has
    /// ended (nothing moved), or `Pending` when nothing is ready, having registered `cx`'s waker
    /// for when something is. `limit` is at most `N` and above `batch.len()`.
    fn poll_extend<const N: usize>(
        self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
        batch: &mut heapless::Vec<Self::Item, N>,
        limit: usize,
    ) -> core::task::Poll<Option<usize>>;
}

impl<B: BulkSource + Unpin + ?Sized> BulkSource for &mut B {
    type Item = B::Item;
    fn poll_extend<const N: usize>(
        mut self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
        batch: &mut heapless::Vec<B::Item, N>,
        limit: usize,
    ) -> core::task::Poll<Option<usize>> {
        core::pin::Pin::new(&mut **self).poll_extend(cx, batch, limit)
    }
}

impl<P> BulkSource for core::pin::Pin<P>
where
    P: core::ops::DerefMut + Unpin,
    P::Target: BulkSource,
{
    type Item = <P::Target as BulkSource>::Item;
    fn poll_extend<const N: usize>(
        self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
        batch: &mut heapless::Vec<Self::Item, N>,
        limit: usize,
    ) -> core::task::Poll<Option<usize>> {
        self.get_mut().as_mut().poll_extend(cx, batch, limit)
    }
}

/// A [`BulkSource`]: the producer fills a batch with everything ready in one call.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bulk;

impl sealed::Sealed for Bulk {}

impl Kind for Bulk {
    type Error = Infallible;
    type Out<X> = X;
    fn out<X>(r: Result<X, Infallible>) -> X {
        Plain::out(r)
    }
}

impl<I> Split<I> for Bulk {
    type Item = I;
    fn split(item: I) -> Result<I, Infallible> {
        Ok(item)
    }
}

/// An embassy-sync `Channel`'s receiver as a [`BulkSource`]: each poll drains what the channel
/// holds (with `try_receive`, one lock per item and no waker per item), up to the room in the
/// batch. A channel never ends.
///
/// ```
/// use embassy_sync::blocking_mutex::raw::NoopRawMutex;
/// use embassy_sync::channel::Channel;
/// use prefetch_batch::{Config, Slot, source::ChannelBulk, testing, timer::ManualClock};
///
/// static CLOCK: ManualClock = ManualClock::new();
/// let channel: Channel<NoopRawMutex, u32, 8> = Channel::new();
/// for i in 0..6 {
///     channel.try_send(i).unwrap();
/// }
/// let slot: Slot<NoopRawMutex, u32, 4, _> = Slot::new(&CLOCK);
/// let (producer, mut rx) = slot.split_bulk(ChannelBulk::new(channel.receiver()), Config::new()).unwrap();
/// let sizes = CLOCK.block_on(slot.join(producer, async {
///     let mut sizes = Vec::new();
///     while let Some(batch) = rx.recv().await {
///         sizes.push(batch.len());
///         slot.close_when_idle(); // a channel never ends: stop once it is drained
///     }
///     sizes
/// }));
/// assert_eq!(sizes, [4, 2]);
/// ```
#[derive(Debug)]
pub struct ChannelBulk<'ch, M: embassy_sync::blocking_mutex::raw::RawMutex, T, const D: usize>(
    embassy_sync::channel::Receiver<'ch, M, T, D>,
);

impl<'ch, M: embassy_sync::blocking_mutex::raw::RawMutex, T, const D: usize> ChannelBulk<'ch, M, T, D> {
    /// Wraps a channel's receiver.
    pub const fn new(rx: embassy_sync::channel::Receiver<'ch, M, T, D>) -> Self {
        Self(rx)
    }
}

impl<M: embassy_sync::blocking_mutex::raw::RawMutex, T, const D: usize> BulkSource for ChannelBulk<'_, M, T, D> {
    type Item = T;
    fn poll_extend<const N: usize>(
        self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
        batch: &mut heapless::Vec<T, N>,
        limit: usize,
    ) -> core::task::Poll<Option<usize>> {
        use core::task::Poll;
        let limit = limit.min(N);
        let before = batch.len();
        if before >= limit {
            return Poll::Ready(Some(0)); // no room: nothing taken from the channel
        }
        // Room for each item is checked before it is taken: a push never fails here.
        while batch.len() < limit {
            let Ok(item) = self.0.try_receive() else { break };
            let _ = batch.push(item);
        }
        if batch.len() > before {
            return Poll::Ready(Some(batch.len() - before));
        }
        match self.0.poll_receive(cx) {
            Poll::Ready(item) => {
                let _ = batch.push(item);
                Poll::Ready(Some(1))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
