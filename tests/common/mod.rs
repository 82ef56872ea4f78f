//! Shared helpers for the integration tests: the C ABI as a C caller sees it, loopback
//! socket pairs, signal storms and errno access.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

pub mod handles;

// Referencing the crate links the rlib, which carries the exported C symbols.
use resock as _;

pub use libc::{c_int, c_void, iovec, size_t, ssize_t};

/// The exported C functions, declared as a C program would (the rlib carries the symbols).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IoOpts {
    pub struct_size: size_t,
    pub timeout_ms: c_int,
    pub flags: u32,
}

pub const RETURN_ON_EINTR: u32 = 1;
pub const RETURN_ON_EAGAIN: u32 = 2;

unsafe extern "C" {
    pub fn readn_sync(fd: c_int, buffer: *mut c_void, n: size_t) -> ssize_t;
    pub fn writen_sync(fd: c_int, buffer: *const c_void, n: size_t) -> ssize_t;
    pub fn writev_sync(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t;
    pub fn readline_sync(fd: c_int, buffer: *mut c_void, maxlen: size_t) -> ssize_t;
    pub fn resock_io_opts_init(opts: *mut IoOpts);
    pub fn resock_readn(
        fd: c_int,
        buf: *mut c_void,
        n: size_t,
        opts: *const IoOpts,
        done: *mut size_t,
    ) -> ssize_t;
    pub fn resock_writen(
        fd: c_int,
        buf: *const c_void,
        n: size_t,
        opts: *const IoOpts,
        done: *mut size_t,
    ) -> ssize_t;
    pub fn resock_writev(
        fd: c_int,
        iov: *const iovec,
        iovcnt: c_int,
        opts: *const IoOpts,
        done: *mut size_t,
    ) -> ssize_t;
    pub fn resock_readline(
        fd: c_int,
        buf: *mut c_void,
        maxlen: size_t,
        opts: *const IoOpts,
        done: *mut size_t,
    ) -> ssize_t;
}

pub fn errno() -> i32 {
    unsafe { *libc::__errno_location() }
}

pub fn set_errno(v: i32) {
    unsafe { *libc::__errno_location() = v }
}

pub fn opts(timeout_ms: c_int, flags: u32) -> IoOpts {
    let mut o = IoOpts {
        struct_size: 0,
        timeout_ms: 0,
        flags: 0,
    };
    unsafe { resock_io_opts_init(&mut o) };
    o.timeout_ms = timeout_ms;
    o.flags = flags;
    o
}

/// readn_sync as a C caller uses it: (return value, errno afterwards).
pub fn readn(fd: RawFd, buf: &mut [u8]) -> (isize, i32) {
    set_errno(4242);
    let r = unsafe { readn_sync(fd, buf.as_mut_ptr().cast(), buf.len()) };
    (r, errno())
}

pub fn writen(fd: RawFd, buf: &[u8]) -> (isize, i32) {
    set_errno(4242);
    let r = unsafe { writen_sync(fd, buf.as_ptr().cast(), buf.len()) };
    (r, errno())
}

/// resock_readn: (return value, errno afterwards, *done).
pub fn readn_opts(fd: RawFd, buf: &mut [u8], o: &IoOpts) -> (isize, i32, usize) {
    set_errno(4242);
    let mut done = usize::MAX;
    let r = unsafe { resock_readn(fd, buf.as_mut_ptr().cast(), buf.len(), o, &mut done) };
    (r, errno(), done)
}

pub fn writen_opts(fd: RawFd, buf: &[u8], o: &IoOpts) -> (isize, i32, usize) {
    set_errno(4242);
    let mut done = usize::MAX;
    let r = unsafe { resock_writen(fd, buf.as_ptr().cast(), buf.len(), o, &mut done) };
    (r, errno(), done)
}

pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

pub fn set_int_opt(fd: RawFd, level: c_int, name: c_int, value: c_int) {
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const c_int).cast(),
            std::mem::size_of::<c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "setsockopt({level}, {name})");
}

/// Makes `close(fd)` send an RST instead of a FIN (SO_LINGER {1, 0}).
pub fn set_linger_zero(fd: RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0);
}

pub fn set_timeout_opt(fd: RawFd, name: c_int, ms: i64) {
    let tv = libc::timeval {
        tv_sec: ms / 1000,
        tv_usec: (ms % 1000) * 1000,
    };
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0);
}

