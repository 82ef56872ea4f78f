//! A per-thread SIGPIPE guard for writes to fds that are not sockets.
//!
//! Sockets need no guard: `send(MSG_NOSIGNAL)` suppresses the signal. Pipes, FIFOs and ttys
//! have no such flag, and a C host keeps SIGPIPE at SIG_DFL (Rust's startup `SIG_IGN` never
//! runs in a cdylib), so a plain `write` to a pipe without a reader kills the host.
//!
//! The guard always blocks SIGPIPE in the calling thread, lets the write fail with EPIPE,
//! consumes the signal that write raised, and restores the mask. It never reads the
//! disposition: another thread may swap SIG_IGN and SIG_DFL at any moment (libcurl does,
//! around each transfer), and a guard that skipped blocking because it saw SIG_IGN would
//! write unprotected. A SIGPIPE raised by `write` is thread-directed, so it waits in this
//! thread's own pending set; sigtimedwait takes that set before the process's shared one,
//! so it removes ours and leaves a process-directed SIGPIPE pending. Afterwards exactly the
//! SIGPIPEs that were pending before the call are pending.

use std::mem::MaybeUninit;
use std::ptr;

use crate::sys::counters::{self, Call};

/// A live guard; dropping it restores the thread's signal mask.
pub(crate) struct SigpipeGuard {
    /// We blocked SIGPIPE and must unblock it on drop.
    unblock_on_drop: bool,
    /// A thread-directed SIGPIPE was already pending: ours merges into it (standard
    /// signals do not queue), so there is nothing of ours to consume.
    ours_merges: bool,
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

impl SigpipeGuard {
    /// Blocks SIGPIPE in this thread for the guard's life: one pthread_sigmask, plus one
    /// sigpending when the caller had SIGPIPE blocked already.
    pub(crate) fn arm() -> Self {
        let set = sigpipe_set();
        let mut old = MaybeUninit::<libc::sigset_t>::uninit();
        counters::bump(Call::SigMask);
        // SAFETY: valid sets; pthread_sigmask only fails for a bad `how`.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, old.as_mut_ptr()) };
        // SAFETY: pthread_sigmask filled `old`.
        let already_blocked = unsafe { libc::sigismember(old.as_ptr(), libc::SIGPIPE) } == 1;
        // While the thread had SIGPIPE unblocked no SIGPIPE could wait in its own pending
        // set (it would have been delivered), so only a caller that blocked it pays.
        SigpipeGuard {
            unblock_on_drop: !already_blocked,
            ours_merges: already_blocked && thread_has_sigpipe_pending(),
        }
    }

    /// Call after a write failed with EPIPE: removes the SIGPIPE that write raised, so it is
    /// neither delivered when the mask is restored nor left pending for the caller.
    pub(crate) fn consume_raised(&mut self) {
        if self.ours_merges {
            return;
        }
        let set = sigpipe_set();
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // The thread's own set is searched first (kernel dequeue_signal), so this takes
        // the SIGPIPE our write raised, never a process-directed one behind it.
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

/// True if SIGPIPE is pending for this thread itself (not only for the process).
///
/// sigpending(2) merges the thread's set with the process's, so when it says "pending" the
/// thread's own set is read from /proc/thread-self/status (SigPnd). Without /proc the
/// answer is "pending": leaving our own SIGPIPE pending is the lesser harm, consuming the
/// caller's would lose a signal.
fn thread_has_sigpipe_pending() -> bool {
    counters::bump(Call::SigMask);
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigpending fills the set.
    let merged = unsafe {
        libc::sigpending(set.as_mut_ptr()) == 0
            && libc::sigismember(set.as_ptr(), libc::SIGPIPE) == 1
    };
    if !merged {
        return false;
    }
    counters::bump(Call::SigMask);
    let Ok(status) = std::fs::read_to_string("/proc/thread-self/status") else {
        return true;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigPnd:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_none_or(|bits| bits & (1 << (libc::SIGPIPE - 1)) != 0)
}
