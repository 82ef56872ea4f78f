//! C exports: the Dialer (`resock_dialer_*`, `resock_dial`, `resock_hangup`).

use std::ffi::{c_char, c_int, c_uint};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::time::Duration;

use super::handle::{borrow, new_handle, release};
use super::{boundary, int_result, ptr_result, read_sized, report_errno, str_arg};
use crate::backoff::BackoffConfig;
use crate::dial::{DialConfig, Dialer, Stats};
use crate::error::Error;
use crate::net::Keepalive;

/// How a dialer reaches its server and retries. Initialise with resock_dial_config_init(),
/// then set `host` and `port` (copied by resock_dialer_new: they need not outlive it).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct resock_dial_config {
    /// sizeof(resock_dial_config): lets the struct grow without breaking old callers.
    pub struct_size: usize,
    /// A name, an IPv4/IPv6 literal, or "unix:/path". Resolved again on every attempt.
    pub host: *const c_char,
    /// A port number or service name (may be NULL for "unix:" hosts).
    pub port: *const c_char,
    /// Limit for one attempt over all addresses, ms (10000). -1: the kernel's (~2 min).
    pub connect_timeout_ms: c_int,
    /// First delay after a failure, ms (100); must be > 0.
    pub backoff_initial_ms: c_int,
    /// Cap on the delay, ms (30000); must be >= backoff_initial_ms.
    pub backoff_max_ms: c_int,
    /// Growth per consecutive failure (2.0); must be >= 1.
    pub backoff_multiplier: f64,
    /// Random fraction of each delay (0.5), in [0, 1]: the delay is uniform in
    /// [d(1-j), d], with d capped first.
    pub backoff_jitter: f64,
    /// Only a connection that lived this long (ms, 2000) resets the backoff; a shorter one
    /// is a flap (accept-then-close) and the backoff keeps growing.
    pub stable_after_ms: c_int,
    /// Attempts one resock_dial makes before it fails with the last errno (0 = forever).
    pub max_attempts: c_uint,
    /// Non-zero: TCP_NODELAY on connected sockets (1).
    pub nodelay: c_int,
    /// Keepalive idle time, s (15); 0 turns keepalive off.
    pub keepalive_idle_s: c_int,
    /// Keepalive probe interval, s (5).
    pub keepalive_intvl_s: c_int,
    /// Unanswered keepalive probes before the connection drops (3).
    pub keepalive_cnt: c_int,
    /// TCP_USER_TIMEOUT, ms (30000); 0 = the kernel default.
    pub user_timeout_ms: c_int,
}

/// A dialer: opaque; create with resock_dialer_new, free with resock_dialer_free.
///
/// Lifecycle. READY after resock_dialer_new: one thread at a time may be inside
/// resock_dial (a second concurrent resock_dial fails with EBUSY); resock_hangup,
/// resock_dialer_reset, resock_dialer_stop and resock_dialer_stats may be called from any
/// thread at any time. STOPPED after resock_dialer_stop (final): a resock_dial in a
/// resolve, connect or backoff returns -1/ECANCELED at once, and every later one at once;
/// resock_hangup still closes. resock_dialer_free stops the dialer and gives up the
/// caller's reference: a resock_dial still running on another thread keeps the dialer
/// alive until it returns -1/ECANCELED, so free may be called while it is inside. No call
/// may start on the dialer after resock_dialer_free.
pub struct resock_dialer {
    inner: Dialer,
}

/// Fills `cfg` with the defaults (see each field); `host` and `port` are NULL. A NULL
/// `cfg` is ignored.
///
/// # Safety
/// `cfg` is NULL or points to writable memory of sizeof(resock_dial_config) bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_dial_config_init(cfg: *mut resock_dial_config) {
    boundary(|| {
        if !cfg.is_null() {
            // SAFETY: non-NULL and writable by contract.
            unsafe { cfg.write(default_dial_config()) };
        }
    })
}

