//! The Client: the seed's data thread — connect, read records until the connection fails,
//! close, reconnect — as a thread that a [`Dialer`] drives.
//!
//! In record mode the thread reads fixed-size records through the connection's buffered
//! [`Reader`] (the seed's `readn(datalen)` loop, a burst of small records per read) and
//! hands each whole record to [`Session::on_record`]; a torn record is never delivered. In
//! session mode [`Session::session`] owns the connection's I/O until it returns, reading
//! through the same [`Reader`]. Both run the heartbeat ([`ClientConfig::idle_timeout`])
//! inside those reads. Either way the thread then closes the fd, reports
//! [`Session::on_disconnect`] with the reason the connection ended and dials again with
//! backoff; a connection counts as healthy for the backoff only once `on_connect` accepted
//! it and it served `stable_after` (see [`ClientConfig::handshake_timeout`]).
//!
//! [`Client::stop`] works from any thread, including from inside a callback, and never
//! blocks: it stops the dialer (waking a connect or a backoff) and shuts the live socket
//! down, which makes a blocked read return. [`Client::join`] then waits for the thread; no
//! callback runs after it returns.
//!
//! # Lifecycle
//!
//! | state      | what may be called, from where                                         |
//! |------------|------------------------------------------------------------------------|
//! | running    | `send`, `stop`, `stats` from any thread or callback; `join` from any other thread (EDEADLK from a callback) |
//! | stopped    | after `stop` (or when the dialer gave up): the thread leaves a resolve, connect, backoff, handshake or read at once, reports the last `on_disconnect` (errno ECANCELED) and ends; `send` fails with ENOTCONN |
//! | joined     | `join` returned `Ok`: no callback runs any more                        |
//! | dropped    | [`Client::shutdown`] (also run by `Drop`): stop, then join — or, from inside a callback, no further callback at all (not even `on_disconnect`) and the thread ends on its own |
//!
//! A connection is visible to `send` only after `on_connect` accepted it, so nothing a
//! sender writes can overtake the handshake, and a `send` never succeeds on a connection
//! that `on_connect` then refuses.
//!
//! # Example
//!
//! ```no_run
//! use resock::client::{Client, ClientConfig, Mode, Session};
//! use resock::dial::DialConfig;
//!
//! struct Printer;
//! impl Session for Printer {
//!     fn on_record(&mut self, record: &[u8]) {
//!         println!("{} bytes", record.len());
//!     }
//! }
//!
//! let config = ClientConfig::new(DialConfig::new("127.0.0.1", "7000"), Mode::Records(64));
//! let client = Client::start(config, Printer)?;
//! // ... later, from any thread:
//! client.stop();
//! client.join(None)?;
//! # Ok::<(), resock::Error>(())
//! ```

use std::cell::Cell;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::dial::{DialConfig, Dialer, State, StateChange, Stats};
use crate::error::{Class, Error, Partial};
use crate::io::{Opts, write_full};
use crate::log::{Level, log};
use crate::reader::{Heartbeat, Reader};
use crate::wake;

/// The largest record a client reads (64 MiB): the whole record is one buffer, allocated
/// when the client starts. In C: `RESOCK_CLIENT_MAX_RECORD_SIZE`.
pub const MAX_RECORD_SIZE: usize = 64 << 20;

/// The handshake deadline of [`ClientConfig::new`]: as long as the default connect timeout.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the client calls when nothing arrived for its idle timeout (see
/// [`Session::heartbeat`]): return true to keep the connection (after sending a ping on
/// the fd, say), false to hang up.
pub type OnIdle = Box<dyn FnMut(BorrowedFd<'_>) -> bool + Send>;

/// What the client thread does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Read records of this many bytes (1 to [`MAX_RECORD_SIZE`]) and pass each to
    /// [`Session::on_record`].
    Records(usize),
    /// Call [`Session::session`], which owns the I/O until it returns.
    Session,
}

