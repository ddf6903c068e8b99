//! On-target tests of the batching semantics, on the emulated MCU with the real executor and the
//! SysTick time driver. A plain test program: `cargo test --release` boots it in QEMU; it prints
//! one line per test and "N passed, N failed", and exits non-zero if any test failed.
//!
//! Each test runs the producer beside its own code with `join`, over a local channel and slot.
#![no_std]
#![no_main]

use core::time::Duration;

use embassy_executor::Spawner;
use embassy_futures::join::join;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::channel::Channel;
use embassy_time::{Instant, Timer};
use prefetch_batch::timer::EmbassyTimer;
use prefetch_batch::{Config, FlushReason, Slot};
use semihosting::println;

type Outcome = Result<(), &'static str>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)*) => {
        if !$cond {
            println!("    {}", format_args!($($msg)*));
            return Err(stringify!($cond));
        }
    };
}

/// Lets the producer run: one tick of the time driver.
async fn settle() {
    Timer::after_millis(1).await;
}

/// The deadline runs from the first item of a batch, not the last: items keep coming every
/// 10 ms, and the batch still leaves 30 ms after its first one.
async fn deadline_from_first_item() -> Outcome {
    let channel: Channel<NoopRawMutex, u32, 8> = Channel::new();
    let slot: Slot<NoopRawMutex, u32, 8, EmbassyTimer> = Slot::new(EmbassyTimer);
    let config = Config::new().max_wait(Duration::from_millis(30));
    let (producer, mut rx) = slot.split(channel.receiver(), config).map_err(|_| "split")?;
    let test = async {
        let start = Instant::now();
        for i in 0..3 {
            channel.try_send(i).map_err(|_| "channel full")?;
            Timer::after_millis(10).await;
        }
        let batch = rx.recv().await.ok_or("no batch")?;
        let waited = start.elapsed().as_millis();
        let info = batch.info();
        ensure!(info.reason == FlushReason::Deadline, "reason {:?}", info.reason);
        ensure!(batch.as_slice() == [0, 1, 2], "items {:?}", batch.as_slice());
        ensure!((30..32).contains(&waited), "emitted after {} ms, want 30", waited);
        let age = info.age_at(embassy_time::Instant::now());
        ensure!(age >= embassy_time::Duration::from_millis(30), "age {:?}", age);
        drop(batch);
        slot.close();
        ensure!(rx.recv().await.is_none(), "a batch after close");
        Ok(())
    };
    join(producer, test).await.1
}

/// A batch leaves as soon as it holds `max_items`, without waiting for its deadline; `close()`
/// emits the partial one.
async fn full_batch() -> Outcome {
    let channel: Channel<NoopRawMutex, u32, 16> = Channel::new();
    let slot: Slot<NoopRawMutex, u32, 4, EmbassyTimer> = Slot::new(EmbassyTimer);
    let config = Config::new().max_items(3).max_wait(Duration::from_secs(10));
    let (producer, mut rx) = slot.split(channel.receiver(), config).map_err(|_| "split")?;
    let test = async {
        let start = Instant::now();
        for i in 0..7 {
            channel.try_send(i).map_err(|_| "channel full")?;
        }
        for want in [[0, 1, 2], [3, 4, 5]] {
            let batch = rx.recv().await.ok_or("no batch")?;
            ensure!(
                batch.info().reason == FlushReason::Full,
                "reason {:?}",
                batch.info().reason
            );
            ensure!(
                batch.as_slice() == want,
                "items {:?}, want {:?}",
                batch.as_slice(),
                want
            );
        }
        ensure!(
            start.elapsed().as_millis() < 2,
            "full batches took {} ms",
            start.elapsed().as_millis()
        );
        // Close emits the partial batch, once the producer has pulled the last item (close
        // leaves items still in the source there).
        settle().await;
        slot.close();
        let batch = rx.recv().await.ok_or("no last batch")?;
        ensure!(
            batch.info().reason == FlushReason::Close,
            "reason {:?}",
            batch.info().reason
        );
        ensure!(batch.as_slice() == [6], "items {:?}", batch.as_slice());
        Ok(())
    };
    join(producer, test).await.1
}

