//! I/O bench (not a test): resock's exact-count calls against the seed's C loop (compiled
//! by build.rs with -O2) and Rust std's read_exact/write_all, on AF_UNIX and loopback TCP;
//! syscalls per message; small messages (16 B to 4 KiB) on sockets and pipes against the
//! plain C loops, with resock's syscalls per call; and the Nagle / delayed-ACK stall that
//! TCP_NODELAY avoids.
//! Runs alternate A B C A B C, and the tables give medians and min–max.
//!
//!     cargo bench -p resock --bench io --features bench [-- ROUNDS] [--svg FILE] [--small]
//!
//! `--small` runs only the small-message table; `--reader` only the buffered-readline
//! table (resock_reader against readline_sync and UNP's buffered readline).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use resock::io::{reset_syscall_counts, syscall_counts};

unsafe extern "C" {
    fn seed_readn(fd: libc::c_int, buf: *mut libc::c_void, n: usize) -> isize;
    fn seed_writen(fd: libc::c_int, buf: *const libc::c_void, n: usize) -> isize;
    fn plain_readn(fd: libc::c_int, buf: *mut libc::c_void, n: usize) -> isize;
    fn readline_sync(fd: libc::c_int, buf: *mut libc::c_void, maxlen: usize) -> isize;
    fn unp_readline(fd: libc::c_int, buf: *mut libc::c_void, maxlen: usize) -> isize;
    static mut unp_read_calls: libc::c_ulong;
    fn resock_reader_new(fd: libc::c_int, bufsize: usize) -> *mut libc::c_void;
    fn resock_reader_readline(
        r: *mut libc::c_void,
        buf: *mut libc::c_void,
        maxlen: usize,
        opts: *const libc::c_void,
        done: *mut usize,
    ) -> isize;
    fn resock_reader_free(r: *mut libc::c_void);
    static mut seed_recv_calls: libc::c_ulong;
    fn readn_sync(fd: libc::c_int, buf: *mut libc::c_void, n: usize) -> isize;
    fn writen_sync(fd: libc::c_int, buf: *const libc::c_void, n: usize) -> isize;
}

#[derive(Clone, Copy, PartialEq)]
enum Impl {
    Seed,
    Resock,
    Std,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::Seed => "seed C loop",
            Impl::Resock => "resock",
            Impl::Std => "std read_exact/write_all",
        }
    }

    fn read(self, fd: RawFd, buf: &mut [u8]) {
        let n = buf.len();
        let got = match self {
            Impl::Seed => unsafe { seed_readn(fd, buf.as_mut_ptr().cast(), n) },
            Impl::Resock => unsafe { readn_sync(fd, buf.as_mut_ptr().cast(), n) },
            Impl::Std => {
                let mut f = std::mem::ManuallyDrop::new(unsafe {
                    <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd)
                });
                f.read_exact(buf).map(|()| n as isize).unwrap_or(-1)
            }
        };
        assert_eq!(got, n as isize);
    }

    fn write(self, fd: RawFd, buf: &[u8]) {
        let n = buf.len();
        let put = match self {
            Impl::Seed => unsafe { seed_writen(fd, buf.as_ptr().cast(), n) },
            Impl::Resock => unsafe { writen_sync(fd, buf.as_ptr().cast(), n) },
            Impl::Std => {
                let mut f = std::mem::ManuallyDrop::new(unsafe {
                    <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd)
                });
                f.write_all(buf).map(|()| n as isize).unwrap_or(-1)
            }
        };
        assert_eq!(put, n as isize);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Transport {
    Unix,
    Tcp,
}

fn pair(t: Transport) -> (OwnedFd, OwnedFd) {
    match t {
        Transport::Unix => {
            let (a, b) = UnixStream::pair().unwrap();
            (a.into(), b.into())
        }
        Transport::Tcp => {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (b, _) = l.accept().unwrap();
            a.set_nodelay(true).unwrap();
            (a.into(), b.into())
        }
    }
}

