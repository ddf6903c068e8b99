//! The tokio adapter: the producer as a spawned task, batches as a `Stream` (feature `tokio`).
//!
//! One allocation at set-up (the shared slot in an `Arc`) and none per batch. The producer task
//! keeps filling the next batch, honoring its deadline, while the caller processes the current
//! one, even when the caller is busy computing rather than awaiting.

use core::convert::Infallible;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::boxed::Box;
use std::sync::Arc;

use futures_core::{FusedStream, Stream};
use tokio::task::JoinHandle;

use crate::config::{Config, ConfigError, Weigher};
use crate::receiver::{Batch, BatchGuard, Receiver};
use crate::slot::{Remainder, Slot};
use crate::source::{Fallible, ItemKind, Plain, TryItem};
use crate::stats::Stats;
use crate::std_mutex::StdRawMutex;
use crate::timer::TokioTimer;

/// The slot the tokio adapter shares between its producer task and the stream.
pub type TokioSlot<T, const N: usize, E = Infallible> = Slot<StdRawMutex, T, N, TokioTimer, E>;

type SharedSlot<T, const N: usize, E> = Arc<TokioSlot<T, N, E>>;

/// Batches with prefetch on tokio: `stream.prefetch_batches::<N>(config)`.
///
/// ```
/// use std::time::Duration;
/// use prefetch_batch::{Config, PrefetchExt};
/// use futures_util::StreamExt;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let source = futures_util::stream::iter(0..100u32);
/// let mut batches = source.prefetch_batches::<32>(Config::new().max_wait(Duration::from_millis(5))).unwrap();
/// let mut total = 0;
/// while let Some(batch) = batches.next().await {
///     total += batch.len(); // batch: Batch<u32, 32, _>, derefs to heapless::Vec
/// }
/// assert_eq!(total, 100);
/// # }
/// ```
pub trait PrefetchExt: Stream + Sized {
    /// Spawns a producer that batches this stream; returns the batches as a `Stream`.
    ///
    /// Must be called within a tokio runtime with the time driver enabled.
    fn prefetch_batches<const N: usize>(
        self,
        config: Config<impl Weigher<Self::Item> + Send + 'static>,
    ) -> Result<PrefetchStream<Self::Item, N>, ConfigError>
    where
        Self: Send + 'static,
        Self::Item: Send + 'static,
    {
        Ok(PrefetchStream(spawn::<Self, Plain, _, N>(self, config)?))
    }

    /// [`prefetch_batches`](PrefetchExt::prefetch_batches) for a stream of `Result<T, E>`: each
    /// error ends the current batch and comes right after it.
    #[allow(clippy::type_complexity)]
    fn try_prefetch_batches<const N: usize>(
        self,
        config: Config<impl Weigher<<Self::Item as TryItem>::Ok> + Send + 'static>,
    ) -> Result<TryPrefetchStream<<Self::Item as TryItem>::Ok, N, <Self::Item as TryItem>::Err>, ConfigError>
    where
        Self: Send + 'static,
        Self::Item: TryItem,
        <Self::Item as TryItem>::Ok: Send + 'static,
        <Self::Item as TryItem>::Err: Send + 'static,
    {
        Ok(TryPrefetchStream(spawn::<Self, Fallible, _, N>(self, config)?))
    }
}

impl<S: Stream> PrefetchExt for S {}

/// What the producer task hands back when it ends: the source, with every item it never pulled.
pub type BoxSource<I> = Pin<Box<dyn Stream<Item = I> + Send>>;

/// A boxed source seen through its [`ItemKind`], so both kinds hand back a stream of what they took.
struct Out<S, K>(Pin<Box<S>>, core::marker::PhantomData<fn() -> K>);

