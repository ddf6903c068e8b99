//! Bytes as ops on a slot (arrivals, time jumps, flushes, closes, takes, hand-backs, a dropped
//! producer) with every property checked after each input; see `../interp.rs`.
#![no_main]

#[path = "../interp.rs"]
mod interp;

use critical_section as _; // links the std critical-section implementation

libfuzzer_sys::fuzz_target!(|data: &[u8]| interp::run(data));