/// Moves `total` bytes in messages of `size` with one implementation on both ends: MB/s.
fn throughput(imp: Impl, t: Transport, size: usize, total: usize) -> f64 {
    let (tx, rx) = pair(t);
    let messages = total / size;
    let writer = thread::spawn(move || {
        let msg = vec![7u8; size];
        for _ in 0..messages {
            imp.write(tx.as_raw_fd(), &msg);
        }
    });
    let mut buf = vec![0u8; size];
    let start = Instant::now();
    for _ in 0..messages {
        imp.read(rx.as_raw_fd(), &mut buf);
    }
    let took = start.elapsed();
    writer.join().unwrap();
    (messages * size) as f64 / took.as_secs_f64() / 1e6
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn rounds_arg() -> usize {
    std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(7)
}

fn svg_arg() -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--svg")
        .and_then(|i| args.get(i + 1).cloned())
}

/// One bar group per message size and transport, one bar per implementation.
fn write_svg(path: &str, rows: &[(String, [f64; 3])]) {
    let (w, h, pad) = (900.0, 360.0, 60.0);
    let max = rows
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(1.0, f64::max);
    let group = (w - 2.0 * pad) / rows.len() as f64;
    let bar = group / 4.0;
    let colors = ["#999999", "#2a7ab9", "#e39a2d"];
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <text x=\"{pad}\" y=\"20\" font-size=\"14\">Throughput by message size (MB/s, median)</text>\n"
    );
    for (i, (label, values)) in rows.iter().enumerate() {
        let x0 = pad + i as f64 * group;
        for (j, v) in values.iter().enumerate() {
            let bh = v / max * (h - 2.0 * pad);
            svg += &format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"/>\n",
                x0 + j as f64 * bar,
                h - pad - bh,
                bar * 0.9,
                bh,
                colors[j]
            );
        }
        svg += &format!(
            "<text x=\"{:.1}\" y=\"{}\">{label}</text>\n",
            x0,
            h - pad + 15.0
        );
    }
    for (j, imp) in [Impl::Seed, Impl::Resock, Impl::Std].iter().enumerate() {
        svg += &format!(
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
            w - 250.0,
            30.0 + j as f64 * 15.0,
            colors[j],
            w - 235.0,
            39.0 + j as f64 * 15.0,
            imp.name()
        );
    }
    svg += "</svg>\n";
    std::fs::write(path, svg).unwrap();
}

