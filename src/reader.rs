//! A buffered reader that owns its read-ahead: lines and exact counts at one syscall per
//! buffer, not per line.
//!
//! [`crate::io::read_line`] keeps no buffer, so it can mix with raw fd reads, and pays for
//! that with a peek and a read per line on sockets and a read(2) per byte on pipes. A
//! [`Reader`] reads up to its capacity at a time and serves lines and exact counts from
//! what it read ahead; [`Reader::take_buffered`] hands the read-ahead back to a caller who
//! goes on with raw fd I/O. Its reads follow the rules of [`crate::io`]: deadlines checked
//! before every syscall after a call's first, EINTR retried unless asked for, EAGAIN on an
//! `O_NONBLOCK` fd polled (returned with `return_on_eagain`), EAGAIN from a blocking socket
//! whose SO_RCVTIMEO expired returned. Datagram, seqpacket and raw sockets are refused
//! (EPROTOTYPE) when the reader is made.
//!
//! The promises a line protocol needs:
//!
//! - A line longer than the caller's buffer fails with EMSGSIZE and stays buffered: never
//!   silently split. Read it with a bigger buffer, or drop it with
//!   [`Reader::take_buffered`] / [`Reader::read_exact_with`].
//! - A deadline or an EINTR in the middle of a line consumes nothing: the partial line stays
//!   buffered and the next call returns it whole. (The buffer grows to hold a line longer
//!   than the capacity, never past the caller's buffer size.)
//! - At EOF a partial line is returned as a line ([`LineEnd::Eof`]).
//!
//! One consumer at a time: every method takes `&mut self`. [`Reader`] implements
//! [`std::io::Read`] and [`std::io::BufRead`] (blocking, no deadline).
//!
//! # Example
//!
//! ```
//! use std::io::Write;
//! use std::os::unix::net::UnixStream;
//! use resock::io::{LineEnd, Opts};
//! use resock::reader::Reader;
//!
//! let (mut a, b) = UnixStream::pair()?;
//! a.write_all(b"+OK\r\n$5\r\nhello\r\n")?;
//! let mut r = Reader::new(&b)?;
//! let mut line = [0u8; 64];
//! let got = r.read_line_with(&mut line, &Opts::default())?;
//! assert_eq!((&line[..got.len], got.end), (&b"+OK\r\n"[..], LineEnd::Newline));
//! r.read_line_with(&mut line, &Opts::default())?;
//! let mut bulk = [0u8; 7];
//! r.read_exact_with(&mut bulk, &Opts::default())?;
//! assert_eq!(&bulk, b"hello\r\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{self, BufRead, Read};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use crate::client::OnIdle;
use crate::error::{Class, Error, Partial};
use crate::io::{Line, LineEnd, MAX_IO, Opts, ReadCall, probe_kind};
use crate::sys::FdKind;

/// The capacity of a reader made with capacity 0 (and by [`Reader::new`]): a few TCP
/// segments, so one read takes what a burst of small messages brought.
pub const DEFAULT_CAPACITY: usize = 16 << 10;

/// The client's application heartbeat, run inside the reader's waits.
pub(crate) struct Heartbeat {
    idle: Duration,
    /// When the next idle event is due: `idle` after the last byte, or after the ping.
    due: Instant,
    pinged: bool,
    on_idle: OnIdle,
}

impl Heartbeat {
    pub(crate) fn new(idle: Duration, on_idle: OnIdle) -> Self {
        Heartbeat {
            idle,
            due: Instant::now() + idle,
            pinged: false,
            on_idle,
        }
    }

    /// The callback back, for the client's next connection.
    pub(crate) fn into_on_idle(self) -> OnIdle {
        self.on_idle
    }
}

/// A buffered reader over a borrowed or owned fd; see the module docs.
pub struct Reader<F: AsFd> {
    fd: F,
    kind: FdKind,
    /// Storage; `buf[start..end]` is the read-ahead. Its length is the capacity, grown only
    /// to hold a line longer than it.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    heartbeat: Option<Heartbeat>,
    /// How the connection ended, as the reader saw it (first one wins).
    ended: Option<(Class, i32)>,
    /// The heartbeat hung up: every call fails with ETIMEDOUT.
    hung_up: bool,
}

impl<F: AsFd> std::fmt::Debug for Reader<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("fd", &self.fd.as_fd().as_raw_fd())
            .field("capacity", &self.buf.len())
            .field("buffered", &(self.end - self.start))
            .finish()
    }
}

/// A zeroed buffer of `n` bytes, or ENOMEM (never an abort).
fn alloc(n: usize) -> Result<Vec<u8>, Error> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| Error::from_errno(libc::ENOMEM))?;
    v.resize(n, 0);
    Ok(v)
}

