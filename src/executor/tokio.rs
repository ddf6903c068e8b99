//! The tokio adapter: the producer as a spawned task, batches as a `Stream` (feature `tokio`).
//!
//! One allocation at set-up (the shared slot in an `Arc`, and the source in a `Box` so it can be
//! handed back) and none per batch. The producer task keeps filling the next batch, honoring its
//! deadline, while the caller processes the current one, even when the caller is busy computing
//! rather than awaiting.

use core::convert::Infallible;
use core::marker::PhantomData;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::boxed::Box;
use std::sync::{Arc, Mutex, PoisonError};

use futures_core::{FusedStream, Stream};
use tokio::task::JoinHandle;

use crate::config::{Config, ConfigError, SplitError, Weigher};
use crate::intake::Intake;
use crate::receiver::{Batch, BatchGuard, Receiver};
use crate::slot::{Remainder, Slot};
use crate::source::{Fallible, Kind, Plain, Split};
use crate::std_mutex::StdRawMutex;
use crate::timer::TokioTimer;

/// The slot the tokio adapter shares between its producer task and the stream.
pub type TokioSlot<T, const N: usize, E = Infallible> = Slot<StdRawMutex, T, N, TokioTimer, E>;

/// What the producer task hands back when it ends: the source, with every item it never pulled.
pub type BoxSource<I> = Pin<Box<dyn Stream<Item = I> + Send>>;

/// A boxed source seen through its [`Kind`], so both kinds hand back a stream of what they took.
struct Out<S, K>(Pin<Box<S>>, PhantomData<fn() -> K>);

impl<S: Stream, K: Split<S::Item>> Stream for Out<S, K> {
    type Item = K::Out<K::Item>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.as_mut().poll_next(cx).map(|o| o.map(|i| K::out(K::split(i))))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

pub(crate) fn spawn<S, K, T, W, const N: usize>(
    source: S,
    config: Config<N, W>,
) -> Result<PrefetchStream<T, N, K>, ConfigError>
where
    S: Stream + Send + 'static,
    K: Split<S::Item, Item = T> + Send + 'static,
    for<'a> Pin<&'a mut S>: Intake<K, Item = T>,
    K::Error: Send + 'static,
    K::Out<T>: 'static,
    T: Send + 'static,
    W: Weigher<T> + Send + 'static,
{
    let slot: Arc<TokioSlot<T, N, K::Error>> = Arc::new(Slot::new(TokioTimer));
    let (engine, rx) = match crate::producer::attach::<_, _, K, _, _, N, _, _>(slot, config) {
        Ok(halves) => halves,
        Err(SplitError::Config(e)) => return Err(e),
        Err(_) => unreachable!("a new slot is not in use"),
    };
    // The source is boxed so it can leave the task when the producer is done (the producer
    // itself stays pinned in the task): nothing it still holds is dropped behind the caller's back.
    let mut source = Out::<S, K>(Box::pin(source), PhantomData);
    let task = tokio::spawn(async move {
        engine.with_source(source.0.as_mut()).await;
        Box::pin(source) as BoxSource<K::Out<T>>
    });
    Ok(PrefetchStream {
        rx,
        task: Some(task),
        source: Mutex::new(None),
    })
}

/// Batches with prefetch on tokio, from [`BatchExt::prefetch_batches`](crate::BatchExt::prefetch_batches)
/// (`K` = [`Plain`]) or [`BatchExt::try_prefetch_batches`](crate::BatchExt::try_prefetch_batches)
/// (`K` = [`Fallible<E>`], see [`TryPrefetchStream`]).
///
/// A `Stream` of owned batches ([`Batch`]; `Result<Batch, E>` for a fallible source), and
/// [`recv`](Self::recv) for zero-copy guards. Flush, close or read the counters through
/// [`slot`](Self::slot), from this task or (cloning the `Arc`) any other.
///
/// ```
/// use std::time::Duration;
/// use futures_util::StreamExt;
/// use prefetch_batch::{BatchExt, Config};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), prefetch_batch::ConfigError> {
/// let source = futures_util::stream::iter(0..100u32);
/// let mut batches = source.prefetch_batches(Config::<32>::new().max_wait(Duration::from_millis(5)))?;
/// let mut total = 0;
/// while let Some(batch) = batches.next().await {
///     total += batch.len(); // batch: Batch<u32, 32, _>, derefs to heapless::Vec
/// }
/// assert_eq!(total, 100);
/// # Ok(())
/// # }
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct PrefetchStream<T: Send + 'static, const N: usize, K: Kind = Plain>
where
    K::Error: Send + 'static,
{
    rx: Receiver<Arc<TokioSlot<T, N, K::Error>>, K>,
    task: Option<JoinHandle<BoxSource<K::Out<T>>>>,
    /// The source, once the producer task handed it back (in a lock only so the stream stays
    /// `Sync`; it is touched only through `&mut self`).
    source: Mutex<Option<BoxSource<K::Out<T>>>>,
}

/// Batches of a stream of `Result<T, E>`, from
/// [`BatchExt::try_prefetch_batches`](crate::BatchExt::try_prefetch_batches).
pub type TryPrefetchStream<T, const N: usize, E> = PrefetchStream<T, N, Fallible<E>>;

impl<T: Send + 'static, const N: usize, K: Kind> PrefetchStream<T, N, K>
where
    K::Error: Send + 'static,
{
    /// The next batch, lent without copying (for a fallible source: or the next error); see
    /// [`Receiver::recv`].
    ///
    /// # Cancel safety
    /// Cancel-safe: a future dropped before it completes has taken nothing.
    #[allow(clippy::type_complexity)]
    pub async fn recv(&mut self) -> Option<K::Out<BatchGuard<'_, T, N, TokioSlot<T, N, K::Error>>>> {
        self.rx.recv().await
    }

