//! resock_set_log / resock::log::set_log: connect failures and flaps reach the sink,
//! rate-limited, and a sink is never entered after set_log replaced it. Alone in its
//! binary, one test at a time: the sink is process-wide.

mod common;

use std::ffi::{CStr, c_char, c_int, c_void};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use common::handles::resock_set_log;
use resock::backoff::BackoffConfig;
use resock::dial::{DialConfig, Dialer};
use resock::log::{Level, set_log};
use resock::test_hooks;

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn dead_port() -> String {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string()
}

/// One failed connect, which logs one Warn line (on this thread).
fn log_one_connect_failure() -> thread::JoinHandle<()> {
    let dialer = Dialer::new(DialConfig {
        max_attempts: 1,
        ..DialConfig::new("127.0.0.1", &dead_port())
    })
    .unwrap();
    thread::spawn(move || assert!(dialer.dial().is_err()))
}

/// What a C host hands resock_set_log as `user`.
struct HostState {
    calls: AtomicUsize,
    /// Set by the host once resock_set_log(NULL) returned: it frees `user` then.
    freed: AtomicBool,
    used_after_free: AtomicUsize,
}

unsafe extern "C" fn host_sink(_level: c_int, msg: *const c_char, user: *mut c_void) {
    // SAFETY: the host's state, passed as user; msg is a C string for the call.
    let (state, _msg) = unsafe { (&*user.cast::<HostState>(), CStr::from_ptr(msg)) };
    if state.freed.load(Ordering::SeqCst) {
        state.used_after_free.fetch_add(1, Ordering::SeqCst);
    }
    state.calls.fetch_add(1, Ordering::SeqCst);
}

/// Defect 5: once resock_set_log returns, no thread is in the old callback or will enter
/// it. A logging thread is held just before it calls the sink; set_log(NULL) must wait.
#[test]
fn set_log_returns_only_when_no_thread_can_enter_the_old_sink() {
    let _serial = serial();
    let state: &'static HostState = Box::leak(Box::new(HostState {
        calls: AtomicUsize::new(0),
        freed: AtomicBool::new(false),
        used_after_free: AtomicUsize::new(0),
    }));
    let user = std::ptr::from_ref(state).cast_mut().cast();
    let hook = test_hooks::arm("log.before_call");
    // SAFETY: a valid callback and user, valid for as long as the test runs.
    unsafe { resock_set_log(Some(host_sink), user) };
    let logger = log_one_connect_failure();
    assert!(hook.wait_arrived(Duration::from_secs(10)), "nothing logged");
    let replacing = thread::spawn(move || {
        // SAFETY: silencing is always valid.
        unsafe { resock_set_log(None, std::ptr::null_mut()) };
        state.freed.store(true, Ordering::SeqCst);
    });
    thread::sleep(Duration::from_millis(300));
    assert!(
        !replacing.is_finished(),
        "set_log returned while a thread was about to enter the old sink"
    );
    hook.release();
    replacing.join().unwrap();
    logger.join().unwrap();
    assert_eq!(state.calls.load(Ordering::SeqCst), 1);
    assert_eq!(state.used_after_free.load(Ordering::SeqCst), 0);
}

/// A sink that replaces itself from inside its own call does not deadlock, and is not
/// called again afterwards.
#[test]
fn a_sink_may_call_set_log_from_inside_itself() {
    let _serial = serial();
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    unsafe extern "C" fn self_silencing(_l: c_int, _m: *const c_char, _u: *mut c_void) {
        CALLS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: silencing is always valid, from anywhere.
        unsafe { resock_set_log(None, std::ptr::null_mut()) };
    }
    // SAFETY: a valid callback; no user.
    unsafe { resock_set_log(Some(self_silencing), std::ptr::null_mut()) };
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        log_one_connect_failure().join().unwrap();
        log_one_connect_failure().join().unwrap();
        tx.send(()).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("a sink calling set_log deadlocked");
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
}

#[test]
fn connect_failures_are_logged_at_most_once_a_second() {
    let _serial = serial();
    let lines: Arc<Mutex<Vec<(Level, String)>>> = Arc::default();
    {
        let lines = lines.clone();
        set_log(Some(Box::new(move |level, msg| {
            lines.lock().unwrap().push((level, msg.to_string()))
        })));
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dialer = Arc::new(
        Dialer::new(DialConfig {
            backoff: BackoffConfig {
                initial: Duration::from_millis(5),
                max: Duration::from_millis(10),
                ..BackoffConfig::default()
            },
            ..DialConfig::new("127.0.0.1", &port.to_string())
        })
        .unwrap(),
    );
    let dialing = {
        let dialer = dialer.clone();
        thread::spawn(move || dialer.dial())
    };
    thread::sleep(Duration::from_millis(1500));
    dialer.stop();
    assert_eq!(
        dialing.join().unwrap().unwrap_err().errno(),
        libc::ECANCELED
    );
    set_log(None);

    let attempts = dialer.stats().attempts;
    let lines = lines.lock().unwrap();
    let failures: Vec<_> = lines.iter().filter(|(_, m)| m.contains("failed")).collect();
    assert!(attempts >= 20, "{attempts} attempts");
    // 1.5 s of failures: the first line, one more after a second, nothing else.
    assert!((1..=2).contains(&failures.len()), "{failures:?}");
    assert!(
        failures
            .iter()
            .all(|(l, m)| *l == Level::Warn && m.contains("Connection refused"))
    );
    assert!(
        failures.get(1).is_none_or(|(_, m)| m.contains("held back")),
        "{failures:?}"
    );
}
