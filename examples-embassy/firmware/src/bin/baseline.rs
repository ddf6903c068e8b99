//! The size baseline: the same sensor, uplink log and check as `sensor-firmware`, with a
//! hand-written batching loop in the uplink task instead of prefetch-batch. It builds the batch
//! and sends it in turn, so nothing drains the channel while a batch is being sent.
//!
//! Only for the size report. Under the demo's script it loses readings in the first burst (the
//! 16-deep channel overflows while a batch is sent), and its check says so and exits with 1.
#![no_std]
#![no_main]

use embassy_executor::Spawner;
use embassy_futures::select::{Either, Either4, select, select4};
use embassy_sync::signal::Signal;
use embassy_time::{Instant, Timer};
use heapless::Vec;
use sensor_app::batching::{MAX_WAIT, send_time};
use sensor_app::check::Checker;
use sensor_app::scenario::{self, TOTAL};
use sensor_app::{CAPACITY, Cs, Io, READINGS, Reading};

static FLUSH: Signal<Cs, ()> = Signal::new();
static DONE: Signal<Cs, ()> = Signal::new();

#[derive(Debug)]
enum Reason {
    Full,
    Deadline,
    Flush,
    Close,
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let core = cortex_m::Peripherals::take().unwrap();
    board::time_driver::init(core.SYST, board::CORE_HZ);
    spawner.spawn(sensor(board::IO).unwrap());
    spawner.spawn(uplink(board::IO).unwrap());
}

#[embassy_executor::task]
async fn sensor(io: Io) {
    scenario::play(io, || FLUSH.signal(())).await;
    DONE.signal(());
}

#[embassy_executor::task]
async fn uplink(io: Io) {
    let mut check = Checker::new(io);
    let mut batch: Vec<Reading, CAPACITY> = Vec::new();
    loop {
        let first = match select(READINGS.receive(), DONE.wait()).await {
            Either::First(r) => r,
            Either::Second(()) => break,
        };
        let started = Instant::now();
        let deadline = started + embassy_time::Duration::from_micros(MAX_WAIT.as_micros() as u64);
        let _ = batch.push(first);
        let reason = loop {
            if batch.is_full() {
                break Reason::Full;
            }
            match select4(READINGS.receive(), Timer::at(deadline), FLUSH.wait(), DONE.wait()).await {
                Either4::First(r) => {
                    let _ = batch.push(r);
                }
                Either4::Second(()) => break Reason::Deadline,
                Either4::Third(()) => break Reason::Flush,
                Either4::Fourth(()) => {
                    DONE.signal(()); // seen again by the outer loop, to stop
                    break Reason::Close;
                }
            }
        };
        let age = (Instant::now() - started).as_micros();
        check.batch(&batch, reason, core::time::Duration::from_micros(age));
        Timer::after(send_time(batch.len())).await;
        batch.clear();
    }
    (io.exit)(check.finish(TOTAL))
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    board::panic(info)
}
