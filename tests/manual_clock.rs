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

common::scenarios::each_scenario!(on_manual_clock);
