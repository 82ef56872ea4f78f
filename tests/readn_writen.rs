//! The contract of DESIGN §3, tested through the C ABI exactly as a C caller uses it:
//! return values, errno, `*done`, on sockets, pipes, FIFOs and files.

mod common;

use common::*;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn zero_bytes_make_no_syscall_and_accept_null() {
    // fd -1 would give EBADF from any syscall: a 0 proves none was made.
    for r in unsafe {
        [
            readn_sync(-1, std::ptr::null_mut(), 0),
            writen_sync(-1, std::ptr::null(), 0),
            writev_sync(-1, std::ptr::null(), 0),
            readline_sync(-1, std::ptr::null_mut(), 0),
        ]
    } {
        assert_eq!(r, 0);
    }
}

#[test]
fn null_buffer_with_bytes_is_einval() {
    let (a, _b) = UnixStream::pair().unwrap();
    set_errno(0);
    assert_eq!(
        unsafe { readn_sync(a.as_raw_fd(), std::ptr::null_mut(), 1) },
        -1
    );
    assert_eq!(errno(), libc::EINVAL);
    set_errno(0);
    assert_eq!(
        unsafe { writen_sync(a.as_raw_fd(), std::ptr::null(), 1) },
        -1
    );
    assert_eq!(errno(), libc::EINVAL);
    set_errno(0);
    assert_eq!(
        unsafe { readline_sync(a.as_raw_fd(), std::ptr::null_mut(), 8) },
        -1
    );
    assert_eq!(errno(), libc::EINVAL);
}

#[test]
fn count_above_ssize_max_is_einval_without_a_syscall() {
    let (mut a, b) = UnixStream::pair().unwrap();
    a.write_all(b"still here").unwrap();
    // A bogus pointer: had a syscall been made, the kernel would fault or consume data.
    let bogus = 0x10 as *mut c_void;
    let huge = isize::MAX as usize + 1;
    set_errno(0);
    assert_eq!(unsafe { readn_sync(b.as_raw_fd(), bogus, huge) }, -1);
    assert_eq!(errno(), libc::EINVAL);
    assert_eq!(unsafe { writen_sync(b.as_raw_fd(), bogus, usize::MAX) }, -1);
    assert_eq!(errno(), libc::EINVAL);
    let mut buf = [0u8; 10];
    assert_eq!(readn(b.as_raw_fd(), &mut buf).0, 10);
    assert_eq!(&buf, b"still here");
}

#[test]
fn three_gib_to_dev_null_takes_several_clamped_writes() {
    let len: usize = 3 << 30;
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert_ne!(map, libc::MAP_FAILED);
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    let r = unsafe { writen_sync(null.as_raw_fd(), map, len) };
    unsafe { libc::munmap(map, len) };
    assert_eq!(r, len as isize);
}

#[test]
fn short_reads_are_assembled_from_one_byte_and_random_chunks() {
    for (label, tcp) in [("unix", false), ("tcp", true)] {
        let (tx, rx): (Box<dyn Write + Send>, std::os::fd::OwnedFd) = if tcp {
            let (a, b) = tcp_pair();
            a.set_nodelay(true).unwrap();
            (Box::new(a), b.into())
        } else {
            let (a, b) = UnixStream::pair().unwrap();
            (Box::new(a), b.into())
        };
        let data = pattern(20_000, 1);
        let sent = data.clone();
        let writer = thread::spawn(move || {
            let mut tx = tx;
            // 200 single bytes, then pieces of pseudo-random size with pauses between.
            for b in &sent[..200] {
                tx.write_all(std::slice::from_ref(b)).unwrap();
            }
            let mut at = 200;
            let mut step = 7usize;
            while at < sent.len() {
                step = (step * 31 + 17) % 1500 + 1;
                let end = (at + step).min(sent.len());
                tx.write_all(&sent[at..end]).unwrap();
                at = end;
                if step % 5 == 0 {
                    thread::sleep(Duration::from_micros(300));
                }
            }
        });
        let mut buf = vec![0u8; data.len()];
        let (r, e) = readn(rx.as_raw_fd(), &mut buf);
        writer.join().unwrap();
        assert_eq!(r, data.len() as isize, "{label}");
        assert_eq!(e, 4242, "{label}: errno is untouched on success");
        assert!(buf == data, "{label}: content differs");
    }
}

#[test]
fn eof_with_no_data_returns_zero_and_errno_zero() {
    let (a, b) = UnixStream::pair().unwrap();
    drop(a);
    let mut buf = [0u8; 16];
    assert_eq!(readn(b.as_raw_fd(), &mut buf), (0, 0));
}

#[test]
fn eof_after_some_bytes_returns_the_short_count_and_errno_zero() {
    let (mut a, b) = tcp_pair();
    a.write_all(b"abcde").unwrap();
    a.shutdown(std::net::Shutdown::Write).unwrap();
    let mut buf = [0u8; 16];
    let (r, e, done) = readn_opts(b.as_raw_fd(), &mut buf, &opts(-1, 0));
    assert_eq!((r, e, done), (5, 0, 5));
    assert_eq!(&buf[..5], b"abcde");
}

#[test]
fn eintr_while_blocked_is_retried_without_and_with_sa_restart() {
    install_eintr_handler();
    // SIGUSR1's handler has no SA_RESTART (recv fails with EINTR), SIGUSR2's has it.
    for signal in [libc::SIGUSR1, libc::SIGUSR2] {
        let (mut a, b) = UnixStream::pair().unwrap();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let reader = thread::spawn(move || {
            tid_tx
                .send(unsafe { libc::pthread_self() } as usize)
                .unwrap();
            let mut buf = [0u8; 8];
            let r = readn(b.as_raw_fd(), &mut buf);
            (r, buf, thread_signals_seen())
        });
        let tid = tid_rx.recv().unwrap() as libc::pthread_t;
        // Interrupt the blocked recv before any data exists, then mid-message.
        for _ in 0..5 {
            thread::sleep(Duration::from_millis(10));
            unsafe { libc::pthread_kill(tid, signal) };
        }
        a.write_all(b"abcd").unwrap();
        thread::sleep(Duration::from_millis(10));
        unsafe { libc::pthread_kill(tid, signal) };
        thread::sleep(Duration::from_millis(10));
        a.write_all(b"efgh").unwrap();
        let ((r, e), buf, handled) = reader.join().unwrap();
        assert_eq!((r, e), (8, 4242), "signal {signal}");
        assert_eq!(&buf, b"abcdefgh");
        // Signals sent close together may merge into one delivery, but some must land.
        assert!(
            handled >= 1,
            "signal {signal}: the handler never ran in the reader"
        );
    }
}

