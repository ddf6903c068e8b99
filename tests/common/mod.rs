//! Test sources and a generic scenario runner shared by the runtime test files.
#![allow(dead_code)]

pub mod scenarios;
#[path = "../support/timers.rs"]
pub mod timers;

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use futures_core::Stream;
use prefetch_batch::testing::join;
use prefetch_batch::timer::{Span, Timer};
use prefetch_batch::{Config, FlushReason, Slot, Weigher};

pub const MS: Duration = Duration::from_millis(1);

/// A fresh virtual clock for one test (leaked: `block_on` needs a `'static` clock).
pub fn clock() -> &'static prefetch_batch::timer::ManualClock {
    Box::leak(Box::new(prefetch_batch::timer::ManualClock::new()))
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What arrives when, relative to the source's creation.
#[derive(Debug, Clone)]
pub enum Event<T> {
    Item(Duration, T),
    Error(Duration, &'static str),
    /// The source ends at this time (it ends right after the last event otherwise).
    End(Duration),
}

/// A source whose items arrive at scripted instants of a timer.
pub struct Scripted<Tm: Timer, T> {
    timer: Tm,
    start: Tm::Instant,
    events: std::collections::VecDeque<Event<T>>,
    sleep: Option<Pin<Box<Tm::Sleep>>>,
    pub polls: Arc<AtomicUsize>,
}

impl<Tm: Timer, T> Scripted<Tm, T> {
    pub fn new(timer: Tm, events: Vec<Event<T>>) -> Self {
        let start = timer.now();
        Self {
            timer,
            start,
            events: events.into(),
            sleep: None,
            polls: Arc::default(),
        }
    }

    pub fn items(timer: Tm, items: impl IntoIterator<Item = (u64, T)>) -> Self {
        Self::new(timer, items.into_iter().map(|(t, x)| Event::Item(ms(t), x)).collect())
    }
}

impl<Tm: Timer, T> Unpin for Scripted<Tm, T> {}

impl<Tm: Timer, T> Stream for Scripted<Tm, T> {
    type Item = Result<T, &'static str>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.polls.fetch_add(1, Ordering::Relaxed);
        let at = match self.events.front() {
            None => return Poll::Ready(None),
            Some(Event::Item(at, _) | Event::Error(at, _) | Event::End(at)) => *at,
        };
        let due = self.timer.add(self.start, at).unwrap();
        if self.timer.now() < due {
            let timer = self.timer.clone();
            let sleep = self.sleep.get_or_insert_with(|| Box::pin(timer.sleep_until(due)));
            timer.reset(sleep.as_mut(), due);
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        self.sleep = None;
        match self.events.pop_front().unwrap() {
            Event::Item(_, x) => Poll::Ready(Some(Ok(x))),
            Event::Error(_, e) => Poll::Ready(Some(Err(e))),
            Event::End(_) => {
                self.events.clear();
                Poll::Ready(None)
            }
        }
    }
}

/// Only the values of a scripted source (for plain-stream APIs).
pub struct Values<S>(pub S);

impl<S: Stream<Item = Result<T, &'static str>> + Unpin, T> Stream for Values<S> {
    type Item = T;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        Pin::new(&mut self.0)
            .poll_next(cx)
            .map(|o| o.map(|r| r.expect("plain source")))
    }
}

/// An always-ready source 0, 1, 2, ... that counts how often it is polled.
pub struct Counter {
    pub next: u32,
    pub polls: Arc<AtomicUsize>,
}

impl Counter {
    pub fn new() -> (Self, Arc<AtomicUsize>) {
        let polls = Arc::new(AtomicUsize::new(0));
        (
            Self {
                next: 0,
                polls: polls.clone(),
            },
            polls,
        )
    }
}

impl Stream for Counter {
    type Item = u32;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<u32>> {
        self.polls.fetch_add(1, Ordering::Relaxed);
        self.next += 1;
        Poll::Ready(Some(self.next - 1))
    }
}

