//! How a source's items split into values and errors.
//!
//! A plain `Stream<Item = T>` never fails ([`Plain`]); a `Stream<Item = Result<T, E>>` may
//! ([`Fallible`]): its error ends the current batch and is delivered right after it.

use core::convert::Infallible;

/// Splits a stream item into a value or an error. Implemented by [`Plain`] and [`Fallible`].
pub trait ItemKind<I> {
    /// The value batched.
    type Item;
    /// The error delivered after its batch.
    type Error;
    /// The stream item as the batcher hands it back: `I` for a plain stream, `Result<T, E>`.
    type Out;
    /// Splits one stream item.
    fn split(item: I) -> Result<Self::Item, Self::Error>;
    /// One stream item as [`ItemKind::Out`].
    fn out(item: I) -> Self::Out;
}

/// Items of a plain stream: every item is a value.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

impl<I> ItemKind<I> for Plain {
    type Item = I;
    type Error = Infallible;
    type Out = I;
    #[inline(always)]
    fn split(item: I) -> Result<I, Infallible> {
        Ok(item)
    }
    fn out(item: I) -> I {
        item
    }
}

/// Items of a stream of `Result<T, E>` (any [`TryItem`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Fallible;

impl<I: TryItem> ItemKind<I> for Fallible {
    type Item = I::Ok;
    type Error = I::Err;
    type Out = Result<I::Ok, I::Err>;
    #[inline(always)]
    fn split(item: I) -> Result<I::Ok, I::Err> {
        item.into_result()
    }
    fn out(item: I) -> Result<I::Ok, I::Err> {
        item.into_result()
    }
}

/// An item that is a value or an error; implemented for `Result<T, E>`. Lets APIs name the value
/// and error types of a fallible stream's items.
pub trait TryItem {
    /// The value.
    type Ok;
    /// The error.
    type Err;
    /// As a `Result`.
    fn into_result(self) -> Result<Self::Ok, Self::Err>;
}

impl<T, E> TryItem for Result<T, E> {
    type Ok = T;
    type Err = E;
    #[inline(always)]
    fn into_result(self) -> Result<T, E> {
        self
    }
}
