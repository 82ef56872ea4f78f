//! The Dialer: the seed's `goto next` reconnect loop, done right.
//!
//! The seed's client reconnects in a busy loop against a dead server and resets nothing
//! when a server accepts and drops at once. A [`Dialer`] waits out a [`Backoff`] schedule
//! between attempts (measured from each attempt's start), connects with a timeout, applies
//! the dead-peer options (TCP_NODELAY, keepalive, TCP_USER_TIMEOUT), and learns from
//! [`Dialer::hangup`] how long each connection lived, so accept-then-close flapping keeps
//! backing off. Every wait is a poll on a wake fd: [`Dialer::stop`] from any thread ends a
//! resolve, a connect or a backoff at once.
//!
//! # Lifecycle
//!
//! | state    | how it is entered                     | what may be called, from which thread   |
//! |----------|---------------------------------------|-----------------------------------------|
//! | ready    | [`Dialer::new`]; a dial returned      | `dial` (one thread at a time), `hangup`, `stop`, `reset`, `stats` (any thread) |
//! | dialing  | `dial` entered (backoff, resolve, connect) | `stop`, `reset`, `stats` from any thread; a second `dial` fails with EBUSY |
//! | stopped  | `stop` (final)                        | `dial` fails with ECANCELED at once; `hangup` still closes; `stats` |
//!
//! A stop is level-triggered (a wake fd that is never drained), so it reaches a dial that
//! is about to wait as surely as one that already waits. One dialer drives one reconnect
//! loop: concurrent `dial` calls would share one backoff schedule and one "connected at"
//! clock, so the second is refused with EBUSY rather than half supported. The dialer's
//! memory and wake fds live as long as the last reference: the C handle keeps a reference
//! for every call in flight, so freeing it while another thread is still inside `dial`
//! (after a stop) is safe.
//!
//! # Example
//!
//! ```no_run
//! use resock::dial::{DialConfig, Dialer};
//! use resock::io::{read_full, Opts};
//!
//! let dialer = Dialer::new(DialConfig::new("127.0.0.1", "7000"))?;
//! loop {
//!     let fd = dialer.dial()?; // waits out the backoff; Err(ECANCELED) once stopped
//!     let mut rec = [0u8; 64];
//!     while read_full(&fd, &mut rec, &Opts::default()).is_ok() {
//!         // handle the record
//!     }
//!     dialer.hangup(fd)?;
//! }
//! # Ok::<(), resock::Error>(())
//! ```

use std::os::fd::{AsFd, IntoRawFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::backoff::{Backoff, BackoffConfig};
use crate::error::Error;
use crate::log::{Level, RateLimit, log};
use crate::net::{self, Keepalive};
use crate::wake::{self, Wake, Woken};

/// Where a dialer or client is. In C: `RESOCK_STATE_*`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum State {
    /// Not dialing: before the first dial, or between a hangup and the next dial.
    #[default]
    Idle = 0,
    /// A connect is in progress.
    Connecting = 1,
    /// Connected; the fd is with the caller (or the client's session).
    Connected = 2,
    /// Waiting out the backoff before the next attempt.
    Backoff = 3,
    /// Stopped for good.
    Stopped = 4,
    /// Connected, the client's `on_connect` handshake running (clients only).
    Handshake = 5,
}

/// One state change or attempt of a dialer or client, as the client's `on_state` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateChange {
    /// The state entered.
    pub state: State,
    /// The attempt this is about, counted from 1 since the last healthy connection; for
    /// [`State::Backoff`], the attempt that starts once the delay is over.
    pub attempt: u32,
    /// [`State::Backoff`]: how long until the next attempt starts; zero otherwise.
    pub next_delay: Duration,
    /// Why: the failed attempt's or the ended connection's errno ([`State::Backoff`],
    /// [`State::Idle`]); 0 otherwise.
    pub errno: i32,
}

