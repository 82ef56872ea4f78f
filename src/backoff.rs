//! The reconnect schedule: when the next connection attempt may start.
//!
//! The rules, from gRPC's connection-backoff spec and the reconnect storms users report:
//!
//! - Delays are measured from the *start* of the previous attempt (gRPC), so a slow
//!   connect timeout does not add to the wait.
//! - The n-th consecutive failure waits `d = min(max, initial · multiplier^n)`, capped
//!   *before* jitter (otherwise every client converges on exactly `max`), then drawn
//!   uniformly from `[d·(1−jitter), d]`.
//! - Only a connection that lived at least `stable_after` resets the schedule; one that
//!   drops sooner (accept-then-close, accept-then-RST) is a flap and counts as a failure.
//! - After a stable connection drops, the first retry waits uniform `[0, initial]`, so a
//!   fleet that lost its server together spreads out instead of reconnecting in lockstep.
//!
//! [`Backoff`] is pure: the caller supplies the clock readings, and a seeded RNG makes
//! every schedule reproducible in tests.

use std::time::Duration;

use crate::error::Error;

/// Parameters of the schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffConfig {
    /// The first delay after a failure (must be > 0).
    pub initial: Duration,
    /// The cap on the delay before jitter (must be ≥ `initial`).
    pub max: Duration,
    /// Growth per consecutive failure (must be ≥ 1).
    pub multiplier: f64,
    /// Fraction of the delay that is random, in `[0, 1]`: the delay is uniform in
    /// `[d·(1−jitter), d]`.
    pub jitter: f64,
    /// A connection that lived this long resets the schedule; a shorter one is a flap.
    pub stable_after: Duration,
}

impl Default for BackoffConfig {
    /// The defaults: 100 ms doubling to 30 s, jitter 0.5, stable after 2 s.
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.5,
            stable_after: Duration::from_secs(2),
        }
    }
}

impl BackoffConfig {
    /// Checks the parameters up front (libzmq crashed on a zero interval).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] (EINVAL) for `initial` 0, `max < initial`, a multiplier
    /// below 1 or not finite, or a jitter outside `[0, 1]`.
    pub fn validate(&self) -> Result<(), Error> {
        if self.initial.is_zero() {
            return Err(Error::InvalidInput("backoff initial delay is 0"));
        }
        if self.max < self.initial {
            return Err(Error::InvalidInput("backoff max is below initial"));
        }
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            return Err(Error::InvalidInput("backoff multiplier must be >= 1"));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(Error::InvalidInput("backoff jitter must be in [0, 1]"));
        }
        Ok(())
    }
}

