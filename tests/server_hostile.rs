//! The server under idle and hostile clients: deferred accept, the idle deadline (silent
//! and slowloris clients), the per-peer cap, the policy at max_connections, and the
//! per-request mode (parking, keep or close, a blocked handler, thousands parked at stop).
//!
//! One test at a time (`SERIAL`): several count this process's threads and fds.

#[path = "common/line_server.rs"]
mod line_server;
#[path = "common/skip.rs"]
mod skip;

use line_server::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use resock::io::{Opts, read_full, read_line, write_full};
use resock::server::{AcceptStats, AtCap, Server, ServerConfig};

/// Raises RLIMIT_NOFILE's soft limit to the hard one; false (with the reason printed) if
/// that still leaves fewer than `need` fds.
fn enough_fds(need: u64) -> bool {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid out-pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: a valid rlimit.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    if lim.rlim_cur < need {
        skip::skip(&format!(
            "RLIMIT_NOFILE's hard limit {} < {need}",
            lim.rlim_cur
        ));
        return false;
    }
    true
}

/// A per-request line echo: answers each line with "echo: LINE"; "close" closes; a line
/// that does not come within the idle timeout closes too.
fn echo_server(config: ServerConfig, served: Arc<AtomicUsize>) -> Server {
    Server::new_per_request(config, move |fd: BorrowedFd<'_>, _peer: &_| {
        let mut line = [0u8; 256];
        match read_request(fd, &mut line) {
            Some(n) => {
                served.fetch_add(1, Ordering::SeqCst);
                let text = &line[..n];
                if text == b"close\n" {
                    return false;
                }
                let mut reply = b"echo: ".to_vec();
                reply.extend_from_slice(text);
                write_full(fd, &reply, &Opts::default()).is_ok()
            }
            None => false,
        }
    })
    .unwrap()
}

fn request(stream: &mut TcpStream, line: &str) -> String {
    stream.write_all(line.as_bytes()).unwrap();
    let mut reply = String::new();
    BufReader::new(&*stream).read_line(&mut reply).unwrap();
    reply
}

fn resock_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim() == "resock-handler")
        .count()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn stop(server: &Server) -> AcceptStats {
    server.stop();
    assert_eq!(server.join(LIVENESS).unwrap(), 0);
    server.stats()
}

// ------------------------------------------------------------------ defences

#[test]
fn deferred_accept_keeps_silent_clients_from_the_handlers() {
    let _serial = serial();
    let handled = Arc::new(AtomicUsize::new(0));
    let server = {
        let handled = handled.clone();
        Server::new(
            ServerConfig {
                defer_accept: Some(Duration::from_secs(30)),
                ..local()
            },
            move |fd: OwnedFd, _| {
                handled.fetch_add(1, Ordering::SeqCst);
                let mut b = [0u8; 1];
                let _ = read_full(&fd, &mut b, &Opts::default());
                let _ = write_full(&fd, b"ok", &Opts::default());
            },
        )
        .unwrap()
    };
    let port = server.local_port().unwrap();
    server.start().unwrap();
    let silent: Vec<TcpStream> = (0..3).map(|_| connect(port)).collect();
    let mut talker = connect(port);
    talker.write_all(b"x").unwrap();
    let mut reply = [0u8; 2];
    talker.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"ok");
    // The silent ones are queued in the kernel, not accepted: no handler for them.
    thread::sleep(ms(300));
    assert_eq!(handled.load(Ordering::SeqCst), 1);
    assert_eq!(server.stats().accepted, 1);
    drop(silent);
    stop(&server);
}

