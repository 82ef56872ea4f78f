//! The client for real protocols: the heartbeat against a peer that hangs, handshakes that
//! are refused or time out (never resetting the backoff), the reason a session ended,
//! on_state, reset, and sends with a deadline — in Rust and through the C ABI.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::handles::*;
use common::{c_int, c_void};
use libc::c_uint;
use resock::backoff::BackoffConfig;
use resock::client::{Client, ClientConfig, Mode, OnIdle, Session};
use resock::dial::{DialConfig, State, StateChange};
use resock::io::Opts;
use resock::reader::Reader;
use resock::{Class, Error};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Generous: what should take milliseconds may take seconds on a loaded machine.
const LIVENESS: Duration = Duration::from_secs(20);

/// A loopback server that hands every accepted connection to `serve` on a thread of its
/// own, until dropped.
struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(serve: impl Fn(TcpStream) + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let serve = Arc::new(serve);
        let thread = {
            let stop = stop.clone();
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            s.set_nonblocking(false).unwrap();
                            let serve = serve.clone();
                            // Not joined: a peer that hangs for the test's sake would hold
                            // the test up; it ends with the test process.
                            thread::spawn(move || serve(s));
                        }
                        Err(_) => thread::sleep(ms(5)),
                    }
                }
            })
        };
        Server {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn dial(port: u16, initial_ms: u64, stable_after_ms: u64) -> DialConfig {
    DialConfig {
        backoff: BackoffConfig {
            initial: ms(initial_ms),
            max: ms(initial_ms * 64),
            multiplier: 2.0,
            jitter: 0.0,
            stable_after: ms(stable_after_ms),
        },
        seed: Some(1),
        ..DialConfig::new("127.0.0.1", &port.to_string())
    }
}

/// What a test session saw, shared with the test thread.
#[derive(Clone, Default)]
struct Seen {
    disconnects: Arc<Mutex<Vec<(Class, i32, Instant)>>>,
    states: Arc<Mutex<Vec<StateChange>>>,
    lines: Arc<Mutex<Vec<Vec<u8>>>>,
    last_line_at: Arc<Mutex<Option<Instant>>>,
    pings: Arc<AtomicUsize>,
}

impl Seen {
    fn disconnects(&self) -> Vec<(Class, i32)> {
        self.disconnects
            .lock()
            .unwrap()
            .iter()
            .map(|&(c, e, _)| (c, e))
            .collect()
    }

    fn wait_disconnects(&self, n: usize) {
        wait_for("disconnects", || {
            self.disconnects.lock().unwrap().len() >= n
        });
    }
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < LIVENESS, "no {what} within {LIVENESS:?}");
        thread::sleep(ms(2));
    }
}

/// A session that reads lines through the client's reader until the connection ends,
/// and pings with "PING\n".
struct LineSession {
    seen: Seen,
    /// Returned when the session itself ends the connection (after `after` lines).
    fail_after: Option<(usize, i32)>,
    refuse: bool,
    connect_delay: Duration,
}

impl LineSession {
    fn new(seen: &Seen) -> Self {
        LineSession {
            seen: seen.clone(),
            fail_after: None,
            refuse: false,
            connect_delay: Duration::ZERO,
        }
    }
}

impl Session for LineSession {
    fn on_connect(&mut self, _fd: BorrowedFd<'_>) -> bool {
        thread::sleep(self.connect_delay);
        !self.refuse
    }

    fn session(&mut self, reader: &mut Reader<BorrowedFd<'_>>) -> Result<(), Error> {
        let mut buf = [0u8; 256];
        let mut n = 0;
        loop {
            let line = reader.read_line_with(&mut buf, &Opts::default())?;
            if line.len == 0 {
                return Ok(());
            }
            *self.seen.last_line_at.lock().unwrap() = Some(Instant::now());
            self.seen
                .lines
                .lock()
                .unwrap()
                .push(buf[..line.len].to_vec());
            n += 1;
            if let Some((after, errno)) = self.fail_after
                && n >= after
            {
                return Err(Error::from_errno(errno));
            }
        }
    }

