//! Small sources for tests and examples. No heap, no runtime.

use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::Stream;

/// A stream that yields every item of an iterator at once (always ready), then ends.
///
/// ```
/// let s = prefetch_batch::testing::iter([1, 2, 3]);
/// # let _ = s;
/// ```
pub fn iter<I: IntoIterator>(items: I) -> Iter<I::IntoIter> {
    Iter(items.into_iter())
}

/// The stream returned by [`iter`].
#[derive(Debug, Clone)]
#[must_use = "streams do nothing unless polled"]
pub struct Iter<I>(I);

impl<I> Iter<I> {
    /// The items not yielded yet.
    pub fn into_inner(self) -> I {
        self.0
    }
}

impl<I: Iterator + Unpin> Stream for Iter<I> {
    type Item = I::Item;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<I::Item>> {
        Poll::Ready(self.0.next())
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

/// Runs two futures in the current task until both complete, polling the first one first: a
/// producer and its consumer in one task, for tests and examples. (The one-task drivers of
/// [`BatchExt`](crate::BatchExt) and [`Slot::join`](crate::Slot::join) do this, and skip the
/// wake-ups between the halves.)
///
/// # Cancel safety
/// Dropping it drops both futures, as their own cancel safety says.
pub async fn join<A: core::future::Future<Output = ()>, B: core::future::Future<Output = ()>>(a: A, b: B) {
    let mut a = core::pin::pin!(a);
    let mut b = core::pin::pin!(b);
    let (mut a_done, mut b_done) = (false, false);
    core::future::poll_fn(|cx| {
        if !a_done {
            a_done = a.as_mut().poll(cx).is_ready();
        }
        if !b_done {
            b_done = b.as_mut().poll(cx).is_ready();
        }
        if a_done && b_done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}
