//! C exports: the buffered reader (`resock_reader_*`).
#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_int, c_void};
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, TryLockError};

use libc::{size_t, ssize_t};

use super::handle::{borrow, new_handle, release};
use super::io::{check_buffer, fail, finish, resock_io_opts, store, with_opts};
use super::{boundary, ptr_result, report_errno};
use crate::error::Error;
use crate::io::{LineEnd, Opts};
use crate::reader::Reader;

/// The largest bufsize resock_reader_new accepts (64 MiB).
pub const RESOCK_READER_MAX_BUFSIZE: usize = 64 << 20;

/// The reader a C handle serves.
enum Slot {
    /// Made by resock_reader_new: the handle owns it.
    Own(Reader<BorrowedFd<'static>>),
    /// The client's reader, lent to a session for the duration of the callback.
    Lent(*mut Reader<BorrowedFd<'static>>),
    /// A lent reader after its session returned.
    Returned,
}

/// A buffered reader on a borrowed fd: opaque; create with resock_reader_new, free with
/// resock_reader_free (or receive one in a client session, valid until it returns).
///
/// It reads up to `bufsize` bytes at a time and serves lines and exact counts from what it
/// read ahead, so a protocol parser costs one syscall per buffer, not per line. Do not
/// read the fd directly while bytes are buffered: take them back first with
/// resock_reader_take. Its calls follow the rules of resock_readn: a deadline in
/// `opts->timeout_ms` checked before every syscall after the call's first, EINTR retried
/// (returned with RESOCK_IO_RETURN_ON_EINTR), EAGAIN on an O_NONBLOCK fd polled (returned
/// with RESOCK_IO_RETURN_ON_EAGAIN), EAGAIN returned when a blocking socket's SO_RCVTIMEO
/// expired.
///
/// Threads: a reader has one consumer. resock_reader_readn, resock_reader_readline and
/// resock_reader_take called while another thread is inside one of them on the same
/// reader fail at once with EBUSY (nothing is read or consumed); resock_reader_buffered
/// may be called from any thread. resock_reader_free while another thread is still inside
/// a call is safe (the memory goes when that call returns) but does not interrupt it: shut
/// the fd down for that. No call may start on a reader after its resock_reader_free.
pub struct resock_reader {
    slot: Mutex<Slot>,
    /// The read-ahead's size after the last call, for resock_reader_buffered.
    buffered: AtomicUsize,
    /// Lent by a client: resock_reader_free leaves it alone.
    lent: bool,
}

// SAFETY: a Lent pointer is only dereferenced under the mutex, while the client thread that
// lent it waits inside the session callback (see `lend`).
unsafe impl Send for resock_reader {}
// SAFETY: as above; every access to the slot goes through the mutex.
unsafe impl Sync for resock_reader {}

impl resock_reader {
    /// Runs `f` on the reader, or EBUSY when another call is inside it, EBADF once a lent
    /// reader's session returned.
    fn with<T>(&self, f: impl FnOnce(&mut Reader<BorrowedFd<'static>>) -> T) -> Result<T, Error> {
        let mut slot = match self.slot.try_lock() {
            Ok(slot) => slot,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return Err(Error::from_errno(libc::EBUSY)),
        };
        let reader = match &mut *slot {
            Slot::Own(reader) => reader,
            // SAFETY: the client thread keeps the reader alive and unused while it is lent.
            Slot::Lent(p) => unsafe { &mut **p },
            Slot::Returned => return Err(Error::from_errno(libc::EBADF)),
        };
        let result = f(reader);
        self.buffered
            .store(reader.buffered().len(), Ordering::Relaxed);
        Ok(result)
    }
}

/// Lends the client's reader to a C session: a handle valid until [`retire`].
pub(crate) fn lend(reader: &mut Reader<BorrowedFd<'_>>) -> *mut resock_reader {
    let buffered = reader.buffered().len();
    // Only the lifetime changes: the pointer is used while the session runs, inside the
    // borrow, and `retire` cuts it off before the borrow ends.
    let p = (reader as *mut Reader<BorrowedFd<'_>>).cast::<Reader<BorrowedFd<'static>>>();
    new_handle(resock_reader {
        slot: Mutex::new(Slot::Lent(p)),
        buffered: AtomicUsize::new(buffered),
        lent: true,
    })
}

/// Ends a loan: calls still inside finish first, later ones fail with EBADF, and the
/// memory goes with the last reference.
///
/// # Safety
/// `handle` came from [`lend`] and is retired once.
pub(crate) unsafe fn retire(handle: *mut resock_reader) {
    // SAFETY: the loan's own reference, given up once.
    if let Some(r) = unsafe { release(handle) } {
        *r.slot.lock().unwrap_or_else(|e| e.into_inner()) = Slot::Returned;
    }
}

/// Creates a buffered reader on `fd`, which it borrows (never closes); `bufsize` is how
/// much it reads at a time (0: 16384). Returns NULL with errno: EBADF (a negative or
/// closed fd), EPROTOTYPE (a datagram, seqpacket or raw socket: read those with recv(2)),
/// EINVAL (bufsize above RESOCK_READER_MAX_BUFSIZE), ENOMEM.
#[unsafe(no_mangle)]
pub extern "C" fn resock_reader_new(fd: c_int, bufsize: size_t) -> *mut resock_reader {
    boundary(|| {
        ptr_result((|| {
            if fd < 0 {
                return Err(Error::from_errno(libc::EBADF));
            }
            if bufsize > RESOCK_READER_MAX_BUFSIZE {
                return Err(Error::InvalidInput("bufsize is above 64 MiB"));
            }
            // SAFETY: non-negative; the caller keeps it open while the reader exists.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            Ok(new_handle(resock_reader {
                slot: Mutex::new(Slot::Own(Reader::with_capacity(bufsize, fd)?)),
                buffered: AtomicUsize::new(0),
                lent: false,
            }))
        })())
    })
}

/// Reads exactly `n` bytes: the read-ahead first, then the fd (a request of at least
/// `bufsize` bytes goes straight into `buf`). Returns as resock_readn: `n`; at EOF the
/// count read, 0..n-1, with errno 0; -1 with errno on error (ETIMEDOUT at the deadline,
/// EINTR/EAGAIN when `opts->flags` ask for them, ECONNRESET, EBUSY when another thread is
/// inside this reader, EINVAL for a NULL reader or buffer or a bad `opts`). `*done` (if
/// not NULL) receives the bytes stored in `buf`, whatever the outcome: they are consumed,
/// so resume with `buf + *done`.
///
/// Memory: `buf` points to `n` writable bytes; `opts` is NULL or a valid resock_io_opts;
/// `done` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_reader_readn(
    r: *mut resock_reader,
    buf: *mut c_void,
    n: size_t,
    opts: *const resock_io_opts,
    done: *mut size_t,
) -> ssize_t {
    boundary(|| {
        // SAFETY: forwarded contract.
        unsafe {
            with_opts(opts, done, |opts| {
                let result = borrow(r, "NULL reader")
                    .and_then(|r| check_buffer(buf, n).map(|()| r))
                    .and_then(|r| {
                        r.with(|reader| {
                            let out = if n == 0 {
                                &mut [][..]
                            } else {
                                // SAFETY: checked non-NULL; the caller vouches for n bytes.
                                std::slice::from_raw_parts_mut(buf.cast::<u8>(), n)
                            };
                            reader.read_exact_with(out, opts)
                        })
                    });
                match result {
                    Ok(moved) => finish(moved, n, done),
                    Err(error) => fail(error, 0, done),
                }
            })
        }
    })
}

