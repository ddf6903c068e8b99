//! Issue 12: at most one clock read per batch, counted exactly on a timer that counts its reads.
//!
//! An always-ready source, N = 64, `max_wait` 5 ms: after the first batch (which learns the item
//! rate), each batch reads the clock once, for its first item's stamp (`BatchInfo::first_at`);
//! without `max_wait` and `idle` too, as that stamp is part of every batch. Handing a batch over
//! reads none; the `stats` feature adds one per batch there (its age, for `max_age`), and one
//! when the one-task driver yields to its executor during a wait. `scripts/test-all` runs this file without
//! the feature too (`cargo test --workspace` has it, through the example crates).

#[path = "support/timers.rs"]
mod timers;

use core::time::Duration;

use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use prefetch_batch::timer::ManualClock;
use prefetch_batch::{BatchExt, Config, Slot, testing};
use timers::{Counted, reads};

static CLOCK: ManualClock = ManualClock::new();
/// One `block_on` per clock at a time: the tests take turns.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

const N: usize = 64;
const BATCHES: u32 = 100;

/// Reads in a run of `BATCHES` full batches beyond those of a run of one batch: the steady state.
fn steady_reads(run: impl Fn(u32) -> u32) -> u64 {
    let before = reads();
    assert_eq!(run(1), 1);
    let one = reads() - before;
    let before = reads();
    assert_eq!(run(BATCHES), BATCHES);
    let many = reads() - before;
    many - one
}

fn for_each(config: Config<N>, batches: u32) -> u32 {
    let mut seen = 0;
    CLOCK
        .block_on(
            testing::iter(0..batches * N as u32).for_each_batch(config, Counted(&CLOCK), |b| {
                assert_eq!(b.len(), N);
                seen += 1;
                async {}
            }),
        )
        .unwrap();
    seen
}

fn zero_copy(config: Config<N>, batches: u32) -> u32 {
    let slot = Slot::<NoopRawMutex, u32, N, _>::new(Counted(&CLOCK));
    let (producer, mut rx) = slot.split(testing::iter(0..batches * N as u32), config).unwrap();
    CLOCK.block_on(slot.join(producer, async {
        let mut seen = 0;
        while let Some(b) = rx.recv().await {
            assert_eq!(b.len(), N);
            seen += 1;
        }
        seen
    }))
}

/// The reads `BATCHES - 1` more batches cost: one stamp each, plus the counters' reads.
fn check(api: &str, steady: u64) {
    let batches = u64::from(BATCHES - 1);
    if cfg!(feature = "stats") {
        // The handover's read, and a wait stamp each time the driver yields (every 32 rounds).
        assert!(
            (2 * batches..=2 * batches + batches / 16).contains(&steady),
            "{api}: {steady} clock reads for {batches} more batches, with stats"
        );
    } else {
        assert_eq!(steady, batches, "{api}: clock reads for {batches} more batches");
    }
}

#[test]
fn one_clock_read_per_batch_with_a_deadline() {
    let _turn = TURN.lock().unwrap();
    let config = Config::new().max_wait(Duration::from_millis(5));
    check("for_each_batch", steady_reads(|b| for_each(config, b)));
    check("zero-copy", steady_reads(|b| zero_copy(config, b)));
}

#[test]
fn one_clock_read_per_batch_without_a_time_limit() {
    let _turn = TURN.lock().unwrap();
    check("for_each_batch", steady_reads(|b| for_each(Config::new(), b)));
    check("zero-copy", steady_reads(|b| zero_copy(Config::new(), b)));
}
