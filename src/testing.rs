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

pub use crate::executor::join;
