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
//!   it is exactly the failing syscall's.

mod io;
mod misc;

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::sys::set_errno;

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

impl PanicValue for () {
    fn panic_value() -> Self {}
}

impl<T> PanicValue for *const T {
    fn panic_value() -> Self {
        std::ptr::null()
    }
}

/// Runs an export's body; a panic becomes `R::panic_value()` with errno EIO.
pub(crate) fn boundary<R: PanicValue>(body: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(_) => {
            set_errno(libc::EIO);
            R::panic_value()
        }
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
}
