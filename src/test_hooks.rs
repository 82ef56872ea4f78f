//! Pause points that make race tests deterministic (the `test-hooks` cargo feature).
//!
//! A race test arms a named point, waits until a resock thread has arrived there, does
//! the racing call (a stop, a free, a new log sink) and then lets the thread go on. Each
//! named point in the library is the exact window a lifecycle bug lived in: after a state
//! check and before the wait that depends on it, inside a resolve, inside a log call.
//!
//! Points on hot paths that the threads of parallel tests also pass (the I/O loops'
//! `"io.next_syscall"` and `"io.before_write"`) are armed for one thread instead, with
//! [`arm_this_thread`]: only the arming thread stops there, at its chosen arrival.
//!
//! Without the feature, [`pause`] is an empty inline function: nothing of this module is in
//! the library that C programs link. With it, an unarmed point costs one mutex lock.
//!
//! ```ignore
//! let hook = resock::test_hooks::arm("server.slot_wait");
//! // ... make a resock thread reach the point ...
//! assert!(hook.wait_arrived(Duration::from_secs(10)));
//! // ... the racing call ...
//! hook.release();
//! ```

#[cfg(feature = "test-hooks")]
pub(crate) use armed::resolved;
#[cfg(feature = "test-hooks")]
pub use armed::{Hook, ResolveOverride, ThreadHook, arm, arm_this_thread, resolve_as};

/// Stops the calling thread here while a test holds the point `name` armed (only the first
/// thread that arrives is stopped; later ones pass).
#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub(crate) fn pause(_name: &'static str) {}

#[cfg(feature = "test-hooks")]
pub(crate) use armed::pause;

#[cfg(feature = "test-hooks")]
mod armed {
    use std::cell::RefCell;
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::{Duration, Instant};

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Point {
        /// Armed; no thread has arrived yet.
        Waiting,
        /// A thread is stopped at the point.
        Arrived,
        /// The test let it go (or the hook was dropped).
        Released,
    }