    fn heartbeat(&mut self) -> Option<OnIdle> {
        let pings = self.seen.pings.clone();
        Some(Box::new(move |fd| {
            pings.fetch_add(1, Ordering::SeqCst);
            common::writen(fd.as_raw_fd(), b"PING\n").0 == 5
        }))
    }

    fn on_state(&mut self, change: &StateChange) {
        self.seen.states.lock().unwrap().push(*change);
    }

    fn on_disconnect(&mut self, class: Class, errno: i32, _lived: Duration) {
        self.seen
            .disconnects
            .lock()
            .unwrap()
            .push((class, errno, Instant::now()));
    }
}

fn session_client(config: ClientConfig, session: LineSession) -> Client {
    Client::start(config, session).unwrap()
}

/// A peer that sends one line, then hangs: it neither reads nor writes, and its kernel
/// keeps acknowledging (what a SIGSTOPped process looks like on the wire).
fn hanging_server(hang: Duration) -> Server {
    Server::start(move |mut s| {
        s.write_all(b"hello\n").unwrap();
        thread::sleep(hang);
    })
}

#[test]
fn the_heartbeat_hangs_up_on_a_hung_peer_within_two_idle_periods() {
    let idle = ms(200);
    let server = hanging_server(Duration::from_secs(30));
    let seen = Seen::default();
    let config = ClientConfig {
        idle_timeout: Some(idle),
        ..ClientConfig::new(dial(server.port, 5000, 60_000), Mode::Session)
    };
    let client = session_client(config, LineSession::new(&seen));
    seen.wait_disconnects(1);
    client.stop();
    client.join(Some(LIVENESS)).unwrap();
    let (class, errno, at) = seen.disconnects.lock().unwrap()[0];
    assert_eq!((class, errno), (Class::Timeout, libc::ETIMEDOUT));
    let last = seen.last_line_at.lock().unwrap().expect("the line arrived");
    let silent = at - last;
    // One idle period to the ping, one more for an answer that never came (less a margin:
    // the line's timestamp is taken just after the read that started the first period).
    assert!(silent >= 2 * idle - ms(20), "hung up after only {silent:?}");
    assert!(silent < 10 * 2 * idle, "hung up only after {silent:?}");
    assert_eq!(seen.pings.load(Ordering::SeqCst), 1);
    assert_eq!(client.stats().last_errno, libc::ETIMEDOUT);
}

#[test]
fn a_peer_that_answers_pings_keeps_its_connection() {
    let idle = ms(100);
    let server = Server::start(|s| {
        let mut r = std::io::BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let mut line = String::new();
        while std::io::BufRead::read_line(&mut r, &mut line).unwrap_or(0) > 0 {
            if line == "PING\n" && w.write_all(b"PONG\n").is_err() {
                return;
            }
            line.clear();
        }
    });
    let seen = Seen::default();
    let config = ClientConfig {
        idle_timeout: Some(idle),
        ..ClientConfig::new(dial(server.port, 5000, 60_000), Mode::Session)
    };
    let client = session_client(config, LineSession::new(&seen));
    wait_for("five pongs", || seen.lines.lock().unwrap().len() >= 5);
    assert!(seen.disconnects().is_empty(), "{:?}", seen.disconnects());
    client.stop();
    client.join(Some(LIVENESS)).unwrap();
    assert_eq!(seen.disconnects(), [(Class::Ok, libc::ECANCELED)]);
}

/// Records mode has the heartbeat too: a silent peer is hung up with ETIMEDOUT.
#[test]
fn the_heartbeat_runs_in_record_mode() {
    struct Records(Seen);
    impl Session for Records {
        fn on_disconnect(&mut self, class: Class, errno: i32, _lived: Duration) {
            let at = Instant::now();
            self.0.disconnects.lock().unwrap().push((class, errno, at));
        }
    }
    let server = Server::start(|mut s| {
        s.write_all(&[7u8; 32]).unwrap();
        thread::sleep(Duration::from_secs(30));
    });
    let seen = Seen::default();
    let config = ClientConfig {
        idle_timeout: Some(ms(100)),
        ..ClientConfig::new(dial(server.port, 5000, 60_000), Mode::Records(16))
    };
    let started = Instant::now();
    let client = Client::start(config, Records(seen.clone())).unwrap();
    seen.wait_disconnects(1);
    assert!(started.elapsed() >= ms(200));
    client.stop();
    client.join(Some(LIVENESS)).unwrap();
    assert_eq!(seen.disconnects()[0], (Class::Timeout, libc::ETIMEDOUT));
    assert_eq!(client.stats().bytes_in, 32);
}