#[test]
fn eintr_storm_on_read_and_write_loses_nothing() {
    for tcp in [false, true] {
        let (tx, rx): (std::os::fd::OwnedFd, std::os::fd::OwnedFd) = if tcp {
            let (a, b) = tcp_pair();
            (a.into(), b.into())
        } else {
            let (a, b) = UnixStream::pair().unwrap();
            (a.into(), b.into())
        };
        // Small buffers so both sides block often and the signals land inside syscalls
        // (TCP gets 16 KiB: with a 4 KiB window loopback crawls on delayed ACKs).
        let buf_size = if tcp { 16 << 10 } else { 4096 };
        set_int_opt(tx.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, buf_size);
        set_int_opt(rx.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, buf_size);
        let data = pattern(2 << 20, 2);
        let sent = data.clone();
        let writer = thread::spawn(move || {
            let before = thread_signals_seen();
            let storm =
                SignalStorm::start(unsafe { libc::pthread_self() }, Duration::from_micros(300));
            let (r, e) = writen(tx.as_raw_fd(), &sent);
            storm.stop();
            (r, e, thread_signals_seen() - before)
        });
        let before = thread_signals_seen();
        let storm = SignalStorm::start(unsafe { libc::pthread_self() }, Duration::from_micros(300));
        let mut buf = vec![0u8; data.len()];
        let mut at = 0;
        // Read in uneven record sizes, pausing 1 ms between them: the transfer lasts tens
        // of milliseconds however fast the machine, the writer blocks on full buffers, and
        // many calls on both sides see the storm.
        while at < buf.len() {
            let n = (at % 65_521 + 4096).min(buf.len() - at);
            let (r, e) = readn(rx.as_raw_fd(), &mut buf[at..at + n]);
            assert_eq!((r, e), (n as isize, 4242));
            at += n;
            thread::sleep(Duration::from_millis(1));
        }
        storm.stop();
        let read_handled = thread_signals_seen() - before;
        let (wr, we, write_handled) = writer.join().unwrap();
        assert_eq!((wr, we), (data.len() as isize, 4242));
        assert!(buf == data, "tcp={tcp}: content differs");
        // Signals sent close together merge, but some must have landed on each side.
        assert!(
            read_handled >= 1 && write_handled >= 1,
            "tcp={tcp}: handled {read_handled} on the reader, {write_handled} on the writer"
        );
    }
}

#[test]
fn eintr_storm_on_pipes_loses_nothing() {
    let (r, w) = pipe();
    let data = pattern(2 << 20, 3);
    let sent = data.clone();
    let writer = thread::spawn(move || {
        let storm = SignalStorm::start(unsafe { libc::pthread_self() }, Duration::from_micros(300));
        let res = writen(w, &sent);
        storm.stop();
        close(w);
        res
    });
    let storm = SignalStorm::start(unsafe { libc::pthread_self() }, Duration::from_micros(300));
    let mut buf = vec![0u8; data.len()];
    for chunk in buf.chunks_mut(10_007) {
        assert_eq!(readn(r, chunk).0, chunk.len() as isize);
    }
    storm.stop();
    assert_eq!(writer.join().unwrap(), (data.len() as isize, 4242));
    assert!(buf == data);
    let mut one = [0u8; 1];
    assert_eq!(readn(r, &mut one), (0, 0), "EOF after the writer closed");
    close(r);
}

#[test]
fn return_on_eintr_lets_a_signal_cancel_and_keeps_the_count() {
    install_eintr_handler();
    let (mut a, b) = UnixStream::pair().unwrap();
    a.write_all(b"xyz").unwrap();
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let reader = thread::spawn(move || {
        tid_tx
            .send(unsafe { libc::pthread_self() } as usize)
            .unwrap();
        let mut buf = [0u8; 10];
        readn_opts(b.as_raw_fd(), &mut buf, &opts(-1, RETURN_ON_EINTR))
    });
    let tid = tid_rx.recv().unwrap() as libc::pthread_t;
    // Keep signalling until the reader gives up (a signal may land before it blocks).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reader.is_finished() && Instant::now() < deadline {
        unsafe { libc::pthread_kill(tid, libc::SIGUSR1) };
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(reader.join().unwrap(), (-1, libc::EINTR, 3));
}

#[test]
fn rst_delivers_earlier_bytes_then_econnreset_with_the_count() {
    let (a, b) = tcp_pair();
    (&a).write_all(b"abc").unwrap();
    thread::sleep(Duration::from_millis(20));
    set_linger_zero(a.as_raw_fd());
    drop(a);
    thread::sleep(Duration::from_millis(20));
    let mut buf = [0u8; 10];
    let (r, e, done) = readn_opts(b.as_raw_fd(), &mut buf, &opts(-1, 0));
    assert_eq!((r, e, done), (-1, libc::ECONNRESET, 3));
    assert_eq!(&buf[..3], b"abc");
    // A write after the RST fails, and (MSG_NOSIGNAL) the test process is still here.
    let (r, e) = writen(b.as_raw_fd(), b"more");
    assert_eq!(r, -1);
    assert!(e == libc::EPIPE || e == libc::ECONNRESET, "errno {e}");
}

#[test]
fn readn_sync_reports_econnreset_like_the_seed_describes() {
    let (a, b) = tcp_pair();
    set_linger_zero(a.as_raw_fd());
    drop(a);
    thread::sleep(Duration::from_millis(20));
    let mut buf = [0u8; 4];
    assert_eq!(readn(b.as_raw_fd(), &mut buf), (-1, libc::ECONNRESET));
}

#[test]
fn a_peer_closing_with_unread_data_resets_us() {
    let (a, b) = tcp_pair();
    assert_eq!(writen(a.as_raw_fd(), b"the server never reads this").0, 27);
    thread::sleep(Duration::from_millis(20));
    drop(b); // unread data in its receive queue: the kernel sends RST, not FIN
    thread::sleep(Duration::from_millis(20));
    let mut buf = [0u8; 4];
    assert_eq!(readn(a.as_raw_fd(), &mut buf), (-1, libc::ECONNRESET));
}

#[test]
fn nonblocking_fds_poll_and_complete_with_a_slow_peer() {
    let (a, b) = UnixStream::pair().unwrap();
    set_nonblocking(a.as_raw_fd());
    set_nonblocking(b.as_raw_fd());
    // Read side: the peer trickles 64 bytes 8 at a time.
    let writer = {
        let a = a.try_clone().unwrap();
        thread::spawn(move || {
            for i in 0..8u8 {
                thread::sleep(Duration::from_millis(3));
                assert_eq!(writen(a.as_raw_fd(), &[i; 8]).0, 8);
            }
        })
    };
    let mut buf = [0u8; 64];
    assert_eq!(readn(b.as_raw_fd(), &mut buf), (64, 4242));
    writer.join().unwrap();
    assert_eq!(buf[63], 7);
    // Write side: 4 MiB into a full buffer while the peer drains slowly.
    set_int_opt(a.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, 4096);
    let data = pattern(4 << 20, 4);
    let expect = data.clone();
    let reader = {
        let b = b.try_clone().unwrap();
        thread::spawn(move || {
            let mut got = vec![0u8; expect.len()];
            for chunk in got.chunks_mut(256 << 10) {
                thread::sleep(Duration::from_millis(2));
                assert_eq!(readn(b.as_raw_fd(), chunk).0, chunk.len() as isize);
            }
            got == expect
        })
    };
    assert_eq!(writen(a.as_raw_fd(), &data), (data.len() as isize, 4242));
    assert!(reader.join().unwrap());
}

