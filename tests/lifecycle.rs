//! The lifecycle rules of the dialer, client and server handles, tried from the C ABI the
//! way a C host calls them: stop, join and free from other threads and from callbacks,
//! while a call is inside. Each race is made deterministic with a pause point
//! (`resock::test_hooks`): the test stops a resock thread exactly in the window the bug
//! lived in, makes the racing call, then lets the thread go on.
//!
//! Every test holds `SERIAL`: a pause point stops the first thread of the whole process
//! that reaches it, so two tests must never have their threads near the same point.

mod common;

use std::ffi::CString;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::handles::*;
use common::{c_int, c_void, errno};
use resock::dial::State;
use resock::test_hooks;

/// Generous: every wait below is for something that takes microseconds when it works.
const LIVENESS: Duration = Duration::from_secs(10);
/// How long a call must stay blocked to count as "waiting" (a broken one returns at once).
const STILL_BLOCKED: Duration = Duration::from_millis(300);

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIVENESS;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

/// Runs `f` on a thread and returns its result, failing the test if it takes longer than
/// [`LIVENESS`].
fn finishes<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(LIVENESS)
        .unwrap_or_else(|_| panic!("{what} did not finish within {LIVENESS:?}"))
}

/// A raw pointer that may cross threads (the C API's handles are used from any thread).
struct Handle<T>(*mut T);
impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Handle<T> {}
// SAFETY: the C API documents these handles as usable from any thread.
unsafe impl<T> Send for Handle<T> {}

fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

// ---------------------------------------------------------------- server

/// A handler that blocks until the test drops the next gate of `GATES` (none: it returns
/// at once), and records its thread id.
static GATES: Mutex<std::collections::VecDeque<mpsc::Receiver<()>>> =
    Mutex::new(std::collections::VecDeque::new());
static HANDLER_TID: AtomicI32 = AtomicI32::new(0);
static HANDLED: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn gated_handler(
    _fd: c_int,
    _p: *const libc::sockaddr,
    _l: u32,
    _u: *mut c_void,
) {
    HANDLER_TID.store(gettid(), Ordering::SeqCst);
    HANDLED.fetch_add(1, Ordering::SeqCst);
    let gate = GATES.lock().unwrap().pop_front();
    if let Some(gate) = gate {
        let _ = gate.recv_timeout(LIVENESS * 3);
    }
}

unsafe extern "C" fn quick_handler(
    _fd: c_int,
    _p: *const libc::sockaddr,
    _l: u32,
    _u: *mut c_void,
) {
    HANDLER_TID.store(gettid(), Ordering::SeqCst);
    HANDLED.fetch_add(1, Ordering::SeqCst);
}

/// A gate for the next handler call; drop it to let that handler return.
fn close_gate() -> mpsc::Sender<()> {
    let (tx, rx) = mpsc::channel();
    GATES.lock().unwrap().push_back(rx);
    tx
}

/// A server with `max_connections`; at the cap it waits (RESOCK_AT_CAP_WAIT), the policy
/// whose stop could be lost.
fn new_server(handler: HandlerFn, max_connections: u32) -> (Handle<Server>, u16) {
    let mut cfg = server_config(handler, ptr::null_mut());
    cfg.max_connections = max_connections;
    cfg.at_cap = 1;
    // SAFETY: a valid config.
    let s = unsafe { resock_server_new(&cfg) };
    assert!(!s.is_null(), "resock_server_new: errno {}", errno());
    // SAFETY: live.
    let port = unsafe { resock_server_port(s) };
    (Handle(s), port as u16)
}

/// Connects and waits until a handler has run for it.
fn connect_and_wait_handled(port: u16) -> TcpStream {
    let before = HANDLED.load(Ordering::SeqCst);
    let conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    wait_for("the handler", || HANDLED.load(Ordering::SeqCst) > before);
    conn
}

fn spawn_run(s: Handle<Server>) -> thread::JoinHandle<(c_int, i32)> {
    thread::spawn(move || {
        let s = s;
        // SAFETY: live until the test frees it, which waits for this call.
        let rc = unsafe { resock_server_run(s.0) };
        (rc, errno())
    })
}