pub fn set_nonblocking(fd: RawFd) {
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        assert!(flags >= 0);
        assert_eq!(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK), 0);
    }
}

/// A pipe as raw fds (read end, write end), closed by the caller.
pub fn pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    (fds[0], fds[1])
}

pub fn close(fd: RawFd) {
    unsafe { libc::close(fd) };
}

/// A deterministic test pattern: byte i of stream `seed`.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

thread_local! {
    static THREAD_SIGNALS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

extern "C" fn count_signal(_: c_int) {
    THREAD_SIGNALS.with(|c| c.set(c.get() + 1));
}

/// Installs a SIGUSR1 handler *without* SA_RESTART, so blocked syscalls fail with EINTR,
/// and a SIGUSR2 handler *with* SA_RESTART.
pub fn install_eintr_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| unsafe {
        for (sig, flags) in [(libc::SIGUSR1, 0), (libc::SIGUSR2, libc::SA_RESTART)] {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = count_signal as *const () as usize;
            sa.sa_flags = flags;
            libc::sigemptyset(&mut sa.sa_mask);
            assert_eq!(libc::sigaction(sig, &sa, std::ptr::null_mut()), 0);
        }
    });
}

/// Signals handled on the calling thread so far.
pub fn thread_signals_seen() -> usize {
    THREAD_SIGNALS.with(|c| c.get())
}

/// A thread that hits `target` with SIGUSR1 every `every` until dropped (joined on drop,
/// so it never signals a thread that has exited).
pub struct SignalStorm {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<usize>>,
}

impl SignalStorm {
    pub fn start(target: libc::pthread_t, every: Duration) -> Self {
        install_eintr_handler();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let target = target as usize;
        let thread = thread::spawn(move || {
            let mut sent = 0;
            while !flag.load(Ordering::Relaxed) {
                unsafe { libc::pthread_kill(target as libc::pthread_t, libc::SIGUSR1) };
                sent += 1;
                thread::sleep(every);
            }
            sent
        });
        SignalStorm {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the storm and returns how many signals it sent.
    pub fn stop(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().map_or(0, |t| t.join().unwrap())
    }
}

impl Drop for SignalStorm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn raw<T: AsRawFd>(s: &T) -> RawFd {
    s.as_raw_fd()
}

/// A 64-byte test record: connection and sequence numbers, then bytes derived from both.
pub fn record(conn: u32, seq: u32) -> [u8; 64] {
    let mut rec = [0u8; 64];
    rec[..4].copy_from_slice(&conn.to_le_bytes());
    rec[4..8].copy_from_slice(&seq.to_le_bytes());
    for (i, b) in rec[8..].iter_mut().enumerate() {
        *b = (conn as usize * 13 + seq as usize * 7 + i) as u8;
    }
    rec
}

/// The (connection, sequence) of a record, if it is intact.
pub fn record_id(rec: &[u8]) -> Option<(u32, u32)> {
    let conn = u32::from_le_bytes(rec.get(..4)?.try_into().ok()?);
    let seq = u32::from_le_bytes(rec.get(4..8)?.try_into().ok()?);
    (rec == record(conn, seq)).then_some((conn, seq))
}

pub fn record_is_intact(rec: &[u8]) -> bool {
    record_id(rec).is_some()
}

/// Runs one `#[ignore]`d test of this test binary in a child process with `var=value` set,
/// stdin and stdout piped (the child scenarios of the fd, thread and SIGKILL tests).
pub fn spawn_child_test(test: &str, var: &str, value: &str) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(var, value)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// A child's stdout, read a line at a time.
pub struct ChildOutput {
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl ChildOutput {
    pub fn new(child: &mut std::process::Child) -> Self {
        use std::io::BufRead;
        ChildOutput {
            lines: std::io::BufReader::new(child.stdout.take().unwrap()).lines(),
        }
    }

    /// The rest of the next line containing `marker` (the harness may print "test x ... "
    /// before a child's first line).
    pub fn next(&mut self, marker: &str) -> String {
        for line in self.lines.by_ref() {
            if let Some((_, rest)) = line.unwrap().split_once(marker) {
                return rest.trim().to_string();
            }
        }
        panic!("the child ended before printing {marker:?}");
    }
}

/// The number after `key` in a "key=value key=value" line.
pub fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
}
