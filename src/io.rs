//! Exact-count reads and writes on raw fds: the seed's `readn`, done so nothing is lost.
//!
//! Each call moves all the bytes asked for, or stops and says how many moved ([`Partial`]).
//! The loops follow the TLPI/UNP contract that legacy C relies on and harden its corners:
//!
//! - Stream sockets are read with `recvmsg(MSG_WAITALL)`, so a whole message costs one
//!   syscall, and written with `send(MSG_NOSIGNAL)`, so a write after RST returns EPIPE
//!   instead of killing the process. Pipes, FIFOs, files and ttys use `read`/`write`, one
//!   syscall per read; their writes run under a per-thread SIGPIPE mask (block, write,
//!   unblock: three syscalls) that never depends on the disposition.
//! - Datagram, seqpacket and raw sockets are refused for reads (EPROTOTYPE) before a byte
//!   moves: a record longer than the request would lose its tail. Writes send each buffer
//!   as one record.
//! - Which kind an fd is comes from one `getsockopt(SO_TYPE)` the first time an fd number is
//!   seen, remembered per number as a hint and forgotten at EOF and on errors. A stale
//!   hint (the number was closed and reused) costs a syscall, or, for a datagram socket
//!   behind a stream hint, ends the call with EPROTOTYPE/EMSGSIZE after one datagram; see
//!   `readn_sync` in the C header for the exact terms.
//! - EINTR is retried (unless [`Opts::return_on_eintr`]).
//! - On an `O_NONBLOCK` fd, EAGAIN means "not yet": the call polls and goes on, backing off
//!   (50 µs to 4 ms) when poll says ready but the fd still says EAGAIN, so it never spins.
//!   On a blocking socket EAGAIN means the caller's SO_RCVTIMEO/SO_SNDTIMEO expired, and is
//!   returned.
//! - A deadline ([`Opts::timeout`]) or [`Opts::return_on_eintr`] makes every syscall
//!   nonblocking (MSG_DONTWAIT; RWF_NOWAIT on pipes) with poll(2) as the only wait. The
//!   deadline is checked before every syscall after the first; expiry reports
//!   [`Error::TimedOut`] with the count moved so far. Fds with no per-call nonblocking mode
//!   (ttys, character devices, eventfd writes) are polled first and can still block past
//!   the deadline if another thread takes the data or the room in between.
//! - Every syscall is clamped to [`MAX_IO`] bytes (Linux moves no more per call) and the loop
//!   goes on.
//!
//! Any number of threads may use them on distinct fds at once. Two threads reading lines
//! from one fd at once can split lines, as two threads calling read(2) would.
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

use std::cell::Cell;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Partial};
use crate::sigpipe::SigpipeGuard;
use crate::sys::{self, FdKind};

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
    /// A deadline for the whole call, measured on the monotonic clock from the call's start,
    /// checked before every syscall after the first. `None` waits as long as it takes, and
    /// so does a duration too long for [`Instant`] to hold (`Duration::MAX`).
    /// `Some(Duration::ZERO)` makes one nonblocking attempt: it moves what is ready now.
    pub timeout: Option<Duration>,
    /// Return EINTR (with the count so far) when a signal handler runs while the call
    /// waits, so a signal handler can cancel the call: also after some bytes moved, and
    /// also when the handler has SA_RESTART (the waits are poll(2), which the kernel never
    /// restarts). By default EINTR is retried.
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
/// for them, EPROTOTYPE for a datagram, seqpacket or raw socket).
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
/// bytes when mixed with `readn`): on sockets it peeks, then reads exactly through the
/// newline (and keeps an SO_PEEK_OFF the caller enabled where it was); on other fds it
/// reads a byte at a time. So it mixes freely with [`read_full`] on the same fd. One thread
/// at a time per fd: two threads reading lines from one fd can split or swap lines.
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
    /// recvmsg(2) calls, MSG_PEEK included.
    pub recv: u64,
    /// read(2) and preadv2(2) calls.
    pub read: u64,
    /// send(2) and sendmsg(2) calls, an ENOTSOCK one included.
    pub send: u64,
    /// write(2), writev(2) and pwritev2(2) calls.
    pub write: u64,
    /// poll(2) calls.
    pub poll: u64,
    /// Calls of the SIGPIPE guard: pthread_sigmask, sigpending, sigtimedwait, /proc reads.
    pub sigmask: u64,
    /// getsockopt/setsockopt/fstat calls that learn what an fd is.
    pub probe: u64,
}