/// Defect 1: join after stop must wait for an accept loop running in resock_server_run on
/// another thread; once join returned, the port is free.
#[test]
fn server_join_waits_for_a_loop_running_in_run_on_another_thread() {
    let _serial = serial();
    let (s, port) = new_server(quick_handler, 16);
    let runner = spawn_run(s);
    drop(connect_and_wait_handled(port));

    let hook = test_hooks::arm("server.loop_ending");
    // SAFETY: live.
    unsafe { resock_server_stop(s.0) };
    assert!(hook.wait_arrived(LIVENESS), "the loop never saw the stop");
    let join = thread::spawn(move || {
        let s = s;
        // SAFETY: live.
        unsafe { resock_server_join(s.0, -1) }
    });
    thread::sleep(STILL_BLOCKED);
    assert!(
        !join.is_finished(),
        "join returned while the accept loop was still running"
    );
    hook.release();
    assert_eq!(join.join().unwrap(), 0);
    assert!(port_is_free(port), "port {port} still bound after join");
    assert_eq!(runner.join().unwrap(), (0, 0));
    // SAFETY: live; freed once.
    unsafe { resock_server_free(s.0) };
}

/// Defect 1, the free: resock_server_free while resock_server_run runs on another thread
/// waits for the loop; the loop never touches freed memory and run returns 0.
#[test]
fn server_free_while_run_is_inside_waits_for_the_loop() {
    let _serial = serial();
    let (s, port) = new_server(quick_handler, 16);
    let runner = spawn_run(s);
    drop(connect_and_wait_handled(port));

    let hook = test_hooks::arm("server.loop_ending");
    let free = thread::spawn(move || {
        let s = s;
        // SAFETY: live; freed once; no call starts after it.
        unsafe { resock_server_free(s.0) }
    });
    assert!(hook.wait_arrived(LIVENESS), "free did not stop the loop");
    thread::sleep(STILL_BLOCKED);
    assert!(!free.is_finished(), "free returned under a running loop");
    hook.release();
    free.join().unwrap();
    assert_eq!(runner.join().unwrap(), (0, 0));
    assert!(port_is_free(port));
}

/// Defect 2: join(-1) waits for ever — for running handlers too — and returns 0, instead of
/// panicking inside and returning -1/EIO at once.
#[test]
fn server_join_minus_one_waits_for_handlers_and_returns_zero() {
    let _serial = serial();
    let (s, port) = new_server(gated_handler, 16);
    let gate = close_gate();
    // SAFETY: live.
    assert_eq!(unsafe { resock_server_start(s.0) }, 0);
    let _conn = connect_and_wait_handled(port);
    // SAFETY: live.
    unsafe { resock_server_stop(s.0) };
    let join = thread::spawn(move || {
        let s = s;
        common::set_errno(0);
        // SAFETY: live.
        let rc = unsafe { resock_server_join(s.0, -1) };
        (rc, errno())
    });
    thread::sleep(STILL_BLOCKED);
    assert!(!join.is_finished(), "join(-1) did not wait for the handler");
    drop(gate);
    assert_eq!(join.join().unwrap(), (0, 0));
    // SAFETY: live; freed once.
    unsafe { resock_server_free(s.0) };
}

/// Defect 7: a stop that lands while the loop waits at max_connections (after its check,
/// before its wait) is not lost: the loop ends and closes the listener although handlers
/// still run (and so nothing else would wake it).
#[test]
fn server_stop_at_the_connection_cap_is_never_lost() {
    let _serial = serial();
    let (s, port) = new_server(gated_handler, 2);
    let (gate_a, gate_b, gate_c) = (close_gate(), close_gate(), close_gate());
    // SAFETY: live.
    assert_eq!(unsafe { resock_server_start(s.0) }, 0);
    let _a = connect_and_wait_handled(port);
    let _b = connect_and_wait_handled(port);
    // The loop waits at the cap now; arm the point, free a slot, and fill it again so the
    // loop comes back to the check with the point armed. The point is inside the state
    // lock: C's handler cannot start until it is released.
    let hook = test_hooks::arm("server.slot_wait");
    drop(gate_a);
    let _c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert!(
        hook.wait_arrived(LIVENESS),
        "the loop never waited at the cap"
    );
    let stop = thread::spawn(move || {
        let s = s;
        // SAFETY: live.
        unsafe { resock_server_stop(s.0) };
    });
    // Let the stop land in the window (or block on the state lock, where it belongs).
    thread::sleep(Duration::from_millis(50));
    hook.release();
    stop.join().unwrap();
    let running = finishes("join(0) after a stop at the cap", move || {
        let s = s;
        // SAFETY: live.
        unsafe { resock_server_join(s.0, 0) }
    });
    assert!(
        running >= 1,
        "B (and C) are gated, yet join reports {running}"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the listener is still open after stop + join"
    );
    drop((gate_b, gate_c));
    // SAFETY: live.
    assert_eq!(unsafe { resock_server_join(s.0, -1) }, 0);
    // SAFETY: live; freed once.
    unsafe { resock_server_free(s.0) };
}

