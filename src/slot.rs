//! [`Slot`]: the prefetch slot. Two batch buffers and the handoff between producer and caller.
//!
//! A slot owns two `heapless::Vec<T, N>` buffers (double buffering). At any moment each buffer is
//! free, being filled by the producer, ready (published, waiting for the caller) or lent to the
//! caller. The producer fills one buffer while the caller works on the other; a ready batch that
//! was emitted by time (`Deadline`, `Idle`) keeps taking items until the caller takes it or it is
//! full. When both buffers are taken and the caller is busy, the producer stops pulling from the
//! source: memory stays bounded and nothing overflows.
//!
//! The slot is generic over embassy-sync's [`RawMutex`]: `NoopRawMutex` when producer and caller
//! share one executor, `CriticalSectionRawMutex` across interrupts and cores, and
//! [`StdRawMutex`](crate::StdRawMutex) (feature `std`) for threads. It has a `const fn new`, so it
//! can live in a `static`. Pick `embassy_sync::zerocopy_channel` instead when you need more than
//! two slots and no batching policy.

use core::cell::{RefCell, UnsafeCell};
use core::convert::Infallible;
use core::fmt;
use core::task::{Context, Poll, Waker};

use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::RawMutex;
use heapless::Vec;

use crate::config::Limits;
use crate::policy::{BatchInfo, FlushReason};
use crate::stats::{Counters, Stats};
use crate::timer::Timer;

/// Who may touch a buffer. Changed only under the slot's mutex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Empty; the producer may claim it.
    Free,
    /// The producer's; only the producer touches it, without the lock.
    Filling,
    /// Published and queued; touched only under the lock.
    Ready,
    /// The caller's; only the caller touches it, without the lock.
    Lent,
}

/// What a ready buffer says about itself until the caller takes it.
#[derive(Clone, Copy)]
struct Meta<I> {
    reason: FlushReason,
    first_at: I,
}

struct State<T, I, E> {
    role: [Role; 2],
    /// Set while a buffer is `Ready` or `Lent` with a batch (not for an error alone).
    meta: [Option<Meta<I>>; 2],
    /// An error from the source that follows the batch in this buffer (or stands alone in it).
    error: [Option<E>; 2],
    /// The total weight of the `open` batch.
    open_weight: usize,
    /// Ready buffers, oldest first.
    queue: [u8; 2],
    queued: u8,
    /// The newest ready buffer, while it may still take items.
    open: Option<u8>,
    /// An item (or error) pulled from the source that found no room yet; placed before the next pull.
    spill: Option<Result<T, E>>,
    closed: bool,
    /// Close once the source has nothing ready.
    close_when_idle: bool,
    flush: bool,
    producer: Attach,
    receiver: Attach,
    producer_waker: Registration,
    consumer_waker: Registration,
    consumer_waiting: Wait<I>,
    producer_waiting: Wait<I>,
    /// Counts handoffs (publish, hand-back, producer done): the in-task driver polls both halves
    /// again while this changes, instead of a round trip through the executor.
    handoffs: u32,
    /// Set while the in-task driver polls both halves in one task: a handoff's wake-up would be
    /// for that same task, which polls again by itself while handoffs happen, so it is skipped.
    driven: bool,
    stats: Counters,
}

/// One party's waker: the producer's or the consumer's.
///
/// Unlike embassy-sync's `WakerRegistration`, registering does not wake the waker it replaces. Each
/// registration belongs to one party, which registers again on every poll, so the waker replaced is
/// that party's own older one. And some runtimes' wakers are not `will_wake` with their own clones
/// (tokio's `block_on` waker, for one): waking the replaced waker there made every poll schedule
/// another, spurious poll of the task.
///
/// While the in-task driver polls both halves (`driven`), the task's waker is the same for every
/// round of that poll, so it is registered once per poll, not once per round: a waker that is not
/// `will_wake` with its clone would otherwise be cloned and dropped (two atomic operations) each time.
struct Registration {
    waker: Option<Waker>,
    /// Registered during the in-task driver's current poll.
    this_poll: bool,
}