/// A client's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// How to connect and retry.
    pub dial: DialConfig,
    /// What to do once connected.
    pub mode: Mode,
    /// The application heartbeat (None: off). After this long with nothing received, the
    /// client calls the [`Session::heartbeat`] callback (a ping); if still nothing arrives
    /// within another `idle_timeout`, it hangs up with ETIMEDOUT and reconnects. It runs
    /// inside the connection's reads: the records loop's, and the session's reads through
    /// its [`Reader`]. Keepalive cannot catch a peer whose kernel still answers while the
    /// process hangs (SIGSTOP, a deadlock); this does.
    pub idle_timeout: Option<Duration>,
    /// A bound on `on_connect`'s blocking reads and writes on the fd (None: none). Each
    /// returns EAGAIN once it waited this long (SO_RCVTIMEO/SO_SNDTIMEO, set for the
    /// handshake only), and a handshake that took longer in all counts as timed out: the
    /// client hangs up (ETIMEDOUT) even if `on_connect` accepted.
    pub handshake_timeout: Option<Duration>,
}

impl ClientConfig {
    /// `mode` on `dial`, no heartbeat, handshake timeout [`DEFAULT_HANDSHAKE_TIMEOUT`].
    pub fn new(dial: DialConfig, mode: Mode) -> Self {
        ClientConfig {
            dial,
            mode,
            idle_timeout: None,
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
        }
    }
}

/// The application's side of a client. Every method runs on the client thread, with no
/// resock lock held, so it may call [`Client::send`] or [`Client::stop`].
pub trait Session: Send + 'static {
    /// A connection was made: handshake or resubscribe here (bounded by
    /// [`ClientConfig::handshake_timeout`]). Return false to hang up and retry after the
    /// backoff; a connection refused this way, or whose handshake timed out, is a flap: it
    /// never resets the backoff.
    fn on_connect(&mut self, _fd: BorrowedFd<'_>) -> bool {
        true
    }

    /// A whole record arrived (record mode).
    fn on_record(&mut self, _record: &[u8]) {}

    /// Session mode: own the connection's I/O; return when it is over. Read through
    /// `reader` (its fd is [`Reader::get_ref`]; write to that fd): the heartbeat runs
    /// inside its waits, and how the connection ended (EOF, a reset, the heartbeat's
    /// ETIMEDOUT) reaches `on_disconnect`. Return an error to report a reason of your own
    /// (a protocol error). The fd is closed by the client afterwards — do not close it.
    fn session(&mut self, _reader: &mut Reader<BorrowedFd<'_>>) -> Result<(), Error> {
        Ok(())
    }

    /// The ping of the heartbeat, asked for once when the client starts (only with an
    /// [`ClientConfig::idle_timeout`]). It runs inside the connection's reads, while the
    /// session may be running, so it is a callback of its own rather than a method. None:
    /// no ping; the client hangs up after two idle periods.
    fn heartbeat(&mut self) -> Option<OnIdle> {
        None
    }

    /// Every state change and attempt: connecting (attempt n), handshake, connected,
    /// idle (a connection ended: its errno), backoff (the delay and the last failure's
    /// errno), stopped. Not rate-limited.
    fn on_state(&mut self, _change: &StateChange) {}

    /// A connection ended: its class and errno, and how long it lived. The reasons: the
    /// read error or EOF that ended the records loop or the session's reads; the session's
    /// own error; (Timeout, ETIMEDOUT) for the heartbeat or a handshake timeout; the error
    /// of a send that left a partial message on the wire (unless it is EPIPE, which only
    /// follows one of the other reasons); (Ok, ECANCELED) when
    /// [`Client::stop`] ended it; (Ok, 0) when the session returned without a reason or
    /// `on_connect` refused the connection.
    fn on_disconnect(&mut self, _class: Class, _errno: i32, _lived: Duration) {}
}

/// The client thread's connection, as other threads may see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conn {
    /// No connection.
    Down,
    /// Connected, `on_connect` running: `stop` may shut it down, `send` must not see it.
    Handshake(RawFd),
    /// Accepted by `on_connect`: open to `send`.
    Up(RawFd),
}

struct Shared {
    dialer: Dialer,
    stopping: AtomicBool,
    /// Set by a [`Client::shutdown`] from inside a callback: no callback may run after it.
    callbacks_off: AtomicBool,
    /// The live connection, for `send` and for `stop`'s shutdown. Readers use the fd
    /// under the read lock; the client thread takes the write lock to publish or retire it,
    /// so the fd is never closed under a reader.
    conn: RwLock<Conn>,
    /// A sender is writing (true): serialises `send` calls so messages from two threads
    /// never interleave, with a wait a deadline can bound.
    sending: Mutex<bool>,
    send_done: Condvar,
    /// Why the live connection must end, set by a send that tore a message (first wins).
    forced_end: Mutex<Option<(Class, i32)>>,
    finished: Mutex<bool>,
    finished_cv: Condvar,
}

