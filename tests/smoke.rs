use core::time::Duration;
use prefetch_batch::{BatchExt, Config, FlushReason, testing, timer::ManualClock};

#[test]
fn batches_everything_in_order() {
    static CLOCK: ManualClock = ManualClock::new();
    let clock = &CLOCK;
    let mut seen = Vec::new();
    let mut reasons = Vec::new();
    clock
        .block_on(testing::iter(0..20u32).for_each_batch(
            Config::<8>::new().max_wait(Duration::from_millis(5)),
            clock,
            |batch| {
                seen.extend_from_slice(&batch);
                reasons.push(batch.info.reason);
                async {}
            },
        ))
        .unwrap();
    assert_eq!(seen, (0..20).collect::<Vec<_>>());
    assert_eq!(reasons, [FlushReason::Full, FlushReason::Full, FlushReason::End]);
}
