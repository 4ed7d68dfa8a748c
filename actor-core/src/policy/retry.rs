//! [`Retry`]: how many times an idempotent call is repeated, and how long to wait in between.

use std::time::Duration;

/// How often a failed call of an [`Idempotent`](super::Idempotent) message is repeated, and
/// the back-off between attempts.
///
/// The wait before the `n`-th retry (counting from 1) is capped at
/// `min(max_delay, base × 2^(n-1))`, its [`backoff`](Self::backoff); [`Jitter`] then picks
/// the actual delay below that cap, so that callers failing together do not retry together.
///
/// ```
/// use std::time::Duration;
/// use actor_core::policy::Retry;
///
/// let retry = Retry::exponential(4, Duration::from_millis(10), Duration::from_millis(50));
/// assert_eq!(retry.backoff(1), Duration::from_millis(10));
/// assert_eq!(retry.backoff(2), Duration::from_millis(20));
/// assert_eq!(retry.backoff(3), Duration::from_millis(40));
/// assert_eq!(retry.backoff(4), Duration::from_millis(50)); // capped
///
/// let jittered = retry.with_jitter();
/// assert!(jittered.delay(3) <= Duration::from_millis(40));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    max_retries: u32,
    base: Duration,
    max_delay: Duration,
    jitter: Jitter,
}

/// How a retry delay is drawn below its back-off cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// Exactly the cap: `delay = cap`. Deterministic; callers that fail together retry
    /// together.
    #[default]
    None,
    /// Uniform over the whole range: `delay ∈ [0, cap]`. Spreads retries the most.
    Full,
    /// Half fixed, half random: `delay ∈ [cap/2, cap]`. Keeps a minimum wait while still
    /// spreading retries.
    Equal,
}

impl Retry {
    /// Never retry: one attempt per call. The default.
    pub const fn none() -> Self {
        Self {
            max_retries: 0,
            base: Duration::ZERO,
            max_delay: Duration::ZERO,
            jitter: Jitter::None,
        }
    }

    /// Up to `max_retries` retries after the first attempt (so at most `max_retries + 1`
    /// attempts), waiting `base`, `2 × base`, `4 × base`, ... in between, never more than
    /// `max_delay`. No jitter until [`with_jitter`](Self::with_jitter) or
    /// [`with_equal_jitter`](Self::with_equal_jitter).
    pub const fn exponential(max_retries: u32, base: Duration, max_delay: Duration) -> Self {
        Self {
            max_retries,
            base,
            max_delay,
            jitter: Jitter::None,
        }
    }

    /// Draws each delay uniformly from `[0, cap]` ([`Jitter::Full`]).
    pub const fn with_jitter(self) -> Self {
        self.jitter(Jitter::Full)
    }

    /// Draws each delay uniformly from `[cap/2, cap]` ([`Jitter::Equal`]).
    pub const fn with_equal_jitter(self) -> Self {
        self.jitter(Jitter::Equal)
    }

    /// Uses `jitter` to draw each delay below its cap.
    pub const fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The most retries after the first attempt.
    pub const fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The cap on the delay before the `retry`-th retry (counting from 1; 0 reads as 1):
    /// `min(max_delay, base × 2^(retry-1))`, saturating instead of overflowing.
    pub fn backoff(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1);
        let grown = 2u32
            .checked_pow(doublings)
            .and_then(|factor| self.base.checked_mul(factor))
            .unwrap_or(self.max_delay);
        grown.min(self.max_delay)
    }

    /// The delay before the `retry`-th retry: [`backoff`](Self::backoff) with this policy's
    /// [`Jitter`] applied (a fresh random draw per call when jittered).
    pub fn delay(&self, retry: u32) -> Duration {
        let cap = self.backoff(retry);
        match self.jitter {
            Jitter::None => cap,
            Jitter::Full => random_up_to(cap),
            Jitter::Equal => {
                let half = cap / 2;
                half + random_up_to(cap - half)
            }
        }
    }
}

impl Default for Retry {
    fn default() -> Self {
        Self::none()
    }
}

/// A uniform draw from `[0, max]`, at nanosecond resolution.
fn random_up_to(max: Duration) -> Duration {
    // Back-off caps are far below the 584 years a u64 of nanoseconds holds; saturate anyway.
    let max_nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::random_range(0..=max_nanos))
}