/// Reads one line — bytes through the first '\n' inclusive — stores it and a terminating
/// NUL in `buf`, and returns its length (the UNP readline contract, buffered).
///
/// A line longer than `maxlen - 1` bytes: -1/EMSGSIZE, and the line stays buffered (never
/// split): call again with a bigger buffer, or drop its buffered bytes with
/// resock_reader_take(r, NULL, n). At EOF the unfinished last line is returned (errno 0);
/// 0 means EOF with nothing left. Every error — ETIMEDOUT at `opts->timeout_ms`, EINTR,
/// EAGAIN, ECONNRESET — consumes nothing: the part of the line read so far stays buffered
/// and the next call returns the line whole. The buffer grows to hold a line longer than
/// `bufsize`, never beyond `maxlen`. `maxlen` below 2 or above SSIZE_MAX, a NULL reader or
/// buffer, a bad `opts`: -1/EINVAL; EBUSY as for resock_reader_readn. On error `buf`
/// holds an empty string. `*done` (if not NULL) receives the line's length (0 on error).
///
/// Memory: `buf` points to `maxlen` writable bytes; `opts` and `done` as for
/// resock_reader_readn.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_reader_readline(
    r: *mut resock_reader,
    buf: *mut c_void,
    maxlen: size_t,
    opts: *const resock_io_opts,
    done: *mut size_t,
) -> ssize_t {
    boundary(|| {
        // An empty string on every error, as promised — also one found before the reader
        // is reached (bad opts, NULL reader).
        if !buf.is_null() && maxlen > 0 {
            // SAFETY: non-NULL; the caller vouches for maxlen >= 1 bytes.
            unsafe { buf.cast::<u8>().write(0) };
        }
        // SAFETY: forwarded contract.
        unsafe {
            with_opts(opts, done, |opts| {
                let result = borrow(r, "NULL reader").and_then(|r| {
                    if buf.is_null() {
                        return Err(Error::InvalidInput("NULL buffer"));
                    }
                    check_buffer(buf, maxlen)?;
                    if maxlen < 2 {
                        return Err(Error::InvalidInput("maxlen below 2"));
                    }
                    // SAFETY: checked non-NULL; the caller vouches for maxlen bytes.
                    let out = std::slice::from_raw_parts_mut(buf.cast::<u8>(), maxlen);
                    let line = r.with(|reader| read_line(reader, out, opts))??;
                    Ok(line)
                });
                match result {
                    Ok(line) => {
                        store(done, line.len);
                        if line.end == LineEnd::Eof {
                            report_errno(0);
                        }
                        line.len as ssize_t
                    }
                    Err(error) => fail(error, 0, done),
                }
            })
        }
    })
}

