//! Regression tests for issue 9: the promises the README makes, kept on every consumption API.
//!
//! Each numbered item of the issue is one scenario (a generic `async fn`), run by a small table on
//! each API it applies to:
//! - `ForEach`: the one-task driver `for_each_batch` (owned batches);
//! - `ForEachIn`: the one-task driver over a slot the test owns, `for_each_batch_in`;
//! - `Split`: the zero-copy halves of `Slot::split`, `Receiver::recv` joined with the producer;
//! - `Spawned`: tokio's `prefetch_batches` (spawned producer, `recv` guards, controls through a
//!   clone of its slot);
//!
//! on `ManualClock` (virtual time, `block_on`) and on tokio's paused clock, plus a multi-thread
//! runtime where the issue says so. Everything is deterministic: virtual time only; the only
//! timeouts are hang guards.
mod common;

use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::cell::RefCell;
use std::collections::VecDeque;

use common::timers::Cheap;
use common::{Event, MS, Scripted, Values, ms};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use futures_core::Stream;
#[cfg(feature = "tokio")]
use futures_util::StreamExt;
use prefetch_batch::testing::join;
use prefetch_batch::timer::{ManualClock, Span, Timer};
use prefetch_batch::{BatchExt, BatchInfo, Config, FlushReason, Slot, Weigher};

// ----- what the caller does, and what it saw -----

/// A control request, made through whatever the API offers (the slot, or a clone of the tokio stream's slot).
#[derive(Debug, Clone, Copy)]
enum Ctl {
    Close,
    Flush,
    CloseWhenIdle,
}

/// What the caller does besides taking batches as fast as it can.
#[derive(Debug, Clone, Default)]
struct Plan {
    /// The caller takes nothing before this time (APIs where the caller pulls: `Split`, `Spawned`).
    wait_until: Option<Duration>,
    /// Controls made at these times from a future beside the caller (time zero: before anything
    /// runs), in this order.
    at: Vec<(Duration, Ctl)>,
    /// Controls made right after taking batch `k` (0-based), while holding it.
    after: Vec<(usize, Ctl)>,
    /// Hold batch `k` (its guard alive, so its buffer stays lent) until this time.
    hold: Option<(usize, Duration)>,
    /// Fail as soon as more than this many batches arrive (a bound, and the guard against an
    /// endless stream).
    most: Option<usize>,
}

/// One batch as the caller saw it; times are since the scenario started.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Got {
    items: Vec<u32>,
    reason: FlushReason,
    first_at: Duration,
    age: Duration,
    taken_at: Duration,
}

fn shape(got: &[Got]) -> Vec<(Vec<u32>, FlushReason)> {
    got.iter().map(|g| (g.items.clone(), g.reason)).collect()
}

fn delivered(got: &[Got]) -> Vec<u32> {
    got.iter().flat_map(|g| g.items.iter().copied()).collect()
}

/// Something that takes control requests.
trait Control {
    fn apply(&self, c: Ctl);
}

impl<M: embassy_sync::blocking_mutex::raw::RawMutex, T, const N: usize, Tm: Timer, E> Control for Slot<M, T, N, Tm, E> {
    fn apply(&self, c: Ctl) {
        match c {
            Ctl::Close => self.close(),
            Ctl::Flush => self.flush(),
            Ctl::CloseWhenIdle => self.close_when_idle(),
        }
    }
}

/// `for_each_batch` owns its slot: nothing to send a control to.
struct NoControl;

impl Control for NoControl {
    fn apply(&self, c: Ctl) {
        panic!("for_each_batch offers no way to {c:?}: use for_each_batch_in");
    }
}

/// Records batch `got.len()`, then does what the plan says for it (the batch stays lent meanwhile).
async fn on_batch<Tm: Timer>(
    timer: &Tm,
    start: Tm::Instant,
    plan: &Plan,
    got: &RefCell<Vec<Got>>,
    items: &[u32],
    info: BatchInfo<Tm::Instant>,
    ctl: &dyn Control,
) {
    let k = {
        let mut got = got.borrow_mut();
        let k = got.len();
        got.push(Got {
            items: items.to_vec(),
            reason: info.reason,
            first_at: timer.since(info.first_at, start),
            age: info.age_at(timer.now()).to_duration(),
            taken_at: timer.since(timer.now(), start),
        });
        if let Some(most) = plan.most {
            let brief: Vec<_> = got.iter().map(|g| (g.items.len(), g.reason)).take(12).collect();
            assert!(
                got.len() <= most,
                "batch {} arrived, at most {most} expected; (len, reason) so far: {brief:?}",
                got.len()
            );
        }
        k
    };
    for &(at, c) in &plan.after {
        if at == k {
            ctl.apply(c);
        }
    }
    if let Some((at, until)) = plan.hold {
        if at == k {
            timer.sleep_until(timer.add(start, until).unwrap()).await;
        }
    }
}

/// The plan's controls at time zero, made before anything is polled.
fn controls_at_zero(plan: &Plan, ctl: &dyn Control) {
    for &(at, c) in &plan.at {
        if at.is_zero() {
            ctl.apply(c);
        }
    }
}

