//! The in-task driver: producer and consumer polled together in the caller's task. No spawn, no
//! allocation, any executor.

use core::convert::Infallible;
use core::future::{Future, poll_fn};
use core::pin::pin;
use core::task::Poll;

use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use futures_core::Stream;

use crate::config::{Config, ConfigError, Weigher};
use crate::producer::Producer;
use crate::receiver::{BatchGuard, Receiver};
use crate::slot::Slot;
use crate::source::{Fallible, Plain};
use crate::stats::Stats;
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
        let mut rounds = 0;
        let poll = loop {
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
        };
        slot.end_driven();
        poll
    })
    .await
}

/// Batches `source` and calls `handler` on each batch, filling the next batch while the handler
/// awaits. Returns the counters once the source has ended and every batch was handled.
///
/// One task, no spawn, no allocation: works on tokio, embassy, or any `block_on`.
///
/// ```
/// use core::time::Duration;
/// use prefetch_batch::{Config, for_each_batch, timer::ManualClock};
///
/// static CLOCK: ManualClock = ManualClock::new();
/// let clock = &CLOCK;
/// let mut seen = Vec::new();
/// let stats = clock.block_on(for_each_batch::<_, _, _, 8, _>(
///     prefetch_batch::testing::iter(0..20u32),
///     Config::new().max_wait(Duration::from_millis(5)),
///     clock,
///     async |batch| seen.extend_from_slice(&batch),
/// )).unwrap();
/// assert_eq!(seen, (0..20).collect::<Vec<_>>());
/// assert_eq!(stats.total_batches(), 3); // 8 + 8 + 4
/// ```
pub async fn for_each_batch<S, W, Tm, const N: usize, F>(
    source: S,
    config: Config<W>,
    timer: Tm,
    mut handler: F,
) -> Result<Stats, ConfigError>
where
    S: Stream,
    W: Weigher<S::Item>,
    Tm: Timer,
    F: AsyncFnMut(BatchGuard<'_, S::Item, N, Tm::Instant>),
{
    let slot = Slot::<NoopRawMutex, S::Item, N, Tm, Infallible>::new(timer);
    let producer = Producer::<_, _, _, Plain>::new(&slot, source, config)?;
    let mut rx = Receiver::new(&slot)?;
    let consume = async {
        while let Some(batch) = rx.next().await {
            handler(batch).await;
        }
    };
    join_slot(&slot, producer.run(), consume).await;
    Ok(slot.stats())
}

/// [`for_each_batch`] for a source of `Result<T, E>`: the handler gets each batch, and each error
/// right after the batch of items that came before it.
pub async fn try_for_each_batch<S, T, E, W, Tm, const N: usize, F>(
    source: S,
    config: Config<W>,
    timer: Tm,
    mut handler: F,
) -> Result<Stats, ConfigError>
where
    S: Stream<Item = Result<T, E>>,
    W: Weigher<T>,
    Tm: Timer,
    F: AsyncFnMut(Result<BatchGuard<'_, T, N, Tm::Instant>, E>),
{
    let slot = Slot::<NoopRawMutex, T, N, Tm, E>::new(timer);
    let producer = Producer::<_, _, _, Fallible>::new(&slot, source, config)?;
    let mut rx = Receiver::new(&slot)?;
    let consume = async {
        while let Some(next) = rx.try_next().await {
            handler(next).await;
        }
    };
    join_slot(&slot, producer.run(), consume).await;
    Ok(slot.stats())
}
