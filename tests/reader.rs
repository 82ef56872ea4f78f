//! The buffered reader (`resock_reader_*`) as a C caller uses it: tiny buffers, lines across
//! buffer boundaries, lines too long, a deadline in the middle of a line, EOF, and readn,
//! readline and take mixed on one stream; the Rust type through std's BufRead.

mod common;

use std::io::{BufRead, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::time::Duration;

use common::*;
use resock::io::{LineEnd, Opts};
use resock::reader::Reader;

#[repr(C)]
struct CReader {
    _opaque: [u8; 0],
}

unsafe extern "C" {
    fn resock_reader_new(fd: c_int, bufsize: size_t) -> *mut CReader;
    fn resock_reader_readn(
        r: *mut CReader,
        buf: *mut c_void,
        n: size_t,
        opts: *const IoOpts,
        done: *mut size_t,
    ) -> ssize_t;
    fn resock_reader_readline(
        r: *mut CReader,
        buf: *mut c_void,
        maxlen: size_t,
        opts: *const IoOpts,
        done: *mut size_t,
    ) -> ssize_t;
    fn resock_reader_buffered(r: *const CReader) -> size_t;
    fn resock_reader_take(r: *mut CReader, buf: *mut c_void, n: size_t) -> size_t;
    fn resock_reader_free(r: *mut CReader);
}

/// A reader handle that is freed at the end of the test.
struct R(*mut CReader);

// SAFETY: the handle is documented as usable from any thread (one consumer at a time).
unsafe impl Send for R {}
unsafe impl Sync for R {}

impl Drop for R {
    fn drop(&mut self) {
        unsafe { resock_reader_free(self.0) };
    }
}

fn reader(fd: c_int, bufsize: usize) -> R {
    let r = unsafe { resock_reader_new(fd, bufsize) };
    assert!(!r.is_null(), "resock_reader_new: errno {}", errno());
    R(r)
}

/// resock_reader_readline: (return, errno, *done, the string stored).
fn readline(r: &R, maxlen: usize, o: Option<&IoOpts>) -> (isize, i32, usize, Vec<u8>) {
    let mut buf = vec![0xAAu8; maxlen];
    let mut done = usize::MAX;
    set_errno(4242);
    let rc = unsafe {
        resock_reader_readline(
            r.0,
            buf.as_mut_ptr().cast(),
            maxlen,
            o.map_or(std::ptr::null(), |o| o),
            &mut done,
        )
    };
    let e = errno();
    let nul = buf.iter().position(|&b| b == 0).expect("NUL-terminated");
    buf.truncate(nul);
    (rc, e, done, buf)
}

fn readn(r: &R, n: usize, o: Option<&IoOpts>) -> (isize, i32, usize, Vec<u8>) {
    let mut buf = vec![0u8; n];
    let mut done = usize::MAX;
    set_errno(4242);
    let rc = unsafe {
        resock_reader_readn(
            r.0,
            buf.as_mut_ptr().cast(),
            n,
            o.map_or(std::ptr::null(), |o| o),
            &mut done,
        )
    };
    let e = errno();
    buf.truncate(done.min(n));
    (rc, e, done, buf)
}

fn take(r: &R, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    let got = unsafe { resock_reader_take(r.0, buf.as_mut_ptr().cast(), n) };
    buf.truncate(got);
    buf
}

#[test]
fn tiny_buffers_return_every_line_whole() {
    let text = b"a\nbb\nccc\n\nddddddddddddddddddddddddddd\nlast";
    for bufsize in [1, 2, 3, 5, 7, 64] {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(text).unwrap();
        drop(a);
        let r = reader(b.as_raw_fd(), bufsize);
        let mut got = Vec::new();
        loop {
            let (rc, e, done, line) = readline(&r, 64, None);
            assert!(rc >= 0, "bufsize {bufsize}: errno {e}");
            assert_eq!(done, rc as usize);
            if rc == 0 {
                assert_eq!(e, 0, "EOF sets errno 0");
                break;
            }
            assert_eq!(line.len(), rc as usize);
            got.push(line);
        }
        let want: Vec<&[u8]> = vec![
            b"a\n",
            b"bb\n",
            b"ccc\n",
            b"\n",
            b"ddddddddddddddddddddddddddd\n",
            b"last",
        ];
        assert_eq!(got, want, "bufsize {bufsize}");
    }
}

#[test]
fn lines_across_buffer_boundaries_arrive_whole_whatever_the_pieces() {
    let lines: Vec<Vec<u8>> = (0..300)
        .map(|i| {
            let mut l = pattern(i % 37 + 1, i as u64)
                .into_iter()
                .map(|b| b'a' + b % 26)
                .collect::<Vec<_>>();
            l.push(b'\n');
            l
        })
        .collect();
    let all: Vec<u8> = lines.concat();
    let (a, b) = tcp_pair();
    let writer = std::thread::spawn(move || {
        let mut a = a;
        // Odd-sized pieces so line ends fall everywhere relative to the reader's buffer.
        for piece in all.chunks(13) {
            a.write_all(piece).unwrap();
            a.flush().unwrap();
        }
    });
    let r = reader(b.as_raw_fd(), 16);
    for want in &lines {
        let (rc, _, _, line) = readline(&r, 64, None);
        assert_eq!(rc as usize, want.len());
        assert_eq!(&line, want);
    }
    writer.join().unwrap();
}

#[test]
fn a_line_too_long_is_emsgsize_and_stays_buffered() {
    let (mut a, b) = UnixStream::pair().unwrap();
    a.write_all(b"0123456789\nok\n").unwrap();
    let r = reader(b.as_raw_fd(), 4);
    // Room for 9 bytes and the NUL: the 11-byte line does not fit.
    let (rc, e, done, line) = readline(&r, 10, None);
    assert_eq!((rc, e, done, line.len()), (-1, libc::EMSGSIZE, 0, 0));
    assert!(unsafe { resock_reader_buffered(r.0) } >= 9);
    // Nothing was split off: a big enough buffer gets the whole line.
    let (rc, _, _, line) = readline(&r, 12, None);
    assert_eq!((rc, &line[..]), (11, &b"0123456789\n"[..]));
    assert_eq!(readline(&r, 10, None).3, b"ok\n");
    // Or drop the long line's bytes with take(NULL) and go on.
    a.write_all(b"xxxxxxxxxxxxxxxxxxxx\nnext\n").unwrap();
    assert_eq!(readline(&r, 8, None).1, libc::EMSGSIZE);
    let dropped = unsafe { resock_reader_take(r.0, std::ptr::null_mut(), 21) };
    assert!(dropped > 0 && dropped <= 21);
    let rest = readn(&r, 21 - dropped, None);
    assert_eq!(rest.0 as usize, 21 - dropped);
    assert_eq!(readline(&r, 8, None).3, b"next\n");
}

#[test]
fn a_timeout_mid_line_consumes_nothing_and_a_retry_returns_the_line_whole() {
    let (mut a, b) = UnixStream::pair().unwrap();
    let r = reader(b.as_raw_fd(), 8);
    a.write_all(b"PUBLISH chan").unwrap();
    let o = opts(50, 0);
    let (rc, e, done, line) = readline(&r, 64, Some(&o));
    assert_eq!((rc, e, done, line.len()), (-1, libc::ETIMEDOUT, 0, 0));
    assert_eq!(unsafe { resock_reader_buffered(r.0) }, 12);
    a.write_all(b"nel hello\r\n").unwrap();
    let (rc, _, _, line) = readline(&r, 64, Some(&o));
    assert_eq!((rc, &line[..]), (23, &b"PUBLISH channel hello\r\n"[..]));
    // timeout 0: one nonblocking attempt, nothing there: ETIMEDOUT, nothing lost.
    a.write_all(b"par").unwrap();
    let (rc, e, _, _) = readline(&r, 64, Some(&opts(0, 0)));
    assert_eq!((rc, e), (-1, libc::ETIMEDOUT));
    a.write_all(b"tial\n").unwrap();
    assert_eq!(readline(&r, 64, None).3, b"partial\n");
}

#[test]
fn eintr_mid_line_consumes_nothing() {
    let (mut a, b) = UnixStream::pair().unwrap();
    let r = reader(b.as_raw_fd(), 0);
    a.write_all(b"half a ").unwrap();
    let storm = SignalStorm::start(unsafe { libc::pthread_self() }, Duration::from_millis(5));
    let o = opts(-1, RETURN_ON_EINTR);
    let (rc, e, _, _) = readline(&r, 64, Some(&o));
    drop(storm);
    assert_eq!((rc, e), (-1, libc::EINTR));
    a.write_all(b"line\n").unwrap();
    assert_eq!(readline(&r, 64, None).3, b"half a line\n");
}

#[test]
fn eof_returns_the_unfinished_line_with_errno_zero_then_zero() {
    let (mut a, b) = UnixStream::pair().unwrap();
    a.write_all(b"no newline").unwrap();
    drop(a);
    let r = reader(b.as_raw_fd(), 0);
    let (rc, e, _, line) = readline(&r, 64, None);
    assert_eq!((rc, e, &line[..]), (10, 0, &b"no newline"[..]));
    let (rc, e, _, _) = readline(&r, 64, None);
    assert_eq!((rc, e), (0, 0));
    // readn at EOF: the count so far, errno 0.
    let (rc, e, done, _) = readn(&r, 4, None);
    assert_eq!((rc, e, done), (0, 0, 0));
}

#[test]
fn readn_readline_and_take_mix_on_one_stream_without_losing_a_byte() {
    // A RESP-like stream: a header line, a counted body, a line, then raw fd reads.
    let (mut a, b) = UnixStream::pair().unwrap();
    let body = pattern(100, 7);
    let mut msg = b"$100\r\n".to_vec();
    msg.extend_from_slice(&body);
    msg.extend_from_slice(b"\r\n+OK\r\nRAW-TAIL");
    a.write_all(&msg).unwrap();
    let r = reader(b.as_raw_fd(), 32);
    assert_eq!(readline(&r, 64, None).3, b"$100\r\n");
    let (rc, _, done, got) = readn(&r, 102, None);
    assert_eq!((rc, done), (102, 102));
    assert_eq!(&got[..100], &body[..]);
    assert_eq!(readline(&r, 64, None).3, b"+OK\r\n");
    // Hand the read-ahead back, then go on with plain reads on the fd.
    let mut tail = Vec::new();
    loop {
        let got = take(&r, 3);
        if got.is_empty() {
            break;
        }
        tail.extend(got);
    }
    assert_eq!(unsafe { resock_reader_buffered(r.0) }, 0);
    drop(a);
    let mut rest = vec![0u8; 64];
    let (n, _) = common::readn(b.as_raw_fd(), &mut rest);
    tail.extend_from_slice(&rest[..n as usize]);
    assert_eq!(tail, b"RAW-TAIL");
}

#[test]
fn a_big_readn_goes_straight_into_the_callers_buffer() {
    let (a, b) = tcp_pair();
    let payload = pattern(1 << 20, 3);
    let expected = payload.clone();
    let writer = std::thread::spawn(move || {
        let mut a = a;
        a.write_all(b"len\n").unwrap();
        a.write_all(&payload).unwrap();
    });
    let r = reader(b.as_raw_fd(), 4096);
    assert_eq!(readline(&r, 16, None).3, b"len\n");
    let (rc, _, _, got) = readn(&r, 1 << 20, None);
    assert_eq!(rc, 1 << 20);
    assert!(got == expected);
    writer.join().unwrap();
}

#[test]
fn readn_deadline_reports_what_it_stored() {
    let (mut a, b) = UnixStream::pair().unwrap();
    let r = reader(b.as_raw_fd(), 0);
    a.write_all(b"abc").unwrap();
    let (rc, e, done, got) = readn(&r, 10, Some(&opts(30, 0)));
    assert_eq!(
        (rc, e, done, &got[..]),
        (-1, libc::ETIMEDOUT, 3, &b"abc"[..])
    );
}

#[test]
fn nonblocking_fd_with_return_on_eagain_keeps_the_partial_line() {
    let (mut a, b) = UnixStream::pair().unwrap();
    set_nonblocking(b.as_raw_fd());
    let r = reader(b.as_raw_fd(), 0);
    a.write_all(b"GET /").unwrap();
    let (rc, e, _, _) = readline(&r, 64, Some(&opts(-1, RETURN_ON_EAGAIN)));
    assert_eq!((rc, e), (-1, libc::EAGAIN));
    a.write_all(b" HTTP/1.0\n").unwrap();
    assert_eq!(
        readline(&r, 64, Some(&opts(-1, RETURN_ON_EAGAIN))).3,
        b"GET / HTTP/1.0\n"
    );
}

#[test]
fn datagram_sockets_and_bad_arguments_are_refused() {
    let (d, _peer) = UnixDatagram::pair().unwrap();
    set_errno(0);
    assert!(unsafe { resock_reader_new(d.as_raw_fd(), 0) }.is_null());
    assert_eq!(errno(), libc::EPROTOTYPE);
    assert!(unsafe { resock_reader_new(-1, 0) }.is_null());
    assert_eq!(errno(), libc::EBADF);
    assert!(unsafe { resock_reader_new(0, (64 << 20) + 1) }.is_null());
    assert_eq!(errno(), libc::EINVAL);
    let (_a, b) = UnixStream::pair().unwrap();
    let r = reader(b.as_raw_fd(), 0);
    assert_eq!(readline(&r, 1, None).1, libc::EINVAL);
    set_errno(0);
    let rc = unsafe {
        resock_reader_readline(
            r.0,
            std::ptr::null_mut(),
            8,
            std::ptr::null(),
            std::ptr::null_mut(),
        )
    };
    assert_eq!((rc, errno()), (-1, libc::EINVAL));
    let rc = unsafe {
        resock_reader_readn(
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
            std::ptr::null(),
            std::ptr::null_mut(),
        )
    };
    assert_eq!((rc, errno()), (-1, libc::EINVAL));
    assert_eq!(unsafe { resock_reader_buffered(std::ptr::null()) }, 0);
    unsafe { resock_reader_free(std::ptr::null_mut()) };
}

#[test]
fn a_second_consumer_is_refused_with_ebusy_and_disturbs_nothing() {
    let (mut a, b) = UnixStream::pair().unwrap();
    let r = std::sync::Arc::new(reader(b.as_raw_fd(), 0));
    a.write_all(b"first line\n").unwrap();
    let (armed_tx, armed_rx) = std::sync::mpsc::channel();
    let consumer = {
        let r = r.clone();
        std::thread::spawn(move || {
            let hook = resock::test_hooks::arm_this_thread("reader.read", 0);
            armed_tx.send(hook).unwrap();
            readline(&r, 64, None)
        })
    };
    let hook = armed_rx.recv().unwrap();
    assert!(hook.wait_arrived(Duration::from_secs(10)));
    // The first consumer is inside the reader, about to read.
    assert_eq!(readline(&r, 64, None).1, libc::EBUSY);
    set_errno(0);
    assert_eq!(take(&r, 4).len(), 0);
    assert_eq!(errno(), libc::EBUSY);
    hook.release();
    let (rc, _, _, line) = consumer.join().unwrap();
    assert_eq!((rc, &line[..]), (11, &b"first line\n"[..]));
}

#[test]
fn free_while_another_thread_reads_waits_for_nothing_and_frees_later() {
    let (mut a, b) = UnixStream::pair().unwrap();
    let r = unsafe { resock_reader_new(b.as_raw_fd(), 0) } as usize;
    let (armed_tx, armed_rx) = std::sync::mpsc::channel();
    let consumer = std::thread::spawn(move || {
        let hook = resock::test_hooks::arm_this_thread("reader.read", 0);
        armed_tx.send(hook).unwrap();
        let mut buf = [0u8; 16];
        unsafe {
            resock_reader_readline(
                r as *mut CReader,
                buf.as_mut_ptr().cast(),
                16,
                std::ptr::null(),
                std::ptr::null_mut(),
            )
        }
    });
    let hook = armed_rx.recv().unwrap();
    assert!(hook.wait_arrived(Duration::from_secs(10)));
    unsafe { resock_reader_free(r as *mut CReader) };
    hook.release();
    a.write_all(b"still here\n").unwrap();
    assert_eq!(consumer.join().unwrap(), 11);
}

#[test]
fn the_rust_reader_is_a_bufread() {
    let (mut a, b) = UnixStream::pair().unwrap();
    a.write_all(b"one\ntwo\nthree").unwrap();
    drop(a);
    let lines: Vec<String> = Reader::with_capacity(2, &b)
        .unwrap()
        .lines()
        .map(Result::unwrap)
        .collect();
    assert_eq!(lines, ["one", "two", "three"]);
}

#[test]
fn the_rust_reader_reports_a_long_line_and_keeps_it() {
    let (mut a, b) = UnixStream::pair().unwrap();
    a.write_all(b"abcdefgh\n").unwrap();
    let mut r = Reader::with_capacity(3, &b).unwrap();
    let mut small = [0u8; 4];
    let e = r.read_line_with(&mut small, &Opts::default()).unwrap_err();
    assert_eq!(e.errno(), libc::EMSGSIZE);
    let mut big = [0u8; 9];
    let line = r.read_line_with(&mut big, &Opts::default()).unwrap();
    assert_eq!((line.len, line.end), (9, LineEnd::Newline));
}

/// One reader operation of the model test.
#[derive(Debug, Clone, Copy)]
enum Op {
    Line(usize),
    Exact(usize),
    Take(usize),
}

/// Random streams in random pieces, read with random mixes of lines, exact counts and
/// takes through readers of random capacities, against a model of the stream: every byte
/// comes out once, in order; a line longer than the buffer is EMSGSIZE and consumes
/// nothing; EOF ends a line or a count where the model says.
#[test]
fn random_mixes_of_lines_counts_and_takes_match_the_model() {
    for seed in 0..300u64 {
        let bytes = pattern(600, seed);
        // Newlines often enough for lines to happen, rarely enough for long ones.
        let data: Vec<u8> = bytes
            .iter()
            .map(|&b| if b % 9 == 0 { b'\n' } else { b'a' + b % 26 })
            .collect();
        let knobs = pattern(200, seed ^ 0xABCD);
        let capacity = usize::from(knobs[0] % 40) + 1;
        let (mut a, b) = UnixStream::pair().unwrap();
        let writer = {
            let data = data.clone();
            let sizes: Vec<usize> = knobs.iter().map(|&k| usize::from(k % 97) + 1).collect();
            std::thread::spawn(move || {
                let mut at = 0;
                for size in sizes.iter().cycle() {
                    let end = (at + size).min(data.len());
                    a.write_all(&data[at..end]).unwrap();
                    at = end;
                    if at == data.len() {
                        return;
                    }
                }
            })
        };
        let mut r = Reader::with_capacity(capacity, &b).unwrap();
        let mut model = &data[..];
        let mut ops = knobs[1..].iter().map(|&k| match k % 3 {
            0 => Op::Line(usize::from(k / 3 % 50) + 1),
            1 => Op::Exact(usize::from(k / 3 % 30)),
            _ => Op::Take(usize::from(k / 3 % 20)),
        });
        // Until the model is drained: the ops, then lines of 1000 to finish.
        while !model.is_empty() {
            let op = ops.next().unwrap_or(Op::Line(1000));
            match op {
                Op::Line(limit) => {
                    let mut buf = vec![0u8; limit];
                    let nl = model.iter().take(limit).position(|&c| c == b'\n');
                    match (nl, r.read_line_with(&mut buf, &Opts::default())) {
                        (Some(i), Ok(line)) => {
                            assert_eq!(&buf[..line.len], &model[..=i], "seed {seed} {op:?}");
                            assert_eq!(line.end, LineEnd::Newline);
                            model = &model[i + 1..];
                        }
                        (None, Err(e)) if model.len() >= limit => {
                            assert_eq!(e.errno(), libc::EMSGSIZE, "seed {seed} {op:?}");
                        }
                        (None, Ok(line)) if model.len() < limit => {
                            // Only at EOF: the writer wrote all, the reader sees the end.
                            assert_eq!(line.end, LineEnd::Eof, "seed {seed}");
                            assert_eq!(&buf[..line.len], model, "seed {seed}");
                            model = &[];
                        }
                        (nl, got) => panic!("seed {seed} {op:?}: model {nl:?}, got {got:?}"),
                    }
                }
                Op::Exact(n) => {
                    let mut buf = vec![0u8; n];
                    match r.read_exact_with(&mut buf, &Opts::default()) {
                        Ok(()) => {
                            assert_eq!(&buf[..], &model[..n], "seed {seed} {op:?}");
                            model = &model[n..];
                        }
                        Err(p) => {
                            assert!(matches!(p.error, resock::Error::Eof), "seed {seed}");
                            assert!(model.len() < n, "seed {seed}: early EOF");
                            assert_eq!(&buf[..p.done], model, "seed {seed}");
                            model = &[];
                        }
                    }
                }
                Op::Take(n) => {
                    let mut buf = vec![0u8; n];
                    let got = r.take_buffered(&mut buf);
                    assert_eq!(&buf[..got], &model[..got], "seed {seed} {op:?}");
                    model = &model[got..];
                }
            }
        }
        writer.join().unwrap();
    }
}

#[test]
fn a_blocking_socket_whose_so_rcvtimeo_expires_is_eagain_and_keeps_the_partial_line() {
    let (mut a, b) = UnixStream::pair().unwrap();
    set_timeout_opt(b.as_raw_fd(), libc::SO_RCVTIMEO, 50);
    let r = reader(b.as_raw_fd(), 4);
    a.write_all(b"AUTH sec").unwrap();
    // The caller's own timeout, never polled past: EAGAIN, as from readn_sync.
    let (rc, e, done, _) = readline(&r, 64, None);
    assert_eq!((rc, e, done), (-1, libc::EAGAIN, 0));
    a.write_all(b"ret\r\n").unwrap();
    assert_eq!(readline(&r, 64, None).3, b"AUTH secret\r\n");
}