impl Registration {
    const fn new() -> Self {
        Self {
            waker: None,
            this_poll: false,
        }
    }
    fn register(&mut self, waker: &Waker, driven: bool) {
        if driven && self.this_poll {
            return;
        }
        self.this_poll = driven;
        match &mut self.waker {
            Some(old) => old.clone_from(waker),
            None => self.waker = Some(waker.clone()),
        }
    }
    fn wake(&mut self) {
        self.this_poll = false;
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

/// Whether a side is waiting for the other, and since when (for [`Stats`]' waiting times).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait<I> {
    No,
    /// Began while the in-task driver polls both halves: stamped when that poll ends, if the wait
    /// is still on, so a wait that the other half ends within the same poll costs no clock read
    /// and counts as zero (the other half was working, nothing was waited for).
    Unstamped,
    Since(I),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attach {
    None,
    Attached,
    Gone,
}

impl<T, I, E> State<T, I, E> {
    /// A batch or the end was handed to the consumer.
    fn handoff_to_consumer(&mut self) {
        self.handoffs = self.handoffs.wrapping_add(1);
        if !self.driven {
            self.consumer_waker.wake();
        }
    }
    /// A buffer was handed back to the producer.
    fn handoff_to_producer(&mut self) {
        self.handoffs = self.handoffs.wrapping_add(1);
        if !self.driven {
            self.producer_waker.wake();
        }
    }
    fn push_back(&mut self, i: u8) {
        self.queue[self.queued as usize] = i;
        self.queued += 1;
    }
    fn push_front(&mut self, i: u8) {
        self.queue[1] = self.queue[0];
        self.queue[0] = i;
        self.queued += 1;
    }
    fn pop_front(&mut self) -> Option<u8> {
        if self.queued == 0 {
            return None;
        }
        let i = self.queue[0];
        self.queue[0] = self.queue[1];
        self.queued -= 1;
        Some(i)
    }
    fn free_buffer(&self) -> Option<u8> {
        self.role.iter().position(|r| *r == Role::Free).map(|i| i as u8)
    }
}

/// Control requests for the producer, read once per poll.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Control {
    pub(crate) closed: bool,
    pub(crate) close_when_idle: bool,
    pub(crate) flush: bool,
    pub(crate) receiver_gone: bool,
}

/// Where the producer's next item goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Room {
    /// Appended under the lock to the newest ready batch.
    Open,
    /// Into this buffer, now the producer's.
    Own(u8),
    /// Nowhere: every buffer is taken. The producer's waker is registered.
    None,
}

/// The prefetch slot: two batch buffers of capacity `N`, shared by one producer and one receiver.
///
/// - `M`: the [`RawMutex`] guarding the handoff.
/// - `T`: the item type; `N`: the batch capacity (at least 1, checked at compile time).
/// - `Tm`: the [`Timer`]; `E`: the source's error type (`Infallible` for plain streams).
///
/// Most code never names a slot: [`for_each_batch`](crate::for_each_batch) and the tokio adapter
/// make their own. Name it to share one between tasks, e.g. in a `static` on embassy:
///
/// ```
/// use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
/// use prefetch_batch::{Slot, timer::ManualClock};
///
/// static CLOCK: ManualClock = ManualClock::new();
/// static SLOT: Slot<CriticalSectionRawMutex, u32, 32, &ManualClock> = Slot::new(&CLOCK);
/// SLOT.flush(); // any task can ask for the current batch now
/// ```
///
/// A capacity of zero does not compile:
///
/// ```compile_fail
/// use embassy_sync::blocking_mutex::raw::NoopRawMutex;
/// use prefetch_batch::{Slot, timer::ManualClock};
/// static CLOCK: ManualClock = ManualClock::new();
/// let slot: Slot<NoopRawMutex, u32, 0, &ManualClock> = Slot::new(&CLOCK);
/// ```
pub struct Slot<M: RawMutex, T, const N: usize, Tm: Timer, E = Infallible> {
    bufs: [UnsafeCell<Vec<T, N>>; 2],
    state: Mutex<M, RefCell<State<T, Tm::Instant, E>>>,
    timer: Tm,
}

