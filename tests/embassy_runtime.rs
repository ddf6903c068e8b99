//! Every emission reason on embassy-time, driven by its mock driver (virtual time).
//!
//! The mock driver is one global clock, so this file holds a single test that runs the
//! scenarios one after another.
#![cfg(feature = "embassy")]
mod common;

use common::scenarios;
use embassy_time::MockDriver;
use prefetch_batch::timer::EmbassyTimer;

#[test]
fn every_reason_on_embassy_mock_driver() {
    MockDriver::get().reset();
    common::block_on_mock(scenarios::every_reason(EmbassyTimer));
}