thread_local! {
    /// The client whose thread this is, set before its first callback (join from there
    /// would wait for itself).
    static CLIENT_THREAD: Cell<*const Shared> = const { Cell::new(std::ptr::null()) };
}

impl Shared {
    fn set_conn(&self, conn: Conn) {
        *self.conn.write().unwrap_or_else(|e| e.into_inner()) = conn;
    }

    fn shutdown_live(&self) {
        if let Conn::Handshake(fd) | Conn::Up(fd) =
            *self.conn.read().unwrap_or_else(|e| e.into_inner())
        {
            // SAFETY: the fd stays open while the read lock is held (see `conn`).
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
    }

    fn callbacks_on(&self) -> bool {
        !self.callbacks_off.load(Ordering::Acquire)
    }

    /// The send lock if no sender holds it now.
    fn try_lock_send(&self) -> Option<SendTurn<'_>> {
        let mut busy = self.sending.lock().unwrap_or_else(|e| e.into_inner());
        if *busy {
            return None;
        }
        *busy = true;
        Some(SendTurn(self))
    }

    /// Takes the send lock, waiting until `deadline` at most (ETIMEDOUT).
    fn lock_send(&self, deadline: Option<Instant>) -> Result<SendTurn<'_>, Error> {
        let mut busy = self.sending.lock().unwrap_or_else(|e| e.into_inner());
        while *busy {
            busy = match deadline {
                None => self.send_done.wait(busy).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Error::TimedOut);
                    }
                    self.send_done
                        .wait_timeout(busy, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
        *busy = true;
        Ok(SendTurn(self))
    }
}

/// The heartbeat's ping, sent only between two senders' messages: with another sender
/// mid-message a ping would land inside it and tear the stream, so that ping is skipped
/// (if nothing arrives within another idle period, the heartbeat hangs up all the same).
fn between_messages(shared: &Arc<Shared>, mut ping: OnIdle) -> OnIdle {
    let shared = Arc::clone(shared);
    Box::new(move |fd| match shared.try_lock_send() {
        Some(_turn) => ping(fd),
        None => true,
    })
}

/// One sender's turn; the next one goes when it is dropped.
struct SendTurn<'a>(&'a Shared);

impl Drop for SendTurn<'_> {
    fn drop(&mut self) {
        *self.0.sending.lock().unwrap_or_else(|e| e.into_inner()) = false;
        self.0.send_done.notify_one();
    }
}