/// Defect 7, the pool: a stop that lands while an idle pool thread is about to wait is not
/// lost either; after join returned 0 the pool thread is gone, not idling out its timeout.
#[test]
fn server_join_leaves_no_idle_pool_thread_behind() {
    let _serial = serial();
    let (s, port) = new_server(quick_handler, 16);
    let hook = test_hooks::arm("server.worker_idle");
    // SAFETY: live.
    assert_eq!(unsafe { resock_server_start(s.0) }, 0);
    drop(connect_and_wait_handled(port));
    // The worker went back to the pool and stopped at the point (its first idle wait
    // happened before the job: the hook may stop it there, which is the same window).
    assert!(hook.wait_arrived(LIVENESS));
    let worker = HANDLER_TID.load(Ordering::SeqCst);
    let stop = thread::spawn(move || {
        let s = s;
        // SAFETY: live.
        unsafe { resock_server_stop(s.0) };
    });
    thread::sleep(Duration::from_millis(50));
    hook.release();
    stop.join().unwrap();
    // Bounded below the pool's 10 s idle exit: a lost stop would show as a join that
    // waits for the worker to idle out.
    let started = Instant::now();
    let running = finishes("join(-1) with an idle pool", move || {
        let s = s;
        // SAFETY: live.
        unsafe { resock_server_join(s.0, -1) }
    });
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "join waited {:?} for an idle worker",
        started.elapsed()
    );
    assert_eq!(running, 0);
    assert!(
        !thread_alive(worker),
        "pool thread {worker} outlived a join that returned 0"
    );
    // SAFETY: live; freed once.
    unsafe { resock_server_free(s.0) };
}

/// join(-1) from one of the server's own handlers would wait for itself: EDEADLK.
#[test]
fn server_join_forever_from_a_handler_is_edeadlk() {
    static SELF: AtomicPtr<Server> = AtomicPtr::new(ptr::null_mut());
    static RESULT: AtomicI32 = AtomicI32::new(0);
    unsafe extern "C" fn joining(_fd: c_int, _p: *const libc::sockaddr, _l: u32, _u: *mut c_void) {
        // SAFETY: the server outlives its handlers.
        let rc = unsafe { resock_server_join(SELF.load(Ordering::SeqCst), -1) };
        RESULT.store(if rc == -1 { errno() } else { 1000 + rc }, Ordering::SeqCst);
        HANDLED.fetch_add(1, Ordering::SeqCst);
    }
    let _serial = serial();
    let (s, port) = new_server(joining, 16);
    SELF.store(s.0, Ordering::SeqCst);
    // SAFETY: live.
    assert_eq!(unsafe { resock_server_start(s.0) }, 0);
    drop(connect_and_wait_handled(port));
    assert_eq!(RESULT.load(Ordering::SeqCst), libc::EDEADLK);
    // SAFETY: live; freed once.
    unsafe { resock_server_free(s.0) };
}

// ---------------------------------------------------------------- dialer

fn new_dialer(host: &str, port: u16, backoff_initial_ms: c_int) -> Handle<Dialer> {
    let host = CString::new(host).unwrap();
    let port = CString::new(port.to_string()).unwrap();
    let mut cfg = dial_config(&host, &port);
    cfg.backoff_initial_ms = backoff_initial_ms;
    cfg.backoff_max_ms = backoff_initial_ms.max(cfg.backoff_max_ms);
    cfg.backoff_jitter = 0.0;
    // SAFETY: a valid config; the strings are copied.
    let d = unsafe { resock_dialer_new(&cfg) };
    assert!(!d.is_null(), "resock_dialer_new: errno {}", errno());
    Handle(d)
}

fn spawn_dial(d: Handle<Dialer>) -> thread::JoinHandle<(c_int, i32)> {
    thread::spawn(move || {
        let d = d;
        // SAFETY: the dialer outlives this call: free keeps it alive until dial returns.
        let fd = unsafe { resock_dial(d.0) };
        (fd, errno())
    })
}