#[test]
fn return_on_eagain_hands_back_partial_progress() {
    let (mut a, b) = UnixStream::pair().unwrap();
    set_nonblocking(b.as_raw_fd());
    a.write_all(b"part").unwrap();
    let mut buf = [0u8; 10];
    assert_eq!(
        readn_opts(b.as_raw_fd(), &mut buf, &opts(-1, RETURN_ON_EAGAIN)),
        (-1, libc::EAGAIN, 4)
    );
    // Resume where it stopped: nothing was lost.
    a.write_all(b"-rest!").unwrap();
    assert_eq!(readn(b.as_raw_fd(), &mut buf[4..]).0, 6);
    assert_eq!(&buf, b"part-rest!");
    // Writes: fill the buffer until EAGAIN, with the count.
    set_nonblocking(a.as_raw_fd());
    let big = vec![7u8; 4 << 20];
    let (r, e, done) = writen_opts(a.as_raw_fd(), &big, &opts(-1, RETURN_ON_EAGAIN));
    assert_eq!((r, e), (-1, libc::EAGAIN));
    assert!(done > 0 && done < big.len(), "done={done}");
}

#[test]
fn so_rcvtimeo_returns_eagain_in_time_with_the_count() {
    let (mut a, b) = tcp_pair();
    set_timeout_opt(b.as_raw_fd(), libc::SO_RCVTIMEO, 100);
    a.write_all(&[1u8; 50]).unwrap();
    let mut buf = [0u8; 100];
    let start = Instant::now();
    let (r, e, done) = readn_opts(b.as_raw_fd(), &mut buf, &opts(-1, 0));
    let took = start.elapsed();
    assert_eq!((r, e, done), (-1, libc::EAGAIN, 50));
    assert!(
        took >= Duration::from_millis(90),
        "returned before the timeout: {took:?}"
    );
    assert!(
        took < Duration::from_secs(5),
        "polled past the caller's timeout: {took:?}"
    );
    // The legacy call too: -1/EAGAIN, never a poll past SO_RCVTIMEO.
    let (r, e) = readn(b.as_raw_fd(), &mut buf);
    assert_eq!((r, e), (-1, libc::EAGAIN));
}

#[test]
fn so_sndtimeo_returns_eagain_with_the_count() {
    let (a, _b) = tcp_pair();
    set_timeout_opt(a.as_raw_fd(), libc::SO_SNDTIMEO, 100);
    let big = vec![0u8; 64 << 20];
    let start = Instant::now();
    let (r, e, done) = writen_opts(a.as_raw_fd(), &big, &opts(-1, 0));
    assert_eq!((r, e), (-1, libc::EAGAIN));
    assert!(done > 0 && done < big.len());
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn deadlines_bound_blocking_reads_and_writes() {
    // Socket read: half the bytes, then silence.
    let (mut a, b) = tcp_pair();
    a.write_all(&[9u8; 30]).unwrap();
    let mut buf = [0u8; 60];
    let start = Instant::now();
    let res = readn_opts(b.as_raw_fd(), &mut buf, &opts(100, 0));
    let took = start.elapsed();
    assert_eq!(res, (-1, libc::ETIMEDOUT, 30));
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_secs(5),
        "{took:?}"
    );

    // Socket write: the peer never reads.
    let big = vec![0u8; 64 << 20];
    let start = Instant::now();
    let (r, e, done) = writen_opts(a.as_raw_fd(), &big, &opts(100, 0));
    assert_eq!((r, e), (-1, libc::ETIMEDOUT));
    assert!(done > 0 && done < big.len());
    assert!(start.elapsed() < Duration::from_secs(5));

    // Blocking pipe read and write (no MSG_DONTWAIT there: polled before each syscall).
    let (pr, pw) = pipe();
    assert_eq!(writen(pw, b"12345").0, 5);
    let start = Instant::now();
    assert_eq!(
        readn_opts(pr, &mut buf, &opts(100, 0)),
        (-1, libc::ETIMEDOUT, 5)
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    let start = Instant::now();
    let (r, e, done) = writen_opts(pw, &big[..1 << 20], &opts(100, 0));
    assert_eq!((r, e), (-1, libc::ETIMEDOUT));
    assert!(
        (60_000..1 << 20).contains(&done),
        "a pipe holds 64 KiB: done={done}"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    close(pr);
    close(pw);

    // timeout 0 moves what is ready and nothing more.
    let (mut a, b) = UnixStream::pair().unwrap();
    a.write_all(b"ready").unwrap();
    assert_eq!(
        readn_opts(b.as_raw_fd(), &mut buf[..5], &opts(0, 0)),
        (5, 4242, 5)
    );
    assert_eq!(
        readn_opts(b.as_raw_fd(), &mut buf[..5], &opts(0, 0)),
        (-1, libc::ETIMEDOUT, 0)
    );
}

#[test]
fn a_deadline_that_is_met_returns_everything() {
    let (a, b) = UnixStream::pair().unwrap();
    let writer = thread::spawn(move || {
        for _ in 0..10 {
            thread::sleep(Duration::from_millis(2));
            assert_eq!(writen(a.as_raw_fd(), &[3u8; 100]).0, 100);
        }
    });
    let mut buf = [0u8; 1000];
    assert_eq!(
        readn_opts(b.as_raw_fd(), &mut buf, &opts(10_000, 0)),
        (1000, 4242, 1000)
    );
    writer.join().unwrap();
}

#[test]
fn partial_writes_through_tiny_buffers_over_tcp_and_a_shrunk_pipe() {
    let (a, b) = tcp_pair();
    // The writer's buffer is tiny so every send is partial; the reader's window is kept at
    // 16 KiB because a 4 KiB one makes loopback crawl on delayed ACKs.
    set_int_opt(a.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, 4096);
    set_int_opt(b.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, 16 << 10);
    let data = pattern(4 << 20, 5);
    let expect = data.clone();
    let reader = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        let mut got = Vec::with_capacity(expect.len());
        let mut chunk = [0u8; 1024];
        let mut reads = 0u32;
        while got.len() < expect.len() {
            let n = (&b).read(&mut chunk).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&chunk[..n]);
            reads += 1;
            if reads % 512 == 0 {
                thread::sleep(Duration::from_millis(1));
            }
        }
        got == expect
    });
    assert_eq!(writen(a.as_raw_fd(), &data), (data.len() as isize, 4242));
    assert!(reader.join().unwrap());

    let (r, w) = pipe();
    assert_eq!(unsafe { libc::fcntl(w, libc::F_SETPIPE_SZ, 4096) }, 4096);
    let data = pattern(1 << 20, 6);
    let expect = data.clone();
    let reader = thread::spawn(move || {
        let mut got = vec![0u8; expect.len()];
        let mut at = 0;
        while at < got.len() {
            let n =
                unsafe { libc::read(r, got[at..].as_mut_ptr().cast(), 1000.min(got.len() - at)) };
            assert!(n > 0);
            at += n as usize;
        }
        close(r);
        got == expect
    });
    assert_eq!(writen(w, &data), (data.len() as isize, 4242));
    close(w);
    assert!(reader.join().unwrap());
}

