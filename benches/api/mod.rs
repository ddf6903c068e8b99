//! Every use the benches make of prefetch-batch's API, in one place, so a change of names is
//! ported here and nowhere else: five macros (one per consumption API, two for the one-task
//! driver) and `state_sizes` (workload 5).
//!
//! Shared by `peers.rs` and `timing.rs` as `mod api;` (a directory, so cargo does not take it for
//! a bench target of its own).
#![allow(dead_code, unused_macros, unused_imports)] // each bench binary uses a subset

use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use futures_core::Stream;
use prefetch_batch::timer::TokioTimer;
use prefetch_batch::{BatchExt, Config, Slot};

// Each macro runs one consumption API to the end over `$src` (a `Stream`), with batches of `$n`
// and `max_wait` `$wait`, on tokio's timer; `$body` runs once per batch with `$b: &[T]` and may
// `.await`. Macros, not functions taking a closure, so the benches measure exactly the code a user
// writes (no extra closure layer) and a spawned future stays `Send`.

/// The one-task driver, `for_each_batch`, with a handler that does not await: `$body` runs in the
/// closure, which returns a ready future.
macro_rules! in_task {
    ($src:expr, $n:expr, $wait:expr, |$b:ident| $body:expr) => {
        prefetch_batch::BatchExt::for_each_batch(
            $src,
            prefetch_batch::Config::<{ $n }>::new().max_wait($wait),
            prefetch_batch::timer::TokioTimer,
            |batch| {
                let $b: &[_] = &batch;
                $body;
                async {}
            },
        )
        .await
        .unwrap()
    };
}
pub(crate) use in_task;

/// The one-task driver with a handler that awaits: `$body` runs in the future the closure
/// returns (`async move`, as a user writes it), so the state it touches is reached through
/// references it copies (`&RefCell<_>`, `&Cell<_>`).
macro_rules! in_task_async {
    ($src:expr, $n:expr, $wait:expr, |$b:ident| $body:expr) => {
        prefetch_batch::BatchExt::for_each_batch(
            $src,
            prefetch_batch::Config::<{ $n }>::new().max_wait($wait),
            prefetch_batch::timer::TokioTimer,
            |batch| async move {
                let $b: &[_] = &batch;
                $body
            },
        )
        .await
        .unwrap()
    };
}
pub(crate) use in_task_async;

/// Zero-copy: `Slot::split`, `Slot::join`, `Receiver::recv` guards.
macro_rules! zero_copy {
    ($src:expr, $n:expr, $wait:expr, |$b:ident| $body:expr) => {{
        let slot = prefetch_batch::Slot::<embassy_sync::blocking_mutex::raw::NoopRawMutex, _, { $n }, _>::new(
            prefetch_batch::timer::TokioTimer,
        );
        let (producer, mut rx) = slot.split($src, prefetch_batch::Config::new().max_wait($wait)).unwrap();
        slot.join(producer, async {
            while let Some(guard) = rx.recv().await {
                let $b: &[_] = &guard;
                $body
            }
        })
        .await
    }};
}
pub(crate) use zero_copy;

/// The tokio adapter's stream (a spawned producer task): `prefetch_batches`.
macro_rules! prefetch_batches {
    ($src:expr, $n:expr, $wait:expr) => {
        prefetch_batch::BatchExt::prefetch_batches::<{ $n }>($src, prefetch_batch::Config::new().max_wait($wait))
            .unwrap()
    };
}
pub(crate) use prefetch_batches;

/// The tokio adapter, zero-copy guards: `prefetch_batches` + `recv`.
macro_rules! prefetch_guard {
    ($src:expr, $n:expr, $wait:expr, |$b:ident| $body:expr) => {{
        let mut s = crate::api::prefetch_batches!($src, $n, $wait);
        while let Some(guard) = s.recv().await {
            let $b: &[_] = &guard;
            $body
        }
    }};
}
pub(crate) use prefetch_guard;

/// The tokio adapter with bulk intake from a tokio `mpsc::Receiver` (`$rx`): `prefetch_bulk` over
/// `MpscBulk`, zero-copy guards.
macro_rules! prefetch_bulk {
    ($rx:expr, $n:expr, $wait:expr, |$b:ident| $body:expr) => {{
        let mut s = prefetch_batch::prefetch_bulk::<_, { $n }>(
            prefetch_batch::MpscBulk::new($rx),
            prefetch_batch::Config::new().max_wait($wait),
        )
        .unwrap();
        while let Some(guard) = s.recv().await {
            let $b: &[_] = &guard;
            $body
        }
    }};
}
pub(crate) use prefetch_bulk;

/// The tokio adapter as a `Stream` of owned batches (the README's quick start).
macro_rules! prefetch_stream {
    ($src:expr, $n:expr, $wait:expr, |$b:ident| $body:expr) => {{
        let mut s = crate::api::prefetch_batches!($src, $n, $wait);
        while let Some(batch) = futures_util::StreamExt::next(&mut s).await {
            let $b: &[_] = &batch;
            $body
        }
    }};
}
pub(crate) use prefetch_stream;

/// Workload 5's sizes of our state, in bytes, each without the source `S` (`make` builds one).
#[derive(Debug)]
pub struct StateSizes {
    /// `Slot` (what the zero-copy API keeps beside the producer and the receiver).
    pub slot: usize,
    /// The `Stats` snapshot `stats()` returns (0: feature `stats` off, as in the benches' build).
    pub stats: usize,
    /// `Producer` beyond the source.
    pub producer: usize,
    /// The producer as a future (it is one) beyond the source.
    pub producer_run: usize,
    /// Zero-copy: slot + producer + `Receiver`, beyond the source.
    pub zero_copy: usize,
    /// The `for_each_batch` future beyond the source.
    pub in_task: usize,
}

pub fn state_sizes<S: Stream<Item = u64>, const N: usize>(make: impl Fn() -> S) -> StateSizes {
    type S0<const N: usize> = Slot<NoopRawMutex, u64, N, TokioTimer>;
    let size_src = size_of::<S>();
    let slot = S0::<N>::new(TokioTimer);
    let (producer, rx) = slot.split(make(), Config::new()).unwrap();
    let producer_size = size_of_val(&producer) - size_src;
    let run_size = producer_size;
    let zero_copy = size_of::<S0<N>>() + run_size + size_of_val(&rx);
    drop((producer, rx));
    let in_task = size_of_val(&make().for_each_batch(Config::<N>::new(), TokioTimer, |_b| async {})) - size_src;
    StateSizes {
        slot: size_of::<S0<N>>(),
        #[cfg(feature = "stats")]
        stats: size_of::<prefetch_batch::Stats>(),
        #[cfg(not(feature = "stats"))]
        stats: 0,
        producer: producer_size,
        producer_run: run_size,
        zero_copy,
        in_task,
    }
}