/// The attempt numbers of the changes to `state`, in order.
fn attempts(seen: &Seen, state: State) -> Vec<u32> {
    seen.states
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.state == state)
        .map(|c| c.attempt)
        .collect()
}

fn backoff_attempts(seen: &Seen) -> Vec<u32> {
    attempts(seen, State::Backoff)
}

#[test]
fn a_refused_handshake_never_resets_the_backoff_however_long_it_took() {
    // Each handshake takes 60 ms, longer than stable_after (20 ms), then refuses.
    let server = Server::start(|s| {
        let mut s = s;
        let _ = s.read(&mut [0u8; 1]);
    });
    let seen = Seen::default();
    let mut session = LineSession::new(&seen);
    session.refuse = true;
    session.connect_delay = ms(60);
    let client = session_client(
        ClientConfig::new(dial(server.port, 5, 20), Mode::Session),
        session,
    );
    seen.wait_disconnects(4);
    client.stop();
    client.join(Some(LIVENESS)).unwrap();
    let attempts = attempts(&seen, State::Connecting);
    // Every refusal is one more failure in a row: 1, 2, 3, ... — never back to 1.
    assert!(attempts.len() >= 4, "{attempts:?}");
    assert!(
        attempts.windows(2).all(|w| w[1] == w[0] + 1),
        "{attempts:?}"
    );
    let stats = client.stats();
    assert_eq!(stats.flaps, stats.connects, "{stats:?}");
    assert!(seen.disconnects()[..3].iter().all(|&d| d == (Class::Ok, 0)));
}

#[test]
fn an_accepted_connection_that_served_long_enough_resets_the_backoff() {
    let server = Server::start(|mut s| {
        thread::sleep(ms(80));
        let _ = s.write_all(b"bye\n");
    });
    let seen = Seen::default();
    let client = session_client(
        ClientConfig::new(dial(server.port, 5, 20), Mode::Session),
        LineSession::new(&seen),
    );
    seen.wait_disconnects(3);
    client.stop();
    client.join(Some(LIVENESS)).unwrap();
    // Healthy each time: the attempt after each connection is attempt 1 again.
    let connecting = attempts(&seen, State::Connecting);
    assert!(connecting.iter().take(3).all(|&a| a == 1), "{connecting:?}");
    assert_eq!(client.stats().flaps, 0);
}

#[test]
fn a_handshake_that_times_out_is_etimedout_and_a_flap() {
    // The server accepts and never answers the handshake.
    let server = Server::start(|s| {
        let mut s = s;
        let _ = s.read(&mut [0u8; 1]);
    });
    struct Hello(Seen, Arc<Mutex<Vec<(isize, i32)>>>);
    impl Session for Hello {
        fn on_connect(&mut self, fd: BorrowedFd<'_>) -> bool {
            let mut reply = [0u8; 4];
            let got = common::readn(fd.as_raw_fd(), &mut reply);
            self.1.lock().unwrap().push(got);
            got.0 == 4
        }
        fn on_disconnect(&mut self, class: Class, errno: i32, _lived: Duration) {
            let at = Instant::now();
            self.0.disconnects.lock().unwrap().push((class, errno, at));
        }
    }
    let seen = Seen::default();
    let reads = Arc::new(Mutex::new(Vec::new()));
    let config = ClientConfig {
        handshake_timeout: Some(ms(100)),
        ..ClientConfig::new(dial(server.port, 5, 1), Mode::Session)
    };
    let client = Client::start(config, Hello(seen.clone(), reads.clone())).unwrap();
    seen.wait_disconnects(2);
    client.stop();
    client.join(Some(LIVENESS)).unwrap();
    // The blocked read came back with EAGAIN (SO_RCVTIMEO), and the client called it a
    // handshake timeout.
    assert_eq!(reads.lock().unwrap()[0], (-1, libc::EAGAIN));
    assert_eq!(seen.disconnects()[0], (Class::Timeout, libc::ETIMEDOUT));
    let stats = client.stats();
    assert!(stats.flaps >= 2, "{stats:?}");
}