fn main() {
    let rounds = rounds_arg();
    if std::env::args().any(|a| a == "--small") {
        small_messages(rounds);
        return;
    }
    if std::env::args().any(|a| a == "--reader") {
        reader_lines(rounds);
        return;
    }
    println!("## Throughput (MB/s; median of {rounds} alternated runs, min–max)\n");
    println!("| transport | message | seed C loop | resock | std | resock/seed | resock/std |");
    println!("|---|---|---|---|---|---|---|");
    let mut chart = Vec::new();
    for t in [Transport::Unix, Transport::Tcp] {
        for size in [4 << 10, 64 << 10, 1 << 20] {
            let total = 128 << 20;
            let mut runs: [Vec<f64>; 3] = Default::default();
            for _ in 0..rounds {
                for (k, imp) in [Impl::Seed, Impl::Resock, Impl::Std]
                    .into_iter()
                    .enumerate()
                {
                    runs[k].push(throughput(imp, t, size, total));
                }
            }
            let cell = |v: &mut Vec<f64>| {
                let m = median(v);
                (m, format!("{m:.0} ({:.0}–{:.0})", v[0], v[v.len() - 1]))
            };
            let (seed, seed_s) = cell(&mut runs[0]);
            let (res, res_s) = cell(&mut runs[1]);
            let (std, std_s) = cell(&mut runs[2]);
            let tname = if t == Transport::Unix {
                "AF_UNIX"
            } else {
                "TCP loopback"
            };
            let sname = format!("{} KiB", size >> 10);
            println!(
                "| {tname} | {sname} | {seed_s} | {res_s} | {std_s} | {:.2}× | {:.2}× |",
                res / seed,
                res / std
            );
            chart.push((
                format!(
                    "{} {sname}",
                    if t == Transport::Unix { "unix" } else { "tcp" }
                ),
                [seed, res, std],
            ));
        }
    }
    if let Some(path) = svg_arg() {
        write_svg(&path, &chart);
        println!("\n(chart written to {path})");
    }

    small_messages(rounds);
    reader_lines(rounds);

    println!("\n## Syscalls for one 1 MiB message the peer writes in 64 KiB pieces\n");
    println!("| transport | seed C loop recvfrom | resock recv |");
    println!("|---|---|---|");
    for t in [Transport::Unix, Transport::Tcp] {
        let mut counts = [0u64; 2];
        for (k, imp) in [Impl::Seed, Impl::Resock].into_iter().enumerate() {
            let (tx, rx) = pair(t);
            let writer = thread::spawn(move || {
                let piece = vec![1u8; 64 << 10];
                for _ in 0..16 {
                    Impl::Std.write(tx.as_raw_fd(), &piece);
                    thread::sleep(Duration::from_micros(200));
                }
            });
            let mut buf = vec![0u8; 1 << 20];
            unsafe { seed_recv_calls = 0 };
            reset_syscall_counts();
            imp.read(rx.as_raw_fd(), &mut buf);
            counts[k] = match imp {
                Impl::Seed => unsafe { seed_recv_calls },
                _ => syscall_counts().recv,
            };
            writer.join().unwrap();
        }
        let tname = if t == Transport::Unix {
            "AF_UNIX"
        } else {
            "TCP loopback"
        };
        println!("| {tname} | {} | {} |", counts[0], counts[1]);
    }

    println!("\n## The SIGPIPE guard on a pipe: one 1 MiB writen_sync\n");
    println!("| SIGPIPE | write(2) calls | guard syscalls |");
    println!("|---|---|---|");
    for (label, disposition) in [("SIG_DFL", libc::SIG_DFL), ("SIG_IGN", libc::SIG_IGN)] {
        unsafe { libc::signal(libc::SIGPIPE, disposition) };
        let mut fds = [0; 2];
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let reader = thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 20];
            Impl::Resock.read(fds[0], &mut buf);
        });
        reset_syscall_counts();
        Impl::Resock.write(fds[1], &vec![3u8; 1 << 20]);
        let c = syscall_counts();
        reader.join().unwrap();
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        println!("| {label} | {} | {} |", c.write, c.sigmask);
    }

    println!("\n## Latency on loopback TCP (median round trip)\n");
    println!("| pattern | TCP_NODELAY | median | max |");
    println!("|---|---|---|---|");
    for (label, nodelay, split, iters) in [
        ("64-byte request/response", true, false, 2000),
        ("write-write-read (4 B header, 60 B body)", false, true, 20),
        ("write-write-read (4 B header, 60 B body)", true, true, 2000),
        ("writev_sync header+body, then read", false, false, 2000),
    ] {
        let (rtts, max) = latency(nodelay, split, iters);
        let m = rtts[rtts.len() / 2];
        println!(
            "| {label} | {} | {:.1} µs | {:.1} µs |",
            if nodelay { "on" } else { "off" },
            m * 1e6,
            max * 1e6
        );
    }
}

/// Round trips of a 64-byte request (as two writes when `split`, else one writev) and a
/// 1-byte reply; returns the sorted times in seconds and the largest.
fn latency(nodelay: bool, split: bool, iters: usize) -> (Vec<f64>, f64) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (server, _) = l.accept().unwrap();
    client.set_nodelay(nodelay).unwrap();
    let echo = thread::spawn(move || {
        let mut req = [0u8; 64];
        for _ in 0..iters {
            Impl::Resock.read(server.as_raw_fd(), &mut req);
            Impl::Resock.write(server.as_raw_fd(), &[1]);
        }
    });
    let header = [0u8; 4];
    let body = [0u8; 60];
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let start = Instant::now();
        if split {
            Impl::Resock.write(client.as_raw_fd(), &header);
            Impl::Resock.write(client.as_raw_fd(), &body);
        } else {
            let mut iov = [std::io::IoSlice::new(&header), std::io::IoSlice::new(&body)];
            resock::io::write_vectored_full(&client, &mut iov, &resock::io::Opts::default())
                .unwrap();
        }
        let mut reply = [0u8; 1];
        Impl::Resock.read(client.as_raw_fd(), &mut reply);
        times.push(start.elapsed().as_secs_f64());
    }
    echo.join().unwrap();
    let max = times.iter().copied().fold(0.0, f64::max);
    times.sort_by(|a, b| a.total_cmp(b));
    (times, max)
}