/// The plan's later controls, each at its time.
async fn controls_later<Tm: Timer>(timer: &Tm, start: Tm::Instant, plan: &Plan, ctl: &dyn Control) {
    for &(at, c) in &plan.at {
        if !at.is_zero() {
            timer.sleep_until(timer.add(start, at).unwrap()).await;
            ctl.apply(c);
        }
    }
}

// ----- the consumption APIs -----

/// One consumption API: runs `source` to its end (or the close) under `plan`.
trait Drive<Tm: Timer> {
    /// Whether the caller holds a batch in its buffer (a zero-copy guard) while it works on it.
    /// The one-task drivers hand out owned batches: the buffer goes back at once.
    const LENDS: bool = true;
    async fn drive<S, W, const N: usize>(timer: Tm, source: S, config: Config<N, W>, plan: &Plan) -> Vec<Got>
    where
        S: Stream<Item = u32> + Send + 'static,
        W: Weigher<u32> + Send + 'static;
}

/// `for_each_batch`: no slot to control, the handler is the caller.
struct ForEach;
/// `for_each_batch_in` over a local slot; controls go to the slot.
struct ForEachIn;
/// `Slot::split`, producer and a `Receiver::recv` loop in `join`; controls go to the slot.
struct Split;
/// tokio `prefetch_batches`: `recv` guards, controls through a clone of its slot.
#[cfg(feature = "tokio")]
struct Spawned;

impl<Tm: Timer> Drive<Tm> for ForEach {
    const LENDS: bool = false;
    async fn drive<S, W, const N: usize>(timer: Tm, source: S, config: Config<N, W>, plan: &Plan) -> Vec<Got>
    where
        S: Stream<Item = u32> + Send + 'static,
        W: Weigher<u32> + Send + 'static,
    {
        assert!(
            plan.wait_until.is_none() && plan.at.is_empty() && plan.after.is_empty(),
            "for_each_batch: the handler only sees batches"
        );
        let start = timer.now();
        let got = RefCell::new(vec![]);
        let t = timer.clone();
        source
            .for_each_batch(config, timer, |batch| {
                let (t, got) = (&t, &got);
                async move { on_batch(t, start, plan, got, &batch, batch.info, &NoControl).await }
            })
            .await
            .expect("valid config");
        got.into_inner()
    }
}

impl<Tm: Timer> Drive<Tm> for ForEachIn {
    const LENDS: bool = false;
    async fn drive<S, W, const N: usize>(timer: Tm, source: S, config: Config<N, W>, plan: &Plan) -> Vec<Got>
    where
        S: Stream<Item = u32> + Send + 'static,
        W: Weigher<u32> + Send + 'static,
    {
        assert!(
            plan.wait_until.is_none(),
            "for_each_batch_in: the handler only sees batches"
        );
        let start = timer.now();
        let slot = Slot::<NoopRawMutex, u32, N, Tm>::new(timer.clone());
        controls_at_zero(plan, &slot);
        let got = RefCell::new(vec![]);
        let run = async {
            source
                .for_each_batch_in(&slot, config, |batch| {
                    let (timer, got, slot) = (&timer, &got, &slot);
                    async move { on_batch(timer, start, plan, got, &batch, batch.info, slot).await }
                })
                .await
                .expect("valid config");
        };
        join(controls_later(&timer, start, plan, &slot), run).await;
        got.into_inner()
    }
}

impl<Tm: Timer> Drive<Tm> for Split {
    async fn drive<S, W, const N: usize>(timer: Tm, source: S, config: Config<N, W>, plan: &Plan) -> Vec<Got>
    where
        S: Stream<Item = u32> + Send + 'static,
        W: Weigher<u32> + Send + 'static,
    {
        let start = timer.now();
        let slot = Slot::<NoopRawMutex, u32, N, Tm>::new(timer.clone());
        let (producer, mut rx) = slot.split(source, config).expect("valid config");
        controls_at_zero(plan, &slot);
        let got = RefCell::new(vec![]);
        let consume = async {
            if let Some(t) = plan.wait_until {
                timer.sleep_until(timer.add(start, t).unwrap()).await;
            }
            while let Some(batch) = rx.recv().await {
                on_batch(&timer, start, plan, &got, &batch, batch.info(), &slot).await;
            }
        };
        join(producer, join(controls_later(&timer, start, plan, &slot), consume)).await;
        got.into_inner()
    }
}

#[cfg(feature = "tokio")]
impl Drive<prefetch_batch::timer::TokioTimer> for Spawned {
    async fn drive<S, W, const N: usize>(
        timer: prefetch_batch::timer::TokioTimer,
        source: S,
        config: Config<N, W>,
        plan: &Plan,
    ) -> Vec<Got>
    where
        S: Stream<Item = u32> + Send + 'static,
        W: Weigher<u32> + Send + 'static,
    {
        use prefetch_batch::BatchExt;
        let start = timer.now();
        let mut batches = source.prefetch_batches::<N>(config).expect("valid config");
        let handle = batches.slot().clone();
        controls_at_zero(plan, &*handle);
        let got = RefCell::new(vec![]);
        let consume = async {
            if let Some(t) = plan.wait_until {
                timer.sleep_until(timer.add(start, t).unwrap()).await;
            }
            while let Some(batch) = batches.recv().await {
                on_batch(&timer, start, plan, &got, &batch, batch.info(), &*handle).await;
            }
        };
        join(controls_later(&timer, start, plan, &*handle), consume).await;
        got.into_inner()
    }
}

