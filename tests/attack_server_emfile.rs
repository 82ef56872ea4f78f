//! Adversarial review (issue 15): EMFILE in the per-request mode's loop. Its own test binary
//! (its own process): it lowers this process's RLIMIT_NOFILE.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::fd::BorrowedFd;
use std::thread;
use std::time::{Duration, Instant};

use resock::io::{Line, LineEnd, Opts, read_line, write_full};
use resock::server::{Server, ServerConfig};

const LIVENESS: Duration = Duration::from_secs(20);

fn cpu_time() -> Duration {
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn set_nofile(soft: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid out-pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    let old = lim.rlim_cur;
    lim.rlim_cur = soft;
    // SAFETY: a valid rlimit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    old
}

/// Out of fds with connections queued: the edge-triggered loop backs off instead of
/// spinning, keeps serving parked connections, and accepts the queued ones once fds are
/// back (no lost edge: the retry timer, not a new event, resumes accepting).
#[test]
fn held_emfile_in_the_per_request_loop_backs_off_and_recovers() {
    let server = Server::new_per_request(
        ServerConfig::new(Some("127.0.0.1"), "0"),
        |fd: BorrowedFd<'_>, _peer: &_| {
            let mut line = [0u8; 64];
            match read_line(fd, &mut line, &Opts::default()) {
                Ok(Line {
                    len,
                    end: LineEnd::Newline,
                }) => write_full(fd, &line[..len], &Opts::default()).is_ok(),
                _ => false,
            }
        },
    )
    .unwrap();
    let port = server.local_port().unwrap();
    server.start().unwrap();
    let mut first = TcpStream::connect(("127.0.0.1", port)).unwrap();
    first.set_read_timeout(Some(LIVENESS)).unwrap();
    first.write_all(b"a\n").unwrap();
    let mut r = String::new();
    BufReader::new(&first).read_line(&mut r).unwrap();
    assert_eq!(r, "a\n");
    // Make 20 client sockets, leave no fd for the server to accept them with, then
    // connect them (connect needs no fd): every accept meets EMFILE, whatever the timing.
    let sockets: Vec<socket2::Socket> = (0..20)
        .map(|_| socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap())
        .collect();
    // SAFETY: dup of stdin returns the lowest free fd number, closed at once.
    let lowest_free = unsafe {
        let fd = libc::dup(0);
        libc::close(fd);
        fd
    };
    let old = set_nofile(lowest_free as u64);
    let to: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for socket in &sockets {
        socket.connect(&to.into()).unwrap();
    }
    let queued: Vec<TcpStream> = sockets.into_iter().map(TcpStream::from).collect();
    thread::sleep(Duration::from_millis(300));
    let before = cpu_time();
    thread::sleep(Duration::from_secs(2));
    let burnt = cpu_time() - before;
    let stats = server.stats();
    // The parked connection is still served meanwhile.
    first.write_all(b"b\n").unwrap();
    r.clear();
    BufReader::new(&first).read_line(&mut r).unwrap();
    set_nofile(old);
    let deadline = Instant::now() + LIVENESS;
    while server.stats().parked + server.stats().active < 21 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let after = server.stats();
    drop(queued);
    drop(server);
    println!("EMFILE for 2 s: {burnt:?} CPU; {stats:?}; after: {after:?}");
    assert!(stats.emfile >= 1, "{stats:?}");
    assert_eq!(r, "b\n");
    assert!(
        burnt < Duration::from_millis(500),
        "{burnt:?} CPU in 2 s of EMFILE"
    );
    assert!(after.parked + after.active >= 21, "{after:?}");
}
