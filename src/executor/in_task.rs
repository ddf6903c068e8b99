//! The one-task driver: producer and consumer polled together in the caller's task. No spawn, no
//! allocation, any executor; the future is `Send` when the source, its items and the handler are.

use core::future::{Future, poll_fn};
use core::pin::pin;
use core::task::Poll;

use embassy_sync::blocking_mutex::raw::RawMutex;
use futures_core::Stream;

use crate::config::{Config, ConfigError, SplitError, Weigher};
use crate::receiver::Batch;
use crate::slot::Slot;
use crate::source::Fallible;
#[cfg(feature = "tokio")]
use crate::source::TryItem;
use crate::timer::Timer;

/// How many times [`join_slot`] polls both halves in one poll of its task while they keep handing
/// batches over: bounds how long an always-ready source keeps the task from yielding.
const ROUNDS_PER_POLL: u32 = 32;

/// Runs the two halves of one slot in the current task until both complete: polls them again,
/// in the same poll of the task, as long as a round handed a batch or a buffer over. The
/// handoff's wake-up is for this same task, so without this every two batches would cost a round
/// trip through the executor.
pub(crate) async fn join_slot<M, T, const N: usize, Tm, E, A, B>(slot: &Slot<M, T, N, Tm, E>, a: A, b: B) -> B::Output
where
    M: RawMutex,
    Tm: Timer,
    A: Future<Output = ()>,
    B: Future,
{
    let mut a = pin!(a);
    let mut b = pin!(b);
    let mut a_done = false;
    let mut out = None;
    poll_fn(|cx| {
        // Handoffs between the halves skip their wake-ups while we poll: we poll again ourselves
        // after any round that had one.
        slot.begin_driven();
        // Ends driven mode however this poll ends, a panicking handler included: a slot the
        // caller owns must wake its parties normally afterwards.
        let _driven = EndDriven(slot);
        let mut rounds = 0;
        loop {
            rounds += 1;
            let before = slot.handoffs();
            // The producer goes first so a batch it completes is taken in the same round.
            if !a_done {
                a_done = a.as_mut().poll(cx).is_ready();
            }
            if out.is_none() {
                if let Poll::Ready(o) = b.as_mut().poll(cx) {
                    out = Some(o);
                }
            }
            if a_done {
                if let Some(o) = out.take() {
                    break Poll::Ready(o);
                }
            }
            if slot.handoffs() == before {
                break Poll::Pending;
            }
            if rounds == ROUNDS_PER_POLL {
                // Still handing over: yield to the executor, and come straight back.
                cx.waker().wake_by_ref();
                break Poll::Pending;
            }
        }
    })
    .await
}

struct EndDriven<'a, M: RawMutex, T, const N: usize, Tm: Timer, E>(&'a Slot<M, T, N, Tm, E>);

impl<M: RawMutex, T, const N: usize, Tm: Timer, E> Drop for EndDriven<'_, M, T, N, Tm, E> {
    fn drop(&mut self) {
        self.0.end_driven();
    }
}

/// A lock for a slot that one task uses, both halves polled by one future (as
/// [`BatchExt::for_each_batch_in`] does): it never waits, because no two callers ever meet; one
/// that did would panic, not race. It is `Sync`, so that future is `Send` and may move between a
/// multi-threaded runtime's workers. On targets without atomic read-modify-write (thumbv6m), it
/// is `NoopRawMutex`. ([`BatchExt::for_each_batch`] keeps its slot private to its future and
/// needs no atomic read-modify-write at all.)
///
/// # Panics
/// `lock` panics if the lock is already held: two callers met, which a slot used by one task
/// never lets happen (or a closure inside `lock` locked again).
#[cfg(target_has_atomic = "8")]
#[derive(Debug)]
pub struct TaskRawMutex(core::sync::atomic::AtomicBool);

#[cfg(target_has_atomic = "8")]
impl TaskRawMutex {
    /// An unlocked lock.
    pub const fn new() -> Self {
        Self(core::sync::atomic::AtomicBool::new(false))
    }
}

#[cfg(target_has_atomic = "8")]
impl Default for TaskRawMutex {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: `lock` runs `f` only after it swapped the flag from unlocked to locked, and unlocks after
// `f` returns; a second caller while it is locked panics instead of running `f`. So two calls'
// `f` never overlap, on any thread. (A panic in `f` leaves it locked: later calls panic too.)
#[cfg(target_has_atomic = "8")]
unsafe impl RawMutex for TaskRawMutex {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = Self::new();