impl<F: AsFd> Reader<F> {
    /// A reader with [`DEFAULT_CAPACITY`].
    ///
    /// # Errors
    ///
    /// As [`Reader::with_capacity`].
    pub fn new(fd: F) -> Result<Self, Error> {
        Self::with_capacity(0, fd)
    }

    /// A reader that reads up to `capacity` bytes at a time (0: [`DEFAULT_CAPACITY`]).
    /// Asks the kernel once what the fd is (one getsockopt).
    ///
    /// # Errors
    ///
    /// EPROTOTYPE for a datagram, seqpacket or raw socket (a record longer than the read
    /// would lose its tail); EBADF for a closed fd; ENOMEM if the buffer cannot be
    /// allocated.
    pub fn with_capacity(capacity: usize, fd: F) -> Result<Self, Error> {
        let capacity = if capacity == 0 {
            DEFAULT_CAPACITY
        } else {
            capacity.min(MAX_IO)
        };
        let kind = probe_kind(fd.as_fd().as_raw_fd())?;
        Ok(Reader {
            fd,
            kind,
            buf: alloc(capacity)?,
            start: 0,
            end: 0,
            heartbeat: None,
            ended: None,
            hung_up: false,
        })
    }

    /// The fd.
    pub fn get_ref(&self) -> &F {
        &self.fd
    }

