//! The Server: the seed's `accept` + `pthread_create` loop, made to survive the real world.
//!
//! Two ways to serve:
//!
//! - **A thread per connection** ([`Server::new`] with a [`Handler`]), as in the seed: the
//!   handler owns the connection until it returns. Threads are reused from a pool so short
//!   connections do not pay a thread creation each, and at most `max_connections` handlers
//!   run at once.
//! - **A thread per request** ([`Server::new_per_request`] with a [`RequestHandler`]), for
//!   keep-alive protocols: idle connections wait in epoll — one thread for all of them, a
//!   few hundred bytes each — and a pool of `pool_threads` threads runs the handler only
//!   when a connection is readable. The handler serves what is there and says whether to
//!   keep the connection (it is parked again) or close it.
//!
//! Defences against idle and hostile clients, in both modes: `defer_accept`
//! (TCP_DEFER_ACCEPT: a client that connects and says nothing reaches accept only after
//! the deferral), `idle_timeout` (SO_RCVTIMEO on accepted sockets, so a handler's read of a
//! silent client returns EAGAIN; a parked connection idle that long is closed), `max_per_peer`
//! connections from one IP address, and a policy at `max_connections` ([`AtCap`]): shed —
//! close the connection parked idle longest, or the newcomer — rather than leave clients
//! hanging in the kernel's queue with no answer; or wait, as before.
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
//! | stopped  | `stop`, from any thread or handler | the loop ends at once, even at the connection cap, and closes the listener and every parked connection; `join` |
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

mod requests;

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Connections accepted and taken in (handed to a handler, or parked per request);
    /// those refused at once by `max_per_peer` or shed as newcomers are not counted.
    pub accepted: u64,
    /// Handlers running (or queued for a pool thread) now.
    pub active: u64,
    /// The most handlers that ran (or were queued) at once.
    pub peak: u64,
    /// Connections closed without a handler (no thread could be started for them).
    pub rejected: u64,
    /// Episodes of fd or memory exhaustion (EMFILE, ENFILE, ENOBUFS, ENOMEM) in accept.
    pub emfile: u64,
    /// Other failed accepts (ECONNABORTED, EPROTO, network errors), all retried.
    pub accept_errors: u64,
    /// Handler threads that could not be created (EAGAIN: RLIMIT_NPROC or memory).
    pub spawn_failures: u64,
    /// Clients idle for `idle_timeout`: per request, parked connections closed after idling
    /// that long; per connection, handlers whose read through resock's calls timed out
    /// (SO_RCVTIMEO), counted once per connection.
    pub idle_closed: u64,
    /// Connections closed at once because their peer address had `max_per_peer` already.
    pub per_peer_rejected: u64,
    /// Connections closed at `max_connections` by the shed policy: the longest-idle parked
    /// one to make room, or the newcomer when none is parked.
    pub shed: u64,
    /// Connections parked now, idle in epoll between requests (per-request mode).
    pub parked: u64,
}

/// What the server does when `max_connections` connections are held. In C:
/// `RESOCK_AT_CAP_*`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AtCap {
    /// Keep accepting: close the connection parked idle longest to make room (per-request
    /// mode), or else the newcomer at once, so no client waits unanswered.
    #[default]
    Shed = 0,
    /// Stop accepting until a connection ends; new clients wait in the kernel's queue.
    Wait = 1,
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
    /// The most connections held at once (> 0): handlers running, plus connections
    /// parked in per-request mode. What happens at the cap: `at_cap`.
    pub max_connections: usize,
    /// TCP_NODELAY on accepted sockets.
    pub nodelay: bool,
    /// TCP_DEFER_ACCEPT (rounded up to whole seconds): a connection reaches accept once
    /// its first bytes arrived, or when this has passed (Linux then hands it over anyway):
    /// silent clients are delayed, not kept out — pair it with `idle_timeout`. For
    /// protocols where the client speaks first; TCP only.
    pub defer_accept: Option<Duration>,
    /// SO_RCVTIMEO on accepted sockets (at least 1 ms): a handler's read that waits this
    /// long for a single byte fails with EAGAIN. It bounds each wait, not a whole request:
    /// a client that drips bytes faster than this is not idle (cap such clients with
    /// `max_per_peer`). In per-request mode also how long a connection may stay parked.
    pub idle_timeout: Option<Duration>,
    /// The most connections held from one IP address (0: no limit); more are closed at
    /// once and counted.
    pub max_per_peer: usize,
    /// What to do at `max_connections`.
    pub at_cap: AtCap,
    /// Per-request mode: the threads that run handlers (> 0).
    pub pool_threads: usize,
}

