//! A per-thread SIGPIPE guard for writes to fds that are not sockets.
//!
//! Sockets need no guard: `send(MSG_NOSIGNAL)` suppresses the signal. Pipes, FIFOs and ttys
//! have no such flag, and a C host keeps SIGPIPE at SIG_DFL (Rust's startup `SIG_IGN` never
//! runs in a cdylib), so a plain `write` to a pipe without a reader kills the host. The guard
//! blocks SIGPIPE in the calling thread only, lets the write fail with EPIPE, consumes the
//! signal that write raised (it is thread-directed, so it waits in this thread's pending set),
//! and restores the mask. The process's disposition is never touched (curl swaps it
//! process-wide, which races with other threads), and a SIGPIPE that was already pending
//! stays pending.

use std::mem::MaybeUninit;
use std::ptr;

use crate::sys::counters::{self, Call};

/// A live guard; dropping it restores the thread's signal mask.
pub(crate) struct SigpipeGuard {
    /// We blocked SIGPIPE and must unblock it on drop.
    unblock_on_drop: bool,
    /// A SIGPIPE was pending before we wrote: it is not ours to consume.
    was_pending: bool,
    /// SIGPIPE is ignored process-wide: writes fail with EPIPE and nothing is raised.
    ignored: bool,
}

fn sigpipe_set() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigaddset with a valid signal cannot fail.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGPIPE);
        set.assume_init()
    }
}

fn sigpipe_is_ignored() -> bool {
    counters::bump(Call::SigMask);
    let mut old = MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: a NULL new action only reads the current one into `old`.
    let r = unsafe { libc::sigaction(libc::SIGPIPE, ptr::null(), old.as_mut_ptr()) };
    // SAFETY: sigaction succeeded, so `old` is initialised.
    r == 0 && unsafe { old.assume_init() }.sa_sigaction == libc::SIG_IGN
}

impl SigpipeGuard {
    /// Blocks SIGPIPE in this thread for the guard's life, unless it is ignored process-wide
    /// (then a write just fails with EPIPE and the guard costs one `sigaction` read).
    pub(crate) fn arm() -> Self {
        if sigpipe_is_ignored() {
            return SigpipeGuard {
                unblock_on_drop: false,
                was_pending: false,
                ignored: true,
            };
        }
        let set = sigpipe_set();
        let mut old = MaybeUninit::<libc::sigset_t>::uninit();
        counters::bump(Call::SigMask);
        // SAFETY: valid sets; pthread_sigmask only fails for a bad `how`.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, old.as_mut_ptr()) };
        // SAFETY: pthread_sigmask filled `old`.
        let already_blocked = unsafe { libc::sigismember(old.as_ptr(), libc::SIGPIPE) } == 1;
        // While the thread had SIGPIPE unblocked nothing could wait pending for it, so only
        // a caller that blocked it already pays the sigpending call.
        let was_pending = already_blocked && sigpipe_pending();
        SigpipeGuard {
            unblock_on_drop: !already_blocked,
            was_pending,
            ignored: false,
        }
    }

    /// Call after a write failed with EPIPE: removes the SIGPIPE that write raised, so it is
    /// neither delivered when the mask is restored nor left pending for the caller.
    pub(crate) fn consume_raised(&mut self) {
        if self.ignored || self.was_pending {
            return;
        }
        let set = sigpipe_set();
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        loop {
            counters::bump(Call::SigMask);
            // SAFETY: valid set and timeout; a NULL siginfo is allowed.
            let r = unsafe { libc::sigtimedwait(&set, ptr::null_mut(), &zero) };
            if r >= 0 || crate::sys::errno() != libc::EINTR {
                break;
            }
        }
    }
}

impl Drop for SigpipeGuard {
    fn drop(&mut self) {
        if self.unblock_on_drop {
            let set = sigpipe_set();
            counters::bump(Call::SigMask);
            // SAFETY: valid set; unblocking only SIGPIPE keeps any other mask change intact.
            unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, ptr::null_mut()) };
        }
    }
}

/// True if SIGPIPE is pending for this thread or the process.
pub(crate) fn sigpipe_pending() -> bool {
    counters::bump(Call::SigMask);
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigpending fills the set.
    unsafe {
        libc::sigpending(set.as_mut_ptr()) == 0
            && libc::sigismember(set.as_ptr(), libc::SIGPIPE) == 1
    }
}