// SAFETY: the buffers are the only state outside the mutex. Each is touched only by the side whose
// `Role` says it owns it (`Filling`: the producer, `Lent`: the receiver), or under the mutex
// (`Ready`, `Free`), and roles change only under the mutex, so no buffer is ever accessed from two
// threads at once. Items and errors cross threads, hence `T: Send, E: Send`; the mutex must be
// `Sync` to be locked from several threads.
unsafe impl<M, T, const N: usize, Tm, E> Sync for Slot<M, T, N, Tm, E>
where
    M: RawMutex + Sync,
    T: Send,
    Tm: Timer + Sync,
    Tm::Instant: Send,
    E: Send,
{
}

impl<M: RawMutex, T, const N: usize, Tm: Timer, E> fmt::Debug for Slot<M, T, N, Tm, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.state.lock(|s| {
            let s = s.borrow();
            f.debug_struct("Slot")
                .field("capacity", &N)
                .field("roles", &s.role)
                .field("ready", &s.queued)
                .field("closed", &s.closed)
                .field("stats", &s.stats.snapshot())
                .finish_non_exhaustive()
        })
    }
}

#[cfg(feature = "defmt")]
impl<M: RawMutex, T, const N: usize, Tm: Timer, E> defmt::Format for Slot<M, T, N, Tm, E> {
    fn format(&self, f: defmt::Formatter<'_>) {
        let (ready, closed, stats) = self.with(|s| (s.queued, s.closed, s.stats.snapshot()));
        defmt::write!(
            f,
            "Slot {{ capacity: {}, ready: {}, closed: {}, stats: {} }}",
            N,
            ready,
            closed,
            stats
        )
    }
}

impl<M: RawMutex, T, const N: usize, Tm: Timer, E> Slot<M, T, N, Tm, E> {
    /// An empty slot with no producer and no receiver attached.
    pub const fn new(timer: Tm) -> Self {
        const { assert!(N > 0, "batch capacity N must be at least 1") };
        Self {
            bufs: [UnsafeCell::new(Vec::new()), UnsafeCell::new(Vec::new())],
            state: Mutex::new(RefCell::new(State {
                role: [Role::Free; 2],
                meta: [None, None],
                error: [None, None],
                open_weight: 0,
                queue: [0; 2],
                queued: 0,
                open: None,
                spill: None,
                closed: false,
                close_when_idle: false,
                flush: false,
                producer: Attach::None,
                receiver: Attach::None,
                producer_waker: Registration::new(),
                consumer_waker: Registration::new(),
                consumer_waiting: Wait::No,
                producer_waiting: Wait::No,
                handoffs: 0,
                driven: false,
                stats: Counters::new(),
            })),
            timer,
        }
    }

    /// The slot's timer.
    pub fn timer(&self) -> &Tm {
        &self.timer
    }

    /// Asks the producer to emit the batch it is filling now (reason [`FlushReason::Flush`]), and
    /// to stop adding to a ready batch. Does nothing if there is nothing to emit.
    pub fn flush(&self) {
        self.with(|s| {
            s.flush = true;
            s.producer_waker.wake();
        });
    }

    /// Stops intake: the producer emits its partial batch at once (reason
    /// [`FlushReason::Close`]) and finishes; the receiver gets every batch still buffered, then
    /// the end. Items the producer has not pulled stay in the source.
    pub fn close(&self) {
        self.with(|s| {
            s.closed = true;
            s.producer_waker.wake();
        });
    }

    /// Like [`Slot::close`], but first takes everything the source has ready now: intake stops
    /// the first time the source returns `Pending` (a channel's backlog is drained), then the
    /// partial batch is emitted with reason [`FlushReason::Close`]. For a graceful shutdown that
    /// finishes the queued work. A source that is never idle keeps the batcher running; call
    /// [`Slot::close`] to stop at once.
    pub fn close_when_idle(&self) {
        self.with(|s| {
            s.close_when_idle = true;
            s.producer_waker.wake();
        });
    }

    /// Whether [`Slot::close`] was called (or the receiver is gone).
    pub fn is_closed(&self) -> bool {
        self.with(|s| s.closed)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.with(|s| s.stats.snapshot())
    }

    fn with<R>(&self, f: impl FnOnce(&mut State<T, Tm::Instant, E>) -> R) -> R {
        self.state.lock(|s| f(&mut s.borrow_mut()))
    }

