//! SIGPIPE as a C host has it: disposition SIG_DFL, so a raised SIGPIPE kills the process.
//!
//! Rust's test harness ignores SIGPIPE at startup, so each scenario runs in a child process
//! (this test binary again, running only `child_scenario`) that first restores SIG_DFL. A
//! child killed by signal 13 fails the parent's assertion with the scenario's name.

mod common;

use common::*;
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::thread;
use std::time::Duration;

const SCENARIO_VAR: &str = "RESOCK_SIGPIPE_SCENARIO";

const SCENARIOS: &[&str] = &[
    "socket_after_fin",
    "socket_after_rst",
    "unix_socket_peer_closed",
    "pipe_no_reader",
    "pipe_no_reader_writev",
    "pipe_pending_before_stays_pending",
    "pipe_blocked_before_not_left_pending",
    "pipe_ignored",
    "pipe_process_directed_pending_stays_and_ours_is_consumed",
    "pipe_disposition_flipped_to_dfl_mid_call",
];

#[test]
fn writes_to_dead_peers_never_kill_a_sig_dfl_process() {
    let exe = std::env::current_exe().unwrap();
    for scenario in SCENARIOS {
        let out = Command::new(&exe)
            .args([
                "child_scenario",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(SCENARIO_VAR, scenario)
            .output()
            .unwrap();
        assert_ne!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{scenario}: the process was killed by SIGPIPE"
        );
        assert!(
            out.status.success(),
            "{scenario}: {:?}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&format!("scenario {scenario} ok")),
            "{scenario}: the child did not run it"
        );
    }
}

#[test]
#[ignore = "runs only as a child of writes_to_dead_peers_never_kill_a_sig_dfl_process"]
fn child_scenario() {
    let scenario = std::env::var(SCENARIO_VAR).expect("run by the parent test");
    set_disposition(libc::SIG_DFL);
    let mask_before = thread_mask();
    match scenario.as_str() {
        "socket_after_fin" => {
            let (a, b) = tcp_pair();
            drop(b); // FIN
            thread::sleep(Duration::from_millis(20));
            // The first write is accepted (the peer answers it with RST), the next fails.
            let first = writen(a.as_raw_fd(), b"one");
            thread::sleep(Duration::from_millis(20));
            let second = writen(a.as_raw_fd(), b"two");
            assert_eq!(first.0, 3);
            assert_eq!(second.0, -1);
            assert!(
                second.1 == libc::EPIPE || second.1 == libc::ECONNRESET,
                "{second:?}"
            );
        }
        "socket_after_rst" => {
            let (a, b) = tcp_pair();
            set_linger_zero(b.as_raw_fd());
            drop(b);
            thread::sleep(Duration::from_millis(20));
            let mut buf = [0u8; 1];
            assert_eq!(readn(a.as_raw_fd(), &mut buf), (-1, libc::ECONNRESET));
            assert_eq!(writen(a.as_raw_fd(), b"after reset"), (-1, libc::EPIPE));
        }
        "unix_socket_peer_closed" => {
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            drop(b);
            assert_eq!(writen(a.as_raw_fd(), b"x"), (-1, libc::EPIPE));
        }
        "pipe_no_reader" => {
            let (r, w) = pipe();
            close(r);
            assert_eq!(writen(w, b"nobody reads this"), (-1, libc::EPIPE));
            close(w);
        }
        "pipe_no_reader_writev" => {
            let (r, w) = pipe();
            close(r);
            let iov = [iovec {
                iov_base: b"abc".as_ptr() as *mut c_void,
                iov_len: 3,
            }; 3];
            set_errno(0);
            assert_eq!(unsafe { writev_sync(w, iov.as_ptr(), 3) }, -1);
            assert_eq!(errno(), libc::EPIPE);
            close(w);
        }
        "pipe_pending_before_stays_pending" => {
            block_sigpipe();
            unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGPIPE) };
            assert!(sigpipe_pending(), "setup: a SIGPIPE is pending");
            let (r, w) = pipe();
            close(r);
            assert_eq!(writen(w, b"x"), (-1, libc::EPIPE));
            close(w);
            assert!(
                sigpipe_pending(),
                "the caller's pending SIGPIPE was swallowed"
            );
            assert!(mask_has_sigpipe(), "the caller's block was lifted");
            consume_sigpipe();
            unblock_sigpipe();
            println!("scenario {scenario} ok");
            return;
        }
        "pipe_blocked_before_not_left_pending" => {
            block_sigpipe();
            let (r, w) = pipe();
            close(r);
            assert_eq!(writen(w, b"x"), (-1, libc::EPIPE));
            close(w);
            assert!(!sigpipe_pending(), "our own SIGPIPE was left pending");
            assert!(mask_has_sigpipe(), "the caller's block was lifted");
            unblock_sigpipe();
            println!("scenario {scenario} ok");
            return;
        }
        "pipe_ignored" => {
            set_disposition(libc::SIG_IGN);
            let (r, w) = pipe();
            close(r);
            assert_eq!(writen(w, b"x"), (-1, libc::EPIPE));
            close(w);
            assert_eq!(disposition(), libc::SIG_IGN);
            println!("scenario {scenario} ok");
            return;
        }
        "pipe_process_directed_pending_stays_and_ours_is_consumed" => {
            // A process-directed SIGPIPE stays pending only while every thread blocks it:
            // fork, so the child has one thread.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0);
            if pid == 0 {
                unsafe { libc::_exit(process_directed_pending_child()) };
            }
            let mut status = 0;
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "child status {status:#x}: exit code {} (see process_directed_pending_child)",
                libc::WEXITSTATUS(status)
            );
        }
        "pipe_disposition_flipped_to_dfl_mid_call" => {
            // libcurl without CURLOPT_NOSIGNAL swaps SIG_IGN in and out around transfers:
            // the disposition may be SIG_DFL by the time the write happens.
            set_disposition(libc::SIG_IGN);
            let (r, w) = pipe();
            close(r);
            let (gate_tx, gate_rx) = std::sync::mpsc::channel();
            let writer = thread::spawn(move || {
                gate_tx
                    .send(resock::test_hooks::arm_this_thread("io.before_write", 0))
                    .unwrap();
                writen(w, b"x")
            });
            let gate = gate_rx.recv().unwrap();
            assert!(gate.wait_arrived(Duration::from_secs(10)));
            set_disposition(libc::SIG_DFL);
            gate.release();
            assert_eq!(writer.join().unwrap(), (-1, libc::EPIPE));
            close(w);
        }
        other => panic!("unknown scenario {other}"),
    }
    assert!(!sigpipe_pending(), "a SIGPIPE was left pending");
    assert_eq!(
        thread_mask_has(mask_before),
        thread_mask_has(thread_mask()),
        "mask changed"
    );
    assert_eq!(disposition(), libc::SIG_DFL, "the disposition was touched");
    println!("scenario {scenario} ok");
}

