//! Adversarial reproducers against the reconnecting client's protocol features and Happy
//! Eyeballs. Each test states the promise it attacks; a failing test is a finding.
//! Run: cargo test --features test-hooks --test attack_client

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::mpsc::{Sender, channel};
use std::thread;
use std::time::Duration;

use resock::Class;
use resock::client::{Client, ClientConfig, Mode, Session};
use resock::dial::{DialConfig, State, StateChange};
use resock::test_hooks::resolve_as;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Generous liveness bound.
const LIVENESS: Duration = Duration::from_secs(20);

/// Accepts connections on 127.0.0.1 and hands each stream to the test through a channel
/// (the test decides how the peer behaves).
fn accepting_server() -> (u16, std::sync::mpsc::Receiver<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = channel();
    thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { return };
            if tx.send(s).is_err() {
                return;
            }
        }
    });
    (port, rx)
}

/// Bytes queued unread in a socket's receive queue (FIONREAD).
fn unread(s: &TcpStream) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: a valid socket and an int out-parameter.
    unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONREAD, &mut n) };
    n as usize
}

/// Records every on_disconnect and reports Connected.
struct Recorder {
    disconnects: Sender<(Class, i32)>,
    connected: Sender<()>,
}

impl Session for Recorder {
    fn on_record(&mut self, _record: &[u8]) {}
    fn on_state(&mut self, change: &StateChange) {
        if change.state == State::Connected {
            let _ = self.connected.send(());
        }
    }
    fn on_disconnect(&mut self, class: Class, errno: i32, _lived: Duration) {
        let _ = self.disconnects.send((class, errno));
    }
}

fn dial(port: u16) -> DialConfig {
    let mut d = DialConfig::new("127.0.0.1", &port.to_string());
    d.connect_timeout = Some(ms(5000));
    d
}

/// Starts a sender that writes 64 MiB (blocking: no deadline) once the client is
/// connected, and waits until the peer's receive queue holds more than 32 KiB — the send
/// is then certainly part-way through and blocked on a full buffer.
fn blocked_sender(client: &Arc<Client>, peer: &TcpStream) -> thread::JoinHandle<()> {
    let sender = {
        let client = client.clone();
        thread::spawn(move || {
            let _ = client.send(&vec![7u8; 64 << 20]);
        })
    };
    let start = std::time::Instant::now();
    while unread(peer) < 32 << 10 {
        assert!(
            start.elapsed() < LIVENESS,
            "the sender never filled the pipe"
        );
        thread::sleep(ms(5));
    }
    sender
}

/// Promise (resock_client_config.idle_timeout_ms): "if still nothing arrives within
/// another idle_timeout_ms, the client hangs up with ETIMEDOUT (RESOCK_CLASS_TIMEOUT)".
/// The hung peer of issue 13 (SIGSTOPped: its kernel acknowledges, nothing is read or
/// written) while an application thread is blocked in resock_client_send: the heartbeat's
/// shutdown makes that send fail part-way, and the send's EPIPE overwrites the reason.
#[test]
fn heartbeat_timeout_is_reported_as_etimedout_even_with_a_blocked_sender() {
    let (port, accepted) = accepting_server();
    let (dtx, drx) = channel();
    let (ctx, crx) = channel();
    let config = ClientConfig {
        idle_timeout: Some(ms(1000)),
        ..ClientConfig::new(dial(port), Mode::Records(8))
    };
    let client = Arc::new(
        Client::start(
            config,
            Recorder {
                disconnects: dtx,
                connected: ctx,
            },
        )
        .unwrap(),
    );
    let peer = accepted.recv_timeout(LIVENESS).unwrap();
    crx.recv_timeout(LIVENESS).unwrap();
    let sender = blocked_sender(&client, &peer);
    let reason = drx
        .recv_timeout(LIVENESS)
        .expect("the heartbeat never hung up");
    client.stop();
    client.join(Some(LIVENESS)).unwrap();
    sender.join().unwrap();
    drop(peer);
    assert_eq!(
        reason,
        (Class::Timeout, libc::ETIMEDOUT),
        "the heartbeat hung up, but on_disconnect was told otherwise"
    );
    assert_eq!(client.stats().last_errno, libc::ETIMEDOUT);
}

