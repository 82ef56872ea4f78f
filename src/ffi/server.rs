//! C exports: the Server (`resock_server_*`).

use std::ffi::{c_char, c_int, c_uint, c_void};
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::time::Duration;

use socket2::SockAddr;

use super::handle::{borrow, new_handle, release};
use super::{boundary, int_result, optional_ms, ptr_result, read_sized, report_errno, str_arg};
use crate::error::Error;
use crate::server::{AcceptStats, AtCap, Handler, RequestHandler, Server, ServerConfig};

/// A connection handler: serves `fd` (accepted, close-on-exec) from `peer`.
type HandlerFn = unsafe extern "C" fn(
    fd: c_int,
    peer: *const libc::sockaddr,
    peerlen: libc::socklen_t,
    user: *mut c_void,
);

/// A request handler: serves what is readable on `fd`; keep or close.
type RequestHandlerFn = unsafe extern "C" fn(
    fd: c_int,
    peer: *const libc::sockaddr,
    peerlen: libc::socklen_t,
    user: *mut c_void,
) -> c_int;

/// A server's configuration. Initialise with resock_server_config_init(), then set `port`
/// and `handler`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct resock_server_config {
    /// sizeof(resock_server_config).
    pub struct_size: usize,
    /// NULL: all addresses (IPv6 and IPv4); or a name, an IP literal, "unix:/path".
    pub host: *const c_char,
    /// The port; "0" picks a free one (resock_server_port tells which).
    pub port: *const c_char,
    /// The listen backlog; <= 0 (the default) asks for the kernel's maximum, so a burst
    /// like `ab -c 1000` is queued instead of reset.
    pub backlog: c_int,
    /// The most connections held at once (1024): handlers running, plus connections parked
    /// with request_handler. What happens at the cap: at_cap.
    pub max_connections: c_uint,
    /// Non-zero: TCP_NODELAY on accepted sockets (1).
    pub nodelay: c_int,
    /// Serves one connection on a pool thread (the seed's thread per connection); NULL
    /// when request_handler is set.
    pub handler: Option<
        unsafe extern "C" fn(
            fd: c_int,
            peer: *const libc::sockaddr,
            peerlen: libc::socklen_t,
            user: *mut c_void,
        ),
    >,
    /// 0: resock closes `fd` when the handler returns. 1: the handler closes it (legacy
    /// handlers that already call close()).
    pub handler_closes_fd: c_int,
    /// Passed to every handler call.
    pub user: *mut c_void,
    /// TCP_DEFER_ACCEPT in seconds (0: off): a connection reaches a handler once the
    /// client sent data, or after about this long (Linux then hands it over anyway), so
    /// clients that connect and say nothing cost no thread meanwhile; pair it with
    /// idle_timeout_ms. Only for protocols where the client speaks first; TCP only
    /// (EINVAL on a "unix:" server).
    pub defer_accept_s: c_int,
    /// SO_RCVTIMEO on accepted sockets, ms (0: none): a handler's read that waits this
    /// long for a byte fails with -1/EAGAIN, so a client silent that long (a slowloris
    /// pausing longer between bytes) frees its thread; the first such read of a connection
    /// through resock's calls is counted in idle_closed. It bounds each wait, not a whole
    /// request: a client dripping bytes faster is not idle (cap those with max_per_peer).
    /// With request_handler, also how long a connection may stay parked (then it is closed
    /// and counted in idle_closed).
    pub idle_timeout_ms: c_int,
    /// The most connections held from one IP address (0: no limit); more are closed at
    /// once and counted in per_peer_rejected.
    pub max_per_peer: c_uint,
    /// What happens at max_connections: RESOCK_AT_CAP_SHED (the default) keeps accepting
    /// and closes the connection parked idle longest, or else the newcomer, so no client
    /// waits unanswered; RESOCK_AT_CAP_WAIT stops accepting until a connection ends (new
    /// clients wait in the kernel's queue).
    pub at_cap: c_int,
    /// Non-NULL selects the per-request mode (then `handler` must be NULL): idle
    /// connections wait in epoll, one thread for all of them, and this runs on one of
    /// pool_threads threads each time a connection is readable. It serves what is there
    /// (the fd is blocking: reads wait for the rest of a request, up to idle_timeout_ms)
    /// and returns RESOCK_REQUEST_KEEP to park the connection again; any other value
    /// (RESOCK_REQUEST_CLOSE, -1 on an error) has resock close it. A connection whose peer
    /// has shut its side down is kept only while unread data remains. It must not close
    /// `fd`.
    pub request_handler: Option<
        unsafe extern "C" fn(
            fd: c_int,
            peer: *const libc::sockaddr,
            peerlen: libc::socklen_t,
            user: *mut c_void,
        ) -> c_int,
    >,
    /// Per-request mode: the threads that run request_handler (64).
    pub pool_threads: c_uint,
}