impl ServerConfig {
    /// The defaults: the kernel's maximum backlog, 1024 connections, TCP_NODELAY, shed at
    /// the cap, 64 request threads, no idle timeout, no deferred accept, no per-peer cap.
    pub fn new(host: Option<&str>, port: &str) -> Self {
        ServerConfig {
            host: host.map(str::to_string),
            port: port.to_string(),
            backlog: 0,
            max_connections: 1024,
            nodelay: true,
            defer_accept: None,
            idle_timeout: None,
            max_per_peer: 0,
            at_cap: AtCap::Shed,
            pool_threads: 64,
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

/// What a per-request server does when a connection is readable. It runs on a pool thread
/// with the connection borrowed: serve what is there, then say whether to keep it.
pub trait RequestHandler: Send + Sync + 'static {
    /// Serves the request(s) waiting on `fd`; true keeps the connection (it is parked until
    /// it is readable again), false closes it.
    fn serve(&self, fd: BorrowedFd<'_>, peer: &SockAddr) -> bool;
}

impl<F: Fn(BorrowedFd<'_>, &SockAddr) -> bool + Send + Sync + 'static> RequestHandler for F {
    fn serve(&self, fd: BorrowedFd<'_>, peer: &SockAddr) -> bool {
        self(fd, peer)
    }
}

/// The application's side of a server: one of the two modes.
enum Serve {
    Connections(Box<dyn Handler>),
    Requests(Box<dyn RequestHandler>),
}

/// Accept backoff bounds for resource exhaustion (Go's net/http uses the same).
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Pool threads idle this long exit, so a burst's threads do not linger for ever.
const IDLE_EXIT: Duration = Duration::from_secs(10);

struct Job {
    fd: OwnedFd,
    peer: SockAddr,
    /// Per-request mode: the peer had shut its side down (EPOLLRDHUP) when the connection
    /// was dispatched, so a handler's "keep" holds only while unread data remains.
    peer_closed: bool,
}

/// A connection parked in epoll between requests.
struct Parked {
    fd: OwnedFd,
    peer: SockAddr,
    /// Tells this connection's epoll events from those of an earlier one on the same fd
    /// number.
    generation: u32,
    since: Instant,
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

/// The server's whole state, under one mutex: the lifecycle, the pool and the parked
/// connections.
#[derive(Default)]
struct PoolState {
    stopped: bool,
    accept_loop: AcceptLoop,
    jobs: VecDeque<Job>,
    idle: usize,
    /// Jobs queued or running.
    active: usize,
    /// Pool threads alive.
    threads: usize,
    /// Every pool thread not yet joined (finished ones are pruned as new ones start).
    workers: Vec<JoinHandle<()>>,
    /// Live connections per peer address (for `max_per_peer`).
    peers: HashMap<IpAddr, usize>,
    /// Per-request mode: connections idle in epoll, by fd, and in the order they parked.
    parked: HashMap<RawFd, Parked>,
    parked_order: BTreeSet<(Instant, RawFd)>,
    /// Per-request mode: present while the parking loop runs (a handler that keeps its
    /// connection may park it only then; the loop closes every parked one as it ends).
    parking: Option<requests::Parking>,
    /// Per-request mode, wait policy: the loop stopped accepting at the cap.
    accept_paused: bool,
    /// Per-request mode: the loop's sleep ends at a parked connection's idle deadline.
    loop_idle_timer: bool,
    next_generation: u32,
    /// The counters; `active` and `parked` are filled in when read.
    stats: AcceptStats,
}

impl PoolState {
    /// Connections held: jobs queued or running, and parked ones.
    fn held(&self) -> usize {
        self.active + self.parked.len()
    }

    /// Counts a new connection from `peer`; false (nothing counted) if it would be over
    /// `max_per_peer`.
    fn admit_peer(&mut self, peer: &SockAddr, max_per_peer: usize) -> bool {
        let Some(ip) = peer.as_socket().map(|a| a.ip()) else {
            return true;
        };
        let count = self.peers.entry(ip).or_insert(0);
        if max_per_peer > 0 && *count >= max_per_peer {
            if *count == 0 {
                self.peers.remove(&ip);
            }
            self.stats.per_peer_rejected += 1;
            return false;
        }
        *count += 1;
        true
    }

    /// A connection from `peer` is gone.
    fn release_peer(&mut self, peer: &SockAddr) {
        if let Some(ip) = peer.as_socket().map(|a| a.ip()) {
            self.release_ip(ip);
        }
    }

    fn release_ip(&mut self, ip: IpAddr) {
        if let Some(count) = self.peers.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                self.peers.remove(&ip);
            }
        }
    }

    fn park(&mut self, conn: Parked) {
        self.parked_order.insert((conn.since, conn.fd.as_raw_fd()));
        self.parked.insert(conn.fd.as_raw_fd(), conn);
    }

    /// Takes a parked connection out (to serve or to close it).
    fn unpark(&mut self, fd: RawFd) -> Option<Parked> {
        let conn = self.parked.remove(&fd)?;
        self.parked_order.remove(&(conn.since, fd));
        Some(conn)
    }
}

struct Shared {
    listener: Mutex<Option<OwnedFd>>,
    config: ServerConfig,
    serve: Serve,
    /// Signalled once by `stop`, never drained: the accept loop's poll sees it.
    stop_wake: Wake,
    /// Thread per connection: handlers whose read of their client timed out
    /// (`idle_timeout`), counted by the I/O layer (see [`serve_connection`]).
    idle_timeouts: AtomicU64,
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
    /// The server whose accept loop runs on this thread (a log callback there must not
    /// wait for the loop).
    static ACCEPTING: Cell<*const Shared> = const { Cell::new(std::ptr::null()) };
}

/// A listening server; see the module docs.
pub struct Server {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Held by the join that reaps the pool's threads.
    reaping: Mutex<()>,
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
    /// A thread-per-connection server: binds and listens now (so EADDRINUSE surfaces
    /// here, and port "0" is known), but accepts nothing until [`Server::run`] or
    /// [`Server::start`]. Each connection is handed to `handler` on a pool thread.
    ///
    /// # Errors
    ///
    /// EINVAL for `max_connections` or `pool_threads` 0; the bind/listen errors
    /// (EADDRINUSE, EACCES).
    pub fn new(config: ServerConfig, handler: impl Handler) -> Result<Server, Error> {
        Server::bind(config, Serve::Connections(Box::new(handler)))
    }

    /// A thread-per-request server (see the module docs): like [`Server::new`], but idle
    /// connections wait in epoll and `handler` runs on one of `pool_threads` threads each
    /// time a connection is readable.
    ///
    /// # Errors
    ///
    /// As [`Server::new`].
    pub fn new_per_request(
        config: ServerConfig,
        handler: impl RequestHandler,
    ) -> Result<Server, Error> {
        Server::bind(config, Serve::Requests(Box::new(handler)))
    }

    fn bind(config: ServerConfig, serve: Serve) -> Result<Server, Error> {
        if config.max_connections == 0 {
            return Err(Error::InvalidInput("max_connections is 0"));
        }
        if config.pool_threads == 0 {
            return Err(Error::InvalidInput("pool_threads is 0"));
        }
        // A socket timeout below the kernel's granularity would become 0: no timeout.
        if config
            .idle_timeout
            .is_some_and(|t| t < Duration::from_millis(1))
        {
            return Err(Error::InvalidInput("idle_timeout is below 1 ms"));
        }
        if config.defer_accept.is_some()
            && config
                .host
                .as_deref()
                .is_some_and(|h| net::unix_path(h).is_some())
        {
            return Err(Error::InvalidInput("defer_accept is for TCP servers"));
        }
        let listener = net::listen(config.host.as_deref(), &config.port, config.backlog)?;
        // Nonblocking: after poll says readable, accept must never block the loop (the
        // client may have reset in between).
        socket2::SockRef::from(&listener).set_nonblocking(true)?;
        if let Some(defer) = config.defer_accept {
            net::set_defer_accept(listener.as_fd(), defer)?;
        }
        Ok(Server {
            shared: Arc::new(Shared {
                listener: Mutex::new(Some(listener)),
                config,
                serve,
                stop_wake: Wake::new()?,
                idle_timeouts: AtomicU64::new(0),
                pool: Mutex::new(PoolState::default()),
                job_ready: Condvar::new(),
                changed: Condvar::new(),
                error_log: RateLimit::new(Duration::from_secs(1)),
            }),
            thread: Mutex::new(None),
            reaping: Mutex::new(()),
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
        // Held until the handle is stored, so a join that saw the loop end also joins its
        // thread.
        let mut slot = lock(&self.thread);
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
                *slot = Some(handle);
                Ok(())
            }
            Err(e) => {
                // A join that saw the loop claimed must hear that it never ran.
                lock(&self.shared.pool).accept_loop = AcceptLoop::NotStarted;
                self.shared.changed.notify_all();
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
    /// EDEADLK on the accept loop's own thread (a log callback there: the loop cannot end
    /// while its thread waits), and from one of this server's handlers with an unbounded
    /// grace (it would wait for itself).
    pub fn join(&self, grace: Duration) -> Result<usize, Error> {
        let deadline = wake::deadline_after(grace);
        let me = Arc::as_ptr(&self.shared);
        let in_handler = HANDLING.with(Cell::get) == me;
        if ACCEPTING.with(Cell::get) == me || in_handler && deadline.is_none() {
            return Err(Error::from_errno(libc::EDEADLK));
        }
        {
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
            if !pool.stopped {
                return Ok(0);
            }
        }
        // Idle workers leave at once after a stop; joining them means none outlives this.
        // One reaper at a time: a concurrent join returns only once they are all joined.
        let _reaping = lock(&self.reaping);
        let workers = std::mem::take(&mut lock(&self.shared.pool).workers);
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
            parked: pool.parked.len() as u64,
            idle_closed: pool.stats.idle_closed + self.shared.idle_timeouts.load(Ordering::Relaxed),
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
    ACCEPTING.with(|a| a.set(Arc::as_ptr(shared)));
    let result = match shared.serve {
        Serve::Connections(_) => accept_until_stopped(shared),
        Serve::Requests(_) => requests::park_until_stopped(shared),
    };
    ACCEPTING.with(|a| a.set(std::ptr::null()));
    crate::test_hooks::pause("server.loop_ending");
    // Close the listener at once: queued connections are reset and the port is free.
    lock(&shared.listener).take();
    lock(&shared.pool).accept_loop = AcceptLoop::Ended;
    shared.changed.notify_all();
    result
}

/// What became of a connection just accepted.
enum Admission {
    /// Take it in (counted against its peer's limit, options set).
    Admitted,
    /// Closed at once: over `max_per_peer`, or shed at the cap (counted).
    Refused,
}

/// Takes a new connection in, under the state lock: the per-peer limit, then the cap
/// (shedding the longest-parked connection, or the newcomer), then its socket options.
fn admit(shared: &Shared, pool: &mut PoolState, fd: &OwnedFd, peer: &SockAddr) -> Admission {
    if !pool.admit_peer(peer, shared.config.max_per_peer) {
        return Admission::Refused;
    }
    if pool.held() >= shared.config.max_connections {
        // Only the shed policy gets here: the wait policy accepts only below the cap.
        let oldest = pool.parked_order.first().map(|&(_, fd)| fd);
        match oldest.and_then(|fd| pool.unpark(fd)) {
            Some(idlest) => {
                pool.release_peer(&idlest.peer);
                pool.stats.shed += 1;
            }
            None => {
                pool.release_peer(peer);
                pool.stats.shed += 1;
                return Admission::Refused;
            }
        }
    }
    if shared.config.nodelay && (peer.is_ipv4() || peer.is_ipv6()) {
        let _ = net::set_nodelay(fd.as_fd(), true);
    }
    if let Some(idle) = shared.config.idle_timeout {
        let _ = socket2::SockRef::from(fd).set_read_timeout(Some(idle));
    }
    Admission::Admitted
}

/// The thread-per-connection accept loop.
fn accept_until_stopped(shared: &Arc<Shared>) -> Result<(), Error> {
    let Some(listen_fd) = lock(&shared.listener).as_ref().map(AsRawFd::as_raw_fd) else {
        return Ok(());
    };
    let mut backoff = Duration::ZERO;
    let mut in_episode = false;
    while !shared.is_stopped() {
        if shared.config.at_cap == AtCap::Wait && !wait_for_a_slot(shared) {
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
                let mut pool = lock(&shared.pool);
                if let Admission::Admitted = admit(shared, &mut pool, &fd, &peer) {
                    let job = Job {
                        fd,
                        peer,
                        peer_closed: false,
                    };
                    if !dispatch(shared, pool, job) {
                        backoff = next_backoff(backoff);
                    }
                }
            }
            Err(errno) => match on_accept_error(shared, errno, &mut in_episode) {
                AcceptError::Retry => {}
                AcceptError::BackOff => backoff = next_backoff(backoff),
                AcceptError::ListenerGone => break,
            },
        }
    }
    Ok(())
}

/// What the accept loops do after a failed accept.
enum AcceptError {
    /// A problem of one connection or of the network: accept again at once.
    Retry,
    /// Out of fds or memory, or unknown: back off (the connection stays queued, so a busy
    /// loop would burn a core).
    BackOff,
    /// EBADF, EINVAL, ENOTSOCK: the listener is gone; the loop ends.
    ListenerGone,
}

/// Counts and logs a failed accept and says what to do next.
fn on_accept_error(shared: &Shared, errno: i32, in_episode: &mut bool) -> AcceptError {
    match errno {
        errno if is_transient(errno) => {
            if !matches!(errno, libc::EINTR | libc::EAGAIN) {
                lock(&shared.pool).stats.accept_errors += 1;
            }
            AcceptError::Retry
        }
        libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM => {
            if !*in_episode {
                *in_episode = true;
                lock(&shared.pool).stats.emfile += 1;
            }
            if let Some(held) = shared.error_log.allow() {
                log(
                    Level::Warn,
                    format_args!(
                        "accept: out of fds or memory ({}); backing off ({held} similar held back)",
                        std::io::Error::from_raw_os_error(errno)
                    ),
                );
            }
            AcceptError::BackOff
        }
        libc::EBADF | libc::EINVAL | libc::ENOTSOCK => AcceptError::ListenerGone,
        errno => {
            lock(&shared.pool).stats.accept_errors += 1;
            if shared.error_log.allow().is_some() {
                log(
                    Level::Warn,
                    format_args!("accept: {}", std::io::Error::from_raw_os_error(errno)),
                );
            }
            AcceptError::BackOff
        }
    }
}

fn next_backoff(current: Duration) -> Duration {
    (current * 2).clamp(BACKOFF_MIN, BACKOFF_MAX)
}

/// Blocks while `max_connections` connections are held (the wait policy). False once
/// stopped.
fn wait_for_a_slot(shared: &Shared) -> bool {
    let mut pool = lock(&shared.pool);
    while pool.held() >= shared.config.max_connections && !pool.stopped {
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

/// Hands a connection (or, per request, a readable one) to an idle pool thread, or a new
/// one — in per-request mode only up to `pool_threads`, after which jobs wait in the
/// queue. False (the connection closed, counted) when no thread could be started.
///
/// Takes the state lock its caller holds, so a connection is counted as held without a
/// gap: between being admitted or unparked and being counted active, nobody sees it gone.
fn dispatch(shared: &Arc<Shared>, mut pool: MutexGuard<'_, PoolState>, job: Job) -> bool {
    pool.active += 1;
    pool.stats.accepted += u64::from(matches!(shared.serve, Serve::Connections(_)));
    pool.stats.peak = pool.stats.peak.max(pool.active as u64);
    let thread_cap = match shared.serve {
        Serve::Connections(_) => usize::MAX,
        Serve::Requests(_) => shared.config.pool_threads,
    };
    if pool.idle > pool.jobs.len() || pool.threads >= thread_cap {
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
            pool.threads += 1;
            pool.workers.retain(|w| !w.is_finished());
            pool.workers.push(handle);
            pool.jobs.push_back(job);
            shared.job_ready.notify_one();
            true
        }
        Err(e) => {
            pool.active -= 1;
            pool.stats.accepted -= u64::from(matches!(shared.serve, Serve::Connections(_)));
            pool.stats.rejected += 1;
            pool.stats.spawn_failures += 1;
            pool.release_peer(&job.peer);
            requests::wake_a_paused_loop(&pool);
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
    while let Some(job) = next_job(shared) {
        HANDLING.with(|h| h.set(shared));
        match &shared.serve {
            Serve::Connections(handler) => serve_connection(shared, handler.as_ref(), job),
            Serve::Requests(handler) => requests::serve_request(shared, handler.as_ref(), job),
        }
        HANDLING.with(|h| h.set(std::ptr::null()));
        {
            let mut pool = lock(&shared.pool);
            pool.active -= 1;
            requests::wake_a_paused_loop(&pool);
        }
        shared.changed.notify_all();
    }
    crate::test_hooks::pause("server.worker_exiting");
}

/// The next job for a pool thread; None once it idled out or the server stopped — then
/// the thread no longer counts (in the same critical section), so a job dispatched while
/// it leaves never waits for it.
fn next_job(shared: &Shared) -> Option<Job> {
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
    if job.is_none() {
        pool.threads -= 1;
    }
    job
}

/// Thread-per-connection: the handler owns the connection until it returns.
fn serve_connection(shared: &Shared, handler: &dyn Handler, job: Job) {
    let Job { fd, peer, .. } = job;
    let ip = peer.as_socket().map(|a| a.ip());
    // A handler's read that meets SO_RCVTIMEO (idle_timeout) counts its client as idle,
    // once, if the handler reads through resock's calls.
    let _watch = shared
        .config
        .idle_timeout
        .map(|_| crate::io::watch_read_timeout(fd.as_raw_fd(), &shared.idle_timeouts));
    // A panicking handler is contained: unwinding dropped (closed) its fd.
    if catch_unwind(AssertUnwindSafe(|| handler.handle(fd, peer))).is_err() {
        log(
            Level::Error,
            format_args!("a connection handler panicked; its connection was closed"),
        );
    }
    if let Some(ip) = ip {
        lock(&shared.pool).release_ip(ip);
    }
}