/// Promise (on_disconnect): "the read error or EOF (RESOCK_CLASS_EOF, errno 0) that ended
/// the records loop"; stats.eofs: "Connections that ended with an orderly EOF". The peer
/// closes its side while a sender is blocked: the records loop ends with EOF, the client's
/// own retiring shutdown tears the blocked send, and its EPIPE replaces the EOF.
#[test]
fn an_eof_is_reported_as_eof_even_with_a_blocked_sender() {
    let (port, accepted) = accepting_server();
    let (dtx, drx) = channel();
    let (ctx, crx) = channel();
    let client = Arc::new(
        Client::start(
            ClientConfig::new(dial(port), Mode::Records(8)),
            Recorder {
                disconnects: dtx,
                connected: ctx,
            },
        )
        .unwrap(),
    );
    let peer = accepted.recv_timeout(LIVENESS).unwrap();
    crx.recv_timeout(LIVENESS).unwrap();
    let sender = blocked_sender(&client, &peer);
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    let reason = drx.recv_timeout(LIVENESS).expect("the EOF was never seen");
    client.stop();
    client.join(Some(LIVENESS)).unwrap();
    sender.join().unwrap();
    drop(peer);
    assert_eq!(
        reason,
        (Class::Eof, 0),
        "the peer's EOF was reported otherwise"
    );
    assert_eq!(client.stats().eofs, 1);
}

/// Promise (resock_connect, README "Happy Eyeballs"): "the next attempt started 250 ms
/// after the previous one unless that failed sooner". Addresses in race order: a black
/// hole (IPv4), an IPv6 link-local address without a scope (connect fails at once with
/// EINVAL, no packet sent), then an answering IPv4 address. The second attempt fails the
/// moment it starts (t = 250 ms), so the third must start then — well inside a 490 ms
/// connect timeout. The race instead keeps the 250 ms stagger after an attempt that
/// failed at once, starts the third at 500 ms, past the deadline, and times out.
#[test]
fn an_attempt_that_fails_at_once_does_not_delay_the_next() {
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: a valid socket.
    unsafe { libc::listen(hole.as_raw_fd(), 0) };
    let hole_addr = hole.local_addr().unwrap();
    let mut queued = Vec::new();
    for _ in 0..64 {
        match TcpStream::connect_timeout(&hole_addr, ms(500)) {
            Ok(s) => queued.push(s),
            Err(_) => break,
        }
    }
    let answer = TcpListener::bind("127.0.0.1:0").unwrap();
    let answer_addr = answer.local_addr().unwrap();
    let fails_at_once: SocketAddr = "[fe80::1]:9".parse().unwrap();
    let _names = resolve_as(
        "attack-he-fail-at-once.test",
        vec![hole_addr, fails_at_once, answer_addr],
    );
    let result = resock::net::connect("attack-he-fail-at-once.test", "1", Some(ms(490)));
    drop(queued);
    assert!(
        result.is_ok(),
        "the answering address was never tried in time: {:?}",
        result.err()
    );
}

/// The reference for the test above: with the failing address removed the answering one
/// starts at 250 ms and connects within the same 490 ms (so the failure above is the
/// stagger kept after a failed attempt, not the machine's speed).
#[test]
fn reference_the_answering_address_at_250_ms_fits_in_490_ms() {
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: a valid socket.
    unsafe { libc::listen(hole.as_raw_fd(), 0) };
    let hole_addr = hole.local_addr().unwrap();
    let mut queued = Vec::new();
    for _ in 0..64 {
        match TcpStream::connect_timeout(&hole_addr, ms(500)) {
            Ok(s) => queued.push(s),
            Err(_) => break,
        }
    }
    let answer = TcpListener::bind("127.0.0.1:0").unwrap();
    let _names = resolve_as(
        "attack-he-reference.test",
        vec![hole_addr, answer.local_addr().unwrap()],
    );
    let result = resock::net::connect("attack-he-reference.test", "1", Some(ms(490)));
    drop(queued);
    assert!(result.is_ok(), "{:?}", result.err());
}