pub(crate) fn default_dial_config() -> resock_dial_config {
    let d = DialConfig::new("", "");
    let keepalive = d.keepalive.unwrap_or(Keepalive {
        idle: Duration::ZERO,
        interval: Duration::ZERO,
        count: 0,
    });
    let ms = |t: Duration| t.as_millis().min(i32::MAX as u128) as c_int;
    resock_dial_config {
        struct_size: size_of::<resock_dial_config>(),
        host: std::ptr::null(),
        port: std::ptr::null(),
        connect_timeout_ms: d.connect_timeout.map_or(-1, ms),
        backoff_initial_ms: ms(d.backoff.initial),
        backoff_max_ms: ms(d.backoff.max),
        backoff_multiplier: d.backoff.multiplier,
        backoff_jitter: d.backoff.jitter,
        stable_after_ms: ms(d.backoff.stable_after),
        max_attempts: d.max_attempts,
        nodelay: c_int::from(d.nodelay),
        keepalive_idle_s: keepalive.idle.as_secs() as c_int,
        keepalive_intvl_s: keepalive.interval.as_secs() as c_int,
        keepalive_cnt: keepalive.count as c_int,
        user_timeout_ms: d.user_timeout.map_or(0, ms),
    }
}

/// The core configuration from a C one; every value checked (EINVAL).
///
/// # Safety
/// `cfg` is non-NULL and valid for `cfg->struct_size` bytes; its strings are NULL or
/// NUL-terminated.
pub(crate) unsafe fn dial_config_from_c(
    cfg: *const resock_dial_config,
) -> Result<DialConfig, Error> {
    // SAFETY: forwarded contract.
    let c = unsafe { read_sized(cfg, "resock_dial_config.struct_size is too small") }?;
    // SAFETY: forwarded contract.
    let host = unsafe { str_arg(c.host) }?.ok_or(Error::InvalidInput("NULL host"))?;
    // SAFETY: forwarded contract.
    let port = unsafe { str_arg(c.port) }?.unwrap_or("");
    let non_negative = |v: c_int, what| u64::try_from(v).map_err(|_| Error::InvalidInput(what));
    let connect_timeout = match c.connect_timeout_ms {
        -1 => None,
        ms => Some(Duration::from_millis(non_negative(
            ms,
            "connect_timeout_ms is below -1",
        )?)),
    };
    let keepalive = match c.keepalive_idle_s {
        0 => None,
        idle => Some(Keepalive {
            idle: Duration::from_secs(non_negative(idle, "keepalive_idle_s is negative")?),
            interval: Duration::from_secs(non_negative(
                c.keepalive_intvl_s,
                "keepalive_intvl_s is negative",
            )?),
            count: u32::try_from(c.keepalive_cnt)
                .map_err(|_| Error::InvalidInput("keepalive_cnt is negative"))?,
        }),
    };
    let user_timeout = non_negative(c.user_timeout_ms, "user_timeout_ms is negative")?;
    let config = DialConfig {
        host: host.to_string(),
        port: port.to_string(),
        connect_timeout,
        backoff: BackoffConfig {
            initial: Duration::from_millis(non_negative(
                c.backoff_initial_ms,
                "backoff_initial_ms is negative",
            )?),
            max: Duration::from_millis(non_negative(
                c.backoff_max_ms,
                "backoff_max_ms is negative",
            )?),
            multiplier: c.backoff_multiplier,
            jitter: c.backoff_jitter,
            stable_after: Duration::from_millis(non_negative(
                c.stable_after_ms,
                "stable_after_ms is negative",
            )?),
        },
        max_attempts: c.max_attempts,
        nodelay: c.nodelay != 0,
        keepalive,
        user_timeout: (user_timeout > 0).then(|| Duration::from_millis(user_timeout)),
        seed: None,
    };
    config.validate()?;
    Ok(config)
}

/// Creates a dialer for `cfg` (copied; no connection is made yet). Returns NULL with errno
/// EINVAL for a bad configuration: NULL cfg or host, a NULL port for TCP, backoff initial
/// 0, multiplier < 1, max < initial, jitter outside [0, 1], negative values, a
/// struct_size that is too small (E2BIG: unknown non-zero trailing fields).
///
/// # Safety
/// `cfg` is NULL or a valid resock_dial_config of `cfg->struct_size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_dialer_new(cfg: *const resock_dial_config) -> *mut resock_dialer {
    boundary(|| {
        ptr_result((|| {
            if cfg.is_null() {
                return Err(Error::InvalidInput("NULL config"));
            }
            // SAFETY: non-NULL; forwarded contract.
            let config = unsafe { dial_config_from_c(cfg) }?;
            Ok(new_handle(resock_dialer {
                inner: Dialer::new(config)?,
            }))
        })())
    })
}

