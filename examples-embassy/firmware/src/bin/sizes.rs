//! Prints the size of the batcher state on the target (`usize` and alignment as on the MCU), for
//! the size report. Splits the demo's slot but runs nothing.
#![no_std]
#![no_main]

use core::mem::{size_of, size_of_val};

use prefetch_batch::Stats;
use sensor_app::batching::{Batcher, Batches, CONFIG, SLOT};
use sensor_app::{CAPACITY, READINGS, Reading};

// The two ways a batcher task can hold the producer: by value (an `async fn` argument is kept
// beside the future it awaits, so the task's future holds the producer twice), or as a
// `&'static mut` to a producer stored once (in a `StaticCell`, say).
async fn by_value(producer: Batcher) {
    producer.await
}

async fn by_ref(producer: &'static mut Batcher) {
    producer.await
}

/// The size of what `f` returns (here a future), without calling it.
fn size_of_output<A, R>(_: impl FnOnce(A) -> R) -> usize {
    size_of::<R>()
}

#[cortex_m_rt::entry]
fn main() -> ! {
    let Ok((run, batches)) = SLOT.split(READINGS.receiver(), CONFIG) else {
        semihosting::process::exit(2)
    };
    semihosting::println!("size_of Slot: {}", size_of_val(&SLOT));
    semihosting::println!("size_of Stats snapshot (returned by stats()): {}", size_of::<Stats>());
    semihosting::println!("size_of Producer: {}", size_of::<Batcher>());
    let task = by_value(run);
    semihosting::println!("size_of task future, async fn(Producer): {}", size_of_val(&task));
    semihosting::println!(
        "size_of task future, async fn(&'static mut Producer): {}",
        size_of_output(by_ref)
    );
    semihosting::println!("size_of Receiver: {}", size_of::<Batches>());
    semihosting::println!("buffer floor 2*N*size_of(T): {}", 2 * CAPACITY * size_of::<Reading>());
    drop((task, batches));
    semihosting::process::exit(0)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    board::panic(info)
}
