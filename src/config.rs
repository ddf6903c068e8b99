//! [`Config`]: the limits that end a batch, checked once, up front.

use core::fmt;
use core::time::Duration;

use crate::policy::Limits;
use crate::timer::{Span, SpanOf, Timer};

/// Gives each item a weight (bytes, cost units) for [`Config::max_weight`].
///
/// Any `Fn(&T) -> usize` is a weigher. [`Unweighted`] is the default and costs nothing.
pub trait Weigher<T> {
    /// The weight of one item.
    fn weigh(&self, item: &T) -> usize;
}

/// The default weigher: items have no weight, batches end on count and time only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Unweighted;

impl<T> Weigher<T> for Unweighted {
    fn weigh(&self, _: &T) -> usize {
        0
    }
}

impl<T, F: Fn(&T) -> usize> Weigher<T> for F {
    fn weigh(&self, item: &T) -> usize {
        self(item)
    }
}

/// When a batch is emitted. Built with chained setters, checked by [`Config::validate`].
///
/// A batch of capacity `N` is emitted as soon as the first of these holds:
/// it holds `max_items` items (default `N`); its weight reached `max_weight`; `max_wait` passed
/// since its first item arrived; no item arrived for `idle`; a flush was requested; the source
/// ended or yielded an error; the batcher was closed. See [`FlushReason`](crate::FlushReason).
///
/// ```
/// use core::time::Duration;
/// use prefetch_batch::Config;
///
/// let config = Config::new()
///     .max_items(100)
///     .max_wait(Duration::from_millis(5))
///     .idle(Duration::from_millis(1))
///     .max_weight(64 * 1024, |msg: &Vec<u8>| msg.len());
/// type Clock = &'static prefetch_batch::timer::ManualClock;
/// assert!(config.validate::<128, Clock>().is_ok());
/// assert!(config.validate::<64, Clock>().is_err()); // max_items 100 > N = 64
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Config<W = Unweighted> {
    pub(crate) max_items: Option<usize>,
    pub(crate) max_wait: Option<Duration>,
    pub(crate) idle: Option<Duration>,
    pub(crate) max_weight: Option<usize>,
    pub(crate) weigher: W,
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl<W> fmt::Debug for Config<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("max_items", &self.max_items)
            .field("max_wait", &self.max_wait)
            .field("idle", &self.idle)
            .field("max_weight", &self.max_weight)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl<W> defmt::Format for Config<W> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "Config {{ max_items: {}, max_wait: {}, idle: {}, max_weight: {} }}",
            self.max_items,
            self.max_wait,
            self.idle,
            self.max_weight
        )
    }
}

impl Config {
    /// Batches of `N` items, no time limit, no weight limit.
    pub const fn new() -> Self {
        Self {
            max_items: None,
            max_wait: None,
            idle: None,
            max_weight: None,
            weigher: Unweighted,
        }
    }
}

impl<W> Config<W> {
    /// Emit once a batch holds this many items (1 to `N`; default `N`).
    pub const fn max_items(mut self, n: usize) -> Self {
        self.max_items = Some(n);
        self
    }

    /// Emit once this much time passed since the first item of the batch arrived.
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
    pub fn max_weight<W2>(self, limit: usize, weigher: W2) -> Config<W2> {
        Config {
            max_items: self.max_items,
            max_wait: self.max_wait,
            idle: self.idle,
            max_weight: Some(limit),
            weigher,
        }
    }

    /// Checks the limits for a batch capacity of `N` and a timer `Tm`.
    ///
    /// # Errors
    /// The first field that cannot work, as a [`ConfigError`].
    ///
    /// ```
    /// use prefetch_batch::{Config, ConfigError, timer::ManualClock};
    /// let config = Config::new().max_items(100);
    /// assert!(config.validate::<128, &ManualClock>().is_ok());
    /// assert_eq!(
    ///     config.validate::<64, &ManualClock>(),
    ///     Err(ConfigError::MaxItemsAboveCapacity { max_items: 100, capacity: 64 })
    /// );
    /// ```
    pub fn validate<const N: usize, Tm: Timer>(&self) -> Result<(), ConfigError> {
        self.limits::<N, Tm>().map(|_| ())
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
    /// const CONFIG: Config = Config::new().max_wait(Duration::from_millis(50)).checked::<32, &ManualClock>();
    /// # let _ = CONFIG;
    /// ```
    ///
    /// ```compile_fail
    /// use prefetch_batch::{Config, timer::ManualClock};
    /// const CONFIG: Config = Config::new().max_items(64).checked::<32, &ManualClock>(); // 64 > N
    /// ```
    pub const fn checked<const N: usize, Tm: Timer>(self) -> Self {
        const fn le(a: Duration, b: Duration) -> bool {
            a.as_secs() < b.as_secs() || (a.as_secs() == b.as_secs() && a.subsec_nanos() <= b.subsec_nanos())
        }
        assert!(N > 0, "batch capacity N must be at least 1");
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

    /// The limits for capacity `N`, converted to the timer's span.
    pub(crate) fn limits<const N: usize, Tm: Timer>(&self) -> Result<Limits<SpanOf<Tm>>, ConfigError> {
        if N == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
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
            Some(d) => Some(span(d).ok_or(ConfigError::MaxWaitTooLong)?),
            None => None,
        };
        let idle = match self.idle {
            Some(d) => Some(span(d).ok_or(ConfigError::IdleTooLong)?),
            None => None,
        };
        Ok(Limits {
            max_items,
            max_wait,
            idle,
            max_weight: self.max_weight,
        })
    }
}

/// A configuration that cannot work, named by its field. Returned before anything runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConfigError {
    /// The batch capacity `N` is zero.
    ZeroCapacity,
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
    /// The slot already has a producer or a receiver that is not gone: one of each per slot at a
    /// time (a slot whose halves were both dropped can be split again).
    SlotInUse,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroCapacity => write!(f, "batch capacity N must be at least 1"),
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
            Self::SlotInUse => write!(f, "slot already has a producer or a receiver (one of each per slot)"),
        }
    }
}

impl core::error::Error for ConfigError {}