/// A line into `out` (its last byte is kept for the NUL), NUL-terminated.
fn read_line(
    reader: &mut Reader<BorrowedFd<'static>>,
    out: &mut [u8],
    opts: &Opts,
) -> Result<crate::io::Line, Error> {
    let room = out.len() - 1;
    let line = reader.read_line_with(&mut out[..room], opts)?;
    out[line.len] = 0;
    Ok(line)
}

/// The bytes read ahead and not yet returned (0 for NULL). Callable from any thread: a
/// snapshot taken after the last call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_reader_buffered(r: *const resock_reader) -> size_t {
    boundary(|| {
        // SAFETY: NULL or live by contract.
        unsafe { borrow(r, "NULL reader") }.map_or(0, |r| r.buffered.load(Ordering::Relaxed))
    })
}

/// Hands read-ahead back, with no syscall: moves up to `n` buffered bytes into `buf` and
/// returns how many (0 when nothing is buffered). With `buf` NULL the bytes are dropped
/// instead (a line that was too long). Take all of them (until it returns 0) before going
/// on with raw I/O on the fd. A NULL reader or EBUSY (another thread inside): 0 with that
/// errno (EINVAL, EBUSY); errno is untouched otherwise.
///
/// Memory: `buf` is NULL or points to `n` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_reader_take(
    r: *mut resock_reader,
    buf: *mut c_void,
    n: size_t,
) -> size_t {
    boundary(|| {
        // SAFETY: NULL or live by contract.
        let result = unsafe { borrow(r, "NULL reader") }.and_then(|r| {
            r.with(|reader| {
                if buf.is_null() {
                    reader.discard_buffered(n)
                } else {
                    let n = n.min(reader.buffered().len());
                    // SAFETY: non-NULL; at most the caller's n bytes are written.
                    let out = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), n) };
                    reader.take_buffered(out)
                }
            })
        });
        result.unwrap_or_else(|error| {
            report_errno(error.errno());
            0
        })
    })
}

/// Frees the reader; the fd stays open (it was borrowed) and bytes still buffered are
/// lost. A reader lent to a client session is the client's: freeing it does nothing.
/// NULL is ignored.
///
/// Memory: `r` is NULL or a live reader; no call may start on it after this one.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resock_reader_free(r: *mut resock_reader) {
    boundary(|| {
        // SAFETY: NULL or live by contract.
        if unsafe { borrow(r, "NULL reader") }.is_ok_and(|h| !h.lent) {
            // SAFETY: the caller's reference, released once.
            drop(unsafe { release(r) });
        }
    })
}