#[test]
fn stop_interrupts_a_handshake_blocked_on_a_silent_server() {
    let server = Server::start(|s| {
        let mut s = s;
        let _ = s.read(&mut [0u8; 1]);
    });
    let entered = Arc::new(AtomicBool::new(false));
    struct Blocked(Arc<AtomicBool>);
    impl Session for Blocked {
        fn on_connect(&mut self, fd: BorrowedFd<'_>) -> bool {
            self.0.store(true, Ordering::SeqCst);
            common::readn(fd.as_raw_fd(), &mut [0u8; 4]).0 == 4
        }
    }
    let config = ClientConfig {
        handshake_timeout: None,
        ..ClientConfig::new(dial(server.port, 5, 1), Mode::Session)
    };
    let client = Client::start(config, Blocked(entered.clone())).unwrap();
    wait_for("the handshake", || entered.load(Ordering::SeqCst));
    let t = Instant::now();
    client.stop();
    client.join(Some(LIVENESS)).unwrap();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn a_session_reports_why_it_ended() {
    // EOF, then RST, then a protocol error of the session's own.
    let conn = Arc::new(AtomicUsize::new(0));
    let server = {
        let conn = conn.clone();
        Server::start(move |mut s| match conn.fetch_add(1, Ordering::SeqCst) {
            0 => s.write_all(b"one\n").unwrap(),
            1 => {
                s.write_all(b"two\n").unwrap();
                thread::sleep(ms(50));
                common::set_linger_zero(s.as_raw_fd());
            }
            _ => {
                let _ = s.write_all(b"three\nfour\n");
                let _ = s.read(&mut [0u8; 1]);
            }
        })
    };
    let seen = Seen::default();
    let mut session = LineSession::new(&seen);
    session.fail_after = Some((2, libc::EPROTO));
    let client = session_client(
        ClientConfig::new(dial(server.port, 5, 1), Mode::Session),
        session,
    );
    seen.wait_disconnects(3);
    client.stop();
    client.join(Some(LIVENESS)).unwrap();
    let d = seen.disconnects();
    assert_eq!(
        &d[..3],
        [
            (Class::Eof, 0),
            (Class::Reset, libc::ECONNRESET),
            (Class::Other, libc::EPROTO)
        ]
    );
    let stats = client.stats();
    assert_eq!((stats.eofs, stats.resets), (1, 1), "{stats:?}");
}

#[test]
fn on_state_sees_every_attempt_and_state_change_in_order() {
    // Nothing listens at first: two failed attempts, then the server comes up.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let seen = Seen::default();
    let client = session_client(
        ClientConfig::new(dial(port, 20, 1), Mode::Session),
        LineSession::new(&seen),
    );
    wait_for("two backoffs", || backoff_attempts(&seen).len() >= 2);
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let (peer, _) = listener.accept().unwrap();
    drop(peer);
    seen.wait_disconnects(1);
    client.stop();
    client.join(Some(LIVENESS)).unwrap();
    let states: Vec<(State, u32, i32)> = seen
        .states
        .lock()
        .unwrap()
        .iter()
        .map(|c| (c.state, c.attempt, c.errno))
        .collect();
    let connected_at = states.iter().position(|s| s.0 == State::Connected).unwrap();
    let n = states[connected_at].1;
    assert!(n >= 3, "{states:?}");
    // Attempt k: Connecting k, then (refused) Backoff until attempt k+1, until one
    // connects.
    for k in 1..n {
        let at = 2 * (k as usize - 1);
        assert_eq!(states[at], (State::Connecting, k, 0), "{states:?}");
        assert_eq!(
            states[at + 1],
            (State::Backoff, k + 1, libc::ECONNREFUSED),
            "{states:?}"
        );
    }
    assert_eq!(
        &states[connected_at - 2..connected_at + 1],
        [
            (State::Connecting, n, 0),
            (State::Handshake, n, 0),
            (State::Connected, n, 0)
        ]
    );
    assert_eq!(
        states[connected_at + 1],
        (State::Idle, n, 0),
        "EOF: errno 0"
    );
    assert_eq!(states.last().unwrap().0, State::Stopped);
    let backoffs = seen.states.lock().unwrap().clone();
    let delay = backoffs
        .iter()
        .find(|c| c.state == State::Backoff)
        .unwrap()
        .next_delay;
    assert!(delay > Duration::ZERO && delay <= ms(20), "{delay:?}");
}

#[test]
fn reset_ends_a_long_backoff_at_once() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let seen = Seen::default();
    // A 60 s first backoff.
    let client = session_client(
        ClientConfig::new(dial(port, 60_000, 1), Mode::Session),
        LineSession::new(&seen),
    );
    wait_for("a backoff", || !backoff_attempts(&seen).is_empty());
    let t = Instant::now();
    client.reset();
    wait_for("a second attempt", || {
        seen.states
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.state == State::Connecting)
            .count()
            >= 2
    });
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    client.stop();
    client.join(Some(LIVENESS)).unwrap();
}