/// Defect 3: resock_dialer_free after a stop while another thread is still inside
/// resock_dial: the dial returns ECANCELED without touching freed memory, and never reads
/// from an fd the application opened after the free.
#[test]
fn dialer_free_while_dial_is_inside_touches_nothing_of_the_host() {
    let _serial = serial();
    // Refused at once, then a one-minute backoff.
    let d = new_dialer("127.0.0.1", dead_port(), 60_000);
    let dial = spawn_dial(d);
    wait_for("the backoff", || dialer_stats(d.0).state == State::Backoff);
    let hook = test_hooks::arm("dial.woken");
    // SAFETY: live.
    unsafe { resock_dialer_stop(d.0) };
    assert!(
        hook.wait_arrived(LIVENESS),
        "the stop did not wake the dial"
    );
    // SAFETY: the caller's reference, released once; the dial still holds its own.
    unsafe { resock_dialer_free(d.0) };
    // The host reuses fd numbers at once: if free had closed the dialer's wake fds, these
    // pipes would get their numbers and the dial's drain would steal their bytes.
    let pipes: Vec<(i32, i32)> = (0..4).map(|_| common::pipe()).collect();
    for &(_, w) in &pipes {
        assert_eq!(common::writen(w, b"x").0, 1);
    }
    hook.release();
    assert_eq!(dial.join().unwrap(), (-1, libc::ECANCELED));
    for &(r, w) in &pipes {
        common::set_nonblocking(r);
        let mut byte = [0u8; 1];
        // SAFETY: a valid buffer.
        let n = unsafe { libc::read(r, byte.as_mut_ptr().cast(), 1) };
        assert_eq!(n, 1, "a byte of the host's pipe (fd {r}) was stolen");
        common::close(r);
        common::close(w);
    }
}

/// Defect 9: a second thread in resock_dial on the same dialer is refused with EBUSY at
/// once, instead of sleeping through a stop that only wakes the first.
#[test]
fn a_second_concurrent_dial_is_ebusy_and_stop_wakes_the_first() {
    let _serial = serial();
    let d = new_dialer("127.0.0.1", dead_port(), 60_000);
    let first = spawn_dial(d);
    wait_for("the backoff", || dialer_stats(d.0).state == State::Backoff);
    let second = finishes("a second resock_dial", move || {
        let d = d;
        // SAFETY: live.
        let fd = unsafe { resock_dial(d.0) };
        (fd, errno())
    });
    assert_eq!(second, (-1, libc::EBUSY));
    // SAFETY: live.
    unsafe { resock_dialer_stop(d.0) };
    let first = finishes("the first dial after stop", move || first.join().unwrap());
    assert_eq!(first, (-1, libc::ECANCELED));
    // SAFETY: live; freed once.
    unsafe { resock_dialer_free(d.0) };
}

/// Defect 8: stop interrupts name resolution. The resolver is held inside (as an
/// unresponsive DNS server would hold getaddrinfo); the dial still ends at once.
#[test]
fn stop_interrupts_a_resolve_in_flight() {
    let _serial = serial();
    let d = new_dialer("localhost", dead_port(), 100);
    let hook = test_hooks::arm("net.resolve");
    let dial = spawn_dial(d);
    assert!(hook.wait_arrived(LIVENESS), "no resolve started");
    let started = Instant::now();
    // SAFETY: live.
    unsafe { resock_dialer_stop(d.0) };
    let result = finishes("a dial stopped during its resolve", move || {
        dial.join().unwrap()
    });
    assert_eq!(result, (-1, libc::ECANCELED));
    println!(
        "stop during a resolve: dial returned after {:?}",
        started.elapsed()
    );
    // SAFETY: live; freed once.
    unsafe { resock_dialer_free(d.0) };
    // The abandoned resolver thread finishes on its own.
    hook.release();
}

// ---------------------------------------------------------------- client

/// What the client callbacks below share with the test.
struct Probe {
    client: AtomicPtr<Client>,
    records: AtomicUsize,
    connects: AtomicUsize,
    disconnects_after_free: AtomicUsize,
    freed: AtomicBool,
    thread: AtomicI32,
    /// on_connect blocks until this is set (when `gate_connect`).
    gate_connect: AtomicBool,
    in_connect: AtomicBool,
    refuse: AtomicBool,
}

impl Probe {
    const fn new() -> Probe {
        Probe {
            client: AtomicPtr::new(ptr::null_mut()),
            records: AtomicUsize::new(0),
            connects: AtomicUsize::new(0),
            disconnects_after_free: AtomicUsize::new(0),
            freed: AtomicBool::new(false),
            thread: AtomicI32::new(0),
            gate_connect: AtomicBool::new(false),
            in_connect: AtomicBool::new(false),
            refuse: AtomicBool::new(false),
        }
    }
}