/// A running client thread; see the module docs. Dropping it stops and joins the thread.
pub struct Client {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Client {
    /// Starts the client thread, which dials at once.
    ///
    /// # Errors
    ///
    /// EINVAL for a bad configuration (a record size of 0 or above [`MAX_RECORD_SIZE`], a
    /// zero idle or handshake timeout, or a bad [`DialConfig`]); ENOMEM when the record
    /// buffer cannot be allocated; the error of creating the wake fds or the thread.
    pub fn start(config: ClientConfig, session: impl Session) -> Result<Client, Error> {
        let record = match config.mode {
            Mode::Records(0) => return Err(Error::InvalidInput("record size is 0")),
            Mode::Records(n) if n > MAX_RECORD_SIZE => {
                return Err(Error::InvalidInput("record size is above 64 MiB"));
            }
            Mode::Records(n) => zeroed_buffer(n)?,
            Mode::Session => Box::default(),
        };
        if config.idle_timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::InvalidInput("idle timeout is 0"));
        }
        if config.handshake_timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::InvalidInput("handshake timeout is 0"));
        }
        let shared = Arc::new(Shared {
            dialer: Dialer::new(config.dial.clone())?,
            stopping: AtomicBool::new(false),
            callbacks_off: AtomicBool::new(false),
            conn: RwLock::new(Conn::Down),
            sending: Mutex::new(false),
            send_done: Condvar::new(),
            forced_end: Mutex::new(None),
            finished: Mutex::new(false),
            finished_cv: Condvar::new(),
        });
        let thread = {
            let shared = shared.clone();
            thread::Builder::new()
                .name("resock-client".into())
                .spawn(move || run(&shared, &config, record, session))?
        };
        Ok(Client {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Writes all of `buf` to the live connection (serialised with other senders).
    ///
    /// # Errors
    ///
    /// As [`Client::send_with`] with no deadline.
    pub fn send(&self, buf: &[u8]) -> Result<(), Partial> {
        self.send_with(buf, &Opts::default())
    }

    /// [`Client::send`] with a deadline (and the flags of [`Opts`]) that bounds the wait
    /// for other senders as well as the write. A send that stops after part of `buf` went
    /// out has torn the stream (the peer holds half a message, and the next sender's bytes
    /// would follow it), so the client hangs that connection up with the send's error and
    /// reconnects; one that stops before any byte went out leaves the connection as it
    /// was.
    ///
    /// # Errors
    ///
    /// ENOTCONN while no connection is up or `on_connect` has not accepted it yet (nothing
    /// is buffered for later); [`Error::TimedOut`] at the deadline; otherwise as
    /// [`write_full`] — EPIPE, ECONNRESET — with the count written.
    pub fn send_with(&self, buf: &[u8], opts: &Opts) -> Result<(), Partial> {
        let deadline = opts.timeout.and_then(wake::deadline_after);
        let _turn = self
            .shared
            .lock_send(deadline)
            .map_err(|error| Partial { done: 0, error })?;
        let conn = self.shared.conn.read().unwrap_or_else(|e| e.into_inner());
        let Conn::Up(fd) = *conn else {
            return Err(Partial {
                done: 0,
                error: Error::from_errno(libc::ENOTCONN),
            });
        };
        let opts = Opts {
            timeout: deadline.map(|d| d.saturating_duration_since(Instant::now())),
            ..*opts
        };
        // SAFETY: the fd stays open while the read lock is held.
        let result = write_full(unsafe { BorrowedFd::borrow_raw(fd) }, buf, &opts);
        let sent = match &result {
            Ok(()) => buf.len(),
            Err(p) => p.done,
        };
        if let Err(p) = &result
            && p.done > 0
        {
            self.shared
                .forced_end
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert((p.error.class(), p.error.errno()));
            // SAFETY: as above.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
        self.shared.dialer.update(|s| s.bytes_out += sent as u64);
        result
    }

    /// Forgets the backoff (the network came back): the next attempt starts at once, even
    /// if the client is waiting out a backoff right now. Callable from any thread.
    pub fn reset(&self) {
        self.shared.dialer.reset();
    }

    /// Stops the client from any thread, including a callback; never blocks. The thread
    /// leaves a connect, a backoff or a blocked read at once.
    pub fn stop(&self) {
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.dialer.stop();
        self.shared.shutdown_live();
    }

    /// Waits for the client thread to end (after [`Client::stop`], or after the dialer gave
    /// up), at most `timeout` (None: as long as it takes). No callback runs after it
    /// returns `Ok`.
    ///
    /// # Errors
    ///
    /// ETIMEDOUT if the thread is still running at the timeout; EDEADLK when called from
    /// the client's own thread (a callback).
    pub fn join(&self, timeout: Option<Duration>) -> Result<(), Error> {
        if self.on_client_thread() {
            return Err(Error::from_errno(libc::EDEADLK));
        }
        // A timeout too large for the clock is no timeout.
        let deadline = timeout.and_then(wake::deadline_after);
        let mut finished = self
            .shared
            .finished
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        while !*finished {
            let cv = &self.shared.finished_cv;
            finished = match deadline {
                None => cv.wait(finished).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Error::from_errno(libc::ETIMEDOUT));
                    }
                    cv.wait_timeout(finished, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
        drop(finished);
        if let Some(handle) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            // The thread has finished its work; a panic in a Rust session was already
            // reported through the log when it happened.
            let _ = handle.join();
        }
        Ok(())
    }

    /// A snapshot of the counters (dialer counters plus eofs, resets, bytes in and out).
    pub fn stats(&self) -> Stats {
        self.shared.dialer.stats()
    }

    /// Stops the client and waits for its thread; from inside one of its callbacks, turns
    /// every further callback off instead (`on_disconnect` included) and lets the thread
    /// end on its own once the callback returns. Either way no callback starts after this
    /// returns: the caller may free what the callbacks use.
    pub fn shutdown(&self) {
        self.stop();
        if self.on_client_thread() {
            self.shared.callbacks_off.store(true, Ordering::Release);
        } else {
            let _ = self.join(None);
        }
    }

    fn on_client_thread(&self) -> bool {
        CLIENT_THREAD.with(Cell::get) == Arc::as_ptr(&self.shared)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Marks the client finished when the thread ends, even by a panic in a Rust session, so
/// `join` never waits for a thread that is gone.
struct FinishGuard<'a>(&'a Shared);

impl Drop for FinishGuard<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            log(
                Level::Error,
                format_args!("a client session panicked; the client stopped"),
            );
        }
        self.0.dialer.stop();
        *self.0.finished.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.0.finished_cv.notify_all();
    }
}

