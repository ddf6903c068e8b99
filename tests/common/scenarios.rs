//! Emission scenarios, each asserting exact batches, reasons and timestamps. Generic over the
//! timer so the same assertions run on every runtime.

use super::*;
use prefetch_batch::FlushReason::*;

fn items(ts: &[u64]) -> Vec<Event<u32>> {
    ts.iter().map(|&t| Event::Item(ms(t), t as u32)).collect()
}

/// Count limit, then the end of the source: the final partial batch is emitted once.
pub async fn full_then_end<Tm: Timer>(t: Tm) {
    let ev = (0..6).map(|i| Event::Item(ms(0), i)).collect();
    let (seen, stats) = run::<_, _, _, 4>(t, ev, Config::new(), Plan::default()).await;
    assert_eq!(
        shape(&seen),
        vec![(vec![0, 1, 2, 3], Some(Full)), (vec![4, 5], Some(End))]
    );
    assert_eq!(
        (stats.batches_for(Full), stats.batches_for(End), stats.items()),
        (1, 1, 6)
    );
}

/// `max_items` below N.
pub async fn max_items<Tm: Timer>(t: Tm) {
    let ev = (0..5).map(|i| Event::Item(ms(0), i)).collect();
    let (seen, _) = run::<_, _, _, 8>(t, ev, Config::new().max_items(2), Plan::default()).await;
    assert_eq!(
        shape(&seen),
        vec![(vec![0, 1], Some(Full)), (vec![2, 3], Some(Full)), (vec![4], Some(End))]
    );
}

/// The deadline counts from the first item of each batch, not from the start of the stream or
/// from the previous batch; no empty batch is emitted when the source ends with nothing pending.
pub async fn deadline_from_first_item<Tm: Timer>(t: Tm) {
    let mut ev = items(&[5, 9, 13, 17]);
    ev.push(Event::End(ms(40)));
    let (seen, stats) = run::<_, _, _, 8>(t, ev, Config::new().max_wait(ms(10)), Plan::default()).await;
    assert_eq!(
        shape(&seen),
        vec![(vec![5, 9, 13], Some(Deadline)), (vec![17], Some(Deadline))]
    );
    assert_eq!(
        (seen[0].first_at, seen[0].taken_at, seen[0].age),
        (ms(5), ms(15), ms(10))
    );
    assert_eq!((seen[1].first_at, seen[1].taken_at), (ms(17), ms(27)));
    assert_eq!(stats.max_age(), ms(10));
    assert_eq!(stats.total_batches(), 2, "no empty batch at the end");
}

/// A batch that filled before its deadline leaves no timer behind that could cut the next one.
pub async fn no_stale_timer<Tm: Timer>(t: Tm) {
    let ev = items(&[0, 1, 8, 15]);
    let (seen, _) = run::<_, _, _, 2>(t, ev, Config::new().max_wait(ms(10)), Plan::default()).await;
    // The first batch's deadline (10 ms) must not emit [8] alone.
    assert_eq!(shape(&seen), vec![(vec![0, 1], Some(Full)), (vec![8, 15], Some(Full))]);
    // A full batch goes out the moment it is full, not when the next item shows it is.
    assert_eq!((seen[0].taken_at, seen[1].taken_at), (ms(1), ms(15)));
}

/// Idle gap: emitted once no item arrived for `idle` since the last one.
pub async fn idle_gap<Tm: Timer>(t: Tm) {
    let mut ev = items(&[0, 1, 2, 20, 21]);
    ev.push(Event::End(ms(50)));
    let cfg = Config::new().max_wait(ms(100)).idle(ms(3));
    let (seen, stats) = run::<_, _, _, 8>(t, ev, cfg, Plan::default()).await;
    assert_eq!(
        shape(&seen),
        vec![(vec![0, 1, 2], Some(Idle)), (vec![20, 21], Some(Idle))]
    );
    assert_eq!((seen[0].taken_at, seen[1].taken_at), (ms(5), ms(24)));
    assert_eq!(stats.batches_for(Idle), 2);
}