#[cfg(feature = "count-syscalls")]
impl SyscallCounts {
    /// All syscalls counted.
    pub fn total(&self) -> u64 {
        self.recv + self.read + self.send + self.write + self.poll + self.sigmask + self.probe
    }
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
        probe: count(Call::Probe),
    }
}

/// Zeroes this thread's counts (feature `count-syscalls`).
#[cfg(feature = "count-syscalls")]
pub fn reset_syscall_counts() {
    crate::sys::counters::reset();
}

/// The first pause after a readiness report that the next syscall contradicted (EAGAIN);
/// it doubles up to [`BACKOFF_MAX`], so no input can make a call spin.
const BACKOFF_MIN: Duration = Duration::from_micros(50);

thread_local! {
    /// An fd whose first read timeout (SO_RCVTIMEO expired) this thread counts, and where:
    /// the server sets it around a handler, so a silent client shows in its stats.
    static READ_TIMEOUT_WATCH: Cell<Option<(RawFd, *const AtomicU64)>> = const { Cell::new(None) };
}

/// Counts, once, a read of `fd` on this thread that fails because the socket's
/// SO_RCVTIMEO expired, into `counter`, until the returned guard is dropped.
pub(crate) fn watch_read_timeout(fd: RawFd, counter: &AtomicU64) -> ReadTimeoutWatch<'_> {
    READ_TIMEOUT_WATCH.with(|w| w.set(Some((fd, counter))));
    ReadTimeoutWatch(std::marker::PhantomData)
}

/// Ends a [`watch_read_timeout`] (the counter it names must outlive the watch).
pub(crate) struct ReadTimeoutWatch<'a>(std::marker::PhantomData<&'a AtomicU64>);

impl Drop for ReadTimeoutWatch<'_> {
    fn drop(&mut self) {
        READ_TIMEOUT_WATCH.with(|w| w.set(None));
    }
}

/// A read of `fd` timed out (SO_RCVTIMEO): count it if this thread watches `fd`.
fn note_read_timeout(fd: RawFd) {
    if let Some((watched, counter)) = READ_TIMEOUT_WATCH.with(Cell::get)
        && watched == fd
    {
        READ_TIMEOUT_WATCH.with(|w| w.set(None));
        // SAFETY: the counter outlives the watch (ReadTimeoutWatch borrows it).
        unsafe { &*counter }.fetch_add(1, Ordering::Relaxed);
    }
}
/// The longest such pause: short enough that a call notices room or data within a few ms.
const BACKOFF_MAX: Duration = Duration::from_millis(4);

/// How one call moves bytes and waits: its deadline, its mode, and what EINTR/EAGAIN mean.
pub(crate) struct Waiter<'a> {
    fd: RawFd,
    opts: &'a Opts,
    /// None: no deadline (none asked, or so far away that `Instant` cannot hold it).
    deadline: Option<Instant>,
    /// Every syscall is nonblocking (MSG_DONTWAIT, RWF_NOWAIT) and poll(2) is the only wait:
    /// set by a deadline (nothing may block past it) and by RETURN_ON_EINTR (poll is never
    /// restarted, even under SA_RESTART, so a handled signal always ends the wait).
    pub(crate) poll_mode: bool,
    nonblocking: Option<bool>,
    /// Data syscalls made so far: the first one always runs, even with timeout 0.
    attempts: usize,
    /// poll(2) reported the fd ready and no byte has moved since.
    ready_unused: bool,
    backoff: Duration,
}

impl<'a> Waiter<'a> {
    fn new(fd: RawFd, opts: &'a Opts) -> Self {
        // A timeout too large for Instant is no deadline at all, never a panic.
        let deadline = opts.timeout.and_then(|t| Instant::now().checked_add(t));
        Waiter {
            fd,
            opts,
            deadline,
            poll_mode: deadline.is_some() || opts.return_on_eintr,
            nonblocking: None,
            attempts: 0,
            ready_unused: false,
            backoff: BACKOFF_MIN,
        }
    }