/// The record buffer, allocated when the client starts — a failure is ENOMEM, never an
/// abort on the thread — and zeroed by the allocator (calloc maps fresh zero pages for a
/// large buffer), so an idle client's 64 MiB record costs no resident memory until read.
fn zeroed_buffer(n: usize) -> Result<Box<[u8]>, Error> {
    let layout =
        std::alloc::Layout::array::<u8>(n).map_err(|_| Error::InvalidInput("record size"))?;
    // SAFETY: n > 0 (Records(0) is refused before), so the layout is not zero-sized.
    let p = unsafe { std::alloc::alloc_zeroed(layout) };
    if p.is_null() {
        return Err(Error::from_errno(libc::ENOMEM));
    }
    // SAFETY: a fresh zeroed allocation of n bytes with the layout Box<[u8]> frees with.
    Ok(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, n)) })
}

/// The client thread's per-client state between connections.
struct Thread<'a, S: Session> {
    shared: &'a Shared,
    config: &'a ClientConfig,
    session: S,
    record: Box<[u8]>,
    /// The heartbeat's ping, lent to each connection's reader.
    on_idle: Option<OnIdle>,
    /// The attempt the last state change was about.
    attempt: u32,
}

impl<S: Session> Thread<'_, S> {
    fn notify(&mut self, change: StateChange) {
        self.attempt = change.attempt;
        if self.shared.callbacks_on() {
            self.session.on_state(&change);
        }
    }

    fn notify_state(&mut self, state: State, errno: i32) {
        self.notify(StateChange {
            state,
            attempt: self.attempt,
            next_delay: Duration::ZERO,
            errno,
        });
    }
}

fn run(shared: &Arc<Shared>, config: &ClientConfig, record: Box<[u8]>, session: impl Session) {
    let _finish = FinishGuard(shared);
    CLIENT_THREAD.with(|c| c.set(Arc::as_ptr(shared)));
    let mut t = Thread {
        shared,
        config,
        session,
        record,
        on_idle: None,
        attempt: 0,
    };
    if config.idle_timeout.is_some() && shared.callbacks_on() {
        t.on_idle = t
            .session
            .heartbeat()
            .map(|ping| between_messages(shared, ping));
    }
    while !shared.stopping.load(Ordering::Acquire) {
        let dialed = {
            let Thread {
                session, attempt, ..
            } = &mut t;
            shared.dialer.dial_observed(true, &mut |change| {
                *attempt = change.attempt;
                if shared.callbacks_on() {
                    session.on_state(&change);
                }
            })
        };
        let fd = match dialed {
            Ok(fd) => fd,
            Err(e) => {
                if e.errno() != libc::ECANCELED {
                    log(Level::Error, format_args!("client gave up: {e}"));
                }
                break;
            }
        };
        let (class, errno) = serve(&mut t, &fd);
        // Retire the fd: shut it down so a blocked `send` returns, then wait for senders.
        shared.shutdown_live();
        shared.set_conn(Conn::Down);
        let forced = shared
            .forced_end
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let (class, errno) = match forced {
            _ if shared.stopping.load(Ordering::Acquire) => (Class::Ok, libc::ECANCELED),
            // A send that tore its message with EPIPE found the connection already shut
            // down — by the heartbeat, the peer's end or this retirement — whose own
            // reason is the one to report.
            Some((_, libc::EPIPE)) | None => (class, errno),
            Some(torn) => torn,
        };
        let lived = shared
            .dialer
            .hangup_with(fd, errno)
            .unwrap_or(Duration::ZERO);
        shared.dialer.update(|s| {
            s.eofs += u64::from(class == Class::Eof);
            s.resets += u64::from(class == Class::Reset);
            if errno != 0 && errno != libc::ECANCELED {
                s.last_errno = errno;
            }
        });
        if shared.callbacks_on() {
            t.session.on_disconnect(class, errno, lived);
        }
        t.notify_state(State::Idle, errno);
    }
    shared.dialer.update(|s| s.state = State::Stopped);
    t.notify_state(State::Stopped, 0);
}

