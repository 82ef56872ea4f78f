//! The syscalls of the I/O loops, one thin wrapper each, returning the raw result or errno.
//!
//! Keeping them in one place lets unit tests count syscalls (the MSG_WAITALL promise: one
//! `recv` for a whole message) and inject results Linux cannot produce on demand, such as
//! `write` returning 0 for a non-empty buffer. The per-fd-number hint of what an fd is
//! ([`kind_hint`]) lives here too, next to the probes that fill it.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU8, Ordering};

/// Result of one syscall: the byte count, or the errno it set.
pub(crate) type SysResult = Result<usize, i32>;

fn check(r: libc::ssize_t) -> SysResult {
    if r < 0 { Err(errno()) } else { Ok(r as usize) }
}

/// The calling thread's errno.
pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Sets the calling thread's errno (what C callers read after a -1).
pub(crate) fn set_errno(value: i32) {
    // SAFETY: __errno_location returns this thread's errno slot, valid for the thread's life.
    unsafe { *libc::__errno_location() = value };
}

/// recvmsg(2) into one buffer: the byte count and the returned `msg_flags` (MSG_TRUNC says a
/// datagram did not fit).
pub(crate) fn recv(fd: RawFd, buf: *mut u8, len: usize, flags: i32) -> Result<(usize, i32), i32> {
    counters::bump(counters::Call::Recv);
    let mut iov = libc::iovec {
        iov_base: buf.cast(),
        iov_len: len,
    };
    // SAFETY: msghdr is plain data; zeroed is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: the caller guarantees buf..buf+len is writable (or lets the kernel say EFAULT).
    let n = check(unsafe { libc::recvmsg(fd, &mut msg, flags) })?;
    Ok((n, msg.msg_flags))
}

pub(crate) fn read(fd: RawFd, buf: *mut u8, len: usize) -> SysResult {
    counters::bump(counters::Call::Read);
    // SAFETY: as for recv.
    check(unsafe { libc::read(fd, buf.cast(), len) })
}

/// preadv2(2) at the file position with RWF_NOWAIT: a read that never blocks, whatever the
/// fd's O_NONBLOCK. EOPNOTSUPP where the file type does not offer it.
pub(crate) fn read_nowait(fd: RawFd, buf: *mut u8, len: usize) -> SysResult {
    counters::bump(counters::Call::Read);
    let iov = libc::iovec {
        iov_base: buf.cast(),
        iov_len: len,
    };
    // SAFETY: as for recv; offset -1 means the current file position.
    check(unsafe { libc::preadv2(fd, &iov, 1, -1, libc::RWF_NOWAIT) })
}

pub(crate) fn send(fd: RawFd, buf: *const u8, len: usize, flags: i32) -> SysResult {
    counters::bump(counters::Call::Send);
    // SAFETY: the caller guarantees buf..buf+len is readable (or lets the kernel say EFAULT).
    counters::inject_write(len)
        .unwrap_or_else(|| check(unsafe { libc::send(fd, buf.cast(), len, flags) }))
}

pub(crate) fn write(fd: RawFd, buf: *const u8, len: usize) -> SysResult {
    counters::bump(counters::Call::Write);
    // SAFETY: as for send.
    counters::inject_write(len)
        .unwrap_or_else(|| check(unsafe { libc::write(fd, buf.cast(), len) }))
}

pub(crate) fn sendmsg(fd: RawFd, iov: &[libc::iovec], flags: i32) -> SysResult {
    counters::bump(counters::Call::Send);
    // SAFETY: msghdr is plain data; zeroed is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr().cast_mut();
    msg.msg_iovlen = iov.len() as _;
    // SAFETY: msg points at iov, which outlives the call; the kernel only reads through it.
    let total = iov.iter().map(|v| v.iov_len).sum();
    counters::inject_write(total)
        .unwrap_or_else(|| check(unsafe { libc::sendmsg(fd, &msg, flags) }))
}