    /// The call's deadline, from [`Opts::timeout`] at its start.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Moves the deadline (the buffered reader's heartbeat wakes before the caller's). A
    /// deadline makes the rest of the call nonblocking, as in [`Waiter::new`].
    pub(crate) fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
        self.poll_mode |= deadline.is_some();
    }

    /// Runs before every data syscall: a deadline that passed ends the call, so a peer
    /// that keeps data coming cannot stretch it. The first syscall always runs, which is
    /// what makes timeout 0 move whatever is ready.
    fn before_syscall(&mut self) -> Result<(), Error> {
        crate::test_hooks::pause("io.next_syscall");
        if self.attempts > 0 && self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Error::TimedOut);
        }
        self.attempts += 1;
        Ok(())
    }

    /// Bytes moved: readiness was used, and the next contradiction starts a fresh backoff.
    fn progressed(&mut self) {
        self.ready_unused = false;
        self.backoff = BACKOFF_MIN;
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

    /// Waits until the fd is ready for `events`, the deadline passes (TimedOut), or a signal
    /// interrupts and the caller asked for EINTR. If the last readiness report went unused
    /// (the syscall after it said EAGAIN: another thread took the data or the room, or the
    /// fd calls itself ready when it is not, like an eventfd without room for the value),
    /// it first sleeps, 50 µs doubling up to 4 ms, so such an fd costs a few syscalls per
    /// millisecond instead of a busy loop.
    fn wait(&mut self, events: i16) -> Result<(), Error> {
        if self.ready_unused {
            let pause = match self.deadline {
                Some(deadline) => self
                    .backoff
                    .min(deadline.saturating_duration_since(Instant::now())),
                None => self.backoff,
            };
            self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            match sys::sleep(pause) {
                Err(libc::EINTR) if self.opts.return_on_eintr => {
                    return Err(Error::from_errno(libc::EINTR));
                }
                _ => {}
            }
        }
        loop {
            // Past the deadline, one look without waiting: what is ready now still moves
            // (timeout 0 on an fd with no per-call nonblocking mode), nothing more.
            let mut last_look = false;
            let timeout_ms = match self.deadline {
                None => -1,
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        last_look = true;
                        0
                    } else {
                        // Round up: poll must never wake before the deadline and spin.
                        let left = deadline - now;
                        let ms =
                            left.as_millis() + u128::from(left.subsec_nanos() % 1_000_000 != 0);
                        ms.min(i32::MAX as u128) as i32
                    }
                }
            };
            match sys::poll(self.fd, events, timeout_ms) {
                Ok(0) if last_look => return Err(Error::TimedOut),
                Ok(0) => continue,
                Ok(revents) if revents & libc::POLLNVAL != 0 => {
                    return Err(Error::from_errno(libc::EBADF));
                }
                // POLLERR/POLLHUP: the next syscall reports what happened.
                Ok(_) => {
                    self.ready_unused = true;
                    return Ok(());
                }
                Err(libc::EINTR) if !self.opts.return_on_eintr => continue,
                Err(e) => return Err(Error::from_errno(e)),
            }
        }
    }

    /// Decides what a failed syscall means: `Ok(())` to try again (after waiting if need
    /// be), or the error that ends the call.
    fn on_errno(&mut self, errnum: i32, events: i16) -> Result<(), Error> {
        match errnum {
            libc::EINTR if !self.opts.return_on_eintr => Ok(()),
            libc::EAGAIN => {
                if self.opts.return_on_eagain && self.nonblocking()? {
                    Err(Error::from_errno(errnum))
                } else if self.poll_mode || self.nonblocking()? {
                    self.wait(events)
                } else {
                    // A blocking syscall only says EAGAIN when the caller's SO_RCVTIMEO or
                    // SO_SNDTIMEO expired: that is their timeout, never poll past it.
                    if events == libc::POLLIN {
                        note_read_timeout(self.fd);
                    }
                    Err(Error::from_errno(errnum))
                }
            }
            _ => Err(Error::from_errno(errnum)),
        }
    }
}

/// Asks the kernel what `fd` is (one getsockopt, which reads nothing) and records it.
/// Reads need to know before the first byte moves: a datagram read into a short buffer
/// loses the rest of the datagram, so only stream sockets and non-sockets are read.
pub(crate) fn probe_kind(fd: RawFd) -> Result<FdKind, Error> {
    let kind = match sys::socket_type(fd) {
        Ok(libc::SOCK_STREAM) => FdKind::Stream,
        // SOCK_DGRAM, SOCK_SEQPACKET, SOCK_RAW: records, not a byte stream. Refused before
        // any byte moves, so the caller can still read them with recv(2).
        Ok(_) => {
            sys::set_kind_hint(fd, FdKind::Unknown);
            return Err(Error::from_errno(libc::EPROTOTYPE));
        }
        Err(libc::ENOTSOCK) => FdKind::NotSocket,
        Err(e) => return Err(Error::from_errno(e)),
    };
    sys::set_kind_hint(fd, kind);
    Ok(kind)
}