/// One connection: the handshake, then records or the session. Returns why it ended.
fn serve<S: Session>(t: &mut Thread<'_, S>, fd: &OwnedFd) -> (Class, i32) {
    let shared = t.shared;
    shared.set_conn(Conn::Handshake(fd.as_raw_fd()));
    if shared.stopping.load(Ordering::Acquire) {
        // A stop between the dial and the line above found no fd to shut down.
        shared.shutdown_live();
    }
    match handshake(t, fd) {
        Ok(true) => {}
        Ok(false) => return (Class::Ok, 0),
        Err(e) => return (e.class(), e.errno()),
    }
    shared.dialer.handshake_done();
    // Only now may senders see the connection: nothing overtakes the handshake.
    shared.set_conn(Conn::Up(fd.as_raw_fd()));
    if shared.stopping.load(Ordering::Acquire) {
        shared.shutdown_live();
    }
    t.notify_state(State::Connected, 0);
    // Small records come many to a read; one at least as big as the buffer is read
    // straight into the record.
    let mut reader = match Reader::new(fd.as_fd()) {
        Ok(reader) => reader,
        Err(e) => return (e.class(), e.errno()),
    };
    if let (Some(idle), Some(on_idle)) = (t.config.idle_timeout, t.on_idle.take()) {
        reader.set_heartbeat(Heartbeat::new(idle, on_idle));
    } else if let Some(idle) = t.config.idle_timeout {
        reader.set_heartbeat(Heartbeat::new(idle, Box::new(|_| true)));
    }
    let ended = match t.config.mode {
        Mode::Records(_) => read_records(t, &mut reader),
        Mode::Session => {
            let result = if shared.callbacks_on() {
                t.session.session(&mut reader)
            } else {
                Ok(())
            };
            match (reader.hung_up(), result) {
                (false, Err(e)) => (e.class(), e.errno()),
                _ => reader.ended().unwrap_or((Class::Ok, 0)),
            }
        }
    };
    if let Some(heartbeat) = reader.take_heartbeat() {
        t.on_idle = Some(heartbeat.into_on_idle());
    }
    ended
}

/// Runs `on_connect` with the handshake deadline on the fd's blocking reads and writes.
/// Ok(false): refused; Err(ETIMEDOUT): it took longer than the deadline.
fn handshake<S: Session>(t: &mut Thread<'_, S>, fd: &OwnedFd) -> Result<bool, Error> {
    if !t.shared.callbacks_on() {
        return Ok(false);
    }
    let limit = t.config.handshake_timeout;
    let sock = socket2::SockRef::from(fd);
    if let Some(limit) = limit {
        // Both are socket options of every socket type; a failure leaves the handshake
        // bounded by the total check below only.
        let _ = sock.set_read_timeout(Some(limit));
        let _ = sock.set_write_timeout(Some(limit));
    }
    let start = Instant::now();
    crate::test_hooks::pause("client.on_connect");
    let accepted = t.session.on_connect(fd.as_fd());
    if let Some(limit) = limit {
        let _ = sock.set_read_timeout(None);
        let _ = sock.set_write_timeout(None);
        if start.elapsed() >= limit {
            return Err(Error::TimedOut);
        }
    }
    Ok(accepted)
}

/// The seed's `while (readn(fd, buf, datalen) == datalen)` loop, through the connection's
/// reader (so a burst of small records costs one read). Returns why it ended.
fn read_records<S: Session>(
    t: &mut Thread<'_, S>,
    reader: &mut Reader<BorrowedFd<'_>>,
) -> (Class, i32) {
    let shared = t.shared;
    loop {
        match reader.read_exact_with(&mut t.record, &Opts::default()) {
            Ok(()) => {
                shared
                    .dialer
                    .update(|s| s.bytes_in += t.record.len() as u64);
                if shared.callbacks_on() {
                    t.session.on_record(&t.record);
                }
                if shared.stopping.load(Ordering::Acquire) {
                    return (Class::Ok, libc::ECANCELED);
                }
            }
            Err(stopped) => {
                // A torn record's bytes are counted but never delivered.
                let torn = stopped.done + reader.buffered().len();
                shared.dialer.update(|s| s.bytes_in += torn as u64);
                return (stopped.error.class(), stopped.error.errno());
            }
        }
    }
}