/// What request_handler returns to have resock close the connection.
pub const RESOCK_REQUEST_CLOSE: c_int = 0;
/// What request_handler returns to park the connection until it is readable again.
pub const RESOCK_REQUEST_KEEP: c_int = 1;

// Only KEEP keeps: a handler's `return -1` on an error closes the connection.
const _: () = assert!(RESOCK_REQUEST_KEEP != RESOCK_REQUEST_CLOSE);

/// A server: opaque; create with resock_server_new, free with resock_server_free.
///
/// Lifecycle. BOUND after resock_server_new (listening; connections queue in the kernel):
/// resock_server_run or resock_server_start, once (again: EBUSY). RUNNING: the accept
/// loop runs on the thread that called resock_server_run, or on its own thread after
/// resock_server_start; resock_server_stop, resock_server_join, resock_server_stats and
/// resock_server_port may be called from any thread and from handlers. STOPPED after
/// resock_server_stop (any thread, a handler too): the loop ends at once, even while it
/// waits at max_connections, and closes the listener and every parked connection
/// (resock_server_run returns 0); running handlers go on, and a request handler's
/// RESOCK_REQUEST_KEEP then closes its connection. resock_server_join waits for the loop wherever it runs, then up
/// to a grace period for handlers; when it returns 0 no handler runs and no thread of the
/// server is left. resock_server_free stops the server, waits for the accept loop (also one
/// in resock_server_run on another thread) and gives up the caller's reference; handlers
/// still running keep the server alive and must find `user` valid until they return (call
/// resock_server_join(s, -1) first to be sure). No call may start on the server after
/// resock_server_free.
pub struct resock_server {
    inner: Server,
}

struct CHandler {
    f: HandlerFn,
    closes_fd: bool,
    user: *mut c_void,
}

// SAFETY: the C caller vouches that its handler and `user` work from any pool thread.
unsafe impl Send for CHandler {}
// SAFETY: as above.
unsafe impl Sync for CHandler {}

/// A C request handler (per-request mode).
struct CRequestHandler {
    f: RequestHandlerFn,
    user: *mut c_void,
}

// SAFETY: the C caller vouches that its handler and `user` work from any pool thread.
unsafe impl Send for CRequestHandler {}
// SAFETY: as above.
unsafe impl Sync for CRequestHandler {}

impl RequestHandler for CRequestHandler {
    fn serve(&self, fd: BorrowedFd<'_>, peer: &SockAddr) -> bool {
        // SAFETY: the registered handler, with a valid address for the call's duration.
        let verdict =
            unsafe { (self.f)(fd.as_raw_fd(), peer.as_ptr().cast(), peer.len(), self.user) };
        verdict == RESOCK_REQUEST_KEEP
    }
}

impl Handler for CHandler {
    fn handle(&self, fd: OwnedFd, peer: SockAddr) {
        let raw = fd.into_raw_fd();
        // SAFETY: the registered handler, with a valid address for the call's duration.
        unsafe { (self.f)(raw, peer.as_ptr().cast(), peer.len(), self.user) };
        if !self.closes_fd {
            // SAFETY: the handler left the fd to us, as configured.
            unsafe { libc::close(raw) };
        }
    }
}

