//! What the two size-budget firmwares (`budget-hand`, `budget-crate`) share, so that they differ
//! only in how they batch: the sensor task and its channel, the board start-up, the per-batch work
//! (a sum), the report and exit, and a panic path that formats nothing.
//!
//! The sensor sends [`COUNT`] readings, numbered from 0, in groups of 40 with a 60 ms pause after
//! each group: every group gives one full batch of 32 and one batch of 8 that its 50 ms deadline
//! emits. After the last reading, the consumer prints `sum S of R readings in B batches, F full` and exits
//! with status 0. Nothing here uses `core::fmt`, so the flash left is the batching's and the
//! runtime's.

use embassy_executor::Spawner;
use embassy_sync::channel::Channel;
use embassy_time::Timer;
use semihosting::io::Write;

pub use sensor_app::Cs;

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
    crate::time_driver::init(core.SYST, crate::CORE_HZ);
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

    fn finish(&self) -> ! {
        let mut line = Line { buf: [0; 64], len: 0 };
        line.text(b"sum ");
        line.number(self.sum);
        line.text(b" of ");
        line.number(self.readings);
        line.text(b" readings in ");
        line.number(self.batches);
        line.text(b" batches, ");
        line.number(self.full);
        line.text(b" full\n");
        if let Ok(mut out) = semihosting::io::stdout() {
            let _ = out.write_all(&line.buf[..line.len]);
        }
        semihosting::process::exit(0)
    }
}

impl Default for Tally {
    fn default() -> Self {
        Self::new()
    }
}

/// A line of text built without `core::fmt`.
struct Line {
    buf: [u8; 64],
    len: usize,
}

impl Line {
    fn text(&mut self, s: &[u8]) {
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    fn number(&mut self, mut n: u32) {
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
        self.text(&digits[i..]);
    }
}

/// The panic path of both firmwares: exits with status 101, formatting nothing.
pub fn panic() -> ! {
    semihosting::process::exit(101)
}