#[test]
fn the_idle_timeout_frees_the_thread_of_a_silent_or_slowloris_client() {
    let _serial = serial();
    let (tx, rx) = mpsc::channel::<i32>();
    let tx = Mutex::new(tx);
    let server = Server::new(
        ServerConfig {
            idle_timeout: Some(ms(300)),
            ..local()
        },
        move |fd: OwnedFd, _| {
            // A legacy handler: read a request line, however long it takes.
            let mut line = [0u8; 64];
            let errno = match read_line(&fd, &mut line, &Opts::default()) {
                Ok(_) => 0,
                Err(e) => e.error.errno(),
            };
            let _ = tx.lock().unwrap().send(errno);
        },
    )
    .unwrap();
    let port = server.local_port().unwrap();
    server.start().unwrap();

    let mut silent = connect(port);
    assert_eq!(rx.recv_timeout(LIVENESS).unwrap(), libc::EAGAIN);
    assert!(closed_by_server(&mut silent));

    // Slowloris: one byte of the request line every second, never the newline.
    let mut slow = connect(port);
    let started = Instant::now();
    let dripping = thread::spawn(move || {
        for b in b"GET / HTTP/1.1" {
            if slow.write_all(&[*b]).is_err() {
                return (slow, true);
            }
            thread::sleep(ms(1000));
        }
        (slow, false)
    });
    assert_eq!(rx.recv_timeout(LIVENESS).unwrap(), libc::EAGAIN);
    let (mut slow, refused) = dripping.join().unwrap();
    assert!(refused || closed_by_server(&mut slow));
    println!(
        "slowloris closed after {:?} (idle timeout 300 ms)",
        started.elapsed()
    );
    let stats = stop(&server);
    assert_eq!(stats.active, 0);
    assert_eq!(stats.idle_closed, 2, "both idle clients counted: {stats:?}");
}

fn per_peer_cap(server: &Server, port: u16) {
    server.start().unwrap();
    let mut held: Vec<TcpStream> = (0..2).map(|_| connect(port)).collect();
    for s in &mut held {
        assert_eq!(request(s, "hi\n"), "echo: hi\n");
    }
    for _ in 0..2 {
        let mut extra = connect(port);
        assert!(closed_by_server(&mut extra), "a third connection was kept");
    }
    wait_for("the refusals counted", || {
        server.stats().per_peer_rejected == 2
    });
    drop(held);
    // The peer's count went down with its connections: it may connect again.
    wait_for("a new connection served", || {
        let mut again = connect(port);
        again.write_all(b"again\n").is_ok() && {
            let mut reply = String::new();
            BufReader::new(&again).read_line(&mut reply).is_ok() && reply == "echo: again\n"
        }
    });
}

#[test]
fn max_per_peer_closes_the_connections_over_the_limit_in_both_modes() {
    let _serial = serial();
    let config = ServerConfig {
        max_per_peer: 2,
        ..local()
    };
    let served = Arc::new(AtomicUsize::new(0));
    let server = echo_server(config.clone(), served);
    let port = server.local_port().unwrap();
    per_peer_cap(&server, port);
    stop(&server);

    // A thread-per-connection echo of one line per request, kept open.
    let server = Server::new(config, |fd: OwnedFd, _| {
        let mut line = [0u8; 64];
        while let Some(n) = read_request(&fd, &mut line) {
            let mut reply = b"echo: ".to_vec();
            reply.extend_from_slice(&line[..n]);
            if write_full(&fd, &reply, &Opts::default()).is_err() {
                return;
            }
        }
    })
    .unwrap();
    let port = server.local_port().unwrap();
    per_peer_cap(&server, port);
    stop(&server);
}

#[test]
fn at_the_cap_the_shed_policy_answers_at_once_in_both_modes() {
    let _serial = serial();
    // Per request: the connection parked longest makes room for the newcomer.
    let served = Arc::new(AtomicUsize::new(0));
    let server = echo_server(
        ServerConfig {
            max_connections: 2,
            ..local()
        },
        served,
    );
    let port = server.local_port().unwrap();
    server.start().unwrap();
    let mut oldest = connect(port);
    assert_eq!(request(&mut oldest, "one\n"), "echo: one\n");
    let mut second = connect(port);
    assert_eq!(request(&mut second, "two\n"), "echo: two\n");
    // The reply leaves before the handler parks the connection again: wait for both.
    wait_for("both parked", || server.stats().parked == 2);
    let mut newcomer = connect(port);
    assert_eq!(request(&mut newcomer, "three\n"), "echo: three\n");
    assert!(closed_by_server(&mut oldest), "the idlest was not shed");
    assert_eq!(request(&mut second, "still\n"), "echo: still\n");
    assert_eq!(stop(&server).shed, 1);

    // Per connection: every handler busy, so the newcomer is closed at once, not queued.
    let (tx, rx) = mpsc::channel::<()>();
    let rx = Arc::new(Mutex::new(rx));
    let server = Server::new(
        ServerConfig {
            max_connections: 2,
            ..local()
        },
        move |fd: OwnedFd, _| {
            let _ = write_full(&fd, b"busy\n", &Opts::default());
            let _ = rx.lock().unwrap().recv_timeout(LIVENESS);
        },
    )
    .unwrap();
    let port = server.local_port().unwrap();
    server.start().unwrap();
    let held: Vec<TcpStream> = (0..2).map(|_| connect(port)).collect();
    for s in &held {
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
    }
    let mut newcomer = connect(port);
    assert!(closed_by_server(&mut newcomer));
    assert_eq!(server.stats().shed, 1);
    drop(tx);
    assert_eq!(stop(&server).shed, 1);
}