/// `flush()` emits the partial batch at once, long before its deadline.
async fn flush() -> Outcome {
    let channel: Channel<NoopRawMutex, u32, 8> = Channel::new();
    let slot: Slot<NoopRawMutex, u32, 8, EmbassyTimer> = Slot::new(EmbassyTimer);
    let config = Config::new().max_wait(Duration::from_secs(10));
    let (producer, mut rx) = slot.split(channel.receiver(), config).map_err(|_| "split")?;
    let test = async {
        for i in 0..3 {
            channel.try_send(i).map_err(|_| "channel full")?;
        }
        settle().await;
        let start = Instant::now();
        slot.flush();
        let batch = rx.recv().await.ok_or("no batch")?;
        ensure!(
            batch.info().reason == FlushReason::Flush,
            "reason {:?}",
            batch.info().reason
        );
        ensure!(batch.as_slice() == [0, 1, 2], "items {:?}", batch.as_slice());
        ensure!(
            start.elapsed().as_millis() < 2,
            "flush took {} ms",
            start.elapsed().as_millis()
        );
        drop(batch);
        slot.close();
        ensure!(rx.recv().await.is_none(), "a batch after close");
        Ok(())
    };
    join(producer, test).await.1
}

/// While the caller holds one batch and another is ready, the producer stops pulling: the
/// channel fills and the sender sees it full. Nothing is lost, and the stats show the wait.
async fn backpressure() -> Outcome {
    let channel: Channel<NoopRawMutex, u32, 4> = Channel::new();
    let slot: Slot<NoopRawMutex, u32, 4, EmbassyTimer> = Slot::new(EmbassyTimer);
    let (producer, mut rx) = slot.split(channel.receiver(), Config::new()).map_err(|_| "split")?;
    let test = async {
        let mut sent = 0u32;
        for _ in 0..4 {
            channel.try_send(sent).map_err(|_| "channel full")?;
            sent += 1;
            settle().await;
        }
        // The caller takes the first batch and keeps it while the sender goes on.
        let held = rx.recv().await.ok_or("no first batch")?;
        ensure!(held.as_slice() == [0, 1, 2, 3], "first batch {:?}", held.as_slice());
        while sent < 100 && channel.try_send(sent).is_ok() {
            sent += 1;
            settle().await;
        }
        // 4 held by the caller, 4 ready in the other buffer, 4 waiting in the channel.
        ensure!(sent == 12, "the sender got {} readings in, want 12", sent);
        Timer::after_millis(5).await;
        drop(held);
        let mut next = 4;
        for _ in 0..2 {
            let batch = rx.recv().await.ok_or("missing batch")?;
            for &r in batch.iter() {
                ensure!(r == next, "reading {} where {} was due", r, next);
                next += 1;
            }
        }
        ensure!(next == 12, "got readings up to {}, want 12", next);
        let waited = slot.stats().producer_waited();
        ensure!(waited >= Duration::from_millis(5), "producer waited {:?}", waited);
        slot.close();
        ensure!(rx.recv().await.is_none(), "a batch after close");
        Ok(())
    };
    join(producer, test).await.1
}

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    let core = cortex_m::Peripherals::take().unwrap();
    board::time_driver::init(core.SYST, board::CORE_HZ);
    let mut passed = 0;
    let mut failed = 0;
    macro_rules! run {
        ($test:ident) => {
            match $test().await {
                Ok(()) => {
                    passed += 1;
                    println!("test {} ... ok", stringify!($test));
                }
                Err(what) => {
                    failed += 1;
                    println!("test {} ... FAILED: {}", stringify!($test), what);
                }
            }
        };
    }
    run!(deadline_from_first_item);
    run!(full_batch);
    run!(flush);
    run!(backpressure);
    println!("{} passed, {} failed", passed, failed);
    semihosting::process::exit(if failed == 0 { 0 } else { 1 })
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    board::panic(info)
}
