//! Prints the size of the batcher state on the target (`usize` and alignment as on the MCU), for
//! the size report. Splits the demo's slot but runs nothing.
#![no_std]
#![no_main]

use core::mem::{size_of, size_of_val};

use prefetch_batch::Stats;
use sensor_app::batching::{Batcher, Batches, CONFIG, SLOT};
use sensor_app::{CAPACITY, READINGS, Reading};

#[cortex_m_rt::entry]
fn main() -> ! {
    let Ok((run, batches)) = SLOT.split(READINGS.receiver(), CONFIG) else {
        semihosting::process::exit(2)
    };
    semihosting::println!("size_of Slot: {}", size_of_val(&SLOT));
    semihosting::println!("size_of Stats snapshot (returned by stats()): {}", size_of::<Stats>());
    semihosting::println!("size_of Producer: {}", size_of::<Batcher>());
    semihosting::println!("size_of Producer future as stored: {}", size_of_val(&run));
    semihosting::println!("size_of Receiver: {}", size_of::<Batches>());
    semihosting::println!("buffer floor 2*N*size_of(T): {}", 2 * CAPACITY * size_of::<Reading>());
    drop((run, batches));
    semihosting::process::exit(0)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    board::panic(info)
}
