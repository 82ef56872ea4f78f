//! Exact-count reads and writes on raw fds: the seed's `readn`, done so nothing is lost.
//!
//! Each call moves all the bytes asked for, or stops and says how many moved ([`Partial`]).
//! The loops follow the TLPI/UNP contract that legacy C relies on and harden its corners:
//!
//! - EINTR is retried (unless [`Opts::return_on_eintr`]).
//! - Sockets are read with `recv(MSG_WAITALL)`, so a whole message costs one syscall, and
//!   written with `send(MSG_NOSIGNAL)`, so a write after RST returns EPIPE instead of killing
//!   the process. Other fds (pipes, FIFOs, files, ttys) fall back to `read`/`write` on the
//!   first ENOTSOCK, and their writes run under a per-thread SIGPIPE mask.
//! - On an `O_NONBLOCK` fd, EAGAIN means "not yet": the call polls and goes on. On a blocking
//!   socket EAGAIN means the caller's SO_RCVTIMEO/SO_SNDTIMEO expired, and is returned.
//! - A deadline ([`Opts::timeout`]) bounds the whole call on blocking fds too, and expiry
//!   reports [`Error::TimedOut`] with the count moved so far.
//! - Every syscall is clamped to [`MAX_IO`] bytes (Linux moves no more per call) and the loop
//!   goes on.
//!
//! The functions keep no state between calls: any number of threads may use them on
//! distinct fds at once.
//!
//! # Example
//!
//! ```
//! use std::os::unix::net::UnixStream;
//! use resock::io::{read_full, write_full, Opts};
//!
//! let (a, b) = UnixStream::pair()?;
//! write_full(&a, b"hello, world", &Opts::default())?;
//! let mut buf = [0u8; 12];
//! read_full(&b, &mut buf, &Opts::default())?;
//! assert_eq!(&buf, b"hello, world");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use crate::error::{Error, Partial};
use crate::sigpipe::SigpipeGuard;
use crate::sys;

/// The most bytes Linux moves in one read or write (`MAX_RW_COUNT`, on 32- and 64-bit alike).
pub const MAX_IO: usize = 0x7fff_f000;

/// Bytes a readline peeks at a time on a socket: lines are short, a bigger peek only copies
/// data that stays queued anyway.
const LINE_PEEK: usize = 8192;

/// The most iovecs one `sendmsg`/`writev` accepts (IOV_MAX on Linux).
const IOV_MAX: usize = 1024;

/// How an exact-count call waits and when it gives up early.
///
/// The default is the `_sync` behaviour: no deadline, EINTR retried, EAGAIN on a
/// nonblocking fd waited out with `poll`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Opts {
    /// A deadline for the whole call, measured on the monotonic clock from the call's start.
    /// `None` waits as long as it takes. `Some(Duration::ZERO)` moves only what can move
    /// without waiting.
    pub timeout: Option<Duration>,
    /// Return EINTR when a signal interrupts a syscall that moved nothing, so a signal
    /// handler can cancel the call. By default EINTR is retried.
    pub return_on_eintr: bool,
    /// Return EAGAIN from an `O_NONBLOCK` fd instead of polling, for event loops that
    /// resume later with the count in [`Partial::done`].
    pub return_on_eagain: bool,
}

impl Opts {
    /// Opts with this deadline and the other fields at their defaults.
    pub fn with_timeout(timeout: Duration) -> Self {
        Opts {
            timeout: Some(timeout),
            ..Opts::default()
        }
    }
}

/// How a line read by [`read_line`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnd {
    /// The line ends with the `'\n'` stored as its last byte.
    Newline,
    /// The buffer filled before a newline came; the rest of the line is still in the fd.
    Full,
    /// The peer closed the stream (EOF) before a newline; `len` may be 0.
    Eof,
}

/// A line read by [`read_line`]: `len` bytes at the start of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    /// Bytes stored, the newline included.
    pub len: usize,
    /// Why the read stopped.
    pub end: LineEnd,
}

