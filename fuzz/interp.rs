//! The batching state machine driven by bytes: the interpreter behind the `batching` fuzz target
//! and behind `tests/fuzz_corpus.rs`, which replays the committed corpus on stable Rust.
//!
//! Input: three configuration bytes, then one op per byte (an advance takes one more byte):
//! push an item, push an error, end the source, advance virtual time by k ms (or far ahead), jump
//! to the next pending sleep, flush, close, poll the producer, take a batch and hold its guard,
//! hand the guard back, take a batch moved out, poll a `next()` future once and drop it, drop the
//! producer. Nothing runs unless an op says so, so every order of producer, caller and control
//! that the bytes can spell is explored, with spurious polls too. Every input runs twice: on the
//! virtual clock, and on the same clock declared cheap to read (`Cheap`: the per-item path that
//! `EmbassyTimer` takes).
//!
//! At the end, one of two finishes (chosen by a configuration bit):
//! - drain: drop the producer, take the remainder: delivered ++ remainder ++ unread source is the
//!   input, item for item;
//! - run out: end the source and run producer and caller only when their wakers fire, advancing
//!   virtual time only when nothing else can run (a lost wake-up is reported as a hang): delivered
//!   ++ unread source is the input, errors included, in order.
//!
//! Throughout: batches are never empty, never over `max_items` or `max_weight` (an item heavier
//! than the limit alone), each reason is one that applies (Deadline only once `max_wait` has
//! passed, Full only when full, Flush only after a flush, ...), an Error batch is followed by its
//! error, a finished stream stays finished, and the counters match what was delivered.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Wake;

use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use futures_core::Stream;
use prefetch_batch::source::Fallible;
use prefetch_batch::timer::{ManualClock, Timer};
use prefetch_batch::{BatchGuard, BatchInfo, Config, FlushReason, Receiver, Slot, Weigher};
use timers::Cheap;

/// `Cheap`: the virtual clock declared cheap to read. Every input runs on both timers.
#[path = "../tests/support/timers.rs"]
mod timers;

const N: usize = 4;

/// One event of the source: an item or an error, each with a unique id in input order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    Item(u32),
    Err(u32),
}

/// Item weights, from the id: 0 to 4.
fn weight(id: u32) -> usize {
    (id as usize * 7 + 3) % 5
}

/// A waker that raises a flag.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Flag {
    fn new() -> (Arc<Self>, Waker) {
        let f = Arc::new(Flag(AtomicBool::new(true)));
        let w = Waker::from(f.clone());
        (f, w)
    }
    fn take(&self) -> bool {
        self.0.swap(false, Ordering::SeqCst)
    }
}

#[derive(Default)]
struct FedState {
    queue: VecDeque<Ev>,
    ended: bool,
    waker: Option<Waker>,
}

/// The source, fed by the ops; wakes the producer when something arrives.
#[derive(Clone, Default)]
struct Fed(Rc<RefCell<FedState>>);

impl Fed {
    /// Appends `e` unless the source has ended; says whether it did.
    fn push(&self, e: Ev) -> bool {
        let mut s = self.0.borrow_mut();
        if s.ended {
            return false;
        }
        s.queue.push_back(e);
        if let Some(w) = s.waker.take() {
            w.wake();
        }
        true
    }
    fn end(&self) {
        let mut s = self.0.borrow_mut();
        s.ended = true;
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }
}

