//! The Server: the seed's `accept` + `pthread_create` loop, made to survive the real world.
//!
//! Each connection gets its own thread, as in the seed, but threads are reused from a pool
//! so short connections do not pay a thread creation each, and at most `max_connections`
//! handlers run at once: at the cap the loop stops accepting until one finishes (the kernel
//! queues the rest in the listen backlog) instead of spawning without bound.
//!
//! Accept errors are handled the way libuv's and nginx's histories taught: EINTR,
//! ECONNABORTED, EPROTO and Linux's pending network errors are retried at once; EMFILE,
//! ENFILE, ENOBUFS, ENOMEM and failed thread spawns back off 5 ms doubling to 1 s (a busy
//! loop there burns a core: the connection stays queued and poll keeps firing), are
//! counted, and are logged at a limited rate; every path loops back. EBADF and EINVAL mean
//! the listener is gone: the loop ends.
//!
//! # Lifecycle
//!
//! | state    | entered by                         | allowed                                    |
//! |----------|------------------------------------|--------------------------------------------|
//! | bound    | [`Server::new`] (listening now)    | `run` or `start` (once), `stop`, `join`, `local_port`, `stats` |
//! | running  | `run` (this thread) or `start` (a thread of its own) | `stop`, `join`, `stats` from any thread or handler; a second `run`/`start`: EBUSY |
//! | stopped  | `stop`, from any thread or handler | the loop ends at once, even at the connection cap, and closes the listener; `join` |
//!
//! Every state lives under one mutex, and [`Server::stop`] sets it under that mutex before it
//! wakes anyone, so no waiter can check "not stopped" and then sleep through the stop. The
//! accept loop also polls a stop fd that is never drained. [`Server::join`] waits for the
//! loop wherever it runs (`run` on another thread as well as `start`), then up to a grace
//! period for handlers; when none is left it also reaps the idle pool threads, so after a
//! join that returned 0 no thread of the server is left. Handlers that outlive a join keep
//! the server's memory alive until they return.
//!
//! # Example
//!
//! ```no_run
//! use std::os::fd::OwnedFd;
//! use resock::server::{Server, ServerConfig};
//! use resock::io::{write_full, Opts};
//!
//! let server = Server::new(ServerConfig::new(Some("127.0.0.1"), "0"), |fd: OwnedFd, _peer| {
//!     let _ = write_full(&fd, b"hello\n", &Opts::default());
//! })?;
//! println!("listening on {}", server.local_port()?);
//! server.run()?; // until server.stop() from another thread
//! # Ok::<(), resock::Error>(())
//! ```

use std::cell::Cell;
use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use socket2::SockAddr;

use crate::error::Error;
use crate::log::{Level, RateLimit, log};
use crate::net;
use crate::wake::{self, Wake, Woken};

/// A snapshot of a server's counters. In C: `resock_accept_stats`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AcceptStats {
    /// Connections accepted and handed to a handler.
    pub accepted: u64,
    /// Handlers running now.
    pub active: u64,
    /// The most handlers that ran at once.
    pub peak: u64,
    /// Connections closed without a handler (no thread could be started for them).
    pub rejected: u64,
    /// Episodes of fd or memory exhaustion (EMFILE, ENFILE, ENOBUFS, ENOMEM) in accept.
    pub emfile: u64,
    /// Other failed accepts (ECONNABORTED, EPROTO, network errors), all retried.
    pub accept_errors: u64,
    /// Handler threads that could not be created (EAGAIN: RLIMIT_NPROC or memory).
    pub spawn_failures: u64,
}

/// A server's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The address to listen on: None for all addresses, or a name, an IP literal, or
    /// `unix:/path`.
    pub host: Option<String>,
    /// The port ("0" picks a free one; see [`Server::local_port`]).
    pub port: String,
    /// The listen backlog; `<= 0` asks for the kernel's maximum (net.core.somaxconn).
    pub backlog: i32,
    /// The most handlers running at once (> 0); at the cap, accepting waits.
    pub max_connections: usize,
    /// TCP_NODELAY on accepted sockets.
    pub nodelay: bool,
}

