//! Errors: the Rust [`Error`] type, errno classification and plain-words explanations.
//!
//! Every failure resock reports maps to one errno (the C ABI's currency) and one [`Class`]
//! (what it means for the connection). [`explain`] turns an errno into the advice the seed
//! gives in prose: RST versus FIN, SIGPIPE, the accept queue behind `ab -c 1000`.

use std::ffi::CStr;
use std::io;

/// What went wrong in a resock call.
///
/// `Eof` is not an OS error: the peer closed its side before the requested count arrived.
/// It maps to errno 0, the convention of gnulib's `full_read` that `readn_sync` follows.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The peer performed an orderly shutdown (FIN; `recv` returned 0) before all bytes came.
    #[error("end of stream: the peer closed the connection (recv returned 0)")]
    Eof,
    /// The call's deadline passed before all bytes moved.
    #[error("deadline expired before all bytes moved")]
    TimedOut,
    /// `write` returned 0 for a non-empty buffer: a broken driver; reported as EIO.
    #[error("write returned 0 bytes for a non-empty buffer")]
    WriteZero,
    /// An argument was rejected before any syscall (EINVAL).
    #[error("invalid argument: {0}")]
    InvalidInput(&'static str),
    /// A syscall failed with this OS error.
    #[error(transparent)]
    Os(#[from] io::Error),
}

impl Error {
    /// An [`Error::Os`] from a raw errno value.
    pub fn from_errno(errnum: i32) -> Self {
        Error::Os(io::Error::from_raw_os_error(errnum))
    }

    /// The errno a C caller sees for this error: 0 for [`Error::Eof`], ETIMEDOUT, EIO,
    /// EINVAL, or the syscall's own (EIO if the OS error carries none).
    pub fn errno(&self) -> i32 {
        match self {
            Error::Eof => 0,
            Error::TimedOut => libc::ETIMEDOUT,
            Error::WriteZero => libc::EIO,
            Error::InvalidInput(_) => libc::EINVAL,
            Error::Os(e) => e.raw_os_error().unwrap_or(libc::EIO),
        }
    }

    /// What this error means for the connection.
    pub fn class(&self) -> Class {
        match self {
            Error::Eof => Class::Eof,
            other => classify(other.errno()),
        }
    }
}

/// An exact-count transfer that stopped early: the bytes that did move, and why it stopped.
///
/// TLPI's and UNP's `readn`, and Rust's `read_exact`, throw this count away; resock always
/// reports it, so a caller can resume or account for every byte.
#[derive(Debug, thiserror::Error)]
#[error("{error} (after {done} bytes)")]
pub struct Partial {
    /// Bytes moved before the call stopped.
    pub done: usize,
    /// Why it stopped.
    #[source]
    pub error: Error,
}

/// What an errno means for a connection, coarse enough to decide what to do next.
///
/// In C these are the `RESOCK_CLASS_*` constants returned by `resock_classify`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// No error (errno 0).
    Ok = 0,
    /// Orderly shutdown by the peer: `recv` returned 0 (FIN).
    Eof = 1,
    /// The peer reset the connection (RST): ECONNRESET, ECONNABORTED.
    Reset = 2,
    /// Writing to a connection the peer has closed: EPIPE (the errno behind SIGPIPE).
    Pipe = 3,
    /// A timer ran out: ETIMEDOUT (connect, keepalive, TCP_USER_TIMEOUT, a resock deadline).
    Timeout = 4,
    /// Nobody listens at that address: ECONNREFUSED.
    Refused = 5,
    /// No route to the peer: ENETUNREACH, EHOSTUNREACH, ENETDOWN, EHOSTDOWN, ENETRESET.
    Unreachable = 6,
    /// A signal interrupted the call: EINTR.
    Interrupted = 7,
    /// The operation would block: EAGAIN/EWOULDBLOCK, EINPROGRESS, EALREADY.
    WouldBlock = 8,
    /// The process or system ran out of something: EMFILE, ENFILE, ENOBUFS, ENOMEM.
    Resource = 9,
    /// The call was wrong, not the network: EBADF, EINVAL, EFAULT, ENOTSOCK.
    Invalid = 10,
    /// Anything else.
    Other = 11,
}