    /// # Safety
    /// The caller must own buffer `i`: the producer while its role is `Filling`, the receiver while
    /// it is `Lent`, or anyone while holding the lock and the role is `Ready` or `Free`. No other
    /// reference to that buffer may be alive.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn buf_mut(&self, i: u8) -> &mut Vec<T, N> {
        // SAFETY: exclusivity is the caller's contract above.
        unsafe { &mut *self.bufs[i as usize].get() }
    }

    // ----- attaching -----

    pub(crate) fn attach_producer(&self) -> Result<(), crate::ConfigError> {
        self.with(|s| match s.producer {
            Attach::None => {
                s.producer = Attach::Attached;
                Ok(())
            }
            _ => Err(crate::ConfigError::SlotInUse),
        })
    }

    pub(crate) fn attach_receiver(&self) -> Result<(), crate::ConfigError> {
        self.with(|s| match s.receiver {
            Attach::None => {
                s.receiver = Attach::Attached;
                Ok(())
            }
            _ => Err(crate::ConfigError::SlotInUse),
        })
    }

    fn detach_receiver(&self) {
        self.with(|s| {
            s.receiver = Attach::Gone;
            s.closed = true;
            s.producer_waker.wake();
        });
    }

    // ----- producer side -----

    /// Reads and clears the control requests, and registers the producer's waker so a later
    /// flush, close or hand-back reaches it wherever it is waiting (source, timer or buffer).
    pub(crate) fn control(&self, cx: &mut Context<'_>) -> Control {
        self.with(|s| {
            s.producer_waker.register(cx.waker(), s.driven);
            Control {
                closed: s.closed,
                close_when_idle: s.close_when_idle,
                flush: core::mem::take(&mut s.flush),
                receiver_gone: s.receiver == Attach::Gone,
            }
        })
    }

    /// Finds room for the next item. Registers the producer's waker when there is none, in the
    /// same critical section, so a buffer handed back afterwards always wakes it.
    pub(crate) fn room(&self, cx: &mut Context<'_>, limits: &Limits) -> Room {
        self.with(|s| {
            if let Some(i) = s.open {
                // SAFETY: `open` is `Ready`, and we hold the lock.
                let len = unsafe { self.buf_mut(i) }.len();
                if !limits.is_full(len, s.open_weight) {
                    return Room::Open;
                }
                s.open = None;
            }
            self.claim_locked(s, cx)
        })
    }

    fn claim_locked(&self, s: &mut State<T, Tm::Instant, E>, cx: &mut Context<'_>) -> Room {
        match s.free_buffer() {
            Some(i) => {
                s.role[i as usize] = Role::Filling;
                // A new batch starts: the older ready one must not take later items.
                s.open = None;
                if let Wait::Since(since) = core::mem::replace(&mut s.producer_waiting, Wait::No) {
                    s.stats.producer_waited(self.timer.since(self.timer.now(), since));
                }
                Room::Own(i)
            }
            None => {
                s.producer_waker.register(cx.waker(), s.driven);
                if s.producer_waiting == Wait::No {
                    s.producer_waiting = self.wait_start(s.driven);
                }
                Room::None
            }
        }
    }

    /// Claims a free buffer for the producer.
    pub(crate) fn claim(&self, cx: &mut Context<'_>) -> Option<u8> {
        self.with(|s| match self.claim_locked(s, cx) {
            Room::Own(i) => Some(i),
            _ => None,
        })
    }

    /// Appends `item` (of weight `w`) to the newest ready batch if it is still open and the item
    /// fits; otherwise closes that batch to further items and hands the item back.
    pub(crate) fn append_open(&self, item: T, w: usize, limits: &Limits) -> Result<(), T> {
        self.with(|s| {
            let Some(i) = s.open else { return Err(item) };
            // SAFETY: `open` is `Ready`, and we hold the lock.
            let buf = unsafe { self.buf_mut(i) };
            if !limits.fits(buf.len(), s.open_weight, w) {
                s.open = None;
                return Err(item);
            }
            buf.push(item)?;
            s.open_weight += w;
            if limits.is_full(buf.len(), s.open_weight) {
                s.open = None;
            }
            Ok(())
        })
    }

    /// Attaches a source error to the newest ready batch if it is still open.
    pub(crate) fn append_error_open(&self, error: E) -> Result<(), E> {
        self.with(|s| {
            let Some(i) = s.open.take() else {
                return Err(error);
            };
            s.error[i as usize] = Some(error);
            Ok(())
        })
    }

    /// Stops the newest ready batch from taking more items.
    pub(crate) fn seal_open(&self) {
        self.with(|s| s.open = None);
    }

    /// Publishes the producer's buffer `i` (which may be empty only when `error` is set).
    pub(crate) fn publish(
        &self,
        i: u8,
        reason: FlushReason,
        first_at: Option<Tm::Instant>,
        weight: usize,
        error: Option<E>,
        open: bool,
    ) {
        self.with(|s| {
            debug_assert_eq!(s.role[i as usize], Role::Filling);
            s.role[i as usize] = Role::Ready;
            s.meta[i as usize] = first_at.map(|first_at| Meta { reason, first_at });
            s.error[i as usize] = error;
            s.push_back(i);
            s.open = if open { Some(i) } else { None };
            s.open_weight = weight;
            s.handoff_to_consumer();
        });
    }

    /// Returns the producer's empty buffer `i` unused.
    pub(crate) fn unclaim(&self, i: u8) {
        self.with(|s| {
            s.role[i as usize] = Role::Free;
            s.handoff_to_producer();
        });
    }

    /// Parks an item or error that found no room; it is placed before anything else is pulled,
    /// and handed back by [`Receiver::drain_remainder`](crate::Receiver::drain_remainder) if it
    /// never is.
    pub(crate) fn put_spill(&self, x: Result<T, E>) {
        self.with(|s| s.spill = Some(x));
    }

    pub(crate) fn take_spill(&self) -> Option<Result<T, E>> {
        self.with(|s| s.spill.take())
    }

    /// The producer is done: no batch will follow those already published.
    pub(crate) fn producer_done(&self) {
        self.with(|s| {
            s.producer = Attach::Gone;
            s.open = None;
            s.handoff_to_consumer();
        });
    }

    // ----- receiver side -----

    /// Takes the oldest ready batch, lending its buffer to the caller.
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Taken<Tm::Instant>, E>>> {
        self.with(|s| {
            let Some(i) = s.pop_front() else {
                if s.producer == Attach::Gone {
                    return Poll::Ready(self.take_parked(s));
                }
                // No producer yet, or one still running: wait for it.
                s.consumer_waker.register(cx.waker(), s.driven);
                if s.consumer_waiting == Wait::No {
                    s.consumer_waiting = self.wait_start(s.driven);
                }
                return Poll::Pending;
            };
            let now = self.timer.now();
            if let Wait::Since(since) = core::mem::replace(&mut s.consumer_waiting, Wait::No) {
                s.stats.consumer_waited(self.timer.since(now, since));
            }
            if s.open == Some(i) {
                s.open = None;
            }
            let Some(meta) = s.meta[i as usize] else {
                // An error with no batch before it.
                s.role[i as usize] = Role::Free;
                s.stats.error();
                s.handoff_to_producer();
                let error = s.error[i as usize].take();
                return Poll::Ready(error.map(Err));
            };
            s.role[i as usize] = Role::Lent;
            // SAFETY: buffer `i` is now `Lent` to the receiver, which is inside this call.
            let len = unsafe { self.buf_mut(i) }.len();
            let age = self.timer.since(now, meta.first_at);
            s.stats.batch(meta.reason, len, age);
            let info = BatchInfo {
                reason: meta.reason,
                first_at: meta.first_at,
                age,
            };
            Poll::Ready(Some(Ok(Taken { index: i, info })))
        })
    }

    /// After the producer is gone, delivers the item (or error) it had pulled but found no room
    /// for: nothing it took from the source is lost, even if it was dropped mid-way.
    fn take_parked(&self, s: &mut State<T, Tm::Instant, E>) -> Option<Result<Taken<Tm::Instant>, E>> {
        match s.spill.take()? {
            Err(error) => {
                s.stats.error();
                Some(Err(error))
            }
            Ok(item) => {
                // The queue is empty and nothing is lent while the receiver asks, so a buffer is free.
                let Some(i) = s.free_buffer() else {
                    s.spill = Some(Ok(item));
                    return None;
                };
                // SAFETY: buffer `i` is `Free`, and we hold the lock.
                let _ = unsafe { self.buf_mut(i) }.push(item);
                s.role[i as usize] = Role::Lent;
                let now = self.timer.now();
                s.stats.batch(FlushReason::Close, 1, core::time::Duration::ZERO);
                s.meta[i as usize] = Some(Meta {
                    reason: FlushReason::Close,
                    first_at: now,
                });
                let info = BatchInfo {
                    reason: FlushReason::Close,
                    first_at: now,
                    age: core::time::Duration::ZERO,
                };
                Some(Ok(Taken { index: i, info }))
            }
        }
    }

    /// Hands a lent buffer back. The caller has already emptied it (outside the lock, so item
    /// destructors never run inside a critical section).
    pub(crate) fn release(&self, i: u8) {
        self.with(|s| {
            debug_assert_eq!(s.role[i as usize], Role::Lent);
            s.meta[i as usize] = None;
            if s.error[i as usize].is_some() {
                // The error follows the batch just handed back: it is next in line, alone.
                s.role[i as usize] = Role::Ready;
                s.push_front(i);
                s.handoff_to_consumer();
            } else {
                s.role[i as usize] = Role::Free;
            }
            s.handoff_to_producer();
        });
    }

    /// How many handoffs happened so far (wrapping); see [`State::handoffs`].
    pub(crate) fn handoffs(&self) -> u32 {
        self.with(|s| s.handoffs)
    }

    /// The in-task driver starts polling both halves; see [`State::driven`].
    pub(crate) fn begin_driven(&self) {
        self.with(|s| {
            s.driven = true;
            s.producer_waker.this_poll = false;
            s.consumer_waker.this_poll = false;
        });
    }

    /// The in-task driver's poll ends: waits still on are stamped now; see [`Wait::Unstamped`].
    pub(crate) fn end_driven(&self) {
        self.with(|s| {
            s.driven = false;
            if s.producer_waiting == Wait::Unstamped || s.consumer_waiting == Wait::Unstamped {
                let now = self.timer.now();
                for w in [&mut s.producer_waiting, &mut s.consumer_waiting] {
                    if *w == Wait::Unstamped {
                        *w = Wait::Since(now);
                    }
                }
            }
        });
    }

    fn wait_start(&self, driven: bool) -> Wait<Tm::Instant> {
        if driven {
            Wait::Unstamped
        } else {
            Wait::Since(self.timer.now())
        }
    }

    /// Closes the slot and takes every item it still holds, oldest first: the ready batches and
    /// an item the producer pulled but had no room for. Errors still queued are dropped.
    ///
    /// Everything is there once the producer has finished or was dropped (it publishes its
    /// partial batch when it stops). A batch lent to a guard is the guard's.
    pub fn drain_remainder(&self) -> Remainder<T, N> {
        let mut out = Remainder {
            parts: [Vec::new(), Vec::new()],
            spill: None,
            part: 0,
        };
        self.with(|s| {
            s.closed = true;
            s.open = None;
            s.producer_waker.wake();
            let mut k = 0;
            while let Some(i) = s.pop_front() {
                // SAFETY: buffer `i` was `Ready`, and we hold the lock.
                out.parts[k] = core::mem::take(unsafe { self.buf_mut(i) });
                // Stored reversed so the iterator pops from the back in O(1).
                out.parts[k].reverse();
                s.meta[i as usize] = None;
                s.error[i as usize] = None;
                s.role[i as usize] = Role::Free;
                k += 1;
            }
            out.spill = match s.spill.take() {
                Some(Ok(item)) => Some(item),
                _ => None,
            };
        });
        out
    }
}

