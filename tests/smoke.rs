use core::time::Duration;
use prefetch_batch::{Config, FlushReason, for_each_batch, testing, timer::ManualClock};

#[test]
fn batches_everything_in_order() {
    static CLOCK: ManualClock = ManualClock::new();
    let clock = &CLOCK;
    let mut seen = Vec::new();
    let mut reasons = Vec::new();
    clock
        .block_on(for_each_batch::<_, _, _, 8, _>(
            testing::iter(0..20u32),
            Config::new().max_wait(Duration::from_millis(5)),
            clock,
            async |batch| {
                seen.extend_from_slice(&batch);
                reasons.push(batch.info().reason);
            },
        ))
        .unwrap();
    assert_eq!(seen, (0..20).collect::<Vec<_>>());
    assert_eq!(reasons, [FlushReason::Full, FlushReason::Full, FlushReason::End]);
}