/// Classifies an errno value. Unknown values, including negative ones, are [`Class::Other`].
pub fn classify(errnum: i32) -> Class {
    match errnum {
        0 => Class::Ok,
        libc::ECONNRESET | libc::ECONNABORTED => Class::Reset,
        libc::EPIPE => Class::Pipe,
        libc::ETIMEDOUT | libc::ETIME => Class::Timeout,
        libc::ECONNREFUSED => Class::Refused,
        libc::ENETUNREACH
        | libc::EHOSTUNREACH
        | libc::ENETDOWN
        | libc::EHOSTDOWN
        | libc::ENETRESET => Class::Unreachable,
        libc::EINTR => Class::Interrupted,
        libc::EAGAIN | libc::EINPROGRESS | libc::EALREADY => Class::WouldBlock,
        libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM => Class::Resource,
        libc::EBADF | libc::EINVAL | libc::EFAULT | libc::ENOTSOCK => Class::Invalid,
        _ => Class::Other,
    }
}

/// True when `errnum` means the connection is dead and closing it and reconnecting is the
/// cure (the seed's advice for every `recv <= 0`): resets, EPIPE, ETIMEDOUT, refusals,
/// unreachable networks, ENOTCONN and ESHUTDOWN.
///
/// EOF is not an errno: after `readn_sync` returns a short count with errno 0, the
/// connection is over too. EAGAIN (an SO_RCVTIMEO expiry) and EINTR are not failures of
/// the connection, and EMFILE-style shortages are not cured by reconnecting at once.
pub fn should_reconnect(errnum: i32) -> bool {
    matches!(
        classify(errnum),
        Class::Reset | Class::Pipe | Class::Timeout | Class::Refused | Class::Unreachable
    ) || errnum == libc::ENOTCONN
        || errnum == libc::ESHUTDOWN
}