/// A server that accepts and never reads; `ready` says when a connection is up.
fn deaf_server(ready: Sender<()>) -> Server {
    let ready = Mutex::new(ready);
    Server::start(move |s| {
        let _ = ready.lock().unwrap().send(());
        thread::sleep(Duration::from_secs(30));
        drop(s);
    })
}

fn connected(rx: &Receiver<()>, client: &Client) {
    rx.recv_timeout(LIVENESS).unwrap();
    wait_for("the connection", || {
        client.stats().state == State::Connected
    });
}

#[test]
fn a_send_with_a_deadline_that_tears_a_message_hangs_the_connection_up() {
    let (tx, rx) = channel();
    let server = deaf_server(tx);
    let seen = Seen::default();
    let client = session_client(
        ClientConfig::new(dial(server.port, 5, 1), Mode::Session),
        LineSession::new(&seen),
    );
    connected(&rx, &client);
    // Far more than the socket buffers hold: the write blocks, the deadline ends it.
    let big = vec![1u8; 64 << 20];
    let stopped = client
        .send_with(&big, &Opts::with_timeout(ms(100)))
        .unwrap_err();
    assert!(matches!(stopped.error, Error::TimedOut));
    assert!(stopped.done > 0 && stopped.done < big.len());
    seen.wait_disconnects(1);
    assert_eq!(seen.disconnects()[0], (Class::Timeout, libc::ETIMEDOUT));
    client.stop();
    client.join(Some(LIVENESS)).unwrap();
}

#[test]
fn a_sender_waiting_for_its_turn_times_out_without_sending_a_byte() {
    let (tx, rx) = channel();
    let server = deaf_server(tx);
    let seen = Seen::default();
    let client = Arc::new(session_client(
        ClientConfig::new(dial(server.port, 5, 1), Mode::Session),
        LineSession::new(&seen),
    ));
    connected(&rx, &client);
    // The first sender takes its turn and stops at its first syscall.
    let (hook_tx, hook_rx) = channel();
    let first = {
        let client = client.clone();
        thread::spawn(move || {
            let hook = resock::test_hooks::arm_this_thread("io.next_syscall", 0);
            hook_tx.send(hook).unwrap();
            client.send(&vec![1u8; 64 << 20])
        })
    };
    let hook = hook_rx.recv().unwrap();
    assert!(hook.wait_arrived(LIVENESS));
    let stopped = client
        .send_with(b"ping\n", &Opts::with_timeout(ms(50)))
        .unwrap_err();
    assert!(matches!(stopped.error, Error::TimedOut));
    assert_eq!(stopped.done, 0);
    hook.release();
    client.stop();
    assert!(first.join().unwrap().is_err());
    client.join(Some(LIVENESS)).unwrap();
}

// The C ABI.

struct CSeen {
    lines: Mutex<Vec<Vec<u8>>>,
    disconnects: Mutex<Vec<(c_int, c_int)>>,
    states: Mutex<Vec<(c_int, c_uint, i64, c_int)>>,
    pings: AtomicUsize,
}