/// Per-call state of a non-socket: whether RWF_NOWAIT still looks usable.
struct NoWait {
    usable: bool,
}

impl NoWait {
    fn new() -> Self {
        NoWait { usable: true }
    }

    /// After EOPNOTSUPP (ttys, eventfd writes, most file systems' buffered writes) or a
    /// disk file that EAGAINs while poll calls it ready: plain syscalls, polled first.
    fn give_up(&mut self) {
        self.usable = false;
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
    if len == 0 {
        return Ok(());
    }
    // SAFETY: forwarded contract.
    unsafe { read_loop(fd, buf, len, opts) }.inspect_err(|p| forget_on_end(fd, &p.error))
}

/// After an end (EOF, a dead connection, a bad fd) a program usually closes the fd, and the
/// number comes back for something else: forgetting the hint then makes the next call on
/// that number ask the kernel again, which keeps stale hints rare.
fn forget_on_end(fd: RawFd, error: &Error) {
    let ends = match error {
        Error::Eof => true,
        Error::Os(_) => !matches!(error.errno(), libc::EAGAIN | libc::EINTR),
        _ => false,
    };
    if ends {
        sys::set_kind_hint(fd, FdKind::Unknown);
    }
}

/// The loop of [`read_raw`].
///
/// # Safety
///
/// As [`read_raw`].
unsafe fn read_loop(fd: RawFd, buf: *mut u8, len: usize, opts: &Opts) -> Result<(), Partial> {
    let mut done = 0;
    let fail = |done, error| Err(Partial { done, error });
    let hinted = sys::kind_hint(fd);
    let kind = match hinted {
        FdKind::Unknown => probe_kind(fd),
        known => Ok(known),
    };
    let kind = match kind {
        Ok(kind) => kind,
        Err(error) => return fail(0, error),
    };
    let mut call = ReadCall::new(fd, kind, opts);
    // A short or empty read on a hinted fd re-asks the kernel once per call what the fd is,
    // so a hint gone stale (the number now names a datagram socket) is caught there.
    let mut verified = hinted == FdKind::Unknown;
    while done < len {
        let chunk = (len - done).min(MAX_IO);
        // SAFETY: done < len, so the pointer stays inside the caller's buffer.
        let at = unsafe { buf.add(done) };
        let waitall = !call.waiter.poll_mode;
        // SAFETY: `at..at+chunk` lies inside the caller's buffer.
        let n = match unsafe { call.read_some(at, chunk, waitall) } {
            Ok(n) => n,
            Err(stopped) => return fail(done + stopped.done, stopped.error),
        };
        if n < chunk && !verified {
            verified = true;
            match probe_kind(fd) {
                Ok(now) => call.kind = now,
                Err(error) => return fail(done + n, error),
            }
        }
        if n == 0 {
            return fail(done, Error::Eof);
        }
        done += n;
    }
    Ok(())
}

/// The reading side of one call, shared by [`read_full`] and the buffered
/// [`crate::reader::Reader`]: its deadline and wait rules ([`Waiter`]) and what the fd is.
pub(crate) struct ReadCall<'a> {
    pub(crate) waiter: Waiter<'a>,
    nowait: NoWait,
    kind: FdKind,
}

impl<'a> ReadCall<'a> {
    /// A call on `fd`, known to be a stream socket or not a socket (see [`probe_kind`]).
    pub(crate) fn new(fd: RawFd, kind: FdKind, opts: &'a Opts) -> Self {
        ReadCall {
            waiter: Waiter::new(fd, opts),
            nowait: NoWait::new(),
            kind,
        }
    }