// ----- sources -----

/// What each clock provides to the scenarios.
trait Clock: Timer<Instant: Send, Sleep: Send> + Send + Sync + 'static {
    /// Moves this clock forward by 1 ms, synchronously, from inside a `poll_next`.
    fn step(&self) -> impl FnMut(&mut Context<'_>) + Send + Unpin + 'static;
    /// A source holding a backlog `0..n` that is not idle, but may return `Pending` while items
    /// are still queued (and wake itself at once), as a tokio channel under the coop budget does;
    /// it never ends (its sender is alive).
    fn backlog(&self, n: u32) -> impl Stream<Item = u32> + Send + Unpin + 'static;
}

impl Clock for &'static ManualClock {
    fn step(&self) -> impl FnMut(&mut Context<'_>) + Send + Unpin + 'static {
        let clock = *self;
        move |_: &mut Context<'_>| clock.advance(MS)
    }
    fn backlog(&self, n: u32) -> impl Stream<Item = u32> + Send + Unpin + 'static {
        Backlog {
            queue: (0..n).collect(),
            yielded: 0,
        }
    }
}

impl Clock for Cheap<'static> {
    fn step(&self) -> impl FnMut(&mut Context<'_>) + Send + Unpin + 'static {
        self.0.step()
    }
    fn backlog(&self, n: u32) -> impl Stream<Item = u32> + Send + Unpin + 'static {
        self.0.backlog(n)
    }
}

#[cfg(feature = "tokio")]
impl Clock for prefetch_batch::timer::TokioTimer {
    fn step(&self) -> impl FnMut(&mut Context<'_>) + Send + Unpin + 'static {
        // `advance` moves the paused clock on its first poll, then yields once: one poll is the
        // synchronous step (the yield only costs the producer a spurious wake-up).
        |cx: &mut Context<'_>| {
            let _ = core::pin::pin!(tokio::time::advance(MS)).as_mut().poll(cx);
        }
    }
    fn backlog(&self, n: u32) -> impl Stream<Item = u32> + Send + Unpin + 'static {
        let (tx, rx) = tokio::sync::mpsc::channel(n as usize);
        for x in 0..n {
            tx.try_send(x).expect("room for the backlog");
        }
        Channel {
            rx: tokio_stream::wrappers::ReceiverStream::new(rx),
            _tx: tx,
        }
    }
}

/// A tokio channel as a source, with its sender alive for as long as the source is.
#[cfg(feature = "tokio")]
struct Channel {
    rx: tokio_stream::wrappers::ReceiverStream<u32>,
    _tx: tokio::sync::mpsc::Sender<u32>,
}

#[cfg(feature = "tokio")]
impl Stream for Channel {
    type Item = u32;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u32>> {
        Pin::new(&mut self.rx).poll_next(cx)
    }
}

/// `ManualClock`'s backlog: `Pending` with an immediate self-wake after every 100 items (what
/// tokio's coop budget does to `poll_recv`), `Pending` for good once empty.
struct Backlog {
    queue: VecDeque<u32>,
    yielded: u32,
}

impl Stream for Backlog {
    type Item = u32;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u32>> {
        if self.queue.is_empty() {
            return Poll::Pending; // idle: the sender is alive but sends nothing more
        }
        if self.yielded == 100 {
            self.yielded = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.yielded += 1;
        Poll::Ready(self.queue.pop_front())
    }
}

/// Always ready, but each item takes 1 ms of the clock to produce: `0..end`, then the end.
struct SlowReady<F> {
    next: u32,
    end: u32,
    step: F,
}

impl<F: FnMut(&mut Context<'_>) + Unpin> Stream for SlowReady<F> {
    type Item = u32;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u32>> {
        if self.next == self.end {
            return Poll::Ready(None);
        }
        (self.step)(cx);
        self.next += 1;
        Poll::Ready(Some(self.next - 1))
    }
}

/// Issue items 4 and 5: weights 5, 5, 5, 6 at 0, 2, 3, 5 ms. With `max_weight(10)` and
/// `idle(1 ms)`: [5, 5] is full at 2 ms, [5] is ready (idle) at 4 ms and stays open, and 6 does
/// not fit it: with both buffers taken, 6 is parked. The source ends at `end`.
fn weights<Tm: Timer>(timer: Tm, end: Duration) -> Values<Scripted<Tm, u32>> {
    let mut ev: Vec<Event<u32>> = [(0, 5), (2, 5), (3, 5), (5, 6)]
        .into_iter()
        .map(|(t, w)| Event::Item(ms(t), w))
        .collect();
    ev.push(Event::End(end));
    Values(Scripted::new(timer, ev))
}

fn weighted() -> Config<4, impl Weigher<u32> + Send + 'static> {
    Config::new().idle(ms(1)).max_weight(10, |w: &u32| *w as usize)
}

