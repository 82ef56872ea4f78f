//! The Dialer and the Client against a scriptable loopback server: refusals, flaps, a
//! restart, a black hole, stops from other threads and from callbacks.

mod common;
#[path = "common/port.rs"]
mod port;
#[path = "common/skip.rs"]
mod skip;

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{record, record_is_intact, set_linger_zero, writen};
use resock::backoff::BackoffConfig;
use resock::client::{Client, ClientConfig, Mode, Session};
use resock::dial::{DialConfig, Dialer, State, Stats};
use resock::io::{Opts, read_full};
use resock::{Class, Error};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// A port on which nothing listens (bound once, then released).
fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(port: u16, initial: u64, max: u64, jitter: f64) -> DialConfig {
    DialConfig {
        backoff: BackoffConfig {
            initial: ms(initial),
            max: ms(max),
            multiplier: 2.0,
            jitter,
            stable_after: ms(2000),
        },
        seed: Some(7),
        ..DialConfig::new("127.0.0.1", &port.to_string())
    }
}

/// The most attempts a schedule allows in `window`: attempt k+1 starts no earlier than
/// the sum of the first k delays at their shortest, d·(1−jitter).
fn max_attempts_in(window: Duration, c: &BackoffConfig) -> u64 {
    let (mut t, mut n, mut d) = (Duration::ZERO, 1u64, c.initial.as_secs_f64());
    loop {
        let shortest = Duration::from_secs_f64(d.min(c.max.as_secs_f64()) * (1.0 - c.jitter));
        t += shortest;
        if t > window {
            return n;
        }
        n += 1;
        d *= c.multiplier;
    }
}

fn check_invariant(s: &Stats) {
    assert_eq!(s.attempts, s.connects + s.failures, "{s:?}");
}

/// How a scripted server treats each connection it accepts.
#[derive(Clone, Copy)]
enum Script {
    /// SO_LINGER {1, 0} and close at once: the client sees ECONNRESET.
    Rst,
    /// close at once: the client sees EOF.
    Fin,
    /// Send these many 64-byte records, then close.
    Records(u32),
}

/// A loopback server running `script` for every connection until dropped.
struct ScriptServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl ScriptServer {
    fn start(addr: &str, script: Script) -> Self {
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, accepted) = (stop.clone(), accepted.clone());
            thread::spawn(move || {
                let mut conn_id = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            stream.set_nonblocking(false).unwrap();
                            accepted.fetch_add(1, Ordering::Relaxed);
                            serve(stream, script, conn_id);
                            conn_id += 1;
                        }
                        Err(_) => thread::sleep(ms(2)),
                    }
                }
            })
        };
        ScriptServer {
            addr,
            stop,
            accepted,
            thread: Some(thread),
        }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for ScriptServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn serve(stream: TcpStream, script: Script, conn: u32) {
    match script {
        Script::Rst => set_linger_zero(stream.as_raw_fd()),
        Script::Fin => {}
        Script::Records(n) => {
            for seq in 0..n {
                if writen(stream.as_raw_fd(), &record(conn, seq)).0 != 64 {
                    return;
                }
            }
        }
    }
}

#[test]
fn nothing_listening_attempts_stay_within_the_schedule() {
    let cfg = config(dead_port(), 20, 160, 0.5);
    let dialer = Arc::new(Dialer::new(cfg.clone()).unwrap());
    let window = ms(1000);
    let dialing = {
        let dialer = dialer.clone();
        thread::spawn(move || dialer.dial())
    };
    thread::sleep(window);
    dialer.stop();
    let result = dialing.join().unwrap();
    assert_eq!(result.unwrap_err().errno(), libc::ECANCELED);
    let s = dialer.stats();
    check_invariant(&s);
    let bound = max_attempts_in(window + ms(50), &cfg.backoff);
    assert!(
        s.attempts <= bound,
        "{} attempts, the schedule allows {bound}",
        s.attempts
    );
    // Without backoff the seed's loop makes thousands; with it, the formula's handful.
    assert!(s.attempts >= 3, "{s:?}");
    assert_eq!(s.refused, s.failures);
    assert_eq!(s.last_errno, libc::ECONNREFUSED);
    assert_eq!(s.state, State::Stopped);
}

