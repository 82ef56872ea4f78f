//! The Server: stop while blocked, the connection cap, a reset before accept, a panicking
//! handler, honest stats, and EMFILE in a child process with a lowered RLIMIT_NOFILE.

mod common;
#[path = "common/skip.rs"]
mod skip;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{ChildOutput, field, set_linger_zero, spawn_child_test};
use resock::io::{Opts, read_full, write_full};
use resock::server::{AtCap, Server, ServerConfig};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn local() -> ServerConfig {
    ServerConfig::new(Some("127.0.0.1"), "0")
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        thread::sleep(ms(2));
    }
}

/// A gate handlers wait at until the test opens it.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn wait(&self) {
        let (open, cv) = &*self.0;
        let mut open = open.lock().unwrap();
        while !*open {
            open = cv.wait(open).unwrap();
        }
    }

    fn open(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }
}

fn reply_ok(fd: &OwnedFd) {
    let _ = write_full(fd, b"ok", &Opts::default());
}

fn read_reply(stream: &TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = (&*stream).read_to_end(&mut got);
    got
}

#[test]
fn stop_while_blocked_in_accept_is_prompt_and_frees_the_port() {
    let server = Server::new(local(), |fd: OwnedFd, _| reply_ok(&fd)).unwrap();
    let port = server.local_port().unwrap();
    server.start().unwrap();
    thread::sleep(ms(100));
    let start = Instant::now();
    server.stop();
    assert_eq!(server.join(Duration::from_secs(5)).unwrap(), 0);
    assert!(start.elapsed() < ms(1000), "{:?}", start.elapsed());
    // The listener is closed: the port binds again at once.
    TcpListener::bind(("127.0.0.1", port)).expect("rebind after stop");
    assert_eq!(server.local_port().unwrap_err().errno(), libc::EBADF);
}

#[test]
fn run_on_the_callers_thread_until_stopped_from_a_handler() {
    let server = Arc::new(Server::new(local(), |fd: OwnedFd, _| reply_ok(&fd)).unwrap());
    let port = server.local_port().unwrap();
    let runner = {
        let server = server.clone();
        thread::spawn(move || server.run())
    };
    let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(read_reply(&client), b"ok");
    server.stop();
    runner.join().unwrap().unwrap();
    assert_eq!(
        server.run().unwrap_err().errno(),
        libc::EBUSY,
        "one loop per server"
    );
}

#[test]
fn under_the_wait_policy_the_cap_is_backpressure_and_stats_are_honest() {
    let gate = Gate::default();
    let handled = Arc::new(AtomicUsize::new(0));
    let server = {
        let (gate, handled) = (gate.clone(), handled.clone());
        Server::new(
            ServerConfig {
                max_connections: 2,
                at_cap: AtCap::Wait,
                ..local()
            },
            move |fd: OwnedFd, _| {
                gate.wait();
                reply_ok(&fd);
                handled.fetch_add(1, Ordering::SeqCst);
            },
        )
        .unwrap()
    };
    let port = server.local_port().unwrap();
    server.start().unwrap();
    let clients: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    wait_for("two handlers", || server.stats().active == 2);
    thread::sleep(ms(100));
    let s = server.stats();
    assert_eq!(
        (s.accepted, s.active, s.peak),
        (2, 2, 2),
        "at the cap, accepting waits: {s:?}"
    );
    gate.open();
    for c in &clients {
        assert_eq!(read_reply(c), b"ok");
    }
    wait_for("every handler", || handled.load(Ordering::SeqCst) == 5);
    server.stop();
    assert_eq!(server.join(Duration::from_secs(5)).unwrap(), 0);
    let s = server.stats();
    assert_eq!(
        (s.accepted, s.active, s.peak, s.rejected),
        (5, 0, 2, 0),
        "{s:?}"
    );
    assert_eq!(s.accepted as usize, handled.load(Ordering::SeqCst));
}