impl ServerConfig {
    /// DESIGN §7's defaults: the kernel's maximum backlog, 1024 handlers, TCP_NODELAY.
    pub fn new(host: Option<&str>, port: &str) -> Self {
        ServerConfig {
            host: host.map(str::to_string),
            port: port.to_string(),
            backlog: 0,
            max_connections: 1024,
            nodelay: true,
        }
    }
}

/// What a server does with each connection. It runs on a pool thread; the fd is the
/// handler's (dropping it closes the connection), the peer address is the client's.
pub trait Handler: Send + Sync + 'static {
    /// Serves one connection.
    fn handle(&self, fd: OwnedFd, peer: SockAddr);
}

impl<F: Fn(OwnedFd, SockAddr) + Send + Sync + 'static> Handler for F {
    fn handle(&self, fd: OwnedFd, peer: SockAddr) {
        self(fd, peer)
    }
}

/// Accept backoff bounds for resource exhaustion (Go's net/http uses the same).
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Pool threads idle this long exit, so a burst's threads do not linger for ever.
const IDLE_EXIT: Duration = Duration::from_secs(10);

struct Job {
    fd: OwnedFd,
    peer: SockAddr,
}

/// Where the accept loop is.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum AcceptLoop {
    /// Neither `run` nor `start` was called.
    #[default]
    NotStarted,
    /// Running (or about to) in `run` or on the `start` thread.
    Running,
    /// Returned; the listener is closed.
    Ended,
}

/// The server's whole state, under one mutex: the lifecycle and the pool.
#[derive(Default)]
struct PoolState {
    stopped: bool,
    accept_loop: AcceptLoop,
    jobs: VecDeque<Job>,
    idle: usize,
    active: usize,
    /// Every pool thread not yet joined (finished ones are pruned as new ones start).
    workers: Vec<JoinHandle<()>>,
    /// The counters; `active` is filled in from the field above when read.
    stats: AcceptStats,
}

struct Shared {
    listener: Mutex<Option<OwnedFd>>,
    config: ServerConfig,
    handler: Box<dyn Handler>,
    /// Signalled once by `stop`, never drained: the accept loop's poll sees it.
    stop_wake: Wake,
    pool: Mutex<PoolState>,
    /// Signalled when a job is queued or the server stops (for idle workers).
    job_ready: Condvar,
    /// Signalled when a handler finishes, the loop ends or the server stops (for the cap
    /// and for join).
    changed: Condvar,
    error_log: RateLimit,
}

thread_local! {
    /// The server whose handler this thread is running (join from there would wait for
    /// itself).
    static HANDLING: Cell<*const Shared> = const { Cell::new(std::ptr::null()) };
}

/// A listening server; see the module docs.
pub struct Server {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.shared.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Server {
    /// Binds and listens now (so EADDRINUSE surfaces here, and port "0" is known), but
    /// accepts nothing until [`Server::run`] or [`Server::start`].
    ///
    /// # Errors
    ///
    /// EINVAL for `max_connections` 0; the bind/listen errors (EADDRINUSE, EACCES).
    pub fn new(config: ServerConfig, handler: impl Handler) -> Result<Server, Error> {
        if config.max_connections == 0 {
            return Err(Error::InvalidInput("max_connections is 0"));
        }
        let listener = net::listen(config.host.as_deref(), &config.port, config.backlog)?;
        // Nonblocking: after poll says readable, accept must never block the loop (the
        // client may have reset in between).
        socket2::SockRef::from(&listener).set_nonblocking(true)?;
        Ok(Server {
            shared: Arc::new(Shared {
                listener: Mutex::new(Some(listener)),
                config,
                handler: Box::new(handler),
                stop_wake: Wake::new()?,
                pool: Mutex::new(PoolState::default()),
                job_ready: Condvar::new(),
                changed: Condvar::new(),
                error_log: RateLimit::new(Duration::from_secs(1)),
            }),
            thread: Mutex::new(None),
        })
    }