/// `idle(0)`: whatever is ready is emitted as soon as the source has nothing more.
pub async fn idle_zero<Tm: Timer>(t: Tm) {
    let mut ev: Vec<_> = [0, 0, 0, 7, 7]
        .iter()
        .enumerate()
        .map(|(i, &at)| Event::Item(ms(at), i as u32))
        .collect();
    ev.push(Event::End(ms(20)));
    let (seen, _) = run::<_, _, _, 8>(t, ev, Config::new().idle(Duration::ZERO), Plan::default()).await;
    assert_eq!(
        shape(&seen),
        vec![(vec![0, 1, 2], Some(Idle)), (vec![3, 4], Some(Idle))]
    );
    assert_eq!((seen[0].taken_at, seen[1].taken_at), (ms(0), ms(7)));
}

/// A flush from another future emits the partial batch at once.
pub async fn flush<Tm: Timer>(t: Tm) {
    let ev = items(&[0, 1, 9]);
    let plan = Plan {
        flush_at: Some(ms(5)),
        ..Plan::default()
    };
    let (seen, _) = run::<_, _, _, 8>(t, ev, Config::new().max_wait(ms(100)), plan).await;
    assert_eq!(shape(&seen), vec![(vec![0, 1], Some(Flush)), (vec![9], Some(End))]);
    assert_eq!(seen[0].taken_at, ms(5));
}

/// A flush also stops a ready batch from taking items: the `Deadline` batch that waits for a busy
/// caller ends where the flush found it, and what arrives after the flush starts the next batch
/// (once the caller hands a buffer back: both are taken until then).
pub async fn flush_seals_a_ready_batch<Tm: Timer>(t: Tm) {
    let mut ev = items(&[0, 12, 24, 25, 32, 33]);
    ev.push(Event::End(ms(55)));
    let plan = Plan {
        process: ms(40),
        flush_at: Some(ms(30)),
        ..Plan::default()
    };
    let (seen, _) = run::<_, _, _, 8>(t, ev, Config::new().max_wait(ms(10)), plan).await;
    assert_eq!(
        shape(&seen),
        vec![
            (vec![0], Some(Deadline)),
            (vec![12, 24, 25], Some(Deadline)),
            (vec![32, 33], Some(End))
        ]
    );
}

/// Close: the partial batch is emitted at once (not after `max_wait`), intake stops, the stream
/// ends even though the source has more.
pub async fn close<Tm: Timer>(t: Tm) {
    let ev = items(&[0, 1, 10, 11]);
    let plan = Plan {
        close_at: Some(ms(5)),
        ..Plan::default()
    };
    let (seen, _) = run::<_, _, _, 8>(t, ev, Config::new().max_wait(ms(1000)), plan).await;
    assert_eq!(shape(&seen), vec![(vec![0, 1], Some(Close))]);
    assert_eq!(seen[0].taken_at, ms(5));
}

/// Close when idle: the backlog the source already holds is delivered, then the stream ends;
/// what arrives later stays in the source.
pub async fn close_when_idle<Tm: Timer>(t: Tm) {
    let ev = [0, 0, 0, 0, 0, 0, 3, 50]
        .iter()
        .enumerate()
        .map(|(i, &at)| Event::Item(ms(at), i as u32))
        .collect();
    let plan = Plan {
        close_when_idle_at: Some(ms(1)),
        ..Plan::default()
    };
    let (seen, _) = run::<_, _, _, 4>(t, ev, Config::new().max_wait(ms(1000)), plan).await;
    // At 1 ms the source holds nothing more: [4, 5] is emitted at once; 6 and 7 stay unread.
    assert_eq!(
        shape(&seen),
        vec![(vec![0, 1, 2, 3], Some(Full)), (vec![4, 5], Some(Close))]
    );
    assert_eq!(seen[1].taken_at, ms(1));
}

