//! Config validation: any configuration either builds a dialer or is rejected with EINVAL,
//! never panics, and is accepted exactly when the documented rules hold.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use resock::backoff::BackoffConfig;
use resock::dial::{DialConfig, Dialer};

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    host: String,
    port: String,
    connect_timeout_ms: Option<u32>,
    initial_ms: u32,
    max_ms: u32,
    multiplier: f64,
    jitter: f64,
}

fuzz_target!(|input: Input| {
    let config = DialConfig {
        host: input.host.clone(),
        port: input.port.clone(),
        connect_timeout: input
            .connect_timeout_ms
            .map(|ms| Duration::from_millis(ms.into())),
        backoff: BackoffConfig {
            initial: Duration::from_millis(input.initial_ms.into()),
            max: Duration::from_millis(input.max_ms.into()),
            multiplier: input.multiplier,
            jitter: input.jitter,
            ..BackoffConfig::default()
        },
        ..DialConfig::new("", "")
    };
    let valid = !input.host.is_empty()
        && (!input.port.is_empty() || input.host.starts_with("unix:"))
        && input.connect_timeout_ms != Some(0)
        && input.initial_ms > 0
        && input.max_ms >= input.initial_ms
        && input.multiplier.is_finite()
        && input.multiplier >= 1.0
        && (0.0..=1.0).contains(&input.jitter);
    match Dialer::new(config) {
        Ok(_) => assert!(valid, "{input:?} was accepted"),
        Err(e) => {
            assert!(
                !valid || e.errno() != libc::EINVAL,
                "{input:?} was refused: {e}"
            );
        }
    }
});