/// Fills `cfg` with the defaults (see each field): all addresses, no port, no handler.
/// A NULL `cfg` is ignored.
///
/// # Safety
/// `cfg` is NULL or points to writable memory of sizeof(resock_server_config) bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_server_config_init(cfg: *mut resock_server_config) {
    boundary(|| {
        if !cfg.is_null() {
            let d = ServerConfig::new(None, "");
            // SAFETY: non-NULL and writable by contract.
            unsafe {
                cfg.write(resock_server_config {
                    struct_size: size_of::<resock_server_config>(),
                    host: std::ptr::null(),
                    port: std::ptr::null(),
                    backlog: d.backlog,
                    max_connections: d.max_connections as c_uint,
                    nodelay: c_int::from(d.nodelay),
                    handler: None,
                    handler_closes_fd: 0,
                    user: std::ptr::null_mut(),
                    defer_accept_s: 0,
                    idle_timeout_ms: 0,
                    max_per_peer: 0,
                    at_cap: AtCap::Shed as c_int,
                    request_handler: None,
                    pool_threads: d.pool_threads as c_uint,
                })
            };
        }
    })
}

/// Binds and listens now — so EADDRINUSE surfaces here and port "0" is known — but
/// accepts nothing until resock_server_run or resock_server_start. Returns NULL with errno:
/// EINVAL (NULL cfg or port, not exactly one of handler and request_handler,
/// max_connections or pool_threads 0, a negative time, an unknown at_cap, struct_size too
/// small, defer_accept_s on a "unix:" server), E2BIG,
/// EADDRINUSE, EACCES.
///
/// # Safety
/// `cfg` is NULL or a valid resock_server_config; the handler and `user` stay valid while
/// handlers may run (until resock_server_join reported 0 running).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_server_new(cfg: *const resock_server_config) -> *mut resock_server {
    boundary(|| {
        ptr_result((|| {
            if cfg.is_null() {
                return Err(Error::InvalidInput("NULL config"));
            }
            // SAFETY: non-NULL; forwarded contract.
            let c = unsafe { read_sized(cfg, "resock_server_config.struct_size is too small") }?;
            // SAFETY: forwarded contract.
            let host = unsafe { str_arg(c.host) }?;
            // SAFETY: forwarded contract.
            let port = unsafe { str_arg(c.port) }?;
            let port = match (host, port) {
                (_, Some(p)) => p,
                (Some(h), None) if crate::net::unix_path(h).is_some() => "",
                _ => return Err(Error::InvalidInput("NULL port")),
            };
            let non_negative =
                |v: c_int, what| u64::try_from(v).map_err(|_| Error::InvalidInput(what));
            let defer = non_negative(c.defer_accept_s, "defer_accept_s is negative")?;
            let idle = non_negative(c.idle_timeout_ms, "idle_timeout_ms is negative")?;
            let config = ServerConfig {
                backlog: c.backlog,
                max_connections: c.max_connections as usize,
                nodelay: c.nodelay != 0,
                defer_accept: (defer > 0).then(|| Duration::from_secs(defer)),
                idle_timeout: (idle > 0).then(|| Duration::from_millis(idle)),
                max_per_peer: c.max_per_peer as usize,
                at_cap: match c.at_cap {
                    c if c == AtCap::Shed as c_int => AtCap::Shed,
                    c if c == AtCap::Wait as c_int => AtCap::Wait,
                    _ => return Err(Error::InvalidInput("at_cap is not a RESOCK_AT_CAP_*")),
                },
                pool_threads: c.pool_threads as usize,
                ..ServerConfig::new(host, port)
            };
            let server = match (c.handler, c.request_handler) {
                (Some(f), None) => Server::new(
                    config,
                    CHandler {
                        f,
                        closes_fd: c.handler_closes_fd != 0,
                        user: c.user,
                    },
                )?,
                (None, Some(f)) => {
                    Server::new_per_request(config, CRequestHandler { f, user: c.user })?
                }
                _ => {
                    return Err(Error::InvalidInput(
                        "exactly one of handler and request_handler",
                    ));
                }
            };
            Ok(new_handle(resock_server { inner: server }))
        })())
    })
}

/// The TCP port the server listens on (after port "0"), or -1 with errno (EINVAL for
/// NULL or a "unix:" server, EBADF once stopped).
///
/// # Safety
/// `s` is NULL or a live server.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_server_port(s: *const resock_server) -> c_int {
    boundary(|| {
        // SAFETY: NULL or live by contract.
        let s = unsafe { borrow(s, "NULL server") };
        int_result(s.and_then(|s| s.inner.local_port()).map(c_int::from))
    })
}