    fn lock<R>(&self, f: impl FnOnce() -> R) -> R {
        use core::sync::atomic::Ordering;
        if self.0.swap(true, Ordering::Acquire) {
            panic!("TaskRawMutex: locked twice at once (a slot of a one-task driver is for that task)");
        }
        let r = f();
        self.0.store(false, Ordering::Release);
        r
    }
}

/// See [`TaskRawMutex`].
#[cfg(not(target_has_atomic = "8"))]
pub type TaskRawMutex = embassy_sync::blocking_mutex::raw::NoopRawMutex;

/// The lock of the slot inside [`BatchExt::for_each_batch`]'s own future. That slot is private
/// to the future: only the future's producer and receiver reach it, and only while the future is
/// polled. So no two locks ever overlap, on any thread, and the lock needs no atomic
/// read-modify-write (each one costs about as much as the rest of a lock site here). The flag
/// still catches a lock taken inside another (a bug), with plain loads and stores.
#[derive(Debug)]
struct DriverRawMutex(core::sync::atomic::AtomicBool);

// SAFETY: `DriverRawMutex` is private to this module and locks only the slot that
// `for_each_batch` / `try_for_each_batch` create inside their own future (never handed out): every
// call to `lock` happens during a poll of that future, polls of one future never overlap (it is
// polled through `Pin<&mut _>`), and an executor that moves it to another thread orders the end
// of one poll before the start of the next. So `f`s never run at the same time. A nested call
// panics instead of running `f`.
unsafe impl RawMutex for DriverRawMutex {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = Self(core::sync::atomic::AtomicBool::new(false));

    fn lock<R>(&self, f: impl FnOnce() -> R) -> R {
        use core::sync::atomic::Ordering::Relaxed;
        if self.0.load(Relaxed) {
            panic!("the one-task driver's slot was locked twice at once");
        }
        self.0.store(true, Relaxed);
        let r = f();
        self.0.store(false, Relaxed);
        r
    }
}

/// A slot for one task: see [`TaskRawMutex`].
pub type TaskSlot<T, const N: usize, Tm, E = core::convert::Infallible> = Slot<TaskRawMutex, T, N, Tm, E>;

/// Batching with prefetch for any `Stream`: drivers that need no spawn, and (feature `tokio`) a
/// spawned producer. Implemented for every stream.
pub trait BatchExt: Stream + Sized {
    /// Batches this stream and calls `handler` on each batch, filling the next batches while the
    /// handler awaits. Completes once the source has ended and every batch was handled.
    ///
    /// One task, no spawn, no allocation: works on tokio, embassy, or any `block_on` (on a
    /// microcontroller, a `static` slot with the producer awaited where it is split and the
    /// consumer in a task is smaller: see the crate's `embassy` module). Like futures'
    /// `for_each`, the handler owns what it gets: each [`Batch`] is moved out of its buffer (one
    /// copy of `N` items), and the buffer goes straight back to the producer, so while the
    /// handler works, both buffers fill. The future is `Send` when the source, its items and the
    /// handler's future are: it can run inside `tokio::spawn`. (The handler is a closure that
    /// returns a future, as for futures' `for_each`; state it changes lives outside the future it
    /// returns, or in a `Cell`.) For zero-copy access, split a [`Slot`] and take
    /// [`BatchGuard`](crate::BatchGuard)s with [`Receiver::recv`](crate::Receiver::recv). For the
    /// counters, or to get what was buffered back after a cancel, use
    /// [`for_each_batch_in`](Self::for_each_batch_in).
    ///
    /// # Errors
    /// A configuration that cannot work, before anything is pulled.
    ///
    /// # Cancel safety
    /// Dropping the future drops the batches it buffered (up to two); items never pulled stay in
    /// the source. [`for_each_batch_in`](Self::for_each_batch_in) keeps them.
    ///
    /// ```
    /// use core::time::Duration;
    /// use prefetch_batch::{BatchExt, Config, testing, timer::ManualClock};
    ///
    /// static CLOCK: ManualClock = ManualClock::new();
    /// let mut seen = Vec::new();
    /// let config = Config::<8>::new().max_wait(Duration::from_millis(5));
    /// CLOCK.block_on(testing::iter(0..20u32).for_each_batch(config, &CLOCK, |batch| {
    ///     seen.push(batch.len());
    ///     async {} // while this awaits, the next batches fill
    /// })).unwrap();
    /// assert_eq!(seen, [8, 8, 4]);
    /// ```
    fn for_each_batch<const N: usize, W, Tm, F, Fut>(
        self,
        config: Config<N, W>,
        timer: Tm,
        handler: F,
    ) -> impl Future<Output = Result<(), ConfigError>>
    where
        W: Weigher<Self::Item>,
        Tm: Timer,
        F: FnMut(Batch<Self::Item, N, Tm::Instant>) -> Fut,
        Fut: Future<Output = ()>,
    {
        async move {
            let slot = Slot::<DriverRawMutex, Self::Item, N, Tm>::new(timer);
            match self.for_each_batch_in(&slot, config, handler).await {
                Ok(()) => Ok(()),
                Err(SplitError::Config(e)) => Err(e),
                Err(_) => unreachable!("a new slot is not in use"),
            }
        }
    }

