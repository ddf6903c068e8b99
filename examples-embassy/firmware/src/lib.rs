//! What the sensor demo needs from the board: a SysTick time driver for embassy-time (from the
//! `mcu` crate, shared with the size-budget firmware in `budget/`), and output and exit through
//! semihosting (QEMU prints the text and exits with the status).
#![no_std]

pub use mcu::{CORE_HZ, time_driver};

use sensor_app::Io;

fn print(line: core::fmt::Arguments) {
    semihosting::println!("{}", line);
}

fn exit(status: i32) -> ! {
    semihosting::process::exit(status)
}

/// Semihosting output and exit.
pub const IO: Io = Io { print, exit };

/// Reports the panic and exits with status 101, as a failed Rust program does on a host.
pub fn panic(info: &core::panic::PanicInfo) -> ! {
    semihosting::eprintln!("panic: {}", info);
    exit(101)
}
