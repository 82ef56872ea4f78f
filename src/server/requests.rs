//! The per-request mode: idle connections parked in epoll, one loop thread for all of them.
//!
//! The loop accepts, parks each connection (edge-triggered, with a generation in its token
//! so an event of a closed connection never reaches a new one on the same fd number), and
//! when one is readable unparks it and hands it to the pool. The pool thread runs the
//! handler with the connection borrowed, then parks it again (re-registering, which
//! reports data that arrived meanwhile) or closes it. Parking, unparking and every
//! registration happen under the server's state lock, so a connection is either parked or
//! with a handler, and the loop's final sweep closes every parked one exactly once.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use super::{
    AcceptError, Admission, AtCap, Job, Parked, PoolState, RequestHandler, Shared, accept, admit,
    dispatch, lock, next_backoff, on_accept_error,
};
use crate::error::Error;
use crate::log::{Level, log};

const LISTENER: Token = Token(usize::MAX);
const STOP: Token = Token(usize::MAX - 1);
const RESUME: Token = Token(usize::MAX - 2);

/// What pool threads need to park a connection again; present while the loop runs.
pub(super) struct Parking {
    registry: Registry,
    /// Wakes the loop to accept again after the wait policy paused it at the cap.
    resume: Waker,
}

fn token(fd: RawFd, generation: u32) -> Token {
    Token(((generation as usize) << 32) | fd as u32 as usize)
}

fn from_token(token: Token) -> (RawFd, u32) {
    (token.0 as u32 as RawFd, (token.0 >> 32) as u32)
}

/// The loop: runs until the server stops, then closes every parked connection.
pub(super) fn park_until_stopped(shared: &Arc<Shared>) -> Result<(), Error> {
    let Some(listen_fd) = lock(&shared.listener).as_ref().map(AsRawFd::as_raw_fd) else {
        return Ok(());
    };
    let mut poll = Poll::new()?;
    let registry = poll.registry();
    registry.register(&mut SourceFd(&listen_fd), LISTENER, Interest::READABLE)?;
    let stop_fd = shared.stop_wake.raw();
    registry.register(&mut SourceFd(&stop_fd), STOP, Interest::READABLE)?;
    let parking = Parking {
        registry: registry.try_clone()?,
        resume: Waker::new(registry, RESUME)?,
    };
    lock(&shared.pool).parking = Some(parking);
    let result = serve_until_stopped(shared, &mut poll, listen_fd);
    let swept: Vec<Parked> = {
        let mut pool = lock(&shared.pool);
        pool.parking = None;
        pool.parked_order.clear();
        let swept: Vec<Parked> = pool.parked.drain().map(|(_, conn)| conn).collect();
        for conn in &swept {
            pool.release_peer(&conn.peer);
        }
        swept
    };
    drop(swept); // closed outside the lock
    result
}

/// Accept retries after an error that backs off (EMFILE and the like).
struct Retry {
    at: Option<Instant>,
    backoff: Duration,
    in_episode: bool,
}

fn serve_until_stopped(
    shared: &Arc<Shared>,
    poll: &mut Poll,
    listen_fd: RawFd,
) -> Result<(), Error> {
    let mut events = Events::with_capacity(1024);
    let mut retry = Retry {
        at: None,
        backoff: Duration::ZERO,
        in_episode: false,
    };
    let mut try_accept = false;
    loop {
        let timeout = next_timeout(shared, &retry);
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e.into());
            }
        }
        for event in &events {
            match event.token() {
                STOP => {}
                LISTENER | RESUME => try_accept = true,
                token => on_readable(shared, token, event.is_read_closed()),
            }
        }
        if lock(&shared.pool).stopped {
            return Ok(());
        }
        if retry.at.is_some_and(|at| at <= Instant::now()) {
            retry.at = None;
            try_accept = true;
        }
        if try_accept && retry.at.is_none() {
            match accept_ready(shared, listen_fd, &mut retry) {
                // Paused at the cap (wait policy): a closing connection sends RESUME.
                Accepting::Paused | Accepting::Drained => try_accept = false,
                Accepting::ListenerGone => return Ok(()),
            }
        }
        close_idle(shared);
    }
}

