//! C exports: the seed's exact-count calls (`readn_sync`, `writen_sync`, ...) and their rich
//! variants with a deadline, flags and a count that survives errors.
//!
//! The doc comments here are the header's C documentation; each states its memory
//! contract in a "Memory:" paragraph instead of a Rust `# Safety` heading.
#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_int, c_void};
use std::mem::size_of;

use libc::{iovec, size_t, ssize_t};

use super::{boundary, optional_ms, read_sized, report_errno};
use crate::error::{Error, Partial};
use crate::io::{self, LineEnd, Opts};

/// `opts.flags`: a signal whose handler runs while the call waits ends the call with
/// -1/EINTR and `*done` = the bytes moved so far, so a signal handler can cancel it: also
/// after some bytes moved, and also when the handler was installed with SA_RESTART (glibc
/// signal()). With this flag every syscall of the call is nonblocking and the only wait is
/// poll(2), which the kernel never restarts. A signal whose handler runs between two
/// syscalls, while the call is not waiting, does not end it; disk reads and writes of
/// regular files are not interrupted. By default EINTR is retried.
pub const RESOCK_IO_RETURN_ON_EINTR: u32 = 1;
/// `opts.flags`: on an O_NONBLOCK fd, return -1/EAGAIN (with `*done`) when the fd is not
/// ready, for event loops that resume later. By default the call polls and goes on.
pub const RESOCK_IO_RETURN_ON_EAGAIN: u32 = 2;

const KNOWN_FLAGS: u32 = RESOCK_IO_RETURN_ON_EINTR | RESOCK_IO_RETURN_ON_EAGAIN;

/// The most iovecs writev_sync accepts (Linux's IOV_MAX).
const IOV_MAX: c_int = 1024;

/// Iovec arrays up to this size are copied on the stack, larger ones on the heap.
const IOV_ON_STACK: usize = 32;

/// Options for resock_readn, resock_writen, resock_writev and resock_readline.
/// Initialise with resock_io_opts_init(), then change fields: a struct from a newer header
/// is accepted as long as the fields this library does not know are zero.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct resock_io_opts {
    /// sizeof(resock_io_opts): lets the struct grow without breaking old callers.
    pub struct_size: size_t,
    /// Deadline for the whole call in milliseconds, on CLOCK_MONOTONIC from the call's
    /// start; -1 = none. It is checked before every syscall after the first, so 0 means
    /// one nonblocking attempt: it moves what is ready now and returns -1/ETIMEDOUT if that
    /// was not everything (even if EOF would come next). Expiry returns -1/ETIMEDOUT with
    /// `*done` set. No syscall blocks past it on sockets (MSG_DONTWAIT), pipes, FIFOs and
    /// eventfd reads (preadv2/pwritev2 with RWF_NOWAIT), blocking or not. Weaker: fds
    /// without a per-call nonblocking mode (ttys, other character devices, eventfd writes)
    /// are polled, then read or written with a plain syscall, which can block past the
    /// deadline if another thread takes the data or the room in between, or if the fd says
    /// it is writable without room for this write (an eventfd counter near its maximum);
    /// set O_NONBLOCK on such fds for a hard bound. Regular files and block devices: the
    /// disk wait inside one syscall is not bounded.
    pub timeout_ms: c_int,
    /// RESOCK_IO_RETURN_ON_EINTR | RESOCK_IO_RETURN_ON_EAGAIN, or 0.
    pub flags: u32,
}

/// Fills `opts` with the defaults of the _sync calls: struct_size set, no deadline, no
/// flags. A NULL `opts` is ignored.
///
/// Memory: `opts` is NULL or points to writable memory of sizeof(resock_io_opts) bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_io_opts_init(opts: *mut resock_io_opts) {
    boundary(|| {
        if !opts.is_null() {
            // SAFETY: non-NULL and, by the contract, writable.
            unsafe {
                opts.write(resock_io_opts {
                    struct_size: size_of::<resock_io_opts>(),
                    timeout_ms: -1,
                    flags: 0,
                })
            };
        }
    })
}

