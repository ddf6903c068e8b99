//! Property tests: random limits, arrival schedules, caller speeds, flushes and closes, checked on
//! the crate's virtual clock, tokio's paused clock and embassy's mock driver.
//!
//! `PROPTEST_CASES` sets the number of cases per runtime (default 2,000).
mod common;

use core::time::Duration;

use common::{Event, Plan, Seen, ms, run};
use prefetch_batch::timer::Timer;
use prefetch_batch::{Config, FlushReason, Stats};
use proptest::prelude::*;

const N: usize = 6;

#[derive(Debug, Clone)]
struct Case {
    max_items: usize,
    max_weight: Option<usize>,
    max_wait: u64,
    idle: Option<u64>,
    /// (gap before it in ms, weight, is an error)
    arrivals: Vec<(u64, usize, bool)>,
    process: u64,
    flush_at: Option<u64>,
    /// When to close, and whether to close at once or once the source is idle.
    close_at: Option<(u64, bool)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        1..=N,
        prop::option::of(1usize..12),
        1u64..20,
        prop::option::of(0u64..15),
    )
        .prop_flat_map(|(max_items, max_weight, max_wait, idle)| {
            let arrival = (
                prop_oneof![3 => Just(0u64), 2 => 0..max_wait, 1 => max_wait..4 * max_wait],
                1usize..8,
                prop::bool::weighted(0.05),
            );
            (
                prop::collection::vec(arrival, 0..60),
                prop_oneof![Just(0u64), 0..3 * max_wait],
                prop::option::of(0u64..200),
                prop::option::weighted(0.2, (0u64..300, any::<bool>())),
            )
                .prop_map(move |(arrivals, process, flush_at, close_at)| Case {
                    max_items,
                    max_weight,
                    max_wait,
                    idle,
                    arrivals,
                    process,
                    flush_at,
                    close_at,
                })
        })
}

fn events(c: &Case) -> Vec<Event<(u32, usize)>> {
    let mut t = 0;
    c.arrivals
        .iter()
        .enumerate()
        .map(|(i, &(gap, w, err))| {
            t += gap;
            if err {
                Event::Error(ms(t), "e")
            } else {
                Event::Item(ms(t), (i as u32, w))
            }
        })
        .collect()
}

async fn check<Tm: Timer>(timer: Tm, c: Case) {
    let mut config = Config::new().max_items(c.max_items).max_wait(ms(c.max_wait));
    if let Some(idle) = c.idle {
        config = config.idle(ms(idle));
    }
    let plan = Plan {
        process: ms(c.process),
        flush_at: c.flush_at.map(ms),
        close_at: c.close_at.filter(|c| !c.1).map(|c| ms(c.0)),
        close_when_idle_at: c.close_at.filter(|c| c.1).map(|c| ms(c.0)),
    };
    let (seen, stats) = match c.max_weight {
        None => run::<_, _, _, N>(timer, events(&c), config, plan).await,
        Some(limit) => {
            let config = config.max_weight(limit, |x: &(u32, usize)| x.1);
            run::<_, _, _, N>(timer, events(&c), config, plan).await
        }
    };
    verify(&c, &seen, &stats);
}

fn verify(c: &Case, seen: &[Seen<(u32, usize)>], stats: &Stats) {
    let input: Vec<(u32, usize)> = c
        .arrivals
        .iter()
        .enumerate()
        .filter(|(_, a)| !a.2)
        .map(|(i, a)| (i as u32, a.1))
        .collect();
    let delivered: Vec<(u32, usize)> = seen.iter().flat_map(|s| s.items.clone()).collect();
    // Exactly once, in order: all of the input, or (after a close) a prefix of it.
    if c.close_at.is_none() {
        assert_eq!(delivered, input, "every item once, in order");
    } else {
        assert_eq!(
            delivered[..],
            input[..delivered.len()],
            "a prefix of the input, in order"
        );
    }
    let errors = seen.iter().filter(|s| s.error.is_some()).count();
    if c.close_at.is_none() {
        assert_eq!(
            errors,
            c.arrivals.iter().filter(|a| a.2).count(),
            "every error delivered"
        );
    }
    assert_eq!(stats.items() as usize, delivered.len());
    for (k, s) in seen.iter().enumerate() {
        let Some(reason) = s.reason else { continue };
        let weight: usize = s.items.iter().map(|x| x.1).sum();
        assert!(!s.items.is_empty(), "no empty batch");
        assert!(s.items.len() <= c.max_items, "batch {k} over max_items");
        if let Some(limit) = c.max_weight {
            assert!(weight <= limit || s.items.len() == 1, "batch {k} over the weight limit");
        }
        match reason {
            FlushReason::Full => {
                let next = delivered.get(delivered.iter().position(|x| *x == s.items[0]).unwrap() + s.items.len());
                let full = s.items.len() == c.max_items
                    || c.max_weight
                        .is_some_and(|l| weight >= l || next.is_some_and(|n| weight + n.1 > l));
                assert!(full, "batch {k} says Full but is not: {s:?}");
            }
            FlushReason::Deadline => assert!(s.age >= ms(c.max_wait), "batch {k} emitted before its deadline"),
            FlushReason::Idle => assert!(c.idle.is_some(), "Idle without an idle limit"),
            FlushReason::Flush => assert!(c.flush_at.is_some(), "Flush never requested"),
            FlushReason::Close => assert!(c.close_at.is_some(), "Close never requested"),
            FlushReason::End | FlushReason::Error => {}
            other => panic!("a reason the model does not know: {other:?}"),
        }
        // A caller that keeps up gets every batch within max_wait of its first item.
        if c.process == 0 {
            assert!(s.age <= ms(c.max_wait), "batch {k} waited {:?} > max_wait", s.age);
        }
    }
    assert!(stats.max_age() >= seen.iter().map(|s| s.age).max().unwrap_or(Duration::ZERO));
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn on_manual_clock(c in case()) {
        let clock = common::clock();
        clock.block_on(check(clock, c));
    }
}

#[cfg(feature = "tokio")]
proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn on_tokio_paused_clock(c in case()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        rt.block_on(check(prefetch_batch::timer::TokioTimer, c));
    }
}

// The only test in this binary that touches embassy's global mock clock.
#[cfg(feature = "embassy")]
proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn on_embassy_mock_driver(c in case()) {
        common::block_on_mock(check(prefetch_batch::timer::EmbassyTimer, c));
    }
}
