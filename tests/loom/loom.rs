//! loom models of the slot handoff: every interleaving (up to the preemption bound) of a producer
//! thread and a consumer thread (and, for flush, a third thread) over a real [`Slot`].
//!
//! The slot is generic over embassy-sync's `RawMutex`, so the models lock through
//! [`LoomRawMutex`], a `loom::sync::Mutex`; each side drives its future with a `block_on` whose
//! waker unparks a loom thread. A wake the slot forgets leaves a thread parked forever, which loom
//! reports as a deadlock; a wrong handoff shows up as a lost, duplicated or reordered item, an empty
//! batch, or a failed role assertion (debug assertions are on in the release profile).
//!
//! Loom sees the buffers too: built with `--cfg loom`, the slot records every access to a buffer
//! (through a token, or under the lock) in a loom cell per buffer, so an access on one thread that
//! the slot's synchronization does not order after one on another is a causality violation, not
//! only a wrong role. (Checked: handing a lent buffer back before clearing it fails
//! `a_publish_take_release_n1` and `_n2` with "Concurrent write accesses to `UnsafeCell`".) Each
//! model leaks its slot (`&'static`, as firmware has it).
//!
//! Run: `scripts/loom` (`LOOM_MAX_PREEMPTIONS`, default 4).
#![cfg(loom)]

use core::future::Future;
use core::pin::{Pin, pin};
use core::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use core::time::Duration;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use embassy_sync::blocking_mutex::raw::RawMutex;
use futures_core::Stream;
use loom::thread;
use prefetch_batch::FlushReason::{self, Close, End, Flush, Full};
use prefetch_batch::timer::Timer;
use prefetch_batch::{Config, Receiver, Slot};

// ----- the lock -----

/// An embassy-sync `RawMutex` over a `loom::sync::Mutex`. `INIT` must be const and loom's mutex
/// is not, so it is created on first use; every model locks its slot once (attaching the producer)
/// on the model's main thread before it spawns anything, so creation never races.
struct LoomRawMutex(OnceLock<loom::sync::Mutex<()>>);

// SAFETY: `lock` runs `f` only while holding the loom mutex, so two calls never overlap.
unsafe impl RawMutex for LoomRawMutex {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = Self(OnceLock::new());

    fn lock<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.0.get_or_init(|| loom::sync::Mutex::new(())).lock().unwrap();
        f()
    }
}

// ----- block_on -----

/// The waker's data: the loom thread to unpark, and a flag that says it was woken. One static
/// vtable, so `will_wake` holds for the clones of one thread's waker and the slot keeps a single
/// registration per side.
///
/// The flag is needed because loom's `unpark` differs from std's: unparking a thread that is
/// blocked on a loom *mutex* (not in `park`) makes it runnable and drops the token, so its next
/// `park` would block although it was woken. std keeps the token. Without the flag, a wake that
/// lands while the other side is waiting for the slot's lock shows up as a false deadlock.
struct Unparker {
    thread: thread::Thread,
    woken: AtomicBool,
}

impl Unparker {
    fn wake(&self) {
        self.woken.store(true, Ordering::SeqCst);
        self.thread.unpark();
    }
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

unsafe fn clone(p: *const ()) -> RawWaker {
    // SAFETY: `p` came from `Arc::into_raw` in `block_on` and the waker being cloned holds a count.
    unsafe { Arc::increment_strong_count(p as *const Unparker) };
    RawWaker::new(p, &VTABLE)
}
unsafe fn wake(p: *const ()) {
    // SAFETY: consumes the count this waker held.
    unsafe { Arc::from_raw(p as *const Unparker) }.wake();
}
unsafe fn wake_by_ref(p: *const ()) {
    // SAFETY: the waker holds a count, so the `Unparker` is alive.
    unsafe { &*(p as *const Unparker) }.wake();
}
unsafe fn drop_waker(p: *const ()) {
    // SAFETY: releases the count this waker held.
    drop(unsafe { Arc::from_raw(p as *const Unparker) });
}

/// Polls `fut` on the current loom thread, parking between polls until its waker unparks it.
fn block_on<F: Future>(fut: F) -> F::Output {
    let unparker = Arc::new(Unparker {
        thread: thread::current(),
        woken: AtomicBool::new(false),
    });
    let data = Arc::into_raw(unparker.clone()) as *const ();
    // SAFETY: the vtable above upholds the `RawWaker` contract for an `Arc<Unparker>` pointer.
    let waker = unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) };
    let mut cx = Context::from_waker(&waker);
    let fut = ForgetOnPanic(Some(fut));
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        // A wake during the poll set the flag: poll again at once. Otherwise sleep until one comes.
        while !unparker.woken.swap(false, Ordering::SeqCst) {
            thread::park();
        }
    }
}