#[test]
fn bad_fds_and_wrong_fd_kinds() {
    let mut buf = [0u8; 4];
    // A closed fd.
    let (r, w) = pipe();
    close(r);
    close(w);
    assert_eq!(readn(r, &mut buf), (-1, libc::EBADF));
    assert_eq!(writen(w, b"x"), (-1, libc::EBADF));
    // The write end of a pipe used for reading, and the read end for writing.
    let (r, w) = pipe();
    assert_eq!(readn(w, &mut buf), (-1, libc::EBADF));
    assert_eq!(writen(r, b"x"), (-1, libc::EBADF));
    close(r);
    close(w);
    // A directory.
    let dir = std::fs::File::open(std::env::temp_dir()).unwrap();
    assert_eq!(readn(dir.as_raw_fd(), &mut buf), (-1, libc::EISDIR));
}

#[test]
fn a_buffer_with_an_unmapped_tail_gives_the_count_then_efault() {
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            2 * page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(map, libc::MAP_FAILED);
    unsafe { libc::munmap(map.cast::<u8>().add(page).cast(), page) };
    // A pipe: read(2) copies what it can before the fault.
    let (r, w) = pipe();
    let data = pattern(2 * page, 7);
    let writer = thread::spawn(move || {
        let _ = writen(w, &data);
        close(w);
    });
    let mut done = 0;
    let res = unsafe { resock_readn(r, map, 2 * page, std::ptr::null(), &mut done) };
    let e = errno();
    close(r);
    writer.join().unwrap();
    unsafe { libc::munmap(map, page) };
    assert_eq!((res, e), (-1, libc::EFAULT));
    assert_eq!(done, page, "every byte before the bad page is reported");
}

#[test]
fn regular_files_and_fifos() {
    let dir = tempdir();
    let path = dir.join("data");
    let data = pattern(100_000, 8);
    std::fs::write(&path, &data).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let mut buf = vec![0u8; 60_000];
    assert_eq!(readn(file.as_raw_fd(), &mut buf), (60_000, 4242));
    assert!(buf[..] == data[..60_000]);
    // Shorter than asked: the rest, then EOF with errno 0.
    assert_eq!(readn(file.as_raw_fd(), &mut buf), (40_000, 0));
    let out = std::fs::File::create(dir.join("out")).unwrap();
    assert_eq!(writen(out.as_raw_fd(), &data), (100_000, 4242));
    assert_eq!(std::fs::read(dir.join("out")).unwrap(), data);

    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let sent = data.clone();
    let writer = thread::spawn(move || {
        let w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        writen(w.as_raw_fd(), &sent)
    });
    let r = std::fs::File::open(dir.join("fifo")).unwrap();
    let mut got = vec![0u8; data.len()];
    assert_eq!(readn(r.as_raw_fd(), &mut got), (100_000, 4242));
    assert_eq!(writer.join().unwrap(), (100_000, 4242));
    assert!(got == data);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn thirty_two_mib_over_tcp_arrive_intact() {
    let (a, b) = tcp_pair();
    let data = pattern(32 << 20, 9);
    let sum: u64 = data.iter().map(|&x| u64::from(x)).sum();
    let writer = thread::spawn(move || writen(a.as_raw_fd(), &data));
    let mut got = vec![0u8; 32 << 20];
    assert_eq!(readn(b.as_raw_fd(), &mut got), (32 << 20, 4242));
    assert_eq!(writer.join().unwrap(), (32 << 20, 4242));
    assert_eq!(got.iter().map(|&x| u64::from(x)).sum::<u64>(), sum);
    assert!(got == pattern(32 << 20, 9));
}

#[test]
fn many_threads_on_distinct_fds_at_once() {
    let workers: Vec<_> = (0..16u64)
        .map(|i| {
            thread::spawn(move || {
                let (a, b) = UnixStream::pair().unwrap();
                let data = pattern(2 << 20, 100 + i);
                let expect = data.clone();
                let writer = thread::spawn(move || {
                    for rec in data.chunks(4096 + i as usize) {
                        assert_eq!(writen(a.as_raw_fd(), rec).0, rec.len() as isize);
                    }
                });
                let mut got = vec![0u8; expect.len()];
                for rec in got.chunks_mut(3000 + i as usize) {
                    assert_eq!(readn(b.as_raw_fd(), rec).0, rec.len() as isize);
                }
                writer.join().unwrap();
                got == expect
            })
        })
        .collect();
    for w in workers {
        assert!(w.join().unwrap());
    }
}

#[test]
fn errno_is_untouched_on_success_and_exact_on_failure() {
    let (a, b) = UnixStream::pair().unwrap();
    assert_eq!(writen(a.as_raw_fd(), b"1234"), (4, 4242));
    let mut buf = [0u8; 4];
    assert_eq!(readn(b.as_raw_fd(), &mut buf), (4, 4242));
    drop(b);
    assert_eq!(writen(a.as_raw_fd(), b"x"), (-1, libc::EPIPE));
}

#[test]
fn writev_sends_everything_in_order_and_validates_its_array() {
    let (a, b) = tcp_pair();
    set_int_opt(a.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, 4096);
    let parts: Vec<Vec<u8>> = (0..40u64)
        .map(|i| pattern(10_000 + i as usize * 997, i))
        .collect();
    let iov = iovecs(&parts);
    let snapshot: Vec<(usize, usize)> = iov
        .iter()
        .map(|v| (v.iov_base as usize, v.iov_len))
        .collect();
    let total: usize = parts.iter().map(Vec::len).sum();
    let expect: Vec<u8> = parts.concat();
    let reader = thread::spawn(move || {
        let mut got = vec![0u8; total];
        assert_eq!(readn(b.as_raw_fd(), &mut got).0, total as isize);
        got == expect
    });
    let mut done = 0;
    let r = unsafe {
        resock_writev(
            a.as_raw_fd(),
            iov.as_ptr(),
            iov.len() as c_int,
            std::ptr::null(),
            &mut done,
        )
    };
    assert_eq!((r, done), (total as isize, total));
    assert!(reader.join().unwrap());
    let after: Vec<(usize, usize)> = iov
        .iter()
        .map(|v| (v.iov_base as usize, v.iov_len))
        .collect();
    assert_eq!(snapshot, after, "the caller's const array is not modified");

    let fd = a.as_raw_fd();
    let bad = [iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 3,
    }];
    for (ptr, cnt) in [
        (bad.as_ptr(), 1),
        (std::ptr::null(), 2),
        (iov.as_ptr(), -1),
        (iov.as_ptr(), 1025),
    ] {
        set_errno(0);
        assert_eq!(unsafe { writev_sync(fd, ptr, cnt) }, -1);
        assert_eq!(errno(), libc::EINVAL);
    }
    let huge = [
        iovec {
            iov_base: 0x10 as *mut c_void,
            iov_len: isize::MAX as usize,
        },
        iovec {
            iov_base: 0x10 as *mut c_void,
            iov_len: 2,
        },
    ];
    set_errno(0);
    assert_eq!(unsafe { writev_sync(fd, huge.as_ptr(), 2) }, -1);
    assert_eq!(errno(), libc::EINVAL);
}