/// How long the loop may sleep: until the next parked connection idles out, or the next
/// accept retry. Noted in the state, so a handler that parks a connection while the loop
/// sleeps with no idle timer wakes it to set one.
fn next_timeout(shared: &Shared, retry: &Retry) -> Option<Duration> {
    let now = Instant::now();
    let mut pool = lock(&shared.pool);
    let idle_out = shared.config.idle_timeout.and_then(|idle| {
        let &(since, _) = pool.parked_order.first()?;
        Some(since + idle)
    });
    pool.loop_idle_timer = idle_out.is_some();
    let wake_at = match (idle_out, retry.at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    wake_at.map(|at| at.saturating_duration_since(now))
}

/// A parked connection became readable (or hung up): hand it to the pool.
fn on_readable(shared: &Arc<Shared>, token: Token, peer_closed: bool) {
    let (fd, generation) = from_token(token);
    let mut pool = lock(&shared.pool);
    match pool.parked.get(&fd) {
        // An event of an earlier connection on this fd number, or of one that is with a
        // handler now (it is parked again, and re-checked, when the handler returns).
        Some(conn) if conn.generation == generation => {}
        _ => return,
    }
    let Some(conn) = pool.unpark(fd) else {
        return;
    };
    let job = Job {
        fd: conn.fd,
        peer: conn.peer,
        peer_closed,
    };
    dispatch(shared, pool, job);
}

enum Accepting {
    /// Accepted until EAGAIN (or until a backoff was set).
    Drained,
    /// At `max_connections` under the wait policy.
    Paused,
    /// The listener is gone: the loop ends.
    ListenerGone,
}

/// Accepts every queued connection (the listener is edge-triggered) and parks it.
fn accept_ready(shared: &Arc<Shared>, listen_fd: RawFd, retry: &mut Retry) -> Accepting {
    loop {
        if shared.config.at_cap == AtCap::Wait {
            let mut pool = lock(&shared.pool);
            pool.accept_paused = pool.held() >= shared.config.max_connections;
            if pool.accept_paused {
                return Accepting::Paused;
            }
        }
        match accept(listen_fd) {
            Ok((fd, peer)) => {
                retry.backoff = Duration::ZERO;
                retry.in_episode = false;
                let mut pool = lock(&shared.pool);
                if let Admission::Admitted = admit(shared, &mut pool, &fd, &peer) {
                    pool.stats.accepted += 1;
                    let generation = next_generation(&mut pool);
                    park(&mut pool, fd, peer, generation, true, false);
                }
            }
            Err(libc::EAGAIN) => return Accepting::Drained,
            Err(errno) => match on_accept_error(shared, errno, &mut retry.in_episode) {
                AcceptError::Retry => {}
                AcceptError::BackOff => {
                    retry.backoff = next_backoff(retry.backoff);
                    retry.at = Some(Instant::now() + retry.backoff);
                    return Accepting::Drained;
                }
                AcceptError::ListenerGone => return Accepting::ListenerGone,
            },
        }
    }
}

fn next_generation(pool: &mut PoolState) -> u32 {
    pool.next_generation = pool.next_generation.wrapping_add(1);
    pool.next_generation
}

/// Parks `fd` under the state lock: registers it (`first`) or re-arms it, which reports
/// data that is already there. A connection that cannot be registered is closed.
fn park(
    pool: &mut PoolState,
    fd: OwnedFd,
    peer: socket2::SockAddr,
    generation: u32,
    first: bool,
    idle_timeout: bool,
) {
    let Some(parking) = &pool.parking else {
        pool.release_peer(&peer);
        return;
    };
    let raw = fd.as_raw_fd();
    let mut source = SourceFd(&raw);
    let registered = if first {
        parking
            .registry
            .register(&mut source, token(raw, generation), Interest::READABLE)
    } else {
        parking
            .registry
            .reregister(&mut source, token(raw, generation), Interest::READABLE)
    };
    match registered {
        Ok(()) => {
            pool.park(Parked {
                fd,
                peer,
                generation,
                since: Instant::now(),
            });
            // The loop sleeps with no idle timer (nothing else was parked): wake it to
            // set one. A timer already set is earlier than this connection's.
            if idle_timeout && !pool.loop_idle_timer {
                pool.loop_idle_timer = true;
                if let Some(parking) = &pool.parking {
                    let _ = parking.resume.wake();
                }
            }
        }
        Err(e) => {
            pool.release_peer(&peer);
            log(
                Level::Warn,
                format_args!("could not park a connection: {e}"),
            );
        }
    }
}

/// Closes the parked connections idle longer than `idle_timeout`.
fn close_idle(shared: &Shared) {
    let Some(idle) = shared.config.idle_timeout else {
        return;
    };
    let now = Instant::now();
    let mut closed = Vec::new();
    {
        let mut pool = lock(&shared.pool);
        while let Some(&(since, fd)) = pool.parked_order.first() {
            if since + idle > now {
                break;
            }
            if let Some(conn) = pool.unpark(fd) {
                pool.release_peer(&conn.peer);
                pool.stats.idle_closed += 1;
                closed.push(conn);
            }
        }
        wake_a_paused_loop(&pool);
    }
    drop(closed);
}

/// Under the wait policy, a connection that ends (or a handler that returns) makes room:
/// the loop may accept again.
pub(super) fn wake_a_paused_loop(pool: &PoolState) {
    if pool.accept_paused
        && let Some(parking) = &pool.parking
    {
        let _ = parking.resume.wake();
    }
}

/// A pool thread's part: run the handler on a readable connection, then park it again or
/// close it.
pub(super) fn serve_request(shared: &Shared, handler: &dyn RequestHandler, job: Job) {
    let Job {
        fd,
        peer,
        peer_closed,
    } = job;
    let keep =
        catch_unwind(AssertUnwindSafe(|| handler.serve(fd.as_fd(), &peer))).unwrap_or_else(|_| {
            log(
                Level::Error,
                format_args!("a request handler panicked; its connection was closed"),
            );
            false
        });
    // A peer that shut its side down sends no further request: keep it only while
    // unread data remains (else a handler that keeps it at EOF would be called for ever).
    let keep = keep && (!peer_closed || has_unread_data(&fd));
    let mut pool = lock(&shared.pool);
    if keep && !pool.stopped && pool.parking.is_some() {
        let generation = next_generation(&mut pool);
        let idle_timeout = shared.config.idle_timeout.is_some();
        park(&mut pool, fd, peer, generation, false, idle_timeout);
        return;
    }
    pool.release_peer(&peer);
    drop(pool);
    drop(fd);
}

/// Whether bytes wait to be read on `fd` (a peek that never blocks).
fn has_unread_data(fd: &OwnedFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: a one-byte buffer that lives for the call.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n > 0
}