#[test]
fn a_client_that_resets_before_accept_does_not_stop_the_loop() {
    let gate = Gate::default();
    let server = {
        let gate = gate.clone();
        Server::new(
            ServerConfig {
                max_connections: 1,
                at_cap: AtCap::Wait,
                ..local()
            },
            move |fd: OwnedFd, _| {
                gate.wait();
                let mut buf = [0u8; 1];
                // The reset connection reads ECONNRESET (or EOF); a live one gets "ok".
                if read_full(&fd, &mut buf, &Opts::with_timeout(ms(200))).is_err() {
                    return;
                }
                reply_ok(&fd);
            },
        )
        .unwrap()
    };
    let port = server.local_port().unwrap();
    server.start().unwrap();
    let first = TcpStream::connect(("127.0.0.1", port)).unwrap();
    wait_for("the first handler", || server.stats().active == 1);
    // Queued behind the cap, then reset before the loop accepts it.
    let doomed = TcpStream::connect(("127.0.0.1", port)).unwrap();
    set_linger_zero(doomed.as_raw_fd());
    drop(doomed);
    let last = TcpStream::connect(("127.0.0.1", port)).unwrap();
    (&last).write_all(b"x").unwrap();
    gate.open();
    drop(first);
    assert_eq!(
        read_reply(&last),
        b"ok",
        "the loop went on past the reset connection"
    );
    server.stop();
    server.join(Duration::from_secs(5)).unwrap();
}

#[test]
fn a_panicking_handler_is_contained_and_its_fd_closed() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = {
        let calls = calls.clone();
        Server::new(local(), move |fd: OwnedFd, _| {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("handler bug");
            }
            reply_ok(&fd);
        })
        .unwrap()
    };
    let port = server.local_port().unwrap();
    server.start().unwrap();
    let first = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(
        read_reply(&first),
        b"",
        "the panicking handler's fd was closed: EOF"
    );
    let second = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(read_reply(&second), b"ok");
    server.stop();
    assert_eq!(server.join(Duration::from_secs(5)).unwrap(), 0);
    assert_eq!(server.stats().active, 0);
}

#[test]
fn join_reports_handlers_still_running_after_the_grace() {
    let gate = Gate::default();
    let server = {
        let gate = gate.clone();
        Server::new(local(), move |_fd: OwnedFd, _| gate.wait()).unwrap()
    };
    let port = server.local_port().unwrap();
    server.start().unwrap();
    let _c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    wait_for("the handler", || server.stats().active == 1);
    server.stop();
    assert_eq!(server.join(ms(100)).unwrap(), 1);
    gate.open();
    assert_eq!(server.join(Duration::from_secs(5)).unwrap(), 0);
}

#[test]
fn a_busy_port_is_eaddrinuse_at_new() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    // std's listener has SO_REUSEADDR too, but two listeners still cannot share a port.
    let e = Server::new(
        ServerConfig::new(Some("127.0.0.1"), &port),
        |_: OwnedFd, _| {},
    )
    .unwrap_err();
    assert_eq!(e.errno(), libc::EADDRINUSE);
    let e = Server::new(
        ServerConfig {
            max_connections: 0,
            ..local()
        },
        |_: OwnedFd, _| {},
    )
    .unwrap_err();
    assert_eq!(e.errno(), libc::EINVAL);
}

const EMFILE_VAR: &str = "RESOCK_EMFILE_CHILD";

