//! Logging: silent by default; one sink for the whole library, set by the application.
//!
//! Reconnect loops fail often and for long (a server down for an hour), so their messages
//! go through a rate limit: one line per interval, with the number held back.

use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How serious a message is. In C: `RESOCK_LEVEL_*`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed that the caller must know about.
    Error = 0,
    /// Something failed and resock is handling it (a refused connect, a flap).
    Warn = 1,
    /// A state change (connected, reconnecting).
    Info = 2,
}

/// A log sink: receives each message with its level.
pub type LogSink = Box<dyn Fn(Level, &str) + Send + Sync>;

type Sink = Arc<dyn Fn(Level, &str) + Send + Sync>;

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

/// Sends resock's log messages to `sink` (None: silence, the default). The sink runs on
/// whichever thread logs, with no resock lock held, so it may call back into resock.
pub fn set_log(sink: Option<LogSink>) {
    let sink: Option<Sink> = sink.map(Arc::from);
    *SINK.write().unwrap_or_else(|e| e.into_inner()) = sink;
}

/// Formats and delivers a message if a sink is set (nothing is formatted otherwise).
pub(crate) fn log(level: Level, args: fmt::Arguments<'_>) {
    let sink = SINK.read().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(sink) = sink {
        sink(level, &args.to_string());
    }
}

/// Lets one message through per interval and counts the ones held back.
#[derive(Debug)]
pub(crate) struct RateLimit {
    interval: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimit {
    pub(crate) const fn new(interval: Duration) -> Self {
        RateLimit {
            interval,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(held_back)` if a message may go out now (and how many were held back since
    /// the last one), `None` if this one is held back.
    pub(crate) fn allow(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < self.interval => {
                state.1 += 1;
                None
            }
            _ => {
                let held = state.1;
                *state = (Some(now), 0);
                Some(held)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_per_interval_with_the_count_held_back() {
        let limit = RateLimit::new(Duration::from_millis(50));
        assert_eq!(limit.allow(), Some(0));
        assert_eq!(limit.allow(), None);
        assert_eq!(limit.allow(), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(limit.allow(), Some(2));
    }
}