/// Leaks its value instead of dropping it while a panic unwinds. When loom reports a failure
/// (a deadlock, an assertion), the producer's and receiver's destructors would lock the slot after
/// loom's execution is gone and turn the report into an abort; leaking keeps the report readable.
struct ForgetOnPanic<T>(Option<T>);

impl<T> Drop for ForgetOnPanic<T> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            core::mem::forget(self.0.take());
        }
    }
}

impl<T> core::ops::Deref for ForgetOnPanic<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.as_ref().unwrap()
    }
}

impl<T> core::ops::DerefMut for ForgetOnPanic<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.as_mut().unwrap()
    }
}

impl<F: Future> Future for ForgetOnPanic<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: structural pinning of the one field; it is never moved out while pinned (only
        // leaked, which never runs its destructor or moves it).
        unsafe { self.map_unchecked_mut(|s| s.0.as_mut().unwrap()) }.poll(cx)
    }
}

// ----- a timer without time, and tiny sources -----

/// The models use no time limits, so the timer is never slept on.
#[derive(Debug, Clone, Copy)]
struct NoClock;

impl Timer for NoClock {
    type Instant = Duration;
    type Sleep = core::future::Pending<()>;
    const MAX_DURATION: Duration = Duration::from_secs(1);
    fn now(&self) -> Duration {
        Duration::ZERO
    }
    fn sleep_until(&self, _: Duration) -> Self::Sleep {
        core::future::pending()
    }
}

/// One step of a scripted source.
#[derive(Debug, Clone, Copy)]
enum Step {
    Item(u32),
    Fail,
    /// Not ready this poll (it wakes itself at once, as a source that is merely busy would).
    Busy,
    /// Not ready, now and forever, and never wakes anyone: only the slot's own wakes (close,
    /// flush) can move the producer on. Sets `quiet` when reached.
    Quiet,
}

/// Yields its steps then ends; counts the items it handed out.
struct Script {
    steps: &'static [Step],
    at: usize,
    pulled: Arc<AtomicUsize>,
    quiet: Arc<loom::sync::atomic::AtomicBool>,
}

impl Script {
    fn new(steps: &'static [Step]) -> (Self, Arc<AtomicUsize>) {
        let pulled = Arc::new(AtomicUsize::new(0));
        let s = Self {
            steps,
            at: 0,
            pulled: pulled.clone(),
            quiet: Arc::new(loom::sync::atomic::AtomicBool::new(false)),
        };
        (s, pulled)
    }
}

impl Stream for Script {
    type Item = Result<u32, &'static str>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(&step) = self.steps.get(self.at) else {
            return Poll::Ready(None);
        };
        self.at += 1;
        match step {
            Step::Item(x) => {
                self.pulled.fetch_add(1, Ordering::Relaxed);
                Poll::Ready(Some(Ok(x)))
            }
            Step::Fail => Poll::Ready(Some(Err("e"))),
            Step::Busy => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Step::Quiet => {
                self.at -= 1;
                self.quiet.store(true, Ordering::SeqCst);
                Poll::Pending
            }
        }
    }
}

/// Plain values of a script with no `Fail` steps.
struct Values(Script);