    /// The shared slot: [`flush`](Slot::flush), [`close`](Slot::close),
    /// [`close_when_idle`](Slot::close_when_idle), `stats` (feature `stats`). Clone the `Arc` to
    /// control the batcher from another task.
    pub fn slot(&self) -> &Arc<TokioSlot<T, N, K::Error>> {
        self.rx.handle()
    }

    /// Closes, waits for the producer task to stop, and returns every item still buffered,
    /// oldest first. The source stays with the stream ([`into_parts`](Self::into_parts)).
    ///
    /// # Cancel safety
    /// Cancel-safe: if this future is dropped before it completes, call it again.
    pub async fn drain_remainder(&mut self) -> Remainder<T, N> {
        self.rx.slot().close();
        if let Some(task) = self.task.as_mut() {
            // The producer publishes its partial batch and returns once it sees the close.
            let source = task.await;
            self.task = None;
            *self.source.get_mut().unwrap_or_else(PoisonError::into_inner) = source.ok();
        }
        self.rx.drain_remainder()
    }

    /// [`drain_remainder`](Self::drain_remainder), consuming the stream. The source, with the
    /// items the producer never pulled, is dropped: [`into_parts`](Self::into_parts) keeps it.
    ///
    /// # Cancel safety
    /// Dropping this future drops the stream and what it buffered.
    pub async fn into_remainder(mut self) -> Remainder<T, N> {
        self.drain_remainder().await
    }

    /// Closes, waits for the producer task to stop, and returns every item still buffered and
    /// the source with every item the producer never pulled: nothing is lost. The source is
    /// `None` only if the producer task panicked or was aborted.
    ///
    /// # Cancel safety
    /// Dropping this future drops the stream: use [`drain_remainder`](Self::drain_remainder)
    /// (cancel-safe) where that matters.
    #[allow(clippy::type_complexity)]
    pub async fn into_parts(mut self) -> (Remainder<T, N>, Option<BoxSource<K::Out<T>>>) {
        let rest = self.drain_remainder().await;
        let source = self.source.get_mut().unwrap_or_else(PoisonError::into_inner).take();
        (rest, source)
    }
}

impl<T: Send + 'static, const N: usize, K: Kind> Stream for PrefetchStream<T, N, K>
where
    K::Error: Send + 'static,
{
    type Item = K::Out<Batch<T, N, tokio::time::Instant>>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.get_mut().rx).poll_next(cx)
    }
}

impl<T: Send + 'static, const N: usize, K: Kind> FusedStream for PrefetchStream<T, N, K>
where
    K::Error: Send + 'static,
{
    fn is_terminated(&self) -> bool {
        self.rx.is_terminated()
    }
}

