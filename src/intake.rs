//! How the producer takes items from its source: one at a time from any `Stream`, or many per
//! poll from a [`BulkSource`](crate::source::BulkSource) (bulk intake). The batching rules are
//! the same either way; only the cost per item differs.

use core::ops::ControlFlow;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::Stream;
use heapless::Vec;

use crate::slot::extend_until;
use crate::source::{Bulk, BulkSource, Fallible, Kind, Plain, TryItem};

/// How a fill ended.
#[derive(Debug)]
pub enum Burst<X> {
    /// The buffer reached the length the fill was allowed.
    Stop,
    /// The source gave something the general path handles (an error, the end, `Pending`).
    Other {
        /// Items were pushed before it.
        pushed: bool,
        /// What the source gave.
        next: Poll<Option<X>>,
    },
}

/// A source as the producer of kind `K` sees it. Implemented by the crate only: for every
/// `Stream` (kinds [`Plain`] and [`Fallible`]) and every [`BulkSource`] (kind [`Bulk`]).
pub trait Intake<K: Kind> {
    /// The value batched.
    type Item;
    /// A fill takes only what is ready at that instant (bulk intake): a batch may start with a
    /// fill, stamped when the fill returns. Otherwise each item may take its own time, so a
    /// batch's first item comes through `poll_item`, stamped when it is pulled.
    #[doc(hidden)]
    const STAMP_AFTER_FILL: bool = false;
    /// The next item or error, or the end.
    #[doc(hidden)]
    fn poll_item(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Self::Item, K::Error>>>;
    /// Appends ready items to `buf` until it holds `stop` items. With `each_take`, a bulk source
    /// returns [`Burst::Stop`] after each call that moved items (the producer then reads the clock
    /// once per call rather than once per item); a stream ignores it.
    #[doc(hidden)]
    fn poll_fill<const N: usize>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut Vec<Self::Item, N>,
        stop: usize,
        each_take: bool,
    ) -> Burst<Result<Self::Item, K::Error>>;
}

/// The per-item loop for streams. A function of its own, not inlined, on purpose: `buf` and
/// `source` are then distinct `&mut` arguments, so the compiler keeps the source's state in
/// registers for the whole burst (inlined into the producer, it stored it to memory on every
/// item, measured with callgrind on workload 1); [`extend_until`] keeps the length there too.
#[inline(never)]
fn fill_items<S: Stream, T, E, const N: usize>(
    mut source: Pin<&mut S>,
    split: impl Fn(S::Item) -> Result<T, E>,
    cx: &mut Context<'_>,
    buf: &mut Vec<T, N>,
    stop: usize,
) -> Burst<Result<T, E>> {
    let before = buf.len();
    let other = extend_until(buf, stop, || match source.as_mut().poll_next(cx) {
        Poll::Ready(Some(item)) => match split(item) {
            Ok(item) => ControlFlow::Continue(item),
            Err(error) => ControlFlow::Break(Poll::Ready(Some(Err(error)))),
        },
        Poll::Ready(None) => ControlFlow::Break(Poll::Ready(None)),
        Poll::Pending => ControlFlow::Break(Poll::Pending),
    });
    match other {
        None => Burst::Stop,
        Some(next) => Burst::Other {
            pushed: buf.len() > before,
            next,
        },
    }
}

impl<S: Stream> Intake<Plain> for S {
    type Item = S::Item;
    /// Not inlined on bare-metal targets: the stream's own code stays out of the producer's loop,
    /// which then keeps its state in registers (32 B less flash on thumbv7em, 88 B on thumbv6m,
    /// on the size budget's pair when it was measured).
    #[cfg_attr(target_os = "none", inline(never))]
    fn poll_item(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<S::Item, core::convert::Infallible>>> {
        self.poll_next(cx).map(|o| o.map(Ok))
    }
    fn poll_fill<const N: usize>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut Vec<S::Item, N>,
        stop: usize,
        _: bool,
    ) -> Burst<Result<S::Item, core::convert::Infallible>> {
        fill_items(self, Ok, cx, buf, stop)
    }
}

impl<S> Intake<Fallible<<S::Item as TryItem>::Err>> for S
where
    S: Stream,
    S::Item: TryItem,
{
    type Item = <S::Item as TryItem>::Ok;
    /// Not inlined on bare-metal targets, as for a plain stream.
    #[allow(clippy::type_complexity)]
    #[cfg_attr(target_os = "none", inline(never))]
    fn poll_item(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Self::Item, <S::Item as TryItem>::Err>>> {
        self.poll_next(cx).map(|o| o.map(TryItem::into_result))
    }
    #[allow(clippy::type_complexity)]
    fn poll_fill<const N: usize>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut Vec<Self::Item, N>,
        stop: usize,
        _: bool,
    ) -> Burst<Result<Self::Item, <S::Item as TryItem>::Err>> {
        fill_items(self, TryItem::into_result, cx, buf, stop)
    }
}

impl<B: BulkSource> Intake<Bulk> for B {
    type Item = B::Item;
    const STAMP_AFTER_FILL: bool = true;
    fn poll_item(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<B::Item, core::convert::Infallible>>> {
        let mut one: Vec<B::Item, 1> = Vec::new();
        match self.poll_extend(cx, &mut one, 1) {
            Poll::Ready(Some(_)) => Poll::Ready(one.pop().map(Ok)),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
    fn poll_fill<const N: usize>(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut Vec<B::Item, N>,
        stop: usize,
        each_take: bool,
    ) -> Burst<Result<B::Item, core::convert::Infallible>> {
        let mut pushed = false;
        loop {
            let before = buf.len();
            let next = match self.as_mut().poll_extend(cx, buf, stop) {
                Poll::Ready(Some(_)) if buf.len() > before => {
                    pushed = true;
                    if each_take || buf.len() >= stop {
                        return Burst::Stop;
                    }
                    // It took what was ready: ask again, so a `Pending` registers the waker.
                    continue;
                }
                // A source that says it moved items but did not (its contract says it never
                // does): look again on the next poll rather than spin or hang.
                Poll::Ready(Some(_)) => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            };
            return Burst::Other { pushed, next };
        }
    }
}