    /// The bytes read ahead and not yet returned.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Moves up to `out.len()` read-ahead bytes into `out` and returns how many: no
    /// syscall. Afterwards raw fd reads continue exactly where the reader stopped, once the
    /// read-ahead is empty.
    pub fn take_buffered(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.end - self.start);
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.consume_buffered(n);
        n
    }

    /// Drops up to `n` read-ahead bytes (a line that was too long) and returns how many.
    pub fn discard_buffered(&mut self, n: usize) -> usize {
        let n = n.min(self.end - self.start);
        self.consume_buffered(n);
        n
    }

    fn consume_buffered(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads exactly `out.len()` bytes: the read-ahead first, then the fd. A request at
    /// least as big as the capacity is read straight into `out`.
    ///
    /// # Errors
    ///
    /// As [`crate::io::read_full`]: [`Partial::done`] bytes are in `out` and consumed.
    pub fn read_exact_with(&mut self, out: &mut [u8], opts: &Opts) -> Result<(), Partial> {
        if self.hung_up {
            return Err(Partial {
                done: 0,
                error: Error::TimedOut,
            });
        }
        let mut done = self.take_buffered(out);
        if done == out.len() {
            return Ok(());
        }
        let mut call = ReadCall::new(self.fd.as_fd().as_raw_fd(), self.kind, opts);
        let call_deadline = call.waiter.deadline();
        while done < out.len() {
            let left = out.len() - done;
            let result = if left >= self.buf.len() {
                let waitall = self.heartbeat.is_none();
                // SAFETY: done < out.len(): the range lies inside `out`.
                let at = unsafe { out.as_mut_ptr().add(done) };
                self.read_step(&mut call, call_deadline, at, left.min(MAX_IO), waitall)
            } else {
                self.fill(&mut call, call_deadline)
                    .map(|_| self.take_buffered(&mut out[done..]))
            };
            match result {
                Ok(0) => {
                    return Err(Partial {
                        done,
                        error: Error::Eof,
                    });
                }
                Ok(n) => done += n,
                Err(stopped) => {
                    return Err(Partial {
                        done: done + stopped.done,
                        error: stopped.error,
                    });
                }
            }
        }
        Ok(())
    }

    /// Reads one line, through the first `'\n'` inclusive, into `out`.
    ///
    /// Returns the [`Line`]: [`LineEnd::Newline`], or [`LineEnd::Eof`] for the unfinished
    /// last line at EOF (length 0: EOF and nothing left).
    ///
    /// # Errors
    ///
    /// EMSGSIZE when the line is longer than `out` (it stays buffered, `out.len()` bytes
    /// of it at least); EINVAL for an empty `out`. Every other error (the deadline,
    /// EINTR, EAGAIN, a reset) consumes nothing: the bytes of the unfinished line stay
    /// buffered and a retry returns the line whole.
    pub fn read_line_with(&mut self, out: &mut [u8], opts: &Opts) -> Result<Line, Error> {
        let limit = out.len();
        if limit == 0 {
            return Err(Error::InvalidInput("empty line buffer"));
        }
        if self.hung_up {
            return Err(Error::TimedOut);
        }
        let mut call = ReadCall::new(self.fd.as_fd().as_raw_fd(), self.kind, opts);
        let call_deadline = call.waiter.deadline();
        let mut scanned = 0;
        loop {
            let have = self.end - self.start;
            let window = have.min(limit);
            let seen = &self.buf[self.start + scanned..self.start + window];
            if let Some(i) = seen.iter().position(|&b| b == b'\n') {
                let len = scanned + i + 1;
                return Ok(self.hand_out(out, len, LineEnd::Newline));
            }
            scanned = window;
            if have >= limit {
                return Err(Error::from_errno(libc::EMSGSIZE));
            }
            if self.end == self.buf.len() && self.start == 0 {
                // The buffer holds the start of one line: make room for the whole of it.
                self.grow(limit)?;
            }
            match self.fill(&mut call, call_deadline) {
                Ok(0) => return Ok(self.hand_out(out, have, LineEnd::Eof)),
                Ok(_) => {}
                Err(stopped) => return Err(stopped.error),
            }
        }
    }

    fn hand_out(&mut self, out: &mut [u8], len: usize, end: LineEnd) -> Line {
        out[..len].copy_from_slice(&self.buf[self.start..self.start + len]);
        self.consume_buffered(len);
        Line { len, end }
    }

    /// Grows the buffer so a line of `limit` bytes fits (doubling, at most `limit`).
    fn grow(&mut self, limit: usize) -> Result<(), Error> {
        let want = self.buf.len().saturating_mul(2).clamp(1, limit.min(MAX_IO));
        if want <= self.buf.len() {
            return Ok(());
        }
        self.buf
            .try_reserve_exact(want - self.buf.len())
            .map_err(|_| Error::from_errno(libc::ENOMEM))?;
        self.buf.resize(want, 0);
        Ok(())
    }

    /// Reads once into the free end of the buffer (moving the read-ahead to the front
    /// when the end is full). Returns the bytes added; 0 at EOF.
    fn fill(
        &mut self,
        call: &mut ReadCall<'_>,
        call_deadline: Option<Instant>,
    ) -> Result<usize, Partial> {
        if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let room = self.buf.len() - self.end;
        // SAFETY: end + room == buf.len(): the range is the buffer's free tail.
        let at = unsafe { self.buf.as_mut_ptr().add(self.end) };
        let result = self.read_step(call, call_deadline, at, room, false);
        match result {
            Ok(n) => self.end += n,
            // A truncated datagram stored bytes before it failed: they are data too.
            Err(ref stopped) => self.end += stopped.done,
        }
        result
    }

    /// One read of up to `len` bytes at `at`, with the heartbeat (if any) run inside the
    /// waits, and the end of the connection noted.
    fn read_step(
        &mut self,
        call: &mut ReadCall<'_>,
        call_deadline: Option<Instant>,
        at: *mut u8,
        len: usize,
        waitall: bool,
    ) -> Result<usize, Partial> {
        loop {
            if let Some(hb) = &self.heartbeat {
                call.waiter
                    .set_deadline(Some(call_deadline.map_or(hb.due, |d| d.min(hb.due))));
            }
            crate::test_hooks::pause("reader.read");
            // SAFETY: the callers pass a range inside their buffer.
            match unsafe { call.read_some(at, len, waitall) } {
                Ok(n) => {
                    if let Some(hb) = &mut self.heartbeat
                        && n > 0
                    {
                        hb.due = Instant::now() + hb.idle;
                        hb.pinged = false;
                    }
                    if n == 0 {
                        self.note_end(Class::Eof, 0);
                    }
                    return Ok(n);
                }
                Err(stopped) => {
                    let call_expired = call_deadline.is_some_and(|d| Instant::now() >= d);
                    if matches!(stopped.error, Error::TimedOut)
                        && !call_expired
                        && self.heartbeat.is_some()
                    {
                        if self.idle_event() {
                            continue;
                        }
                        return Err(Partial {
                            done: 0,
                            error: Error::TimedOut,
                        });
                    }
                    self.note_error(&stopped.error);
                    return Err(stopped);
                }
            }
        }
    }

    /// The heartbeat's deadline passed with nothing received: ping (on_idle) the first
    /// time, hang up the second time or when on_idle refuses. True to keep waiting.
    fn idle_event(&mut self) -> bool {
        let Some(hb) = &mut self.heartbeat else {
            return true;
        };
        if !hb.pinged {
            hb.pinged = true;
            let keep = (hb.on_idle)(self.fd.as_fd());
            hb.due = Instant::now() + hb.idle;
            if keep {
                return true;
            }
        }
        self.hung_up = true;
        self.note_end(Class::Timeout, libc::ETIMEDOUT);
        // The client owns this fd: shutting it down makes the session's other I/O, and a
        // sender blocked on a full buffer, fail at once instead of waiting for the peer.
        // SAFETY: a plain syscall on the fd this reader borrows.
        unsafe { libc::shutdown(self.fd.as_fd().as_raw_fd(), libc::SHUT_RDWR) };
        false
    }

    fn note_error(&mut self, error: &Error) {
        let errno = error.errno();
        // Errors of the call, not of the connection: its deadline, a signal, "not yet".
        let transient = matches!(error, Error::TimedOut)
            || matches!(errno, libc::EINTR | libc::EAGAIN | libc::EMSGSIZE);
        if !transient {
            self.note_end(error.class(), errno);
        }
    }

    fn note_end(&mut self, class: Class, errno: i32) {
        self.ended.get_or_insert((class, errno));
    }

    /// How the connection ended as this reader saw it: EOF, an error of the connection,
    /// or the heartbeat's ETIMEDOUT. None while it has seen no end.
    pub fn ended(&self) -> Option<(Class, i32)> {
        self.ended
    }

    /// True once the heartbeat hung up.
    pub(crate) fn hung_up(&self) -> bool {
        self.hung_up
    }

    /// Runs `heartbeat` inside every wait from now on (the client's idle timeout).
    pub(crate) fn set_heartbeat(&mut self, heartbeat: Heartbeat) {
        self.heartbeat = Some(heartbeat);
    }

    /// Takes the heartbeat back.
    pub(crate) fn take_heartbeat(&mut self) -> Option<Heartbeat> {
        self.heartbeat.take()
    }
}