/// A batch just taken: which buffer, and what it says about itself.
pub(crate) struct Taken<I> {
    pub(crate) index: u8,
    pub(crate) info: BatchInfo<I>,
}

/// What a guard or a receiver does to its slot without naming the slot's type parameters.
/// Public only so it can appear in bounds; it cannot be named outside this crate.
pub trait Release {
    /// Hands lent buffer `i` back.
    fn release(&self, i: u8);
    /// The receiver is gone.
    fn detach(&self);
}

impl<M: RawMutex, T, const N: usize, Tm: Timer, E> Release for Slot<M, T, N, Tm, E> {
    fn release(&self, i: u8) {
        Slot::release(self, i);
    }
    fn detach(&self) {
        self.detach_receiver();
    }
}

/// Every item a slot still held when it was drained, oldest first.
///
/// Formats with `defmt` as its item count.
///
/// ```
/// use embassy_sync::blocking_mutex::raw::NoopRawMutex;
/// use prefetch_batch::{Config, Slot, timer::ManualClock};
///
/// let clock = ManualClock::new();
/// let slot: Slot<NoopRawMutex, u32, 4, _> = Slot::new(&clock);
/// let (producer, mut rx) = slot.split(futures_lite_iter([1, 2, 3]), Config::new()).unwrap();
/// drop(producer); // never ran: nothing was pulled
/// assert_eq!(rx.drain_remainder().count(), 0);
/// # fn futures_lite_iter<const K: usize>(a: [u32; K]) -> impl futures_core::Stream<Item = u32> {
/// #     struct It<I>(I);
/// #     impl<I: Iterator + Unpin> futures_core::Stream for It<I> {
/// #         type Item = I::Item;
/// #         fn poll_next(mut self: core::pin::Pin<&mut Self>, _: &mut core::task::Context<'_>)
/// #             -> core::task::Poll<Option<I::Item>> { core::task::Poll::Ready(self.0.next()) }
/// #     }
/// #     It(a.into_iter())
/// # }
/// ```
#[derive(Debug)]
pub struct Remainder<T, const N: usize> {
    parts: [Vec<T, N>; 2],
    spill: Option<T>,
    part: usize,
}