pub(crate) fn writev(fd: RawFd, iov: &[libc::iovec]) -> SysResult {
    counters::bump(counters::Call::Write);
    // SAFETY: iov is a valid array of iov.len() entries (at most IOV_MAX: the caller checks).
    let total = iov.iter().map(|v| v.iov_len).sum();
    counters::inject_write(total).unwrap_or_else(|| {
        check(unsafe { libc::writev(fd, iov.as_ptr(), iov.len() as libc::c_int) })
    })
}

/// pwritev2(2) at the file position with RWF_NOWAIT: a write that never blocks, whatever
/// the fd's O_NONBLOCK. EOPNOTSUPP where the file type does not offer it.
pub(crate) fn write_nowait(fd: RawFd, iov: &[libc::iovec]) -> SysResult {
    counters::bump(counters::Call::Write);
    let total = iov.iter().map(|v| v.iov_len).sum();
    counters::inject_write(total).unwrap_or_else(|| {
        // SAFETY: iov is a valid array of iov.len() entries (at most IOV_MAX).
        check(unsafe {
            libc::pwritev2(
                fd,
                iov.as_ptr(),
                iov.len() as libc::c_int,
                -1,
                libc::RWF_NOWAIT,
            )
        })
    })
}

/// SO_TYPE of a socket (SOCK_STREAM, SOCK_DGRAM, ...); ENOTSOCK for any other fd. Reads
/// nothing from the fd, so it decides how to read before a byte moves.
pub(crate) fn socket_type(fd: RawFd) -> Result<i32, i32> {
    get_int_opt(fd, libc::SO_TYPE)
}

/// SO_PEEK_OFF: -1 when disabled (the default), else where the next MSG_PEEK starts.
pub(crate) fn peek_offset(fd: RawFd) -> Result<i32, i32> {
    get_int_opt(fd, libc::SO_PEEK_OFF)
}

pub(crate) fn set_peek_offset(fd: RawFd, offset: i32) -> Result<(), i32> {
    counters::bump(counters::Call::Probe);
    // SAFETY: a valid int option of the right size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEEK_OFF,
            (&offset as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if r < 0 { Err(errno()) } else { Ok(()) }
}

fn get_int_opt(fd: RawFd, name: i32) -> Result<i32, i32> {
    counters::bump(counters::Call::Probe);
    let mut value: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: value and len are valid for the kernel to fill.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&mut value as *mut i32).cast(),
            &mut len,
        )
    };
    if r < 0 { Err(errno()) } else { Ok(value) }
}

/// True for a regular file or block device: poll(2) always calls them ready, and their
/// reads wait for the disk, which no flag or deadline interrupts.
pub(crate) fn is_disk_file(fd: RawFd) -> bool {
    counters::bump(counters::Call::Probe);
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat fills st on success.
    unsafe {
        libc::fstat(fd, st.as_mut_ptr()) == 0 && {
            let mode = st.assume_init().st_mode & libc::S_IFMT;
            mode == libc::S_IFREG || mode == libc::S_IFBLK
        }
    }
}

/// Sleeps for `d` unless a signal handler runs first: Err(EINTR) then.
pub(crate) fn sleep(d: std::time::Duration) -> Result<(), i32> {
    let ts = libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    };
    // SAFETY: a valid timespec; the remainder is not wanted.
    if unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) } < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// poll(2) on one fd; returns the revents, 0 on timeout.
pub(crate) fn poll(fd: RawFd, events: i16, timeout_ms: i32) -> Result<i16, i32> {
    counters::bump(counters::Call::Poll);
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if r < 0 { Err(errno()) } else { Ok(pfd.revents) }
}

/// True if the open file description has O_NONBLOCK set.
pub(crate) fn is_nonblocking(fd: RawFd) -> Result<bool, i32> {
    // SAFETY: F_GETFL takes no pointer argument.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        Err(errno())
    } else {
        Ok(flags & libc::O_NONBLOCK != 0)
    }
}