/// Reads exactly `n` bytes from `fd` into `buffer` — the seed's readn_sync, hardened.
///
/// Returns `n` once all bytes are read. At EOF (the peer closed: FIN) it returns the count
/// read so far, 0..n-1, and sets errno to 0. On error it returns -1 with errno from the
/// failing syscall (ECONNRESET after an RST; EAGAIN when a blocking socket's SO_RCVTIMEO
/// expired); bytes read before the error are consumed — use resock_readn to learn how many.
/// On success errno is untouched.
///
/// Fds: stream sockets (TCP, AF_UNIX SOCK_STREAM), pipes, FIFOs, files, ttys. Datagram,
/// seqpacket and raw sockets are refused with -1/EPROTOTYPE before any byte moves: they
/// carry records, and a record longer than the request would lose its tail, an empty one
/// would look like EOF. Read them with recv(2).
///
/// Cost: one syscall per call on a stream socket (recvmsg with MSG_WAITALL reads the whole
/// message) and on a pipe, FIFO or file with the bytes there (read(2)). To know which is
/// which without a syscall, resock remembers per fd number whether it was a stream socket
/// or not a socket, and forgets at EOF and on errors. If a program closes such an fd
/// without resock seeing EOF or an error and the number comes back as a datagram socket,
/// calls on it read by the old rule until one ends short, at EOF or on an error, when the
/// number is asked again: remembered as a stream socket, a call takes whole datagrams
/// while they fill the request exactly, and fails with EPROTOTYPE at the first short one,
/// or EMSGSIZE if a datagram was longer than the rest of the request (the kernel dropped
/// its tail); remembered as not a socket, it reads like read(2), which silently drops the
/// tail of a datagram longer than the request. So the EPROTOTYPE refusal is certain for an
/// fd number resock has not seen before, and best effort for a reused one: reading a
/// datagram socket with these calls is the caller's error, which resock then may not catch.
///
/// EINTR is always retried. On an O_NONBLOCK fd, EAGAIN is waited out with poll (if poll
/// says ready and the fd still says EAGAIN, the call sleeps 50 µs doubling to 4 ms between
/// attempts: it never spins). `n == 0` returns 0 with no syscall (buffer may be NULL);
/// `n > SSIZE_MAX` or a NULL buffer with `n > 0`: -1/EINVAL with no syscall. The fd is
/// borrowed, never closed. Threads may call it on distinct fds at once.
///
/// Memory: `buffer` points to `n` writable bytes (an invalid pointer gives EFAULT from the
/// kernel, after the bytes before the bad page were stored).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn readn_sync(fd: c_int, buffer: *mut c_void, n: size_t) -> ssize_t {
    // SAFETY: forwarded contract; a NULL `done` is allowed.
    boundary(|| unsafe { readn(fd, buffer, n, &Opts::default(), std::ptr::null_mut()) })
}

/// Writes exactly `n` bytes from `buffer` to `fd`, never raising SIGPIPE — TLPI's writen,
/// hardened.
///
/// Returns `n` once the kernel accepted every byte; -1 with errno on error (EPIPE when the
/// peer is gone). `write()` returning 0 gives -1/EIO. EINTR is retried, EAGAIN on an
/// O_NONBLOCK fd is polled (never spun on, as for readn_sync), EAGAIN on a blocking socket
/// (SO_SNDTIMEO expired) is returned. `n == 0`, `n > SSIZE_MAX` and NULL as for
/// readn_sync. The fd is borrowed. On a datagram or seqpacket socket the kernel sends the
/// buffer as one record or fails (EMSGSIZE).
///
/// SIGPIPE: the process is never killed. Sockets are written with send(MSG_NOSIGNAL), one
/// syscall per call. Other fds are written with SIGPIPE blocked in the calling thread: the
/// SIGPIPE the write raises is consumed with sigtimedwait and the thread's mask restored
/// (three syscalls for a pipe: block, write, unblock). The disposition is never read or
/// changed, so another thread switching it between SIG_IGN and SIG_DFL (libcurl does)
/// cannot make the write fatal. The SIGPIPEs pending before the call, thread- or
/// process-directed, are exactly those pending after it. (Two caveats: when the caller
/// already blocks SIGPIPE and one is pending, telling a thread-directed one from a
/// process-directed one needs /proc/thread-self/status; without /proc the call's own
/// SIGPIPE may stay pending in that case. And a SIGPIPE another thread sends to this
/// thread while the write runs merges with the write's own (standard signals do not
/// queue) and is consumed with it.)
///
/// Memory: `buffer` points to `n` readable bytes (an invalid pointer gives EFAULT from the
/// kernel).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn writen_sync(fd: c_int, buffer: *const c_void, n: size_t) -> ssize_t {
    // SAFETY: forwarded contract; a NULL `done` is allowed.
    boundary(|| unsafe { writen(fd, buffer, n, &Opts::default(), std::ptr::null_mut()) })
}