// ----- 1. a slow but always-ready source and max_wait -----

/// Items take 1 ms each and the source is always ready; `max_wait` 10 ms, N = 256; the caller is
/// always waiting. Every batch reaches it within `max_wait` plus one item's time of its first
/// item: about 11 items each, reason `Deadline` (the last one `End`), every item once, in order.
async fn slow_ready_source_keeps_max_wait<D: Drive<Tm>, Tm: Clock>(timer: Tm) {
    const ITEMS: u32 = 1000;
    let source = SlowReady {
        next: 0,
        end: ITEMS,
        step: timer.step(),
    };
    let got = D::drive::<_, _, 256>(timer, source, Config::new().max_wait(ms(10)), &Plan::default()).await;
    assert_eq!(
        delivered(&got),
        (0..ITEMS).collect::<Vec<_>>(),
        "every item once, in order"
    );
    let (last, rest) = got.split_last().expect("batches");
    let late: Vec<_> = got
        .iter()
        .enumerate()
        .filter(|(_, g)| g.age > ms(11) || g.taken_at - g.first_at > ms(11))
        .map(|(i, g)| (i, g.items.len(), g.reason, g.age))
        .collect();
    assert!(
        late.is_empty(),
        "{} of {} batches older than max_wait + 1 item (11 ms); first (index, len, reason, age): {:?}",
        late.len(),
        got.len(),
        &late[..late.len().min(3)]
    );
    for (i, g) in rest.iter().enumerate() {
        assert_eq!(g.reason, FlushReason::Deadline, "batch {i}: {} items", g.items.len());
        assert!(g.age >= ms(10), "batch {i}: Deadline before max_wait: {g:?}");
    }
    assert_eq!(last.reason, FlushReason::End);
}

/// The same source, fast for its first 72 items (no time passes), then slow (1 ms per item);
/// N = 32, `max_wait` 10 ms. While it is fast, the producer reads the clock once per batch, and
/// after handing a full batch to a waiting caller it fills the other buffer before it waits. The
/// README's bound: the batch in which the source turns slow is cut when it is full (32 slow
/// items at most), and it and the batch handed over just before it reach a caller on the same
/// thread at most one more batch later (the next batch, no longer quick, within `max_wait` plus
/// one item): 32 + 11 ms. Every batch after it is within `max_wait` plus one item again.
async fn ready_source_turning_slow_is_caught_within_a_batch<D: Drive<Tm>, Tm: Clock>(timer: Tm) {
    const ITEMS: u32 = 300;
    let mut step = timer.step();
    let mut pulled = 0u32;
    let source = SlowReady {
        next: 0,
        end: ITEMS,
        step: move |cx: &mut Context<'_>| {
            pulled += 1;
            if pulled > 72 {
                step(cx);
            }
        },
    };
    let got = D::drive::<_, _, 32>(timer, source, Config::new().max_wait(ms(10)), &Plan::default()).await;
    assert_eq!(
        delivered(&got),
        (0..ITEMS).collect::<Vec<_>>(),
        "every item once, in order"
    );
    let late: Vec<usize> = (0..got.len())
        .filter(|&i| got[i].age > ms(11) || got[i].taken_at - got[i].first_at > ms(11))
        .collect();
    let slow = got.iter().position(|g| g.items.contains(&72)).expect("item 72");
    if Tm::CHEAP_NOW {
        // A clock cheap to read is read at every item: no batch is late, not even this one.
        assert_eq!(late, [] as [usize; 0], "a cheap clock is read at every item");
    }
    assert!(
        late.iter().all(|&i| i == slow || i + 1 == slow),
        "only the batch that turned slow ({slow}) and the one before it may be late: {late:?}"
    );
    for &i in &late {
        assert_eq!(
            (got[i].reason, got[i].items.len()),
            (FlushReason::Full, 32),
            "batch {i}"
        );
        assert!(
            got[i].taken_at - got[i].first_at <= ms(32 + 11),
            "batch {i}: at most a batch of slow items, then max_wait and one item, late: {:?}",
            got[i]
        );
    }
    let after = slow + 1;
    for (i, g) in got.iter().enumerate().skip(after).take(got.len() - after - 1) {
        assert_eq!(g.reason, FlushReason::Deadline, "batch {i}: {} items", g.items.len());
    }
}

// ----- 2. close() while a fast caller keeps up with an endless ready source -----

/// `close()` after batch 5: at most 3 more batches (two buffers and the partial batch), then the
/// end; the items delivered are a prefix of the source, in order.
async fn close_is_seen_during_an_endless_burst<D: Drive<Tm>, Tm: Clock>(timer: Tm) {
    let plan = Plan {
        after: vec![(4, Ctl::Close)],
        most: Some(5 + 3),
        ..Plan::default()
    };
    let got = D::drive::<_, _, 8>(timer, futures_util::stream::iter(0u32..), Config::new(), &plan).await;
    assert!(got.len() >= 5, "{} batches", got.len());
    let items = delivered(&got);
    assert_eq!(items, (0..items.len() as u32).collect::<Vec<_>>(), "a prefix, in order");
}

// ----- 3. close_when_idle() and a backlog that returns Pending before it is empty -----