/// Dials, reads until the server ends the connection, hangs up; for `window`.
fn flap_against(script: Script) -> (Stats, BackoffConfig, usize) {
    let server = ScriptServer::start("127.0.0.1:0", script);
    let cfg = config(server.port(), 20, 160, 0.5);
    let dialer = Dialer::new(cfg.clone()).unwrap();
    let start = Instant::now();
    let mut ends = Vec::new();
    while start.elapsed() < ms(1000) {
        let fd = dialer.dial().unwrap();
        let mut buf = [0u8; 1];
        let stopped = read_full(&fd, &mut buf, &Opts::with_timeout(ms(2000))).unwrap_err();
        ends.push(stopped.error.class());
        dialer.hangup(fd).unwrap();
    }
    let expected = match script {
        Script::Rst => Class::Reset,
        _ => Class::Eof,
    };
    assert!(ends.iter().all(|&c| c == expected), "{ends:?}");
    (dialer.stats(), cfg.backoff, server.accepted())
}

#[test]
fn accept_then_rst_flapping_keeps_backing_off() {
    let (s, backoff, accepted) = flap_against(Script::Rst);
    check_invariant(&s);
    assert_eq!(s.flaps, s.connects, "every connection was a flap: {s:?}");
    let bound = max_attempts_in(ms(1050), &backoff);
    assert!(
        s.connects <= bound,
        "{} connects, a non-resetting backoff allows {bound}",
        s.connects
    );
    // Every connect the dialer counted was accepted. The server may accept one more per
    // failed attempt: on a busy machine its RST can land before the dialer's poll wakes,
    // and SO_ERROR then reports ECONNRESET for a handshake that completed.
    assert!(
        (s.connects..=s.attempts).contains(&(accepted as u64)),
        "{accepted} accepted: {s:?}"
    );
}

#[test]
fn accept_then_fin_flapping_keeps_backing_off() {
    let (s, backoff, _) = flap_against(Script::Fin);
    check_invariant(&s);
    assert_eq!(s.flaps, s.connects);
    assert!(s.connects <= max_attempts_in(ms(1050), &backoff));
    assert!(s.connects >= 3);
}

#[test]
fn max_attempts_spent_returns_the_last_connect_errno() {
    let cfg = DialConfig {
        max_attempts: 3,
        ..config(dead_port(), 5, 20, 0.0)
    };
    let dialer = Dialer::new(cfg).unwrap();
    let e = dialer.dial().unwrap_err();
    assert_eq!(e.errno(), libc::ECONNREFUSED);
    let s = dialer.stats();
    assert_eq!((s.attempts, s.failures, s.refused), (3, 3, 3));
    check_invariant(&s);
}

/// A listener whose accept queue is full: further SYNs are dropped, connects hang.
fn black_hole() -> (TcpListener, Vec<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    unsafe { libc::listen(listener.as_raw_fd(), 0) };
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    for _ in 0..64 {
        // Generous: under load a connect that gets through can take a while.
        match TcpStream::connect_timeout(&addr, ms(1000)) {
            Ok(s) => queued.push(s),
            Err(_) => return (listener, queued),
        }
    }
    panic!("the accept queue never filled");
}

#[test]
fn a_black_hole_attempt_ends_at_the_connect_timeout() {
    let (listener, _queued) = black_hole();
    let port = listener.local_addr().unwrap().port();
    let cfg = DialConfig {
        connect_timeout: Some(ms(300)),
        max_attempts: 1,
        ..config(port, 10, 20, 0.0)
    };
    let dialer = Dialer::new(cfg).unwrap();
    let start = Instant::now();
    let e = dialer.dial().unwrap_err();
    let took = start.elapsed();
    assert_eq!(e.errno(), libc::ETIMEDOUT);
    assert!(took >= ms(300) && took < ms(3000), "{took:?}");
    assert_eq!(dialer.stats().timeouts, 1);
}