/// The schedule's state: how many attempts failed in a row.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    failures: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    /// A fresh schedule; `seed` fixes the jitter sequence (use different seeds per client).
    pub fn new(config: BackoffConfig, seed: u64) -> Self {
        Backoff {
            config,
            failures: 0,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The parameters.
    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }

    /// Consecutive failures (and flaps) so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The capped, un-jittered delay after `failures` consecutive failures (n ≥ 1).
    pub fn ceiling(&self, failures: u32) -> Duration {
        let c = &self.config;
        let exp = i32::try_from(failures.saturating_sub(1)).unwrap_or(i32::MAX);
        let d = c.initial.as_secs_f64() * c.multiplier.powi(exp);
        if d.is_finite() && d < c.max.as_secs_f64() {
            Duration::from_secs_f64(d)
        } else {
            c.max
        }
    }

    /// Records a failed attempt (or a flap) and returns how long after the *start* of that
    /// attempt the next one may start.
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let d = self.ceiling(self.failures);
        let low = d.mul_f64(1.0 - self.config.jitter);
        low + (d - low).mul_f64(self.rng.f64())
    }

    /// A connection ended after living `lived`. A stable one resets the schedule and returns
    /// the first retry's delay, uniform in `[0, initial]` from now. A flap counts as a
    /// failure: `None`, and the caller uses [`Backoff::next_delay`] from the attempt start.
    pub fn on_disconnect(&mut self, lived: Duration) -> Option<Duration> {
        if lived >= self.config.stable_after {
            self.failures = 0;
            Some(self.config.initial.mul_f64(self.rng.f64()))
        } else {
            None
        }
    }

    /// Forgets past failures (the network came back): the next delay starts from `initial`.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn config(jitter: f64) -> BackoffConfig {
        BackoffConfig {
            initial: ms(100),
            max: ms(3000),
            multiplier: 2.0,
            jitter,
            stable_after: ms(2000),
        }
    }

    #[test]
    fn without_jitter_the_delays_follow_the_formula_and_cap() {
        let mut b = Backoff::new(config(0.0), 1);
        let got: Vec<u64> = (0..8).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(got, [100, 200, 400, 800, 1600, 3000, 3000, 3000]);
    }

    #[test]
    fn jitter_stays_within_its_bounds_and_the_cap_comes_first() {
        for seed in 0..200 {
            let mut b = Backoff::new(config(0.5), seed);
            for n in 1..=12 {
                let d = b.ceiling(n);
                let got = b.next_delay();
                assert!(
                    got >= d.mul_f64(0.5) && got <= d,
                    "seed {seed} n {n}: {got:?} vs {d:?}"
                );
                assert!(got <= ms(3000));
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let mut a = Backoff::new(config(0.5), 42);
        let mut b = Backoff::new(config(0.5), 42);
        for _ in 0..20 {
            assert_eq!(a.next_delay(), b.next_delay());
        }
    }

    #[test]
    fn only_a_stable_connection_resets_the_schedule() {
        let mut b = Backoff::new(config(0.0), 7);
        b.next_delay();
        b.next_delay();
        assert_eq!(b.on_disconnect(ms(1999)), None, "a flap");
        assert_eq!(
            b.next_delay(),
            ms(400),
            "the flap counted as the third failure"
        );
        let first = b.on_disconnect(ms(2000)).unwrap();
        assert!(first <= ms(100));
        assert_eq!(b.next_delay(), ms(100), "the schedule starts over");
    }

    #[test]
    fn two_hundred_clients_that_lose_a_server_together_spread_out() {
        // Each client's first retry after a stable drop, then its first backoff.
        let firsts: Vec<Duration> = (0..200u64)
            .map(|seed| {
                Backoff::new(config(0.5), seed)
                    .on_disconnect(ms(60_000))
                    .unwrap()
            })
            .collect();
        // Uniform on [0, 100 ms]: every 10 ms bucket is hit, none holds a crowd.
        let mut buckets = [0u32; 10];
        for d in &firsts {
            buckets[(d.as_millis() as usize / 10).min(9)] += 1;
        }
        assert!(buckets.iter().all(|&n| n > 0 && n < 50), "{buckets:?}");
        let spread = firsts
            .iter()
            .max()
            .unwrap()
            .saturating_sub(*firsts.iter().min().unwrap());
        assert!(
            spread >= ms(50),
            "arrivals span at least half the window: {spread:?}"
        );
        // Without jitter every client would retry at the same instant.
        let lockstep: Vec<Duration> = (0..200u64)
            .map(|seed| Backoff::new(config(0.0), seed).next_delay())
            .collect();
        assert!(lockstep.iter().all(|&d| d == ms(100)));
    }

    #[test]
    fn bad_configs_are_einval() {
        let good = config(0.5);
        assert!(good.validate().is_ok());
        for bad in [
            BackoffConfig {
                initial: ms(0),
                ..good
            },
            BackoffConfig {
                max: ms(50),
                ..good
            },
            BackoffConfig {
                multiplier: 0.9,
                ..good
            },
            BackoffConfig {
                multiplier: f64::NAN,
                ..good
            },
            BackoffConfig {
                jitter: 1.5,
                ..good
            },
            BackoffConfig {
                jitter: -0.1,
                ..good
            },
        ] {
            assert_eq!(bad.validate().unwrap_err().errno(), libc::EINVAL, "{bad:?}");
        }
    }

    #[test]
    fn huge_failure_counts_saturate_at_max() {
        let b = Backoff::new(config(0.0), 1);
        assert_eq!(b.ceiling(u32::MAX), ms(3000));
        let b = Backoff::new(
            BackoffConfig {
                multiplier: 1.0,
                ..config(0.0)
            },
            1,
        );
        assert_eq!(b.ceiling(1000), ms(100));
    }
}