/// Waits out the backoff, then connects, until a connection is made: returns a connected
/// fd that the caller owns (give it back with resock_hangup), or -1 with errno: ECANCELED
/// once resock_dialer_stop was called (it also interrupts a resolve, a connect or a backoff
/// wait); EBUSY while another thread is inside resock_dial on the same dialer; the last
/// connect errno (ECONNREFUSED, ETIMEDOUT, ...) when max_attempts attempts failed; EINVAL
/// for a NULL dialer.
///
/// The seed's client becomes:
/// `for (;;) { fd = resock_dial(d); if (fd < 0) break; while (readn_sync(fd, buf, len) == (ssize_t) len)
/// handle(buf); resock_hangup(d, fd); }`
///
/// # Safety
/// `d` is NULL or a live dialer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_dial(d: *mut resock_dialer) -> c_int {
    boundary(|| {
        // SAFETY: NULL or live by contract.
        let d = unsafe { borrow(d, "NULL dialer") };
        int_result(d.and_then(|d| d.inner.dial()).map(IntoRawFd::into_raw_fd))
    })
}

/// Closes `fd` (a connection from resock_dial) and notes how long it lived: one that lived
/// stable_after_ms resets the backoff (the next dial waits uniform [0, initial]); a shorter
/// one is a flap and the backoff keeps growing. Returns 0, or -1 with errno: EBADF for a
/// negative fd (nothing is noted), EINVAL for a NULL dialer (the fd is not closed), or the
/// close error (the fd is gone either way).
///
/// # Safety
/// `d` is NULL or a live dialer; `fd` is an fd the caller owns and gives up.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_hangup(d: *mut resock_dialer, fd: c_int) -> c_int {
    boundary(|| {
        // SAFETY: NULL or live by contract.
        let d = match unsafe { borrow(d, "NULL dialer") } {
            Ok(d) => d,
            Err(e) => return int_result(Err(e)),
        };
        if fd < 0 {
            return int_result(Err(Error::from_errno(libc::EBADF)));
        }
        // SAFETY: the caller hands its fd over to be closed.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        int_result(d.inner.hangup(fd).map(|_| 0))
    })
}

/// Stops the dialer for good; callable from any thread. A resock_dial blocked in a
/// connect or a backoff returns -1/ECANCELED at once, and so does every later one. NULL is
/// ignored.
///
/// # Safety
/// `d` is NULL or a live dialer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_dialer_stop(d: *mut resock_dialer) {
    boundary(|| {
        // SAFETY: NULL or live by contract.
        if let Ok(d) = unsafe { borrow(d, "NULL dialer") } {
            d.inner.stop();
        }
    })
}

/// Forgets the backoff (the network came back): the next attempt starts at once, even if
/// a resock_dial is waiting out a backoff right now; a connect in progress goes on. A
/// reset while nobody dials applies to the next resock_dial. Callable from any thread;
/// NULL is ignored.
///
/// # Safety
/// `d` is NULL or a live dialer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_dialer_reset(d: *mut resock_dialer) {
    boundary(|| {
        // SAFETY: NULL or live by contract.
        if let Ok(d) = unsafe { borrow(d, "NULL dialer") } {
            d.inner.reset();
        }
    })
}

/// Copies a consistent snapshot of the dialer's counters into `*out`, where attempts =
/// connects + failures. Either pointer NULL: nothing is written and errno is set to EINVAL
/// (set errno to 0 first to tell).
///
/// # Safety
/// `d` is NULL or a live dialer; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_dialer_stats(d: *const resock_dialer, out: *mut Stats) {
    boundary(|| {
        // SAFETY: NULL or live by contract.
        match unsafe { borrow(d, "NULL dialer") } {
            // SAFETY: non-NULL out is writable by contract.
            Ok(d) if !out.is_null() => unsafe { out.write(d.inner.stats()) },
            _ => report_errno(libc::EINVAL),
        }
    })
}

/// Stops the dialer (as resock_dialer_stop) and frees it. A resock_dial still running on
/// another thread returns -1/ECANCELED and the memory goes when it has returned; fds it
/// handed out stay the caller's. NULL is ignored.
///
/// # Safety
/// `d` is NULL or a live dialer; no call may start on it after this one.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_dialer_free(d: *mut resock_dialer) {
    boundary(|| {
        // SAFETY: the caller's reference, released once.
        if let Some(d) = unsafe { release(d) } {
            d.inner.stop();
        }
    })
}