impl Stream for Fed {
    type Item = Result<u32, u32>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut s = self.0.borrow_mut();
        match s.queue.pop_front() {
            Some(Ev::Item(x)) => Poll::Ready(Some(Ok(x))),
            Some(Ev::Err(x)) => Poll::Ready(Some(Err(x))),
            None if s.ended => Poll::Ready(None),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Cfg {
    max_items: usize,
    max_weight: Option<usize>,
    max_wait: Option<Duration>,
    idle: Option<Duration>,
    drain_at_end: bool,
}

impl Cfg {
    fn decode(b: [u8; 3]) -> Self {
        Self {
            max_items: 1 + (b[0] % N as u8) as usize,
            max_weight: (b[0] & 0x10 != 0).then_some(1 + (b[0] >> 5) as usize),
            max_wait: (b[1] % 4 != 0).then(|| Duration::from_millis(1 + u64::from(b[1] >> 2) % 16)),
            idle: (b[2] % 3 != 0).then(|| Duration::from_millis(u64::from(b[2] >> 2) % 9)),
            drain_at_end: b[2] & 0x80 != 0,
        }
    }
}

/// One decoded op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Item,
    Error,
    End,
    Advance,
    NextSleep,
    Flush,
    Close,
    PollProducer,
    Take,
    Release,
    TakeOwned,
    CancelNext,
    DropProducer,
}

fn decode(b: u8) -> Op {
    match b % 16 {
        0..=2 => Op::Item,
        3 => Op::Error,
        4 => Op::End,
        5 => Op::Advance,
        6 => Op::NextSleep,
        7 => Op::Flush,
        8 => Op::Close,
        9 | 10 => Op::PollProducer,
        11 => Op::Take,
        12 => Op::Release,
        13 => Op::TakeOwned,
        14 => Op::CancelNext,
        _ => Op::DropProducer,
    }
}

type Sl<Tm> = Slot<NoopRawMutex, u32, N, Tm, u32>;
type Rx<'s, Tm> = Receiver<&'s Sl<Tm>, Fallible<u32>>;
type Guard<'r, Tm> = BatchGuard<'r, u32, N, Sl<Tm>>;
type ProducerFut<'s> = Pin<Box<dyn Future<Output = ()> + 's>>;

/// Everything the checks need.
struct World<'s, Tm: Timer<Instant = Duration>> {
    cfg: Cfg,
    clock: &'s ManualClock,
    slot: &'s Sl<Tm>,
    fed: Fed,
    producer: Option<ProducerFut<'s>>,
    next_id: u32,
    input: Vec<Ev>,
    /// What the caller got, flattened: items of each batch, then errors, in delivery order.
    delivered: Vec<Ev>,
    /// Per delivered batch: its items, reason, and the index in `delivered` after it.
    batches: Vec<(Vec<u32>, FlushReason, usize)>,
    flushed: bool,
    closed: bool,
    producer_dropped: bool,
    source_ended: bool,
    stream_ended: bool,
    producer_flag: Arc<Flag>,
    producer_waker: Waker,
    consumer_flag: Arc<Flag>,
    consumer_waker: Waker,
}

impl<'s, Tm: Timer<Instant = Duration>> World<'s, Tm> {
    /// The ops that do not touch the receiver.
    fn common(&mut self, op: Op, arg: Option<u8>) {
        match op {
            Op::Item | Op::Error => {
                let e = if op == Op::Item {
                    Ev::Item(self.next_id)
                } else {
                    Ev::Err(self.next_id)
                };
                if self.fed.push(e) {
                    self.input.push(e);
                    self.next_id += 1;
                }
            }
            Op::End => {
                self.fed.end();
                self.source_ended = true;
            }
            Op::Advance => {
                let a = arg.unwrap_or(1);
                let ms = if a & 0x80 != 0 {
                    u64::from(a & 0x7f) * 1000 // far ahead: a late timer
                } else {
                    u64::from(a % 32)
                };
                self.clock.advance(Duration::from_millis(ms));
            }
            Op::NextSleep => {
                self.clock.advance_to_next();
            }
            Op::Flush => {
                self.slot.flush();
                self.flushed = true;
            }
            Op::Close => {
                self.slot.close();
                self.closed = true;
            }
            Op::PollProducer => self.poll_producer(),
            Op::DropProducer => {
                if self.producer.take().is_some() {
                    self.producer_dropped = true;
                }
            }
            Op::Take | Op::Release | Op::TakeOwned | Op::CancelNext => unreachable!("receiver ops"),
        }
    }

    fn poll_producer(&mut self) {
        if let Some(p) = self.producer.as_mut() {
            let mut cx = Context::from_waker(&self.producer_waker);
            if p.as_mut().poll(&mut cx).is_ready() {
                self.producer = None;
            }
        }
    }

