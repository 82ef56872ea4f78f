//! The syscalls of the I/O loops, one thin wrapper each, returning the raw result or errno.
//!
//! Keeping them in one place lets unit tests count syscalls (the MSG_WAITALL promise: one
//! `recv` for a whole message) and inject results Linux cannot produce on demand, such as
//! `write` returning 0 for a non-empty buffer.

use std::os::fd::RawFd;

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

pub(crate) fn recv(fd: RawFd, buf: *mut u8, len: usize, flags: i32) -> SysResult {
    counters::bump(counters::Call::Recv);
    // SAFETY: the caller guarantees buf..buf+len is writable (or lets the kernel say EFAULT).
    check(unsafe { libc::recv(fd, buf.cast(), len, flags) })
}

pub(crate) fn read(fd: RawFd, buf: *mut u8, len: usize) -> SysResult {
    counters::bump(counters::Call::Read);
    // SAFETY: as for recv.
    check(unsafe { libc::read(fd, buf.cast(), len) })
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

/// The kinds of syscall the counters tell apart.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Call {
    Recv,
    Read,
    Send,
    Write,
    Poll,
    /// pthread_sigmask, sigpending, sigaction and sigtimedwait of the SIGPIPE guard.
    SigMask,
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
        static COUNTS: Cell<[u64; 6]> = const { Cell::new([0; 6]) };
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
        COUNTS.with(|c| c.set([0; 6]));
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
