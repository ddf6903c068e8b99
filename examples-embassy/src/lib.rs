//! Sensor-ingest demo: the application shared by the host build (`src/main.rs`) and the
//! Cortex-M firmware (`firmware/`).
//!
//! A sensor task pushes numbered readings into an embassy-sync [`Channel`] the way an interrupt
//! handler would (`try_send`, never waiting), following [`scenario::SCRIPT`]: bursts, gaps, a quiet
//! period. The batcher (the main task, once it has spawned the others) turns the channel into
//! batches of up to [`CAPACITY`] readings and prefetches the next batch while the uplink task
//! "sends" the current one. The uplink logs one line per batch and, at the end, checks that
//! every reading arrived exactly once and in order.
//!
//! Output and exit are passed in ([`Io`]): `println!` on the host, semihosting on the target.
#![no_std]

pub mod batching;
pub mod check;
pub mod scenario;

use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::channel::Channel;

pub use batching::run;

/// A sensor reading. Its value is its sequence number, so the uplink can check the order.
pub type Reading = u32;

/// Batch capacity `N`.
pub const CAPACITY: usize = 32;

/// How many readings the channel holds between the sensor and the batcher.
pub const CHANNEL_DEPTH: usize = 16;

/// The mutex kind for everything shared with the sensor (in firmware: with an interrupt).
pub type Cs = CriticalSectionRawMutex;

/// Where the sensor puts its readings.
pub static READINGS: Channel<Cs, Reading, CHANNEL_DEPTH> = Channel::new();

/// How the application talks to the outside world.
#[derive(Clone, Copy)]
pub struct Io {
    /// Prints one line (the sink adds the line break).
    pub print: fn(core::fmt::Arguments),
    /// Ends the program with this status.
    pub exit: fn(i32) -> !,
}

/// Prints one line through an [`Io`], prefixed with the embassy-time clock in milliseconds.
#[macro_export]
macro_rules! say {
    ($io:expr, $($arg:tt)*) => {
        ($io.print)(format_args!(
            "[{:>5} ms] {}",
            embassy_time::Instant::now().as_millis(),
            format_args!($($arg)*)
        ))
    };
}