/// 1,000 items queued, the source never ends, `close_when_idle()` called first: all 1,000 are
/// delivered, in order, then the end.
async fn close_when_idle_drains_the_backlog<D: Drive<Tm>, Tm: Clock>(timer: Tm) {
    let source = timer.backlog(1000);
    let plan = Plan {
        at: vec![(Duration::ZERO, Ctl::CloseWhenIdle)],
        ..Plan::default()
    };
    let got = D::drive::<_, _, 512>(timer, source, Config::new(), &plan).await;
    let items = delivered(&got);
    assert_eq!(
        items.len(),
        1000,
        "delivered {} of the 1,000 queued (the source, with the rest, is not handed back)",
        items.len()
    );
    assert_eq!(items, (0..1000).collect::<Vec<_>>());
}

// ----- 5. the batch of a parked item says when that item arrived -----

/// The caller takes [5] (idle at 1 ms) and holds it until 100 ms; [5, 5] fills by weight at
/// 3 ms and leaves at once (`Full`).
/// - A caller holding a lent buffer: both buffers are taken, so item 6 is not pulled (that is the
///   backpressure) until [5] is handed back at 100 ms, and its batch starts then.
/// - A one-task driver (owned batches, buffers back at once): 6 is pulled at 5 ms and its batch
///   says so, with its age counted from there.
async fn parked_item_keeps_its_arrival_time<D: Drive<Tm>, Tm: Clock>(timer: Tm) {
    let plan = Plan {
        hold: Some((0, ms(100))),
        most: Some(3),
        ..Plan::default()
    };
    let (at, age) = if D::LENDS {
        (ms(100), Duration::ZERO)
    } else {
        (ms(5), ms(95))
    };
    let expect = [(vec![5], ms(0)), (vec![5, 5], ms(2)), (vec![6], at)];
    parked_item_case::<D, Tm>(timer, plan, expect, age).await;
}

/// The case: a caller that takes nothing before 100 ms (only where the caller pulls).
/// [5, 5] and [5] are both ready and 6 is parked at 5 ms.
async fn parked_item_keeps_its_arrival_time_late_caller<D: Drive<Tm>, Tm: Clock>(timer: Tm) {
    let plan = Plan {
        wait_until: Some(ms(100)),
        most: Some(3),
        ..Plan::default()
    };
    let expect = [(vec![5, 5], ms(0)), (vec![5], ms(3)), (vec![6], ms(5))];
    parked_item_case::<D, Tm>(timer, plan, expect, ms(95)).await;
}

/// Runs the weights 5, 5, 5, 6 under `plan`; expects these batches, each with its `first_at`, and
/// the last one at least `min_age` old.
async fn parked_item_case<D: Drive<Tm>, Tm: Clock>(
    timer: Tm,
    plan: Plan,
    expect: [(Vec<u32>, Duration); 3],
    min_age: Duration,
) {
    let source = weights(timer.clone(), ms(200));
    let got = D::drive::<_, _, 4>(timer, source, weighted(), &plan).await;
    let items: Vec<_> = got.iter().map(|g| g.items.clone()).collect();
    let want: Vec<_> = expect.iter().map(|e| e.0.clone()).collect();
    assert_eq!(items, want, "{got:?}");
    let first_at: Vec<_> = got.iter().map(|g| g.first_at).collect();
    let want: Vec<_> = expect.iter().map(|e| e.1).collect();
    assert_eq!(first_at, want, "first_at of each batch; {got:?}");
    assert!(
        got[2].age >= min_age,
        "the parked item's age counts from when it was pulled: {:?}",
        got[2]
    );
}

// ----- also seen: close() then flush() -----

/// Items at 0, 10, 20, ... ms; at 25 ms `close()` then `flush()`: the final partial batch is
/// `Close` (intake stopped), not `Flush`.
async fn close_then_flush_ends_with_close<D: Drive<Tm>, Tm: Clock>(timer: Tm) {
    let source = Values(Scripted::items(timer.clone(), (0..10).map(|i| (10 * i, i as u32))));
    let plan = Plan {
        at: vec![(ms(25), Ctl::Close), (ms(25), Ctl::Flush)],
        most: Some(1),
        ..Plan::default()
    };
    let got = D::drive::<_, _, 8>(timer, source, Config::new().max_wait(ms(60_000)), &plan).await;
    assert_eq!(shape(&got), [(vec![0, 1, 2], FlushReason::Close)]);
}

// ----- the table -----

/// Each scenario on `ManualClock`, one test per API. The scenario gets the timer `$timer(clock)`:
/// the clock itself, or [`Cheap`] over it.
macro_rules! manual {
    ($timer:expr; $($name:ident: $scenario:ident::<$api:ty>),* $(,)?) => {$(
        #[test]
        fn $name() {
            let clock = common::clock();
            clock.block_on($scenario::<$api, _>($timer(clock)));
        }
    )*};
}