/// Writes every byte of the `iovcnt` buffers in `iov`, in order, in as few syscalls as
/// possible (sendmsg with MSG_NOSIGNAL on sockets, writev elsewhere), so a header and its
/// body leave together and Nagle cannot stall them. Returns the total, or -1 with errno as
/// writen_sync (SIGPIPE included). `iovcnt` 0 returns 0 (iov may be NULL); `iovcnt`
/// below 0 or above IOV_MAX, a NULL `iov`, a NULL `iov_base` with a non-zero length, or a
/// total above SSIZE_MAX: -1/EINVAL with no syscall. The caller's array is not modified.
///
/// Memory: `iov` points to `iovcnt` readable iovecs, each describing readable memory.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn writev_sync(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t {
    // SAFETY: forwarded contract; a NULL `done` is allowed.
    boundary(|| unsafe { writev(fd, iov, iovcnt, &Opts::default(), std::ptr::null_mut()) })
}

/// Reads one line — bytes through the first '\n' inclusive — into `buffer`, stores at most
/// `maxlen - 1` of them and a terminating NUL, and returns the count (the UNP readline
/// contract). It never reads past the newline and keeps no hidden buffer (unlike UNP's
/// static read-ahead), so it mixes safely with readn_sync on one fd.
///
/// A line longer than `maxlen - 1` returns the first `maxlen - 1` bytes; the rest stays in
/// the fd. At EOF it returns the bytes of the unfinished line (0 if none) and sets errno to
/// 0. On error: -1 with errno (the bytes stored so far are NUL-terminated). `maxlen == 1`
/// (room for the NUL only) gives -1/EINVAL with no syscall, so a 0 return always means EOF;
/// `maxlen == 0` returns 0 with no syscall and stores nothing (buffer may be NULL);
/// `maxlen > SSIZE_MAX` or a NULL buffer: -1/EINVAL. Datagram, seqpacket and raw sockets:
/// -1/EPROTOTYPE, as for readn_sync.
///
/// Threads: one thread at a time per fd. Two threads reading lines from one fd at once can
/// split or swap lines (their peeks and reads interleave, as two threads calling read(2)
/// would); serialise them. Distinct fds may be read in parallel.
///
/// Cost: on a socket it peeks (MSG_PEEK), then reads exactly through the newline: two
/// syscalls when one line is queued; when more is queued, one getsockopt more to keep an
/// SO_PEEK_OFF the caller enabled where it was (and a setsockopt if it is enabled; a peek
/// offset the caller set above 0 is not supported). Other fds are read a byte at a time,
/// by design (nothing past the newline may be taken): one getsockopt and 64 read(2) calls
/// for a 64-byte line from a pipe. For speed on pipes, put a buffered reader
/// (fdopen/getline) in front and do not mix it with readn_sync.
///
/// Memory: `buffer` points to `maxlen` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn readline_sync(fd: c_int, buffer: *mut c_void, maxlen: size_t) -> ssize_t {
    // SAFETY: forwarded contract; a NULL `done` is allowed.
    boundary(|| unsafe { readline(fd, buffer, maxlen, &Opts::default(), std::ptr::null_mut()) })
}

/// readn_sync with options and a count that survives every outcome: `*done` (if not NULL)
/// receives the bytes read — on success, EOF, timeout and error alike (the count TLPI, UNP
/// and Rust's read_exact throw away). Same returns as readn_sync, plus -1/ETIMEDOUT when
/// `opts->timeout_ms` expires and -1/EINTR or -1/EAGAIN when `opts->flags` ask for them.
/// `opts` may be NULL (the readn_sync defaults); a bad `opts` (struct_size too small,
/// timeout_ms < -1, unknown flags) gives -1/EINVAL, and unknown non-zero trailing fields of
/// a bigger struct -1/E2BIG, before any syscall. With a deadline or RETURN_ON_EINTR every
/// syscall is nonblocking and waits are poll(2): a socket message that trickles in then
/// costs a recvmsg per piece instead of one MSG_WAITALL call.
///
/// Memory: `buf` points to `n` writable bytes; `opts` is NULL or a valid resock_io_opts of
/// `opts->struct_size` bytes; `done` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_readn(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    opts: *const resock_io_opts,
    done: *mut size_t,
) -> ssize_t {
    // SAFETY: forwarded contract.
    boundary(|| unsafe { with_opts(opts, done, |opts| readn(fd, buf, n, opts, done)) })
}

/// writen_sync with options and a count that survives every outcome: `*done` (if not NULL)
/// receives the bytes written, on success and on every error. Returns and `opts` as
/// resock_readn.
///
/// Memory: `buf` points to `n` readable bytes; `opts` and `done` as for resock_readn.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_writen(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    opts: *const resock_io_opts,
    done: *mut size_t,
) -> ssize_t {
    // SAFETY: forwarded contract.
    boundary(|| unsafe { with_opts(opts, done, |opts| writen(fd, buf, n, opts, done)) })
}