    /// The port the server listens on (useful after port "0").
    ///
    /// # Errors
    ///
    /// EBADF once the server has stopped (the listener is closed); EINVAL for `unix:`.
    pub fn local_port(&self) -> Result<u16, Error> {
        let listener = lock(&self.shared.listener);
        match listener.as_ref() {
            Some(fd) => net::local_port(fd.as_fd()),
            None => Err(Error::from_errno(libc::EBADF)),
        }
    }

    /// Runs the accept loop on this thread until [`Server::stop`]; the listener is closed
    /// when it returns.
    ///
    /// # Errors
    ///
    /// EBUSY if the loop already runs (or ran); a poll error that cannot be retried.
    pub fn run(&self) -> Result<(), Error> {
        self.claim_the_loop()?;
        accept_loop(&self.shared)
    }

    /// Runs the accept loop on a thread of its own.
    ///
    /// # Errors
    ///
    /// EBUSY if the loop already runs (or ran); the thread creation error.
    pub fn start(&self) -> Result<(), Error> {
        self.claim_the_loop()?;
        let shared = self.shared.clone();
        let spawned = thread::Builder::new()
            .name("resock-accept".into())
            .spawn(move || {
                if let Err(e) = accept_loop(&shared) {
                    log(Level::Error, format_args!("the accept loop ended with {e}"));
                }
            });
        match spawned {
            Ok(handle) => {
                *lock(&self.thread) = Some(handle);
                Ok(())
            }
            Err(e) => {
                lock(&self.shared.pool).accept_loop = AcceptLoop::NotStarted;
                Err(e.into())
            }
        }
    }

    fn claim_the_loop(&self) -> Result<(), Error> {
        let mut pool = lock(&self.shared.pool);
        if pool.accept_loop != AcceptLoop::NotStarted {
            return Err(Error::from_errno(libc::EBUSY));
        }
        pool.accept_loop = AcceptLoop::Running;
        Ok(())
    }

    /// Stops accepting at once, from any thread (a handler too). Running handlers go on;
    /// [`Server::join`] waits for them.
    pub fn stop(&self) {
        self.shared.stop();
    }

    /// Waits for the accept loop to end (after [`Server::stop`]; wherever it runs) and then
    /// up to `grace` (`Duration::MAX`: for ever) for running handlers; returns how many are
    /// still running. Once the loop ended, the listener is closed and the port can be bound
    /// again; once no handler runs, the pool's threads are gone too.
    ///
    /// # Errors
    ///
    /// EDEADLK when called from one of this server's handlers with an unbounded grace (it
    /// would wait for itself).
    pub fn join(&self, grace: Duration) -> Result<usize, Error> {
        let deadline = wake::deadline_after(grace);
        let in_handler = HANDLING.with(Cell::get) == Arc::as_ptr(&self.shared);
        if in_handler && deadline.is_none() {
            return Err(Error::from_errno(libc::EDEADLK));
        }
        let mut pool = lock(&self.shared.pool);
        // The loop notices a stop at once; a join before any stop waits for one.
        while pool.accept_loop == AcceptLoop::Running {
            pool = wait(&self.shared.changed, pool, None);
        }
        while pool.active > 0 {
            if deadline.is_some_and(|d| d <= Instant::now()) {
                return Ok(pool.active);
            }
            pool = wait(&self.shared.changed, pool, deadline);
        }
        let workers = if pool.stopped {
            std::mem::take(&mut pool.workers)
        } else {
            Vec::new()
        };
        drop(pool);
        // Idle workers leave at once after a stop; joining them means none outlives this.
        for worker in workers {
            let _ = worker.join();
        }
        if let Some(handle) = lock(&self.thread).take() {
            let _ = handle.join();
        }
        Ok(0)
    }

    /// A consistent snapshot of the counters.
    pub fn stats(&self) -> AcceptStats {
        let pool = lock(&self.shared.pool);
        AcceptStats {
            active: pool.active as u64,
            ..pool.stats
        }
    }
}

impl Drop for Server {
    /// Stops accepting and waits for the accept loop; running handlers finish on their
    /// own (they hold their share of the server).
    fn drop(&mut self) {
        self.stop();
        let _ = self.join(Duration::ZERO);
    }
}

impl Shared {
    /// Marks the server stopped under the pool lock — the lock every waiter checks the flag
    /// under, so none can miss it — then wakes the loop's poll, the cap wait and idle
    /// workers.
    fn stop(&self) {
        lock(&self.pool).stopped = true;
        self.stop_wake.signal();
        self.changed.notify_all();
        self.job_ready.notify_all();
    }