impl Stream for Values {
    type Item = u32;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u32>> {
        Pin::new(&mut self.0).poll_next(cx).map(|o| o.map(|r| r.unwrap()))
    }
}

/// 0, 1, 2, ... forever, always ready.
struct Forever(u32);

impl Stream for Forever {
    type Item = u32;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<u32>> {
        self.0 += 1;
        Poll::Ready(Some(self.0 - 1))
    }
}

// ----- harness -----

type TestSlot<const N: usize, E = core::convert::Infallible> = Slot<LoomRawMutex, u32, N, NoClock, E>;

/// Runs `f` under `loom::model`, counting and printing the interleavings explored.
fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let start = std::time::Instant::now();
    loom::model(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        f();
    });
    println!(
        "loom model {name}: {} interleavings explored in {:.1?} (LOOM_MAX_PREEMPTIONS={})",
        runs.load(Ordering::Relaxed),
        start.elapsed(),
        std::env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| "unbounded".into()),
    );
}

/// Takes every batch until the end: (items, reason).
async fn drain_all<const N: usize>(rx: &mut Receiver<&'static TestSlot<N>>) -> Vec<(Vec<u32>, FlushReason)> {
    let mut got = vec![];
    while let Some(b) = rx.recv().await {
        got.push((b.to_vec(), b.info().reason));
    }
    got
}

fn flat(batches: &[(Vec<u32>, FlushReason)]) -> Vec<u32> {
    batches.iter().flat_map(|b| b.0.clone()).collect()
}

fn assert_well_formed<const N: usize>(batches: &[(Vec<u32>, FlushReason)], allowed: &[FlushReason]) {
    for (items, reason) in batches {
        assert!(!items.is_empty() && items.len() <= N, "batch {items:?}");
        assert!(allowed.contains(reason), "reason {reason:?} in {batches:?}");
    }
}

// ----- (a) publish vs take vs release -----

/// Two buffers of one item, three items: the producer must wait for a buffer to come back, so
/// every publish races a take and every release races a claim. All items exactly once, in order.
#[test]
fn a_publish_take_release_n1() {
    model("a_publish_take_release_n1", || {
        const STEPS: &[Step] = &[Step::Item(0), Step::Item(1), Step::Item(2)];
        let slot: &'static TestSlot<1> = Box::leak(Box::new(TestSlot::<1>::new(NoClock)));
        let (source, _) = Script::new(STEPS);
        let (producer, rx) = slot.split(Values(source), Config::new()).unwrap();
        let mut rx = ForgetOnPanic(Some(rx));
        let p = thread::spawn(move || block_on(producer));
        let got = block_on(drain_all(&mut rx));
        p.join().unwrap();
        assert_eq!(got, vec![(vec![0], Full), (vec![1], Full), (vec![2], Full)]);
        assert_eq!(slot.stats().items(), 3);
    });
}

/// Two buffers of two, a source that is busy once mid-batch: the partial batch and the end race
/// the caller's takes and hand-backs; the guard is held across the producer's progress.
#[test]
fn a_publish_take_release_n2() {
    model("a_publish_take_release_n2", || {
        const STEPS: &[Step] = &[Step::Item(0), Step::Item(1), Step::Item(2), Step::Busy, Step::Item(3)];
        let slot: &'static TestSlot<2> = Box::leak(Box::new(TestSlot::<2>::new(NoClock)));
        let (source, _) = Script::new(STEPS);
        let (producer, rx) = slot.split(Values(source), Config::new()).unwrap();
        let mut rx = ForgetOnPanic(Some(rx));
        let p = thread::spawn(move || block_on(producer));
        let got = block_on(drain_all(&mut rx));
        p.join().unwrap();
        assert_eq!(got, vec![(vec![0, 1], Full), (vec![2, 3], Full)]);
    });
}