/// One delivered batch (or error), as the consumer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen<T> {
    pub items: Vec<T>,
    pub reason: Option<FlushReason>,
    pub error: Option<&'static str>,
    /// When its first item arrived, since the start.
    pub first_at: Duration,
    /// When the consumer got it, since the start.
    pub taken_at: Duration,
    pub age: Duration,
}

/// What a scenario does besides consuming.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plan {
    /// The consumer holds each batch this long before handing it back.
    pub process: Duration,
    /// Request a flush at this time.
    pub flush_at: Option<Duration>,
    /// Close at this time.
    pub close_at: Option<Duration>,
    /// Close when the source is next idle, from this time.
    pub close_when_idle_at: Option<Duration>,
}

/// Runs a scripted source through a slot on the given timer, producer and consumer in one task.
#[cfg(feature = "stats")]
pub async fn run<Tm, T, W, const N: usize>(
    timer: Tm,
    events: Vec<Event<T>>,
    config: Config<N, W>,
    plan: Plan,
) -> (Vec<Seen<T>>, prefetch_batch::Stats)
where
    Tm: Timer,
    T: Clone,
    W: Weigher<T>,
{
    let source = Scripted::new(timer.clone(), events);
    let start = source.start;
    let slot = Slot::<NoopRawMutex, T, N, Tm, &'static str>::new(timer.clone());
    let (producer, mut rx) = slot.try_split(source, config).expect("valid config");
    let mut seen = Vec::new();
    let consume = async {
        while let Some(next) = rx.recv().await {
            let taken_at = timer.since(timer.now(), start);
            match next {
                Ok(batch) => {
                    let info = batch.info();
                    seen.push(Seen {
                        items: batch.to_vec(),
                        reason: Some(info.reason),
                        error: None,
                        first_at: timer.since(info.first_at, start),
                        taken_at,
                        age: info.age_at(timer.now()).to_duration(),
                    });
                    if !plan.process.is_zero() {
                        let until = timer.add(timer.now(), plan.process).unwrap();
                        timer.sleep_until(until).await;
                    }
                }
                Err(e) => seen.push(Seen {
                    items: vec![],
                    reason: None,
                    error: Some(e),
                    first_at: Duration::ZERO,
                    taken_at,
                    age: Duration::ZERO,
                }),
            }
        }
    };
    let control = async {
        let mut requests = [(plan.flush_at, 0), (plan.close_at, 1), (plan.close_when_idle_at, 2)];
        requests.sort_by_key(|r| r.0);
        for (at, what) in requests {
            if let Some(at) = at {
                timer.sleep_until(timer.add(start, at).unwrap()).await;
                match what {
                    0 => slot.flush(),
                    1 => slot.close(),
                    _ => slot.close_when_idle(),
                }
            }
        }
    };
    join(join(producer, control), consume).await;
    let stats = slot.stats();
    (seen, stats)
}

/// The batches' items and reasons, for compact assertions.
pub fn shape<T: Clone>(seen: &[Seen<T>]) -> Vec<(Vec<T>, Option<FlushReason>)> {
    seen.iter().map(|s| (s.items.clone(), s.reason)).collect()
}

#[cfg(feature = "embassy")]
mod mock {
    use core::future::Future;
    use core::pin::pin;
    use core::task::{Context, Poll, Waker};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::Wake;

    use embassy_time::{Duration, MockDriver};

    struct Flag(AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// Polls `fut`; whenever it is idle, moves the mock clock forward by one millisecond.
    pub fn block_on_mock<F: Future>(fut: F) -> F::Output {
        let flag = Arc::new(Flag(AtomicBool::new(true)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut fut = pin!(fut);
        for _ in 0..10_000_000 {
            flag.0.store(false, Ordering::SeqCst);
            if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return out;
            }
            if !flag.0.load(Ordering::SeqCst) {
                MockDriver::get().advance(Duration::from_millis(1));
            }
        }
        panic!("scenario did not finish within 10^7 virtual milliseconds");
    }
}
#[cfg(feature = "embassy")]
#[allow(unused_imports)]
pub use mock::block_on_mock;
