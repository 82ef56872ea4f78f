//! C exports: connect with a timeout, listen, and the socket options.

use std::ffi::{c_char, c_int, c_uint};
use std::os::fd::{BorrowedFd, IntoRawFd};
use std::time::Duration;

use super::{boundary, int_result, optional_ms, str_arg};
use crate::error::Error;
use crate::net::{self, Keepalive};

/// A borrowed fd from C: EBADF for a negative one (socket2 would panic on it).
fn borrowed(fd: c_int) -> Result<BorrowedFd<'static>, Error> {
    if fd < 0 {
        return Err(Error::from_errno(libc::EBADF));
    }
    // SAFETY: non-negative; the C caller keeps it open for the call (never closed here).
    Ok(unsafe { BorrowedFd::borrow_raw(fd) })
}

/// A port argument: required, except for `unix:` hosts.
fn port_or_empty<'a>(host: &str, port: Option<&'a str>) -> Result<&'a str, Error> {
    match port {
        Some(p) => Ok(p),
        None if net::unix_path(host).is_some() => Ok(""),
        None => Err(Error::InvalidInput("NULL port")),
    }
}

/// Connects to `host`:`port` and returns a connected, blocking, close-on-exec fd that the
/// caller owns, or -1 with errno.
///
/// `host` is a name, an IPv4 or IPv6 literal, or "unix:/path" (then `port` is ignored and
/// may be NULL); `port` a number or service name. The name is resolved on every call and
/// the addresses are raced by Happy Eyeballs v2 (RFC 8305): IPv6 and IPv4 interleaved, the
/// next address tried 250 ms after the previous attempt started (at once if it failed),
/// the first connection kept and the others closed, all within `timeout_ms` (-1: the
/// kernel's own limit, about two minutes for an unanswered SYN). A black-holed first
/// address costs 250 ms, not the whole timeout.
///
/// With a timeout, a name (not an IP literal) is resolved on a helper thread, so the
/// timeout bounds the resolve too; a resolve that runs out of time is abandoned and
/// finishes on its own. At most 16 such abandoned resolves may be stuck in the process at
/// once (an unresponsive DNS server); past that, resolving fails with EAGAIN until they
/// finish, rather than piling up threads.
///
/// Errors: ECONNREFUSED (nothing listens), ETIMEDOUT (the time ran out), EHOSTUNREACH
/// (unreachable, or the name does not resolve), EAGAIN (a temporary resolver failure, or
/// the 16 stuck resolves above), EINVAL (NULL host, NULL port for TCP, timeout_ms 0 or
/// below -1, a port that is not a number or service).
///
/// # Safety
/// `host` and `port` are NULL or NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_connect(
    host: *const c_char,
    port: *const c_char,
    timeout_ms: c_int,
) -> c_int {
    boundary(|| {
        int_result((|| {
            // SAFETY: forwarded contract.
            let host = unsafe { str_arg(host) }?.ok_or(Error::InvalidInput("NULL host"))?;
            // SAFETY: forwarded contract.
            let port = port_or_empty(host, unsafe { str_arg(port) }?)?;
            if timeout_ms == 0 {
                return Err(Error::InvalidInput("timeout_ms is 0"));
            }
            let timeout = optional_ms(timeout_ms, "timeout_ms is below -1")?;
            Ok(net::connect(host, port, timeout)?.into_raw_fd())
        })())
    })
}

/// Binds `host`:`port` and listens; returns the listening fd (close-on-exec, SO_REUSEADDR
/// so a restarted server rebinds at once), or -1 with errno.
///
/// `host` NULL (or "") listens on every address — IPv6 and IPv4 on one socket where IPv6
/// exists; "unix:/path" binds an AF_UNIX socket at that path (which must not exist).
/// `port` "0" picks a free port. `backlog <= 0` asks for the kernel's maximum
/// (net.core.somaxconn): a small backlog is why `ab -c 1000` sees "Connection reset by
/// peer". Errors: EADDRINUSE, EACCES, EINVAL (NULL port for TCP).
///
/// # Safety
/// `host` and `port` are NULL or NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_listen(
    host: *const c_char,
    port: *const c_char,
    backlog: c_int,
) -> c_int {
    boundary(|| {
        int_result((|| {
            // SAFETY: forwarded contract.
            let host = unsafe { str_arg(host) }?;
            // SAFETY: forwarded contract.
            let port = port_or_empty(host.unwrap_or(""), unsafe { str_arg(port) }?)?;
            Ok(net::listen(host, port, backlog)?.into_raw_fd())
        })())
    })
}

/// Turns Nagle's algorithm off (`on` non-zero: TCP_NODELAY) or on. Without it, a small
/// write waits for the ACK of earlier data, and with the peer's delayed ACK a
/// write-write-read exchange stalls ~40 ms. Returns 0, or -1 with errno (EBADF, ENOTSOCK,
/// EOPNOTSUPP for AF_UNIX).
#[unsafe(no_mangle)]
pub extern "C" fn resock_set_nodelay(fd: c_int, on: c_int) -> c_int {
    boundary(|| {
        int_result(borrowed(fd).and_then(|fd| Ok(net::set_nodelay(fd, on != 0).map(|()| 0)?)))
    })
}

/// Enables TCP keepalive: the first probe after `idle_s` seconds of silence, then every
/// `intvl_s` seconds, dropping the connection (ETIMEDOUT) after `cnt` unanswered probes.
/// `idle_s` 0 turns keepalive off (then `intvl_s` and `cnt` are ignored). Linux's defaults
/// notice a dead peer only after ~2 h 11 min. Returns 0, or -1 with errno (EINVAL for
/// negative values, or a zero interval or count with keepalive on).
#[unsafe(no_mangle)]
pub extern "C" fn resock_set_keepalive(
    fd: c_int,
    idle_s: c_int,
    intvl_s: c_int,
    cnt: c_int,
) -> c_int {
    boundary(|| {
        int_result(borrowed(fd).and_then(|fd| {
            let keepalive = match (idle_s, intvl_s, cnt) {
                (0, _, _) => None,
                (i, v, c) if i > 0 && v > 0 && c > 0 => Some(Keepalive {
                    idle: Duration::from_secs(i as u64),
                    interval: Duration::from_secs(v as u64),
                    count: c as u32,
                }),
                _ => return Err(Error::InvalidInput("keepalive values must be > 0")),
            };
            Ok(net::set_keepalive(fd, keepalive).map(|()| 0)?)
        }))
    })
}

/// Sets TCP_USER_TIMEOUT: after `ms` milliseconds with sent data unacknowledged, the
/// kernel drops the connection and reads and writes fail with ETIMEDOUT (0: the kernel
/// default, up to ~20 minutes of retransmissions). The only way a blocked writen_sync fails
/// fast on a vanished peer. Returns 0, or -1 with errno.
#[unsafe(no_mangle)]
pub extern "C" fn resock_set_user_timeout(fd: c_int, ms: c_uint) -> c_int {
    boundary(|| {
        int_result(borrowed(fd).and_then(|fd| {
            let timeout = (ms > 0).then(|| Duration::from_millis(u64::from(ms)));
            Ok(net::set_user_timeout(fd, timeout).map(|()| 0)?)
        }))
    })
}
