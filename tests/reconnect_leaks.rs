//! fd and thread leaks of the Dialer and the Client. One test in its own binary, so no
//! other test opens fds or starts threads while it counts them.

use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use resock::backoff::BackoffConfig;
use resock::client::{Client, ClientConfig, Mode, Session};
use resock::dial::{DialConfig, Dialer};

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[test]
fn no_fd_or_thread_leaks_over_dial_hangup_cycles_and_client_lifetimes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let fast = BackoffConfig {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(2),
        stable_after: Duration::ZERO,
        ..BackoffConfig::default()
    };
    let fds_before = count("/proc/self/fd");
    {
        let dialer = Dialer::new(DialConfig {
            backoff: fast,
            ..DialConfig::new("127.0.0.1", &port)
        })
        .unwrap();
        for _ in 0..200 {
            let fd = dialer.dial().unwrap();
            let (peer, _) = listener.accept().unwrap();
            drop(peer);
            dialer.hangup(fd).unwrap();
        }
        assert_eq!(dialer.stats().connects, 200);
    }
    assert_eq!(
        count("/proc/self/fd"),
        fds_before,
        "fds leaked over 200 dial/hangup cycles"
    );

    struct Quiet;
    impl Session for Quiet {}
    let threads_before = count("/proc/self/task");
    for _ in 0..20 {
        let client = Client::start(
            ClientConfig::new(
                DialConfig {
                    backoff: fast,
                    ..DialConfig::new("127.0.0.1", &port)
                },
                Mode::Records(16),
            ),
            Quiet,
        )
        .unwrap();
        let (_peer, _) = listener.accept().unwrap();
        client.stop();
        client.join(Some(Duration::from_secs(10))).unwrap();
    }
    // A joined thread can take a moment to leave /proc/self/task.
    let start = Instant::now();
    while count("/proc/self/task") > threads_before && start.elapsed() < Duration::from_secs(5) {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        count("/proc/self/task"),
        threads_before,
        "client threads leaked"
    );
    assert_eq!(count("/proc/self/fd"), fds_before, "client fds leaked");
}
