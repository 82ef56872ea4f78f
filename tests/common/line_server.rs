//! Helpers for the server tests that talk a line protocol to a resock Server on loopback:
//! one test at a time, generous waits, and the client's view of the connection.
#![allow(dead_code)]

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use resock::io::{Line, LineEnd, Opts, read_line};
use resock::server::ServerConfig;

/// Generous: every wait is for something that takes milliseconds when it works.
pub const LIVENESS: Duration = Duration::from_secs(20);

/// One test at a time: the tests count this process's threads, fds and CPU time, and
/// some arm process-wide pause points.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// A server config on 127.0.0.1, port 0, otherwise the defaults.
pub fn local() -> ServerConfig {
    ServerConfig::new(Some("127.0.0.1"), "0")
}

pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIVENESS;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(ms(2));
    }
}

/// A client connection whose reads give up after LIVENESS.
pub fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(LIVENESS)).unwrap();
    s
}

/// True once the server has closed `s` (EOF or a reset), within LIVENESS.
pub fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut byte = [0u8; 64];
    loop {
        match s.read(&mut byte) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// One request line from `fd` (its newline included), or None at EOF, on an error, or for
/// a line too long for `buf`.
pub fn read_request(fd: impl AsFd, buf: &mut [u8]) -> Option<usize> {
    match read_line(fd, buf, &Opts::default()) {
        Ok(Line {
            len,
            end: LineEnd::Newline,
        }) => Some(len),
        _ => None,
    }
}
