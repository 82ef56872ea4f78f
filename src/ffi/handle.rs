//! Opaque handles for C: how a pointer keeps its object alive while calls are inside it.
//!
//! Every `resock_*` handle is an `Arc` turned into a raw pointer (rustls-ffi's
//! "Arc ownership"). A call [`borrow`]s it: the NULL check, then a strong reference of its
//! own for as long as the call runs, so a `_free` from another thread while this call blocks
//! (a dial in its backoff, a server's `_run`, a send) only drops the caller's reference and
//! the memory, wake fds and listener stay valid until the last call leaves. A `_free` first
//! stops the object, then [`release`]s the caller's reference. The one rule left to C: no
//! new call may start on a handle once its `_free` was called.

use std::sync::Arc;

use crate::error::Error;

/// A new handle that owns `value`.
pub(crate) fn new_handle<T>(value: T) -> *mut T {
    Arc::into_raw(Arc::new(value)).cast_mut()
}

/// The handle behind `p` for the duration of one call; NULL is EINVAL (`what` names it).
///
/// # Safety
/// `p` is NULL or came from [`new_handle`] and its `_free` has not been called yet.
pub(crate) unsafe fn borrow<T>(p: *const T, what: &'static str) -> Result<Arc<T>, Error> {
    if p.is_null() {
        return Err(Error::InvalidInput(what));
    }
    // SAFETY: a live handle holds at least the caller's reference, so the count is > 0 and
    // the pointer is one Arc::into_raw returned.
    unsafe {
        Arc::increment_strong_count(p);
        Ok(Arc::from_raw(p))
    }
}

/// Takes back the caller's reference to the handle behind `p` (None for NULL): dropping the
/// result frees the object once no call is inside it any more.
///
/// # Safety
/// `p` is NULL or came from [`new_handle`], and this is its only release.
pub(crate) unsafe fn release<T>(p: *const T) -> Option<Arc<T>> {
    // SAFETY: the caller's own reference, given up exactly once.
    (!p.is_null()).then(|| unsafe { Arc::from_raw(p) })
}
