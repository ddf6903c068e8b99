//! [`StdRawMutex`]: an embassy-sync `RawMutex` over `std::sync::Mutex` (feature `std`).
//!
//! For a slot shared between OS threads (tokio's multi-threaded runtime). Unlike
//! `CriticalSectionRawMutex` on std, which is one global lock for the whole process, each slot
//! gets its own lock, so independent batchers never contend.

use embassy_sync::blocking_mutex::raw::RawMutex;

/// A per-instance lock for [`Slot`](crate::Slot) on std.
#[derive(Debug, Default)]
pub struct StdRawMutex(std::sync::Mutex<()>);

impl StdRawMutex {
    /// An unlocked mutex.
    pub const fn new() -> Self {
        Self(std::sync::Mutex::new(()))
    }
}

// SAFETY: `lock` runs `f` only while holding the inner `std::sync::Mutex`, so two calls never
// overlap, on any thread. A poisoned lock is still a held lock: poisoning is ignored, since the
// data it protects lives outside and its consistency is the caller's (the slot's) concern.
unsafe impl RawMutex for StdRawMutex {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = Self::new();

    fn lock<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f()
    }
}