impl<T: Send + 'static, const N: usize, K: Kind> core::fmt::Debug for PrefetchStream<T, N, K>
where
    K::Error: Send + 'static,
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut d = f.debug_struct("PrefetchStream");
        #[cfg(feature = "stats")]
        d.field("stats", &self.slot().stats());
        d.finish_non_exhaustive()
    }
}

/// A tokio `mpsc::Receiver` as a [`BulkSource`](crate::source::BulkSource): each poll moves
/// everything queued, up to the room in the batch, with one `poll_recv_many` (one pass over the
/// channel's permits and one coop budget unit for many items). It is a `Stream` too, so what it
/// still holds comes back from [`PrefetchStream::into_parts`].
///
/// ```
/// use futures_util::StreamExt;
/// use prefetch_batch::{Config, MpscBulk, prefetch_bulk};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), prefetch_batch::ConfigError> {
/// let (tx, rx) = tokio::sync::mpsc::channel(1024);
/// tokio::spawn(async move {
///     for i in 0..100u32 {
///         tx.send(i).await.unwrap();
///     }
/// });
/// let mut batches = prefetch_bulk(MpscBulk::new(rx), Config::<32>::new())?;
/// let mut total = 0;
/// while let Some(batch) = batches.next().await {
///     total += batch.len();
/// }
/// assert_eq!(total, 100);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct MpscBulk<T> {
    rx: tokio::sync::mpsc::Receiver<T>,
    /// Where `poll_recv_many` puts what it takes; emptied into the batch at once, so it holds
    /// nothing between polls. Its capacity is kept: no allocation after the first few polls.
    scratch: std::vec::Vec<T>,
}

impl<T> MpscBulk<T> {
    /// Wraps a receiver.
    pub fn new(rx: tokio::sync::mpsc::Receiver<T>) -> Self {
        Self {
            rx,
            scratch: std::vec::Vec::new(),
        }
    }

    /// The receiver back.
    pub fn into_inner(self) -> tokio::sync::mpsc::Receiver<T> {
        self.rx
    }
}

impl<T> Unpin for MpscBulk<T> {}

impl<T> crate::source::BulkSource for MpscBulk<T> {
    type Item = T;
    fn poll_extend<const N: usize>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        batch: &mut heapless::Vec<T, N>,
        limit: usize,
    ) -> Poll<Option<usize>> {
        let this = self.get_mut();
        let room = limit.min(N).saturating_sub(batch.len());
        if room == 0 {
            return Poll::Ready(Some(0));
        }
        match this.rx.poll_recv_many(cx, &mut this.scratch, room) {
            Poll::Ready(0) => Poll::Ready(None),
            Poll::Ready(n) => {
                // `poll_recv_many` took at most `room` items: each fits. Moved with the batch's
                // length kept in a register (`extend_until`), not stored after every item.
                let mut taken = this.scratch.drain(..);
                let _ = crate::slot::extend_until(batch, usize::MAX, || match taken.next() {
                    Some(item) => core::ops::ControlFlow::Continue(item),
                    None => core::ops::ControlFlow::Break(()),
                });
                Poll::Ready(Some(n))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> Stream for MpscBulk<T> {
    type Item = T;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().rx.poll_recv(cx)
    }
}

/// [`BatchExt::prefetch_batches`](crate::BatchExt::prefetch_batches) with bulk intake: spawns a
/// producer that fills each batch with everything `source` has ready in one call. The batching
/// rules are the same.
///
/// # Errors
/// A configuration that cannot work, before anything is spawned.
pub fn prefetch_bulk<B, const N: usize>(
    source: B,
    config: Config<N, impl Weigher<<B as Stream>::Item> + Send + 'static>,
) -> Result<PrefetchStream<<B as Stream>::Item, N, crate::source::Bulk>, ConfigError>
where
    B: crate::source::BulkSource + Stream<Item = <B as crate::source::BulkSource>::Item> + Send + 'static,
    <B as crate::source::BulkSource>::Item: Send + 'static,
{
    spawn::<_, crate::source::Bulk, _, _, N>(source, config)
}