/// A snapshot of a dialer's or client's counters. In C: `resock_stats`.
///
/// Invariant: `attempts == connects + failures` (attempts cut short by a stop or a reset
/// are not counted).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Where it is now.
    pub state: State,
    /// Finished connection attempts.
    pub attempts: u64,
    /// Attempts that connected.
    pub connects: u64,
    /// Attempts that failed.
    pub failures: u64,
    /// Failures with ECONNREFUSED (nothing listening).
    pub refused: u64,
    /// Failures with ETIMEDOUT (no answer within the connect timeout).
    pub timeouts: u64,
    /// Connections that lived less than `stable_after_ms` (accept-then-close servers).
    pub flaps: u64,
    /// Connections that ended with an orderly EOF (client only).
    pub eofs: u64,
    /// Connections that ended with ECONNRESET (client only).
    pub resets: u64,
    /// The current backoff delay in milliseconds (0 when not backing off).
    pub backoff_ms: u64,
    /// The errno of the last failure (0 if none).
    pub last_errno: libc::c_int,
    /// Bytes read by the client's record loop (client only).
    pub bytes_in: u64,
    /// Bytes written by `send` (client only).
    pub bytes_out: u64,
}

/// How to reach the server and how to retry.
#[derive(Debug, Clone, PartialEq)]
pub struct DialConfig {
    /// A name, an IP literal, or `unix:/path`. Resolved again on every attempt.
    pub host: String,
    /// A port number or service name (ignored for `unix:` hosts).
    pub port: String,
    /// Limit for one attempt over all resolved addresses (None: the kernel's, ~2 min).
    pub connect_timeout: Option<Duration>,
    /// The reconnect schedule.
    pub backoff: BackoffConfig,
    /// Attempts one [`Dialer::dial`] makes before it gives up (0 = forever).
    pub max_attempts: u32,
    /// TCP_NODELAY on connected sockets.
    pub nodelay: bool,
    /// TCP keepalive on connected sockets (None = off).
    pub keepalive: Option<Keepalive>,
    /// TCP_USER_TIMEOUT on connected sockets (None = the kernel default).
    pub user_timeout: Option<Duration>,
    /// Seed of the jitter; None draws one at random (clients must not share a schedule).
    pub seed: Option<u64>,
}

impl DialConfig {
    /// The defaults for `host`:`port`: connect timeout 10 s, backoff 100 ms
    /// doubling to 30 s with jitter 0.5, stable after 2 s, TCP_NODELAY, keepalive 15/5/3,
    /// TCP_USER_TIMEOUT 30 s.
    pub fn new(host: &str, port: &str) -> Self {
        DialConfig {
            host: host.to_string(),
            port: port.to_string(),
            connect_timeout: Some(Duration::from_secs(10)),
            backoff: BackoffConfig::default(),
            max_attempts: 0,
            nodelay: true,
            keepalive: Some(Keepalive {
                idle: Duration::from_secs(15),
                interval: Duration::from_secs(5),
                count: 3,
            }),
            user_timeout: Some(Duration::from_secs(30)),
            seed: None,
        }
    }

    /// Checks the configuration up front.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] (EINVAL) for an empty host or port, a zero connect timeout,
    /// zero keepalive timings, or a bad backoff (see [`BackoffConfig::validate`]).
    pub fn validate(&self) -> Result<(), Error> {
        if self.host.is_empty() {
            return Err(Error::InvalidInput("empty host"));
        }
        if self.port.is_empty() && net::unix_path(&self.host).is_none() {
            return Err(Error::InvalidInput("empty port"));
        }
        if self.connect_timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::InvalidInput("connect timeout is 0"));
        }
        if let Some(k) = self.keepalive
            && (k.idle.is_zero() || k.interval.is_zero() || k.count == 0)
        {
            return Err(Error::InvalidInput("keepalive timings must be > 0"));
        }
        self.backoff.validate()
    }
}

struct Schedule {
    backoff: Backoff,
    /// When the next attempt may start (None: at once).
    next_attempt_at: Option<Instant>,
    /// When the last attempt started: flaps back off from there.
    last_attempt_start: Option<Instant>,
    /// When the current connection was made.
    connected_at: Option<Instant>,
    /// When its handshake accepted it: only from then on can it become healthy.
    accepted_at: Option<Instant>,
    /// The errno of the last failed attempt or ended connection, for the next Backoff.
    last_reason: i32,
}

