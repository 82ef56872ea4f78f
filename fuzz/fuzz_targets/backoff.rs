//! The backoff schedule's invariants for any valid configuration and seed: every delay is
//! within [d(1-jitter), d] of its capped ceiling d, never above max, and a stable drop's
//! first retry is within [0, initial].
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use resock::backoff::{Backoff, BackoffConfig};

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    initial_ms: u32,
    max_ms: u32,
    multiplier: f64,
    jitter: f64,
    stable_ms: u32,
    seed: u64,
    /// Connection lifetimes between failures (ms); each either a flap or a stable drop.
    lives: Vec<u32>,
}

fuzz_target!(|input: Input| {
    let config = BackoffConfig {
        initial: Duration::from_millis(input.initial_ms.into()),
        max: Duration::from_millis(input.max_ms.into()),
        multiplier: input.multiplier,
        jitter: input.jitter,
        stable_after: Duration::from_millis(input.stable_ms.into()),
    };
    if config.validate().is_err() {
        return;
    }
    let mut b = Backoff::new(config, input.seed);
    for life in input.lives.iter().take(64) {
        let n = b.failures() + 1;
        let ceiling = b.ceiling(n);
        let delay = b.next_delay();
        assert!(ceiling <= config.max);
        assert!(delay <= ceiling, "{delay:?} > {ceiling:?}");
        // mul_f64 rounds to nanoseconds: allow one.
        assert!(delay + Duration::from_nanos(1) >= ceiling.mul_f64(1.0 - config.jitter));
        let lived = Duration::from_millis((*life).into());
        match b.on_disconnect(lived) {
            Some(first) => {
                assert!(lived >= config.stable_after);
                assert!(first <= config.initial);
                assert_eq!(b.failures(), 0);
            }
            None => assert!(lived < config.stable_after),
        }
    }
});
