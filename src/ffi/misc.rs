//! C exports: errno explanations and version information.

use std::ffi::{CStr, c_char, c_int};

use super::boundary;
use crate::error;

/// The ABI generation of this library. It changes whenever an existing function, struct or
/// constant changes incompatibly; compare it with `resock_abi_version()` at run time to
/// catch a header and a library from different generations.
pub const RESOCK_ABI_VERSION: c_int = 1;

static VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("the package version contains a NUL byte"),
    };

/// The library's version as a static string, such as "0.1.0" (the same numbers as the
/// RESOCK_VERSION_* macros of the header it was built with). Never NULL; do not free.
#[unsafe(no_mangle)]
pub extern "C" fn resock_version() -> *const c_char {
    boundary(|| VERSION.as_ptr())
}

/// The library's RESOCK_ABI_VERSION. A program built against another generation's header
/// should refuse to run: `if (resock_abi_version() != RESOCK_ABI_VERSION) abort();`.
#[unsafe(no_mangle)]
pub extern "C" fn resock_abi_version() -> c_int {
    boundary(|| RESOCK_ABI_VERSION)
}

/// A static, NUL-terminated explanation of `errnum` on a socket: what the kernel did and
/// what to do (for ECONNRESET: the RST, when peers send it, and why `ab -c 1000` sees it).
/// Every int has a text, unknown ones a generic one. Never NULL; do not free.
#[unsafe(no_mangle)]
pub extern "C" fn resock_explain(errnum: c_int) -> *const c_char {
    boundary(|| error::explain(errnum).as_ptr())
}

/// The RESOCK_CLASS_* value of `errnum` (as an int, so any value is safe to pass):
/// RESET for ECONNRESET, PIPE for EPIPE, RESOURCE for EMFILE, OTHER for unknown values.
#[unsafe(no_mangle)]
pub extern "C" fn resock_classify(errnum: c_int) -> c_int {
    boundary(|| error::classify(errnum) as c_int)
}

/// 1 if `errnum` means the connection is dead and reconnecting is the cure (ECONNRESET,
/// EPIPE, ETIMEDOUT, ECONNREFUSED, unreachable networks, ENOTCONN), else 0. A short count
/// from readn_sync with errno 0 (EOF) also ends the connection, but 0 is not an error here.
#[unsafe(no_mangle)]
pub extern "C" fn resock_should_reconnect(errnum: c_int) -> c_int {
    boundary(|| c_int::from(error::should_reconnect(errnum)))
}