/// Reads exactly `buf.len()` bytes from `fd`.
///
/// Returns `Ok(())` once the buffer is full. An empty buffer returns at once, with no syscall.
///
/// # Errors
///
/// [`Partial`] carries the bytes read before the call stopped (they are in `buf[..done]`)
/// and why: [`Error::Eof`] if the peer closed first, [`Error::TimedOut`] if the deadline
/// passed, or [`Error::Os`] with the failing syscall's error (ECONNRESET after an RST,
/// EAGAIN when a blocking socket's SO_RCVTIMEO expired, EINTR/EAGAIN when [`Opts`] asked
/// for them).
///
/// # Example
///
/// ```
/// use std::io::Write;
/// use std::os::unix::net::UnixStream;
/// use resock::{Error, io::{read_full, Opts}};
///
/// let (mut a, b) = UnixStream::pair()?;
/// a.write_all(b"abc")?;
/// drop(a); // FIN after 3 bytes
/// let mut buf = [0u8; 10];
/// let stopped = read_full(&b, &mut buf, &Opts::default()).unwrap_err();
/// assert_eq!(stopped.done, 3);
/// assert!(matches!(stopped.error, Error::Eof));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_full(fd: impl AsFd, buf: &mut [u8], opts: &Opts) -> Result<(), Partial> {
    // SAFETY: buf is a valid, writable slice for the whole call.
    unsafe { read_raw(fd.as_fd().as_raw_fd(), buf.as_mut_ptr(), buf.len(), opts) }
}

/// Writes all of `buf` to `fd`, never raising SIGPIPE.
///
/// Returns `Ok(())` once every byte was accepted by the kernel. An empty buffer returns at
/// once, with no syscall.
///
/// # Errors
///
/// [`Partial`] carries the bytes written before the call stopped and why: EPIPE (the peer is
/// gone; no signal was raised), ECONNRESET, [`Error::TimedOut`], [`Error::WriteZero`] (EIO)
/// if `write` returned 0, EAGAIN when a blocking socket's SO_SNDTIMEO expired.
pub fn write_full(fd: impl AsFd, buf: &[u8], opts: &Opts) -> Result<(), Partial> {
    // SAFETY: buf is a valid, readable slice for the whole call.
    unsafe { write_raw(fd.as_fd().as_raw_fd(), buf.as_ptr(), buf.len(), opts) }
}

/// Writes every byte of `bufs`, in order, with as few syscalls as possible (`sendmsg` on
/// sockets, `writev` elsewhere), so a header and its body leave in one segment and Nagle has
/// nothing to hold back.
///
/// `bufs` is advanced past what was written, as [`IoSlice::advance_slices`] does: on error
/// it holds exactly the bytes that did not go out.
///
/// # Errors
///
/// As [`write_full`].
pub fn write_vectored_full(
    fd: impl AsFd,
    bufs: &mut [IoSlice<'_>],
    opts: &Opts,
) -> Result<(), Partial> {
    // IoSlice is guaranteed ABI-compatible with struct iovec on Unix; advancing through the
    // raw view only ever narrows each entry to a sub-slice of the memory it borrowed.
    let iov = bufs.as_mut_ptr().cast::<libc::iovec>();
    // SAFETY: same length and layout; the slices' memory is readable for the whole call.
    unsafe {
        writev_raw(
            fd.as_fd().as_raw_fd(),
            std::slice::from_raw_parts_mut(iov, bufs.len()),
            opts,
        )
    }
}

/// Reads one line into `buf`: bytes up to and including the first `'\n'`, never past it.
///
/// It keeps no buffer of its own (unlike UNP's `readline`, whose static read-ahead loses
/// bytes when mixed with `readn` and is not thread-safe): on sockets it peeks, then reads
/// exactly through the newline; on other fds it reads a byte at a time. So it mixes freely
/// with [`read_full`] on the same fd.
///
/// # Errors
///
/// As [`read_full`], with [`Partial::done`] the bytes stored. EOF is not an error here: it
/// ends the line with [`LineEnd::Eof`].
///
/// # Example
///
/// ```
/// use std::io::Write;
/// use std::os::unix::net::UnixStream;
/// use resock::io::{read_line, LineEnd, Opts};
///
/// let (mut a, b) = UnixStream::pair()?;
/// a.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n")?;
/// let mut buf = [0u8; 64];
/// let line = read_line(&b, &mut buf, &Opts::default())?;
/// assert_eq!(&buf[..line.len], b"GET / HTTP/1.0\r\n");
/// assert_eq!(line.end, LineEnd::Newline);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_line(fd: impl AsFd, buf: &mut [u8], opts: &Opts) -> Result<Line, Partial> {
    // SAFETY: buf is a valid, writable slice for the whole call.
    unsafe { read_line_raw(fd.as_fd().as_raw_fd(), buf.as_mut_ptr(), buf.len(), opts) }
}

