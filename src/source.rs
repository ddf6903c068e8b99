//! The two kinds of source: plain and fallible.
//!
//! A plain `Stream<Item = T>` never fails ([`Plain`]). A `Stream<Item = Result<T, E>>` may
//! ([`Fallible<E>`]): an error ends the current batch and is delivered right after it. One set of
//! methods serves both: what a receiver hands out is [`Kind::Out`] of a batch, the batch itself
//! for a plain source and a `Result` for a fallible one (as futures' `TryStream` is a `Stream` of
//! `Result`s). The kind is chosen by the constructor ([`Slot::split`](crate::Slot::split) or
//! [`Slot::try_split`](crate::Slot::try_split), `for_each_batch` or `try_for_each_batch`, ...), so
//! code rarely names it.

use core::convert::Infallible;
use core::marker::PhantomData;

mod sealed {
    pub trait Sealed {}
}

/// A kind of source: [`Plain`] or [`Fallible`]. Sealed.
pub trait Kind: sealed::Sealed {
    /// The source's error: `Infallible` for a plain source.
    type Error;
    /// What the receiver hands out for an `X`: `X` itself, or `Result<X, Self::Error>`.
    type Out<X>;
    #[doc(hidden)]
    fn out<X>(r: Result<X, Self::Error>) -> Self::Out<X>;
}

/// How a kind splits one stream item into a value or an error. Sealed.
pub trait Split<I>: Kind {
    /// The value batched.
    type Item;
    #[doc(hidden)]
    fn split(item: I) -> Result<Self::Item, Self::Error>;
}

/// A plain source: every item is a value, and batches are handed out as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

/// A source of `Result<T, E>`: batches are handed out as `Ok`, and each error as `Err` right after
/// the batch of items that came before it.
#[derive(Debug)]
pub struct Fallible<E>(PhantomData<fn() -> E>);

impl sealed::Sealed for Plain {}
impl<E> sealed::Sealed for Fallible<E> {}

impl Kind for Plain {
    type Error = Infallible;
    type Out<X> = X;
    fn out<X>(r: Result<X, Infallible>) -> X {
        match r {
            Ok(x) => x,
            Err(never) => match never {},
        }
    }
}

impl<I> Split<I> for Plain {
    type Item = I;
    fn split(item: I) -> Result<I, Infallible> {
        Ok(item)
    }
}

impl<E> Kind for Fallible<E> {
    type Error = E;
    type Out<X> = Result<X, E>;
    fn out<X>(r: Result<X, E>) -> Result<X, E> {
        r
    }
}

impl<I: TryItem> Split<I> for Fallible<I::Err> {
    type Item = I::Ok;
    fn split(item: I) -> Result<I::Ok, I::Err> {
        item.into_result()
    }
}

/// An item that is a value or an error: `Result<T, E>`. Sealed. Lets methods name the value and
/// error types of a fallible stream's items without type parameters of their own.
pub trait TryItem: sealed::Sealed {
    /// The value.
    type Ok;
    /// The error.
    type Err;
    #[doc(hidden)]
    fn into_result(self) -> Result<Self::Ok, Self::Err>;
}

impl<T, E> sealed::Sealed for Result<T, E> {}

impl<T, E> TryItem for Result<T, E> {
    type Ok = T;
    type Err = E;
    fn into_result(self) -> Result<T, E> {
        self
    }
}
