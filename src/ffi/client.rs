//! C exports: the Client thread (`resock_client_*`).

use std::ffi::{c_int, c_uint, c_void};

use libc::{size_t, ssize_t};
use std::mem::offset_of;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use super::dial::{default_dial_config, dial_config_from_c, resock_dial_config};
use super::handle::{borrow, new_handle, release};
use super::io::{fail, resock_io_opts, store, with_opts};
use super::reader::{lend, resock_reader, retire};
use super::{boundary, int_result, optional_ms, ptr_result, read_sized, report_errno};
use crate::client::{Client, ClientConfig, DEFAULT_HANDSHAKE_TIMEOUT, Mode, OnIdle, Session};
use crate::dial::{StateChange, Stats};
use crate::error::{Class, Error};
use crate::reader::Reader;

/// A reconnecting client's configuration. Initialise with resock_client_config_init(),
/// then set `dial.host`, `dial.port` and either `record_size` + `on_record` or `session`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct resock_client_config {
    /// sizeof(resock_client_config).
    pub struct_size: usize,
    /// How to connect and retry (its own struct_size must be set too: the init does it).
    pub dial: resock_dial_config,
    /// Non-zero: read records of exactly this size and call on_record for each (the seed's
    /// readn(datalen) loop); a torn record is never delivered. 0: call `session`.
    pub record_size: usize,
    /// After each connect (handshake, resubscribe); return non-zero to hang up and retry
    /// after the backoff. May be NULL.
    pub on_connect: Option<unsafe extern "C" fn(fd: c_int, user: *mut c_void) -> c_int>,
    /// Each whole record (record mode; required there). `rec` is valid during the call.
    pub on_record: Option<unsafe extern "C" fn(rec: *const c_void, len: usize, user: *mut c_void)>,
    /// record_size 0: owns the connection's I/O until it returns; must not close `fd`.
    /// Read through `r`, a resock_reader on `fd` that the client lends for the call (do not
    /// free it; it is invalid once the session returns): the heartbeat runs inside its
    /// waits and the client sees how the connection ended (EOF, ECONNRESET, the
    /// heartbeat's ETIMEDOUT). Write to `fd`. Return 0, or an errno saying why the session
    /// ended (EPROTO for a protocol error, say; a negative value counts as EIO): it reaches
    /// on_disconnect and the stats. (ABI 2; a caller built with ABI 1's smaller struct
    /// keeps its `void session(int fd, void *user)` and is called that way.)
    pub session:
        Option<unsafe extern "C" fn(fd: c_int, r: *mut resock_reader, user: *mut c_void) -> c_int>,
    /// After each connection ends: its RESOCK_CLASS_*, the errno, and how long it lived in
    /// ms. The reasons: the read error or EOF (RESOCK_CLASS_EOF, errno 0) that ended the
    /// records loop or the session's reads; the session's returned errno; ETIMEDOUT
    /// (RESOCK_CLASS_TIMEOUT) for the heartbeat or a handshake timeout; the error of a
    /// resock_client_send_opts that left a partial message on the wire; RESOCK_CLASS_OK
    /// with errno ECANCELED when a stop ended it, with errno 0 when on_connect refused it or
    /// the session returned 0 without its reader seeing an end. May be NULL.
    pub on_disconnect:
        Option<unsafe extern "C" fn(cls: c_int, errnum: c_int, lived_ms: i64, user: *mut c_void)>,
    /// Passed to every callback.
    pub user: *mut c_void,
    /// The application heartbeat, ms (-1: off). After this long with nothing received,
    /// on_idle runs (it may send a ping; non-zero hangs up); if still nothing arrives
    /// within another idle_timeout_ms, the client hangs up with ETIMEDOUT
    /// (RESOCK_CLASS_TIMEOUT) and reconnects. It runs inside the records loop's reads and
    /// the session's reads through its resock_reader. Catches what keepalive cannot: a
    /// peer whose kernel still answers while the process is stopped or hung.
    pub idle_timeout_ms: c_int,
    /// The heartbeat's ping: runs on the client thread inside a read; write the ping to
    /// `fd`; return non-zero to hang up at once. It runs only between two senders'
    /// messages (holding the send turn, so resock_client_send waits meanwhile): while a
    /// sender is mid-message that ping is skipped rather than torn into the message.
    /// May be NULL (no ping: hang up after two idle periods).
    pub on_idle: Option<unsafe extern "C" fn(fd: c_int, user: *mut c_void) -> c_int>,
    /// Bounds on_connect's I/O, ms (10000; -1: none): each blocking read or write on the
    /// fd returns -1/EAGAIN once it waited this long (SO_RCVTIMEO/SO_SNDTIMEO, set for the
    /// handshake only), and a handshake that took longer in all is a handshake timeout:
    /// the client hangs up (ETIMEDOUT) even if on_connect returned 0. A refused or timed
    /// out handshake is a flap: it never resets the backoff.
    pub handshake_timeout_ms: c_int,
    /// Every state change and attempt, not rate-limited, on the client thread with no
    /// lock held: RESOCK_STATE_CONNECTING (attempt n, counted from 1 since the last
    /// healthy connection), RESOCK_STATE_HANDSHAKE, RESOCK_STATE_CONNECTED,
    /// RESOCK_STATE_IDLE (a connection ended; errnum is its errno), RESOCK_STATE_BACKOFF
    /// (next_delay_ms until attempt `attempt` starts; errnum the last failure's errno),
    /// RESOCK_STATE_STOPPED. May be NULL.
    pub on_state: Option<
        unsafe extern "C" fn(
            state: c_int,
            attempt: c_uint,
            next_delay_ms: i64,
            errnum: c_int,
            user: *mut c_void,
        ),
    >,
}