/// Syscalls the calling thread made in resock's I/O loops since
/// [`reset_syscall_counts`] (feature `count-syscalls`, for the benches).
#[cfg(feature = "count-syscalls")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyscallCounts {
    /// recv(2) calls, MSG_PEEK and the ENOTSOCK probe included.
    pub recv: u64,
    /// read(2) calls.
    pub read: u64,
    /// send(2) and sendmsg(2) calls.
    pub send: u64,
    /// write(2) and writev(2) calls.
    pub write: u64,
    /// poll(2) calls.
    pub poll: u64,
    /// Calls of the SIGPIPE guard: sigaction, pthread_sigmask, sigpending, sigtimedwait.
    pub sigmask: u64,
}

/// This thread's counts (feature `count-syscalls`).
#[cfg(feature = "count-syscalls")]
pub fn syscall_counts() -> SyscallCounts {
    use crate::sys::counters::{Call, count};
    SyscallCounts {
        recv: count(Call::Recv),
        read: count(Call::Read),
        send: count(Call::Send),
        write: count(Call::Write),
        poll: count(Call::Poll),
        sigmask: count(Call::SigMask),
    }
}

/// Zeroes this thread's counts (feature `count-syscalls`).
#[cfg(feature = "count-syscalls")]
pub fn reset_syscall_counts() {
    crate::sys::counters::reset();
}

/// Per-call waiting policy: the deadline, the fd's blocking mode, and what EINTR/EAGAIN mean.
struct Waiter<'a> {
    fd: RawFd,
    opts: &'a Opts,
    deadline: Option<Instant>,
    nonblocking: Option<bool>,
}

impl<'a> Waiter<'a> {
    fn new(fd: RawFd, opts: &'a Opts) -> Self {
        Waiter {
            fd,
            opts,
            deadline: opts.timeout.map(|t| Instant::now() + t),
            nonblocking: None,
        }
    }

    /// Whether the fd is O_NONBLOCK, asked once per call and only when it matters.
    fn nonblocking(&mut self) -> Result<bool, Error> {
        match self.nonblocking {
            Some(nb) => Ok(nb),
            None => {
                let nb = sys::is_nonblocking(self.fd).map_err(Error::from_errno)?;
                self.nonblocking = Some(nb);
                Ok(nb)
            }
        }
    }

    /// Sockets get MSG_DONTWAIT under a deadline, so no syscall can block past it; the
    /// EAGAIN that follows is ours and leads to a bounded poll.
    fn dontwait(&self) -> bool {
        self.deadline.is_some()
    }

    /// Before a `read`/`write` on a non-socket: a blocking fd under a deadline is polled
    /// first, since no per-call flag keeps those syscalls from blocking past it.
    /// Returns whether it polled.
    fn poll_first(&mut self, events: i16) -> Result<bool, Error> {
        if self.deadline.is_some() && !self.nonblocking()? {
            self.wait(events).map(|()| true)
        } else {
            Ok(false)
        }
    }