/// Connects with backoff, and learns from each hangup; see the module docs.
///
/// All methods take `&self`: share a dialer between the thread that dials and the threads
/// that may stop or reset it.
pub struct Dialer {
    config: DialConfig,
    /// Signalled once by `stop` and never drained: every present and future wait sees it.
    stop_wake: Wake,
    stopped: AtomicBool,
    /// Signalled by `reset`; drained only by the one dialing thread.
    reset_wake: Wake,
    /// A dial is in progress (a second one is refused with EBUSY).
    dialing: AtomicBool,
    schedule: Mutex<Schedule>,
    stats: Mutex<Stats>,
    connect_log: RateLimit,
    flap_log: RateLimit,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialer")
            .field("host", &self.config.host)
            .field("port", &self.config.port)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Dialer {
    /// A dialer for `config`; no connection is made yet.
    ///
    /// # Errors
    ///
    /// EINVAL for a bad configuration (see [`DialConfig::validate`]); the eventfd error if
    /// the wake fd cannot be created (EMFILE).
    pub fn new(config: DialConfig) -> Result<Self, Error> {
        config.validate()?;
        let seed = config.seed.unwrap_or_else(|| fastrand::u64(..));
        Ok(Dialer {
            stop_wake: Wake::new()?,
            stopped: AtomicBool::new(false),
            reset_wake: Wake::new()?,
            dialing: AtomicBool::new(false),
            schedule: Mutex::new(Schedule {
                backoff: Backoff::new(config.backoff, seed),
                next_attempt_at: None,
                last_attempt_start: None,
                connected_at: None,
                accepted_at: None,
                last_reason: 0,
            }),
            stats: Mutex::new(Stats::default()),
            connect_log: RateLimit::new(Duration::from_secs(1)),
            flap_log: RateLimit::new(Duration::from_secs(1)),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DialConfig {
        &self.config
    }

    /// Waits out the backoff, then connects; repeats until a connection is made. The
    /// returned fd is the caller's; give it back with [`Dialer::hangup`] when the
    /// connection ends, so the dialer learns how long it lived.
    ///
    /// # Errors
    ///
    /// ECANCELED once [`Dialer::stop`] was called (also when it interrupts a resolve, a
    /// connect or a backoff wait); EBUSY while another thread is inside `dial` on this
    /// dialer; the last connect error when `max_attempts` attempts failed.
    pub fn dial(&self) -> Result<OwnedFd, Error> {
        self.dial_observed(false, &mut |_| {})
    }

    /// [`Dialer::dial`] that reports every state change and attempt to `observe` (on this
    /// thread, no lock held). With `handshake`, the connection counts as healthy only from
    /// [`Dialer::handshake_done`] on; without, from the connect.
    pub(crate) fn dial_observed(
        &self,
        handshake: bool,
        observe: &mut dyn FnMut(StateChange),
    ) -> Result<OwnedFd, Error> {
        if self.dialing.swap(true, Ordering::AcqRel) {
            return Err(Error::from_errno(libc::EBUSY));
        }
        /// Clears `dialing` however the dial ends, a panic included.
        struct Exclusive<'a>(&'a AtomicBool);
        impl Drop for Exclusive<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _exclusive = Exclusive(&self.dialing);
        // A reset made while nobody dialed is already in the schedule; its signal must not
        // cut this dial's first wait short.
        self.reset_wake.drain();
        self.dial_exclusive(handshake, observe)
    }

    /// The client's handshake accepted the connection: from now on it may become healthy.
    pub(crate) fn handshake_done(&self) {
        self.lock_schedule().accepted_at = Some(Instant::now());
        self.set_state(State::Connected);
    }

    /// The attempt number the next attempt will have, and the last failure's errno.
    fn next_attempt(&self) -> (u32, i32) {
        let schedule = self.lock_schedule();
        (
            schedule.backoff.failures().saturating_add(1),
            schedule.last_reason,
        )
    }

    /// [`Dialer::dial`] once this thread is the only one dialing.
    fn dial_exclusive(
        &self,
        handshake: bool,
        observe: &mut dyn FnMut(StateChange),
    ) -> Result<OwnedFd, Error> {
        let mut failed_here = 0u32;
        loop {
            if self.stopped.load(Ordering::Acquire) {
                self.set_state(State::Stopped);
                return Err(Error::from_errno(libc::ECANCELED));
            }
            let next = self.lock_schedule().next_attempt_at;
            if let Some(at) = next.filter(|&at| at > Instant::now()) {
                let delay = at.saturating_duration_since(Instant::now());
                self.update(|s| {
                    s.state = State::Backoff;
                    s.backoff_ms = delay.as_millis() as u64;
                });
                let (attempt, errno) = self.next_attempt();
                observe(StateChange {
                    state: State::Backoff,
                    attempt,
                    next_delay: delay,
                    errno,
                });
                let wakes = [&self.stop_wake, &self.reset_wake];
                if wake::wait(None, 0, &wakes, Some(at))? == Woken::Wake {
                    // A stop or a reset: both are re-read at the top of the loop.
                    crate::test_hooks::pause("dial.woken");
                    self.reset_wake.drain();
                    continue;
                }
            }
            self.set_state(State::Connecting);
            let (attempt, _) = self.next_attempt();
            observe(StateChange {
                state: State::Connecting,
                attempt,
                next_delay: Duration::ZERO,
                errno: 0,
            });
            let start = Instant::now();
            self.lock_schedule().last_attempt_start = Some(start);
            let result = net::connect_cancelable(
                &self.config.host,
                &self.config.port,
                self.config.connect_timeout,
                // Only a stop cuts a connect short: a reset means "try now", and one is
                // under way.
                &[&self.stop_wake],
            );
            match result {
                Ok(fd) => {
                    self.configure(&fd);
                    {
                        let mut schedule = self.lock_schedule();
                        let now = Instant::now();
                        schedule.connected_at = Some(now);
                        schedule.accepted_at = (!handshake).then_some(now);
                    }
                    let state = if handshake {
                        State::Handshake
                    } else {
                        State::Connected
                    };
                    self.update(|s| {
                        s.attempts += 1;
                        s.connects += 1;
                        s.backoff_ms = 0;
                        s.state = state;
                    });
                    observe(StateChange {
                        state,
                        attempt,
                        next_delay: Duration::ZERO,
                        errno: 0,
                    });
                    log(
                        Level::Info,
                        format_args!("connected to {}:{}", self.config.host, self.config.port),
                    );
                    return Ok(fd);
                }
                Err(e) if e.errno() == libc::ECANCELED => {
                    // Stopped: returned at the top, not counted.
                    crate::test_hooks::pause("dial.woken");
                }
                Err(e) => {
                    failed_here += 1;
                    let delay = {
                        let mut schedule = self.lock_schedule();
                        let delay = schedule.backoff.next_delay();
                        schedule.next_attempt_at = Some(start + delay);
                        schedule.last_reason = e.errno();
                        delay
                    };
                    let errno = e.errno();
                    self.update(|s| {
                        s.attempts += 1;
                        s.failures += 1;
                        s.refused += u64::from(errno == libc::ECONNREFUSED);
                        s.timeouts += u64::from(errno == libc::ETIMEDOUT);
                        s.last_errno = errno;
                    });
                    if let Some(held) = self.connect_log.allow() {
                        log(
                            Level::Warn,
                            format_args!(
                                "connect to {}:{} failed: {e}; next attempt in {} ms{}",
                                self.config.host,
                                self.config.port,
                                delay.as_millis(),
                                held_back(held)
                            ),
                        );
                    }
                    if self.config.max_attempts > 0 && failed_here >= self.config.max_attempts {
                        self.set_state(State::Idle);
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Closes `fd` (a connection from [`Dialer::dial`]) and notes how long it lived. One
    /// that lived at least `stable_after` resets the backoff, and the next dial waits
    /// uniform `[0, initial]`; a shorter one is a flap and the backoff keeps growing. (A
    /// client's connection counts from its handshake's acceptance instead, and one its
    /// handshake refused is always a flap.) Returns how long the connection lived.
    ///
    /// # Errors
    ///
    /// The close error (the fd is gone either way).
    pub fn hangup(&self, fd: OwnedFd) -> Result<Duration, Error> {
        self.hangup_with(fd, 0)
    }

    /// [`Dialer::hangup`] of a connection that ended with `errno` (reported with the
    /// next [`State::Backoff`]).
    pub(crate) fn hangup_with(&self, fd: OwnedFd, errno: i32) -> Result<Duration, Error> {
        // SAFETY: we own the fd and close it exactly once.
        let closed = unsafe { libc::close(fd.into_raw_fd()) };
        let close_error = (closed < 0).then(std::io::Error::last_os_error);
        let (lived, flap) = {
            let mut schedule = self.lock_schedule();
            let now = Instant::now();
            let lived = schedule
                .connected_at
                .take()
                .map_or(Duration::ZERO, |at| now - at);
            // Healthy only once accepted and stable since: never a connection whose
            // handshake refused it or timed out, whatever `stable_after` is.
            let verdict = match schedule.accepted_at.take() {
                Some(at) => schedule.backoff.on_disconnect(now - at),
                None => None,
            };
            schedule.last_reason = errno;
            let flap = match verdict {
                Some(first_retry) => {
                    schedule.next_attempt_at = Some(now + first_retry);
                    false
                }
                None => {
                    let from = schedule.last_attempt_start.unwrap_or(now);
                    schedule.next_attempt_at = Some(from + schedule.backoff.next_delay());
                    true
                }
            };
            (lived, flap)
        };
        self.update(|s| {
            s.flaps += u64::from(flap);
            if matches!(s.state, State::Connected | State::Handshake) {
                s.state = State::Idle;
            }
        });
        if flap && let Some(held) = self.flap_log.allow() {
            log(
                Level::Warn,
                format_args!(
                    "connection to {}:{} lived only {} ms (< {} ms): a flap, backing off{}",
                    self.config.host,
                    self.config.port,
                    lived.as_millis(),
                    self.config.backoff.stable_after.as_millis(),
                    held_back(held)
                ),
            );
        }
        match close_error {
            Some(e) => Err(e.into()),
            None => Ok(lived),
        }
    }

    /// Stops the dialer for good, from any thread: a dial blocked in a resolve, a connect
    /// or a backoff returns ECANCELED at once, and every later dial too.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.set_state(State::Stopped);
        self.stop_wake.signal();
    }

    /// True once [`Dialer::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Forgets the backoff (the network came back): the next attempt starts at once, and a
    /// dial waiting out a backoff stops waiting. A connect in progress goes on.
    pub fn reset(&self) {
        {
            let mut schedule = self.lock_schedule();
            schedule.backoff.reset();
            schedule.next_attempt_at = None;
        }
        self.reset_wake.signal();
    }

    /// A consistent snapshot of the counters.
    pub fn stats(&self) -> Stats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Updates the counters under their lock (the client adds its own).
    pub(crate) fn update(&self, f: impl FnOnce(&mut Stats)) {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let stopped = stats.state == State::Stopped;
        f(&mut stats);
        if stopped {
            stats.state = State::Stopped;
        }
    }

    fn set_state(&self, state: State) {
        self.update(|s| s.state = state);
    }

    fn lock_schedule(&self) -> std::sync::MutexGuard<'_, Schedule> {
        self.schedule.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies the dead-peer options. They only exist for TCP; a failure is logged, not
    /// fatal: the connection works without them.
    fn configure(&self, fd: &OwnedFd) {
        if net::unix_path(&self.config.host).is_some() {
            return;
        }
        let results = [
            (
                "TCP_NODELAY",
                net::set_nodelay(fd.as_fd(), self.config.nodelay),
            ),
            (
                "keepalive",
                net::set_keepalive(fd.as_fd(), self.config.keepalive),
            ),
            (
                "TCP_USER_TIMEOUT",
                net::set_user_timeout(fd.as_fd(), self.config.user_timeout),
            ),
        ];
        for (name, result) in results {
            if let Err(e) = result {
                log(Level::Warn, format_args!("setting {name} failed: {e}"));
            }
        }
    }
}

fn held_back(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} similar messages held back)")
    }
}
