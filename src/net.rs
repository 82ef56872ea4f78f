//! Resolving, connecting with a timeout, listening, and the socket options that decide how
//! fast a dead peer is noticed — through socket2, not hand-rolled setsockopt.
//!
//! A `host` is a name, an IPv4 or IPv6 literal, or `unix:/path` (AF_UNIX; the port is then
//! ignored). A `port` is a number or a service name. Names are resolved on every call, so a
//! reconnect follows DNS changes, and the addresses are raced by Happy Eyeballs v2 (RFC
//! 8305) within the time left.
//! Every fd created here is close-on-exec.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! let listener = resock::net::listen(Some("127.0.0.1"), "0", 0)?;
//! let port = resock::net::local_port(&listener)?.to_string();
//! let conn = resock::net::connect("127.0.0.1", &port, Some(Duration::from_secs(1)))?;
//! resock::net::set_nodelay(&conn, true)?;
//! # Ok::<(), resock::Error>(())
//! ```

use std::ffi::CString;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, SockRef, Socket, TcpKeepalive, Type};

use crate::error::Error;
use crate::wake::{self, Wake, Woken};

/// TCP keepalive settings: a dead idle peer is noticed after about
/// `idle + interval · count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before the first probe (TCP_KEEPIDLE).
    pub idle: Duration,
    /// Time between probes (TCP_KEEPINTVL).
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped with ETIMEDOUT (TCP_KEEPCNT).
    pub count: u32,
}

/// The path of a `unix:/path` host, if it is one.
pub(crate) fn unix_path(host: &str) -> Option<&str> {
    host.strip_prefix("unix:")
}

/// Resolves `host` and `port` to the addresses to try, in the resolver's order.
/// `host` None means every local address (for listening).
///
/// # Errors
///
/// EINVAL for a bad port or a string with a NUL byte; EHOSTUNREACH when the name does not
/// resolve (a DNS outage is cured by retrying later, like an unreachable host); EAGAIN for
/// a temporary resolver failure.
pub fn resolve(host: Option<&str>, port: &str) -> Result<Vec<SocketAddr>, Error> {
    let c_host = host
        .map(CString::new)
        .transpose()
        .map_err(|_| Error::InvalidInput("host contains a NUL byte"))?;
    let c_port = CString::new(port).map_err(|_| Error::InvalidInput("port contains a NUL byte"))?;
    // SAFETY: addrinfo is plain data; zeroed is the documented way to start hints.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = libc::SOCK_STREAM;
    hints.ai_flags = if host.is_none() { libc::AI_PASSIVE } else { 0 };
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C strings (or NULL host), valid hints, and an out-pointer.
    let rc = unsafe {
        libc::getaddrinfo(
            c_host.as_ref().map_or(std::ptr::null(), |h| h.as_ptr()),
            c_port.as_ptr(),
            &hints,
            &mut list,
        )
    };
    if rc != 0 {
        return Err(match rc {
            libc::EAI_SYSTEM => Error::Os(io::Error::last_os_error()),
            libc::EAI_AGAIN => Error::from_errno(libc::EAGAIN),
            libc::EAI_MEMORY => Error::from_errno(libc::ENOMEM),
            libc::EAI_SERVICE | libc::EAI_SOCKTYPE | libc::EAI_BADFLAGS => {
                Error::InvalidInput("port is not a number or a known service")
            }
            _ => Error::from_errno(libc::EHOSTUNREACH),
        });
    }
    let mut addrs = Vec::new();
    let mut at = list;
    while !at.is_null() {
        // SAFETY: getaddrinfo returned a valid list; each ai_addr matches its ai_family.
        let ai = unsafe { &*at };
        match ai.ai_family {
            libc::AF_INET => {
                // SAFETY: an AF_INET entry holds a sockaddr_in.
                let sin = unsafe { &*ai.ai_addr.cast::<libc::sockaddr_in>() };
                addrs.push(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                    u16::from_be(sin.sin_port),
                )));
            }
            libc::AF_INET6 => {
                // SAFETY: an AF_INET6 entry holds a sockaddr_in6.
                let sin6 = unsafe { &*ai.ai_addr.cast::<libc::sockaddr_in6>() };
                addrs.push(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )));
            }
            _ => {}
        }
        at = ai.ai_next;
    }
    // SAFETY: the list came from getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(list) };
    addrs.dedup();
    Ok(addrs)
}

/// Connects to `host`:`port` within `timeout` (None: the kernel's own, about two minutes
/// for an unanswered SYN), racing the addresses by Happy Eyeballs v2 (RFC 8305): IPv6 and
/// IPv4 interleaved, the next attempt started [`ATTEMPT_DELAY`] after the previous one
/// unless that failed sooner, the first connection wins and the others are closed. A
/// black-holed first address costs 250 ms, not the whole timeout.
///
/// # Errors
///
/// The last address's connect error (ECONNREFUSED when nothing listens), ETIMEDOUT when the
/// time ran out, or a resolve error (see [`resolve`]).
pub fn connect(host: &str, port: &str, timeout: Option<Duration>) -> Result<OwnedFd, Error> {
    connect_cancelable(host, port, timeout, &[])
}