/// sizeof(resock_client_config) in ABI 1: the struct ended at `user`, and `session` was
/// `void session(int fd, void *user)`.
const CONFIG_V1_SIZE: usize = offset_of!(resock_client_config, idle_timeout_ms);

/// ABI 1's session callback.
type SessionV1 = unsafe extern "C" fn(fd: c_int, user: *mut c_void);

/// The largest record_size resock_client_start accepts (64 MiB): the record buffer is
/// allocated whole when the client starts.
pub const RESOCK_CLIENT_MAX_RECORD_SIZE: usize = 64 << 20;

// A literal above, so cbindgen can print it; the core's limit is the one enforced.
const _: () = assert!(RESOCK_CLIENT_MAX_RECORD_SIZE == crate::client::MAX_RECORD_SIZE);

/// A running client: opaque; create with resock_client_start, free with
/// resock_client_free.
///
/// Lifecycle. RUNNING after resock_client_start: the client thread dials, runs on_connect,
/// then the records loop or the session, reports on_disconnect and dials again.
/// resock_client_send, resock_client_stop and resock_client_stats may be called from any
/// thread and from the callbacks; resock_client_join from any other thread (EDEADLK from a
/// callback). A connection is open to resock_client_send only after on_connect accepted it
/// (before that: ENOTCONN). STOPPED after resock_client_stop, or when max_attempts ran out:
/// the thread leaves a resolve, connect, backoff, handshake or blocked read at once, calls
/// on_disconnect a last time (RESOCK_CLASS_OK, errno ECANCELED) and ends. JOINED once
/// resock_client_join returned 0: no callback runs any more. resock_client_free stops the
/// client and waits for its thread; called from inside a callback it cannot wait, so it
/// turns every further callback off (on_disconnect included) and the thread ends on its
/// own. Either way no callback starts after resock_client_free returns, so `user` may be
/// freed then. No call may start on the client after resock_client_free.
pub struct resock_client {
    inner: Client,
}

/// The C callbacks as a [`Session`]; the C caller vouches that `user` may be used from the
/// client thread.
struct CallbackSession {
    c: resock_client_config,
    /// Built with ABI 1's header: `session` has the old signature.
    v1: bool,
}

// SAFETY: the callbacks and `user` are only used on the client thread, as documented.
unsafe impl Send for CallbackSession {}

/// The C ping and its user pointer, moved into the client's heartbeat.
struct CallbackIdle {
    f: unsafe extern "C" fn(fd: c_int, user: *mut c_void) -> c_int,
    user: *mut c_void,
}

// SAFETY: as for CallbackSession: only called on the client thread.
unsafe impl Send for CallbackIdle {}

impl Session for CallbackSession {
    fn on_connect(&mut self, fd: BorrowedFd<'_>) -> bool {
        // SAFETY: a C callback the caller registered, with its own user pointer.
        self.c
            .on_connect
            .is_none_or(|f| unsafe { f(fd.as_raw_fd(), self.c.user) } == 0)
    }

