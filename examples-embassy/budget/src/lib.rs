//! What the two size-budget firmwares (`budget-hand`, `budget-crate`) share, so that they differ
//! only in how they batch: the sensor task and its channel, the board start-up, the per-batch work
//! (a sum), the report and exit, and a panic path that formats nothing.
//!
//! The sensor sends [`COUNT`] readings, numbered from 0, in groups of 40 with a 60 ms pause after
//! each group: every group gives one full batch of 32 and one batch of 8 that its 50 ms deadline
//! emits. After the last reading, the consumer prints `sum S of R readings in B batches, F full` and exits
//! with status 0. Nothing here uses `core::fmt`, so the flash left is the batching's and the
//! runtime's.
#![no_std]

use embassy_executor::Spawner;
use embassy_sync::channel::Channel;
use embassy_time::Timer;
use semihosting::io::Write;

/// The mutex of the channel and the slot.
pub type Cs = embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;

/// Batch capacity.
pub const N: usize = 32;
/// A batch is emitted at the latest this long after its first reading.
pub const MAX_WAIT_MS: u64 = 50;
/// How many readings the channel holds.
pub const DEPTH: usize = 16;
/// How many readings the sensor sends in all.
pub const COUNT: u32 = 200;
/// The sensor pauses after this many readings...
const GROUP: u32 = 40;
/// ...for this long, more than the deadline.
const PAUSE_MS: u64 = 60;

/// Where the sensor puts its readings.
pub static READINGS: Channel<Cs, u32, DEPTH> = Channel::new();

/// Starts the time driver and spawns the sensor.
pub fn start(spawner: Spawner) {
    let Some(core) = cortex_m::Peripherals::take() else {
        panic()
    };
    mcu::time_driver::init(core.SYST, mcu::CORE_HZ);
    match sensor() {
        Ok(token) => spawner.spawn(token),
        Err(_) => panic(),
    }
}

#[embassy_executor::task]
async fn sensor() {
    for i in 0..COUNT {
        READINGS.send(i).await;
        if i % GROUP == GROUP - 1 {
            Timer::after_millis(PAUSE_MS).await;
        }
    }
}

/// The consumer's work: sums every batch; after the last reading, reports and exits.
pub struct Tally {
    sum: u32,
    readings: u32,
    batches: u32,
    full: u32,
}

impl Tally {
    pub const fn new() -> Self {
        Tally {
            sum: 0,
            readings: 0,
            batches: 0,
            full: 0,
        }
    }

    /// Adds one batch. Exits the program once every reading was counted.
    pub fn batch(&mut self, items: &[u32]) {
        self.sum = items.iter().fold(self.sum, |s, &x| s.wrapping_add(x));
        self.readings += items.len() as u32;
        self.batches += 1;
        self.full += (items.len() == N) as u32;
        if self.readings >= COUNT {
            self.finish()
        }
    }

    /// Prints `sum S of R readings in B batches, F full` piece by piece (no buffer to copy, so
    /// no `memcpy` in the reference firmware) and exits with status 0.
    fn finish(&self) -> ! {
        if let Ok(mut out) = semihosting::io::stdout() {
            let _ = out.write_all(b"sum ");
            write_number(&mut out, self.sum);
            let _ = out.write_all(b" of ");
            write_number(&mut out, self.readings);
            let _ = out.write_all(b" readings in ");
            write_number(&mut out, self.batches);
            let _ = out.write_all(b" batches, ");
            write_number(&mut out, self.full);
            let _ = out.write_all(b" full\n");
        }
        semihosting::process::exit(0)
    }
}

impl Default for Tally {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes `n` in decimal, without `core::fmt`.
fn write_number(out: &mut impl Write, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let _ = out.write_all(&digits[i..]);
}

/// The panic path of both firmwares: exits with status 101, formatting nothing.
pub fn panic() -> ! {
    semihosting::process::exit(101)
}