/// writev_sync with options and a count that survives every outcome: `*done` (if not NULL)
/// receives the bytes written. Returns and `opts` as resock_readn.
///
/// Memory: `iov` as for writev_sync; `opts` and `done` as for resock_readn.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_writev(
    fd: c_int,
    iov: *const iovec,
    iovcnt: c_int,
    opts: *const resock_io_opts,
    done: *mut size_t,
) -> ssize_t {
    // SAFETY: forwarded contract.
    boundary(|| unsafe { with_opts(opts, done, |opts| writev(fd, iov, iovcnt, opts, done)) })
}

/// readline_sync with options: a deadline (a line protocol that must answer in time) and
/// the flags of resock_readn. `*done` (if not NULL) receives the bytes stored, whatever the
/// outcome. Returns as readline_sync, plus -1/ETIMEDOUT at the deadline.
///
/// Memory: `buf` points to `maxlen` writable bytes; `opts` and `done` as for resock_readn.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_readline(
    fd: c_int,
    buf: *mut c_void,
    maxlen: size_t,
    opts: *const resock_io_opts,
    done: *mut size_t,
) -> ssize_t {
    // SAFETY: forwarded contract.
    boundary(|| unsafe { with_opts(opts, done, |opts| readline(fd, buf, maxlen, opts, done)) })
}

/// Runs a rich call with its C options converted; a bad `opts` fails (with `*done` = 0)
/// before any syscall.
///
/// # Safety
/// `opts` and `done` as for resock_readn.
pub(super) unsafe fn with_opts(
    opts: *const resock_io_opts,
    done: *mut size_t,
    call: impl FnOnce(&Opts) -> ssize_t,
) -> ssize_t {
    // SAFETY: forwarded contract.
    match unsafe { opts_from_c(opts) } {
        Ok(opts) => call(&opts),
        // SAFETY: forwarded contract.
        Err(error) => unsafe { fail(error, 0, done) },
    }
}

/// The core's options from a C `resock_io_opts` (NULL: the defaults).
pub(super) unsafe fn opts_from_c(opts: *const resock_io_opts) -> Result<Opts, Error> {
    if opts.is_null() {
        return Ok(Opts::default());
    }
    // SAFETY: non-NULL; the caller vouches for struct_size bytes.
    let c = unsafe { read_sized(opts, "resock_io_opts.struct_size is too small") }?;
    if c.flags & !KNOWN_FLAGS != 0 {
        return Err(Error::InvalidInput("unknown resock_io_opts.flags"));
    }
    Ok(Opts {
        timeout: optional_ms(c.timeout_ms, "resock_io_opts.timeout_ms is below -1")?,
        return_on_eintr: c.flags & RESOCK_IO_RETURN_ON_EINTR != 0,
        return_on_eagain: c.flags & RESOCK_IO_RETURN_ON_EAGAIN != 0,
    })
}

/// The argument checks every buffer call shares: no syscall for a count the kernel could
/// not report back in an ssize_t, nor for a NULL buffer.
pub(super) fn check_buffer(buf: *const c_void, n: size_t) -> Result<(), Error> {
    if n > ssize_t::MAX as size_t {
        Err(Error::InvalidInput("count exceeds SSIZE_MAX"))
    } else if buf.is_null() && n > 0 {
        Err(Error::InvalidInput("NULL buffer"))
    } else {
        Ok(())
    }
}

/// Stores `moved` in `*done` and turns a core result into the C return value and errno:
/// the count on success (errno untouched: see `boundary`), the short count with errno 0
/// at EOF, -1 with errno otherwise.
pub(super) unsafe fn finish(
    result: Result<(), Partial>,
    total: usize,
    done: *mut size_t,
) -> ssize_t {
    match result {
        Ok(()) => {
            // SAFETY: forwarded contract.
            unsafe { store(done, total) };
            total as ssize_t
        }
        Err(Partial {
            done: moved,
            error: Error::Eof,
        }) => {
            // SAFETY: forwarded contract.
            unsafe { store(done, moved) };
            report_errno(0);
            moved as ssize_t
        }
        // SAFETY: forwarded contract.
        Err(Partial { done: moved, error }) => unsafe { fail(error, moved, done) },
    }
}

pub(super) unsafe fn fail(error: Error, moved: usize, done: *mut size_t) -> ssize_t {
    // SAFETY: forwarded contract.
    unsafe { store(done, moved) };
    report_errno(error.errno());
    -1
}