    fn on_record(&mut self, record: &[u8]) {
        if let Some(f) = self.c.on_record {
            // SAFETY: as above; the record outlives the call.
            unsafe { f(record.as_ptr().cast(), record.len(), self.c.user) };
        }
    }

    fn session(&mut self, reader: &mut Reader<BorrowedFd<'_>>) -> Result<(), Error> {
        let Some(f) = self.c.session else {
            return Ok(());
        };
        type SessionV2 =
            unsafe extern "C" fn(fd: c_int, r: *mut resock_reader, user: *mut c_void) -> c_int;
        let fd = reader.get_ref().as_raw_fd();
        if self.v1 {
            // SAFETY: a caller with ABI 1's struct size registered a function of ABI 1's
            // type: calling it through that type is calling it as it is.
            unsafe { std::mem::transmute::<SessionV2, SessionV1>(f)(fd, self.c.user) };
            return Ok(());
        }
        let handle = lend(reader);
        // SAFETY: as above; the handle is valid until retired below.
        let rc = unsafe { f(fd, handle, self.c.user) };
        // SAFETY: the loan's handle, retired once.
        unsafe { retire(handle) };
        match rc {
            0 => Ok(()),
            errno if errno > 0 => Err(Error::from_errno(errno)),
            _ => Err(Error::from_errno(libc::EIO)),
        }
    }

    fn heartbeat(&mut self) -> Option<OnIdle> {
        let idle = CallbackIdle {
            f: self.c.on_idle?,
            user: self.c.user,
        };
        Some(Box::new(move |fd: BorrowedFd<'_>| {
            let idle = &idle;
            // SAFETY: as above.
            unsafe { (idle.f)(fd.as_raw_fd(), idle.user) == 0 }
        }))
    }

    fn on_state(&mut self, change: &StateChange) {
        if let Some(f) = self.c.on_state {
            let ms = i64::try_from(change.next_delay.as_millis()).unwrap_or(i64::MAX);
            // SAFETY: as above.
            unsafe {
                f(
                    change.state as c_int,
                    change.attempt,
                    ms,
                    change.errno,
                    self.c.user,
                )
            };
        }
    }

    fn on_disconnect(&mut self, class: Class, errno: i32, lived: Duration) {
        if let Some(f) = self.c.on_disconnect {
            let ms = i64::try_from(lived.as_millis()).unwrap_or(i64::MAX);
            // SAFETY: as above.
            unsafe { f(class as c_int, errno, ms, self.c.user) };
        }
    }
}

/// Fills `cfg` with the defaults: the dial defaults (see resock_dial_config), no
/// callbacks, record_size 0. A NULL `cfg` is ignored.
///
/// # Safety
/// `cfg` is NULL or points to writable memory of sizeof(resock_client_config) bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_client_config_init(cfg: *mut resock_client_config) {
    boundary(|| {
        if !cfg.is_null() {
            // SAFETY: non-NULL and writable by contract.
            unsafe {
                cfg.write(resock_client_config {
                    struct_size: size_of::<resock_client_config>(),
                    dial: default_dial_config(),
                    record_size: 0,
                    on_connect: None,
                    on_record: None,
                    session: None,
                    on_disconnect: None,
                    user: std::ptr::null_mut(),
                    idle_timeout_ms: -1,
                    on_idle: None,
                    handshake_timeout_ms: DEFAULT_HANDSHAKE_TIMEOUT.as_millis() as c_int,
                    on_state: None,
                })
            };
        }
    })
}

/// The caller's config, ABI 1's smaller struct included (the fields it lacks take their
/// defaults); true for an ABI 1 struct.
///
/// # Safety
/// `cfg` is non-NULL and valid for `cfg->struct_size` bytes.
unsafe fn config_from_c(
    cfg: *const resock_client_config,
) -> Result<(resock_client_config, bool), Error> {
    // SAFETY: every version starts with its size.
    let size = unsafe { cfg.cast::<usize>().read() };
    if size != CONFIG_V1_SIZE {
        // SAFETY: forwarded contract.
        let c = unsafe { read_sized(cfg, "resock_client_config.struct_size is too small") }?;
        return Ok((c, false));
    }
    let mut c = std::mem::MaybeUninit::<resock_client_config>::uninit();
    // SAFETY: the defaults fill the whole struct, then the caller's V1 prefix (all it has)
    // is copied over them.
    unsafe {
        resock_client_config_init(c.as_mut_ptr());
        std::ptr::copy_nonoverlapping(
            cfg.cast::<u8>(),
            c.as_mut_ptr().cast::<u8>(),
            CONFIG_V1_SIZE,
        );
        Ok((c.assume_init(), true))
    }
}