fn probe<'a>(user: *mut c_void) -> &'a Probe {
    // SAFETY: every test passes a &'static Probe as user.
    unsafe { &*user.cast::<Probe>() }
}

unsafe extern "C" fn record_then_free(_rec: *const c_void, _len: usize, user: *mut c_void) {
    let p = probe(user);
    p.thread.store(gettid(), Ordering::SeqCst);
    if p.records.fetch_add(1, Ordering::SeqCst) == 0 {
        // SAFETY: the client is live; freed once, from its own callback (allowed).
        unsafe { resock_client_free(p.client.load(Ordering::SeqCst)) };
        p.freed.store(true, Ordering::SeqCst);
    }
}

unsafe extern "C" fn count_disconnect(_c: c_int, _e: c_int, _l: i64, user: *mut c_void) {
    let p = probe(user);
    if p.freed.load(Ordering::SeqCst) {
        p.disconnects_after_free.fetch_add(1, Ordering::SeqCst);
    }
}

unsafe extern "C" fn gated_connect(fd: c_int, user: *mut c_void) -> c_int {
    let p = probe(user);
    p.in_connect.store(true, Ordering::SeqCst);
    while p.gate_connect.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(1));
    }
    p.connects.fetch_add(1, Ordering::SeqCst);
    if p.refuse.load(Ordering::SeqCst) {
        return 1;
    }
    assert_eq!(common::writen(fd, b"HELLO").0, 5);
    0
}

unsafe extern "C" fn idle_session(fd: c_int, _r: *mut c_void, _user: *mut c_void) -> c_int {
    let mut buf = [0u8; 64];
    // Until the peer closes or a stop shuts the socket down.
    while common::readn(fd, &mut buf).0 > 0 {}
    0
}

/// A one-connection server thread on loopback that hands each accepted stream to `serve`.
fn one_connection_server(
    serve: impl FnOnce(TcpStream) + Send + 'static,
) -> (u16, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            serve(stream);
        }
    });
    (port, server)
}

fn start_client(mut cfg: ClientConfig, probe: &'static Probe) -> Handle<Client> {
    cfg.user = ptr::from_ref(probe).cast_mut().cast();
    // SAFETY: a valid config; the probe is static.
    let c = unsafe { resock_client_start(&cfg) };
    assert!(!c.is_null(), "resock_client_start: errno {}", errno());
    probe.client.store(c, Ordering::SeqCst);
    Handle(c)
}

/// Defect 4: resock_client_free from inside on_record: no callback runs after it —
/// on_disconnect included — and the client thread ends on its own.
#[test]
fn client_free_from_a_callback_runs_no_callback_after_it() {
    static PROBE: Probe = Probe::new();
    let _serial = serial();
    let (port, server) = one_connection_server(|mut stream| {
        use std::io::Write;
        for _ in 0..4 {
            let _ = stream.write_all(&[7u8; 16]);
        }
        // Keep the connection open until the client leaves.
        let mut sink = [0u8; 1];
        let _ = std::io::Read::read(&mut stream, &mut sink);
    });
    let host = CString::new("127.0.0.1").unwrap();
    let port_s = CString::new(port.to_string()).unwrap();
    let mut cfg = client_config(dial_config(&host, &port_s));
    cfg.record_size = 16;
    cfg.on_record = Some(record_then_free);
    cfg.on_disconnect = Some(count_disconnect);
    let _client = start_client(cfg, &PROBE);
    wait_for("the free inside on_record", || {
        PROBE.freed.load(Ordering::SeqCst)
    });
    let tid = PROBE.thread.load(Ordering::SeqCst);
    wait_for("the client thread to end", || !thread_alive(tid));
    assert_eq!(PROBE.disconnects_after_free.load(Ordering::SeqCst), 0);
    assert_eq!(
        PROBE.records.load(Ordering::SeqCst),
        1,
        "on_record ran after the free"
    );
    server.join().unwrap();
}