impl<S: Stream, K: ItemKind<S::Item>> Stream for Out<S, K> {
    type Item = K::Out;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<K::Out>> {
        self.0.as_mut().poll_next(cx).map(|o| o.map(K::out))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

#[allow(clippy::type_complexity)]
fn spawn<S, K, W, const N: usize>(
    source: S,
    config: Config<W>,
) -> Result<Inner<K::Item, N, K::Error, K::Out>, ConfigError>
where
    S: Stream + Send + 'static,
    K: ItemKind<S::Item> + Send + 'static,
    K::Item: Send + 'static,
    K::Error: Send + 'static,
    K::Out: 'static,
    W: Weigher<K::Item> + Send + 'static,
{
    let slot: SharedSlot<K::Item, N, K::Error> = Arc::new(Slot::new(TokioTimer));
    let (engine, rx) = crate::producer::attach::<_, _, K, _, _, N, _, _>(slot, config)?;
    // The source is boxed so it can leave the task when the producer is done (the producer
    // itself stays pinned in the task): nothing it still holds is dropped behind the caller's back.
    let mut source = Out::<S, K>(Box::pin(source), core::marker::PhantomData);
    let task = tokio::spawn(async move {
        engine.with_source(&mut source.0).await;
        Box::pin(source) as BoxSource<K::Out>
    });
    Ok(Inner {
        rx,
        task: Some(task),
        source: std::sync::Mutex::new(None),
    })
}

struct Inner<T: Send + 'static, const N: usize, E: Send + 'static, I: 'static> {
    rx: Receiver<SharedSlot<T, N, E>>,
    task: Option<JoinHandle<BoxSource<I>>>,
    /// The source, once the producer task handed it back (in a lock only so the stream stays
    /// `Sync`; it is touched only through `&mut self`).
    source: std::sync::Mutex<Option<BoxSource<I>>>,
}

impl<T: Send + 'static, const N: usize, E: Send + 'static, I: 'static> Inner<T, N, E, I> {
    fn handle(&self) -> Handle {
        Handle(Arc::clone(self.rx.slot_ref()) as Arc<dyn Control>)
    }

    async fn drain_remainder(&mut self) -> Remainder<T, N> {
        self.rx.close();
        if let Some(task) = self.task.as_mut() {
            // The producer publishes its partial batch and returns once it sees the close. If this
            // future is dropped here, the handle stays and a later call waits again.
            let source = task.await;
            self.task = None;
            *self.source.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner) = source.ok();
        }
        self.rx.drain_remainder()
    }
}

macro_rules! common_methods {
    ($e:ty, $i:ty) => {
        /// The zero-copy view: `receiver().next().await` lends a buffer instead of moving it.
        pub fn receiver(&mut self) -> &mut Receiver<SharedSlot<T, N, $e>> {
            &mut self.0.rx
        }

        /// A cloneable, `Send` handle to flush or close from another task.
        pub fn handle(&self) -> Handle {
            self.0.handle()
        }

        /// See [`Slot::flush`].
        pub fn flush(&self) {
            self.0.rx.flush();
        }

        /// See [`Slot::close`]; keep reading to get the batches still buffered.
        pub fn close(&self) {
            self.0.rx.close();
        }

        /// See [`Slot::close_when_idle`]: finish what the source has queued, then end.
        pub fn close_when_idle(&self) {
            self.0.rx.close_when_idle();
        }

        /// See [`Slot::stats`].
        pub fn stats(&self) -> Stats {
            self.0.rx.stats()
        }

        /// Closes, waits for the producer task to stop, and returns every item still buffered,
        /// oldest first. Items the producer had not pulled stay in the source. Cancel-safe: if
        /// this future is dropped before it completes, call it again.
        pub async fn drain_remainder(&mut self) -> Remainder<T, N> {
            self.0.drain_remainder().await
        }

        /// [`drain_remainder`](Self::drain_remainder), consuming the stream. The source, with
        /// the items the producer never pulled, is dropped: use
        /// [`into_parts`](Self::into_parts) to keep it.
        pub async fn into_remainder(mut self) -> Remainder<T, N> {
            self.0.drain_remainder().await
        }

        /// Closes, waits for the producer task to stop, and returns every item still buffered and
        /// the source with every item the producer never pulled: nothing is lost. The source is
        /// `None` only if the producer task panicked or was aborted.
        ///
        /// # Cancel safety
        /// Not cancel-safe: dropping this future drops the stream. Use
        /// [`drain_remainder`](Self::drain_remainder) (cancel-safe) where that matters.
        pub async fn into_parts(mut self) -> (Remainder<T, N>, Option<BoxSource<$i>>) {
            let rest = self.0.drain_remainder().await;
            let source = self.0.source.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            (rest, source)
        }
    };
}

