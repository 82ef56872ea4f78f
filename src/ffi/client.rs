//! C exports: the Client thread (`resock_client_*`).

use std::ffi::{c_int, c_void};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use super::dial::{default_dial_config, dial_config_from_c, resock_dial_config};
use super::handle::{borrow, new_handle, release};
use super::{boundary, int_result, optional_ms, ptr_result, read_sized, report_errno};
use crate::client::{Client, ClientConfig, Mode, Session};
use crate::dial::Stats;
use crate::error::{Class, Error};

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
    pub session: Option<unsafe extern "C" fn(fd: c_int, user: *mut c_void)>,
    /// After each connection ends: its RESOCK_CLASS_* (RESOCK_CLASS_OK with errno
    /// ECANCELED when a stop ended it, with errno 0 when the session returned or on_connect
    /// refused it), the errno, and how long it lived in ms. May be NULL.
    pub on_disconnect:
        Option<unsafe extern "C" fn(cls: c_int, errnum: c_int, lived_ms: i64, user: *mut c_void)>,
    /// Passed to every callback.
    pub user: *mut c_void,
}

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
struct CallbackSession(resock_client_config);

// SAFETY: the callbacks and `user` are only used on the client thread, as documented.
unsafe impl Send for CallbackSession {}

impl Session for CallbackSession {
    fn on_connect(&mut self, fd: BorrowedFd<'_>) -> bool {
        // SAFETY: a C callback the caller registered, with its own user pointer.
        self.0
            .on_connect
            .is_none_or(|f| unsafe { f(fd.as_raw_fd(), self.0.user) } == 0)
    }

    fn on_record(&mut self, record: &[u8]) {
        if let Some(f) = self.0.on_record {
            // SAFETY: as above; the record outlives the call.
            unsafe { f(record.as_ptr().cast(), record.len(), self.0.user) };
        }
    }

    fn session(&mut self, fd: BorrowedFd<'_>) {
        if let Some(f) = self.0.session {
            // SAFETY: as above.
            unsafe { f(fd.as_raw_fd(), self.0.user) };
        }
    }

    fn on_disconnect(&mut self, class: Class, errno: i32, lived: Duration) {
        if let Some(f) = self.0.on_disconnect {
            let ms = i64::try_from(lived.as_millis()).unwrap_or(i64::MAX);
            // SAFETY: as above.
            unsafe { f(class as c_int, errno, ms, self.0.user) };
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
                })
            };
        }
    })
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
            let c = unsafe { read_sized(cfg, "resock_client_config.struct_size is too small") }?;
            // SAFETY: the nested struct is part of the caller's valid struct.
            let dial = unsafe { dial_config_from_c(&c.dial) }?;
            let mode = match (c.record_size, c.on_record.is_some(), c.session.is_some()) {
                (0, _, true) => Mode::Session,
                (0, _, false) => return Err(Error::InvalidInput("record_size 0 needs a session")),
                (n, true, _) => Mode::Records(n),
                (_, false, _) => return Err(Error::InvalidInput("record mode needs on_record")),
            };
            let client = Client::start(ClientConfig { dial, mode }, CallbackSession(c))?;
            Ok(new_handle(resock_client { inner: client }))
        })())
    })
}

/// Writes all `n` bytes to the live connection (serialised with other senders, never
/// raising SIGPIPE). Returns 0, or -1 with errno: ENOTCONN while no connection is up or
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
/// resets, bytes_in, bytes_out). Either pointer NULL: errno EINVAL, `*out` untouched.
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