/// Defect 6: record_size beyond the documented maximum is EINVAL up front — never an
/// abort in the client thread (1 TiB) or a thread that panics and never dials (above
/// isize::MAX). The maximum itself is accepted.
#[test]
fn client_record_size_is_validated_before_the_thread_starts() {
    static PROBE: Probe = Probe::new();
    let _serial = serial();
    let host = CString::new("127.0.0.1").unwrap();
    let port = CString::new(dead_port().to_string()).unwrap();
    for size in [1usize << 40, usize::MAX, (64 << 20) + 1] {
        let mut cfg = client_config(dial_config(&host, &port));
        cfg.record_size = size;
        cfg.on_record = Some(record_then_free);
        common::set_errno(0);
        // SAFETY: a valid config apart from the size under test.
        let c = unsafe { resock_client_start(&cfg) };
        assert!(c.is_null(), "record_size {size} was accepted");
        assert_eq!(errno(), libc::EINVAL, "record_size {size}");
    }
    let mut cfg = client_config(dial_config(&host, &port));
    cfg.record_size = 64 << 20;
    cfg.on_record = Some(record_then_free);
    let c = start_client(cfg, &PROBE);
    // SAFETY: live; freed once.
    unsafe { resock_client_free(c.0) };
}

/// Defect 10: a send from another thread while on_connect runs gets ENOTCONN and nothing
/// reaches the wire before the handshake; after on_connect accepted, sends follow it.
#[test]
fn sends_never_overtake_the_handshake() {
    static PROBE: Probe = Probe::new();
    let _serial = serial();
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let (port, server) = one_connection_server(move |mut stream| {
        let mut got = vec![0u8; 9];
        std::io::Read::read_exact(&mut stream, &mut got).unwrap();
        tx.send(got).unwrap();
    });
    let host = CString::new("127.0.0.1").unwrap();
    let port_s = CString::new(port.to_string()).unwrap();
    let mut cfg = client_config(dial_config(&host, &port_s));
    cfg.on_connect = Some(gated_connect);
    cfg.session = Some(idle_session);
    PROBE.gate_connect.store(true, Ordering::SeqCst);
    let c = start_client(cfg, &PROBE);
    wait_for("on_connect", || PROBE.in_connect.load(Ordering::SeqCst));
    // SAFETY: live; a valid buffer.
    let rc = unsafe { resock_client_send(c.0, b"EARLY".as_ptr().cast(), 5) };
    assert_eq!(
        (rc, errno()),
        (-1, libc::ENOTCONN),
        "send during on_connect"
    );
    PROBE.gate_connect.store(false, Ordering::SeqCst);
    wait_for("a send after the handshake", || {
        // SAFETY: live; a valid buffer.
        unsafe { resock_client_send(c.0, b"DATA".as_ptr().cast(), 4) == 0 }
    });
    assert_eq!(rx.recv_timeout(LIVENESS).unwrap(), b"HELLODATA");
    // SAFETY: live; freed once.
    unsafe { resock_client_free(c.0) };
    server.join().unwrap();
}

/// Defect 10, refused: a connection that on_connect refuses never accepted a send.
#[test]
fn a_refused_handshake_never_accepted_a_send() {
    static PROBE: Probe = Probe::new();
    let _serial = serial();
    let (port, server) = one_connection_server(|mut stream| {
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stream, &mut rest);
        assert!(
            rest.is_empty(),
            "bytes reached a refused connection: {rest:?}"
        );
    });
    let host = CString::new("127.0.0.1").unwrap();
    let port_s = CString::new(port.to_string()).unwrap();
    let mut dial = dial_config(&host, &port_s);
    dial.max_attempts = 1;
    let mut cfg = client_config(dial);
    cfg.on_connect = Some(gated_connect);
    cfg.session = Some(idle_session);
    PROBE.gate_connect.store(true, Ordering::SeqCst);
    PROBE.refuse.store(true, Ordering::SeqCst);
    let c = start_client(cfg, &PROBE);
    wait_for("on_connect", || PROBE.in_connect.load(Ordering::SeqCst));
    // SAFETY: live; a valid buffer.
    let rc = unsafe { resock_client_send(c.0, b"EARLY".as_ptr().cast(), 5) };
    assert_eq!((rc, errno()), (-1, libc::ENOTCONN));
    PROBE.gate_connect.store(false, Ordering::SeqCst);
    server.join().unwrap();
    // SAFETY: live; freed once.
    unsafe { resock_client_free(c.0) };
}