/// Batches of a plain stream, from [`PrefetchExt::prefetch_batches`].
#[must_use = "streams do nothing unless polled"]
pub struct PrefetchStream<T: Send + 'static, const N: usize>(Inner<T, N, Infallible, T>);

impl<T: Send + 'static, const N: usize> PrefetchStream<T, N> {
    common_methods!(Infallible, T);

    /// The next batch, lent without copying; see [`Receiver::next`].
    pub async fn next_batch(
        &mut self,
    ) -> Option<BatchGuard<'_, T, N, tokio::time::Instant, TokioSlot<T, N, Infallible>>> {
        self.0.rx.next().await
    }
}

/// Batches of a stream of `Result<T, E>`, from [`PrefetchExt::try_prefetch_batches`].
#[must_use = "streams do nothing unless polled"]
pub struct TryPrefetchStream<T: Send + 'static, const N: usize, E: Send + 'static>(Inner<T, N, E, Result<T, E>>);

impl<T: Send + 'static, const N: usize, E: Send + 'static> TryPrefetchStream<T, N, E> {
    common_methods!(E, Result<T, E>);

    /// The next batch or error, lent without copying; see [`Receiver::try_next`].
    #[allow(clippy::type_complexity)]
    pub async fn try_next_batch(
        &mut self,
    ) -> Option<Result<BatchGuard<'_, T, N, tokio::time::Instant, TokioSlot<T, N, E>>, E>> {
        self.0.rx.try_next().await
    }
}

impl<T: Send + 'static, const N: usize> Stream for PrefetchStream<T, N> {
    type Item = Batch<T, N, tokio::time::Instant>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.get_mut().0.rx).poll_next(cx)
    }
}

impl<T: Send + 'static, const N: usize> FusedStream for PrefetchStream<T, N> {
    fn is_terminated(&self) -> bool {
        self.0.rx.is_terminated()
    }
}

impl<T: Send + 'static, const N: usize, E: Send + 'static> Stream for TryPrefetchStream<T, N, E> {
    type Item = Result<Batch<T, N, tokio::time::Instant>, E>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().0.rx.poll_next_owned(cx)
    }
}

impl<T: Send + 'static, const N: usize, E: Send + 'static> FusedStream for TryPrefetchStream<T, N, E> {
    fn is_terminated(&self) -> bool {
        self.0.rx.is_terminated_inner()
    }
}

impl<T: Send + 'static, const N: usize> core::fmt::Debug for PrefetchStream<T, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PrefetchStream")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static, const N: usize, E: Send + 'static> core::fmt::Debug for TryPrefetchStream<T, N, E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TryPrefetchStream")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

trait Control: Send + Sync {
    fn flush(&self);
    fn close(&self);
    fn close_when_idle(&self);
    fn stats(&self) -> Stats;
}

impl<T: Send, const N: usize, E: Send> Control for Slot<StdRawMutex, T, N, TokioTimer, E> {
    fn flush(&self) {
        Slot::flush(self);
    }
    fn close(&self) {
        Slot::close(self);
    }
    fn close_when_idle(&self) {
        Slot::close_when_idle(self);
    }
    fn stats(&self) -> Stats {
        Slot::stats(self)
    }
}

/// Flushes or closes a [`PrefetchStream`] from anywhere: cloneable, `Send`, `Sync`.
#[derive(Clone)]
pub struct Handle(Arc<dyn Control>);

impl core::fmt::Debug for Handle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Handle").field("stats", &self.0.stats()).finish()
    }
}

impl Handle {
    /// See [`Slot::flush`].
    pub fn flush(&self) {
        self.0.flush();
    }
    /// See [`Slot::close`].
    pub fn close(&self) {
        self.0.close();
    }
    /// See [`Slot::close_when_idle`].
    pub fn close_when_idle(&self) {
        self.0.close_when_idle();
    }
    /// See [`Slot::stats`].
    pub fn stats(&self) -> Stats {
        self.0.stats()
    }
}
