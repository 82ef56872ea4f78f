//! C exports: errno explanations and version information.

use std::ffi::{CStr, CString, c_char, c_int, c_void};

use super::{boundary, report_errno};
use crate::log::{self, Level};
use crate::{doctor, error};

/// The ABI generation of this library. It changes whenever an existing function, struct or
/// constant changes incompatibly; compare it with `resock_abi_version()` at run time to
/// catch a header and a library from different generations. 2: resock_server_config and
/// resock_accept_stats grew (per-request mode, idle, per-peer and at-cap defences); a
/// client session takes the client's resock_reader and returns why it ended; the client
/// config grew heartbeat, handshake and on_state fields.
pub const RESOCK_ABI_VERSION: c_int = 2;

static VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("the package version contains a NUL byte"),
    };

/// The library's version as a static string, such as "0.1.0" (the same numbers as the
/// RESOCK_VERSION_* macros of the header it was built with). Never NULL; do not free.
#[unsafe(no_mangle)]
pub extern "C" fn resock_version() -> *const c_char {
    boundary(|| VERSION.as_ptr())
}

/// The library's RESOCK_ABI_VERSION. A program built against another generation's header
/// should refuse to run: `if (resock_abi_version() != RESOCK_ABI_VERSION) abort();`.
#[unsafe(no_mangle)]
pub extern "C" fn resock_abi_version() -> c_int {
    boundary(|| RESOCK_ABI_VERSION)
}

/// A static, NUL-terminated explanation of `errnum` on a socket: what the kernel did and
/// what to do (for ECONNRESET: the RST, when peers send it, and why `ab -c 1000` sees it).
/// Every int has a text, unknown ones a generic one. Never NULL; do not free.
#[unsafe(no_mangle)]
pub extern "C" fn resock_explain(errnum: c_int) -> *const c_char {
    boundary(|| error::explain(errnum).as_ptr())
}

/// The RESOCK_CLASS_* value of `errnum` (as an int, so any value is safe to pass):
/// RESET for ECONNRESET, PIPE for EPIPE, RESOURCE for EMFILE, OTHER for unknown values.
#[unsafe(no_mangle)]
pub extern "C" fn resock_classify(errnum: c_int) -> c_int {
    boundary(|| error::classify(errnum) as c_int)
}

/// 1 if `errnum` means the connection is dead and reconnecting is the cure (ECONNRESET,
/// EPIPE, ETIMEDOUT, ECONNREFUSED, unreachable networks, ENOTCONN), else 0. A short count
/// from readn_sync with errno 0 (EOF) also ends the connection, but 0 is not an error here.
#[unsafe(no_mangle)]
pub extern "C" fn resock_should_reconnect(errnum: c_int) -> c_int {
    boundary(|| c_int::from(error::should_reconnect(errnum)))
}

/// A log callback: `level` is a RESOCK_LOG_LEVEL_* value, `msg` a NUL-terminated line
/// valid only during the call.
type LogFn = unsafe extern "C" fn(level: c_int, msg: *const c_char, user: *mut c_void);

struct CLogSink {
    f: LogFn,
    user: *mut c_void,
}

// SAFETY: the caller of resock_set_log vouches that `f` and `user` work from any thread.
unsafe impl Send for CLogSink {}
// SAFETY: as above.
unsafe impl Sync for CLogSink {}

impl CLogSink {
    fn emit(&self, level: Level, msg: &str) {
        // A message with a NUL byte is cut there rather than dropped.
        let msg = CString::new(msg.split('\0').next().unwrap_or_default()).unwrap_or_default();
        // SAFETY: the registered callback, with its own user pointer.
        unsafe { (self.f)(level as c_int, msg.as_ptr(), self.user) };
    }
}

/// Sends resock's log lines (connect failures, flaps, state changes; rate-limited to one
/// line per second per kind, with the count held back) to `f(level, msg, user)`, or
/// silences them (`f` NULL, the default). `level` is a RESOCK_LOG_LEVEL_* value; `msg` is
/// valid only during the call. `f` runs on whichever thread logs, with no resock lock
/// held, and must be thread-safe.
///
/// Lifecycle of the sink: when resock_set_log returns, no thread is inside the previous
/// callback or will enter it — it waits for calls in flight on other threads — so the
/// previous `user` may be freed at once. Called from inside a callback it swaps the sink
/// and returns at once (it cannot wait for its own call, and waiting for another thread
/// that is in the callback and waiting for this one would deadlock): the previous `user`
/// must then stay valid until every call already in it has returned. A callback runs on
/// whichever thread logs, including a client's, a server's accept thread and pool
/// threads: it must not wait for those threads (resock_client_join or resock_client_free
/// of another client, resock_server_join, resock_server_free); a join of the thread it
/// runs on fails with EDEADLK.
///
/// # Safety
/// `f` (if not NULL) and `user` stay valid until the next resock_set_log call returns.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_set_log(
    f: Option<unsafe extern "C" fn(level: c_int, msg: *const c_char, user: *mut c_void)>,
    user: *mut c_void,
) {
    boundary(|| {
        let sink = f.map(|f| {
            let sink = CLogSink { f, user };
            Box::new(move |level: Level, msg: &str| sink.emit(level, msg)) as log::LogSink
        });
        log::set_log(sink);
    })
}

/// Writes the `resock doctor` report — net.ipv4.tcp_syncookies, net.core.somaxconn,
/// tcp_max_syn_backlog, tcp_abort_on_overflow, ip_local_port_range, RLIMIT_NOFILE and the
/// ListenOverflows / ListenDrops / TCPAbortOnData counters, each with what it does under a
/// burst like `ab -c 1000` and what to change — into `buf` as NUL-terminated text,
/// truncated to `len - 1` bytes. Returns the length of the whole report (like snprintf: a
/// result >= len means it was cut; call with NULL, 0 to size a buffer), or -1/EINVAL for a
/// NULL buffer with len > 0.
///
/// # Safety
/// `buf` is NULL (with len 0) or points to `len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_doctor_report(buf: *mut c_char, len: usize) -> libc::ssize_t {
    boundary(|| {
        if buf.is_null() && len > 0 {
            report_errno(libc::EINVAL);
            return -1;
        }
        let text = doctor::render_text(&doctor::report());
        if len > 0 {
            let n = text.len().min(len - 1);
            // SAFETY: n + 1 <= len bytes are writable by contract.
            unsafe {
                std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
                buf.add(n).write(0);
            }
        }
        text.len() as libc::ssize_t
    })
}
