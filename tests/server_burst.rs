//! `ab -c 1000` in a test: 1000 clients connect at once to slow handlers. With the default
//! backlog (the kernel's maximum) every client gets its reply and none is reset; with a
//! backlog of 8 the accept queue overflows (TcpExt ListenOverflows rises) — the kernel
//! drops the handshakes it has no room for, and the clients' retransmissions, or with
//! net.ipv4.tcp_abort_on_overflow=1 an RST, are what `ab` reports as
//! "apr_socket_recv: Connection reset by peer (104)".
//!
//! Alone in its binary: the overflow counter is per network namespace, and no other test
//! may overflow a queue meanwhile.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use resock::io::{Opts, read_full, write_full};
use resock::server::{Server, ServerConfig};

const CLIENTS: usize = 1000;

/// What each client sends, as `ab` does: the server must read it before closing, or the
/// close with unread data would itself send an RST.
const REQUEST: &[u8] = b"GET / HTTP/1.0\r\n\r\n";

/// TcpExt ListenOverflows from /proc/net/netstat, if readable.
fn listen_overflows() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next()?, lines.next()?);
    let at = names
        .split_whitespace()
        .position(|n| n == "ListenOverflows")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// Raises the fd limit for 1000 client and 1000 server sockets; false if the hard limit
/// is too low.
fn enough_fds() -> bool {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    let want = (3 * CLIENTS) as libc::rlim_t;
    if lim.rlim_max < want {
        return false;
    }
    lim.rlim_cur = lim.rlim_cur.max(want);
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 }
}

struct Burst {
    replies: usize,
    resets: usize,
    timeouts: usize,
    other_errors: Vec<String>,
    slowest_connect: Duration,
    overflows: Option<u64>,
}

fn burst(backlog: i32) -> Burst {
    let server = Server::new(
        ServerConfig {
            backlog,
            ..ServerConfig::new(Some("127.0.0.1"), "0")
        },
        |fd: OwnedFd, _| {
            let mut request = [0u8; REQUEST.len()];
            if read_full(
                &fd,
                &mut request,
                &Opts::with_timeout(Duration::from_secs(30)),
            )
            .is_ok()
            {
                thread::sleep(Duration::from_millis(20)); // a slow handler
                let _ = write_full(&fd, b"HTTP/1.0 200 OK\r\n\r\nok", &Opts::default());
            }
        },
    )
    .unwrap();
    let port = server.local_port().unwrap();
    server.start().unwrap();
    let before = listen_overflows();
    let start = Arc::new(Barrier::new(CLIENTS));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let start = start.clone();
            thread::Builder::new()
                .stack_size(64 << 10)
                .spawn(move || {
                    start.wait();
                    let t0 = Instant::now();
                    let stream = TcpStream::connect(("127.0.0.1", port))?;
                    let took = t0.elapsed();
                    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
                    (&stream).write_all(REQUEST)?;
                    let mut reply = Vec::new();
                    (&stream).read_to_end(&mut reply)?;
                    Ok::<_, std::io::Error>((took, reply.ends_with(b"ok")))
                })
                .unwrap()
        })
        .collect();
    let mut result = Burst {
        replies: 0,
        resets: 0,
        timeouts: 0,
        other_errors: Vec::new(),
        slowest_connect: Duration::ZERO,
        overflows: None,
    };
    for c in clients {
        match c.join().unwrap() {
            Ok((took, ok)) => {
                result.replies += usize::from(ok);
                result.slowest_connect = result.slowest_connect.max(took);
            }
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => result.resets += 1,
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => result.timeouts += 1,
            Err(e) => result.other_errors.push(e.to_string()),
        }
    }
    result.overflows = before.zip(listen_overflows()).map(|(a, b)| b - a);
    server.stop();
    assert_eq!(server.join(Duration::from_secs(10)).unwrap(), 0);
    // Every reply came from an accepted connection.
    assert!(server.stats().accepted as usize >= result.replies);
    result
}

#[test]
fn a_thousand_clients_at_once_with_the_default_backlog_and_with_eight() {
    if !enough_fds() {
        println!(
            "skipped: RLIMIT_NOFILE's hard limit is below {}",
            3 * CLIENTS
        );
        return;
    }
    let full = burst(0);
    println!(
        "backlog max: {} replies, {} resets, {} timeouts, slowest connect {:?}, ListenOverflows +{:?}",
        full.replies, full.resets, full.timeouts, full.slowest_connect, full.overflows
    );
    assert_eq!(full.replies, CLIENTS, "errors: {:?}", full.other_errors);
    assert_eq!((full.resets, full.timeouts), (0, 0));
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if somaxconn >= CLIENTS {
        assert_eq!(
            full.overflows.unwrap_or(0),
            0,
            "the accept queue overflowed"
        );
    } else {
        println!("net.core.somaxconn = {somaxconn} < {CLIENTS}: overflow-free not asserted");
    }

    let small = burst(8);
    println!(
        "backlog 8: {} replies, {} resets, {} timeouts, slowest connect {:?}, ListenOverflows +{:?}",
        small.replies, small.resets, small.timeouts, small.slowest_connect, small.overflows
    );
    assert_eq!(
        small.replies + small.resets + small.timeouts + small.other_errors.len(),
        CLIENTS
    );
    // The difference, and its cause: the small queue overflowed, so handshakes were
    // dropped and had to be retransmitted (or reset), where the full backlog lost none.
    match small.overflows {
        Some(n) => assert!(n > 0, "a backlog of 8 must overflow under 1000 SYNs"),
        None => println!("/proc/net/netstat unreadable: overflow count not checked"),
    }
    assert!(
        small.slowest_connect >= Duration::from_millis(900) || small.resets + small.timeouts > 0,
        "no client of the small backlog waited for a retransmission or failed"
    );
}