    /// [`for_each_batch`](Self::for_each_batch) for a stream of `Result<T, E>`, as futures'
    /// `try_for_each`: the handler returns a `Result`, and the first error (from the handler, or
    /// from the source right after the batch of the items before it) ends the run and is
    /// returned. The producer pulls nothing past a source error.
    ///
    /// # Errors
    /// The first error of the handler or the source (converted with `Into`), or a configuration
    /// that cannot work (through `From<ConfigError>`).
    ///
    /// # Cancel safety
    /// As for [`for_each_batch`](Self::for_each_batch).
    ///
    /// ```
    /// use prefetch_batch::{BatchExt, Config, ConfigError, testing, timer::ManualClock};
    ///
    /// #[derive(Debug, PartialEq)]
    /// enum Error { Bad, Config(ConfigError) }
    /// impl From<ConfigError> for Error { fn from(e: ConfigError) -> Self { Error::Config(e) } }
    ///
    /// static CLOCK: ManualClock = ManualClock::new();
    /// let source = testing::iter([Ok(1), Ok(2), Err(Error::Bad), Ok(3)]);
    /// let mut seen = Vec::new();
    /// let end = CLOCK.block_on(source.try_for_each_batch(Config::<4>::new(), &CLOCK, |batch| {
    ///     seen.extend_from_slice(&batch);
    ///     async { Ok::<_, Error>(()) }
    /// }));
    /// assert_eq!((seen, end), (vec![1, 2], Err(Error::Bad)));
    /// ```
    fn try_for_each_batch<T, E, HE, const N: usize, W, Tm, F, Fut>(
        self,
        config: Config<N, W>,
        timer: Tm,
        handler: F,
    ) -> impl Future<Output = Result<(), HE>>
    where
        Self: Stream<Item = Result<T, E>>,
        E: Into<HE>,
        HE: From<ConfigError>,
        W: Weigher<T>,
        Tm: Timer,
        F: FnMut(Batch<T, N, Tm::Instant>) -> Fut,
        Fut: Future<Output = Result<(), HE>>,
    {
        async move {
            let slot = Slot::<DriverRawMutex, T, N, Tm, E>::new(timer);
            match self.try_for_each_batch_in(&slot, config, handler).await {
                Ok(r) => r,
                Err(SplitError::Config(e)) => Err(e.into()),
                Err(_) => unreachable!("a new slot is not in use"),
            }
        }
    }

    /// [`for_each_batch`](Self::for_each_batch) over a slot you own: cancelling the future loses
    /// nothing (drop it at any point, and [`Slot::drain_remainder`] hands back every item it had
    /// pulled), the counters stay readable ([`Slot::stats`]), and the slot can be a `static` or
    /// be closed and flushed from elsewhere.
    ///
    /// # Errors
    /// [`SplitError`] before anything is pulled: a bad configuration, or a slot in use.
    ///
    /// # Cancel safety
    /// Cancel-safe in the sense above: what was pulled stays in the slot.
    ///
    /// ```
    /// use core::pin::pin;
    /// use core::task::{Context, Waker};
    /// use embassy_sync::blocking_mutex::raw::NoopRawMutex;
    /// use prefetch_batch::{BatchExt, Config, Slot, testing, timer::ManualClock};
    ///
    /// static CLOCK: ManualClock = ManualClock::new();
    /// let slot = Slot::<NoopRawMutex, u32, 4, _>::new(&CLOCK);
    /// let mut source = testing::iter(0..10);
    /// let mut seen = Vec::new();
    /// {
    ///     let run = pin!((&mut source).for_each_batch_in(&slot, Config::new(), |b| {
    ///         seen.extend_from_slice(&b);
    ///         async {}
    ///     }));
    ///     let _ = run.poll(&mut Context::from_waker(Waker::noop())); // one poll, then cancelled
    /// }
    /// // Delivered, then what the slot still held, then what the source never gave up:
    /// let all: Vec<u32> = seen.into_iter().chain(slot.drain_remainder()).chain(source.into_inner()).collect();
    /// assert_eq!(all, (0..10).collect::<Vec<_>>());
    /// ```
    fn for_each_batch_in<M, const N: usize, W, Tm, F, Fut>(
        self,
        slot: &Slot<M, Self::Item, N, Tm>,
        config: Config<N, W>,
        mut handler: F,
    ) -> impl Future<Output = Result<(), SplitError>>
    where
        M: RawMutex,
        W: Weigher<Self::Item>,
        Tm: Timer,
        F: FnMut(Batch<Self::Item, N, Tm::Instant>) -> Fut,
        Fut: Future<Output = ()>,
    {
        async move {
            let (producer, mut rx) = slot.split(self, config)?;
            let consume = async {
                // The items are moved out right into the handler's argument (one copy of the
                // buffer; through the receiver's `Stream` it took five), and the buffer goes back
                // as soon as the handler has its batch.
                while let Some(Ok((token, info))) = poll_fn(|cx| rx.poll_taken(cx)).await {
                    slot.take_lent_into(token, |items| handler(Batch { items, info })).await;
                }
            };
            join_slot(slot, producer, consume).await;
            Ok(())
        }
    }

