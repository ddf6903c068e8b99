//! The in-task driver: producer and consumer polled together in the caller's task. No spawn, no
//! allocation, any executor.

use core::convert::Infallible;
use core::future::{Future, poll_fn};
use core::pin::pin;
use core::task::Poll;

use embassy_sync::blocking_mutex::raw::{NoopRawMutex, RawMutex};
use futures_core::Stream;

use crate::config::{Config, ConfigError, Weigher};
use crate::receiver::BatchGuard;
use crate::slot::Slot;
use crate::source::{Fallible, Plain};
use crate::timer::Timer;

/// Runs two futures in the current task until both complete. The producer and consumer of a slot
/// run this way with no spawn.
pub async fn join<A: Future<Output = ()>, B: Future<Output = ()>>(a: A, b: B) {
    let mut a = pin!(a);
    let mut b = pin!(b);
    let (mut a_done, mut b_done) = (false, false);
    poll_fn(|cx| {
        // The producer goes first so a batch it completes is taken in the same poll.
        if !a_done {
            a_done = a.as_mut().poll(cx).is_ready();
        }
        if !b_done {
            b_done = b.as_mut().poll(cx).is_ready();
        }
        if a_done && b_done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// How many times [`join_slot`] polls both halves in one poll of its task while they keep handing
/// batches over: bounds how long an always-ready source keeps the task from yielding.
const ROUNDS_PER_POLL: u32 = 32;

/// [`join`] for the two halves of one slot: polls them again, in the same poll of the task, as long
/// as a round handed a batch or a buffer over. The hand-off's wake-up is for this same task, so
/// without this every two batches would cost a round trip through the executor.
async fn join_slot<M, T, const N: usize, Tm, E, A, B>(slot: &Slot<M, T, N, Tm, E>, a: A, b: B)
where
    M: embassy_sync::blocking_mutex::raw::RawMutex,
    Tm: Timer,
    A: Future<Output = ()>,
    B: Future<Output = ()>,
{
    let mut a = pin!(a);
    let mut b = pin!(b);
    let (mut a_done, mut b_done) = (false, false);
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
            if !b_done {
                b_done = b.as_mut().poll(cx).is_ready();
            }
            if a_done && b_done {
                break Poll::Ready(());
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

struct EndDriven<'a, M: embassy_sync::blocking_mutex::raw::RawMutex, T, const N: usize, Tm: Timer, E>(
    &'a Slot<M, T, N, Tm, E>,
);

impl<M: embassy_sync::blocking_mutex::raw::RawMutex, T, const N: usize, Tm: Timer, E> Drop
    for EndDriven<'_, M, T, N, Tm, E>
{
    fn drop(&mut self) {
        self.0.end_driven();
    }
}

/// Batches `source` and calls `handler` on each batch, filling the next batch while the handler
/// awaits. Returns once the source has ended and every batch was handled (for the counters, use
/// [`for_each_batch_in`] and read [`Slot::stats`] afterwards).
///
/// One task, no spawn, no allocation: works on tokio, embassy, or any `block_on`.
///
/// The future is not `Send` (its slot is local and unlocked), and rustc cannot yet prove an
/// async-closure handler's future `Send` either: inside `tokio::spawn`, use
/// [`PrefetchExt::prefetch_batches`](crate::PrefetchExt::prefetch_batches), or
/// [`Slot::split`] a `TokioSlot` and [`join`] the producer with a `while let` loop.
///
/// ```
/// use core::time::Duration;
/// use prefetch_batch::{Config, for_each_batch, timer::ManualClock};
///
/// static CLOCK: ManualClock = ManualClock::new();
/// let clock = &CLOCK;
/// let mut seen = Vec::new();
/// let mut batches = 0;
/// clock.block_on(for_each_batch::<_, _, _, 8, _>(
///     prefetch_batch::testing::iter(0..20u32),
///     Config::new().max_wait(Duration::from_millis(5)),
///     clock,
///     async |batch| {
///         seen.extend_from_slice(&batch);
///         batches += 1;
///     },
/// )).unwrap();
/// assert_eq!(seen, (0..20).collect::<Vec<_>>());
/// assert_eq!(batches, 3); // 8 + 8 + 4
/// ```
pub async fn for_each_batch<S, W, Tm, const N: usize, F>(
    source: S,
    config: Config<W>,
    timer: Tm,
    handler: F,
) -> Result<(), ConfigError>
where
    S: Stream,
    W: Weigher<S::Item>,
    Tm: Timer,
    F: AsyncFnMut(BatchGuard<'_, S::Item, N, Tm::Instant, Slot<NoopRawMutex, S::Item, N, Tm>>),
{
    let slot = Slot::<NoopRawMutex, S::Item, N, Tm, Infallible>::new(timer);
    for_each_batch_in(&slot, source, config, handler).await
}

/// [`for_each_batch`] over a slot you own, so that cancelling the future loses nothing: drop it
/// at any point, and [`Slot::drain_remainder`] hands back every item it had pulled.
///
/// ```
/// use core::pin::pin;
/// use core::task::{Context, Waker};
/// use embassy_sync::blocking_mutex::raw::{NoopRawMutex, RawMutex};
/// use prefetch_batch::{Config, Slot, executor::for_each_batch_in, testing, timer::ManualClock};
///
/// static CLOCK: ManualClock = ManualClock::new();
/// let slot = Slot::<NoopRawMutex, u32, 4, _>::new(&CLOCK);
/// let mut source = testing::iter(0..10);
/// let mut seen = Vec::new();
/// {
///     let run = pin!(for_each_batch_in(&slot, &mut source, Config::new(), async |b| seen.extend_from_slice(&b)));
///     let _ = run.poll(&mut Context::from_waker(Waker::noop())); // one poll, then cancelled
/// }
/// // Delivered, then what the slot still held, then what the source never gave up:
/// let all: Vec<u32> = seen.into_iter().chain(slot.drain_remainder()).chain(source.into_inner()).collect();
/// assert_eq!(all, (0..10).collect::<Vec<_>>());
/// ```
pub async fn for_each_batch_in<M, S, W, Tm, const N: usize, F>(
    slot: &Slot<M, S::Item, N, Tm, Infallible>,
    source: S,
    config: Config<W>,
    mut handler: F,
) -> Result<(), ConfigError>
where
    M: RawMutex,
    S: Stream,
    W: Weigher<S::Item>,
    Tm: Timer,
    F: AsyncFnMut(BatchGuard<'_, S::Item, N, Tm::Instant, Slot<M, S::Item, N, Tm>>),
{
    let (producer, mut rx) = crate::producer::split::<_, _, _, Plain, _, _, N, _, _>(slot, source, config)?;
    let consume = async {
        while let Some(batch) = rx.next().await {
            handler(batch).await;
        }
    };
    join_slot(slot, producer.run(), consume).await;
    Ok(())
}

/// [`for_each_batch`] for a source of `Result<T, E>`: the handler gets each batch, and each error
/// right after the batch of items that came before it.
pub async fn try_for_each_batch<S, T, E, W, Tm, const N: usize, F>(
    source: S,
    config: Config<W>,
    timer: Tm,
    mut handler: F,
) -> Result<(), ConfigError>
where
    S: Stream<Item = Result<T, E>>,
    W: Weigher<T>,
    Tm: Timer,
    F: AsyncFnMut(Result<BatchGuard<'_, T, N, Tm::Instant, Slot<NoopRawMutex, T, N, Tm, E>>, E>),
{
    let slot = Slot::<NoopRawMutex, T, N, Tm, E>::new(timer);
    let (producer, mut rx) = crate::producer::split::<_, _, _, Fallible, _, _, N, _, _>(&slot, source, config)?;
    let consume = async {
        while let Some(next) = rx.try_next().await {
            handler(next).await;
        }
    };
    join_slot(&slot, producer.run(), consume).await;
    Ok(())
}
