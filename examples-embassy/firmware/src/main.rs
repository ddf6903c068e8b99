//! The sensor-ingest demo as firmware: the same application as the host build, on a SysTick
//! time driver, printing through semihosting. Exits with status 0 when every reading arrived
//! exactly once, in order.
#![no_std]
#![no_main]

use embassy_executor::Spawner;

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let core = cortex_m::Peripherals::take().unwrap();
    board::time_driver::init(core.SYST, board::CORE_HZ);
    sensor_app::run(spawner, board::IO).await;
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    board::panic(info)
}