manual! {
    core::convert::identity;
    slow_ready_source_keeps_max_wait_manual_for_each: slow_ready_source_keeps_max_wait::<ForEach>,
    slow_ready_source_keeps_max_wait_manual_for_each_in: slow_ready_source_keeps_max_wait::<ForEachIn>,
    slow_ready_source_keeps_max_wait_manual_split: slow_ready_source_keeps_max_wait::<Split>,
    ready_source_turning_slow_manual_for_each: ready_source_turning_slow_is_caught_within_a_batch::<ForEach>,
    ready_source_turning_slow_manual_split: ready_source_turning_slow_is_caught_within_a_batch::<Split>,
    close_is_seen_during_an_endless_burst_manual_for_each_in: close_is_seen_during_an_endless_burst::<ForEachIn>,
    close_is_seen_during_an_endless_burst_manual_split: close_is_seen_during_an_endless_burst::<Split>,
    close_when_idle_drains_the_backlog_manual_for_each_in: close_when_idle_drains_the_backlog::<ForEachIn>,
    close_when_idle_drains_the_backlog_manual_split: close_when_idle_drains_the_backlog::<Split>,
    parked_item_keeps_its_arrival_time_manual_for_each: parked_item_keeps_its_arrival_time::<ForEach>,
    parked_item_keeps_its_arrival_time_manual_for_each_in: parked_item_keeps_its_arrival_time::<ForEachIn>,
    parked_item_keeps_its_arrival_time_manual_split: parked_item_keeps_its_arrival_time::<Split>,
    parked_item_keeps_its_arrival_time_late_caller_manual_split: parked_item_keeps_its_arrival_time_late_caller::<Split>,
    close_then_flush_ends_with_close_manual_for_each_in: close_then_flush_ends_with_close::<ForEachIn>,
    close_then_flush_ends_with_close_manual_split: close_then_flush_ends_with_close::<Split>,
}

// The deadline checked at every item.
manual! {
    Cheap;
    slow_ready_source_keeps_max_wait_cheap_for_each: slow_ready_source_keeps_max_wait::<ForEach>,
    slow_ready_source_keeps_max_wait_cheap_split: slow_ready_source_keeps_max_wait::<Split>,
    ready_source_turning_slow_cheap_for_each: ready_source_turning_slow_is_caught_within_a_batch::<ForEach>,
    ready_source_turning_slow_cheap_split: ready_source_turning_slow_is_caught_within_a_batch::<Split>,
    parked_item_keeps_its_arrival_time_cheap_split: parked_item_keeps_its_arrival_time::<Split>,
    close_then_flush_ends_with_close_cheap_split: close_then_flush_ends_with_close::<Split>,
}

/// Each scenario on a tokio runtime (the attribute says which), one test per API, under a hang
/// guard.
#[cfg(feature = "tokio")]
macro_rules! on_tokio {
    (#[$runtime:meta] $($name:ident: $scenario:ident::<$api:ty>),* $(,)?) => {$(
        #[$runtime]
        async fn $name() {
            hang_guard($scenario::<$api, _>(prefetch_batch::timer::TokioTimer)).await;
        }
    )*};
}

/// Fails instead of hanging; 60 s of paused (virtual) time, or of real time on a multi-thread
/// runtime, where it only bounds a hang.
#[cfg(feature = "tokio")]
async fn hang_guard<F: core::future::Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), fut)
        .await
        .expect("hang guard: did not finish within 60 s")
}

// On tokio's paused clock (current-thread runtime): the hang guard fires at once, in virtual
// time, when nothing else can run.
#[cfg(feature = "tokio")]
on_tokio! {
    #[tokio::test(start_paused = true)]
    slow_ready_source_keeps_max_wait_tokio_spawned: slow_ready_source_keeps_max_wait::<Spawned>,
    slow_ready_source_keeps_max_wait_tokio_for_each: slow_ready_source_keeps_max_wait::<ForEach>,
    slow_ready_source_keeps_max_wait_tokio_for_each_in: slow_ready_source_keeps_max_wait::<ForEachIn>,
    slow_ready_source_keeps_max_wait_tokio_split: slow_ready_source_keeps_max_wait::<Split>,
    ready_source_turning_slow_tokio_spawned: ready_source_turning_slow_is_caught_within_a_batch::<Spawned>,
    ready_source_turning_slow_tokio_for_each: ready_source_turning_slow_is_caught_within_a_batch::<ForEach>,
    close_is_seen_during_an_endless_burst_tokio_spawned: close_is_seen_during_an_endless_burst::<Spawned>,
    close_is_seen_during_an_endless_burst_tokio_for_each_in: close_is_seen_during_an_endless_burst::<ForEachIn>,
    close_is_seen_during_an_endless_burst_tokio_split: close_is_seen_during_an_endless_burst::<Split>,
    close_when_idle_drains_the_backlog_tokio_spawned: close_when_idle_drains_the_backlog::<Spawned>,
    close_when_idle_drains_the_backlog_tokio_for_each_in: close_when_idle_drains_the_backlog::<ForEachIn>,
    close_when_idle_drains_the_backlog_tokio_split: close_when_idle_drains_the_backlog::<Split>,
    parked_item_keeps_its_arrival_time_tokio_spawned: parked_item_keeps_its_arrival_time::<Spawned>,
    parked_item_keeps_its_arrival_time_tokio_for_each: parked_item_keeps_its_arrival_time::<ForEach>,
    parked_item_keeps_its_arrival_time_tokio_for_each_in: parked_item_keeps_its_arrival_time::<ForEachIn>,
    parked_item_keeps_its_arrival_time_tokio_split: parked_item_keeps_its_arrival_time::<Split>,
    parked_item_keeps_its_arrival_time_late_caller_tokio_spawned: parked_item_keeps_its_arrival_time_late_caller::<Spawned>,
    parked_item_keeps_its_arrival_time_late_caller_tokio_split: parked_item_keeps_its_arrival_time_late_caller::<Split>,
    close_then_flush_ends_with_close_tokio_spawned: close_then_flush_ends_with_close::<Spawned>,
    close_then_flush_ends_with_close_tokio_for_each_in: close_then_flush_ends_with_close::<ForEachIn>,
    close_then_flush_ends_with_close_tokio_split: close_then_flush_ends_with_close::<Split>,
}