    fn is_stopped(&self) -> bool {
        lock(&self.pool).stopped
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits on `cv` until notified or `deadline`, ignoring poisoning.
fn wait<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    deadline: Option<Instant>,
) -> MutexGuard<'a, T> {
    match deadline {
        None => cv.wait(guard).unwrap_or_else(|e| e.into_inner()),
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            cv.wait_timeout(guard, left)
                .unwrap_or_else(|e| e.into_inner())
                .0
        }
    }
}

/// Errors that concern one connection, or the network, not the listener: retry at once.
fn is_transient(errno: i32) -> bool {
    matches!(
        errno,
        libc::EINTR
            | libc::EAGAIN
            | libc::ECONNABORTED
            | libc::EPROTO
            | libc::ENETDOWN
            | libc::ENOPROTOOPT
            | libc::EHOSTDOWN
            | libc::ENONET
            | libc::EHOSTUNREACH
            | libc::EOPNOTSUPP
            | libc::ENETUNREACH
            | libc::ECONNRESET
    )
}

fn accept_loop(shared: &Arc<Shared>) -> Result<(), Error> {
    let result = accept_until_stopped(shared);
    crate::test_hooks::pause("server.loop_ending");
    // Close the listener at once: queued connections are reset and the port is free.
    lock(&shared.listener).take();
    lock(&shared.pool).accept_loop = AcceptLoop::Ended;
    shared.changed.notify_all();
    result
}

fn accept_until_stopped(shared: &Arc<Shared>) -> Result<(), Error> {
    let Some(listen_fd) = lock(&shared.listener).as_ref().map(AsRawFd::as_raw_fd) else {
        return Ok(());
    };
    let mut backoff = Duration::ZERO;
    let mut in_episode = false;
    while !shared.is_stopped() {
        if !wait_for_a_slot(shared) {
            break;
        }
        // In a backoff the listener stays readable (the connection is still queued): wait
        // out the timer on the wake fd alone, then try again.
        let woken = if backoff.is_zero() {
            wake::wait(Some(listen_fd), libc::POLLIN, &[&shared.stop_wake], None)?
        } else {
            let until = wake::deadline_after(backoff);
            wake::wait(None, 0, &[&shared.stop_wake], until)?
        };
        if woken == Woken::Wake {
            continue;
        }
        match accept(listen_fd) {
            Ok((fd, peer)) => {
                backoff = Duration::ZERO;
                in_episode = false;
                if shared.config.nodelay && (peer.is_ipv4() || peer.is_ipv6()) {
                    let _ = net::set_nodelay(fd.as_fd(), true);
                }
                if !dispatch(shared, Job { fd, peer }) {
                    backoff = next_backoff(backoff);
                }
            }
            Err(errno) if is_transient(errno) => {
                if !matches!(errno, libc::EINTR | libc::EAGAIN) {
                    lock(&shared.pool).stats.accept_errors += 1;
                }
            }
            Err(errno @ (libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)) => {
                if !in_episode {
                    in_episode = true;
                    lock(&shared.pool).stats.emfile += 1;
                }
                backoff = next_backoff(backoff);
                if let Some(held) = shared.error_log.allow() {
                    log(
                        Level::Warn,
                        format_args!(
                            "accept: out of fds or memory ({}); retrying in {} ms ({held} similar held back)",
                            std::io::Error::from_raw_os_error(errno),
                            backoff.as_millis()
                        ),
                    );
                }
            }
            Err(libc::EBADF | libc::EINVAL | libc::ENOTSOCK) => break,
            Err(errno) => {
                lock(&shared.pool).stats.accept_errors += 1;
                backoff = next_backoff(backoff);
                if shared.error_log.allow().is_some() {
                    log(
                        Level::Warn,
                        format_args!("accept: {}", std::io::Error::from_raw_os_error(errno)),
                    );
                }
            }
        }
    }
    Ok(())
}