/// What an fd number was last seen to be. Only a hint: C may close the fd and get the same
/// number for something else, so every use of a hint must stay correct when it is stale
/// (src/io.rs says how each one does).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum FdKind {
    /// Never seen, or beyond the table: probe with SO_TYPE.
    Unknown = 0,
    /// A SOCK_STREAM socket.
    Stream = 1,
    /// A pipe, FIFO, file, tty or other non-socket (ENOTSOCK).
    NotSocket = 2,
}

/// Fd numbers below this get a hint slot (one byte each); larger ones are probed per call.
const HINT_SLOTS: usize = 1 << 16;

static HINTS: [AtomicU8; HINT_SLOTS] = [const { AtomicU8::new(0) }; HINT_SLOTS];

pub(crate) fn kind_hint(fd: RawFd) -> FdKind {
    match usize::try_from(fd).ok().and_then(|i| HINTS.get(i)) {
        Some(slot) => match slot.load(Ordering::Relaxed) {
            1 => FdKind::Stream,
            2 => FdKind::NotSocket,
            _ => FdKind::Unknown,
        },
        None => FdKind::Unknown,
    }
}

pub(crate) fn set_kind_hint(fd: RawFd, kind: FdKind) {
    if let Some(slot) = usize::try_from(fd).ok().and_then(|i| HINTS.get(i)) {
        slot.store(kind as u8, Ordering::Relaxed);
    }
}

/// The kinds of syscall the counters tell apart.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Call {
    Recv,
    Read,
    Send,
    Write,
    Poll,
    /// pthread_sigmask, sigpending, sigtimedwait and /proc reads of the SIGPIPE guard.
    SigMask,
    /// getsockopt/setsockopt/fstat: learning what kind of fd this is.
    Probe,
}

#[cfg(not(any(test, feature = "count-syscalls")))]
pub(crate) mod counters {
    pub(crate) use super::Call;

    #[inline(always)]
    pub(crate) fn bump(_: Call) {}

    #[inline(always)]
    pub(crate) fn inject_write(_: usize) -> Option<super::SysResult> {
        None
    }
}

/// Per-thread syscall counters (unit tests and the `count-syscalls` feature) and write
/// injection (unit tests only).
#[cfg(any(test, feature = "count-syscalls"))]
#[allow(clippy::items_after_test_module)]
pub(crate) mod counters {
    use std::cell::Cell;
    #[cfg(test)]
    use std::cell::RefCell;
    #[cfg(test)]
    use std::collections::VecDeque;

    pub(crate) use super::Call;

    thread_local! {
        static COUNTS: Cell<[u64; 7]> = const { Cell::new([0; 7]) };
    }

    #[cfg(test)]
    thread_local! {
        static WRITE_RESULTS: RefCell<VecDeque<usize>> = const { RefCell::new(VecDeque::new()) };
    }

    pub(crate) fn bump(call: Call) {
        COUNTS.with(|c| {
            let mut v = c.get();
            v[call as usize] += 1;
            c.set(v);
        });
    }

    /// How many times this thread made `call` since the last [`reset`].
    pub(crate) fn count(call: Call) -> u64 {
        COUNTS.with(|c| c.get()[call as usize])
    }

    pub(crate) fn reset() {
        COUNTS.with(|c| c.set([0; 7]));
    }

    /// Makes the next send/write calls on this thread return these counts (capped at the
    /// length asked for), one each, without a syscall; later calls reach the kernel again.
    #[cfg(test)]
    pub(crate) fn inject_write_results(results: &[usize]) {
        WRITE_RESULTS.with(|w| *w.borrow_mut() = results.iter().copied().collect());
    }

    #[cfg(test)]
    pub(crate) fn inject_write(len: usize) -> Option<super::SysResult> {
        WRITE_RESULTS
            .with(|w| w.borrow_mut().pop_front())
            .map(|n| Ok(n.min(len)))
    }

    #[cfg(not(test))]
    #[inline(always)]
    pub(crate) fn inject_write(_: usize) -> Option<super::SysResult> {
        None
    }
}
