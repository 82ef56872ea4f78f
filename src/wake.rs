//! A wake fd: how `stop` and `reset` reach a thread blocked in poll (in a connect, a
//! resolve or a backoff wait) at once, instead of after a sleep runs out.
//!
//! A stop is level-triggered: its wake fd is signalled once and never drained, so every
//! waiter, present and future, sees it and no wake-up can be lost between a waiter's flag
//! check and its poll. Only a wake that one thread owns (the dialer's reset) is drained.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// An eventfd that other threads signal; waiters poll it beside the fd they wait on.
#[derive(Debug)]
pub(crate) struct Wake {
    fd: OwnedFd,
}

impl Wake {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers; a valid fd is owned below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh eventfd that nothing else owns.
        Ok(Wake {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Wakes every current and future waiter until [`Wake::drain`]: callable from any thread.
    /// An eventfd counter cannot overflow here: EAGAIN at its maximum means "already set".
    pub(crate) fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64. A full counter (EAGAIN) is already awake.
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Clears pending signals; callers re-check their flags afterwards.
    pub(crate) fn drain(&self) {
        let mut value: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64; EAGAIN means nothing was pending.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// What ended a [`wait`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Woken {
    /// `fd` is ready for the events asked.
    Ready,
    /// The wake fd was signalled.
    Wake,
    /// The deadline passed.
    Timeout,
}

/// The instant `d` from now; None (no deadline) when that is past what `Instant` can hold,
/// so a "wait for ever" of `Duration::MAX` never panics.
pub(crate) fn deadline_after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// The poll(2) timeout for `deadline`: -1 for none, else the milliseconds left, rounded up
/// so poll never returns early and spins; None once the deadline has passed.
pub(crate) fn poll_timeout(deadline: Option<Instant>) -> Option<i32> {
    let Some(d) = deadline else {
        return Some(-1);
    };
    let left = d
        .checked_duration_since(Instant::now())
        .filter(|l| !l.is_zero())?;
    Some(
        (left.as_millis() + u128::from(left.subsec_nanos() % 1_000_000 != 0)).min(i32::MAX as u128)
            as i32,
    )
}

/// The most wake fds one [`wait`] watches (a stop and a reset).
const MAX_WAKES: usize = 2;

/// Polls `fd` for `events` (if given) and every fd of `wakes` together until one is ready
/// or `deadline` passes (None = no deadline). EINTR is retried with the remaining time.
pub(crate) fn wait(
    fd: Option<RawFd>,
    events: i16,
    wakes: &[&Wake],
    deadline: Option<Instant>,
) -> io::Result<Woken> {
    assert!(wakes.len() <= MAX_WAKES, "more wake fds than wait watches");
    let mut fds = [libc::pollfd {
        fd: -1,
        events: libc::POLLIN,
        revents: 0,
    }; MAX_WAKES + 1];
    for (slot, wake) in fds.iter_mut().zip(wakes) {
        slot.fd = wake.raw();
    }
    fds[MAX_WAKES] = libc::pollfd {
        fd: fd.unwrap_or(-1),
        events,
        revents: 0,
    };
    loop {
        let Some(timeout_ms) = poll_timeout(deadline) else {
            return Ok(Woken::Timeout);
        };
        // SAFETY: valid pollfds; poll ignores an entry with a negative fd.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        if fds[..MAX_WAKES].iter().any(|p| p.revents != 0) {
            return Ok(Woken::Wake);
        }
        if fds[MAX_WAKES].revents != 0 {
            return Ok(Woken::Ready);
        }
    }
}
