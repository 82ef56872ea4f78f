//! A wake fd: how `stop` and `reset` reach a thread blocked in poll (in a connect or a
//! backoff wait) at once, instead of after a sleep runs out.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

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

/// Polls `fd` for `events` (if given) and `wake` (if given) together until one is ready or `deadline`
/// passes (None = no deadline). EINTR is retried with the remaining time.
pub(crate) fn wait(
    fd: Option<RawFd>,
    events: i16,
    wake: Option<&Wake>,
    deadline: Option<std::time::Instant>,
) -> io::Result<Woken> {
    loop {
        let timeout_ms = match deadline {
            None => -1,
            Some(d) => {
                let now = std::time::Instant::now();
                if now >= d {
                    return Ok(Woken::Timeout);
                }
                let left = d - now;
                // Round up so poll never returns early and spins.
                (left.as_millis() + u128::from(left.subsec_nanos() % 1_000_000 != 0))
                    .min(i32::MAX as u128) as i32
            }
        };
        let mut fds = [
            libc::pollfd {
                fd: wake.map_or(-1, Wake::raw),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: fd.unwrap_or(-1),
                events,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds; poll ignores an entry with a negative fd.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout_ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        if fds[0].revents != 0 {
            return Ok(Woken::Wake);
        }
        if fds[1].revents != 0 {
            return Ok(Woken::Ready);
        }
    }
}