#[test]
fn stop_during_a_connect_and_during_a_long_backoff_is_prompt() {
    let (listener, _queued) = black_hole();
    let port = listener.local_addr().unwrap().port();
    for (label, cfg) in [
        (
            "connect",
            DialConfig {
                connect_timeout: Some(Duration::from_secs(60)),
                ..config(port, 10, 20, 0.0)
            },
        ),
        ("backoff", config(dead_port(), 600_000, 600_000, 0.0)),
    ] {
        let dialer = Arc::new(Dialer::new(cfg).unwrap());
        let dialing = {
            let dialer = dialer.clone();
            thread::spawn(move || dialer.dial())
        };
        thread::sleep(ms(200));
        let expected = if label == "connect" {
            State::Connecting
        } else {
            State::Backoff
        };
        assert_eq!(dialer.stats().state, expected, "{label}");
        let stopped_at = Instant::now();
        dialer.stop();
        let result = dialing.join().unwrap();
        assert!(
            stopped_at.elapsed() < ms(1000),
            "{label}: stop took {:?}",
            stopped_at.elapsed()
        );
        assert_eq!(result.unwrap_err().errno(), libc::ECANCELED, "{label}");
        assert_eq!(
            dialer.dial().unwrap_err().errno(),
            libc::ECANCELED,
            "{label}: stays stopped"
        );
        check_invariant(&dialer.stats());
    }
}

#[test]
fn reset_cuts_a_long_backoff_short() {
    let port = dead_port();
    let dialer = Arc::new(
        Dialer::new(DialConfig {
            max_attempts: 2,
            ..config(port, 600_000, 600_000, 0.0)
        })
        .unwrap(),
    );
    let dialing = {
        let dialer = dialer.clone();
        thread::spawn(move || dialer.dial())
    };
    thread::sleep(ms(200));
    assert_eq!(dialer.stats().state, State::Backoff);
    let reset_at = Instant::now();
    dialer.reset();
    // The second attempt runs at once and fails too: max_attempts ends the dial.
    assert_eq!(
        dialing.join().unwrap().unwrap_err().errno(),
        libc::ECONNREFUSED
    );
    assert!(reset_at.elapsed() < ms(1000));
    assert_eq!(dialer.stats().attempts, 2);
}

#[test]
fn bad_configs_are_rejected() {
    let good = config(1, 100, 1000, 0.5);
    assert!(Dialer::new(good.clone()).is_ok());
    for bad in [
        DialConfig {
            host: String::new(),
            ..good.clone()
        },
        DialConfig {
            port: String::new(),
            ..good.clone()
        },
        DialConfig {
            backoff: BackoffConfig {
                initial: ms(0),
                ..good.backoff
            },
            ..good.clone()
        },
        DialConfig {
            backoff: BackoffConfig {
                multiplier: 0.5,
                ..good.backoff
            },
            ..good.clone()
        },
        DialConfig {
            backoff: BackoffConfig {
                max: ms(10),
                ..good.backoff
            },
            ..good.clone()
        },
        DialConfig {
            connect_timeout: Some(ms(0)),
            ..good.clone()
        },
    ] {
        assert_eq!(Dialer::new(bad).unwrap_err().errno(), libc::EINVAL);
    }
}

/// Collects records and disconnect reasons; can stop its own client from a callback.
#[derive(Clone, Default)]
struct Collector {
    records: Arc<Mutex<Vec<Vec<u8>>>>,
    disconnects: Arc<Mutex<Vec<(Class, i32)>>>,
    stop_after: Option<usize>,
    client: Arc<Mutex<Option<Arc<Client>>>>,
}