fn next_backoff(current: Duration) -> Duration {
    (current * 2).clamp(BACKOFF_MIN, BACKOFF_MAX)
}

/// Blocks while `max_connections` handlers run. False once stopped.
fn wait_for_a_slot(shared: &Shared) -> bool {
    let mut pool = lock(&shared.pool);
    while pool.active >= shared.config.max_connections && !pool.stopped {
        // The racy window of a lost stop: after the check, before the wait (the lock makes
        // it closed; the hook lets a test prove it).
        crate::test_hooks::pause("server.slot_wait");
        pool = wait(&shared.changed, pool, None);
    }
    !pool.stopped
}

/// accept4 with CLOEXEC: the new fd and the peer's address, or the errno.
fn accept(listen_fd: RawFd) -> Result<(OwnedFd, SockAddr), i32> {
    // SAFETY: accept4 fills at most `len` bytes of a zeroed sockaddr_storage.
    unsafe {
        SockAddr::try_init(|storage, len| {
            let fd = libc::accept4(listen_fd, storage.cast(), len, libc::SOCK_CLOEXEC);
            if fd < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(OwnedFd::from_raw_fd(fd))
            }
        })
    }
    .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))
}

/// Hands a connection to an idle pool thread, or a new one. False (the connection closed,
/// counted) when no thread could be started.
fn dispatch(shared: &Arc<Shared>, job: Job) -> bool {
    let mut pool = lock(&shared.pool);
    pool.active += 1;
    pool.stats.accepted += 1;
    pool.stats.peak = pool.stats.peak.max(pool.active as u64);
    if pool.idle > pool.jobs.len() {
        pool.jobs.push_back(job);
        shared.job_ready.notify_one();
        return true;
    }
    let worker = {
        let shared = shared.clone();
        thread::Builder::new()
            .name("resock-handler".into())
            .spawn(move || worker(&shared))
    };
    match worker {
        Ok(handle) => {
            pool.workers.retain(|w| !w.is_finished());
            pool.workers.push(handle);
            pool.jobs.push_back(job);
            shared.job_ready.notify_one();
            true
        }
        Err(e) => {
            pool.active -= 1;
            pool.stats.accepted -= 1;
            pool.stats.rejected += 1;
            pool.stats.spawn_failures += 1;
            drop(pool);
            drop(job); // closes the connection: the client sees it at once
            if let Some(held) = shared.error_log.allow() {
                log(
                    Level::Warn,
                    format_args!(
                        "no thread for a connection ({e}); backing off ({held} similar held back)"
                    ),
                );
            }
            false
        }
    }
}

/// A pool thread: runs jobs until it has been idle for [`IDLE_EXIT`], or the server stopped
/// and no job waits.
fn worker(shared: &Shared) {
    loop {
        let job = {
            let mut pool = lock(&shared.pool);
            pool.idle += 1;
            let deadline = wake::deadline_after(IDLE_EXIT);
            let job = loop {
                if let Some(job) = pool.jobs.pop_front() {
                    break Some(job);
                }
                if pool.stopped || deadline.is_some_and(|d| d <= Instant::now()) {
                    break None;
                }
                crate::test_hooks::pause("server.worker_idle");
                pool = wait(&shared.job_ready, pool, deadline);
            };
            pool.idle -= 1;
            job
        };
        let Some(Job { fd, peer }) = job else {
            return;
        };
        // A panicking handler is contained: unwinding dropped (closed) its fd.
        HANDLING.with(|h| h.set(shared));
        let outcome = catch_unwind(AssertUnwindSafe(|| shared.handler.handle(fd, peer)));
        HANDLING.with(|h| h.set(std::ptr::null()));
        if outcome.is_err() {
            log(
                Level::Error,
                format_args!("a connection handler panicked; its connection was closed"),
            );
        }
        lock(&shared.pool).active -= 1;
        shared.changed.notify_all();
    }
}
