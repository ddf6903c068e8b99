//! [`Config`]: the capacity and the limits that end a batch, checked once, up front.

use core::fmt;
use core::time::Duration;

use crate::policy::Limits;
use crate::timer::{Span, SpanOf, Timer};

/// Gives each item a weight (bytes, cost units) for [`Config::max_weight`].
///
/// Any `Fn(&T) -> usize` is a weigher. [`Unweighted`] is the default and costs nothing.
pub trait Weigher<T> {
    /// Whether items have weights at all. `false` only for [`Unweighted`], which lets the engine
    /// leave the weight arithmetic out of the build.
    const WEIGHS: bool = true;
    /// The weight of one item.
    fn weigh(&self, item: &T) -> usize;
}

/// The default weigher: items have no weight, batches end on count and time only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Unweighted;

impl<T> Weigher<T> for Unweighted {
    const WEIGHS: bool = false;
    fn weigh(&self, _: &T) -> usize {
        0
    }
}

impl<T, F: Fn(&T) -> usize> Weigher<T> for F {
    fn weigh(&self, item: &T) -> usize {
        self(item)
    }
}

/// Batches of up to `N` items, and when each is emitted. Built with chained setters.
///
/// The capacity `N` is part of the type (`Config::<64>::new()`, or inferred from where the
/// configuration goes), so no method that takes a configuration needs a turbofish. A batch is
/// emitted as soon as the first of these holds: it holds `max_items` items (default `N`); its
/// weight reached `max_weight`; `max_wait` passed since its first item was pulled; no item arrived
/// for `idle`; a flush was requested; the source ended or yielded an error; the batcher was
/// closed. See [`FlushReason`](crate::FlushReason).
///
/// Every method that takes a configuration checks it first ([`Config::validate`]); a `const`
/// configuration can be checked at compile time instead ([`Config::checked`]).
///
/// ```
/// use core::time::Duration;
/// use prefetch_batch::{Config, timer::ManualClock};
///
/// let config = Config::<128>::new()
///     .max_items(100)
///     .max_wait(Duration::from_millis(5))
///     .idle(Duration::from_millis(1))
///     .max_weight(64 * 1024, |msg: &Vec<u8>| msg.len());
/// assert!(config.validate::<&ManualClock>().is_ok());
/// ```
///
/// A capacity of zero does not compile:
///
/// ```compile_fail
/// let config = prefetch_batch::Config::<0>::new();
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Config<const N: usize, W = Unweighted> {
    pub(crate) max_items: Option<usize>,
    pub(crate) max_wait: Option<Duration>,
    pub(crate) idle: Option<Duration>,
    pub(crate) max_weight: Option<usize>,
    pub(crate) weigher: W,
}

impl<const N: usize> Default for Config<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, W> fmt::Debug for Config<N, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("capacity", &N)
            .field("max_items", &self.max_items)
            .field("max_wait", &self.max_wait)
            .field("idle", &self.idle)
            .field("max_weight", &self.max_weight)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl<const N: usize, W> defmt::Format for Config<N, W> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "Config {{ capacity: {}, max_items: {}, max_wait: {}, idle: {}, max_weight: {} }}",
            N,
            self.max_items,
            self.max_wait,
            self.idle,
            self.max_weight
        )
    }
}

impl<const N: usize> Config<N> {
    /// Batches of `N` items, no time limit, no weight limit.
    pub const fn new() -> Self {
        const { assert!(N > 0, "batch capacity N must be at least 1") };
        Self {
            max_items: None,
            max_wait: None,
            idle: None,
            max_weight: None,
            weigher: Unweighted,
        }
    }
}

impl<const N: usize, W> Config<N, W> {
    /// Emit once a batch holds this many items (1 to `N`; default `N`).
    pub const fn max_items(mut self, n: usize) -> Self {
        self.max_items = Some(n);
        self
    }

    /// Emit once this much time passed since the first item of the batch was pulled.
    ///
    /// This bounds the age of the oldest item when its batch becomes ready. The timer is armed by
    /// the first item of each batch, never for an empty batch.
    pub const fn max_wait(mut self, d: Duration) -> Self {
        self.max_wait = Some(d);
        self
    }

    /// Emit once no item arrived for this long. `Duration::ZERO` emits whatever has arrived as
    /// soon as the source has nothing more ready (like `ready_chunks`).
    pub const fn idle(mut self, d: Duration) -> Self {
        self.idle = Some(d);
        self
    }

    /// Emit once the batch's total weight reaches `limit`; an item that would push it past the
    /// limit starts the next batch, and an item heavier than `limit` is emitted alone.
    pub fn max_weight<W2>(self, limit: usize, weigher: W2) -> Config<N, W2> {
        Config {
            max_items: self.max_items,
            max_wait: self.max_wait,
            idle: self.idle,
            max_weight: Some(limit),
            weigher,
        }
    }

    /// Checks the limits against the capacity `N` and the range of the timer `Tm`.
    ///
    /// # Errors
    /// The first field that cannot work, as a [`ConfigError`].
    ///
    /// ```
    /// use prefetch_batch::{Config, ConfigError, timer::ManualClock};
    /// let config = Config::<64>::new().max_items(100);
    /// assert_eq!(
    ///     config.validate::<&ManualClock>(),
    ///     Err(ConfigError::MaxItemsAboveCapacity { max_items: 100, capacity: 64 })
    /// );
    /// ```
    pub fn validate<Tm: Timer>(&self) -> Result<(), ConfigError> {
        self.limits::<Tm>().map(|_| ())
    }

