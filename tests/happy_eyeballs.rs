//! Happy Eyeballs v2 (RFC 8305) in resock_connect and the dialer: with one address that
//! black-holes (a listener whose accept queue is full drops every SYN) and one that
//! answers, the connection comes through the answering one long before the black hole's
//! connect timeout; refusals move on at once; a stop ends the race.

mod common;

use std::ffi::CString;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use resock::dial::{DialConfig, Dialer};
use resock::test_hooks::resolve_as;

/// Far below the 20 s connect timeout the tests give, far above the 250 ms stagger.
const WELL_BELOW_TIMEOUT: Duration = Duration::from_secs(8);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

unsafe extern "C" {
    fn resock_connect(
        host: *const libc::c_char,
        port: *const libc::c_char,
        ms: libc::c_int,
    ) -> libc::c_int;
}

/// A listener on `ip` whose accept queue is full: the kernel drops further SYNs, so a
/// connect to it hangs until its timeout.
fn black_hole(ip: &str) -> Option<(TcpListener, Vec<TcpStream>)> {
    let listener = TcpListener::bind((ip, 0)).ok()?;
    // SAFETY: a valid socket.
    unsafe { libc::listen(listener.as_raw_fd(), 0) };
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    for _ in 0..64 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(s) => queued.push(s),
            Err(_) => return Some((listener, queued)),
        }
    }
    panic!("the accept queue never filled");
}

/// The black hole on IPv6 loopback where it exists (the interleaving case), else on IPv4.
fn hole() -> (TcpListener, Vec<TcpStream>) {
    black_hole("::1").unwrap_or_else(|| {
        println!("no ::1 here: both addresses are IPv4");
        black_hole("127.0.0.1").unwrap()
    })
}

fn peer_port(fd: &OwnedFd) -> u16 {
    socket2::SockRef::from(fd)
        .peer_addr()
        .unwrap()
        .as_socket()
        .unwrap()
        .port()
}

#[test]
fn a_black_holed_first_address_costs_the_stagger_not_the_connect_timeout() {
    let (hole, _queued) = hole();
    let live = TcpListener::bind("127.0.0.1:0").unwrap();
    let addrs: Vec<SocketAddr> = vec![hole.local_addr().unwrap(), live.local_addr().unwrap()];
    let _dns = resolve_as("he-hole-first.test", addrs);
    let t = Instant::now();
    let fd = resock::net::connect("he-hole-first.test", "1", Some(CONNECT_TIMEOUT)).unwrap();
    let took = t.elapsed();
    assert!(took < WELL_BELOW_TIMEOUT, "took {took:?}");
    assert_eq!(peer_port(&fd), live.local_addr().unwrap().port());
    println!("connected through the second address in {took:?}");
}

#[test]
fn the_dialer_races_too() {
    let (hole, _queued) = hole();
    let live = TcpListener::bind("127.0.0.1:0").unwrap();
    let addrs = vec![hole.local_addr().unwrap(), live.local_addr().unwrap()];
    let _dns = resolve_as("he-dialer.test", addrs);
    let dialer = Dialer::new(DialConfig {
        connect_timeout: Some(CONNECT_TIMEOUT),
        ..DialConfig::new("he-dialer.test", "1")
    })
    .unwrap();
    let t = Instant::now();
    let fd = dialer.dial().unwrap();
    assert!(t.elapsed() < WELL_BELOW_TIMEOUT, "took {:?}", t.elapsed());
    assert_eq!(peer_port(&fd), live.local_addr().unwrap().port());
    dialer.hangup(fd).unwrap();
}

#[test]
fn resock_connect_races_from_c() {
    let (hole, _queued) = hole();
    let live = TcpListener::bind("127.0.0.1:0").unwrap();
    let addrs = vec![hole.local_addr().unwrap(), live.local_addr().unwrap()];
    let _dns = resolve_as("he-c.test", addrs);
    let host = CString::new("he-c.test").unwrap();
    let port = CString::new("1").unwrap();
    let t = Instant::now();
    let fd = unsafe { resock_connect(host.as_ptr(), port.as_ptr(), 20_000) };
    assert!(fd >= 0, "errno {}", common::errno());
    assert!(t.elapsed() < WELL_BELOW_TIMEOUT, "took {:?}", t.elapsed());
    // SAFETY: the fd resock_connect returned is ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    assert_eq!(peer_port(&fd), live.local_addr().unwrap().port());
}

#[test]
fn refused_addresses_move_on_at_once_and_the_last_error_is_reported() {
    let dead: Vec<SocketAddr> = (0..3)
        .map(|_| {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
        })
        .collect();
    let _dns = resolve_as("he-refused.test", dead);
    let t = Instant::now();
    let err = resock::net::connect("he-refused.test", "1", Some(CONNECT_TIMEOUT)).unwrap_err();
    assert_eq!(err.errno(), libc::ECONNREFUSED);
    // Each refusal starts the next attempt without waiting out the stagger.
    assert!(t.elapsed() < WELL_BELOW_TIMEOUT, "took {:?}", t.elapsed());
}

#[test]
fn only_black_holes_time_out_at_the_connect_timeout() {
    let (hole, _queued) = hole();
    let _dns = resolve_as("he-all-holes.test", vec![hole.local_addr().unwrap()]);
    let t = Instant::now();
    let err = resock::net::connect("he-all-holes.test", "1", Some(Duration::from_millis(400)))
        .unwrap_err();
    assert_eq!(err.errno(), libc::ETIMEDOUT);
    assert!(t.elapsed() >= Duration::from_millis(400));
}

#[test]
fn stop_ends_a_race_between_black_holes() {
    let (hole_a, _qa) = hole();
    let (hole_b, _qb) = black_hole("127.0.0.1").unwrap();
    let _dns = resolve_as(
        "he-stop.test",
        vec![hole_a.local_addr().unwrap(), hole_b.local_addr().unwrap()],
    );
    let dialer = std::sync::Arc::new(
        Dialer::new(DialConfig {
            connect_timeout: Some(CONNECT_TIMEOUT),
            ..DialConfig::new("he-stop.test", "1")
        })
        .unwrap(),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let dialing = {
        let dialer = dialer.clone();
        std::thread::spawn(move || {
            // The second wait: both attempts are in flight.
            let hook = resock::test_hooks::arm_this_thread("net.race_wait", 1);
            tx.send(hook).unwrap();
            dialer.dial()
        })
    };
    let hook = rx.recv().unwrap();
    assert!(hook.wait_arrived(CONNECT_TIMEOUT));
    dialer.stop();
    let t = Instant::now();
    hook.release();
    let err = dialing.join().unwrap().unwrap_err();
    assert_eq!(err.errno(), libc::ECANCELED);
    assert!(t.elapsed() < WELL_BELOW_TIMEOUT, "took {:?}", t.elapsed());
}