    /// Reads up to `len` bytes at `at` with one successful syscall (`waitall`: recvmsg with
    /// MSG_WAITALL on a stream socket), retrying EINTR and waiting out EAGAIN as the
    /// options say, the deadline checked before every syscall after the call's first.
    /// `Ok(0)` is EOF. On error, [`Partial::done`] is what this step stored before it
    /// failed (only a truncated datagram behind a stale hint stores anything).
    ///
    /// # Safety
    ///
    /// `at..at+len` must be memory the kernel may write.
    pub(crate) unsafe fn read_some(
        &mut self,
        at: *mut u8,
        len: usize,
        waitall: bool,
    ) -> Result<usize, Partial> {
        let fd = self.waiter.fd;
        let fail = |done, error| Err(Partial { done, error });
        loop {
            if let Err(error) = self.waiter.before_syscall() {
                return fail(0, error);
            }
            let result = match self.kind {
                FdKind::Stream => {
                    let flags = if self.waiter.poll_mode {
                        libc::MSG_DONTWAIT
                    } else if waitall {
                        libc::MSG_WAITALL
                    } else {
                        0
                    };
                    match sys::recv(fd, at, len, flags) {
                        // Only a datagram socket behind a stale hint truncates: say so.
                        Ok((n, got)) if got & libc::MSG_TRUNC != 0 => {
                            sys::set_kind_hint(fd, FdKind::Unknown);
                            return fail(n, Error::from_errno(libc::EMSGSIZE));
                        }
                        other => other.map(|(n, _)| n),
                    }
                }
                _ => match read_not_socket(&mut self.waiter, &mut self.nowait, at, len) {
                    Ok(result) => result,
                    Err(error) => return fail(0, error),
                },
            };
            match result {
                Ok(n) => {
                    if n > 0 {
                        self.waiter.progressed();
                    }
                    return Ok(n);
                }
                Err(libc::ENOTSOCK) if self.kind == FdKind::Stream => {
                    // The hint was stale: the number now names a non-socket. One syscall lost.
                    sys::set_kind_hint(fd, FdKind::NotSocket);
                    self.kind = FdKind::NotSocket;
                    self.waiter.attempts -= 1;
                }
                Err(e) => {
                    if let Err(error) = self.waiter.on_errno(e, libc::POLLIN) {
                        return fail(0, error);
                    }
                }
            }
        }
    }
}