// On a 2-worker runtime: the spawned producer on a worker, the caller on the test's thread. Real
// time, but nothing is timed: the bounds are on batches and items, the timeout only guards
// against a hang.
// - item 2: the caller takes each batch at once (the race the issue describes; before the fix it
//   failed only now and then, see the next test for the deterministic case);
// - item 3: the coop budget applies to the spawned producer there too.
#[cfg(feature = "tokio")]
on_tokio! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    close_is_seen_during_an_endless_burst_tokio_multi_thread: close_is_seen_during_an_endless_burst::<Spawned>,
    close_when_idle_drains_the_backlog_tokio_multi_thread: close_when_idle_drains_the_backlog::<Spawned>,
}

/// Item 2 as the issue saw it: the caller takes each batch (moved out, its buffer back at once)
/// before the producer needs that buffer, because each item costs the producer some CPU work. The
/// producer never meets backpressure, so it must see the close some other way.
#[cfg(feature = "tokio")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_is_seen_by_a_producer_slower_than_its_caller_tokio_multi_thread() {
    use prefetch_batch::BatchExt;
    let source = futures_util::stream::iter(0u32..).map(|x| {
        // About 10-50 µs of work per item: the caller always waits for the next batch.
        let mut h = u64::from(x);
        for _ in 0..20_000 {
            h = std::hint::black_box(h.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        x
    });
    let mut batches = source.prefetch_batches::<8>(Config::new()).unwrap();
    let mut got: Vec<Vec<u32>> = vec![];
    hang_guard(async {
        while let Some(b) = batches.next().await {
            got.push(b.items.to_vec());
            assert!(
                got.len() <= 5 + 3,
                "close() after batch 5, and batch {} arrived",
                got.len()
            );
            if got.len() == 5 {
                batches.slot().close();
            }
        }
    })
    .await;
    let items: Vec<u32> = got.concat();
    assert_eq!(items, (0..items.len() as u32).collect::<Vec<_>>(), "a prefix, in order");
}

// ----- 4. tokio drain_remainder / into_remainder with a parked item -----

#[cfg(feature = "tokio")]
mod drain {
    use super::*;
    use prefetch_batch::BatchExt;
    use prefetch_batch::timer::TokioTimer;
    use tokio::time::{Instant, sleep, sleep_until, timeout};

    /// The source: weights 5, 5, 5, 6 at 0, 2, 3, 5 ms, then nothing, forever.
    fn source(start: Instant) -> impl Stream<Item = usize> + Send + 'static {
        futures_util::stream::iter([(0, 5), (2, 5), (3, 5), (5, 6)])
            .then(move |(t, w)| async move {
                sleep_until(start + ms(t)).await;
                w
            })
            .chain(futures_util::stream::pending())
    }

    fn config() -> Config<4, impl Weigher<usize> + Send + 'static> {
        Config::new().idle(ms(1)).max_weight(10, |w: &usize| *w)
    }

    /// Both buffers ready and item 6 parked at 10 ms: `drain_remainder().await` returns all four.
    #[tokio::test(start_paused = true)]
    async fn tokio_drain_remainder_returns_with_a_parked_item() {
        let mut s = source(Instant::now()).prefetch_batches::<4>(config()).unwrap();
        sleep(ms(10)).await;
        let rest = timeout(Duration::from_secs(60), s.drain_remainder())
            .await
            .expect("drain_remainder().await did not return within 60 s (paused time)");
        assert_eq!(rest.collect::<Vec<_>>(), [5, 5, 5, 6]);
    }

    /// The same through `into_remainder().await`.
    #[tokio::test(start_paused = true)]
    async fn tokio_into_remainder_returns_with_a_parked_item() {
        let s = source(Instant::now()).prefetch_batches::<4>(config()).unwrap();
        sleep(ms(10)).await;
        let rest = timeout(Duration::from_secs(60), s.into_remainder())
            .await
            .expect("into_remainder().await did not return within 60 s (paused time)");
        assert_eq!(rest.collect::<Vec<_>>(), [5, 5, 5, 6]);
    }

    /// The synchronous `Receiver::drain_remainder` on a split tokio slot hands back the same four.
    #[tokio::test(start_paused = true)]
    async fn receiver_drain_remainder_returns_a_parked_item_tokio() {
        let slot = Slot::<NoopRawMutex, usize, 4, TokioTimer>::new(TokioTimer);
        let (producer, mut rx) = slot.split(source(Instant::now()), config()).unwrap();
        let mut run = core::pin::pin!(producer);
        // Runs the producer for 10 ms of paused time (the source never ends, so this times out).
        assert!(timeout(ms(10), run.as_mut()).await.is_err());
        assert_eq!(rx.drain_remainder().collect::<Vec<_>>(), [5, 5, 5, 6]);
        // And the producer, which had parked 6, now sees the close and finishes.
        timeout(Duration::from_secs(60), run)
            .await
            .expect("the producer finishes after the drain");
    }
}

