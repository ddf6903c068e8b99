//! The boards under QEMU, as the firmware packages (`firmware/`, `budget/`) see them: the memory
//! layout (from `build.rs`), the core clock, and a SysTick embassy-time driver. No output, no
//! application, no prefetch-batch.
#![no_std]

pub mod time_driver;

/// The core clock, which SysTick counts: 25 MHz on the mps2 boards, 16 MHz on the micro:bit.
#[cfg(board = "mps2")]
pub const CORE_HZ: u32 = 25_000_000;
#[cfg(board = "microbit")]
pub const CORE_HZ: u32 = 16_000_000;