#[test]
fn writev_to_a_pipe_with_a_hundred_entries() {
    let (r, w) = pipe();
    let parts: Vec<Vec<u8>> = (0..100u64).map(|i| pattern(3000, 50 + i)).collect();
    let iov = iovecs(&parts);
    let expect = parts.concat();
    let reader = thread::spawn(move || {
        let mut got = vec![0u8; 300_000];
        let res = readn(r, &mut got);
        close(r);
        (res.0, got)
    });
    assert_eq!(unsafe { writev_sync(w, iov.as_ptr(), 100) }, 300_000);
    close(w);
    let (n, got) = reader.join().unwrap();
    assert_eq!(n, 300_000);
    assert!(got == expect);
}

#[test]
fn opts_are_validated_before_any_syscall() {
    let mut buf = [0u8; 4];
    // fd -1: any syscall would answer EBADF, so EINVAL/E2BIG prove none was made.
    let mut o = opts(-1, 0);
    o.struct_size -= 1;
    assert_eq!(readn_opts(-1, &mut buf, &o), (-1, libc::EINVAL, 0));
    assert_eq!(
        readn_opts(-1, &mut buf, &opts(-2, 0)),
        (-1, libc::EINVAL, 0)
    );
    assert_eq!(
        readn_opts(-1, &mut buf, &opts(-1, 4)),
        (-1, libc::EINVAL, 0)
    );
    assert_eq!(
        writen_opts(-1, &buf, &opts(i32::MIN, 0)),
        (-1, libc::EINVAL, 0)
    );
    // A bigger struct from a newer header: fine while the fields we do not know are zero.
    #[repr(C)]
    struct Bigger {
        base: IoOpts,
        extra: u64,
    }
    let mut big = Bigger {
        base: opts(-1, 0),
        extra: 0,
    };
    big.base.struct_size = std::mem::size_of::<Bigger>();
    let p = (&big as *const Bigger).cast::<IoOpts>();
    let mut done = 9;
    set_errno(0);
    assert_eq!(
        unsafe { resock_readn(-1, buf.as_mut_ptr().cast(), 4, p, &mut done) },
        -1
    );
    assert_eq!(
        (errno(), done),
        (libc::EBADF, 0),
        "accepted, so the kernel answered"
    );
    big.extra = 1;
    let p = (&big as *const Bigger).cast::<IoOpts>();
    assert_eq!(
        unsafe { resock_readn(-1, buf.as_mut_ptr().cast(), 4, p, &mut done) },
        -1
    );
    assert_eq!(errno(), libc::E2BIG);
    // NULL opts and NULL done are the defaults.
    let (x, y) = UnixStream::pair().unwrap();
    assert_eq!(
        unsafe {
            resock_writen(
                x.as_raw_fd(),
                b"ok".as_ptr().cast(),
                2,
                std::ptr::null(),
                std::ptr::null_mut(),
            )
        },
        2
    );
    assert_eq!(
        unsafe {
            resock_readn(
                y.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                2,
                std::ptr::null(),
                std::ptr::null_mut(),
            )
        },
        2
    );
    unsafe { resock_io_opts_init(std::ptr::null_mut()) };
}

#[test]
fn readline_mixes_with_readn_without_losing_a_byte() {
    let check = |reader: i32, writer: i32| {
        let msg = b"HELLO 5\nworldLINE two\nrecord!tail without newline";
        assert_eq!(writen(writer, msg).0, msg.len() as isize);
        close(writer);
        let mut line = [0u8; 64];
        let n = unsafe { readline_sync(reader, line.as_mut_ptr().cast(), line.len()) };
        assert_eq!(&line[..n as usize + 1], b"HELLO 5\n\0");
        let mut body = [0u8; 5];
        assert_eq!(readn(reader, &mut body).0, 5);
        assert_eq!(&body, b"world");
        let n = unsafe { readline_sync(reader, line.as_mut_ptr().cast(), line.len()) };
        assert_eq!(&line[..n as usize], b"LINE two\n");
        let mut rec = [0u8; 7];
        assert_eq!(readn(reader, &mut rec).0, 7);
        assert_eq!(&rec, b"record!");
        // A long line: maxlen - 1 bytes, NUL-terminated; the rest stays in the fd.
        let n = unsafe { readline_sync(reader, line.as_mut_ptr().cast(), 5) };
        assert_eq!(&line[..5], b"tail\0");
        assert_eq!(n, 4);
        set_errno(4242);
        let n = unsafe { readline_sync(reader, line.as_mut_ptr().cast(), line.len()) };
        assert_eq!((n, errno()), (16, 0), "EOF mid-line: the bytes, errno 0");
        assert_eq!(&line[..17], b" without newline\0");
        let n = unsafe { readline_sync(reader, line.as_mut_ptr().cast(), line.len()) };
        assert_eq!((n, errno(), line[0]), (0, 0, 0), "EOF before any byte");
    };
    let (a, b) = UnixStream::pair().unwrap();
    check(b.into_raw_fd(), a.into_raw_fd());
    let (x, y) = tcp_pair();
    check(y.into_raw_fd(), x.into_raw_fd());
    let (r, w) = pipe();
    check(r, w);
}

#[test]
fn readline_with_a_deadline_times_out_with_the_count() {
    let (mut a, b) = UnixStream::pair().unwrap();
    a.write_all(b"no newline yet").unwrap();
    let mut line = [0u8; 64];
    let mut done = 0;
    let o = opts(50, 0);
    set_errno(0);
    let r = unsafe { resock_readline(b.as_raw_fd(), line.as_mut_ptr().cast(), 64, &o, &mut done) };
    assert_eq!((r, errno(), done), (-1, libc::ETIMEDOUT, 14));
    assert_eq!(&line[..15], b"no newline yet\0");
}

