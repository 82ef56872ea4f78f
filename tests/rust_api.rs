//! The safe Rust API: the same loops as the C calls, with the count in the error.

use std::io::{IoSlice, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use resock::io::{LineEnd, Opts, read_full, read_line, write_full, write_vectored_full};
use resock::{Class, Error};

fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    (client, listener.accept().unwrap().0)
}

#[test]
fn partial_carries_the_count_and_the_errno() {
    let (a, b) = tcp_pair();
    (&a).write_all(b"abc").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    unsafe {
        libc::setsockopt(
            a.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as u32,
        )
    };
    drop(a);
    std::thread::sleep(Duration::from_millis(20));
    let mut buf = [0u8; 8];
    let stopped = read_full(&b, &mut buf, &Opts::default()).unwrap_err();
    assert_eq!(stopped.done, 3);
    assert_eq!(stopped.error.errno(), libc::ECONNRESET);
    assert_eq!(stopped.error.class(), Class::Reset);
    assert!(resock::error::should_reconnect(stopped.error.errno()));
    assert_eq!(
        stopped.to_string(),
        format!("{} (after 3 bytes)", stopped.error)
    );
    assert!(std::error::Error::source(&stopped).is_some());
}

#[test]
fn a_deadline_is_timed_out_with_the_count() {
    let (mut a, b) = UnixStream::pair().unwrap();
    a.write_all(&[1; 5]).unwrap();
    let mut buf = [0u8; 10];
    let stopped =
        read_full(&b, &mut buf, &Opts::with_timeout(Duration::from_millis(30))).unwrap_err();
    assert!(matches!(stopped.error, Error::TimedOut));
    assert_eq!((stopped.done, stopped.error.errno()), (5, libc::ETIMEDOUT));
    assert_eq!(stopped.error.class(), Class::Timeout);
}

#[test]
fn eof_is_an_error_with_errno_zero() {
    let (a, b) = UnixStream::pair().unwrap();
    drop(a);
    let stopped = read_full(&b, &mut [0u8; 4], &Opts::default()).unwrap_err();
    assert!(matches!(stopped.error, Error::Eof));
    assert_eq!((stopped.done, stopped.error.errno()), (0, 0));
    assert_eq!(stopped.error.class(), Class::Eof);
}

#[test]
fn write_to_a_closed_peer_is_epipe() {
    let (a, b) = UnixStream::pair().unwrap();
    drop(b);
    let stopped = write_full(&a, b"x", &Opts::default()).unwrap_err();
    assert_eq!(stopped.error.errno(), libc::EPIPE);
    assert_eq!(stopped.error.class(), Class::Pipe);
}

#[test]
fn vectored_and_line_reads_round_trip() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut bufs = [IoSlice::new(b"GET /\n"), IoSlice::new(b"body")];
    write_vectored_full(&a, &mut bufs, &Opts::default()).unwrap();
    drop(a);
    let mut line = [0u8; 32];
    let got = read_line(&b, &mut line, &Opts::default()).unwrap();
    assert_eq!(
        (&line[..got.len], got.end),
        (&b"GET /\n"[..], LineEnd::Newline)
    );
    let got = read_line(&b, &mut line[..2], &Opts::default()).unwrap();
    assert_eq!((&line[..got.len], got.end), (&b"bo"[..], LineEnd::Full));
    let got = read_line(&b, &mut line, &Opts::default()).unwrap();
    assert_eq!((&line[..got.len], got.end), (&b"dy"[..], LineEnd::Eof));
}

#[test]
fn explain_and_classify_cover_every_int() {
    for e in (-5..200).chain([i32::MIN, i32::MAX]) {
        let text = resock::error::explain(e);
        assert!(!text.to_bytes().is_empty());
        let _ = resock::error::classify(e);
    }
}