/// In a one-thread child: with SIGPIPE blocked and a process-directed SIGPIPE pending, a
/// write to a broken pipe raises a thread-directed one; afterwards exactly the
/// process-directed one must be pending. Returns 0, or which check failed.
fn process_directed_pending_child() -> i32 {
    block_sigpipe();
    unsafe { libc::kill(libc::getpid(), libc::SIGPIPE) };
    if pending_sets() != (false, true) {
        return 2;
    }
    let (r, w) = pipe();
    close(r);
    if writen(w, b"x") != (-1, libc::EPIPE) {
        return 3;
    }
    match pending_sets() {
        (false, true) => 0,
        (true, true) => 4, // our own SIGPIPE was left pending in the thread
        (_, false) => 5,   // the caller's process-directed SIGPIPE was consumed
    }
}

/// SIGPIPE in this thread's own pending set and in the process's shared one, from
/// /proc/thread-self/status (sigpending(2) merges the two).
fn pending_sets() -> (bool, bool) {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    let has = |key: &str| {
        let hex = status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap()
            .trim();
        u64::from_str_radix(hex, 16).unwrap() & (1 << (libc::SIGPIPE - 1)) != 0
    };
    (has("SigPnd:"), has("ShdPnd:"))
}

fn set_disposition(handler: libc::sighandler_t) {
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGPIPE, &sa, std::ptr::null_mut()), 0);
    }
}

fn disposition() -> libc::sighandler_t {
    unsafe {
        let mut old = MaybeUninit::<libc::sigaction>::zeroed();
        libc::sigaction(libc::SIGPIPE, std::ptr::null(), old.as_mut_ptr());
        old.assume_init().sa_sigaction
    }
}

fn sigpipe_set() -> libc::sigset_t {
    unsafe {
        let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGPIPE);
        set.assume_init()
    }
}

fn thread_mask() -> libc::sigset_t {
    unsafe {
        let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), set.as_mut_ptr());
        set.assume_init()
    }
}

/// The signals 1..=64 a mask holds, comparable with assert_eq.
fn thread_mask_has(set: libc::sigset_t) -> Vec<i32> {
    (1..=64)
        .filter(|&s| unsafe { libc::sigismember(&set, s) } == 1)
        .collect()
}

fn mask_has_sigpipe() -> bool {
    unsafe { libc::sigismember(&thread_mask(), libc::SIGPIPE) == 1 }
}

fn block_sigpipe() {
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &sigpipe_set(), std::ptr::null_mut()) };
}

fn unblock_sigpipe() {
    unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &sigpipe_set(), std::ptr::null_mut()) };
}

fn sigpipe_pending() -> bool {
    unsafe {
        let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
        libc::sigpending(set.as_mut_ptr());
        libc::sigismember(set.as_ptr(), libc::SIGPIPE) == 1
    }
}

fn consume_sigpipe() {
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    assert_eq!(
        unsafe { libc::sigtimedwait(&sigpipe_set(), std::ptr::null_mut(), &zero) },
        libc::SIGPIPE
    );
}
