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

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use crate::dial::{DialConfig, Dialer, State, Stats};
use crate::error::{Class, Error, Partial};
use crate::io::{Opts, read_full, write_full};
use crate::log::{Level, log};

/// What the client thread does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Read records of this many bytes (> 0) and pass each to [`Session::on_record`].
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

struct Shared {
    dialer: Dialer,
    stopping: AtomicBool,
    /// The live connection's fd, for `send` and for `stop`'s shutdown. Readers use it;
    /// the client thread takes the write lock only to retire the fd before closing it.
    conn: RwLock<Option<RawFd>>,
    /// Serialises `send` calls so records from two threads never interleave.
    send_lock: Mutex<()>,
    finished: Mutex<bool>,
    finished_cv: Condvar,
    thread_id: Mutex<Option<ThreadId>>,
}

impl Shared {
    fn shutdown_live(&self) {
        if let Some(fd) = *self.conn.read().unwrap_or_else(|e| e.into_inner()) {
            // SAFETY: the fd stays open while the read lock is held (see `conn`).
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
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
    /// EINVAL for a bad configuration (a record size of 0 or a bad [`DialConfig`]); the
    /// error of creating the wake fd or the thread.
    pub fn start(config: ClientConfig, session: impl Session) -> Result<Client, Error> {
        if config.mode == Mode::Records(0) {
            return Err(Error::InvalidInput("record size is 0"));
        }
        let shared = Arc::new(Shared {
            dialer: Dialer::new(config.dial)?,
            stopping: AtomicBool::new(false),
            conn: RwLock::new(None),
            send_lock: Mutex::new(()),
            finished: Mutex::new(false),
            finished_cv: Condvar::new(),
            thread_id: Mutex::new(None),
        });
        let thread = {
            let shared = shared.clone();
            thread::Builder::new()
                .name("resock-client".into())
                .spawn(move || run(&shared, config.mode, session))?
        };
        *shared.thread_id.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread.thread().id());
        Ok(Client {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Writes all of `buf` to the live connection (serialised with other senders).
    ///
    /// # Errors
    ///
    /// ENOTCONN while no connection is up (nothing is buffered for later); otherwise as
    /// [`write_full`] — EPIPE, ECONNRESET — with the count written.
    pub fn send(&self, buf: &[u8]) -> Result<(), Partial> {
        let _serial = self
            .shared
            .send_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let conn = self.shared.conn.read().unwrap_or_else(|e| e.into_inner());
        let Some(fd) = *conn else {
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
        let deadline = timeout.map(|t| Instant::now() + t);
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

    fn on_client_thread(&self) -> bool {
        *self
            .shared
            .thread_id
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            == Some(thread::current().id())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop();
        if !self.on_client_thread() {
            let _ = self.join(None);
        }
        // Dropped from inside a callback: the thread holds its own reference to the shared
        // state and ends by itself once the callback returns.
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

fn run(shared: &Shared, mode: Mode, mut session: impl Session) {
    let _finish = FinishGuard(shared);
    let mut record = match mode {
        Mode::Records(size) => vec![0u8; size],
        Mode::Session => Vec::new(),
    };
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
        *shared.conn.write().unwrap_or_else(|e| e.into_inner()) = Some(fd.as_raw_fd());
        if shared.stopping.load(Ordering::Acquire) {
            // A stop between the dial and the line above found no fd to shut down.
            shared.shutdown_live();
        }
        let (class, errno) = if !session.on_connect(fd.as_fd()) {
            (Class::Ok, 0)
        } else {
            match mode {
                Mode::Records(_) => read_records(shared, &fd, &mut record, &mut session),
                Mode::Session => {
                    session.session(fd.as_fd());
                    (Class::Ok, 0)
                }
            }
        };
        // Retire the fd: shut it down so a blocked `send` returns, then wait for senders.
        shared.shutdown_live();
        shared
            .conn
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
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
        session.on_disconnect(class, errno, lived);
    }
    shared.dialer.update(|s| s.state = State::Stopped);
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
                session.on_record(record);
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