/// Where small messages travel: a socketpair or a pipe.
#[derive(Clone, Copy, PartialEq)]
enum Small {
    Unix,
    Pipe,
}

impl Small {
    fn name(self) -> &'static str {
        match self {
            Small::Unix => "AF_UNIX stream",
            Small::Pipe => "pipe",
        }
    }

    /// (read end, write end), owned.
    fn open(self) -> (OwnedFd, OwnedFd) {
        match self {
            Small::Unix => {
                let (a, b) = UnixStream::pair().unwrap();
                (b.into(), a.into())
            }
            Small::Pipe => {
                let mut fds = [0; 2];
                assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
                use std::os::fd::FromRawFd;
                unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
            }
        }
    }
}

/// One message in: the plain C loop (the seed's recvfrom loop on sockets, TLPI's read loop
/// on pipes) or readn_sync.
fn small_read(resock: bool, kind: Small, fd: RawFd, buf: &mut [u8]) {
    let n = buf.len();
    let got = unsafe {
        match (resock, kind) {
            (true, _) => readn_sync(fd, buf.as_mut_ptr().cast(), n),
            (false, Small::Unix) => seed_readn(fd, buf.as_mut_ptr().cast(), n),
            (false, Small::Pipe) => plain_readn(fd, buf.as_mut_ptr().cast(), n),
        }
    };
    assert_eq!(got, n as isize);
}

/// One message out: TLPI's writen or writen_sync.
fn small_write(resock: bool, fd: RawFd, buf: &[u8]) {
    let n = buf.len();
    let put = unsafe {
        if resock {
            writen_sync(fd, buf.as_ptr().cast(), n)
        } else {
            seed_writen(fd, buf.as_ptr().cast(), n)
        }
    };
    assert_eq!(put, n as isize);
}

/// `messages` messages of `size` bytes; resock on the reading or the writing end (`side`),
/// the plain C loop on the other, or the plain loop on both: MB/s.
fn small_throughput(side: Side, resock: bool, kind: Small, size: usize, messages: usize) -> f64 {
    let (rx, tx) = kind.open();
    let writer = thread::spawn(move || {
        let msg = vec![7u8; size];
        for _ in 0..messages {
            small_write(resock && side == Side::Write, tx.as_raw_fd(), &msg);
        }
    });
    let mut buf = vec![0u8; size];
    let start = Instant::now();
    for _ in 0..messages {
        small_read(resock && side == Side::Read, kind, rx.as_raw_fd(), &mut buf);
    }
    let took = start.elapsed();
    writer.join().unwrap();
    (messages * size) as f64 / took.as_secs_f64() / 1e6
}

/// Which end of a small-message run is under test.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Read,
    Write,
}

/// resock's syscalls per readn_sync and per writen_sync, once the fd is known, each
/// counted on its own thread: (readn, writen).
fn small_syscalls(kind: Small, size: usize) -> (f64, f64) {
    const CALLS: u64 = 1000;
    let (rx, tx) = kind.open();
    let writer = thread::spawn(move || {
        let msg = vec![7u8; size];
        small_write(true, tx.as_raw_fd(), &msg);
        reset_syscall_counts();
        for _ in 0..CALLS {
            small_write(true, tx.as_raw_fd(), &msg);
        }
        syscall_counts().total()
    });
    let mut buf = vec![0u8; size];
    small_read(true, kind, rx.as_raw_fd(), &mut buf);
    reset_syscall_counts();
    for _ in 0..CALLS {
        small_read(true, kind, rx.as_raw_fd(), &mut buf);
    }
    let reads = syscall_counts().total();
    let writes = writer.join().unwrap();
    (reads as f64 / CALLS as f64, writes as f64 / CALLS as f64)
}