pub(super) unsafe fn store(done: *mut size_t, moved: usize) {
    if !done.is_null() {
        // SAFETY: non-NULL and, by the caller's contract, writable.
        unsafe { done.write(moved) };
    }
}

unsafe fn readn(fd: c_int, buf: *mut c_void, n: size_t, opts: &Opts, done: *mut size_t) -> ssize_t {
    if let Err(error) = check_buffer(buf, n) {
        // SAFETY: forwarded contract.
        return unsafe { fail(error, 0, done) };
    }
    // SAFETY: checked above; the caller guarantees the memory.
    unsafe { finish(io::read_raw(fd, buf.cast(), n, opts), n, done) }
}

unsafe fn writen(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    opts: &Opts,
    done: *mut size_t,
) -> ssize_t {
    if let Err(error) = check_buffer(buf, n) {
        // SAFETY: forwarded contract.
        return unsafe { fail(error, 0, done) };
    }
    // SAFETY: checked above; the caller guarantees the memory.
    unsafe { finish(io::write_raw(fd, buf.cast(), n, opts), n, done) }
}

unsafe fn writev(
    fd: c_int,
    iov: *const iovec,
    iovcnt: c_int,
    opts: &Opts,
    done: *mut size_t,
) -> ssize_t {
    let entries = match iovcnt {
        0 => &[][..],
        1..=IOV_MAX if !iov.is_null() => {
            // SAFETY: non-NULL, and the caller says iovcnt entries are readable.
            unsafe { std::slice::from_raw_parts(iov, iovcnt as usize) }
        }
        _ => {
            let error = Error::InvalidInput("iovcnt out of range or NULL iov");
            // SAFETY: forwarded contract.
            return unsafe { fail(error, 0, done) };
        }
    };
    let mut total: size_t = 0;
    for entry in entries {
        let checked = check_buffer(entry.iov_base, entry.iov_len).and_then(|()| {
            total = total
                .checked_add(entry.iov_len)
                .filter(|&t| t <= ssize_t::MAX as size_t)
                .ok_or(Error::InvalidInput("iovec total exceeds SSIZE_MAX"))?;
            Ok(())
        });
        if let Err(error) = checked {
            // SAFETY: forwarded contract.
            return unsafe { fail(error, 0, done) };
        }
    }
    // The core narrows entries as bytes go out; the caller's array is const, so work on a
    // copy, kept on the stack for the usual handful of entries.
    let mut on_stack = [iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; IOV_ON_STACK];
    let mut on_heap = Vec::new();
    let work: &mut [iovec] = if entries.len() <= IOV_ON_STACK {
        on_stack[..entries.len()].copy_from_slice(entries);
        &mut on_stack[..entries.len()]
    } else {
        on_heap.extend_from_slice(entries);
        &mut on_heap
    };
    // SAFETY: every entry was checked; the caller guarantees the memory.
    unsafe { finish(io::writev_raw(fd, work, opts), total, done) }
}

unsafe fn readline(
    fd: c_int,
    buf: *mut c_void,
    maxlen: size_t,
    opts: &Opts,
    done: *mut size_t,
) -> ssize_t {
    if let Err(error) = check_buffer(buf, maxlen) {
        // SAFETY: forwarded contract.
        return unsafe { fail(error, 0, done) };
    }
    if maxlen == 0 {
        // SAFETY: forwarded contract.
        unsafe { store(done, 0) };
        return 0;
    }
    if maxlen == 1 {
        // Room for the NUL only: returning 0 would look like EOF.
        let error = Error::InvalidInput("maxlen 1 leaves no room for a byte of the line");
        // SAFETY: forwarded contract.
        return unsafe { fail(error, 0, done) };
    }
    let buf = buf.cast::<u8>();
    // SAFETY: maxlen - 1 bytes plus the NUL fit the caller's buffer.
    let result = unsafe { io::read_line_raw(fd, buf, maxlen - 1, opts) };
    let stored = match &result {
        Ok(line) => line.len,
        Err(partial) => partial.done,
    };
    // SAFETY: stored <= maxlen - 1, so the NUL lands inside the buffer.
    unsafe { buf.add(stored).write(0) };
    // SAFETY: forwarded contract.
    unsafe { store(done, stored) };
    match result {
        Ok(line) => {
            if line.end == LineEnd::Eof {
                report_errno(0);
            }
            stored as ssize_t
        }
        Err(partial) => {
            report_errno(partial.error.errno());
            -1
        }
    }
}
