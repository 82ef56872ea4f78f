//! Logging: silent by default; one sink for the whole library, set by the application.
//!
//! Reconnect loops fail often and for long (a server down for an hour), so their messages
//! go through a rate limit: one line per interval, with the number held back.

use std::cell::Cell;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How serious a message is. In C: `RESOCK_LOG_LEVEL_*`.
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

/// The current sink. A logging thread clones it under this lock, so once [`set_log`] has
/// swapped it no thread can pick up the old one; the clones left count the calls still in
/// (or about to enter) the old sink.
static SINK: Mutex<Option<Sink>> = Mutex::new(None);
/// Signalled whenever a logging thread drops its clone of a sink.
static SINK_RELEASED: Condvar = Condvar::new();

thread_local! {
    /// How many sink calls this thread is inside (a sink may log or call set_log itself).
    /// A Cell needs no destructor, so it works even in a C thread-exit destructor.
    static INSIDE: Cell<usize> = const { Cell::new(0) };
}

/// One call into a sink: holds the only reference the call needs and gives it back, also
/// on a panic, then passes through the lock set_log waits with before notifying: set_log
/// either sees the count drop when it checks, or is already waiting for the notify.
struct Call(Option<Sink>);

impl Call {
    fn enter(sink: Sink) -> Call {
        INSIDE.with(|inside| inside.set(inside.get() + 1));
        Call(Some(sink))
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        INSIDE.with(|inside| inside.set(inside.get() - 1));
        // Outside the lock: if this was the last reference, the sink is destroyed here.
        self.0 = None;
        drop(current());
        SINK_RELEASED.notify_all();
    }
}

fn current() -> MutexGuard<'static, Option<Sink>> {
    SINK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sends resock's log messages to `sink` (None: silence, the default). The sink runs on
/// whichever thread logs, with no resock lock held, so it may call back into resock.
///
/// When `set_log` returns, no thread is inside the old sink or will enter it: it waits for
/// calls in flight on other threads. Called from inside a sink it swaps and returns at
/// once: it cannot wait for its own call, and waiting for other threads there could
/// deadlock (one of them may be in a sink waiting for this one), so the old sink's data
/// must then outlive every call already in it.
pub fn set_log(sink: Option<LogSink>) {
    let sink: Option<Sink> = sink.map(Arc::from);
    let mut slot = current();
    let Some(old) = std::mem::replace(&mut *slot, sink) else {
        return;
    };
    if INSIDE.with(Cell::get) > 0 {
        return;
    }
    // Our `old` is the last reference once no call is in flight.
    while Arc::strong_count(&old) > 1 {
        slot = SINK_RELEASED.wait(slot).unwrap_or_else(|e| e.into_inner());
    }
}

/// Formats and delivers a message if a sink is set (nothing is formatted otherwise).
pub(crate) fn log(level: Level, args: fmt::Arguments<'_>) {
    let Some(sink) = current().clone() else {
        return;
    };
    crate::test_hooks::pause("log.before_call");
    let call = Call::enter(sink);
    if let Some(sink) = &call.0 {
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