/// join from the client's own first callback is EDEADLK, never a wait for itself: the
/// thread knows it is the client's before any callback runs.
#[test]
fn join_from_the_first_callback_is_edeadlk() {
    static PROBE: Probe = Probe::new();
    static RESULT: AtomicI32 = AtomicI32::new(0);
    unsafe extern "C" fn join_in_connect(_fd: c_int, user: *mut c_void) -> c_int {
        let p = probe(user);
        wait_for("the handle", || !p.client.load(Ordering::SeqCst).is_null());
        // SAFETY: live.
        let rc = unsafe { resock_client_join(p.client.load(Ordering::SeqCst), -1) };
        RESULT.store(if rc == -1 { errno() } else { 1000 }, Ordering::SeqCst);
        p.in_connect.store(true, Ordering::SeqCst);
        0
    }
    let _serial = serial();
    let (port, server) = one_connection_server(|mut stream| {
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stream, &mut rest);
    });
    let host = CString::new("127.0.0.1").unwrap();
    let port_s = CString::new(port.to_string()).unwrap();
    let mut cfg = client_config(dial_config(&host, &port_s));
    cfg.on_connect = Some(join_in_connect);
    cfg.session = Some(idle_session);
    let c = start_client(cfg, &PROBE);
    wait_for("on_connect", || PROBE.in_connect.load(Ordering::SeqCst));
    assert_eq!(RESULT.load(Ordering::SeqCst), libc::EDEADLK);
    // SAFETY: live; freed once.
    unsafe { resock_client_free(c.0) };
    server.join().unwrap();
}

// ---------------------------------------------------------------- stop latency

/// A listener whose accept queue is full: a SYN to it is dropped, so a connect hangs.
fn black_hole() -> (TcpListener, Vec<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: a valid socket.
    unsafe { libc::listen(listener.as_raw_fd(), 0) };
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    for _ in 0..64 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(1000)) {
            Ok(s) => queued.push(s),
            Err(_) => return (listener, queued),
        }
    }
    panic!("the accept queue never filled");
}

/// The client [`client_stop_latency`] runs (one at a time: the tests are serial).
static LATENCY: Probe = Probe::new();

/// Starts a client in session mode against `host`:`port` with `session`, waits until
/// `ready` holds, then measures stop + join.
fn client_stop_latency(
    host: &str,
    port: u16,
    session: Option<SessionFn>,
    ready: impl FnMut() -> bool,
) -> Duration {
    let host = CString::new(host).unwrap();
    let port_s = CString::new(port.to_string()).unwrap();
    let mut dial = dial_config(&host, &port_s);
    dial.connect_timeout_ms = 600_000;
    dial.backoff_initial_ms = 600_000;
    dial.backoff_max_ms = 600_000;
    let mut cfg = client_config(dial);
    cfg.session = Some(session.unwrap_or(idle_session));
    let c = start_client(cfg, &LATENCY);
    wait_for("the blocking point", ready);
    let started = Instant::now();
    let rc = finishes("client stop + join", move || {
        let c = c;
        // SAFETY: live.
        unsafe {
            resock_client_stop(c.0);
            resock_client_join(c.0, -1)
        }
    });
    let took = started.elapsed();
    assert_eq!(rc, 0);
    // SAFETY: live; freed once.
    unsafe { resock_client_free(c.0) };
    took
}

fn latency_client_state() -> State {
    let mut out = resock::dial::Stats::default();
    // SAFETY: the client is live while the latency test polls it.
    unsafe { resock_client_stats(LATENCY.client.load(Ordering::SeqCst), &mut out) };
    out.state
}

unsafe extern "C" fn write_until_blocked(fd: c_int, _r: *mut c_void, _user: *mut c_void) -> c_int {
    let chunk = vec![0u8; 1 << 20];
    // Nobody reads: the socket buffers fill and the write blocks until the stop.
    while common::writen(fd, &chunk).0 > 0 {}
    0
}