    static POINTS: Mutex<Vec<(&'static str, Point)>> = Mutex::new(Vec::new());
    static CHANGED: Condvar = Condvar::new();

    fn points() -> std::sync::MutexGuard<'static, Vec<(&'static str, Point)>> {
        POINTS.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state(list: &[(&'static str, Point)], name: &str) -> Option<Point> {
        list.iter().find(|(n, _)| *n == name).map(|&(_, p)| p)
    }

    fn set(list: &mut [(&'static str, Point)], name: &str, point: Point) {
        if let Some(entry) = list.iter_mut().find(|(n, _)| *n == name) {
            entry.1 = point;
        }
    }

    /// An armed pause point; dropping it releases a stopped thread and disarms the point.
    #[derive(Debug)]
    pub struct Hook {
        name: &'static str,
    }

    /// Arms the pause point `name`: the next thread that reaches it stops there until
    /// [`Hook::release`].
    ///
    /// # Panics
    ///
    /// If `name` is armed already (two tests racing for one point would prove nothing).
    pub fn arm(name: &'static str) -> Hook {
        let mut list = points();
        assert!(state(&list, name).is_none(), "{name} is armed twice");
        list.push((name, Point::Waiting));
        Hook { name }
    }

    impl Hook {
        /// Waits until a thread is stopped at the point; false if none arrived in `limit`.
        pub fn wait_arrived(&self, limit: Duration) -> bool {
            let deadline = Instant::now() + limit;
            let mut list = points();
            loop {
                if state(&list, self.name) == Some(Point::Arrived) {
                    return true;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return false;
                }
                list = CHANGED
                    .wait_timeout(list, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }

        /// Lets the stopped thread (if any) go on; later arrivals pass.
        pub fn release(&self) {
            set(&mut points(), self.name, Point::Released);
            CHANGED.notify_all();
        }
    }

    impl Drop for Hook {
        fn drop(&mut self) {
            points().retain(|(n, _)| *n != self.name);
            CHANGED.notify_all();
        }
    }

    /// A pause point armed for one thread by [`arm_this_thread`].
    #[derive(Debug, Default)]
    pub struct ThreadHook {
        /// (arrived, released)
        state: Mutex<(bool, bool)>,
        changed: Condvar,
    }

    impl ThreadHook {
        fn lock(&self) -> std::sync::MutexGuard<'_, (bool, bool)> {
            self.state.lock().unwrap_or_else(|e| e.into_inner())
        }

        /// Waits until the thread is stopped at the point; false if it did not arrive in
        /// `limit`.
        pub fn wait_arrived(&self, limit: Duration) -> bool {
            let deadline = Instant::now() + limit;
            let mut state = self.lock();
            while !state.0 {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return false;
                }
                state = self
                    .changed
                    .wait_timeout(state, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            true
        }

        /// Lets the thread go on (or pass without stopping if it has not arrived yet).
        pub fn release(&self) {
            self.lock().1 = true;
            self.changed.notify_all();
        }

        fn arrive_and_wait(&self) {
            let mut state = self.lock();
            state.0 = true;
            self.changed.notify_all();
            while !state.1 {
                state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        }
    }

    thread_local! {
        /// This thread's armed points: name, arrivals still to pass, the hook.
        static MINE: RefCell<Vec<(&'static str, usize, Arc<ThreadHook>)>> =
            const { RefCell::new(Vec::new()) };
    }

    /// Arms `name` for the calling thread only: its `skip + 1`-th arrival there stops until
    /// [`ThreadHook::release`]; other threads, and this one afterwards, pass.
    pub fn arm_this_thread(name: &'static str, skip: usize) -> Arc<ThreadHook> {
        let hook = Arc::new(ThreadHook::default());
        MINE.with(|mine| mine.borrow_mut().push((name, skip, Arc::clone(&hook))));
        hook
    }

    /// The hook this thread armed for `name`, if this arrival is the one to stop (none in a
    /// thread-exit destructor, where the list is gone).
    fn mine(name: &'static str) -> Option<Arc<ThreadHook>> {
        MINE.try_with(|mine| {
            let mut mine = mine.borrow_mut();
            let at = mine.iter().position(|(n, _, _)| *n == name)?;
            if mine[at].1 > 0 {
                mine[at].1 -= 1;
                return None;
            }
            Some(mine.remove(at).2)
        })
        .ok()
        .flatten()
    }

    static RESOLVE: Mutex<Vec<(String, Vec<std::net::SocketAddr>)>> = Mutex::new(Vec::new());

    fn overrides() -> std::sync::MutexGuard<'static, Vec<(String, Vec<std::net::SocketAddr>)>> {
        RESOLVE.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A name resolved by [`resolve_as`]; dropping it forgets the name.
    #[derive(Debug)]
    pub struct ResolveOverride {
        host: String,
    }

    impl Drop for ResolveOverride {
        fn drop(&mut self) {
            overrides().retain(|(h, _)| *h != self.host);
        }
    }

    /// Makes resock's connects resolve `host` to exactly `addrs`, in this order (ports
    /// included), until the override is dropped: a test can offer one address that
    /// black-holes and one that answers, in the families it needs.
    pub fn resolve_as(host: &str, addrs: Vec<std::net::SocketAddr>) -> ResolveOverride {
        overrides().push((host.to_string(), addrs));
        ResolveOverride {
            host: host.to_string(),
        }
    }

    /// The addresses a test chose for `host`, if any.
    pub(crate) fn resolved(host: &str) -> Option<Vec<std::net::SocketAddr>> {
        overrides()
            .iter()
            .find(|(h, _)| h == host)
            .map(|(_, a)| a.clone())
    }

    /// See the module docs.
    pub(crate) fn pause(name: &'static str) {
        if let Some(hook) = mine(name) {
            hook.arrive_and_wait();
            return;
        }
        let mut list = points();
        if state(&list, name) != Some(Point::Waiting) {
            return;
        }
        set(&mut list, name, Point::Arrived);
        CHANGED.notify_all();
        while state(&list, name) == Some(Point::Arrived) {
            list = CHANGED.wait(list).unwrap_or_else(|e| e.into_inner());
        }
    }
}