#[cfg(feature = "defmt")]
impl<T, const N: usize> defmt::Format for Remainder<T, N> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Remainder {{ len: {} }}", self.len())
    }
}

impl<T, const N: usize> Remainder<T, N> {
    /// How many items are left.
    pub fn len(&self) -> usize {
        self.parts.iter().skip(self.part).map(|p| p.len()).sum::<usize>() + usize::from(self.spill.is_some())
    }

    /// Whether no item is left.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T, const N: usize> Iterator for Remainder<T, N> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        while self.part < 2 {
            if let Some(item) = self.parts[self.part].pop() {
                return Some(item);
            }
            self.part += 1;
        }
        self.spill.take()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.len();
        (n, Some(n))
    }
}

impl<T, const N: usize> ExactSizeIterator for Remainder<T, N> {}

impl<M: RawMutex, T, const N: usize, Tm: Timer> Slot<M, T, N, Tm, Infallible> {
    /// Attaches a producer over `source` and a receiver to this slot.
    ///
    /// Run the producer's [`run`](crate::Producer::run) future somewhere (beside the consumer with
    /// [`join`](crate::executor::join), or in another task) and take batches from the receiver.
    pub fn split<S, W>(
        &self,
        source: S,
        config: crate::Config<W>,
    ) -> Result<Halves<'_, Self, S, W, crate::source::Plain>, crate::ConfigError>
    where
        S: futures_core::Stream<Item = T>,
        W: crate::config::Weigher<T>,
    {
        Ok((crate::Producer::new(self, source, config)?, crate::Receiver::new(self)?))
    }
}

impl<M: RawMutex, T, const N: usize, Tm: Timer, E> Slot<M, T, N, Tm, E> {
    /// [`split`](Slot::split) for a source of `Result<T, E>`.
    pub fn try_split<S, W>(
        &self,
        source: S,
        config: crate::Config<W>,
    ) -> Result<Halves<'_, Self, S, W, crate::source::Fallible>, crate::ConfigError>
    where
        S: futures_core::Stream<Item = Result<T, E>>,
        W: crate::config::Weigher<T>,
    {
        Ok((crate::Producer::new(self, source, config)?, crate::Receiver::new(self)?))
    }
}

/// What [`Slot::split`] returns: the producer and the receiver of one slot.
pub type Halves<'a, Sl, S, W, K> = (crate::Producer<&'a Sl, S, W, K>, crate::Receiver<&'a Sl>);
