//! Every emission reason on the crate's own virtual clock, scenario by scenario.
mod common;

use common::scenarios;

macro_rules! on_manual_clock {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let clock = common::clock();
            clock.block_on(scenarios::$name(clock));
        }
    )*};
}

on_manual_clock!(
    full_then_end,
    max_items,
    deadline_from_first_item,
    no_stale_timer,
    idle_gap,
    idle_zero,
    flush,
    close,
    close_when_idle,
    error,
    weight,
    ready_batch_keeps_filling,
);
