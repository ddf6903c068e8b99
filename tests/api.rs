//! The smaller public entry points, each used once the way a caller would.
mod common;

use common::{Event, Scripted, ms};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use futures_core::{FusedStream, Stream};
use prefetch_batch::executor::join;
use prefetch_batch::{Config, FlushReason, Slot, testing, try_for_each_batch};

fn next<S: Stream + Unpin>(s: &mut S) -> impl core::future::Future<Output = Option<S::Item>> + '_ {
    core::future::poll_fn(move |cx| core::pin::Pin::new(&mut *s).poll_next(cx))
}

#[test]
fn try_for_each_batch_gets_batches_and_errors_in_order() {
    let clock = common::clock();
    let ev = vec![
        Event::Item(ms(0), 1u32),
        Event::Error(ms(1), "bad"),
        Event::Item(ms(2), 2),
    ];
    let mut got = vec![];
    clock
        .block_on(try_for_each_batch::<_, _, _, _, _, 4, _>(
            Scripted::new(clock, ev),
            Config::new().max_wait(ms(10)),
            clock,
            async |r| got.push(r.map(|b| (b.to_vec(), b.info().reason))),
        ))
        .unwrap();
    assert_eq!(
        got,
        vec![
            Ok((vec![1], FlushReason::Error)),
            Err("bad"),
            Ok((vec![2], FlushReason::End))
        ]
    );
}

#[test]
fn receiver_is_a_fused_stream_of_owned_batches() {
    let clock = common::clock();
    let slot = Slot::<NoopRawMutex, u32, 3, _>::new(clock);
    let (producer, mut rx) = slot.split(testing::iter(0..7), Config::new()).unwrap();
    let mut got = vec![];
    clock.block_on(join(producer.run(), async {
        while let Some(batch) = next(&mut rx).await {
            got.push((batch.info.reason, batch.into_iter().collect::<Vec<_>>()));
        }
        assert!(rx.is_terminated());
        assert!(next(&mut rx).await.is_none(), "stays ended");
    }));
    use FlushReason::*;
    assert_eq!(got, vec![(Full, vec![0, 1, 2]), (Full, vec![3, 4, 5]), (End, vec![6])]);
}

#[test]
fn try_stream_and_guard_take() {
    let clock = common::clock();
    let slot = Slot::<NoopRawMutex, u32, 2, _, &str>::new(clock);
    let src = testing::iter([Ok(1), Ok(2), Ok(3), Err("x")]);
    let (producer, mut rx) = slot.try_split(src, Config::new()).unwrap();
    clock.block_on(join(producer.run(), async {
        let first = rx.try_next().await.unwrap().unwrap().take(); // moved out; the buffer goes back
        assert_eq!(
            (first.items.as_slice(), first.info.reason),
            (&[1, 2][..], FlushReason::Full)
        );
        let mut rest = rx.into_try_stream();
        let b = next(&mut rest).await.unwrap().unwrap();
        assert_eq!((b.items.as_slice(), b.info.reason), (&[3][..], FlushReason::Error));
        assert_eq!(next(&mut rest).await.unwrap().unwrap_err(), "x");
        assert!(next(&mut rest).await.is_none());
        assert!(rest.is_terminated());
    }));
}

#[test]
fn remainder_counts_and_debug_output() {
    let clock = common::clock();
    let slot = Slot::<NoopRawMutex, u32, 4, _>::new(clock);
    let (producer, mut rx) = slot.split(testing::iter(0..6), Config::new()).unwrap();
    clock.block_on(producer.run()); // fills [0..4] and [4, 5]; nobody takes them
    assert!(format!("{slot:?}").contains("capacity: 4"));
    let rest = rx.drain_remainder();
    assert_eq!((rest.len(), rest.size_hint()), (6, (6, Some(6))));
    assert_eq!(rest.collect::<Vec<_>>(), vec![0, 1, 2, 3, 4, 5]);
    assert!(slot.is_closed());
}