/// Runs the accept loop on the calling thread until resock_server_stop; each connection
/// goes to a pooled thread running the handler. Returns 0 once stopped (the listener is
/// then closed), or -1 with errno (EBUSY if the loop runs or ran already, EINVAL).
///
/// # Safety
/// `s` is NULL or a live server.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_server_run(s: *mut resock_server) -> c_int {
    boundary(|| {
        // SAFETY: NULL or live by contract.
        let s = unsafe { borrow(s, "NULL server") };
        int_result(s.and_then(|s| s.inner.run()).map(|()| 0))
    })
}

/// resock_server_run on a thread of its own; returns 0, or -1 with errno (EBUSY, EAGAIN).
///
/// # Safety
/// `s` is NULL or a live server.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_server_start(s: *mut resock_server) -> c_int {
    boundary(|| {
        // SAFETY: NULL or live by contract.
        let s = unsafe { borrow(s, "NULL server") };
        int_result(s.and_then(|s| s.inner.start()).map(|()| 0))
    })
}

/// Stops accepting at once; callable from any thread, a handler or a signal-driven loop's
/// thread. Running handlers go on. NULL is ignored.
///
/// # Safety
/// `s` is NULL or a live server.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_server_stop(s: *mut resock_server) {
    boundary(|| {
        // SAFETY: NULL or live by contract.
        if let Ok(s) = unsafe { borrow(s, "NULL server") } {
            s.inner.stop();
        }
    })
}

/// Waits for the accept loop to end (after resock_server_stop; wherever the loop runs), then
/// up to `grace_ms` (-1: as long as it takes) for the running handlers. Returns how many
/// handlers are still running (0: all done, and the pool's threads are gone), or -1 with
/// errno: EINVAL (NULL, grace_ms below -1), EDEADLK (grace_ms -1 from one of this server's
/// handlers, or any grace on the accept loop's own thread — a log callback there: either
/// would wait for itself).
///
/// # Safety
/// `s` is NULL or a live server.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_server_join(s: *mut resock_server, grace_ms: c_int) -> c_int {
    boundary(|| {
        // SAFETY: NULL or live by contract.
        let s = unsafe { borrow(s, "NULL server") };
        let grace = optional_ms(grace_ms, "grace_ms is below -1");
        int_result(s.and_then(|s| {
            let running = s.inner.join(grace?.unwrap_or(Duration::MAX))?;
            Ok(c_int::try_from(running).unwrap_or(c_int::MAX))
        }))
    })
}

/// Copies a snapshot of the server's counters into `*out`. Either pointer NULL: nothing is
/// written and errno is set to EINVAL (set errno to 0 first to tell).
///
/// # Safety
/// `s` is NULL or a live server; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_server_stats(s: *const resock_server, out: *mut AcceptStats) {
    boundary(|| {
        // SAFETY: NULL or live by contract.
        match unsafe { borrow(s, "NULL server") } {
            // SAFETY: non-NULL out is writable by contract.
            Ok(s) if !out.is_null() => unsafe { out.write(s.inner.stats()) },
            _ => report_errno(libc::EINVAL),
        }
    })
}

/// Stops the server, waits for its accept loop to end (also a resock_server_run on another
/// thread, which then returns 0), and frees it. Handlers still running finish on their own
/// and keep the server's memory alive until they return; their `user` must stay valid
/// until then. Callable from a handler. On the accept loop's own thread (a log callback
/// there) it cannot wait for the loop: the loop ends right after the callback returns.
/// NULL is ignored.
///
/// # Safety
/// `s` is NULL or a live server; no call may start on it after this one.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_server_free(s: *mut resock_server) {
    boundary(|| {
        // SAFETY: the caller's reference, released once.
        if let Some(s) = unsafe { release(s) } {
            s.inner.stop();
            // A zero grace: wait for the accept loop only, never for handlers.
            let _ = s.inner.join(Duration::ZERO);
        }
    })
}