/// A timeout field where -1 is "none" and 0 is not allowed.
fn positive_ms(ms: c_int, what: &'static str) -> Result<Option<Duration>, Error> {
    match optional_ms(ms, what)? {
        Some(d) if d.is_zero() => Err(Error::InvalidInput(what)),
        other => Ok(other),
    }
}

/// Starts a client thread that dials (with the dialer's backoff), runs the records loop or
/// the session, and reconnects whenever the connection ends, until stopped. Callbacks run
/// on that thread with no resock lock held; they may call resock_client_send,
/// resock_client_stop and resock_client_free. Returns NULL with errno EINVAL for a bad
/// configuration (the dial rules, plus: record_size > 0 without on_record, record_size
/// above RESOCK_CLIENT_MAX_RECORD_SIZE, record_size 0 without session), ENOMEM when the
/// record buffer cannot be allocated, or the error of creating the thread.
///
/// # Safety
/// `cfg` is NULL or a valid resock_client_config; the callbacks and `user` stay valid until
/// resock_client_join returned or resock_client_free.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_client_start(
    cfg: *const resock_client_config,
) -> *mut resock_client {
    boundary(|| {
        ptr_result((|| {
            if cfg.is_null() {
                return Err(Error::InvalidInput("NULL config"));
            }
            // SAFETY: non-NULL; forwarded contract.
            let (c, v1) = unsafe { config_from_c(cfg) }?;
            // SAFETY: the nested struct is part of the caller's valid struct.
            let dial = unsafe { dial_config_from_c(&c.dial) }?;
            let mode = match (c.record_size, c.on_record.is_some(), c.session.is_some()) {
                (0, _, true) => Mode::Session,
                (0, _, false) => return Err(Error::InvalidInput("record_size 0 needs a session")),
                (n, true, _) => Mode::Records(n),
                (_, false, _) => return Err(Error::InvalidInput("record mode needs on_record")),
            };
            let config = ClientConfig {
                idle_timeout: positive_ms(c.idle_timeout_ms, "idle_timeout_ms")?,
                handshake_timeout: positive_ms(c.handshake_timeout_ms, "handshake_timeout_ms")?,
                ..ClientConfig::new(dial, mode)
            };
            let client = Client::start(config, CallbackSession { c, v1 })?;
            Ok(new_handle(resock_client { inner: client }))
        })())
    })
}

/// Writes all `n` bytes to the live connection (serialised with other senders, never
/// raising SIGPIPE), with no deadline (see resock_client_send_opts). Returns 0, or -1 with errno: ENOTCONN while no connection is up or
/// on_connect has not accepted it yet (nothing is buffered for later; on_connect itself
/// writes its handshake to its `fd`), EPIPE/ECONNRESET when it died meanwhile, EINVAL for
/// a NULL client or buffer.
///
/// # Safety
/// `c` is NULL or a live client; `buf` points to `n` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_client_send(
    c: *mut resock_client,
    buf: *const c_void,
    n: usize,
) -> c_int {
    boundary(|| {
        // SAFETY: NULL or live by contract.
        let c = match unsafe { borrow(c, "NULL client") } {
            Ok(c) => c,
            Err(e) => return int_result(Err(e)),
        };
        if buf.is_null() && n > 0 || n > isize::MAX as usize {
            return int_result(Err(Error::InvalidInput("bad buffer")));
        }
        let bytes = if n == 0 {
            &[][..]
        } else {
            // SAFETY: checked non-NULL; the caller vouches for n bytes.
            unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), n) }
        };
        int_result(c.inner.send(bytes).map(|()| 0).map_err(|p| p.error))
    })
}