/// An error between items: the error entry is re-queued at the front when its batch is handed
/// back, racing the producer's next publish. Batch, then error, then the rest, in order.
#[test]
fn a_error_requeued_on_release() {
    model("a_error_requeued_on_release", || {
        const STEPS: &[Step] = &[Step::Item(0), Step::Fail, Step::Item(1), Step::Item(2)];
        let slot: &'static TestSlot<1, &'static str> = Box::leak(Box::new(TestSlot::<1, &'static str>::new(NoClock)));
        let (source, _) = Script::new(STEPS);
        let (producer, rx) = slot.try_split(source, Config::new()).unwrap();
        let mut rx = ForgetOnPanic(Some(rx));
        let p = thread::spawn(move || block_on(producer));
        let got = block_on(async {
            let mut got = vec![];
            while let Some(r) = rx.recv().await {
                got.push(r.map(|b| (b.to_vec(), b.info().reason)));
            }
            got
        });
        p.join().unwrap();
        assert_eq!(
            got,
            vec![Ok((vec![0], Full)), Err("e"), Ok((vec![1], Full)), Ok((vec![2], Full))]
        );
    });
}

// ----- (b) close racing the producer mid-batch -----

/// The caller closes while the producer is mid-batch (the source is busy once inside a batch),
/// then reads to the end: every item the producer pulled is delivered once, in order, the stream
/// ends, and the producer stops.
#[test]
fn b_close_races_the_producer() {
    for close_after in 0..2 {
        model(
            &format!("b_close_races_the_producer (close after {close_after} batches)"),
            move || {
                const STEPS: &[Step] = &[Step::Item(0), Step::Busy, Step::Item(1), Step::Item(2), Step::Item(3)];
                let slot: &'static TestSlot<2> = Box::leak(Box::new(TestSlot::<2>::new(NoClock)));
                let (source, pulled) = Script::new(STEPS);
                let (producer, rx) = slot.split(Values(source), Config::new()).unwrap();
                let mut rx = ForgetOnPanic(Some(rx));
                let p = thread::spawn(move || block_on(producer));
                let got = block_on(async {
                    let mut got = vec![];
                    for _ in 0..close_after {
                        if let Some(b) = rx.recv().await {
                            got.push((b.to_vec(), b.info().reason));
                        }
                    }
                    rx.slot().close();
                    got.extend(drain_all(&mut rx).await);
                    got
                });
                p.join().unwrap();
                let pulled = pulled.load(Ordering::Relaxed) as u32;
                assert_eq!(flat(&got), (0..pulled).collect::<Vec<_>>(), "{got:?}");
                assert_well_formed::<2>(&got, &[Full, Close, End]);
            },
        );
    }
}

/// The source goes quiet for good after two items (a channel nobody sends to): only the close's
/// wake can get the producer going. The caller closes at once, racing the producer's pulls; the
/// partial batch comes out with reason Close and the stream ends.
#[test]
fn b_close_wakes_a_quiet_producer() {
    model("b_close_wakes_a_quiet_producer", || {
        const STEPS: &[Step] = &[Step::Item(0), Step::Item(1), Step::Quiet];
        let slot: &'static TestSlot<4> = Box::leak(Box::new(TestSlot::<4>::new(NoClock)));
        let (source, pulled) = Script::new(STEPS);
        let (producer, rx) = slot.split(Values(source), Config::new()).unwrap();
        let mut rx = ForgetOnPanic(Some(rx));
        let p = thread::spawn(move || block_on(producer));
        rx.slot().close();
        let got = block_on(drain_all(&mut rx));
        p.join().unwrap();
        let pulled = pulled.load(Ordering::Relaxed) as u32;
        assert_eq!(flat(&got), (0..pulled).collect::<Vec<_>>(), "{got:?}");
        assert_well_formed::<4>(&got, &[Close]);
    });
}

// ----- (c) flush racing publish -----

/// A third thread flushes while the producer fills and publishes and the caller takes: exactly
/// once, in order, no empty batch, only Flush, Full or End.
#[test]
fn c_flush_races_publish() {
    model("c_flush_races_publish", || {
        const STEPS: &[Step] = &[Step::Item(0), Step::Busy, Step::Item(1), Step::Item(2)];
        let slot: &'static TestSlot<2> = Box::leak(Box::new(TestSlot::<2>::new(NoClock)));
        let (source, _) = Script::new(STEPS);
        let (producer, rx) = slot.split(Values(source), Config::new()).unwrap();
        let mut rx = ForgetOnPanic(Some(rx));
        let p = thread::spawn(move || block_on(producer));
        let flusher = {
            thread::spawn(move || slot.flush())
        };
        let got = block_on(drain_all(&mut rx));
        p.join().unwrap();
        flusher.join().unwrap();
        assert_eq!(flat(&got), vec![0, 1, 2], "{got:?}");
        assert_well_formed::<2>(&got, &[Flush, Full, End]);
    });
}

/// The source goes quiet after two items; a third thread flushes once the producer has them (it
/// spins on the source's `quiet` flag). Nothing else can wake the producer: the flush must, and
/// the batch must come out with reason Flush. Then a close ends it.
#[test]
fn c_flush_wakes_a_quiet_producer() {
    model("c_flush_wakes_a_quiet_producer", || {
        const STEPS: &[Step] = &[Step::Item(0), Step::Item(1), Step::Quiet];
        let slot: &'static TestSlot<4> = Box::leak(Box::new(TestSlot::<4>::new(NoClock)));
        let (source, _) = Script::new(STEPS);
        let quiet = source.quiet.clone();
        let (producer, rx) = slot.split(Values(source), Config::new()).unwrap();
        let mut rx = ForgetOnPanic(Some(rx));
        let p = thread::spawn(move || block_on(producer));
        let flusher = {
            thread::spawn(move || {
                while !quiet.load(Ordering::SeqCst) {
                    thread::yield_now();
                }
                slot.flush();
            })
        };
        let b = block_on(rx.recv()).expect("the flushed batch");
        assert_eq!((b.to_vec(), b.info().reason), (vec![0, 1], Flush));
        drop(b);
        rx.slot().close();
        assert!(block_on(rx.recv()).is_none());
        p.join().unwrap();
        flusher.join().unwrap();
    });
}

// ----- (d) receiver dropped while the producer waits for room -----

/// A never-ending source fills both buffers and the producer waits for room; the caller takes at
/// most one batch and drops the receiver. The producer must finish (no deadlock) and must not
/// pull more than the two buffers hold past what was taken.
#[test]
fn d_receiver_dropped_while_producer_waits() {
    for take in 0..2 {
        model(
            &format!("d_receiver_dropped_while_producer_waits (take {take})"),
            move || {
                let slot: &'static TestSlot<1> = Box::leak(Box::new(TestSlot::<1>::new(NoClock)));
                let (producer, rx) = slot.split(Forever(0), Config::new()).unwrap();
                let mut rx = ForgetOnPanic(Some(rx));
                let p = thread::spawn(move || block_on(producer));
                if take == 1 {
                    let b = block_on(rx.recv()).expect("a never-ending source");
                    assert_eq!(b.as_slice(), &[0]);
                }
                drop(rx);
                p.join().unwrap();
                assert!(slot.is_closed());
                assert!(slot.stats().items() <= take);
            },
        );
    }
}

/// Two threads split one slot at once: exactly one gets the halves, the other `InUse`, in every
/// interleaving (the check and the claim are one critical section).
#[test]
fn e_concurrent_split_gives_one_pair() {
    model("e_concurrent_split_gives_one_pair", || {
        const STEPS: &[Step] = &[Step::Item(0)];
        let slot: &'static TestSlot<1> = Box::leak(Box::new(TestSlot::<1>::new(NoClock)));
        let other = thread::spawn(move || {
            let (source, _) = Script::new(STEPS);
            slot.split(Values(source), Config::new()).map(core::mem::forget).is_ok()
        });
        let (source, _) = Script::new(STEPS);
        let here = slot.split(Values(source), Config::new()).map(core::mem::forget).is_ok();
        let there = other.join().unwrap();
        assert!(here ^ there, "exactly one split succeeds: here {here}, there {there}");
    });
}