fn to_io(error: Error) -> io::Error {
    match error {
        Error::Os(e) => e,
        Error::TimedOut => io::Error::from_raw_os_error(libc::ETIMEDOUT),
        other => io::Error::other(other),
    }
}

impl<F: AsFd> Read for Reader<F> {
    /// Serves the read-ahead, or reads once (straight into `out` when it is at least the
    /// capacity). Blocking, EINTR retried; Ok(0) at EOF.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.start == self.end && out.len() >= self.buf.len() {
            if self.hung_up {
                return Err(to_io(Error::TimedOut));
            }
            let opts = Opts::default();
            let mut call = ReadCall::new(self.fd.as_fd().as_raw_fd(), self.kind, &opts);
            return self
                .read_step(
                    &mut call,
                    None,
                    out.as_mut_ptr(),
                    out.len().min(MAX_IO),
                    false,
                )
                .map_err(|p| to_io(p.error));
        }
        let n = {
            let have = self.fill_buf()?;
            let n = have.len().min(out.len());
            out[..n].copy_from_slice(&have[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<F: AsFd> BufRead for Reader<F> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.start == self.end {
            if self.hung_up {
                return Err(to_io(Error::TimedOut));
            }
            let opts = Opts::default();
            let mut call = ReadCall::new(self.fd.as_fd().as_raw_fd(), self.kind, &opts);
            self.fill(&mut call, None).map_err(|p| to_io(p.error))?;
        }
        Ok(self.buffered())
    }

    fn consume(&mut self, amt: usize) {
        self.consume_buffered(amt.min(self.end - self.start));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::counters::{self, Call};
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    #[test]
    fn one_recv_serves_many_lines() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut r = Reader::new(&b).unwrap();
        let text: Vec<u8> = (0..100)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        a.write_all(&text).unwrap();
        counters::reset();
        let mut buf = [0u8; 32];
        for i in 0..100 {
            let line = r.read_line_with(&mut buf, &Opts::default()).unwrap();
            assert_eq!(&buf[..line.len], format!("line {i}\n").as_bytes());
        }
        assert_eq!(counters::count(Call::Recv), 1);
        assert_eq!(counters::count(Call::Poll), 0);
    }

    #[test]
    fn a_pipe_is_read_a_buffer_at_a_time() {
        let mut fds = [0; 2];
        // SAFETY: fds has room for two.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: fresh fds this test owns.
        let (rx, mut tx) = unsafe {
            use std::os::fd::FromRawFd;
            (
                std::os::fd::OwnedFd::from_raw_fd(fds[0]),
                std::fs::File::from_raw_fd(fds[1]),
            )
        };
        let text: Vec<u8> = (0..1000)
            .flat_map(|i| format!("{i:07}\n").into_bytes())
            .collect();
        tx.write_all(&text).unwrap();
        drop(tx);
        let mut r = Reader::with_capacity(4096, &rx).unwrap();
        counters::reset();
        let mut buf = [0u8; 16];
        let mut lines = 0;
        while r.read_line_with(&mut buf, &Opts::default()).unwrap().len > 0 {
            lines += 1;
        }
        assert_eq!(lines, 1000);
        // 8000 bytes in 4096-byte reads, and the read that sees EOF.
        assert_eq!(counters::count(Call::Read), 3);
    }
}
