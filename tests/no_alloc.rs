//! The core never allocates: a counting global allocator sees zero allocations while 10,000
//! batches go through the in-task driver and through the zero-copy API.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use prefetch_batch::testing::join;
use prefetch_batch::timer::ManualClock;
use prefetch_batch::{BatchExt, Config, Slot, testing};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to `System` unchanged; it only counts, on this thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Counts the allocations `f` makes on this thread.
fn allocations<R>(f: impl FnOnce() -> R) -> (R, u64) {
    ALLOCATIONS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, ALLOCATIONS.with(Cell::get))
}

const BATCHES: u64 = 10_000;
const N: usize = 16;

#[test]
fn in_task_driver_allocates_nothing() {
    static CLOCK: ManualClock = ManualClock::new();
    let clock = &CLOCK;
    let ((batches, sum), count) = allocations(|| {
        let (mut batches, mut sum) = (0u64, 0u64);
        clock
            .block_on(testing::iter(0..BATCHES * N as u64).for_each_batch(
                Config::<N>::new().max_wait(Duration::from_millis(5)),
                clock,
                |batch| {
                    batches += 1;
                    sum += batch.iter().sum::<u64>();
                    async {}
                },
            ))
            .unwrap();
        (batches, sum)
    });
    assert_eq!(batches, BATCHES);
    let n = BATCHES * N as u64;
    assert_eq!(sum, n * (n - 1) / 2);
    assert_eq!(count, 0, "allocations while batching");
}

#[test]
fn zero_copy_api_allocates_nothing() {
    static CLOCK: ManualClock = ManualClock::new();
    let clock = &CLOCK;
    let (taken, count) = allocations(|| {
        let slot = Slot::<NoopRawMutex, u64, N, _>::new(clock);
        let (producer, mut rx) = slot.split(testing::iter(0..BATCHES * N as u64), Config::new()).unwrap();
        let mut taken = 0u64;
        clock.block_on(join(producer, async {
            while let Some(mut batch) = rx.recv().await {
                assert_eq!(batch.drain(..).count(), N);
                taken += 1;
            }
        }));
        taken
    });
    assert_eq!(taken, BATCHES);
    assert_eq!(count, 0, "allocations while batching");
}

/// The counter works: a test that allocates is seen.
#[test]
fn the_counter_sees_allocations() {
    let (_, count) = allocations(|| std::hint::black_box(vec![1u8; 10]));
    assert_eq!(count, 1);
}