    /// Checks a batch as it is handed over and records it.
    fn record_batch(&mut self, items: &[u32], info: BatchInfo<Duration>) {
        assert!(!self.stream_ended, "a batch after the end of the stream");
        let c = &self.cfg;
        let len = items.len();
        let w: usize = items.iter().map(|&x| weight(x)).sum();
        assert!(len > 0, "empty batch");
        assert!(len <= c.max_items, "{len} items over max_items {}", c.max_items);
        if let Some(limit) = c.max_weight {
            assert!(w <= limit || len == 1, "weight {w} over max_weight {limit}");
        }
        let now = self.clock.elapsed();
        assert!(info.first_at <= now, "first item in the future");
        let age = info.age_at(now);
        assert_eq!(age, now - info.first_at, "age");
        match info.reason {
            FlushReason::Full => {
                let last = *items.last().unwrap();
                let at = self.input.iter().position(|e| *e == Ev::Item(last)).unwrap();
                let next = match self.input.get(at + 1) {
                    Some(Ev::Item(n)) => Some(weight(*n)),
                    _ => None,
                };
                let full =
                    len == c.max_items || c.max_weight.is_some_and(|l| w >= l || next.is_some_and(|n| w + n > l));
                assert!(full, "Full but not full: {items:?}, cfg {c:?}");
            }
            FlushReason::Deadline => {
                let d = c.max_wait.expect("Deadline without max_wait");
                assert!(age >= d, "Deadline batch emitted before max_wait: age {age:?}");
            }
            FlushReason::Idle => assert!(c.idle.is_some(), "Idle without an idle limit"),
            FlushReason::Flush => assert!(self.flushed, "Flush never requested"),
            FlushReason::Close => assert!(self.closed || self.producer_dropped, "Close never requested"),
            FlushReason::End => assert!(self.source_ended, "End before the source ended"),
            FlushReason::Error => {}
            _ => unreachable!("a reason this model does not know: {:?}", info.reason),
        }
        self.delivered.extend(items.iter().map(|&x| Ev::Item(x)));
        self.batches.push((items.to_vec(), info.reason, self.delivered.len()));
    }

    fn record_error(&mut self, e: u32) {
        assert!(!self.stream_ended, "an error after the end of the stream");
        self.delivered.push(Ev::Err(e));
    }

    fn record_end(&mut self) {
        self.stream_ended = true;
    }

    fn take_owned(&mut self, rx: &mut Rx<'s, Tm>) -> bool {
        let mut cx = Context::from_waker(&self.consumer_waker);
        match core::pin::Pin::new(&mut *rx).poll_next(&mut cx) {
            Poll::Ready(Some(Ok(b))) => {
                self.record_batch(&b.items, b.info);
                true
            }
            Poll::Ready(Some(Err(e))) => {
                self.record_error(e);
                true
            }
            Poll::Ready(None) => {
                self.record_end();
                true
            }
            Poll::Pending => false,
        }
    }
}

/// Polls `rx.recv()` once with the caller's waker.
fn poll_next<'r, 's, Tm: Timer<Instant = Duration>>(
    rx: &'r mut Rx<'s, Tm>,
    waker: &Waker,
) -> Poll<Option<Result<Guard<'r, Tm>, u32>>> {
    let mut fut = core::pin::pin!(rx.recv());
    fut.as_mut().poll(&mut Context::from_waker(waker))
}

/// Runs one input. Panics on any violated property.
pub fn run(data: &[u8]) {
    if data.len() < 3 {
        return;
    }
    let cfg = Cfg::decode([data[0], data[1], data[2]]);
    let ops = &data[3..];
    let weigher = |x: &u32| weight(*x);
    let mut config = Config::new().max_items(cfg.max_items);
    if let Some(d) = cfg.max_wait {
        config = config.max_wait(d);
    }
    if let Some(d) = cfg.idle {
        config = config.idle(d);
    }
    match cfg.max_weight {
        Some(limit) => go(cfg, config.max_weight(limit, weigher), ops),
        None => go(cfg, config, ops),
    }
}

fn go<W: Weigher<u32> + Copy>(cfg: Cfg, config: Config<N, W>, ops: &[u8]) {
    let clock = ManualClock::new();
    go_on(cfg, config, ops, &clock, &clock);
    let clock = ManualClock::new();
    go_on(cfg, config, ops, &clock, Cheap(&clock));
}

