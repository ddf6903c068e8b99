//! The sensor: a fixed script of bursts, gaps and quiet periods, so every run sends the same
//! readings in the same order.

use embassy_time::Timer;

use crate::{Io, READINGS, Reading, say};

/// One part of the sensor's script.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// `count` readings, `every_ms` apart.
    Burst { count: u32, every_ms: u64 },
    /// One reading after each gap (milliseconds).
    Gaps(&'static [u64]),
    /// Nothing for this many milliseconds.
    Quiet(u64),
    /// Ask the batcher to emit what it holds now (an operator's "upload now" button).
    Flush,
}

/// Bursts faster than the uplink can send, irregular gaps that end batches by deadline, a quiet
/// period with no batch at all, a flush request, and a last burst cut short by shutdown.
pub const SCRIPT: &[Step] = &[
    Step::Burst {
        count: 100,
        every_ms: 1,
    },
    Step::Quiet(120),
    Step::Gaps(&[3, 17, 9, 25, 1, 1, 40, 12, 30, 2, 60, 8]),
    Step::Quiet(400),
    Step::Burst { count: 5, every_ms: 2 },
    Step::Quiet(5),
    Step::Flush,
    Step::Quiet(100),
    Step::Burst { count: 40, every_ms: 1 },
];

/// How many readings the script sends.
pub const TOTAL: u32 = total(SCRIPT);

const fn total(script: &[Step]) -> u32 {
    let mut n = 0;
    let mut i = 0;
    while i < script.len() {
        n += match script[i] {
            Step::Burst { count, .. } => count,
            Step::Gaps(gaps) => gaps.len() as u32,
            _ => 0,
        };
        i += 1;
    }
    n
}

/// Plays [`SCRIPT`] into [`READINGS`], calling `flush` for [`Step::Flush`]. Returns once the
/// batcher has pulled every reading out of the channel, so the caller can shut it down losing
/// nothing.
pub async fn play(io: Io, flush: fn()) {
    let mut next: Reading = 0;
    for step in SCRIPT {
        match *step {
            Step::Burst { count, every_ms } => {
                say!(io, "sensor: burst of {count} readings, {every_ms} ms apart");
                for _ in 0..count {
                    Timer::after_millis(every_ms).await;
                    emit(io, &mut next);
                }
            }
            Step::Gaps(gaps) => {
                say!(io, "sensor: {} readings at irregular gaps", gaps.len());
                for &gap in gaps {
                    Timer::after_millis(gap).await;
                    emit(io, &mut next);
                }
            }
            Step::Quiet(ms) => Timer::after_millis(ms).await,
            Step::Flush => {
                say!(io, "sensor: flush requested");
                flush();
            }
        }
    }
    say!(io, "sensor: done, {next} readings sent");
    // Polling is fine here: this runs once, at shutdown.
    while !READINGS.is_empty() {
        Timer::after_millis(1).await;
    }
}

/// What an interrupt handler does: hand the reading over without waiting. A full channel loses
/// the reading, and the uplink's check reports the gap.
fn emit(io: Io, next: &mut Reading) {
    if READINGS.try_send(*next).is_err() {
        say!(io, "sensor: channel full, reading #{} lost", *next);
    }
    *next += 1;
}
