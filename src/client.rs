//! The Client: the seed's data thread — connect, read records until the connection fails,
//! close, reconnect — as a thread that a [`Dialer`] drives.
//!
//! In record mode the thread reads fixed-size records with [`read_full`] (the seed's
//! `readn(datalen)` loop) and hands each whole record to [`Session::on_record`]; a torn
//! record is never delivered. In session mode [`Session::session`] owns the connection's I/O
//! until it returns. Either way the thread then closes the fd, reports
//! [`Session::on_disconnect`] and dials again with backoff.
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
//! let config = ClientConfig { dial: DialConfig::new("127.0.0.1", "7000"), mode: Mode::Records(64) };
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

use crate::dial::{DialConfig, Dialer, State, Stats};
use crate::error::{Class, Error, Partial};
use crate::io::{Opts, read_full, write_full};
use crate::log::{Level, log};
use crate::wake;

/// The largest record a client reads (64 MiB): the whole record is one buffer, allocated
/// when the client starts. In C: `RESOCK_CLIENT_MAX_RECORD_SIZE`.
pub const MAX_RECORD_SIZE: usize = 64 << 20;

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
}

/// The application's side of a client. Every method runs on the client thread, with no
/// resock lock held, so it may call [`Client::send`] or [`Client::stop`].
pub trait Session: Send + 'static {
    /// A connection was made: handshake or resubscribe here. Return false to hang up and
    /// retry (after the backoff; a connection refused this way counts as a flap).
    fn on_connect(&mut self, _fd: BorrowedFd<'_>) -> bool {
        true
    }

    /// A whole record arrived (record mode).
    fn on_record(&mut self, _record: &[u8]) {}

    /// Session mode: own the connection's I/O; return when it is over. The fd is closed
    /// by the client afterwards — do not close it here.
    fn session(&mut self, _fd: BorrowedFd<'_>) {}

    /// A connection ended: its class (Eof, Reset, ...; `Ok` with errno ECANCELED when
    /// [`Client::stop`] ended it, `Ok` with errno 0 when the session returned or
    /// `on_connect` refused it), the errno, and how long it lived.
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
    /// Serialises `send` calls so records from two threads never interleave.
    send_lock: Mutex<()>,
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
    /// EINVAL for a bad configuration (a record size of 0 or above [`MAX_RECORD_SIZE`], or
    /// a bad [`DialConfig`]); ENOMEM when the record buffer cannot be allocated; the error
    /// of creating the wake fds or the thread.
    pub fn start(config: ClientConfig, session: impl Session) -> Result<Client, Error> {
        let record = match config.mode {
            Mode::Records(0) => return Err(Error::InvalidInput("record size is 0")),
            Mode::Records(n) if n > MAX_RECORD_SIZE => {
                return Err(Error::InvalidInput("record size is above 64 MiB"));
            }
            Mode::Records(n) => zeroed_buffer(n)?,
            Mode::Session => Box::default(),
        };
        let shared = Arc::new(Shared {
            dialer: Dialer::new(config.dial)?,
            stopping: AtomicBool::new(false),
            callbacks_off: AtomicBool::new(false),
            conn: RwLock::new(Conn::Down),
            send_lock: Mutex::new(()),
            finished: Mutex::new(false),
            finished_cv: Condvar::new(),
        });
        let thread = {
            let shared = shared.clone();
            thread::Builder::new()
                .name("resock-client".into())
                .spawn(move || run(&shared, config.mode, record, session))?
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
    /// ENOTCONN while no connection is up or `on_connect` has not accepted it yet (nothing
    /// is buffered for later); otherwise as [`write_full`] — EPIPE, ECONNRESET — with the
    /// count written.
    pub fn send(&self, buf: &[u8]) -> Result<(), Partial> {
        let _serial = self
            .shared
            .send_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let conn = self.shared.conn.read().unwrap_or_else(|e| e.into_inner());
        let Conn::Up(fd) = *conn else {
            return Err(Partial {
                done: 0,
                error: Error::from_errno(libc::ENOTCONN),
            });
        };
        // SAFETY: the fd stays open while the read lock is held.
        let result = write_full(unsafe { BorrowedFd::borrow_raw(fd) }, buf, &Opts::default());
        let sent = match &result {
            Ok(()) => buf.len(),
            Err(p) => p.done,
        };
        self.shared.dialer.update(|s| s.bytes_out += sent as u64);
        result
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

fn run(shared: &Shared, mode: Mode, mut record: Box<[u8]>, mut session: impl Session) {
    let _finish = FinishGuard(shared);
    CLIENT_THREAD.with(|c| c.set(shared));
    while !shared.stopping.load(Ordering::Acquire) {
        let fd = match shared.dialer.dial() {
            Ok(fd) => fd,
            Err(e) => {
                if e.errno() != libc::ECANCELED {
                    log(Level::Error, format_args!("client gave up: {e}"));
                }
                break;
            }
        };
        let (class, errno) = serve(shared, mode, &fd, &mut record, &mut session);
        // Retire the fd: shut it down so a blocked `send` returns, then wait for senders.
        shared.shutdown_live();
        shared.set_conn(Conn::Down);
        let lived = shared.dialer.hangup(fd).unwrap_or(Duration::ZERO);
        let (class, errno) = if shared.stopping.load(Ordering::Acquire) {
            (Class::Ok, libc::ECANCELED)
        } else {
            (class, errno)
        };
        shared.dialer.update(|s| {
            s.eofs += u64::from(class == Class::Eof);
            s.resets += u64::from(class == Class::Reset);
        });
        if shared.callbacks_on() {
            session.on_disconnect(class, errno, lived);
        }
    }
    shared.dialer.update(|s| s.state = State::Stopped);
}

/// One connection: the handshake, then records or the session. Returns why it ended.
fn serve(
    shared: &Shared,
    mode: Mode,
    fd: &OwnedFd,
    record: &mut [u8],
    session: &mut impl Session,
) -> (Class, i32) {
    shared.set_conn(Conn::Handshake(fd.as_raw_fd()));
    if shared.stopping.load(Ordering::Acquire) {
        // A stop between the dial and the line above found no fd to shut down.
        shared.shutdown_live();
    }
    if !(shared.callbacks_on() && session.on_connect(fd.as_fd())) {
        return (Class::Ok, 0);
    }
    // Only now may senders see the connection: nothing overtakes the handshake.
    shared.set_conn(Conn::Up(fd.as_raw_fd()));
    if shared.stopping.load(Ordering::Acquire) {
        shared.shutdown_live();
    }
    match mode {
        Mode::Records(_) => read_records(shared, fd, record, session),
        Mode::Session => {
            if shared.callbacks_on() {
                session.session(fd.as_fd());
            }
            (Class::Ok, 0)
        }
    }
}

/// The seed's `while (readn(fd, buf, datalen) == datalen)` loop. Returns why it ended.
fn read_records(
    shared: &Shared,
    fd: &impl AsFd,
    record: &mut [u8],
    session: &mut impl Session,
) -> (Class, i32) {
    loop {
        match read_full(fd, record, &Opts::default()) {
            Ok(()) => {
                shared.dialer.update(|s| s.bytes_in += record.len() as u64);
                if shared.callbacks_on() {
                    session.on_record(record);
                }
                if shared.stopping.load(Ordering::Acquire) {
                    return (Class::Ok, libc::ECANCELED);
                }
            }
            Err(stopped) => {
                // A torn record's bytes are counted but never delivered.
                shared.dialer.update(|s| s.bytes_in += stopped.done as u64);
                return (stopped.error.class(), stopped.error.errno());
            }
        }
    }
}
