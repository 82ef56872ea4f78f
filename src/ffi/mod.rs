//! The C ABI: the only module with `extern "C"`.
//!
//! Every export is a thin wrapper: check pointers, convert arguments, call the safe core,
//! convert the result to a return value and errno. Rules that hold for every function
//! (documented again in the header and the README):
//!
//! - **Panics**: each body runs inside [`boundary`], which catches a Rust panic and returns
//!   the documented failure value (-1 with errno EIO, NULL, or nothing) — a panic never
//!   unwinds into C and never aborts the host.
//! - **NULL**: a NULL where an object is required gives -1/EINVAL (or NULL/EINVAL); a NULL
//!   buffer is fine when its length is 0; a NULL out-parameter is skipped.
//! - **fds**: an fd passed in is borrowed; resock never closes it.
//! - **errno**: set only on failure (and to 0 at a short EOF), after every cleanup call, so
//!   it is exactly the failing syscall's. [`boundary`] restores the caller's errno when the
//!   body reported nothing through [`report_errno`]: retried EINTR, a refused attempt
//!   before a success, or a futex inside a lock never leak out of a call that succeeded.

// C names (resock_dialer, resock_io_opts) are the public contract.
#![allow(non_camel_case_types)]

mod client;
mod dial;
mod handle;
mod io;
mod misc;
mod net;
mod reader;
mod server;

use std::cell::Cell;
use std::ffi::{CStr, c_char, c_int};
use std::mem::size_of;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::Error;
use crate::sys::{errno, set_errno};

thread_local! {
    /// Whether the running export reported an errno (see [`report_errno`]).
    static REPORTED: Cell<bool> = const { Cell::new(false) };
}

/// Sets errno as the running export's result (a failure, or 0 at a short EOF); without
/// it, [`boundary`] gives the caller back the errno it had.
pub(crate) fn report_errno(value: c_int) {
    set_errno(value);
    REPORTED.with(|r| r.set(true));
}

/// The value an export returns when its body panicked.
pub(crate) trait PanicValue {
    fn panic_value() -> Self;
}

impl PanicValue for libc::ssize_t {
    fn panic_value() -> Self {
        -1
    }
}

impl PanicValue for libc::c_int {
    fn panic_value() -> Self {
        -1
    }
}

/// A size: 0 (nothing buffered, nothing taken), with errno EIO.
impl PanicValue for libc::size_t {
    fn panic_value() -> Self {
        0
    }
}

impl PanicValue for () {
    fn panic_value() -> Self {}
}

impl<T> PanicValue for *const T {
    fn panic_value() -> Self {
        std::ptr::null()
    }
}

impl<T> PanicValue for *mut T {
    fn panic_value() -> Self {
        std::ptr::null_mut()
    }
}

/// Runs an export's body; a panic becomes `R::panic_value()` with errno EIO. errno is
/// the one the body reported, or else the caller's own, untouched.
pub(crate) fn boundary<R: PanicValue>(body: impl FnOnce() -> R) -> R {
    let entry_errno = errno();
    // Saved and restored, so a C callback that calls another export cannot confuse them.
    let outer = REPORTED.with(|r| r.replace(false));
    let value = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(_) => {
            report_errno(libc::EIO);
            R::panic_value()
        }
    };
    if !REPORTED.with(|r| r.replace(outer)) {
        set_errno(entry_errno);
    }
    value
}

/// An int-returning call's result for C: the value, or -1 with errno.
pub(crate) fn int_result(result: Result<c_int, Error>) -> c_int {
    match result {
        Ok(value) => value,
        Err(e) => {
            report_errno(e.errno());
            -1
        }
    }
}

/// A pointer-returning call's result for C: the pointer, or NULL with errno.
pub(crate) fn ptr_result<T>(result: Result<*mut T, Error>) -> *mut T {
    match result {
        Ok(p) => p,
        Err(e) => {
            report_errno(e.errno());
            std::ptr::null_mut()
        }
    }
}

/// A C string argument: None for NULL, EINVAL if it is not UTF-8.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string that outlives the returned borrow.
pub(crate) unsafe fn str_arg<'a>(p: *const c_char) -> Result<Option<&'a str>, Error> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map(Some)
        .map_err(|_| Error::InvalidInput("string is not UTF-8"))
}

/// Reads a struct that starts with `size_t struct_size`, the way Linux's
/// copy_struct_from_user does: smaller than ours is EINVAL (fields would be missing),
/// bigger is accepted only if the bytes we do not know are zero (E2BIG otherwise).
///
/// # Safety
/// `p` is non-NULL and points to at least `struct_size` readable bytes, the first of which
/// form a `T` whose first field is a `usize` struct_size.
pub(crate) unsafe fn read_sized<T: Copy>(p: *const T, what: &'static str) -> Result<T, Error> {
    // SAFETY: every such struct starts with its size.
    let size = unsafe { p.cast::<usize>().read() };
    let ours = size_of::<T>();
    if size < ours {
        return Err(Error::InvalidInput(what));
    }
    if size > ours {
        // SAFETY: the caller says `size` bytes are readable.
        let tail = unsafe { std::slice::from_raw_parts(p.cast::<u8>().add(ours), size - ours) };
        if tail.iter().any(|&b| b != 0) {
            return Err(Error::from_errno(libc::E2BIG));
        }
    }
    // SAFETY: at least size_of::<T>() bytes are readable.
    Ok(unsafe { p.read() })
}

/// Milliseconds from C where -1 means "none": None, Some(ms), or EINVAL below -1.
pub(crate) fn optional_ms(
    ms: c_int,
    what: &'static str,
) -> Result<Option<std::time::Duration>, Error> {
    match ms {
        -1 => Ok(None),
        ms if ms >= 0 => Ok(Some(std::time::Duration::from_millis(ms as u64))),
        _ => Err(Error::InvalidInput(what)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_minus_one_with_eio() {
        set_errno(0);
        let r: libc::ssize_t = boundary(|| panic!("bug inside an export"));
        assert_eq!(r, -1);
        assert_eq!(crate::sys::errno(), libc::EIO);
        let p: *const u8 = boundary(|| panic!("bug"));
        assert!(p.is_null());
    }

    #[test]
    fn no_panic_passes_the_value_through() {
        set_errno(1234);
        assert_eq!(boundary(|| 7 as libc::c_int), 7);
        assert_eq!(crate::sys::errno(), 1234);
    }

    #[test]
    fn errno_is_the_callers_unless_the_body_reports_one() {
        set_errno(1234);
        // A retried EINTR inside a call that then succeeds.
        assert_eq!(
            boundary(|| {
                set_errno(libc::EINTR);
                0 as libc::c_int
            }),
            0
        );
        assert_eq!(crate::sys::errno(), 1234);
        let r: libc::c_int = boundary(|| {
            report_errno(libc::EPIPE);
            -1
        });
        assert_eq!((r, crate::sys::errno()), (-1, libc::EPIPE));
        // An export called from inside another one's callback keeps them apart.
        set_errno(77);
        let outer: libc::c_int = boundary(|| {
            let inner: libc::c_int = boundary(|| 1);
            assert_eq!(inner, 1);
            report_errno(libc::ECONNRESET);
            -1
        });
        assert_eq!((outer, crate::sys::errno()), (-1, libc::ECONNRESET));
    }
}