impl Session for Collector {
    fn on_record(&mut self, record: &[u8]) {
        let n = {
            let mut records = self.records.lock().unwrap();
            records.push(record.to_vec());
            records.len()
        };
        if Some(n) == self.stop_after
            && let Some(client) = self.client.lock().unwrap().as_ref()
        {
            client.stop();
        }
    }

    fn on_disconnect(&mut self, class: Class, errno: i32, _lived: Duration) {
        self.disconnects.lock().unwrap().push((class, errno));
    }
}

/// A record-mode client of 127.0.0.1:`port` (backoff 20 ms to 200 ms) feeding `collector`.
fn collecting_client(port: u16, collector: &Collector) -> Client {
    let config = ClientConfig::new(config(port, 20, 200, 0.5), Mode::Records(64));
    Client::start(config, collector.clone()).unwrap()
}

fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        thread::sleep(ms(5));
    }
}

#[test]
fn a_client_is_back_after_a_server_restart_with_every_record_intact() {
    // Restarts on its port: one no other test's bind(0) can take during the outage.
    let server = ScriptServer::start(
        &format!("127.0.0.1:{}", port::restart_port()),
        Script::Records(100),
    );
    let port = server.port();
    let collector = Collector::default();
    let client = collecting_client(port, &collector);
    wait_for("the first 100 records", Duration::from_secs(10), || {
        collector.records.lock().unwrap().len() >= 100
    });
    drop(server); // the outage
    thread::sleep(ms(300));
    let server = ScriptServer::start(&format!("127.0.0.1:{port}"), Script::Records(100));
    // 200 records alone can all come from the first server (a busy machine lets the client
    // reconnect to it before the drop): wait for the restarted server's connection too.
    wait_for("records after the restart", Duration::from_secs(10), || {
        collector.records.lock().unwrap().len() >= 200 && server.accepted() >= 1
    });
    client.stop();
    client.join(Some(Duration::from_secs(10))).unwrap();
    let records = collector.records.lock().unwrap();
    assert!(
        records.iter().all(|r| record_is_intact(r)),
        "a torn or corrupt record was delivered"
    );
    let s = client.stats();
    check_invariant(&s);
    assert!(s.connects >= 2 && s.eofs >= 1, "{s:?}");
    assert_eq!(s.state, State::Stopped);
    assert!(s.bytes_in >= 200 * 64);
    assert!(server.accepted() >= 1);
}

#[test]
fn stop_from_another_thread_while_in_a_record_read() {
    // A server that accepts and then says nothing: the client blocks in read_full.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let collector = Collector::default();
    let client = collecting_client(port, &collector);
    let (_held, _) = listener.accept().unwrap();
    wait_for("connected", Duration::from_secs(5), || {
        client.stats().state == State::Connected
    });
    thread::sleep(ms(50));
    let start = Instant::now();
    client.stop();
    client.join(Some(Duration::from_secs(5))).unwrap();
    assert!(start.elapsed() < ms(1000), "{:?}", start.elapsed());
    assert_eq!(
        *collector.disconnects.lock().unwrap(),
        [(Class::Ok, libc::ECANCELED)]
    );
    // After join, no callback runs again.
    let seen = collector.disconnects.lock().unwrap().len();
    thread::sleep(ms(50));
    assert_eq!(collector.disconnects.lock().unwrap().len(), seen);
}