/// One read from a non-socket: plain read(2), or, when nothing may block, preadv2 with
/// RWF_NOWAIT where the fd offers it and poll-then-read where it does not. The outer error
/// ends the call (the deadline passed, or a signal cancelled the wait).
fn read_not_socket(
    waiter: &mut Waiter<'_>,
    nowait: &mut NoWait,
    at: *mut u8,
    len: usize,
) -> Result<sys::SysResult, Error> {
    if !waiter.poll_mode {
        return Ok(sys::read(waiter.fd, at, len));
    }
    if nowait.usable {
        match sys::read_nowait(waiter.fd, at, len) {
            Err(libc::EOPNOTSUPP) => nowait.give_up(),
            // A disk file that is not cached says EAGAIN while poll calls it ready: read it.
            Err(libc::EAGAIN) if waiter.ready_unused && sys::is_disk_file(waiter.fd) => {
                nowait.give_up()
            }
            other => return Ok(other),
        }
    }
    waiter.wait(libc::POLLIN)?;
    Ok(sys::read(waiter.fd, at, len))
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
    /// One `pwritev2(RWF_NOWAIT)`.
    fn write_nowait(&self, fd: RawFd) -> sys::SysResult;
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

    fn write_nowait(&self, fd: RawFd) -> sys::SysResult {
        let iov = libc::iovec {
            iov_base: self.at.cast_mut().cast(),
            iov_len: self.left.min(MAX_IO),
        };
        sys::write_nowait(fd, std::slice::from_ref(&iov))
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

    fn write_nowait(&self, fd: RawFd) -> sys::SysResult {
        sys::write_nowait(fd, self.batch())
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
    if out.is_empty() {
        return Ok(());
    }
    write_steps(fd, out, opts).inspect_err(|p| forget_on_end(fd, &p.error))
}

/// The loop of [`write_loop`].
fn write_steps(fd: RawFd, out: &mut impl Outgoing, opts: &Opts) -> Result<(), Partial> {
    let mut waiter = Waiter::new(fd, opts);
    let mut nowait = NoWait::new();
    // Armed before the first non-socket write and held for the rest of the call: one mask
    // change per call, not per chunk, and none at all for sockets.
    let mut guard: Option<SigpipeGuard> = None;
    let mut done = 0;
    // A stale "not a socket" hint costs nothing here: write(2) on any socket, under the
    // guard, is as correct as send(MSG_NOSIGNAL).
    let mut socket = sys::kind_hint(fd) != FdKind::NotSocket;
    while !out.is_empty() {
        if let Err(error) = waiter.before_syscall() {
            return Err(Partial { done, error });
        }
        let result = if socket {
            let dontwait = if waiter.poll_mode {
                libc::MSG_DONTWAIT
            } else {
                0
            };
            out.send(fd, libc::MSG_NOSIGNAL | dontwait)
        } else {
            guard.get_or_insert_with(SigpipeGuard::arm);
            match write_not_socket(&mut waiter, &mut nowait, out) {
                Ok(result) => result,
                Err(error) => return Err(Partial { done, error }),
            }
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
                waiter.progressed();
            }
            Err(libc::ENOTSOCK) if socket => {
                sys::set_kind_hint(fd, FdKind::NotSocket);
                socket = false;
                waiter.attempts -= 1;
            }
            Err(e) => {
                if e == libc::EPIPE {
                    if let Some(guard) = guard.as_mut() {
                        guard.consume_raised();
                    }
                }
                if let Err(error) = waiter.on_errno(e, libc::POLLOUT) {
                    return Err(Partial { done, error });
                }
            }
        }
    }
    Ok(())
}

/// One write to a non-socket: plain write(2), or, when nothing may block, pwritev2 with
/// RWF_NOWAIT where the fd offers it and poll-then-write (at most PIPE_BUF bytes, all that
/// POLLOUT promises) where it does not. The outer error ends the call.
fn write_not_socket(
    waiter: &mut Waiter<'_>,
    nowait: &mut NoWait,
    out: &impl Outgoing,
) -> Result<sys::SysResult, Error> {
    if !waiter.poll_mode {
        crate::test_hooks::pause("io.before_write");
        return Ok(out.write(waiter.fd, usize::MAX));
    }
    if nowait.usable {
        crate::test_hooks::pause("io.before_write");
        match out.write_nowait(waiter.fd) {
            Err(libc::EOPNOTSUPP) => nowait.give_up(),
            other => return Ok(other),
        }
    }
    waiter.wait(libc::POLLOUT)?;
    crate::test_hooks::pause("io.before_write");
    Ok(out.write(waiter.fd, libc::PIPE_BUF))
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
    if cap == 0 {
        return Ok(Line {
            len: 0,
            end: LineEnd::Full,
        });
    }
    // SAFETY: forwarded contract.
    let result = unsafe { read_line_loop(fd, buf, cap, opts) };
    match &result {
        Ok(line) if line.end == LineEnd::Eof => forget_on_end(fd, &Error::Eof),
        Err(p) => forget_on_end(fd, &p.error),
        Ok(_) => {}
    }
    result
}

/// The loop of [`read_line_raw`].
///
/// # Safety
///
/// As [`read_line_raw`].
unsafe fn read_line_loop(
    fd: RawFd,
    buf: *mut u8,
    cap: usize,
    opts: &Opts,
) -> Result<Line, Partial> {
    let fail = |done, error| Err(Partial { done, error });
    // A non-socket is read a byte at a time, so one probe more is cheap there, and it keeps
    // a stale "not a socket" hint from reading a stream socket byte by byte.
    let kind = match sys::kind_hint(fd) {
        FdKind::Stream => Ok(FdKind::Stream),
        _ => probe_kind(fd),
    };
    let mut kind = match kind {
        Ok(kind) => kind,
        Err(error) => return fail(0, error),
    };
    let mut waiter = Waiter::new(fd, opts);
    let mut nowait = NoWait::new();
    let mut done = 0;
    while done < cap {
        if let Err(error) = waiter.before_syscall() {
            return fail(done, error);
        }
        // SAFETY: done < cap keeps the pointer inside the caller's buffer.
        let at = unsafe { buf.add(done) };
        let result = match kind {
            FdKind::Stream => match peek_line(&waiter, at, (cap - done).min(LINE_PEEK)) {
                Ok(Peeked::Took(n)) => Ok(n),
                Ok(Peeked::Truncated(n)) => {
                    sys::set_kind_hint(fd, FdKind::Unknown);
                    return fail(done + n, Error::from_errno(libc::EMSGSIZE));
                }
                Err(e) => Err(e),
            },
            _ => match read_not_socket(&mut waiter, &mut nowait, at, 1) {
                Ok(result) => result,
                Err(error) => return fail(done, error),
            },
        };
        match result {
            Ok(0) => {
                // A zero-length datagram behind a stale hint is not EOF.
                if let Err(error) = probe_kind(fd) {
                    return fail(done, error);
                }
                return Ok(Line {
                    len: done,
                    end: LineEnd::Eof,
                });
            }
            Ok(n) => {
                done += n;
                waiter.progressed();
                // SAFETY: the byte was just stored by the kernel.
                if unsafe { *buf.add(done - 1) } == b'\n' {
                    return Ok(Line {
                        len: done,
                        end: LineEnd::Newline,
                    });
                }
            }
            Err(libc::ENOTSOCK) if kind == FdKind::Stream => {
                sys::set_kind_hint(fd, FdKind::NotSocket);
                kind = FdKind::NotSocket;
                waiter.attempts -= 1;
            }
            Err(e) => {
                if let Err(error) = waiter.on_errno(e, libc::POLLIN) {
                    return fail(done, error);
                }
            }
        }
    }
    Ok(Line {
        len: done,
        end: LineEnd::Full,
    })
}

/// What one socket readline step did.
enum Peeked {
    /// Took this many bytes (0 at EOF): through the first newline, or all that was queued.
    Took(usize),
    /// A record, not a stream (a datagram socket behind a stale hint): this many bytes were
    /// stored and the rest of the record is gone (0: the peek saw it and took nothing).
    Truncated(usize),
}

/// One step of a socket readline: peek at what is queued, then take exactly the bytes
/// through the first newline (or all peeked bytes if none).
fn peek_line(waiter: &Waiter<'_>, at: *mut u8, room: usize) -> Result<Peeked, i32> {
    let fd = waiter.fd;
    let dontwait = if waiter.poll_mode {
        libc::MSG_DONTWAIT
    } else {
        0
    };
    let (peeked, flags) = sys::recv(fd, at, room, libc::MSG_PEEK | dontwait)?;
    if flags & libc::MSG_TRUNC != 0 {
        return Ok(Peeked::Truncated(0));
    }
    if peeked == 0 {
        return Ok(Peeked::Took(0));
    }
    // SAFETY: the kernel just stored `peeked` bytes at `at`.
    let seen = unsafe { std::slice::from_raw_parts(at, peeked) };
    let through = seen
        .iter()
        .position(|&b| b == b'\n')
        .map_or(peeked, |i| i + 1);
    // The bytes are queued already: this read takes them without blocking.
    let (taken, flags) = sys::recv(fd, at, through, libc::MSG_DONTWAIT)?;
    if flags & libc::MSG_TRUNC != 0 {
        return Ok(Peeked::Truncated(taken));
    }
    if peeked > taken {
        undo_peek_advance(fd, peeked - taken);
    }
    Ok(Peeked::Took(taken))
}

/// With SO_PEEK_OFF enabled each MSG_PEEK moves the kernel's peek offset forward and each
/// read moves it back by what it took; a peek that saw past the line leaves it `extra`
/// bytes ahead, and the next peek would skip queued data (and wait for more that may never
/// come). Puts the offset back where the caller had it. One getsockopt when the peek saw
/// more than one line, one setsockopt more only when the option is on.
fn undo_peek_advance(fd: RawFd, extra: usize) {
    if let Ok(offset) = sys::peek_offset(fd) {
        if offset >= 0 {
            let back = i32::try_from(extra).unwrap_or(i32::MAX);
            // Nothing better to do on failure: the offset stays where the kernel put it.
            let _ = sys::set_peek_offset(fd, offset.saturating_sub(back).max(0));
        }
    }
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

    /// Moves `fd` to number `to`. Count tests use numbers above 16000, one range each, so
    /// no test running in parallel leaves a hint on them.
    fn renumber(fd: impl std::os::fd::IntoRawFd, to: RawFd) -> RawFd {
        let fd = fd.into_raw_fd();
        // SAFETY: plain fd syscalls on fds this test owns.
        unsafe {
            assert_eq!(libc::dup2(fd, to), to);
            libc::close(fd);
        }
        to
    }

    fn close(fd: RawFd) {
        // SAFETY: the test owns fd.
        unsafe { libc::close(fd) };
    }

    fn pipe_at(r: RawFd, w: RawFd) -> (RawFd, RawFd) {
        let mut fds = [0; 2];
        // SAFETY: fds has room for two.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        (renumber(fds[0], r), renumber(fds[1], w))
    }

    fn unix_at(a: RawFd, b: RawFd) -> (RawFd, RawFd) {
        let (x, y) = UnixStream::pair().unwrap();
        (renumber(x, a), renumber(y, b))
    }

    fn borrowed(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
        // SAFETY: the tests close their fds only after the last use.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
    }

    /// Every syscall this thread made since the last reset.
    fn total() -> u64 {
        [
            Call::Recv,
            Call::Read,
            Call::Send,
            Call::Write,
            Call::Poll,
            Call::SigMask,
            Call::Probe,
        ]
        .into_iter()
        .map(counters::count)
        .sum()
    }

    #[test]
    fn syscalls_per_call_once_the_fd_is_known() {
        let o = Opts::default();
        let msg = [7u8; 64];
        let mut buf = [0u8; 64];
        let (a, b) = unix_at(16_001, 16_002);
        let (r, w) = pipe_at(16_003, 16_004);
        // First meeting: one probe each (SO_TYPE for reads, ENOTSOCK from send for writes).
        write_full(borrowed(a), &msg, &o).unwrap();
        read_full(borrowed(b), &mut buf, &o).unwrap();
        write_full(borrowed(w), &msg, &o).unwrap();
        read_full(borrowed(r), &mut buf, &o).unwrap();
        for _ in 0..3 {
            counters::reset();
            write_full(borrowed(a), &msg, &o).unwrap();
            assert_eq!(
                (total(), counters::count(Call::Send)),
                (1, 1),
                "socket writen"
            );
            counters::reset();
            read_full(borrowed(b), &mut buf, &o).unwrap();
            assert_eq!(
                (total(), counters::count(Call::Recv)),
                (1, 1),
                "socket readn"
            );
            counters::reset();
            write_full(borrowed(w), &msg, &o).unwrap();
            // Block SIGPIPE, write, restore the mask.
            assert_eq!(total(), 3, "pipe writen");
            assert_eq!(counters::count(Call::Write), 1);
            counters::reset();
            read_full(borrowed(r), &mut buf, &o).unwrap();
            assert_eq!((total(), counters::count(Call::Read)), (1, 1), "pipe readn");
        }
        // readline with one line queued: a peek and an exact read.
        write_full(borrowed(a), b"one line\n", &o).unwrap();
        counters::reset();
        let line = read_line(borrowed(b), &mut buf, &o).unwrap();
        assert_eq!((line.len, total()), (9, 2));
        for fd in [a, b, r, w] {
            close(fd);
        }
    }

    #[test]
    fn a_reused_fd_number_is_read_right_whatever_its_hint_says() {
        let o = Opts::default();
        let mut buf = [0u8; 5];
        // 16101 holds a stream socket; resock learns it.
        let (peer, n) = unix_at(16_100, 16_101);
        write_full(borrowed(peer), b"sock1", &o).unwrap();
        read_full(borrowed(n), &mut buf, &o).unwrap();
        close(peer);
        close(n);
        // The number comes back as a pipe's read end: the stale hint costs one recvmsg.
        let (n, w) = pipe_at(16_101, 16_102);
        write_full(borrowed(w), b"pipe1pipe2", &o).unwrap();
        counters::reset();
        read_full(borrowed(n), &mut buf, &o).unwrap();
        assert_eq!(&buf, b"pipe1");
        assert_eq!(
            (counters::count(Call::Recv), counters::count(Call::Read)),
            (1, 1)
        );
        counters::reset();
        read_full(borrowed(n), &mut buf, &o).unwrap();
        assert_eq!((&buf, total()), (b"pipe2", 1));
        close(n);
        close(w);
        // And back to a stream socket, behind a "not a socket" hint: read(2) and write(2)
        // under the SIGPIPE guard are correct on a socket too.
        let (peer, n) = unix_at(16_100, 16_101);
        write_full(borrowed(peer), b"sock2", &o).unwrap();
        read_full(borrowed(n), &mut buf, &o).unwrap();
        assert_eq!(&buf, b"sock2");
        write_full(borrowed(n), b"reply", &o).unwrap();
        read_full(borrowed(peer), &mut buf, &o).unwrap();
        assert_eq!(&buf, b"reply");
        close(peer);
        let stopped = write_full(borrowed(n), b"x", &o).unwrap_err();
        assert_eq!(stopped.error.errno(), libc::EPIPE);
        close(n);
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