/// A static explanation of what `errnum` means on a socket and what to do about it.
///
/// Every value has a text: unknown errnos get a generic one that points at `strerror`.
pub fn explain(errnum: i32) -> &'static CStr {
    match errnum {
        0 => {
            c"errno 0: no error. After readn_sync returns a short count with errno 0, the peer \
               closed the connection in order (it sent FIN; recv returned 0): close the socket \
               and reconnect."
        }
        libc::ECONNRESET => {
            c"ECONNRESET (104 on Linux), \"Connection reset by peer\": the peer \
               sent an RST instead of a FIN. It happens when the peer closes with unread data in \
               its receive queue, closes with SO_LINGER {1, 0}, crashes and restarts, or when a \
               listener's accept queue overflows with net.ipv4.tcp_abort_on_overflow=1 (the \
               classic `ab -c 1000` failure). Bytes that arrived before the RST are delivered \
               first, then recv fails once with ECONNRESET. The connection is dead: close the fd \
               and reconnect. A load test that sees it should raise the listen backlog and \
               net.core.somaxconn (run `resock doctor`)."
        }
        libc::EPIPE => {
            c"EPIPE, \"Broken pipe\": a write to a socket or pipe whose other end is \
               closed (the socket received a FIN or RST, or the pipe has no reader). Plain \
               write() also raises SIGPIPE, whose default action kills the process; resock's \
               writes never raise it (MSG_NOSIGNAL on sockets, a per-thread mask on pipes) and \
               return -1/EPIPE instead. The connection is dead: close and reconnect."
        }
        libc::ETIMEDOUT => {
            c"ETIMEDOUT, \"Connection timed out\": a timer ran out: connect got \
               no answer (a black-holed address), keepalive probes went unanswered, sent data \
               stayed unacknowledged past TCP_USER_TIMEOUT, or a resock deadline expired (then \
               *done says how many bytes moved). For a dead peer, close and reconnect."
        }
        libc::ETIME => {
            c"ETIME, \"Timer expired\": a deadline passed (systemd's loops use it \
               where resock uses ETIMEDOUT). Treat it as a timeout."
        }
        libc::ECONNREFUSED => {
            c"ECONNREFUSED, \"Connection refused\": the peer host answered the \
               SYN with an RST: nothing listens on that port (the server is down or \
               restarting). Retry with backoff, not in a busy loop."
        }
        libc::ECONNABORTED => {
            c"ECONNABORTED, \"Software caused connection abort\": accept() \
               returns it when a queued connection was reset before it was accepted. A server \
               should just accept the next one; on a connected socket, reconnect."
        }
        libc::ENOTCONN => {
            c"ENOTCONN, \"Transport endpoint is not connected\": the socket was \
               never connected, or is already shut down. Connect (again) first."
        }
        libc::ESHUTDOWN => {
            c"ESHUTDOWN, \"Cannot send after transport endpoint shutdown\": this \
               side already called shutdown(SHUT_WR). Reconnect to send more."
        }
        libc::ENETUNREACH => {
            c"ENETUNREACH, \"Network is unreachable\": no route to the peer's \
               network (an interface or route is down). Retry with backoff."
        }
        libc::EHOSTUNREACH => {
            c"EHOSTUNREACH, \"No route to host\": the peer host cannot be \
               reached (ARP or ICMP said so). Retry with backoff."
        }
        libc::ENETDOWN => {
            c"ENETDOWN, \"Network is down\": the local interface is down. Retry \
               with backoff once it is up."
        }
        libc::EHOSTDOWN => c"EHOSTDOWN, \"Host is down\". Retry with backoff.",
        libc::ENETRESET => {
            c"ENETRESET, \"Network dropped connection on reset\": the \
               connection died with the network (keepalive saw it). Reconnect."
        }
        libc::EINTR => {
            c"EINTR, \"Interrupted system call\": a signal handler ran before any \
               byte moved. Not an error of the connection: retry the call (resock's _sync calls \
               always do; RESOCK_IO_RETURN_ON_EINTR hands it back to you on purpose)."
        }
        libc::EAGAIN => {
            c"EAGAIN/EWOULDBLOCK, \"Resource temporarily unavailable\": on an \
               O_NONBLOCK fd, no data or buffer space yet (wait with poll and retry); on a \
               blocking socket, the SO_RCVTIMEO/SO_SNDTIMEO you set has expired. resock's _sync \
               calls poll on nonblocking fds and return it only for an expired socket timeout."
        }
        libc::EINPROGRESS => {
            c"EINPROGRESS, \"Operation now in progress\": a nonblocking \
               connect has started; poll for POLLOUT and read SO_ERROR to learn how it ended."
        }
        libc::EALREADY => {
            c"EALREADY, \"Operation already in progress\": a nonblocking connect \
               is still pending on this socket."
        }
        libc::EMFILE => {
            c"EMFILE, \"Too many open files\": this process hit RLIMIT_NOFILE. A \
               server's accept() returns it under load while the connection stays queued; back \
               off and retry (never spin), raise the limit (ulimit -n), and check for fd leaks."
        }
        libc::ENFILE => {
            c"ENFILE, \"Too many open files in system\": the system-wide file table \
               (fs.file-max) is full. Back off and retry."
        }
        libc::ENOBUFS => {
            c"ENOBUFS, \"No buffer space available\": the kernel could not \
               allocate socket memory. Back off and retry."
        }
        libc::ENOMEM => {
            c"ENOMEM, \"Cannot allocate memory\": the kernel or process is out of \
               memory. Back off and retry."
        }
        libc::EBADF => {
            c"EBADF, \"Bad file descriptor\": the fd is not open (closed twice, or \
               never opened), or not open for this direction. A bug in the caller, not the \
               network."
        }
        libc::EINVAL => {
            c"EINVAL, \"Invalid argument\": an argument was rejected (a NULL \
               buffer, a count above SSIZE_MAX, a bad option). A bug in the caller."
        }
        libc::EFAULT => {
            c"EFAULT, \"Bad address\": a buffer pointer points outside the \
               process's memory. A bug in the caller; bytes before the bad page did move."
        }
        libc::ENOTSOCK => {
            c"ENOTSOCK, \"Socket operation on non-socket\": a socket call on a \
               file, pipe or tty. resock's readn/writen fall back to read/write on their own."
        }
        libc::EIO => {
            c"EIO, \"Input/output error\": a device error, or write() returned 0 for a \
               non-empty buffer (resock reports that as EIO, where TLPI and UNP leave a stale \
               errno). resock also returns EIO if a Rust panic was caught at the C boundary."
        }
        libc::EISDIR => {
            c"EISDIR, \"Is a directory\": read() on a directory fd. A bug in the \
               caller."
        }
        libc::EADDRINUSE => {
            c"EADDRINUSE, \"Address already in use\": another socket is bound \
               to that port (or a TIME_WAIT without SO_REUSEADDR). Pick another port or stop the \
               other server."
        }
        libc::EADDRNOTAVAIL => {
            c"EADDRNOTAVAIL, \"Cannot assign requested address\": the local \
               address is not on this host, or the ephemeral ports are exhausted \
               (net.ipv4.ip_local_port_range) by too many connections in TIME_WAIT."
        }
        libc::ECANCELED => {
            c"ECANCELED, \"Operation canceled\": resock was asked to stop (a \
               dialer or client stop) while this call waited."
        }
        _ => {
            c"An errno resock has no specific advice for; see strerror(3). If it came from a \
               socket call, closing the fd and reconnecting is the safe default."
        }
    }
}