    /// [`Config::validate`] at compile time: build a `const` configuration with it, and a bad one
    /// fails the build instead of returning an error at run time (firmware then formats nothing).
    ///
    /// # Panics
    /// In a `const` item, a bad configuration is a compile error; elsewhere, a panic.
    ///
    /// ```
    /// use core::time::Duration;
    /// use prefetch_batch::{Config, timer::ManualClock};
    /// const CONFIG: Config<32> = Config::new().max_wait(Duration::from_millis(50)).checked::<&ManualClock>();
    /// # let _ = CONFIG;
    /// ```
    ///
    /// ```compile_fail
    /// use prefetch_batch::{Config, timer::ManualClock};
    /// const CONFIG: Config<32> = Config::new().max_items(64).checked::<&ManualClock>(); // 64 > N
    /// ```
    pub const fn checked<Tm: Timer>(self) -> Self {
        const fn le(a: Duration, b: Duration) -> bool {
            a.as_secs() < b.as_secs() || (a.as_secs() == b.as_secs() && a.subsec_nanos() <= b.subsec_nanos())
        }
        if let Some(n) = self.max_items {
            assert!(n > 0, "max_items must be at least 1");
            assert!(n <= N, "max_items must not exceed the batch capacity N");
        }
        if let Some(w) = self.max_weight {
            assert!(w > 0, "max_weight must be at least 1");
        }
        if let Some(d) = self.max_wait {
            assert!(!d.is_zero(), "max_wait must be greater than zero");
            assert!(
                le(d, Tm::MAX_DURATION),
                "max_wait is longer than the timer can represent"
            );
        }
        if let Some(d) = self.idle {
            assert!(le(d, Tm::MAX_DURATION), "idle is longer than the timer can represent");
        }
        self
    }

    /// The limits, converted to the timer's span.
    pub(crate) fn limits<Tm: Timer>(&self) -> Result<Limits<SpanOf<Tm>>, ConfigError> {
        let max_items = match self.max_items {
            None => N,
            Some(0) => return Err(ConfigError::MaxItemsZero),
            Some(n) if n > N => {
                return Err(ConfigError::MaxItemsAboveCapacity {
                    max_items: n,
                    capacity: N,
                });
            }
            Some(n) => n,
        };
        if self.max_weight == Some(0) {
            return Err(ConfigError::MaxWeightZero);
        }
        let span = |d: Duration| {
            if d <= Tm::MAX_DURATION {
                SpanOf::<Tm>::from_duration(d)
            } else {
                None
            }
        };
        let max_wait = match self.max_wait {
            Some(d) if d.is_zero() => return Err(ConfigError::MaxWaitZero),
            Some(d) => match span(d) {
                // `Limits` keeps a zero span for "none": a timer whose span rounded a non-zero
                // `max_wait` down to nothing (its `from_duration` should round up) is refused.
                Some(s) if s == SpanOf::<Tm>::ZERO => return Err(ConfigError::MaxWaitZero),
                Some(s) => Some(s),
                None => return Err(ConfigError::MaxWaitTooLong),
            },
            None => None,
        };
        let idle = match self.idle {
            Some(d) => Some(span(d).ok_or(ConfigError::IdleTooLong)?),
            None => None,
        };
        Ok(Limits::new(
            max_items,
            max_wait,
            idle,
            self.max_weight.unwrap_or(usize::MAX),
        ))
    }
}

/// A configuration that cannot work, named by its field. Returned before anything runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConfigError {
    /// `max_items` is zero.
    MaxItemsZero,
    /// `max_items` is above the batch capacity `N`.
    MaxItemsAboveCapacity {
        /// The requested `max_items`.
        max_items: usize,
        /// The capacity `N`.
        capacity: usize,
    },
    /// `max_weight` is zero.
    MaxWeightZero,
    /// `max_wait` is zero.
    MaxWaitZero,
    /// `max_wait` is longer than the timer can represent ([`Timer::MAX_DURATION`]).
    MaxWaitTooLong,
    /// `idle` is longer than the timer can represent ([`Timer::MAX_DURATION`]).
    IdleTooLong,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MaxItemsZero => write!(f, "max_items must be at least 1"),
            Self::MaxItemsAboveCapacity { max_items, capacity } => {
                write!(
                    f,
                    "max_items ({max_items}) must not exceed the batch capacity N ({capacity})"
                )
            }
            Self::MaxWeightZero => write!(f, "max_weight must be at least 1"),
            Self::MaxWaitZero => {
                write!(
                    f,
                    "max_wait must be greater than zero (to emit what is ready at once, use idle(Duration::ZERO))"
                )
            }
            Self::MaxWaitTooLong => write!(f, "max_wait is longer than the timer can represent"),
            Self::IdleTooLong => write!(f, "idle is longer than the timer can represent"),
        }
    }
}

impl core::error::Error for ConfigError {}

/// Why a slot could not be split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SplitError {
    /// The configuration cannot work.
    Config(ConfigError),
    /// The slot's earlier producer or receiver is still alive: one of each per slot at a time (a
    /// slot whose halves were both dropped can be split again).
    InUse,
}

impl From<ConfigError> for SplitError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => e.fmt(f),
            Self::InUse => write!(f, "the slot's earlier producer or receiver is still alive"),
        }
    }
}

impl core::error::Error for SplitError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Config(e) => Some(e),
            Self::InUse => None,
        }
    }
}