    /// Waits until the fd is ready for `events`, the deadline passes (TimedOut), or a signal
    /// interrupts and the caller asked for EINTR.
    fn wait(&mut self, events: i16) -> Result<(), Error> {
        loop {
            let timeout_ms = match self.deadline {
                None => -1,
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(Error::TimedOut);
                    }
                    // Round up: poll must never wake before the deadline and spin.
                    let left = deadline - now;
                    let ms = left.as_millis() + u128::from(left.subsec_nanos() % 1_000_000 != 0);
                    ms.min(i32::MAX as u128) as i32
                }
            };
            match sys::poll(self.fd, events, timeout_ms) {
                Ok(0) => continue,
                Ok(revents) if revents & libc::POLLNVAL != 0 => {
                    return Err(Error::from_errno(libc::EBADF));
                }
                // POLLERR/POLLHUP: the next syscall reports what happened.
                Ok(_) => return Ok(()),
                Err(libc::EINTR) if !self.opts.return_on_eintr => continue,
                Err(e) => return Err(Error::from_errno(e)),
            }
        }
    }

    /// Decides what a failed syscall means: `Ok(())` to try again (after waiting if need
    /// be), or the error that ends the call.
    fn on_errno(&mut self, errnum: i32, events: i16, used_dontwait: bool) -> Result<(), Error> {
        match errnum {
            libc::EINTR if !self.opts.return_on_eintr => Ok(()),
            libc::EAGAIN => {
                if self.nonblocking()? {
                    if self.opts.return_on_eagain {
                        Err(Error::from_errno(errnum))
                    } else {
                        self.wait(events)
                    }
                } else if used_dontwait {
                    self.wait(events)
                } else {
                    // A blocking socket only says EAGAIN when the caller's SO_RCVTIMEO or
                    // SO_SNDTIMEO expired: that is their timeout, never poll past it.
                    Err(Error::from_errno(errnum))
                }
            }
            _ => Err(Error::from_errno(errnum)),
        }
    }
}

/// Reads exactly `len` bytes into `buf`.
///
/// # Safety
///
/// `buf..buf+len` must be memory the kernel may write, or the kernel reports EFAULT (then
/// everything before the bad page was stored). Nothing is read through `buf` in Rust.
pub(crate) unsafe fn read_raw(
    fd: RawFd,
    buf: *mut u8,
    len: usize,
    opts: &Opts,
) -> Result<(), Partial> {
    let mut waiter = Waiter::new(fd, opts);
    let mut done = 0;
    let mut socket = true;
    while done < len {
        crate::test_hooks::pause("io.next_syscall");
        let chunk = (len - done).min(MAX_IO);
        // SAFETY: done < len, so the pointer stays inside the caller's buffer.
        let at = unsafe { buf.add(done) };
        let dontwait = socket && waiter.dontwait();
        let result = if socket {
            let flags = if dontwait {
                libc::MSG_DONTWAIT
            } else {
                libc::MSG_WAITALL
            };
            sys::recv(fd, at, chunk, flags)
        } else {
            if let Err(error) = waiter.poll_first(libc::POLLIN) {
                return Err(Partial { done, error });
            }
            sys::read(fd, at, chunk)
        };
        match result {
            Ok(0) => {
                return Err(Partial {
                    done,
                    error: Error::Eof,
                });
            }
            Ok(n) => done += n,
            Err(libc::ENOTSOCK) if socket => socket = false,
            Err(e) => waiter
                .on_errno(e, libc::POLLIN, dontwait)
                .map_err(|error| Partial { done, error })?,
        }
    }
    Ok(())
}

/// Writes all `len` bytes at `buf`.
///
/// # Safety
///
/// `buf..buf+len` must be memory the kernel may read, or the kernel reports EFAULT.
pub(crate) unsafe fn write_raw(
    fd: RawFd,
    buf: *const u8,
    len: usize,
    opts: &Opts,
) -> Result<(), Partial> {
    write_loop(fd, &mut Flat { at: buf, left: len }, opts)
}

/// Writes every byte the iovecs describe; entries are narrowed as bytes go out, so on error
/// they describe exactly what was not written.
///
/// # Safety
///
/// Each entry must describe memory the kernel may read, or the kernel reports EFAULT.
pub(crate) unsafe fn writev_raw(
    fd: RawFd,
    iov: &mut [libc::iovec],
    opts: &Opts,
) -> Result<(), Partial> {
    let mut out = Vectored { iov };
    out.skip_empty();
    write_loop(fd, &mut out, opts)
}