fn go_on<W: Weigher<u32>, Tm: Timer<Instant = Duration>>(
    cfg: Cfg,
    config: Config<N, W>,
    ops: &[u8],
    clock: &ManualClock,
    timer: Tm,
) {
    let slot = Sl::<Tm>::new(timer);
    let fed = Fed::default();
    let (producer, mut rx) = slot.try_split(fed.clone(), config).expect("valid config");
    let (producer_flag, producer_waker) = Flag::new();
    let (consumer_flag, consumer_waker) = Flag::new();
    let mut w = World {
        cfg,
        clock,
        slot: &slot,
        fed,
        producer: Some(Box::pin(producer)),
        next_id: 0,
        input: vec![],
        delivered: vec![],
        batches: vec![],
        flushed: false,
        closed: false,
        producer_dropped: false,
        source_ended: false,
        stream_ended: false,
        producer_flag,
        producer_waker,
        consumer_flag,
        consumer_waker,
    };

    let mut i = 0;
    while i < ops.len() {
        let op = decode(ops[i]);
        i += 1;
        match op {
            Op::Take => match poll_next(&mut rx, &w.consumer_waker.clone()) {
                Poll::Ready(Some(Ok(guard))) => {
                    w.record_batch(&guard, guard.info());
                    // Hold the guard while the ops that do not need the receiver run.
                    while i < ops.len() {
                        match decode(ops[i]) {
                            Op::Release => {
                                i += 1;
                                break;
                            }
                            Op::Take | Op::TakeOwned | Op::CancelNext => break,
                            op => {
                                i += 1;
                                let arg = (op == Op::Advance).then(|| ops.get(i).copied()).flatten();
                                if op == Op::Advance {
                                    i += 1;
                                }
                                w.common(op, arg);
                            }
                        }
                    }
                    drop(guard);
                }
                Poll::Ready(Some(Err(e))) => w.record_error(e),
                Poll::Ready(None) => w.record_end(),
                Poll::Pending => {}
            },
            Op::TakeOwned => {
                w.take_owned(&mut rx);
            }
            Op::CancelNext => {
                // Poll a `next()` once and drop it: a ready batch is delivered (and handed back
                // at once), a pending one takes nothing.
                match poll_next(&mut rx, &w.consumer_waker.clone()) {
                    Poll::Ready(Some(Ok(guard))) => w.record_batch(&guard, guard.info()),
                    Poll::Ready(Some(Err(e))) => w.record_error(e),
                    Poll::Ready(None) => w.record_end(),
                    Poll::Pending => {}
                }
            }
            Op::Release => {}
            op => {
                let arg = (op == Op::Advance).then(|| ops.get(i).copied()).flatten();
                if op == Op::Advance {
                    i += 1;
                }
                w.common(op, arg);
            }
        }
    }

    if w.cfg.drain_at_end {
        // Drop the producer (its partial batch is published), take the remainder.
        w.producer = None;
        let remainder: Vec<u32> = rx.drain_remainder().collect();
        let unread: Vec<Ev> = w.fed.0.borrow().queue.iter().copied().collect();
        let got: Vec<u32> = items(&w.delivered)
            .chain(remainder.iter().copied())
            .chain(items(&unread))
            .collect();
        assert_eq!(
            got,
            items(&w.input).collect::<Vec<_>>(),
            "delivered ++ remainder ++ unread"
        );
        assert_eq!(
            w.delivered[..],
            w.input[..w.delivered.len()],
            "delivered in input order"
        );
    } else {
        // End the source and run both sides only on their wakers; time moves only when nothing
        // else can run.
        w.fed.end();
        w.source_ended = true;
        w.producer_flag.0.store(true, Ordering::SeqCst);
        w.consumer_flag.0.store(true, Ordering::SeqCst);
        let mut steps = 0;
        while !w.stream_ended {
            steps += 1;
            assert!(steps < 10_000, "no progress");
            let mut ran = false;
            if w.producer_flag.take() {
                w.poll_producer();
                ran = true;
            }
            if w.consumer_flag.take() {
                if w.take_owned(&mut rx) {
                    // Got something: a caller asks again at once.
                    w.consumer_flag.0.store(true, Ordering::SeqCst);
                }
                ran = true;
            }
            if !ran && !clock.advance_to_next() {
                panic!(
                    "hang: nobody woken, no sleep pending, stream not ended (producer alive: {})",
                    w.producer.is_some()
                );
            }
        }
        let unread: Vec<Ev> = w.fed.0.borrow().queue.iter().copied().collect();
        let got: Vec<Ev> = w.delivered.iter().chain(&unread).copied().collect();
        assert_eq!(got, w.input, "delivered ++ unread == input, errors included");
        if !w.closed && !w.producer_dropped {
            assert!(
                unread.is_empty(),
                "the source ended, nothing was closed: everything delivered"
            );
        }
        // Stays ended.
        assert!(matches!(
            poll_next(&mut rx, &w.consumer_waker.clone()),
            Poll::Ready(None)
        ));
    }

    // Every Error batch is followed by its error, when anything follows it.
    for (items, reason, after) in &w.batches {
        if *reason == FlushReason::Error {
            if let Some(next) = w.delivered.get(*after) {
                assert!(
                    matches!(next, Ev::Err(_)),
                    "Error batch {items:?} not followed by its error"
                );
            }
        }
    }
    let stats = slot.stats();
    assert_eq!(stats.items() as usize, items(&w.delivered).count(), "stats.items()");
    let errors = w.delivered.iter().filter(|e| matches!(e, Ev::Err(_))).count();
    assert_eq!(stats.errors() as usize, errors, "stats.errors()");
}

fn items(evs: &[Ev]) -> impl Iterator<Item = u32> + '_ {
    evs.iter().filter_map(|e| match e {
        Ev::Item(x) => Some(*x),
        Ev::Err(_) => None,
    })
}