/// resock's syscalls per readline_sync of a 64-byte line (63 bytes and '\n'), with many
/// lines queued.
fn readline_syscalls(kind: Small) -> f64 {
    const LINES: u64 = 100;
    let (rx, tx) = kind.open();
    let mut line = vec![b'x'; 64];
    line[63] = b'\n';
    for _ in 0..=LINES {
        small_write(true, tx.as_raw_fd(), &line);
    }
    let mut buf = [0u8; 128];
    let first = unsafe { readline_sync(rx.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(first, 64);
    reset_syscall_counts();
    for _ in 0..LINES {
        let n = unsafe { readline_sync(rx.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        assert_eq!(n, 64);
    }
    syscall_counts().total() as f64 / LINES as f64
}

fn small_messages(rounds: usize) {
    println!(
        "\n## Small messages against the plain C loop (MB/s; median of {rounds} alternated runs, min–max)\n"
    );
    println!(
        "The call under test on one end, the plain C loop on the other (the seed's recvfrom loop on\n\
         sockets, TLPI's read loop on pipes, TLPI's writen).\n"
    );
    println!(
        "| fd | message | call | plain C loop | resock | resock/plain | resock syscalls per call |"
    );
    println!("|---|---|---|---|---|---|---|");
    for kind in [Small::Unix, Small::Pipe] {
        for size in [16, 64, 512, 4096] {
            let (per_read, per_write) = small_syscalls(kind, size);
            for (side, per_call) in [(Side::Read, per_read), (Side::Write, per_write)] {
                let messages = 100_000;
                let mut runs: [Vec<f64>; 2] = Default::default();
                for _ in 0..rounds {
                    for (k, resock) in [false, true].into_iter().enumerate() {
                        runs[k].push(small_throughput(side, resock, kind, size, messages));
                    }
                }
                let cell = |v: &mut Vec<f64>| {
                    let m = median(v);
                    (m, format!("{m:.1} ({:.1}–{:.1})", v[0], v[v.len() - 1]))
                };
                let (plain, plain_s) = cell(&mut runs[0]);
                let (res, res_s) = cell(&mut runs[1]);
                let call = if side == Side::Read {
                    "readn"
                } else {
                    "writen"
                };
                println!(
                    "| {} | {size} B | {call} | {plain_s} | {res_s} | {:.2}× | {per_call:.2} |",
                    kind.name(),
                    res / plain
                );
            }
        }
    }
    println!("\n| fd | resock syscalls per readline_sync (64-byte lines, many queued) |");
    println!("|---|---|");
    for kind in [Small::Unix, Small::Pipe] {
        println!("| {} | {:.2} |", kind.name(), readline_syscalls(kind));
    }
}

/// A line reader under test.
#[derive(Clone, Copy, PartialEq)]
enum LineImpl {
    /// resock_reader_readline with a 4096-byte read-ahead (UNP's MAXLINE).
    Reader,
    /// UNP's static-buffer readline, compiled from benches/seed_loop.c.
    Unp,
    /// readline_sync: no read-ahead (peek + read on sockets, a byte per read on pipes).
    Sync,
}

impl LineImpl {
    fn name(self) -> &'static str {
        match self {
            LineImpl::Reader => "resock_reader",
            LineImpl::Unp => "UNP readline",
            LineImpl::Sync => "readline_sync",
        }
    }
}

/// The fds of the readline runs: a pipe, an AF_UNIX stream, TCP loopback.
#[derive(Clone, Copy, PartialEq)]
enum LineFd {
    Pipe,
    Unix,
    Tcp,
}

impl LineFd {
    fn name(self) -> &'static str {
        match self {
            LineFd::Pipe => "pipe",
            LineFd::Unix => "AF_UNIX stream",
            LineFd::Tcp => "TCP loopback",
        }
    }

    /// (read end, write end).
    fn open(self) -> (OwnedFd, OwnedFd) {
        match self {
            LineFd::Pipe => Small::Pipe.open(),
            LineFd::Unix => Small::Unix.open(),
            LineFd::Tcp => {
                let (a, b) = pair(Transport::Tcp);
                (b, a)
            }
        }
    }
}

/// Reads `lines` 64-byte lines (written in 64 KiB batches by another thread) with `imp`:
/// (lines per second, syscalls per line on the reading thread).
fn line_run(imp: LineImpl, fd: LineFd, lines: usize) -> (f64, f64) {
    let (rx, tx) = fd.open();
    let writer = thread::spawn(move || {
        let mut line = [b'x'; 64];
        line[63] = b'\n';
        let batch: Vec<u8> = line.iter().copied().cycle().take(64 << 10).collect();
        let mut left = lines * 64;
        while left > 0 {
            let n = left.min(batch.len());
            small_write(false, tx.as_raw_fd(), &batch[..n]);
            left -= n;
        }
    });
    let reader = match imp {
        LineImpl::Reader => unsafe { resock_reader_new(rx.as_raw_fd(), 4096) },
        _ => std::ptr::null_mut(),
    };
    let mut buf = [0u8; 128];
    reset_syscall_counts();
    unsafe { unp_read_calls = 0 };
    let start = Instant::now();
    for _ in 0..lines {
        let p = buf.as_mut_ptr().cast();
        let n = unsafe {
            match imp {
                LineImpl::Reader => {
                    resock_reader_readline(reader, p, 128, std::ptr::null(), std::ptr::null_mut())
                }
                LineImpl::Unp => unp_readline(rx.as_raw_fd(), p, 128),
                LineImpl::Sync => readline_sync(rx.as_raw_fd(), p, 128),
            }
        };
        assert_eq!(n, 64);
    }
    let took = start.elapsed();
    let calls = match imp {
        LineImpl::Unp => (unsafe { unp_read_calls }) as u64,
        _ => syscall_counts().total(),
    };
    unsafe { resock_reader_free(reader) };
    writer.join().unwrap();
    (
        lines as f64 / took.as_secs_f64(),
        calls as f64 / lines as f64,
    )
}

/// resock_reader against readline_sync and UNP's buffered readline.
fn reader_lines(rounds: usize) {
    println!(
        "\n## Buffered readline: resock_reader vs readline_sync vs UNP (lines/s; median of {rounds} alternated runs, min–max)\n"
    );
    println!("64-byte lines, written in 64 KiB batches by another thread; 4096-byte read-ahead.\n");
    let imps = [LineImpl::Reader, LineImpl::Unp, LineImpl::Sync];
    let [a, b, c] = imps.map(LineImpl::name);
    println!("| fd | {a} | {b} | {c} | reader/UNP | syscalls per line (reader / UNP / sync) |");
    println!("|---|---|---|---|---|---|");
    for fd in [LineFd::Pipe, LineFd::Unix, LineFd::Tcp] {
        let mut runs: [Vec<f64>; 3] = Default::default();
        let mut per_line = [0f64; 3];
        for _ in 0..rounds {
            for (k, imp) in imps.into_iter().enumerate() {
                // readline_sync on a pipe makes 65 syscalls a line: fewer lines, same rate.
                let lines = if imp == LineImpl::Sync {
                    20_000
                } else {
                    200_000
                };
                let (rate, calls) = line_run(imp, fd, lines);
                runs[k].push(rate);
                per_line[k] = calls;
            }
        }
        let cell = |v: &mut Vec<f64>| {
            let m = median(v);
            (
                m,
                format!(
                    "{:.2} M ({:.2}–{:.2})",
                    m / 1e6,
                    v[0] / 1e6,
                    v[v.len() - 1] / 1e6
                ),
            )
        };
        let (reader, reader_s) = cell(&mut runs[0]);
        let (unp, unp_s) = cell(&mut runs[1]);
        let (_, sync_s) = cell(&mut runs[2]);
        println!(
            "| {} | {reader_s} | {unp_s} | {sync_s} | {:.2}× | {:.4} / {:.4} / {:.2} |",
            fd.name(),
            reader / unp,
            per_line[0],
            per_line[1],
            per_line[2]
        );
    }
}