#[test]
fn at_the_cap_the_wait_policy_resumes_when_a_parked_connection_ends() {
    let _serial = serial();
    let served = Arc::new(AtomicUsize::new(0));
    let server = echo_server(
        ServerConfig {
            max_connections: 1,
            at_cap: AtCap::Wait,
            ..local()
        },
        served.clone(),
    );
    let port = server.local_port().unwrap();
    server.start().unwrap();
    let mut first = connect(port);
    assert_eq!(request(&mut first, "one\n"), "echo: one\n");
    let mut second = connect(port);
    second.write_all(b"two\n").unwrap();
    thread::sleep(ms(200));
    assert_eq!(served.load(Ordering::SeqCst), 1, "served above the cap");
    assert_eq!(request(&mut first, "close\n"), "");
    let mut reply = String::new();
    BufReader::new(&second).read_line(&mut reply).unwrap();
    assert_eq!(reply, "echo: two\n");
    stop(&server);
}

// ------------------------------------------------------------------ per request

#[test]
fn per_request_connections_park_between_requests_and_close_on_request() {
    let _serial = serial();
    let served = Arc::new(AtomicUsize::new(0));
    let server = echo_server(
        ServerConfig {
            pool_threads: 2,
            ..local()
        },
        served.clone(),
    );
    let port = server.local_port().unwrap();
    server.start().unwrap();
    let mut conn = connect(port);
    for i in 0..3 {
        assert_eq!(
            request(&mut conn, &format!("r{i}\n")),
            format!("echo: r{i}\n")
        );
        wait_for("the connection parked", || server.stats().parked == 1);
    }
    // Two requests in one segment: the handler serves one, the re-park sees the second.
    conn.write_all(b"a\nb\n").unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    for want in ["echo: a\n", "echo: b\n"] {
        let mut reply = String::new();
        reader.read_line(&mut reply).unwrap();
        assert_eq!(reply, want);
    }
    assert_eq!(request(&mut conn, "close\n"), "");
    wait_for("nothing parked", || server.stats().parked == 0);
    let stats = stop(&server);
    assert_eq!((stats.accepted, served.load(Ordering::SeqCst)), (1, 6));
}

#[test]
fn per_request_idle_connections_cost_no_thread_and_idle_out() {
    let _serial = serial();
    if !enough_fds(4096) {
        return;
    }
    let served = Arc::new(AtomicUsize::new(0));
    let server = echo_server(
        ServerConfig {
            pool_threads: 4,
            idle_timeout: Some(ms(1500)),
            ..local()
        },
        served,
    );
    let port = server.local_port().unwrap();
    server.start().unwrap();
    let mut idle: Vec<TcpStream> = (0..1000).map(|_| connect(port)).collect();
    for (i, s) in idle.iter_mut().enumerate().take(50) {
        assert_eq!(request(s, &format!("{i}\n")), format!("echo: {i}\n"));
    }
    wait_for("1000 parked", || server.stats().parked == 1000);
    assert!(
        resock_threads() <= 4,
        "{} handler threads",
        resock_threads()
    );
    wait_for("every idle connection closed", || {
        server.stats().parked == 0
    });
    assert_eq!(server.stats().idle_closed, 1000);
    for s in idle.iter_mut().take(10) {
        assert!(closed_by_server(s));
    }
    stop(&server);
}