/// Every Linux errno name with its value, in the kernel's order (aliases such as
/// EWOULDBLOCK and ENOTSUP after the name they alias), for tools that take or print names.
const ERRNO_NAMES: &[(&str, i32)] = &[
    ("EPERM", libc::EPERM),
    ("ENOENT", libc::ENOENT),
    ("ESRCH", libc::ESRCH),
    ("EINTR", libc::EINTR),
    ("EIO", libc::EIO),
    ("ENXIO", libc::ENXIO),
    ("E2BIG", libc::E2BIG),
    ("ENOEXEC", libc::ENOEXEC),
    ("EBADF", libc::EBADF),
    ("ECHILD", libc::ECHILD),
    ("EAGAIN", libc::EAGAIN),
    ("ENOMEM", libc::ENOMEM),
    ("EACCES", libc::EACCES),
    ("EFAULT", libc::EFAULT),
    ("ENOTBLK", libc::ENOTBLK),
    ("EBUSY", libc::EBUSY),
    ("EEXIST", libc::EEXIST),
    ("EXDEV", libc::EXDEV),
    ("ENODEV", libc::ENODEV),
    ("ENOTDIR", libc::ENOTDIR),
    ("EISDIR", libc::EISDIR),
    ("EINVAL", libc::EINVAL),
    ("ENFILE", libc::ENFILE),
    ("EMFILE", libc::EMFILE),
    ("ENOTTY", libc::ENOTTY),
    ("ETXTBSY", libc::ETXTBSY),
    ("EFBIG", libc::EFBIG),
    ("ENOSPC", libc::ENOSPC),
    ("ESPIPE", libc::ESPIPE),
    ("EROFS", libc::EROFS),
    ("EMLINK", libc::EMLINK),
    ("EPIPE", libc::EPIPE),
    ("EDOM", libc::EDOM),
    ("ERANGE", libc::ERANGE),
    ("EDEADLK", libc::EDEADLK),
    ("ENAMETOOLONG", libc::ENAMETOOLONG),
    ("ENOLCK", libc::ENOLCK),
    ("ENOSYS", libc::ENOSYS),
    ("ENOTEMPTY", libc::ENOTEMPTY),
    ("ELOOP", libc::ELOOP),
    ("EWOULDBLOCK", libc::EWOULDBLOCK),
    ("ENOMSG", libc::ENOMSG),
    ("EIDRM", libc::EIDRM),
    ("ECHRNG", libc::ECHRNG),
    ("EL2NSYNC", libc::EL2NSYNC),
    ("EL3HLT", libc::EL3HLT),
    ("EL3RST", libc::EL3RST),
    ("ELNRNG", libc::ELNRNG),
    ("EUNATCH", libc::EUNATCH),
    ("ENOCSI", libc::ENOCSI),
    ("EL2HLT", libc::EL2HLT),
    ("EBADE", libc::EBADE),
    ("EBADR", libc::EBADR),
    ("EXFULL", libc::EXFULL),
    ("ENOANO", libc::ENOANO),
    ("EBADRQC", libc::EBADRQC),
    ("EBADSLT", libc::EBADSLT),
    ("EDEADLOCK", libc::EDEADLOCK),
    ("EBFONT", libc::EBFONT),
    ("ENOSTR", libc::ENOSTR),
    ("ENODATA", libc::ENODATA),
    ("ETIME", libc::ETIME),
    ("ENOSR", libc::ENOSR),
    ("ENONET", libc::ENONET),
    ("ENOPKG", libc::ENOPKG),
    ("EREMOTE", libc::EREMOTE),
    ("ENOLINK", libc::ENOLINK),
    ("EADV", libc::EADV),
    ("ESRMNT", libc::ESRMNT),
    ("ECOMM", libc::ECOMM),
    ("EPROTO", libc::EPROTO),
    ("EMULTIHOP", libc::EMULTIHOP),
    ("EDOTDOT", libc::EDOTDOT),
    ("EBADMSG", libc::EBADMSG),
    ("EOVERFLOW", libc::EOVERFLOW),
    ("ENOTUNIQ", libc::ENOTUNIQ),
    ("EBADFD", libc::EBADFD),
    ("EREMCHG", libc::EREMCHG),
    ("ELIBACC", libc::ELIBACC),
    ("ELIBBAD", libc::ELIBBAD),
    ("ELIBSCN", libc::ELIBSCN),
    ("ELIBMAX", libc::ELIBMAX),
    ("ELIBEXEC", libc::ELIBEXEC),
    ("EILSEQ", libc::EILSEQ),
    ("ERESTART", libc::ERESTART),
    ("ESTRPIPE", libc::ESTRPIPE),
    ("EUSERS", libc::EUSERS),
    ("ENOTSOCK", libc::ENOTSOCK),
    ("EDESTADDRREQ", libc::EDESTADDRREQ),
    ("EMSGSIZE", libc::EMSGSIZE),
    ("EPROTOTYPE", libc::EPROTOTYPE),
    ("ENOPROTOOPT", libc::ENOPROTOOPT),
    ("EPROTONOSUPPORT", libc::EPROTONOSUPPORT),
    ("ESOCKTNOSUPPORT", libc::ESOCKTNOSUPPORT),
    ("EOPNOTSUPP", libc::EOPNOTSUPP),
    ("ENOTSUP", libc::ENOTSUP),
    ("EPFNOSUPPORT", libc::EPFNOSUPPORT),
    ("EAFNOSUPPORT", libc::EAFNOSUPPORT),
    ("EADDRINUSE", libc::EADDRINUSE),
    ("EADDRNOTAVAIL", libc::EADDRNOTAVAIL),
    ("ENETDOWN", libc::ENETDOWN),
    ("ENETUNREACH", libc::ENETUNREACH),
    ("ENETRESET", libc::ENETRESET),
    ("ECONNABORTED", libc::ECONNABORTED),
    ("ECONNRESET", libc::ECONNRESET),
    ("ENOBUFS", libc::ENOBUFS),
    ("EISCONN", libc::EISCONN),
    ("ENOTCONN", libc::ENOTCONN),
    ("ESHUTDOWN", libc::ESHUTDOWN),
    ("ETOOMANYREFS", libc::ETOOMANYREFS),
    ("ETIMEDOUT", libc::ETIMEDOUT),
    ("ECONNREFUSED", libc::ECONNREFUSED),
    ("EHOSTDOWN", libc::EHOSTDOWN),
    ("EHOSTUNREACH", libc::EHOSTUNREACH),
    ("EALREADY", libc::EALREADY),
    ("EINPROGRESS", libc::EINPROGRESS),
    ("ESTALE", libc::ESTALE),
    ("EUCLEAN", libc::EUCLEAN),
    ("ENOTNAM", libc::ENOTNAM),
    ("ENAVAIL", libc::ENAVAIL),
    ("EISNAM", libc::EISNAM),
    ("EREMOTEIO", libc::EREMOTEIO),
    ("EDQUOT", libc::EDQUOT),
    ("ENOMEDIUM", libc::ENOMEDIUM),
    ("EMEDIUMTYPE", libc::EMEDIUMTYPE),
    ("ECANCELED", libc::ECANCELED),
    ("ENOKEY", libc::ENOKEY),
    ("EKEYEXPIRED", libc::EKEYEXPIRED),
    ("EKEYREVOKED", libc::EKEYREVOKED),
    ("EKEYREJECTED", libc::EKEYREJECTED),
    ("EOWNERDEAD", libc::EOWNERDEAD),
    ("ENOTRECOVERABLE", libc::ENOTRECOVERABLE),
    ("ERFKILL", libc::ERFKILL),
    ("EHWPOISON", libc::EHWPOISON),
];