/// What a write loop sends, consumed as the kernel accepts it.
trait Outgoing {
    fn is_empty(&self) -> bool;
    /// One `send`/`sendmsg` with these flags.
    fn send(&self, fd: RawFd, flags: i32) -> sys::SysResult;
    /// One `write`/`writev` of at most `cap` bytes.
    fn write(&self, fd: RawFd, cap: usize) -> sys::SysResult;
    /// Drops the first `n` bytes, which the kernel accepted.
    fn advance(&mut self, n: usize);
}

struct Flat {
    at: *const u8,
    left: usize,
}

impl Outgoing for Flat {
    fn is_empty(&self) -> bool {
        self.left == 0
    }

    fn send(&self, fd: RawFd, flags: i32) -> sys::SysResult {
        sys::send(fd, self.at, self.left.min(MAX_IO), flags)
    }

    fn write(&self, fd: RawFd, cap: usize) -> sys::SysResult {
        sys::write(fd, self.at, self.left.min(MAX_IO).min(cap))
    }

    fn advance(&mut self, n: usize) {
        // SAFETY: the kernel accepted n <= left bytes, so we stay inside the buffer.
        self.at = unsafe { self.at.add(n) };
        self.left -= n;
    }
}

struct Vectored<'a> {
    /// The entries not yet fully written; the first one is never empty.
    iov: &'a mut [libc::iovec],
}

impl Vectored<'_> {
    fn skip_empty(&mut self) {
        let iov = std::mem::take(&mut self.iov);
        let first = iov.iter().position(|v| v.iov_len > 0).unwrap_or(iov.len());
        self.iov = &mut iov[first..];
    }

    fn batch(&self) -> &[libc::iovec] {
        &self.iov[..self.iov.len().min(IOV_MAX)]
    }
}

impl Outgoing for Vectored<'_> {
    fn is_empty(&self) -> bool {
        self.iov.is_empty()
    }

    fn send(&self, fd: RawFd, flags: i32) -> sys::SysResult {
        sys::sendmsg(fd, self.batch(), flags)
    }

    fn write(&self, fd: RawFd, cap: usize) -> sys::SysResult {
        if cap == usize::MAX {
            sys::writev(fd, self.batch())
        } else {
            let first = &self.iov[0];
            sys::write(fd, first.iov_base.cast(), first.iov_len.min(cap))
        }
    }

    fn advance(&mut self, mut n: usize) {
        for v in self.iov.iter_mut() {
            let step = n.min(v.iov_len);
            // SAFETY: step <= iov_len keeps the base inside the entry's memory.
            v.iov_base = unsafe { v.iov_base.cast::<u8>().add(step) }.cast();
            v.iov_len -= step;
            n -= step;
            if n == 0 {
                break;
            }
        }
        self.skip_empty();
    }
}

fn write_loop(fd: RawFd, out: &mut impl Outgoing, opts: &Opts) -> Result<(), Partial> {
    let mut waiter = Waiter::new(fd, opts);
    // Armed on the first non-socket write and held for the rest of the call: one mask
    // change per call, not per chunk, and none at all for sockets.
    let mut guard: Option<SigpipeGuard> = None;
    let mut done = 0;
    let mut socket = true;
    while !out.is_empty() {
        let dontwait = socket && waiter.dontwait();
        let result = if socket {
            let flags = libc::MSG_NOSIGNAL | if dontwait { libc::MSG_DONTWAIT } else { 0 };
            out.send(fd, flags)
        } else {
            // After a poll only PIPE_BUF bytes are sure to fit without blocking.
            let cap = match waiter.poll_first(libc::POLLOUT) {
                Ok(true) => libc::PIPE_BUF,
                Ok(false) => usize::MAX,
                Err(error) => return Err(Partial { done, error }),
            };
            guard.get_or_insert_with(SigpipeGuard::arm);
            crate::test_hooks::pause("io.before_write");
            out.write(fd, cap)
        };
        match result {
            Ok(0) => {
                return Err(Partial {
                    done,
                    error: Error::WriteZero,
                });
            }
            Ok(n) => {
                done += n;
                out.advance(n);
            }
            Err(libc::ENOTSOCK) if socket => socket = false,
            Err(e) => {
                if e == libc::EPIPE {
                    if let Some(guard) = guard.as_mut() {
                        guard.consume_raised();
                    }
                }
                waiter
                    .on_errno(e, libc::POLLOUT, dontwait)
                    .map_err(|error| Partial { done, error })?;
            }
        }
    }
    Ok(())
}