/// resock_client_send with options and a count: `opts->timeout_ms` bounds the wait for
/// other senders as well as the write, and `opts->flags` are those of resock_writen.
/// Returns `n`, or -1 with errno as resock_client_send plus ETIMEDOUT (and EINTR/EAGAIN
/// when the flags ask for them); `*done` (if not NULL) receives the bytes written. A send
/// that stops after part of the message went out has torn the stream (the peer holds half
/// a message, and the next sender's bytes would follow it): the client hangs that
/// connection up with this errno (on_disconnect sees it) and reconnects. One that stops
/// before any byte went out leaves the connection as it was. A bad `opts`: -1/EINVAL.
///
/// # Safety
/// `c` is NULL or a live client; `buf` points to `n` readable bytes; `opts` is NULL or a
/// valid resock_io_opts; `done` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_client_send_opts(
    c: *mut resock_client,
    buf: *const c_void,
    n: size_t,
    opts: *const resock_io_opts,
    done: *mut size_t,
) -> ssize_t {
    boundary(|| {
        // SAFETY: forwarded contract.
        unsafe {
            with_opts(opts, done, |opts| {
                let c = match borrow(c, "NULL client") {
                    Ok(c) => c,
                    Err(e) => return fail(e, 0, done),
                };
                if buf.is_null() && n > 0 || n > ssize_t::MAX as size_t {
                    return fail(Error::InvalidInput("bad buffer"), 0, done);
                }
                let bytes = if n == 0 {
                    &[][..]
                } else {
                    // SAFETY: checked non-NULL; the caller vouches for n bytes.
                    std::slice::from_raw_parts(buf.cast::<u8>(), n)
                };
                match c.inner.send_with(bytes, opts) {
                    Ok(()) => {
                        store(done, n);
                        n as ssize_t
                    }
                    Err(p) => fail(p.error, p.done, done),
                }
            })
        }
    })
}

/// Forgets the backoff (the network came back): the next attempt starts at once, even if
/// the client is waiting out a backoff right now. Callable from any thread and from the
/// callbacks; NULL is ignored.
///
/// # Safety
/// `c` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_client_reset(c: *mut resock_client) {
    boundary(|| {
        // SAFETY: NULL or live by contract.
        if let Ok(c) = unsafe { borrow(c, "NULL client") } {
            c.inner.reset();
        }
    })
}

/// Stops the client; callable from any thread and from inside its callbacks; never blocks.
/// The thread leaves a connect, a backoff or a blocked read at once (the live socket is
/// shut down). NULL is ignored.
///
/// # Safety
/// `c` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_client_stop(c: *mut resock_client) {
    boundary(|| {
        // SAFETY: NULL or live by contract.
        if let Ok(c) = unsafe { borrow(c, "NULL client") } {
            c.inner.stop();
        }
    })
}

/// Waits up to `timeout_ms` (-1: for ever) for the client thread to end after a stop (or
/// after max_attempts ran out). Returns 0 once joined — no callback runs after that — or
/// -1 with errno: ETIMEDOUT (still running), EDEADLK (called from a callback), EINVAL.
///
/// # Safety
/// `c` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_client_join(c: *mut resock_client, timeout_ms: c_int) -> c_int {
    boundary(|| {
        // SAFETY: NULL or live by contract.
        let c = unsafe { borrow(c, "NULL client") };
        int_result(
            c.and_then(|c| {
                c.inner
                    .join(optional_ms(timeout_ms, "timeout_ms is below -1")?)
            })
            .map(|()| 0),
        )
    })
}

/// Copies a snapshot of the client's counters into `*out` (the dialer's, plus eofs,
/// resets, bytes_in, bytes_out). Either pointer NULL:
/// nothing is written and errno is set to EINVAL (set errno to 0 first to tell).
///
/// # Safety
/// `c` is NULL or a live client; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_client_stats(c: *const resock_client, out: *mut Stats) {
    boundary(|| {
        // SAFETY: NULL or live by contract.
        match unsafe { borrow(c, "NULL client") } {
            // SAFETY: non-NULL out is writable by contract.
            Ok(c) if !out.is_null() => unsafe { out.write(c.inner.stats()) },
            _ => report_errno(libc::EINVAL),
        }
    })
}

/// Stops the client, waits for its thread and frees it. Called from one of its own
/// callbacks it cannot wait: every further callback is turned off (on_disconnect too) and
/// the thread ends on its own after the callback returns. Either way no callback starts
/// after this returns. NULL is ignored.
///
/// # Safety
/// `c` is NULL or a live client; no call may start on it after this one.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_client_free(c: *mut resock_client) {
    boundary(|| {
        // SAFETY: the caller's reference, released once.
        if let Some(c) = unsafe { release(c) } {
            // Here, not in the last reference's drop: a call still in flight elsewhere
            // must not delay the promise that no callback follows this free.
            c.inner.shutdown();
        }
    })
}
