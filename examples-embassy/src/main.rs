//! The sensor-ingest demo on embassy's std platform: no hardware, no QEMU.
//! Run with `cargo run -p examples-embassy --features host`.

use embassy_executor::Spawner;
use sensor_app::Io;

fn print(line: core::fmt::Arguments) {
    println!("{line}");
}

fn exit(status: i32) -> ! {
    std::process::exit(status)
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    sensor_app::run(spawner, Io { print, exit }).await;
}