#[test]
fn eleven_hundred_silent_clients_cannot_lock_out_a_request() {
    let _serial = serial();
    if !enough_fds(8192) {
        return;
    }
    // Per request, shedding at the default cap of 1024: the request gets an answer.
    let served = Arc::new(AtomicUsize::new(0));
    let server = echo_server(local(), served);
    let port = server.local_port().unwrap();
    server.start().unwrap();
    let silent: Vec<TcpStream> = (0..1100).map(|_| connect(port)).collect();
    wait_for("the silent ones held", || server.stats().parked >= 1000);
    let started = Instant::now();
    let mut legit = connect(port);
    assert_eq!(request(&mut legit, "GET\n"), "echo: GET\n");
    println!("per request: answered in {:?}", started.elapsed());
    drop(silent);
    stop(&server);

    // Per connection, with deferred accept: the silent ones never reach a handler.
    let server = Server::new(
        ServerConfig {
            defer_accept: Some(Duration::from_secs(30)),
            ..local()
        },
        |fd: OwnedFd, _| {
            let mut line = [0u8; 64];
            if let Some(n) = read_request(&fd, &mut line) {
                let _ = write_full(&fd, &line[..n], &Opts::default());
            }
        },
    )
    .unwrap();
    let port = server.local_port().unwrap();
    server.start().unwrap();
    let silent: Vec<TcpStream> = (0..1100).map(|_| connect(port)).collect();
    let started = Instant::now();
    let mut legit = connect(port);
    assert_eq!(request(&mut legit, "GET\n"), "GET\n");
    println!(
        "per connection, deferred: answered in {:?}",
        started.elapsed()
    );
    drop(silent);
    stop(&server);
}

#[test]
fn stop_and_drop_with_thousands_parked_close_every_connection() {
    let _serial = serial();
    if !enough_fds(8192) {
        return;
    }
    let fds_before = open_fds();
    let served = Arc::new(AtomicUsize::new(0));
    let server = echo_server(
        ServerConfig {
            max_connections: 4096,
            ..local()
        },
        served,
    );
    let port = server.local_port().unwrap();
    server.start().unwrap();
    let mut clients: Vec<TcpStream> = (0..2000).map(|_| connect(port)).collect();
    wait_for("2000 parked", || server.stats().parked == 2000);
    let started = Instant::now();
    server.stop();
    assert_eq!(server.join(LIVENESS).unwrap(), 0);
    drop(server);
    println!(
        "stop + join + drop with 2000 parked: {:?}",
        started.elapsed()
    );
    for c in clients.iter_mut() {
        assert!(closed_by_server(c));
    }
    drop(clients);
    wait_for("the fds back", || open_fds() <= fds_before);
}

#[test]
fn a_blocked_request_handler_holds_one_pool_thread_only() {
    let _serial = serial();
    let (tx, rx) = mpsc::channel::<()>();
    let rx = Mutex::new(rx);
    let server = Server::new_per_request(
        ServerConfig {
            pool_threads: 2,
            ..local()
        },
        move |fd: BorrowedFd<'_>, _peer: &_| {
            let mut line = [0u8; 64];
            let Some(n) = read_request(fd, &mut line) else {
                return false;
            };
            if &line[..n] == b"block\n" {
                let _ = rx.lock().unwrap().recv_timeout(LIVENESS * 2);
            }
            write_full(fd, &line[..n], &Opts::default()).is_ok()
        },
    )
    .unwrap();
    let port = server.local_port().unwrap();
    server.start().unwrap();
    let mut blocker = connect(port);
    blocker.write_all(b"block\n").unwrap();
    wait_for("the blocked handler", || server.stats().active == 1);
    let mut others: Vec<TcpStream> = (0..20).map(|_| connect(port)).collect();
    for (i, s) in others.iter_mut().enumerate() {
        assert_eq!(request(s, &format!("{i}\n")), format!("{i}\n"));
    }
    // The last reply leaves before its handler returns: wait for the blocked one alone.
    wait_for("only the blocked handler", || server.stats().active == 1);
    server.stop();
    assert_eq!(server.join(ms(0)).unwrap(), 1, "the blocked handler runs");
    drop(tx);
    assert_eq!(server.join(LIVENESS).unwrap(), 0);
    assert!(closed_by_server(&mut blocker));
}