#[test]
fn stop_from_inside_on_record() {
    let server = ScriptServer::start("127.0.0.1:0", Script::Records(1000));
    let collector = Collector {
        stop_after: Some(10),
        ..Collector::default()
    };
    let client = Arc::new(collecting_client(server.port(), &collector));
    *collector.client.lock().unwrap() = Some(client.clone());
    client.join(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(
        collector.records.lock().unwrap().len(),
        10,
        "the record loop ended at the stop"
    );
    assert_eq!(client.join(None).map_err(|e| e.errno()), Ok(()));
    collector.client.lock().unwrap().take();
}

#[test]
fn send_is_enotconn_while_down_and_works_while_up() {
    let port = dead_port();
    struct Quiet;
    impl Session for Quiet {}
    let client = Client::start(
        ClientConfig::new(config(port, 20, 100, 0.5), Mode::Records(8)),
        Quiet,
    )
    .unwrap();
    let e = client.send(b"hello").unwrap_err();
    assert_eq!((e.done, e.error.errno()), (0, libc::ENOTCONN));
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let (peer, _) = listener.accept().unwrap();
    wait_for("connected", Duration::from_secs(5), || {
        client.stats().state == State::Connected
    });
    client.send(b"hello").unwrap();
    let mut got = [0u8; 5];
    read_full(&peer, &mut got, &Opts::default()).unwrap();
    assert_eq!(&got, b"hello");
    assert_eq!(client.stats().bytes_out, 5);
    drop(client); // stops and joins
}

#[test]
fn on_connect_refusing_hangs_up_and_counts_a_flap() {
    let server = ScriptServer::start("127.0.0.1:0", Script::Records(5));
    struct Refuse(Arc<AtomicUsize>);
    impl Session for Refuse {
        fn on_connect(&mut self, _fd: BorrowedFd<'_>) -> bool {
            self.0.fetch_add(1, Ordering::Relaxed) >= 2
        }
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let client = Client::start(
        ClientConfig::new(config(server.port(), 10, 50, 0.0), Mode::Records(64)),
        Refuse(calls.clone()),
    )
    .unwrap();
    wait_for("a third connect", Duration::from_secs(5), || {
        calls.load(Ordering::Relaxed) >= 3
    });
    client.stop();
    client.join(Some(Duration::from_secs(5))).unwrap();
    assert!(client.stats().flaps >= 2);
}

#[test]
fn ipv6_loopback_and_unix_paths() {
    match TcpListener::bind("[::1]:0") {
        Err(e) => skip::skip(&format!("the IPv6 half: no ::1 here ({e})")),
        Ok(listener) => {
            let port = listener.local_addr().unwrap().port().to_string();
            let dialer = Dialer::new(DialConfig::new("::1", &port)).unwrap();
            let fd = dialer.dial().unwrap();
            let (peer, from) = listener.accept().unwrap();
            assert_eq!(from.ip(), "::1".parse::<std::net::IpAddr>().unwrap());
            assert_eq!(writen(peer.as_raw_fd(), b"v6").0, 2);
            let mut got = [0u8; 2];
            read_full(&fd, &mut got, &Opts::default()).unwrap();
            assert_eq!(&got, b"v6");
            dialer.hangup(fd).unwrap();
        }
    }
    let dir = std::env::temp_dir().join(format!("resock-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sock");
    let host = format!("unix:{}", path.display());
    let listener = resock::net::listen(Some(&host), "", 0).unwrap();
    let dialer = Dialer::new(DialConfig::new(&host, "")).unwrap();
    let fd = dialer.dial().unwrap();
    let peer = unsafe {
        libc::accept(
            listener.as_fd().as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    assert!(peer >= 0);
    assert_eq!(writen(peer, b"unix").0, 4);
    let mut got = [0u8; 4];
    read_full(&fd, &mut got, &Opts::default()).unwrap();
    assert_eq!(&got, b"unix");
    unsafe { libc::close(peer) };
    dialer.hangup(fd).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn connect_resolves_names_and_reports_refusals() {
    let server = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = server.local_addr().unwrap().port().to_string();
    let fd = resock::net::connect("localhost", &port, Some(ms(2000)));
    // "localhost" may resolve to ::1 first; IPv4 is tried next within the same call.
    assert!(fd.is_ok(), "{fd:?}");
    let e =
        resock::net::connect("127.0.0.1", &dead_port().to_string(), Some(ms(2000))).unwrap_err();
    assert_eq!(e.errno(), libc::ECONNREFUSED);
    let e: Error = resock::net::connect("127.0.0.1", "not-a-port-name", None).unwrap_err();
    assert_eq!(e.errno(), libc::EINVAL);
}