#[test]
fn emfile_backs_off_instead_of_spinning_and_recovers() {
    let mut child = spawn_child_test("emfile_child", EMFILE_VAR, "1");
    // Liveness: a child stuck for a minute is killed, which fails the reads below.
    let pid = child.id() as libc::pid_t;
    let (done, watch) = std::sync::mpsc::channel::<()>();
    let watchdog = thread::spawn(move || {
        if watch.recv_timeout(Duration::from_secs(60)).is_err() {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let mut out = ChildOutput::new(&mut child);
    let mut next = |marker: &str| out.next(marker);
    let port: u16 = next("port ").parse().unwrap();
    next("exhausted");
    // Five clients connect while the child has no fd to accept them with.
    let clients: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let cpu_ms: u64 = next("cpu_ms ").parse().unwrap();
    for c in &clients {
        assert_eq!(read_reply(c), b"ok", "served once fds were free again");
    }
    let stats = next("stats ");
    let status = child.wait().unwrap();
    let _ = done.send(());
    watchdog.join().unwrap();
    assert!(status.success(), "{status:?}");
    println!("child: cpu_ms {cpu_ms}, {stats}");
    // A spinning loop would burn ~1000 ms of CPU in that second.
    assert!(
        cpu_ms < 300,
        "the accept loop used {cpu_ms} ms of CPU in 1 s of EMFILE"
    );
    assert!(field(&stats, "emfile=") >= 1, "{stats}");
    assert_eq!(field(&stats, "accepted="), 5, "{stats}");
}

#[test]
#[ignore = "runs only as a child of emfile_backs_off_instead_of_spinning_and_recovers"]
fn emfile_child() {
    if std::env::var(EMFILE_VAR).is_err() {
        return;
    }
    let limit = libc::rlimit {
        rlim_cur: 64,
        rlim_max: 64,
    };
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    let server = Server::new(local(), |fd: OwnedFd, _| reply_ok(&fd)).unwrap();
    println!("port {}", server.local_port().unwrap());
    server.start().unwrap();
    let mut hoard = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        hoard.push(f);
    }
    println!("exhausted");
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    let cpu = || {
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
        let tv = |t: libc::timeval| t.tv_sec as u64 * 1000 + t.tv_usec as u64 / 1000;
        tv(u.ru_utime) + tv(u.ru_stime)
    };
    let before = cpu();
    thread::sleep(Duration::from_secs(1));
    println!("cpu_ms {}", cpu() - before);
    drop(hoard);
    wait_for("the queued clients", || server.stats().accepted == 5);
    server.stop();
    server.join(Duration::from_secs(5)).unwrap();
    let s = server.stats();
    println!(
        "stats emfile={} accepted={} errors={}",
        s.emfile, s.accepted, s.accept_errors
    );
}

const NPROC_VAR: &str = "RESOCK_NPROC_CHILD";

#[test]
fn thread_creation_failure_closes_the_connection_and_the_loop_goes_on() {
    let mut child = spawn_child_test("nproc_child", NPROC_VAR, "1");
    let mut out = ChildOutput::new(&mut child);
    let mut next = |marker: &str| out.next(marker);
    let port = next("port ");
    if port == "skip" {
        skip::skip(&next("reason "));
        let _ = child.wait();
        return;
    }
    let port: u16 = port.parse().unwrap();
    // No handler thread can start: each connection is closed at once (EOF or reset).
    for _ in 0..3 {
        let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = Vec::new();
        match (&client).read_to_end(&mut buf) {
            Ok(_) => assert!(buf.is_empty(), "a handler ran: {buf:?}"),
            Err(e) => assert_eq!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset,
                "not closed at once: {e}"
            ),
        }
    }
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let stats = next("stats ");
    assert!(child.wait().unwrap().success());
    println!("child: {stats}");
    assert!(field(&stats, "spawn_failures=") >= 3, "{stats}");
    assert_eq!(
        field(&stats, "rejected="),
        field(&stats, "spawn_failures="),
        "{stats}"
    );
    assert_eq!(field(&stats, "accepted="), 0, "{stats}");
}

#[test]
#[ignore = "runs only as a child of thread_creation_failure_closes_the_connection_and_the_loop_goes_on"]
fn nproc_child() {
    if std::env::var(NPROC_VAR).is_err() {
        return;
    }
    let server = Server::new(local(), |fd: OwnedFd, _| reply_ok(&fd)).unwrap();
    let port = server.local_port().unwrap();
    server.start().unwrap();
    // RLIMIT_NPROC binds only a non-root user: drop to nobody with no thread to spare.
    let threads = std::fs::read_dir("/proc/self/task").unwrap().count() as libc::rlim_t;
    let limit = libc::rlimit {
        rlim_cur: threads,
        rlim_max: threads,
    };
    let dropped = unsafe {
        libc::setrlimit(libc::RLIMIT_NPROC, &limit) == 0
            && (libc::geteuid() != 0 || (libc::setgid(65534) == 0 && libc::setuid(65534) == 0))
    };
    if !dropped || std::thread::Builder::new().spawn(|| {}).is_ok() {
        println!("port skip");
        println!("reason RLIMIT_NPROC cannot be made to bind here");
        return;
    }
    println!("port {port}");
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    server.stop();
    server.join(Duration::from_secs(5)).unwrap();
    let s = server.stats();
    println!(
        "stats spawn_failures={} rejected={} accepted={} active={}",
        s.spawn_failures, s.rejected, s.accepted, s.active
    );
}