    /// [`try_for_each_batch`](Self::try_for_each_batch) over a slot you own, as
    /// [`for_each_batch_in`](Self::for_each_batch_in): after an error, what the producer had
    /// pulled stays in the slot.
    ///
    /// # Errors
    /// [`SplitError`] before anything is pulled; then `Ok` of the run's own result.
    ///
    /// # Cancel safety
    /// As for [`for_each_batch_in`](Self::for_each_batch_in).
    #[allow(clippy::type_complexity)]
    fn try_for_each_batch_in<T, E, HE, M, const N: usize, W, Tm, F, Fut>(
        self,
        slot: &Slot<M, T, N, Tm, E>,
        config: Config<N, W>,
        mut handler: F,
    ) -> impl Future<Output = Result<Result<(), HE>, SplitError>>
    where
        Self: Stream<Item = Result<T, E>>,
        E: Into<HE>,
        M: RawMutex,
        W: Weigher<T>,
        Tm: Timer,
        F: FnMut(Batch<T, N, Tm::Instant>) -> Fut,
        Fut: Future<Output = Result<(), HE>>,
    {
        async move {
            let (engine, mut rx) = crate::producer::attach::<_, _, Fallible<E>, _, _, N, _, _>(slot, config)?;
            let producer = engine.stop_on_error().with_source(self);
            let consume = async {
                while let Some(next) = poll_fn(|cx| rx.poll_taken(cx)).await {
                    let step = match next {
                        Ok((token, info)) => slot.take_lent_into(token, |items| handler(Batch { items, info })).await,
                        Err(e) => Err(e.into()),
                    };
                    if step.is_err() {
                        // The producer stops at its next step; what it pulled stays in the slot.
                        slot.close();
                        return step;
                    }
                }
                Ok(())
            };
            Ok(join_slot(slot, producer, consume).await)
        }
    }

    /// Spawns a producer that batches this stream on tokio; returns the batches as a `Stream`
    /// (feature `tokio`).
    ///
    /// Must be called within a tokio runtime with the time driver enabled. See
    /// [`PrefetchStream`](crate::PrefetchStream) for an example.
    ///
    /// # Errors
    /// A configuration that cannot work, before anything is spawned.
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    fn prefetch_batches<const N: usize>(
        self,
        config: Config<N, impl Weigher<Self::Item> + Send + 'static>,
    ) -> Result<crate::PrefetchStream<Self::Item, N>, ConfigError>
    where
        Self: Send + 'static,
        Self::Item: Send + 'static,
    {
        super::tokio::spawn::<_, crate::source::Plain, _, _, N>(self, config)
    }

    /// [`prefetch_batches`](Self::prefetch_batches) for a stream of `Result<T, E>`: the stream
    /// hands out `Result<Batch, E>`, each error right after the batch of the items before it.
    ///
    /// # Errors
    /// A configuration that cannot work, before anything is spawned.
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    #[allow(clippy::type_complexity)]
    fn try_prefetch_batches<const N: usize>(
        self,
        config: Config<N, impl Weigher<<Self::Item as TryItem>::Ok> + Send + 'static>,
    ) -> Result<crate::TryPrefetchStream<<Self::Item as TryItem>::Ok, N, <Self::Item as TryItem>::Err>, ConfigError>
    where
        Self: Send + 'static,
        Self::Item: TryItem,
        <Self::Item as TryItem>::Ok: Send + 'static,
        <Self::Item as TryItem>::Err: Send + 'static,
    {
        super::tokio::spawn::<_, Fallible<<Self::Item as TryItem>::Err>, _, _, N>(self, config)
    }
}

impl<S: Stream> BatchExt for S {}