/// A source error ends the batch (items before it are delivered), then the error, then the rest.
pub async fn error<Tm: Timer>(t: Tm) {
    let ev = vec![
        Event::Item(ms(0), 1),
        Event::Item(ms(0), 2),
        Event::Error(ms(1), "boom"),
        Event::Error(ms(2), "again"),
        Event::Item(ms(3), 3),
    ];
    let (seen, stats) = run::<_, _, _, 8>(t, ev, Config::new().max_wait(ms(50)), Plan::default()).await;
    let got: Vec<_> = seen.iter().map(|s| (s.items.clone(), s.reason, s.error)).collect();
    assert_eq!(
        got,
        vec![
            (vec![1, 2], Some(Error), None),
            (vec![], None, Some("boom")),
            (vec![], None, Some("again")),
            (vec![3], Some(End), None),
        ]
    );
    assert_eq!(stats.errors(), 2);
}

/// Weight limit: a batch never exceeds it; an item heavier than the limit goes alone.
pub async fn weight<Tm: Timer>(t: Tm) {
    let ev = [3, 3, 3, 3, 1, 50, 2].iter().map(|&w| Event::Item(ms(0), w)).collect();
    let cfg = Config::new().max_weight(10, |x: &u32| *x as usize);
    let (seen, _) = run::<_, _, _, 8>(t, ev, cfg, Plan::default()).await;
    assert_eq!(
        shape(&seen),
        vec![
            (vec![3, 3, 3], Some(Full)),
            (vec![3, 1], Some(Full)),
            (vec![50], Some(Full)),
            (vec![2], Some(End))
        ]
    );
}

/// While the caller is busy, a batch that became ready by deadline keeps taking items up to its
/// limit, and is handed over whole when the caller asks.
pub async fn ready_batch_keeps_filling<Tm: Timer>(t: Tm) {
    // One item per ms; the caller holds each batch 30 ms.
    let ev = (0..40).map(|i| Event::Item(ms(i), i as u32)).collect();
    let plan = Plan {
        process: ms(30),
        ..Plan::default()
    };
    let (seen, _) = run::<_, _, _, 8>(t, ev, Config::new().max_wait(ms(5)), plan).await;
    let all: Vec<u32> = seen.iter().flat_map(|s| s.items.clone()).collect();
    assert_eq!(all, (0..40).collect::<Vec<_>>());
    // First batch: deadline at 5 ms with [0..=5], taken at once.
    assert_eq!(shape(&seen[..1]), vec![((0..=5).collect(), Some(Deadline))]);
    // Second: ready at 11 ms by deadline ([6..=11]), kept filling while the caller was busy
    // (12, 13) until full, handed over when the caller came back at 5 + 30 ms.
    assert_eq!(shape(&seen[1..2]), vec![((6..=13).collect(), Some(Deadline))]);
    assert_eq!(
        (seen[1].first_at, seen[1].taken_at, seen[1].age),
        (ms(6), ms(35), ms(29))
    );
}

/// Calls `$m!` with every scenario's name: the one list the runtime test files expand, so a new
/// scenario runs on every runtime.
macro_rules! each_scenario {
    ($m:ident) => {
        $m!(
            full_then_end,
            max_items,
            deadline_from_first_item,
            no_stale_timer,
            idle_gap,
            idle_zero,
            flush,
            flush_seals_a_ready_batch,
            close,
            close_when_idle,
            error,
            weight,
            ready_batch_keeps_filling,
        );
    };
}
#[allow(unused_imports)]
pub(crate) use each_scenario;

/// Every scenario in turn, on one timer (for runtimes whose clock is one global, like embassy's
/// mock driver).
pub async fn every_reason<Tm: Timer>(t: Tm) {
    macro_rules! run_all {
        ($($name:ident),* $(,)?) => {$(
            $name(t.clone()).await;
        )*};
    }
    each_scenario!(run_all);
}