/// A session whose heartbeat pings by writing "PING\n" straight to the fd, as the header
/// tells on_idle to ("write the ping to `fd`").
struct Pinger {
    connected: Sender<()>,
}

impl Session for Pinger {
    fn on_record(&mut self, _record: &[u8]) {}
    fn on_state(&mut self, change: &StateChange) {
        if change.state == State::Connected {
            let _ = self.connected.send(());
        }
    }
    fn heartbeat(&mut self) -> Option<resock::client::OnIdle> {
        Some(Box::new(|fd| {
            let _ = resock::io::write_full(fd, b"PING\n", &resock::io::Opts::default());
            true
        }))
    }
}

/// Promise (resock_client_send): "serialised with other senders" — a message is never
/// interleaved with other bytes. But on_idle is told to "write the ping to `fd`", which
/// bypasses that serialisation: a ping due while a big message is part-way out lands in
/// the middle of it, and the peer sees a torn message. The peer here reads nothing until
/// the ping is due (the sender blocks part-way), then reads everything.
#[test]
fn a_heartbeat_ping_never_lands_inside_a_sent_message() {
    use std::io::Read;
    let (port, accepted) = accepting_server();
    let (ctx, crx) = channel();
    let config = ClientConfig {
        idle_timeout: Some(ms(300)),
        ..ClientConfig::new(dial(port), Mode::Records(8))
    };
    let client = Arc::new(Client::start(config, Pinger { connected: ctx }).unwrap());
    let mut peer = accepted.recv_timeout(LIVENESS).unwrap();
    crx.recv_timeout(LIVENESS).unwrap();
    const MESSAGE: usize = 8 << 20;
    let sender = {
        let client = client.clone();
        thread::spawn(move || client.send(&vec![b'7'; MESSAGE]))
    };
    // The message is part-way out and blocked; the ping falls due meanwhile.
    thread::sleep(ms(600));
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    peer.set_read_timeout(Some(ms(2000))).unwrap();
    while got.len() < MESSAGE + 5 {
        match peer.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    client.stop();
    client.join(Some(LIVENESS)).unwrap();
    let _ = sender.join().unwrap();
    let at = got.windows(5).position(|w| w == b"PING\n");
    if let Some(at) = at {
        assert!(
            at == 0 || at >= MESSAGE,
            "the ping landed at byte {at}, inside the {MESSAGE}-byte message"
        );
    }
}

/// Refuses every handshake and counts disconnects.
struct Refuser {
    disconnects: Sender<(Class, i32)>,
}

impl Session for Refuser {
    fn on_connect(&mut self, _fd: std::os::fd::BorrowedFd<'_>) -> bool {
        false
    }
    fn on_record(&mut self, _record: &[u8]) {}
    fn on_disconnect(&mut self, class: Class, errno: i32, _lived: Duration) {
        let _ = self.disconnects.send((class, errno));
    }
}

/// Held: a refused handshake is a flap however long stable_after is, and the stats
/// invariant attempts == connects + failures holds across refusals and a stop.
#[test]
fn held_refused_handshakes_are_flaps_and_the_counts_add_up() {
    let (port, accepted) = accepting_server();
    thread::spawn(move || {
        let mut keep = Vec::new();
        while let Ok(s) = accepted.recv() {
            keep.push(s);
        }
    });
    let (dtx, drx) = channel();
    let mut d = dial(port);
    d.backoff.initial = ms(1);
    d.backoff.max = ms(5);
    d.backoff.stable_after = ms(1);
    let client = Client::start(
        ClientConfig::new(d, Mode::Records(8)),
        Refuser { disconnects: dtx },
    )
    .unwrap();
    for _ in 0..3 {
        assert_eq!(drx.recv_timeout(LIVENESS).unwrap(), (Class::Ok, 0));
    }
    client.stop();
    client.join(Some(LIVENESS)).unwrap();
    let s = client.stats();
    assert_eq!(s.attempts, s.connects + s.failures, "{s:?}");
    assert_eq!(
        s.flaps, s.connects,
        "every refused handshake is a flap: {s:?}"
    );
}
