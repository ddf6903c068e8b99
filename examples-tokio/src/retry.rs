//! Retrying with exponential backoff, for the database and for offset commits.

use std::future::Future;
use std::time::Duration;

use anyhow::Result;
use tokio::time::Instant;

/// How long to keep trying, and how long to wait between tries.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The first wait; each next one doubles, up to `max`.
    pub first: Duration,
    pub max: Duration,
    /// No new try starts later than this after the first one.
    pub give_up_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::from_millis(50),
            max: Duration::from_secs(2),
            give_up_after: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// Runs `attempt` until it succeeds, fails with an error `retriable` says no to, or the time
    /// is up. `on_error` sees every failure (for counters and logs), with whether it is retried.
    pub async fn run<T, F, Fut>(
        &self,
        mut attempt: F,
        retriable: impl Fn(&anyhow::Error) -> bool,
        mut on_error: impl FnMut(&anyhow::Error, Option<Duration>),
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let started = Instant::now();
        let mut delay = self.first;
        let mut tries = 0u32;
        loop {
            tries += 1;
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let retry = retriable(&e) && started.elapsed() + delay <= self.give_up_after;
                    on_error(&e, retry.then_some(delay));
                    if !retry {
                        return Err(if tries > 1 {
                            e.context(format!("gave up after {tries} tries in {:.1?}", started.elapsed()))
                        } else {
                            e
                        });
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.max);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_until_success_then_gives_up_on_time() {
        let b = Backoff {
            first: Duration::from_millis(10),
            max: Duration::from_millis(40),
            give_up_after: Duration::from_millis(100),
        };
        let mut n = 0;
        let mut seen = Vec::new();
        let v = b
            .run(
                || {
                    n += 1;
                    let ok = n >= 3;
                    async move { if ok { Ok(n) } else { Err(anyhow::anyhow!("down")) } }
                },
                |_| true,
                |_, d| seen.push(d),
            )
            .await
            .unwrap();
        assert_eq!(v, 3);
        assert_eq!(seen, [Some(Duration::from_millis(10)), Some(Duration::from_millis(20))]);

        // Always failing: waits 10, 20, 40, then 40 would pass 100 ms: gives up after 4 tries.
        let start = Instant::now();
        let err = b
            .run(|| async { Err::<(), _>(anyhow::anyhow!("down")) }, |_| true, |_, _| {})
            .await
            .unwrap_err();
        assert_eq!(start.elapsed(), Duration::from_millis(70));
        assert!(format!("{err:#}").contains("gave up after 4 tries"), "{err:#}");

        // Not retriable: one try.
        let err = b
            .run(|| async { Err::<(), _>(anyhow::anyhow!("bad")) }, |_| false, |_, _| {})
            .await
            .unwrap_err();
        assert_eq!(format!("{err:#}"), "bad");
    }
}