unsafe extern "C" {
    fn resock_reader_readline(
        r: *mut c_void,
        buf: *mut c_void,
        maxlen: usize,
        opts: *const common::IoOpts,
        done: *mut usize,
    ) -> isize;
    fn resock_reader_free(r: *mut c_void);
}

unsafe extern "C" fn c_session(_fd: c_int, r: *mut c_void, user: *mut c_void) -> c_int {
    let seen = unsafe { &*(user as *const CSeen) };
    // The reader is the client's: freeing it does nothing.
    unsafe { resock_reader_free(r) };
    let mut buf = [0u8; 64];
    loop {
        let n = unsafe {
            resock_reader_readline(
                r,
                buf.as_mut_ptr().cast(),
                buf.len(),
                std::ptr::null(),
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            return 0;
        }
        let line = buf[..n as usize].to_vec();
        let bad = line == b"bad\n";
        seen.lines.lock().unwrap().push(line);
        if bad {
            return libc::EPROTO;
        }
    }
}

unsafe extern "C" fn c_on_idle(fd: c_int, user: *mut c_void) -> c_int {
    let seen = unsafe { &*(user as *const CSeen) };
    seen.pings.fetch_add(1, Ordering::SeqCst);
    (common::writen(fd, b"PING\n").0 != 5) as c_int
}

unsafe extern "C" fn c_on_state(
    state: c_int,
    attempt: c_uint,
    next_delay_ms: i64,
    errnum: c_int,
    user: *mut c_void,
) {
    let seen = unsafe { &*(user as *const CSeen) };
    seen.states
        .lock()
        .unwrap()
        .push((state, attempt, next_delay_ms, errnum));
}

unsafe extern "C" fn c_on_disconnect(cls: c_int, errnum: c_int, _ms: i64, user: *mut c_void) {
    let seen = unsafe { &*(user as *const CSeen) };
    seen.disconnects.lock().unwrap().push((cls, errnum));
}

fn c_seen() -> Box<CSeen> {
    Box::new(CSeen {
        lines: Mutex::new(Vec::new()),
        disconnects: Mutex::new(Vec::new()),
        states: Mutex::new(Vec::new()),
        pings: AtomicUsize::new(0),
    })
}

#[test]
fn c_session_reads_through_the_lent_reader_and_its_errno_reaches_on_disconnect() {
    let conn = Arc::new(AtomicUsize::new(0));
    let server = {
        let conn = conn.clone();
        Server::start(move |mut s| {
            if conn.fetch_add(1, Ordering::SeqCst) == 0 {
                s.write_all(b"good\nbad\n").unwrap();
                let _ = s.read(&mut [0u8; 1]);
            } else {
                // Then hang: the heartbeat pings once and hangs up.
                s.write_all(b"hello\n").unwrap();
                thread::sleep(Duration::from_secs(30));
            }
        })
    };
    let seen = c_seen();
    let host = std::ffi::CString::new("127.0.0.1").unwrap();
    let port = std::ffi::CString::new(server.port.to_string()).unwrap();
    let mut cfg = client_config(dial_config(&host, &port));
    cfg.dial.backoff_initial_ms = 5;
    cfg.session = Some(c_session);
    cfg.on_disconnect = Some(c_on_disconnect);
    cfg.on_idle = Some(c_on_idle);
    cfg.on_state = Some(c_on_state);
    cfg.idle_timeout_ms = 100;
    cfg.user = (&*seen as *const CSeen).cast_mut().cast();
    let client = unsafe { resock_client_start(&cfg) };
    assert!(!client.is_null());
    wait_for("two disconnects", || {
        seen.disconnects.lock().unwrap().len() >= 2
    });
    unsafe { resock_client_free(client) };
    let d = seen.disconnects.lock().unwrap().clone();
    assert_eq!(d[0], (Class::Other as c_int, libc::EPROTO));
    assert_eq!(d[1], (Class::Timeout as c_int, libc::ETIMEDOUT));
    assert_eq!(seen.pings.load(Ordering::SeqCst), 1);
    let states = seen.states.lock().unwrap().clone();
    assert_eq!(states[0], (State::Connecting as c_int, 1, 0, 0));
    assert_eq!(states.last().unwrap().0, State::Stopped as c_int);
}

/// ABI 1's config: the struct ended at `user`, and the session took (fd, user).
#[repr(C)]
struct ClientConfigV1 {
    struct_size: usize,
    dial: common::handles::DialConfig,
    record_size: usize,
    on_connect: Option<OnConnect>,
    on_record: Option<OnRecord>,
    session: Option<unsafe extern "C" fn(fd: c_int, user: *mut c_void)>,
    on_disconnect: Option<OnDisconnect>,
    user: *mut c_void,
}

unsafe extern "C" fn v1_session(fd: c_int, user: *mut c_void) {
    let got = unsafe { &*(user as *const AtomicUsize) };
    let mut buf = [0u8; 3];
    if common::readn(fd, &mut buf).0 == 3 {
        got.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn an_abi_1_config_with_the_old_session_still_works() {
    let server = Server::start(|mut s| {
        let _ = s.write_all(b"v1!");
        let _ = s.read(&mut [0u8; 1]);
    });
    let got = AtomicUsize::new(0);
    let host = std::ffi::CString::new("127.0.0.1").unwrap();
    let port = std::ffi::CString::new(server.port.to_string()).unwrap();
    let cfg = ClientConfigV1 {
        struct_size: size_of::<ClientConfigV1>(),
        dial: dial_config(&host, &port),
        record_size: 0,
        on_connect: None,
        on_record: None,
        session: Some(v1_session),
        on_disconnect: None,
        user: (&got as *const AtomicUsize).cast_mut().cast(),
    };
    let client = unsafe { resock_client_start((&cfg as *const ClientConfigV1).cast()) };
    assert!(!client.is_null(), "errno {}", common::errno());
    wait_for("the v1 session", || got.load(Ordering::SeqCst) >= 1);
    unsafe { resock_client_free(client) };
}

#[test]
fn bad_heartbeat_and_handshake_timeouts_are_einval() {
    let host = std::ffi::CString::new("127.0.0.1").unwrap();
    let port = std::ffi::CString::new("1").unwrap();
    for (idle, handshake) in [(0, -1), (-2, -1), (-1, 0), (-1, -2)] {
        let mut cfg = client_config(dial_config(&host, &port));
        cfg.session = Some(c_session);
        cfg.idle_timeout_ms = idle;
        cfg.handshake_timeout_ms = handshake;
        common::set_errno(0);
        assert!(unsafe { resock_client_start(&cfg) }.is_null());
        assert_eq!(common::errno(), libc::EINVAL, "{idle} {handshake}");
    }
}

#[test]
fn send_opts_and_reset_from_c() {
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let host = std::ffi::CString::new("127.0.0.1").unwrap();
    let port = std::ffi::CString::new(port.to_string()).unwrap();
    let mut cfg = client_config(dial_config(&host, &port));
    cfg.session = Some(c_session);
    let seen = c_seen();
    cfg.user = (&*seen as *const CSeen).cast_mut().cast();
    let client = unsafe { resock_client_start(&cfg) };
    assert!(!client.is_null());
    let send = |opts: *const common::IoOpts| {
        let mut done = usize::MAX;
        common::set_errno(0);
        let rc =
            unsafe { resock_client_send_opts(client, b"hi".as_ptr().cast(), 2, opts, &mut done) };
        (rc, common::errno(), done)
    };
    // Nothing is connected: ENOTCONN, nothing sent.
    assert_eq!(send(&common::opts(50, 0)), (-1, libc::ENOTCONN, 0));
    assert_eq!(send(std::ptr::null()), (-1, libc::ENOTCONN, 0));
    // A bad opts is EINVAL before anything else.
    assert_eq!(send(&common::opts(-5, 0)), (-1, libc::EINVAL, 0));
    let rc = unsafe {
        resock_client_send_opts(
            std::ptr::null_mut(),
            std::ptr::null(),
            0,
            std::ptr::null(),
            std::ptr::null_mut(),
        )
    };
    assert_eq!((rc, common::errno()), (-1, libc::EINVAL));
    unsafe {
        resock_client_reset(client);
        resock_client_reset(std::ptr::null_mut());
        resock_client_free(client);
    }
}
