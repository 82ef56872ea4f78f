//! resock_set_log / resock::log::set_log: connect failures and flaps reach the sink,
//! rate-limited. Alone in its binary: the sink is process-wide.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use resock::backoff::BackoffConfig;
use resock::dial::{DialConfig, Dialer};
use resock::log::{Level, set_log};

#[test]
fn connect_failures_are_logged_at_most_once_a_second() {
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