/// One iovec per buffer, for the C calls.
fn iovecs(parts: &[Vec<u8>]) -> Vec<iovec> {
    parts
        .iter()
        .map(|p| iovec {
            iov_base: p.as_ptr() as *mut c_void,
            iov_len: p.len(),
        })
        .collect()
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "resock-test-{}-{:?}",
        std::process::id(),
        thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---- The promises an adversarial review broke (issue 12), one test each. ----

/// A connected socketpair of `ty` (SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM).
fn socketpair(ty: c_int) -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    assert_eq!(
        unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) },
        0
    );
    (fds[0], fds[1])
}

/// Moves `fd` to the number `to` (closing the old one). Tests that need resock to meet a
/// number for the first time use numbers above 15000, each its own: nothing else in this
/// process gets that high, so no hint is left there by a parallel test.
fn renumber(fd: RawFd, to: RawFd) -> RawFd {
    assert_eq!(unsafe { libc::dup2(fd, to) }, to);
    close(fd);
    to
}

/// This thread's kernel thread id, for /proc/self/task.
fn gettid() -> libc::pid_t {
    unsafe { libc::gettid() }
}

/// Waits until thread `tid` sleeps inside a syscall (/proc says which one, not "running"),
/// so one signal lands in a blocked call rather than before it.
fn wait_until_blocked(tid: libc::pid_t) {
    let path = format!("/proc/self/task/{tid}/syscall");
    let stat = format!("/proc/self/task/{tid}/stat");
    let limit = Instant::now() + Duration::from_secs(30);
    loop {
        let call = std::fs::read_to_string(&path).unwrap_or_default();
        let state = std::fs::read_to_string(&stat).unwrap_or_default();
        // Field 3 of stat, after the parenthesised name: S = interruptible sleep.
        let sleeping = state
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('S'));
        if sleeping && !call.starts_with("running") && !call.is_empty() {
            return;
        }
        assert!(Instant::now() < limit, "thread {tid} never blocked");
        thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn datagram_and_seqpacket_reads_are_refused_before_any_byte_moves() {
    for (ty, number) in [(libc::SOCK_DGRAM, 15_001), (libc::SOCK_SEQPACKET, 15_002)] {
        let (a, b) = socketpair(ty);
        let b = renumber(b, number);
        for d in [&[1u8; 10][..], &[2u8; 100][..], &[3u8; 4][..]] {
            assert_eq!(
                writen(a, d),
                (d.len() as isize, 4242),
                "writes: one datagram each"
            );
        }
        let mut buf = [0u8; 40];
        assert_eq!(readn(b, &mut buf), (-1, libc::EPROTOTYPE), "type {ty}");
        for o in [
            opts(-1, 0),
            opts(100, 0),
            opts(0, 0),
            opts(-1, RETURN_ON_EINTR),
        ] {
            assert_eq!(readn_opts(b, &mut buf, &o), (-1, libc::EPROTOTYPE, 0));
            let mut done = 9;
            let r = unsafe { resock_readline(b, buf.as_mut_ptr().cast(), 40, &o, &mut done) };
            assert_eq!((r, errno(), done), (-1, libc::EPROTOTYPE, 0));
        }
        set_errno(0);
        assert_eq!(unsafe { readline_sync(b, buf.as_mut_ptr().cast(), 40) }, -1);
        assert_eq!(errno(), libc::EPROTOTYPE);
        // Nothing was consumed: the three datagrams are still queued, whole, in order.
        let mut big = [0u8; 200];
        for expect in [10, 100, 4] {
            let n = unsafe { libc::recv(b, big.as_mut_ptr().cast(), 200, libc::MSG_DONTWAIT) };
            assert_eq!(n, expect, "type {ty}");
        }
        close(a);
        close(b);
    }
    // A zero-length datagram is not EOF.
    let (a, b) = socketpair(libc::SOCK_DGRAM);
    let b = renumber(b, 15_003);
    assert_eq!(unsafe { libc::send(a, std::ptr::null(), 0, 0) }, 0);
    let mut buf = [0u8; 4];
    assert_eq!(readn(b, &mut buf), (-1, libc::EPROTOTYPE));
    close(a);
    close(b);
}

#[test]
fn a_stale_stream_hint_on_a_datagram_socket_loses_nothing_silently() {
    // The number held a stream socket that resock read, and was closed without EOF.
    let (s, t) = socketpair(libc::SOCK_STREAM);
    let t = renumber(t, 15_004);
    assert_eq!(writen(s, b"hi").0, 2);
    let mut two = [0u8; 2];
    assert_eq!(readn(t, &mut two).0, 2);
    close(s);
    close(t);
    // Now it is a datagram socket: the first call may take one datagram by the old rule,
    // but says so, and the next call refuses before reading.
    let (a, b) = socketpair(libc::SOCK_DGRAM);
    let b = renumber(b, 15_004);
    for d in [&[1u8; 10][..], &[2u8; 100][..], &[3u8; 4][..]] {
        assert_eq!(writen(a, d).0, d.len() as isize);
    }
    let mut buf = [0u8; 40];
    assert_eq!(
        readn_opts(b, &mut buf, &opts(-1, 0)),
        (-1, libc::EPROTOTYPE, 10)
    );
    assert_eq!(
        &buf[..10],
        &[1u8; 10],
        "the datagram taken is in the buffer"
    );
    assert_eq!(
        readn_opts(b, &mut buf, &opts(-1, 0)),
        (-1, libc::EPROTOTYPE, 0)
    );
    let mut big = [0u8; 200];
    for expect in [100, 4] {
        let n = unsafe { libc::recv(b, big.as_mut_ptr().cast(), 200, libc::MSG_DONTWAIT) };
        assert_eq!(n, expect);
    }
    close(a);
    close(b);
    // A datagram longer than the request behind a stale hint: EMSGSIZE, never success.
    let (s, t) = socketpair(libc::SOCK_STREAM);
    let t = renumber(t, 15_005);
    assert_eq!(writen(s, b"hi").0, 2);
    assert_eq!(readn(t, &mut two).0, 2);
    close(s);
    close(t);
    let (a, b) = socketpair(libc::SOCK_DGRAM);
    let b = renumber(b, 15_005);
    assert_eq!(writen(a, &[9u8; 100]).0, 100);
    assert_eq!(
        readn_opts(b, &mut buf, &opts(-1, 0)),
        (-1, libc::EMSGSIZE, 40)
    );
    close(a);
    close(b);
    // readline behind a stale hint: a datagram with two lines ends in EMSGSIZE after the
    // first, and the number is asked again.
    let (s, t) = socketpair(libc::SOCK_STREAM);
    let t = renumber(t, 15_006);
    assert_eq!(writen(s, b"hi\n").0, 3);
    let mut line = [0u8; 64];
    assert_eq!(unsafe { readline_sync(t, line.as_mut_ptr().cast(), 64) }, 3);
    close(s);
    close(t);
    let (a, b) = socketpair(libc::SOCK_DGRAM);
    let b = renumber(b, 15_006);
    assert_eq!(writen(a, b"one\ntwo\n").0, 8);
    assert_eq!(writen(a, b"three\n").0, 6);
    let mut done = 0;
    let r =
        unsafe { resock_readline(b, line.as_mut_ptr().cast(), 64, std::ptr::null(), &mut done) };
    assert_eq!((r, errno(), done), (-1, libc::EMSGSIZE, 4));
    assert_eq!(&line[..5], b"one\n\0");
    set_errno(0);
    assert_eq!(
        unsafe { readline_sync(b, line.as_mut_ptr().cast(), 64) },
        -1
    );
    assert_eq!(
        errno(),
        libc::EPROTOTYPE,
        "refused once known, the next datagram queued"
    );
    close(a);
    close(b);
}

#[test]
fn timeout_zero_moves_what_is_ready_on_pipes_and_files() {
    let (pr, pw) = pipe();
    assert_eq!(writen(pw, b"12345").0, 5);
    let mut buf = [0u8; 10];
    assert_eq!(
        readn_opts(pr, &mut buf, &opts(0, 0)),
        (-1, libc::ETIMEDOUT, 5)
    );
    assert_eq!(&buf[..5], b"12345");
    assert_eq!(writen_opts(pw, b"room", &opts(0, 0)), (4, 4242, 4));
    assert_eq!(readn_opts(pr, &mut buf[..4], &opts(0, 0)), (4, 4242, 4));
    close(pr);
    close(pw);
    let dir = tempdir();
    let path = dir.join("five");
    std::fs::write(&path, b"abcde").unwrap();
    let file = std::fs::File::open(&path).unwrap();
    // One nonblocking attempt: 5 bytes, then the deadline (EOF is not looked for).
    assert_eq!(
        readn_opts(file.as_raw_fd(), &mut buf, &opts(0, 0)),
        (-1, libc::ETIMEDOUT, 5)
    );
    assert_eq!(
        readn_opts(file.as_raw_fd(), &mut buf, &opts(0, 0)),
        (0, 0, 0)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn four_writers_on_one_unread_pipe_all_meet_their_deadlines() {
    let (r, w) = pipe();
    let writers: Vec<_> = (0..4)
        .map(|_| {
            thread::spawn(move || {
                let start = Instant::now();
                let (res, e, _) = writen_opts(w, &[1u8; 64 << 10], &opts(200, 0));
                (res, e, start.elapsed())
            })
        })
        .collect();
    let limit = Instant::now() + Duration::from_secs(10);
    while writers.iter().any(|t| !t.is_finished()) && Instant::now() < limit {
        thread::sleep(Duration::from_millis(5));
    }
    // A writer stuck in write(2) would hang the test: drain the pipe to free it.
    let mut sink = vec![0u8; 1 << 20];
    while writers.iter().any(|t| !t.is_finished()) {
        unsafe { libc::read(r, sink.as_mut_ptr().cast(), sink.len()) };
    }
    for t in writers {
        let (res, e, took) = t.join().unwrap();
        // The pipe holds 64 KiB: at most one writer fits it all.
        assert!(
            res == 64 << 10 || (res, e) == (-1, libc::ETIMEDOUT),
            "{res} {e}"
        );
        assert!(
            took < Duration::from_secs(5),
            "blocked past the deadline: {took:?}"
        );
    }
    close(r);
    close(w);
}

#[test]
fn a_tty_without_per_call_nonblocking_reads_is_polled_and_meets_the_deadline() {
    // preadv2(RWF_NOWAIT) is EOPNOTSUPP on a tty: the fallback polls, then reads.
    let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
    assert!(master >= 0);
    assert_eq!(unsafe { libc::grantpt(master) }, 0);
    assert_eq!(unsafe { libc::unlockpt(master) }, 0);
    let name = unsafe { std::ffi::CStr::from_ptr(libc::ptsname(master)) }.to_owned();
    let slave = unsafe { libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY) };
    assert!(slave >= 0);
    assert_eq!(writen(master, b"hello\n").0, 6);
    let mut buf = [0u8; 10];
    assert_eq!(
        readn_opts(slave, &mut buf[..6], &opts(5000, 0)),
        (6, 4242, 6)
    );
    assert_eq!(&buf[..6], b"hello\n");
    let start = Instant::now();
    assert_eq!(
        readn_opts(slave, &mut buf, &opts(100, 0)),
        (-1, libc::ETIMEDOUT, 0)
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    close(slave);
    close(master);
}

#[test]
fn a_file_not_in_the_page_cache_is_read_under_a_deadline() {
    // RWF_NOWAIT says EAGAIN for pages on disk while poll calls the file ready: the call
    // must read it, not wait for readiness that never changes.
    let dir = tempdir();
    let path = dir.join("cold");
    let data = pattern(1 << 20, 11);
    std::fs::write(&path, &data).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    file.sync_all().unwrap();
    unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    let mut got = vec![0u8; data.len()];
    let (r, _, done) = readn_opts(file.as_raw_fd(), &mut got, &opts(10_000, 0));
    assert_eq!((r, done), (data.len() as isize, data.len()));
    assert!(got == data);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Runs `call` on a new thread, waits until it blocks, sends it one `signal`, and returns
/// the call's result; `unblock` runs if the call has not returned after a generous bound,
/// so a call that ignores the signal fails the test instead of hanging it.
fn one_signal_while_blocked<T: Send + 'static>(
    signal: c_int,
    call: impl FnOnce() -> T + Send + 'static,
    unblock: impl FnOnce(),
) -> T {
    install_eintr_handler();
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let worker = thread::spawn(move || {
        tid_tx
            .send((gettid(), unsafe { libc::pthread_self() } as usize))
            .unwrap();
        call()
    });
    let (tid, pthread) = tid_rx.recv().unwrap();
    wait_until_blocked(tid);
    unsafe { libc::pthread_kill(pthread as libc::pthread_t, signal) };
    let limit = Instant::now() + Duration::from_secs(10);
    while !worker.is_finished() && Instant::now() < limit {
        thread::sleep(Duration::from_millis(5));
    }
    if !worker.is_finished() {
        unblock();
    }
    worker.join().unwrap()
}

#[test]
fn return_on_eintr_cancels_after_buffered_bytes_with_one_signal() {
    let (mut a, b) = UnixStream::pair().unwrap();
    a.write_all(b"xyz").unwrap();
    let fd = b.as_raw_fd();
    let got = one_signal_while_blocked(
        libc::SIGUSR1,
        move || {
            let mut buf = [0u8; 10];
            let r = readn_opts(fd, &mut buf, &opts(-1, RETURN_ON_EINTR));
            drop(b);
            r
        },
        || a.write_all(b"0123456").unwrap(),
    );
    assert_eq!(got, (-1, libc::EINTR, 3));
}

#[test]
fn return_on_eintr_cancels_a_large_write_that_moved_some_bytes() {
    let (a, b) = UnixStream::pair().unwrap();
    set_int_opt(a.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, 4096);
    let fd = a.as_raw_fd();
    let got = one_signal_while_blocked(
        libc::SIGUSR1,
        move || {
            let big = vec![5u8; 4 << 20];
            let r = writen_opts(fd, &big, &opts(-1, RETURN_ON_EINTR));
            drop(a);
            r
        },
        || {
            let mut sink = Vec::new();
            let _ = (&b).read_to_end(&mut sink);
        },
    );
    assert_eq!((got.0, got.1), (-1, libc::EINTR));
    assert!(got.2 > 0 && got.2 < 4 << 20, "done={}", got.2);
}

#[test]
fn return_on_eintr_cancels_even_with_an_sa_restart_handler() {
    // SIGUSR2's handler has SA_RESTART (glibc signal()): the kernel restarts recv/read,
    // never poll.
    for pipe_too in [false, true] {
        let (rfd, wfd, keep) = if pipe_too {
            let (r, w) = pipe();
            (r, w, None)
        } else {
            let (a, b) = UnixStream::pair().unwrap();
            (b.as_raw_fd(), a.as_raw_fd(), Some((a, b)))
        };
        let got = one_signal_while_blocked(
            libc::SIGUSR2,
            move || {
                let mut buf = [0u8; 4];
                readn_opts(rfd, &mut buf, &opts(-1, RETURN_ON_EINTR))
            },
            || assert_eq!(writen(wfd, b"late").0, 4),
        );
        assert_eq!(got, (-1, libc::EINTR, 0), "pipe={pipe_too}");
        if keep.is_none() {
            close(rfd);
            close(wfd);
        }
    }
}

#[test]
fn readline_with_so_peek_off_set_reads_every_line() {
    let (mut a, b) = UnixStream::pair().unwrap();
    set_int_opt(b.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PEEK_OFF, 0);
    a.write_all(b"one\ntwo\nthree\n").unwrap();
    let mut line = [0u8; 64];
    for expect in [&b"one\n"[..], b"two\n", b"three\n"] {
        let mut done = 0;
        // A deadline so a peek that looks past the queued data fails the test, not hangs it.
        let o = opts(5000, 0);
        let r =
            unsafe { resock_readline(b.as_raw_fd(), line.as_mut_ptr().cast(), 64, &o, &mut done) };
        assert_eq!(r, expect.len() as isize, "errno {}", errno());
        assert_eq!(&line[..done], expect);
    }
    let mut off: c_int = -2;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    unsafe {
        libc::getsockopt(
            b.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEEK_OFF,
            (&mut off as *mut c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(off, 0, "the caller's peek offset is where it was");
}

#[test]
fn rust_api_takes_any_duration_without_panicking() {
    use resock::io::{Opts, read_full, read_line, write_full};
    let (a, b) = UnixStream::pair().unwrap();
    for t in [
        Duration::MAX,
        Duration::from_secs(u64::MAX),
        Duration::from_nanos(1),
    ] {
        let o = Opts::with_timeout(t);
        write_full(&a, b"ab\n", &o).unwrap();
        let mut buf = [0u8; 2];
        read_full(&b, &mut buf, &o).unwrap();
        let mut line = [0u8; 8];
        assert_eq!(read_line(&b, &mut line, &o).unwrap().len, 1);
    }
}

#[test]
fn readline_with_room_for_only_the_nul_is_einval_not_eof() {
    let (mut a, b) = UnixStream::pair().unwrap();
    a.write_all(b"x\n").unwrap();
    let mut buf = [7u8; 1];
    set_errno(0);
    let r = unsafe { readline_sync(b.as_raw_fd(), buf.as_mut_ptr().cast(), 1) };
    assert_eq!((r, errno()), (-1, libc::EINVAL));
    let mut rest = [0u8; 2];
    assert_eq!(readn(b.as_raw_fd(), &mut rest).0, 2, "nothing was read");
}

#[test]
fn the_header_does_not_promise_readline_is_safe_for_two_threads_on_one_fd() {
    let header =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/resock.h")).unwrap();
    let doc = header
        .split("readline_sync(int fd")
        .next()
        .and_then(|before| before.rsplit("*/").nth(1))
        .unwrap_or_default();
    assert!(!doc.contains("thread-safe"), "{doc}");
    assert!(doc.contains("one thread at a time"), "{doc}");
}

/// Races made deterministic with resock::test_hooks (on in every test build).
mod hooked {
    use super::*;
    use resock::test_hooks::arm_this_thread;

    #[test]
    fn a_pipe_write_that_lost_its_room_still_meets_the_deadline() {
        let (r, w) = pipe();
        assert_eq!(unsafe { libc::fcntl(w, libc::F_SETPIPE_SZ, 4096) }, 4096);
        let (gate_tx, gate_rx) = std::sync::mpsc::channel();
        let writer = thread::spawn(move || {
            gate_tx.send(arm_this_thread("io.before_write", 0)).unwrap();
            let start = Instant::now();
            let res = writen_opts(w, &[1u8; 100], &opts(200, 0));
            (res, start.elapsed())
        });
        let gate = gate_rx.recv().unwrap();
        assert!(gate.wait_arrived(Duration::from_secs(10)));
        // Another writer takes all the room between the writer's readiness and its write.
        let filler = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{w}"))
            .unwrap();
        assert_eq!(writen(filler.as_raw_fd(), &[2u8; 4096]).0, 4096);
        gate.release();
        let limit = Instant::now() + Duration::from_secs(10);
        while !writer.is_finished() && Instant::now() < limit {
            thread::sleep(Duration::from_millis(5));
        }
        if !writer.is_finished() {
            let mut sink = [0u8; 8192];
            unsafe { libc::read(r, sink.as_mut_ptr().cast(), sink.len()) };
        }
        let ((res, e, done), took) = writer.join().unwrap();
        assert_eq!((res, e, done), (-1, libc::ETIMEDOUT, 0));
        assert!(
            took < Duration::from_secs(5),
            "blocked past the deadline: {took:?}"
        );
        close(r);
        close(w);
    }

    #[test]
    fn the_deadline_is_checked_before_every_syscall_while_data_keeps_coming() {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(&[1u8; 10]).unwrap();
        let fd = b.as_raw_fd();
        let (gate_tx, gate_rx) = std::sync::mpsc::channel();
        let reader = thread::spawn(move || {
            // Stop before the second syscall of the call.
            gate_tx.send(arm_this_thread("io.next_syscall", 1)).unwrap();
            let mut buf = [0u8; 20];
            readn_opts(fd, &mut buf, &opts(100, 0))
        });
        let gate = gate_rx.recv().unwrap();
        assert!(gate.wait_arrived(Duration::from_secs(10)));
        thread::sleep(Duration::from_millis(150));
        a.write_all(&[2u8; 10]).unwrap();
        gate.release();
        assert_eq!(reader.join().unwrap(), (-1, libc::ETIMEDOUT, 10));
        drop(b);
    }
}