/// Reads one line of at most `cap` bytes into `buf` (no NUL is added).
///
/// # Safety
///
/// `buf..buf+cap` must be writable memory: on sockets the peeked bytes are scanned in Rust.
pub(crate) unsafe fn read_line_raw(
    fd: RawFd,
    buf: *mut u8,
    cap: usize,
    opts: &Opts,
) -> Result<Line, Partial> {
    let mut waiter = Waiter::new(fd, opts);
    let mut done = 0;
    let mut socket = true;
    while done < cap {
        // SAFETY: done < cap keeps the pointer inside the caller's buffer.
        let at = unsafe { buf.add(done) };
        let dontwait = socket && waiter.dontwait();
        let (result, used_dontwait) = if socket {
            let peek = libc::MSG_PEEK | if dontwait { libc::MSG_DONTWAIT } else { 0 };
            match sys::recv(fd, at, (cap - done).min(LINE_PEEK), peek) {
                Ok(peeked) if peeked > 0 => {
                    // SAFETY: the kernel just stored `peeked` bytes at `at`.
                    let seen = unsafe { std::slice::from_raw_parts(at, peeked) };
                    let through = seen
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(peeked, |i| i + 1);
                    // The bytes are queued already: this read takes them without blocking.
                    (sys::recv(fd, at, through, libc::MSG_DONTWAIT), true)
                }
                other => (other, dontwait),
            }
        } else {
            if let Err(error) = waiter.poll_first(libc::POLLIN) {
                return Err(Partial { done, error });
            }
            (sys::read(fd, at, 1), false)
        };
        match result {
            Ok(0) => {
                return Ok(Line {
                    len: done,
                    end: LineEnd::Eof,
                });
            }
            Ok(n) => {
                done += n;
                // SAFETY: the byte was just stored by the kernel.
                if unsafe { *buf.add(done - 1) } == b'\n' {
                    return Ok(Line {
                        len: done,
                        end: LineEnd::Newline,
                    });
                }
            }
            Err(libc::ENOTSOCK) if socket => socket = false,
            Err(e) => waiter
                .on_errno(e, libc::POLLIN, used_dontwait)
                .map_err(|error| Partial { done, error })?,
        }
    }
    Ok(Line {
        len: done,
        end: LineEnd::Full,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::counters::{self, Call};
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::os::unix::net::UnixStream;

    fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    #[test]
    fn one_recv_reads_a_mib_that_arrives_in_64k_pieces() {
        let (mut tx, rx) = tcp_pair();
        let payload: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();
        let expected = payload.clone();
        let writer = std::thread::spawn(move || {
            for piece in payload.chunks(64 << 10) {
                tx.write_all(piece).unwrap();
            }
        });
        counters::reset();
        let mut buf = vec![0u8; 1 << 20];
        read_full(&rx, &mut buf, &Opts::default()).unwrap();
        writer.join().unwrap();
        assert_eq!(buf, expected);
        // MSG_WAITALL on a blocking socket: the kernel assembles the whole message.
        assert_eq!(counters::count(Call::Recv), 1);
        assert_eq!(counters::count(Call::Read), 0);
        assert_eq!(counters::count(Call::Poll), 0);
    }

    #[test]
    fn a_pipe_costs_one_failed_recv_then_reads() {
        let (mut r, mut w) = std::io::pipe().unwrap();
        w.write_all(b"0123456789").unwrap();
        counters::reset();
        let mut buf = [0u8; 10];
        read_full(&mut r, &mut buf, &Opts::default()).unwrap();
        assert_eq!(&buf, b"0123456789");
        assert_eq!(counters::count(Call::Recv), 1, "the ENOTSOCK probe");
        assert_eq!(counters::count(Call::Read), 1);
    }

    #[test]
    fn write_returning_zero_is_eio_and_keeps_the_count() {
        let (a, _b) = UnixStream::pair().unwrap();
        // The fake kernel accepts 2 bytes, then returns 0: a driver bug TLPI and UNP report
        // with a stale errno.
        counters::inject_write_results(&[2, 0]);
        let stopped = write_full(&a, b"abcdef", &Opts::default()).unwrap_err();
        assert_eq!(stopped.done, 2);
        assert!(matches!(stopped.error, Error::WriteZero));
        assert_eq!(stopped.error.errno(), libc::EIO);
    }

    #[test]
    fn vectored_write_zero_is_eio_too() {
        let (a, _b) = UnixStream::pair().unwrap();
        counters::inject_write_results(&[3, 0]);
        let mut bufs = [IoSlice::new(b"ab"), IoSlice::new(b"cd")];
        let stopped = write_vectored_full(&a, &mut bufs, &Opts::default()).unwrap_err();
        assert_eq!((stopped.done, stopped.error.errno()), (3, libc::EIO));
        // The slices now hold exactly the byte that did not go out.
        assert_eq!((&*bufs[0], &*bufs[1]), (&b""[..], &b"d"[..]));
    }

    #[test]
    fn an_empty_transfer_makes_no_syscall() {
        counters::reset();
        let (a, _b) = UnixStream::pair().unwrap();
        read_full(&a, &mut [], &Opts::default()).unwrap();
        write_full(&a, &[], &Opts::default()).unwrap();
        write_vectored_full(&a, &mut [IoSlice::new(&[])], &Opts::default()).unwrap();
        let total: u64 = [Call::Recv, Call::Read, Call::Send, Call::Write, Call::Poll]
            .into_iter()
            .map(counters::count)
            .sum();
        assert_eq!(total, 0);
    }

    #[test]
    fn vectored_write_is_one_sendmsg_and_advances_the_slices() {
        let (a, b) = UnixStream::pair().unwrap();
        counters::reset();
        let mut bufs = [
            IoSlice::new(b"head:"),
            IoSlice::new(&[]),
            IoSlice::new(b"body"),
        ];
        write_vectored_full(&a, &mut bufs, &Opts::default()).unwrap();
        assert_eq!(counters::count(Call::Send), 1);
        assert!(bufs.iter().all(|s| s.is_empty()));
        let mut got = [0u8; 9];
        read_full(&b, &mut got, &Opts::default()).unwrap();
        assert_eq!(&got, b"head:body");
    }

    /// An O_NONBLOCK eventfd whose counter leaves no room for `value`: poll reports it
    /// writable (the counter is below its maximum) but write says EAGAIN.
    fn full_nonblocking_eventfd() -> std::os::fd::OwnedFd {
        use std::os::fd::FromRawFd;
        // SAFETY: plain syscalls on a fresh fd.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK) };
        assert!(fd >= 0);
        let near_max: u64 = u64::MAX - 10;
        // SAFETY: 8 readable bytes.
        assert_eq!(
            unsafe { libc::write(fd, (&near_max as *const u64).cast(), 8) },
            8
        );
        // SAFETY: fd is ours.
        unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
    }

    #[test]
    fn ready_but_refused_never_spins() {
        let efd = full_nonblocking_eventfd();
        let value = 100u64.to_ne_bytes();
        counters::reset();
        let stopped = write_full(
            &efd,
            &value,
            &Opts::with_timeout(Duration::from_millis(300)),
        )
        .unwrap_err();
        assert!(matches!(stopped.error, Error::TimedOut));
        // A spin makes thousands of poll/write pairs in 300 ms; backing off (at most a few
        // ms between attempts) makes at most a few dozen, fewer on a busy machine.
        let attempts = counters::count(Call::Write);
        assert!(attempts < 200, "{attempts} writes in 300 ms: a busy loop");
    }

    #[test]
    fn readline_on_a_socket_peeks_then_reads_exactly_the_line() {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(b"first\nsecond\n").unwrap();
        counters::reset();
        let mut buf = [0u8; 64];
        let line = read_line(&b, &mut buf, &Opts::default()).unwrap();
        assert_eq!(&buf[..line.len], b"first\n");
        // One peek and one exact read: a syscall pair per line, not per byte.
        assert_eq!(counters::count(Call::Recv), 2);
    }
}
