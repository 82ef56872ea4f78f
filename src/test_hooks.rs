//! Named pause points that make races deterministic in tests (feature `test-hooks`, off by
//! default and never in the shipped library).
//!
//! The library calls [`pause`] at a racy point (`"io.before_write"`: after any poll, before
//! the write syscall). A test thread arms a name for itself with [`arm`], then calls into
//! the library; when it reaches that point it stops, the test sees [`Gate::wait_arrival`]
//! return, changes the world (fills the pipe, flips a disposition, lets a deadline pass),
//! and lets it go with [`Gate::release`]. Arming is per thread, so tests running in
//! parallel never catch each other's threads. Without the feature [`pause`] is empty.

#[cfg(feature = "test-hooks")]
use std::cell::RefCell;
#[cfg(feature = "test-hooks")]
use std::sync::{Arc, Condvar, Mutex};

/// Where the library may stop a thread that armed `name`; nothing without the feature.
#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub(crate) fn pause(_name: &'static str) {}

/// Where the library may stop a thread that armed `name`.
#[cfg(feature = "test-hooks")]
pub(crate) fn pause(name: &'static str) {
    let gate = ARMED.with(|armed| {
        let mut armed = armed.borrow_mut();
        let at = armed.iter().position(|a| a.name == name)?;
        if armed[at].skip > 0 {
            armed[at].skip -= 1;
            return None;
        }
        Some(armed.remove(at).gate)
    });
    if let Some(gate) = gate {
        gate.arrive_and_wait();
    }
}

#[cfg(feature = "test-hooks")]
struct Armed {
    name: &'static str,
    skip: usize,
    gate: Arc<Gate>,
}

#[cfg(feature = "test-hooks")]
thread_local! {
    static ARMED: RefCell<Vec<Armed>> = const { RefCell::new(Vec::new()) };
}

/// Arms `name` for the calling thread: its `skip + 1`-th arrival at that point stops until
/// the returned gate is released (earlier arrivals pass). Each arming stops once.
#[cfg(feature = "test-hooks")]
pub fn arm(name: &'static str, skip: usize) -> Arc<Gate> {
    let gate = Arc::new(Gate::default());
    ARMED.with(|armed| {
        armed.borrow_mut().push(Armed {
            name,
            skip,
            gate: Arc::clone(&gate),
        })
    });
    gate
}

/// The meeting point of one armed pause: the paused thread and the test.
#[cfg(feature = "test-hooks")]
#[derive(Default, Debug)]
pub struct Gate {
    /// (arrived, released)
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

#[cfg(feature = "test-hooks")]
impl Gate {
    fn arrive_and_wait(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = true;
        self.changed.notify_all();
        while !state.1 {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Blocks until the armed thread reached the pause point.
    pub fn wait_arrival(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while !state.0 {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Whether the armed thread reached the pause point (and still waits there, unless
    /// released).
    pub fn arrived(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    /// Lets the paused thread go on (or lets it pass without stopping if it has not
    /// arrived yet).
    pub fn release(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.1 = true;
        self.changed.notify_all();
    }
}