/// Stop + join is prompt from every blocking point; the bound is generous (LIVENESS),
/// the figures are printed for the record.
#[test]
fn stop_and_join_are_prompt_from_every_blocking_point() {
    let _serial = serial();
    let mut table = Vec::new();

    let (hole, _queued) = black_hole();
    let hole_port = hole.local_addr().unwrap().port();
    let took = client_stop_latency("127.0.0.1", hole_port, None, || {
        latency_client_state() == State::Connecting
    });
    table.push(("client: connect to a black hole", took));

    let took = client_stop_latency("127.0.0.1", dead_port(), None, || {
        latency_client_state() == State::Backoff
    });
    table.push(("client: a 10-minute backoff", took));

    let hook = test_hooks::arm("net.resolve");
    let took = client_stop_latency("localhost", dead_port(), None, || {
        hook.wait_arrived(Duration::ZERO)
    });
    drop(hook);
    table.push(("client: a resolve held by the resolver", took));

    // A listener that never accepts: the kernel completes the handshake, nobody reads.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let took = client_stop_latency("127.0.0.1", port, None, || {
        latency_client_state() == State::Connected
    });
    table.push(("client: a read on a silent connection", took));

    let took = client_stop_latency("127.0.0.1", port, Some(write_until_blocked), || {
        latency_client_state() == State::Connected
    });
    table.push(("client: a write blocked on a full buffer", took));
    drop(silent);

    let (s, port) = new_server(gated_handler, 1);
    let gate = close_gate();
    // SAFETY: live.
    assert_eq!(unsafe { resock_server_start(s.0) }, 0);
    let _conn = connect_and_wait_handled(port);
    let _waiting = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let started = Instant::now();
    let running = finishes("server stop + join(0) at the cap", move || {
        let s = s;
        // SAFETY: live.
        unsafe {
            resock_server_stop(s.0);
            resock_server_join(s.0, 0)
        }
    });
    table.push(("server: accept loop waiting at the cap", started.elapsed()));
    assert_eq!(running, 1);
    drop(gate);
    // SAFETY: live; freed once.
    unsafe {
        assert_eq!(resock_server_join(s.0, -1), 0);
        resock_server_free(s.0);
    }

    let d = new_dialer("127.0.0.1", hole_port, 60_000);
    let dial = spawn_dial(d);
    wait_for("the dialer's connect", || {
        dialer_stats(d.0).state == State::Connecting
    });
    let started = Instant::now();
    // SAFETY: live; freed once (free stops it).
    unsafe { resock_dialer_free(d.0) };
    let result = finishes("a dial after free", move || dial.join().unwrap());
    table.push(("dialer: free during a connect", started.elapsed()));
    assert_eq!(result, (-1, libc::ECANCELED));

    println!("| blocking point | stop + join |\n|---|---|");
    for (what, took) in &table {
        println!("| {what} | {:.2} ms |", took.as_secs_f64() * 1e3);
        assert!(*took < LIVENESS, "{what}: {took:?}");
    }
}

// ---------------------------------------------------------------- found by the review

/// Two joins at once: the second must not return 0 while a pool thread of the server is
/// still alive (the first took the thread list and is joining it). The pool thread is held
/// on its way out.
#[test]
fn a_second_concurrent_join_waits_until_the_pool_threads_are_gone() {
    let _serial = serial();
    let (s, port) = new_server(quick_handler, 16);
    // SAFETY: live.
    assert_eq!(unsafe { resock_server_start(s.0) }, 0);
    drop(connect_and_wait_handled(port));
    let pool_thread = HANDLER_TID.load(Ordering::SeqCst);
    let hook = test_hooks::arm("server.worker_exiting");
    // SAFETY: live.
    unsafe { resock_server_stop(s.0) };
    assert!(hook.wait_arrived(LIVENESS), "the pool thread did not leave");
    let join = move || {
        let s = s;
        // SAFETY: live until freed below, after both joins returned.
        unsafe { resock_server_join(s.0, -1) }
    };
    let first = thread::spawn(join);
    let second = thread::spawn(join);
    thread::sleep(STILL_BLOCKED);
    assert!(
        !first.is_finished() && !second.is_finished(),
        "a join returned while pool thread {pool_thread} was alive"
    );
    hook.release();
    assert_eq!(first.join().unwrap(), 0);
    assert_eq!(second.join().unwrap(), 0);
    assert!(!thread_alive(pool_thread));
    // SAFETY: every call on it has returned; freed once.
    unsafe { resock_server_free(s.0) };
}

/// A reset while nobody dials applies to the next dial's schedule, and its signal does not
/// make that dial abandon a connection the server already queued.
#[test]
fn a_reset_while_idle_never_makes_the_next_dial_abandon_a_connection() {
    let _serial = serial();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let d = new_dialer("127.0.0.1", listener.local_addr().unwrap().port(), 100);
    // SAFETY: live; nobody is dialing.
    unsafe { resock_dialer_reset(d.0) };
    // SAFETY: live.
    let fd = unsafe { resock_dial(d.0) };
    assert!(fd >= 0, "resock_dial: errno {}", errno());
    let stats = dialer_stats(d.0);
    assert_eq!((stats.attempts, stats.connects), (1, 1));
    listener.set_nonblocking(true).unwrap();
    let mut accepted = 0;
    while listener.accept().is_ok() {
        accepted += 1;
    }
    assert_eq!(accepted, 1, "the server saw an abandoned extra connection");
    // SAFETY: the fd from resock_dial, handed back once; the dialer freed once.
    unsafe {
        assert_eq!(resock_hangup(d.0, fd), 0);
        resock_dialer_free(d.0);
    }
}
