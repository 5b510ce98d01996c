//! Retry policy for durable jobs: exponential backoff with jitter, up to a limit of attempts.

use chrono::Duration;

/// What to do with a job whose attempt just failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Run again no earlier than `after` from now.
    RetryAfter(Duration),
    /// The attempts are used up: park the job in dead-letter for an operator to re-drive.
    DeadLetter,
}

/// Attempts a job gets unless whoever enqueues it says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;

/// Exponential backoff between attempts; each job carries its own limit of attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure; doubled after each further one.
    pub base_delay: Duration,
    /// Upper bound of the delay before jitter.
    pub max_delay: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base_delay: Duration::seconds(2),
            max_delay: Duration::minutes(10),
        }
    }
}

impl Backoff {
    /// Decides after the `attempts`-th of `max_attempts` failed. `jitter` is a sample from
    /// [0, 1) supplied by the caller: the delay is drawn from [delay/2, delay] ("equal
    /// jitter"), so retries of jobs that failed together spread out instead of hammering a
    /// dependency in step.
    pub fn after_failure(&self, attempts: u32, max_attempts: u32, jitter: f64) -> AfterFailure {
        if attempts >= max_attempts {
            return AfterFailure::DeadLetter;
        }
        let exponent = attempts.saturating_sub(1).min(30);
        let base_ms = self.base_delay.num_milliseconds().max(1);
        let capped_ms = base_ms
            .saturating_mul(1i64 << exponent)
            .min(self.max_delay.num_milliseconds().max(1));
        let jitter = jitter.clamp(0.0, 1.0);
        let half = capped_ms / 2;
        // Float only picks a point within the window; the bounds stay integral milliseconds.
        let spread = ((capped_ms - half) as f64 * jitter) as i64;
        AfterFailure::RetryAfter(Duration::milliseconds(half + spread.min(capped_ms - half)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy() -> Backoff {
        Backoff {
            base_delay: Duration::seconds(1),
            max_delay: Duration::seconds(30),
        }
    }

    #[test]
    fn doubles_until_the_cap_then_dead_letters() {
        let p = policy();
        let no_jitter: Vec<_> = (1..=5).map(|a| p.after_failure(a, 5, 0.0)).collect();
        assert_eq!(
            no_jitter,
            vec![
                AfterFailure::RetryAfter(Duration::milliseconds(500)),
                AfterFailure::RetryAfter(Duration::milliseconds(1000)),
                AfterFailure::RetryAfter(Duration::milliseconds(2000)),
                AfterFailure::RetryAfter(Duration::milliseconds(4000)),
                AfterFailure::DeadLetter,
            ]
        );
        assert_eq!(
            p.after_failure(40, 100, 0.0),
            AfterFailure::RetryAfter(Duration::seconds(15))
        );
    }

    proptest! {
        #[test]
        fn delay_stays_within_the_jitter_window(attempts in 1u32..64, jitter in 0.0f64..1.0) {
            match policy().after_failure(attempts, 64, jitter) {
                AfterFailure::RetryAfter(delay) => {
                    let full = (1000i64 << (attempts - 1).min(30)).min(30_000);
                    prop_assert!(delay.num_milliseconds() >= full / 2);
                    prop_assert!(delay.num_milliseconds() <= full);
                }
                AfterFailure::DeadLetter => prop_assert!(false, "dead-lettered before the limit"),
            }
        }
    }
}
