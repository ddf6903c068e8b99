//! What the sensor demo needs from the board: a SysTick time driver for embassy-time, and output
//! and exit through semihosting (QEMU prints the text and exits with the status).
#![no_std]

pub mod budget;
pub mod time_driver;

use sensor_app::Io;

/// The core clock, which SysTick counts: 25 MHz on the mps2 boards, 16 MHz on the micro:bit.
#[cfg(board = "mps2")]
pub const CORE_HZ: u32 = 25_000_000;
#[cfg(board = "microbit")]
pub const CORE_HZ: u32 = 16_000_000;

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
