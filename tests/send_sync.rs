//! Which public types cross threads: static assertions, checked at compile time.
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use prefetch_batch::timer::ManualClock;
use prefetch_batch::{BatchGuard, Config, Receiver, Slot, testing};

fn send<T: Send>(_: &T) {}
fn sync<T: Sync>(_: &T) {}

type CsSlot = Slot<CriticalSectionRawMutex, u32, 4, &'static ManualClock>;

#[test]
fn a_slot_behind_a_thread_safe_lock_is_sync_and_its_halves_are_send() {
    static CLOCK: ManualClock = ManualClock::new();
    static SLOT: CsSlot = Slot::new(&CLOCK);
    sync(&SLOT);
    sync(&CLOCK);
    let (producer, rx) = SLOT.split(testing::iter(0..4u32), Config::new()).unwrap();
    send(&producer);
    send(&rx);
    fn guard_is_send<'a>(_: Option<BatchGuard<'a, u32, 4, CsSlot>>)
    where
        BatchGuard<'a, u32, 4, CsSlot>: Send + Sync,
    {
    }
    guard_is_send(None);
    fn receiver_is_send(_: Option<Receiver<&'static CsSlot>>)
    where
        Receiver<&'static CsSlot>: Send,
    {
    }
    receiver_is_send(None);
}

#[cfg(feature = "tokio")]
#[test]
fn the_tokio_adapter_is_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<prefetch_batch::PrefetchStream<u32, 4>>();
    both::<prefetch_batch::TryPrefetchStream<u32, 4, std::io::Error>>();
    both::<prefetch_batch::TokioSlot<u32, 4>>();
}