/// The symbolic name of `errnum` ("ECONNRESET" for 104); for an aliased value the
/// primary name (EAGAIN, not EWOULDBLOCK). None for a value Linux does not define.
pub fn errno_name(errnum: i32) -> Option<&'static str> {
    ERRNO_NAMES
        .iter()
        .find(|&&(_, n)| n == errnum)
        .map(|&(name, _)| name)
}

/// The value of an errno name, ignoring ASCII case ("econnreset" is 104); aliases
/// included. None for a name Linux does not define.
pub fn errno_from_name(name: &str) -> Option<i32> {
    ERRNO_NAMES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|&(_, n)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_the_design_table() {
        assert_eq!(classify(0), Class::Ok);
        assert_eq!(classify(libc::ECONNRESET), Class::Reset);
        assert_eq!(classify(libc::EPIPE), Class::Pipe);
        assert_eq!(classify(libc::ETIMEDOUT), Class::Timeout);
        assert_eq!(classify(libc::ECONNREFUSED), Class::Refused);
        assert_eq!(classify(libc::EHOSTUNREACH), Class::Unreachable);
        assert_eq!(classify(libc::EINTR), Class::Interrupted);
        assert_eq!(classify(libc::EWOULDBLOCK), Class::WouldBlock);
        for e in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert_eq!(classify(e), Class::Resource);
        }
        for e in [libc::EBADF, libc::EINVAL, libc::EFAULT, libc::ENOTSOCK] {
            assert_eq!(classify(e), Class::Invalid);
        }
        assert_eq!(classify(-1), Class::Other);
        assert_eq!(classify(i32::MAX), Class::Other);
    }

    #[test]
    fn reconnect_advice() {
        for e in [
            libc::ECONNRESET,
            libc::EPIPE,
            libc::ETIMEDOUT,
            libc::ECONNREFUSED,
            libc::ENOTCONN,
        ] {
            assert!(should_reconnect(e), "{e}");
        }
        for e in [0, libc::EAGAIN, libc::EINTR, libc::EMFILE, libc::EBADF] {
            assert!(!should_reconnect(e), "{e}");
        }
    }

    #[test]
    fn explanations_carry_the_seed() {
        let reset = explain(libc::ECONNRESET).to_str().unwrap();
        assert!(reset.contains("RST") && reset.contains("104"));
        assert!(explain(libc::EPIPE).to_str().unwrap().contains("SIGPIPE"));
        assert!(!explain(-7).to_bytes().is_empty());
    }

    #[test]
    fn error_errno_mapping() {
        assert_eq!(Error::Eof.errno(), 0);
        assert_eq!(Error::TimedOut.errno(), libc::ETIMEDOUT);
        assert_eq!(Error::WriteZero.errno(), libc::EIO);
        assert_eq!(Error::InvalidInput("x").errno(), libc::EINVAL);
        assert_eq!(Error::from_errno(libc::ECONNRESET).class(), Class::Reset);
        assert_eq!(Error::Eof.class(), Class::Eof);
    }

    #[test]
    fn every_errno_from_1_to_133_has_a_name_that_maps_back() {
        // Linux leaves 41 and 58 unassigned.
        for errnum in (1..=133).filter(|n| ![41, 58].contains(n)) {
            let name = errno_name(errnum).unwrap_or_else(|| panic!("errno {errnum}"));
            assert_eq!(errno_from_name(name), Some(errnum), "{name}");
        }
        assert_eq!(errno_from_name("ewouldblock"), Some(libc::EAGAIN));
        assert_eq!(errno_name(libc::EWOULDBLOCK), Some("EAGAIN"));
        assert_eq!(errno_from_name("ENOTSUP"), Some(libc::EOPNOTSUPP));
        assert_eq!((errno_name(0), errno_from_name("ENOSUCH")), (None, None));
    }
}