/// RFC 8305's Connection Attempt Delay: how long an attempt has before the next address
/// is tried beside it.
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// [`connect`] that gives up with ECANCELED as soon as one of `wakes` is signalled, in
/// the resolve as well as in the connects; `timeout` bounds both.
pub(crate) fn connect_cancelable(
    host: &str,
    port: &str,
    timeout: Option<Duration>,
    wakes: &[&Wake],
) -> Result<OwnedFd, Error> {
    let deadline = timeout.and_then(wake::deadline_after);
    if let Some(path) = unix_path(host) {
        let addr = SockAddr::unix(path)?;
        return connect_one(&addr, Domain::UNIX, deadline, wakes);
    }
    let addrs = resolve_cancelable(host, port, wakes, deadline)?;
    race(&interleave(addrs), deadline, wakes)
}

/// The addresses in RFC 8305's order: alternating families, starting with the family of
/// the resolver's first choice, each family in the resolver's order.
fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return addrs;
    };
    let v6_first = first.is_ipv6();
    let (mut lead, mut other): (Vec<_>, Vec<_>) =
        addrs.into_iter().partition(|a| a.is_ipv6() == v6_first);
    let mut out = Vec::with_capacity(lead.len() + other.len());
    lead.reverse();
    other.reverse();
    loop {
        match (lead.pop(), other.pop()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

/// An attempt that has not finished yet.
struct Attempt {
    socket: Socket,
}

/// Happy Eyeballs over `addrs`, in order: see [`connect`].
fn race(
    addrs: &[SocketAddr],
    deadline: Option<Instant>,
    wakes: &[&Wake],
) -> Result<OwnedFd, Error> {
    let mut last = Error::from_errno(libc::EHOSTUNREACH);
    let mut pending: Vec<Attempt> = Vec::new();
    let mut next = 0;
    let mut next_start = Instant::now();
    loop {
        let expired = deadline.is_some_and(|d| Instant::now() >= d);
        // No attempt starts past the deadline.
        if !expired && next < addrs.len() && (pending.is_empty() || Instant::now() >= next_start) {
            let addr = addrs[next];
            next += 1;
            next_start = Instant::now() + ATTEMPT_DELAY;
            match start_connect(&SockAddr::from(addr), Domain::for_address(addr)) {
                Ok((socket, true)) => return finish_connect(socket),
                Ok((socket, false)) => pending.push(Attempt { socket }),
                // Failed at once (no route for this family): the next one starts now.
                Err(e) => {
                    last = e;
                    next_start = Instant::now();
                }
            }
            continue;
        }
        if pending.is_empty() {
            return Err(if expired && next < addrs.len() {
                Error::TimedOut
            } else {
                last
            });
        }
        let until = if next < addrs.len() {
            Some(deadline.map_or(next_start, |d| d.min(next_start)))
        } else {
            deadline
        };
        // Past the deadline, one look without waiting: an attempt that already finished
        // (refused, or connected) is reported as it is, not as a timeout.
        let timeout_ms = wake::poll_timeout(until).unwrap_or(0);
        let mut fds: Vec<libc::pollfd> = wakes
            .iter()
            .map(|w| libc::pollfd {
                fd: w.raw(),
                events: libc::POLLIN,
                revents: 0,
            })
            .chain(pending.iter().map(|a| libc::pollfd {
                fd: a.socket.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            }))
            .collect();
        crate::test_hooks::pause("net.race_wait");
        // SAFETY: valid pollfds for the length given.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e.into());
        }
        if fds[..wakes.len()].iter().any(|p| p.revents != 0) {
            return Err(Error::from_errno(libc::ECANCELED));
        }
        // Oldest first: the first finished attempt wins; dropping the rest closes them.
        let mut i = 0;
        for p in &fds[wakes.len()..] {
            if p.revents == 0 {
                i += 1;
                continue;
            }
            let attempt = pending.remove(i);
            match attempt.socket.take_error() {
                Ok(None) => return finish_connect(attempt.socket),
                Ok(Some(e)) | Err(e) => {
                    last = e.into();
                    next_start = Instant::now();
                }
            }
        }
        if expired && !pending.is_empty() {
            return Err(Error::TimedOut);
        }
    }
}

/// Starts a nonblocking connect: (socket, true) if it connected at once.
fn start_connect(addr: &SockAddr, domain: Domain) -> Result<(Socket, bool), Error> {
    let socket = Socket::new(domain, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    match socket.connect(addr) {
        Ok(()) => Ok((socket, true)),
        // EINTR: the connect goes on asynchronously, exactly as after EINPROGRESS.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINPROGRESS | libc::EINTR)) => {
            Ok((socket, false))
        }
        Err(e) => Err(e.into()),
    }
}

/// The winner, blocking again as the caller expects.
fn finish_connect(socket: Socket) -> Result<OwnedFd, Error> {
    socket.set_nonblocking(false)?;
    Ok(socket.into())
}

/// Resolver threads that may be left behind by cancelled resolves at once; past this a
/// resolve fails with EAGAIN instead of piling up threads on a hung resolver.
const MAX_RESOLVER_THREADS: usize = 16;

static RESOLVER_THREADS: AtomicUsize = AtomicUsize::new(0);

/// What a resolver thread hands back: the result, and a wake fd that says it is there.
type Handoff = (Wake, Mutex<Option<Result<Vec<SocketAddr>, Error>>>);

/// [`resolve`] that a stop or the deadline can interrupt. getaddrinfo cannot be cancelled
/// (an unresponsive DNS server holds it for seconds), so a name is resolved on a helper
/// thread. On ECANCELED or ETIMEDOUT the thread is abandoned and finishes on its own;
/// otherwise it is joined, so no fd of it outlives the call. An IP literal with a numeric
/// port, or a call nothing can interrupt, needs no thread.
fn resolve_cancelable(
    host: &str,
    port: &str,
    wakes: &[&Wake],
    deadline: Option<Instant>,
) -> Result<Vec<SocketAddr>, Error> {
    #[cfg(feature = "test-hooks")]
    if let Some(addrs) = crate::test_hooks::resolved(host) {
        return Ok(addrs);
    }
    if let (Ok(ip), Ok(port)) = (host.parse::<IpAddr>(), port.parse::<u16>()) {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if wakes.is_empty() && deadline.is_none() {
        return resolve(Some(host), port);
    }
    if RESOLVER_THREADS.fetch_add(1, Ordering::AcqRel) >= MAX_RESOLVER_THREADS {
        RESOLVER_THREADS.fetch_sub(1, Ordering::AcqRel);
        return Err(Error::from_errno(libc::EAGAIN));
    }
    let handoff: Arc<Handoff> = match Wake::new() {
        Ok(wake) => Arc::new((wake, Mutex::new(None))),
        Err(e) => {
            RESOLVER_THREADS.fetch_sub(1, Ordering::AcqRel);
            return Err(e.into());
        }
    };
    let spawned = {
        let (handoff, host, port) = (handoff.clone(), host.to_string(), port.to_string());
        std::thread::Builder::new()
            .name("resock-resolve".into())
            .spawn(move || {
                crate::test_hooks::pause("net.resolve");
                let result = resolve(Some(&host), &port);
                *handoff.1.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                handoff.0.signal();
                RESOLVER_THREADS.fetch_sub(1, Ordering::AcqRel);
            })
    };
    let thread = match spawned {
        Ok(thread) => thread,
        Err(e) => {
            RESOLVER_THREADS.fetch_sub(1, Ordering::AcqRel);
            return Err(e.into());
        }
    };
    match wake::wait(Some(handoff.0.raw()), libc::POLLIN, wakes, deadline)? {
        Woken::Ready => {}
        Woken::Wake => return Err(Error::from_errno(libc::ECANCELED)),
        Woken::Timeout => return Err(Error::TimedOut),
    }
    // The result is there: the thread is finishing, and its reference goes with it.
    let _ = thread.join();
    let result = handoff.1.lock().unwrap_or_else(|e| e.into_inner()).take();
    result.unwrap_or(Err(Error::from_errno(libc::EIO)))
}

/// One nonblocking connect (an AF_UNIX path), polled against the deadline and the wake
/// fd, then SO_ERROR.
fn connect_one(
    addr: &SockAddr,
    domain: Domain,
    deadline: Option<Instant>,
    wakes: &[&Wake],
) -> Result<OwnedFd, Error> {
    let (socket, connected) = start_connect(addr, domain)?;
    if !connected {
        match wake::wait(Some(socket.as_raw_fd()), libc::POLLOUT, wakes, deadline)? {
            Woken::Ready => {
                if let Some(err) = socket.take_error()? {
                    return Err(err.into());
                }
            }
            Woken::Wake => return Err(Error::from_errno(libc::ECANCELED)),
            Woken::Timeout => return Err(Error::TimedOut),
        }
    }
    finish_connect(socket)
}

/// Binds and listens: SO_REUSEADDR (a restarted server rebinds at once despite TIME_WAIT),
/// `backlog <= 0` for the kernel's maximum (net.core.somaxconn). `host` None listens on
/// every address, IPv6 and IPv4 on one socket where the system has IPv6.
///
/// # Errors
///
/// EADDRINUSE when the port is taken, resolve errors, and the socket calls' own.
pub fn listen(host: Option<&str>, port: &str, backlog: i32) -> Result<OwnedFd, Error> {
    // The kernel clamps any larger value to net.core.somaxconn: asking for the most gets it.
    let backlog = if backlog <= 0 { i32::MAX } else { backlog };
    if let Some(path) = host.and_then(unix_path) {
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        socket.bind(&SockAddr::unix(path)?)?;
        socket.listen(backlog)?;
        return Ok(socket.into());
    }
    let host = host.filter(|h| !h.is_empty());
    let mut addrs = resolve(host, port)?;
    if host.is_none() {
        // One dual-stack IPv6 socket covers both families; IPv4 is the fallback.
        addrs.sort_by_key(|a| a.is_ipv4());
    }
    let mut last = Error::from_errno(libc::EADDRNOTAVAIL);
    for addr in addrs {
        match listen_one(addr, backlog, host.is_none()) {
            Ok(fd) => return Ok(fd),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn listen_one(addr: SocketAddr, backlog: i32, dual_stack: bool) -> Result<OwnedFd, Error> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() && dual_stack {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// The local port a socket is bound to (after listening on port "0").
///
/// # Errors
///
/// The getsockname error, or EINVAL for a socket that has no port (AF_UNIX).
pub fn local_port(fd: impl AsFd) -> Result<u16, Error> {
    let addr = SockRef::from(&fd).local_addr()?;
    addr.as_socket()
        .map(|a| a.port())
        .ok_or(Error::InvalidInput("the socket has no port"))
}

/// Turns Nagle's algorithm off (`on`) or back on: TCP_NODELAY. With Nagle on, a small
/// write waits while earlier data is unacknowledged, and with the peer's delayed ACK a
/// write-write-read exchange stalls about 40 ms.
///
/// # Errors
///
/// The setsockopt error (ENOTSOCK, EOPNOTSUPP on AF_UNIX).
pub fn set_nodelay(fd: impl AsFd, on: bool) -> io::Result<()> {
    SockRef::from(&fd).set_tcp_nodelay(on)
}

/// Enables TCP keepalive with these timings, or disables it (`None`). Linux's defaults
/// would notice a dead idle peer only after about 2 h 11 min.
///
/// # Errors
///
/// The setsockopt error.
pub fn set_keepalive(fd: impl AsFd, keepalive: Option<Keepalive>) -> io::Result<()> {
    let sock = SockRef::from(&fd);
    match keepalive {
        None => sock.set_keepalive(false),
        Some(k) => sock.set_tcp_keepalive(
            &TcpKeepalive::new()
                .with_time(k.idle)
                .with_interval(k.interval)
                .with_retries(k.count),
        ),
    }
}

/// Sets TCP_USER_TIMEOUT: how long sent data may stay unacknowledged before the kernel
/// drops the connection with ETIMEDOUT (`None`: the kernel default, up to ~20 minutes of
/// retransmissions). Keepalive does not cover a peer that vanishes while data is in flight;
/// this does.
///
/// # Errors
///
/// The setsockopt error.
pub fn set_user_timeout(fd: impl AsFd, timeout: Option<Duration>) -> io::Result<()> {
    SockRef::from(&fd).set_tcp_user_timeout(timeout)
}

/// Sets TCP_DEFER_ACCEPT on a listener: a connection reaches accept once the client sent
/// data, or after about `wait` (rounded up to whole seconds of SYN-ACK retries), when
/// Linux hands it over anyway. For protocols where the client speaks first: a client that
/// connects and says nothing occupies no handler meanwhile.
///
/// # Errors
///
/// The setsockopt error (EOPNOTSUPP on AF_UNIX).
pub fn set_defer_accept(fd: impl AsFd, wait: Duration) -> io::Result<()> {
    let secs = libc::c_int::try_from(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
        .unwrap_or(libc::c_int::MAX);
    // SAFETY: a valid fd and a c_int option value of the right size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_fd().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&secs as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn families_alternate_starting_with_the_resolvers_first_choice() {
        let got = interleave(vec![
            a("[::1]:1"),
            a("[::2]:1"),
            a("[::3]:1"),
            a("10.0.0.1:1"),
            a("10.0.0.2:1"),
        ]);
        let want = ["[::1]:1", "10.0.0.1:1", "[::2]:1", "10.0.0.2:1", "[::3]:1"].map(a);
        assert_eq!(got, want);
        let got = interleave(vec![a("10.0.0.1:1"), a("10.0.0.2:1"), a("[::1]:1")]);
        assert_eq!(got, ["10.0.0.1:1", "[::1]:1", "10.0.0.2:1"].map(a));
        assert!(interleave(Vec::new()).is_empty());
    }
}