/// The synchronous `Receiver::into_remainder` on `ManualClock` hands back the parked item too.
#[test]
fn receiver_into_remainder_returns_a_parked_item_manual() {
    let clock = common::clock();
    let source = weights(clock, Duration::from_secs(3600));
    let slot = Slot::<NoopRawMutex, u32, 4, _>::new(clock);
    let (producer, rx) = slot.split(source, weighted()).unwrap();
    let mut run = core::pin::pin!(producer);
    let mut cx = Context::from_waker(core::task::Waker::noop());
    for _ in 0..=10 {
        assert!(run.as_mut().poll(&mut cx).is_pending());
        clock.advance(MS);
    }
    assert_eq!(rx.into_remainder().collect::<Vec<_>>(), [5, 5, 5, 6]);
}

// ----- also seen: restart on a static slot, FusedStream, the last Full batch -----

/// After both halves of a `static` slot are dropped, it can be split again (a firmware restarts
/// its batcher), and the second run delivers its own items.
#[test]
fn a_static_slot_can_be_split_again() {
    use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
    static CLOCK: ManualClock = ManualClock::new();
    static SLOT: Slot<CriticalSectionRawMutex, u32, 4, &'static ManualClock> = Slot::new(&CLOCK);
    for run in 0..2u32 {
        let (producer, mut rx) = SLOT
            .split(prefetch_batch::testing::iter(10 * run..10 * run + 6), Config::new())
            .unwrap_or_else(|e| panic!("split #{}: {e}", run + 1));
        let mut seen = vec![];
        CLOCK.block_on(join(producer, async {
            while let Some(b) = rx.recv().await {
                seen.extend_from_slice(&b);
            }
        }));
        assert_eq!(seen, (10 * run..10 * run + 6).collect::<Vec<_>>());
        // Both halves are dropped here.
    }
}

/// `TryPrefetchStream` is a `FusedStream`, as `PrefetchStream` is. (A probe rather than a static
/// assertion so the rest of this file builds while it is missing; once it holds, a
/// `fn _f<S: FusedStream>() {} _f::<TryPrefetchStream<..>>()` can replace it.)
#[cfg(feature = "tokio")]
#[test]
fn try_prefetch_stream_is_a_fused_stream() {
    fn fused<S: futures_core::FusedStream>() {}
    fused::<prefetch_batch::PrefetchStream<u32, 4>>();
    fused::<prefetch_batch::TryPrefetchStream<u32, 4, &'static str>>();
}

/// The documented rule for the end: when the last item fills a batch, that batch is `Full`, and
/// the end is the `None` that follows it (no batch can know the source will end before the
/// source says so). A partial last batch says `End`.
#[test]
fn the_end_is_the_none_after_the_last_batch() {
    let clock = common::clock();
    let slot = Slot::<NoopRawMutex, u32, 4, _>::new(clock);
    for (n, last) in [(8u32, FlushReason::Full), (7, FlushReason::End)] {
        let (producer, mut rx) = slot.split(prefetch_batch::testing::iter(0..n), Config::new()).unwrap();
        let got = clock.block_on(async {
            let mut got = vec![];
            let consume = async {
                while let Some(b) = rx.recv().await {
                    got.push(b.info().reason);
                }
                assert!(rx.recv().await.is_none(), "the end stays the end");
            };
            join(producer, consume).await;
            got
        });
        assert_eq!(got, [FlushReason::Full, last], "{n} items");
        drop(rx);
    }
}

/// A spawned producer hands its source back: after a close, `into_parts` returns what was
/// buffered and the source with everything never pulled. Nothing of 1,000 queued items is lost.
#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn into_parts_hands_back_the_source_with_what_it_still_holds() {
    use prefetch_batch::BatchExt;
    let (tx, rx) = tokio::sync::mpsc::channel::<u32>(1_000);
    for i in 0..1_000 {
        tx.try_send(i).unwrap();
    }
    let mut batches = tokio_stream::wrappers::ReceiverStream::new(rx)
        .prefetch_batches::<8>(Config::new())
        .unwrap();
    let mut seen: Vec<u32> = batches.next().await.unwrap().to_vec();
    batches.slot().close();
    let (rest, source) = batches.into_parts().await;
    seen.extend(rest);
    let mut source = source.expect("the producer task hands its source back");
    drop(tx);
    while let Some(x) = source.next().await {
        seen.push(x);
    }
    assert_eq!(seen, (0..1_000).collect::<Vec<_>>());
}
