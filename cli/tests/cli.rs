//! The `resock` command line, run as a user runs it.

use std::process::Command;

#[path = "../../tests/common/skip.rs"]
mod skip;

fn resock(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_resock"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The value printed after `label` in the demo's summary table.
fn row(out: &str, label: &str) -> u64 {
    out.lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no row {label:?} in:\n{out}"))
}

#[test]
fn demo_exits_zero_with_sent_equal_to_received() {
    let (code, out, err) = resock(&["demo", "--records", "50", "--burst", "50"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let sent = row(&out, "records sent whole by the server");
    assert_eq!(sent, 3 * 50 + 50);
    assert_eq!(row(&out, "records received intact"), sent);
    assert_eq!(row(&out, "records corrupted"), 0);
    assert_eq!(row(&out, "resets seen (ECONNRESET 104)"), 1);
    assert_eq!(row(&out, "writes after reset survived (EPIPE)"), 1);
    assert!(out.contains("nothing lost or torn"));
    assert!(
        !out.contains("\x1b["),
        "no colour when stdout is not a terminal"
    );
}

#[test]
fn explain_takes_numbers_hex_and_every_name() {
    let (code, out, _) = resock(&["explain", "104"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("ECONNRESET (Connection reset by peer)\n"),
        "{out}"
    );
    assert!(out.contains("class RESOCK_CLASS_RESET;"), "{out}");
    assert!(out.contains("RST") && !out.contains("os error"), "{out}");
    // The advice is in the explanation, said once.
    assert_eq!(out.matches("reconnect.").count(), 1, "{out}");
    for same in ["econnreset", "0x68", "0X68", " 104 "] {
        let (code, by_other, _) = resock(&["explain", same]);
        assert_eq!((code, by_other.as_str()), (0, out.as_str()), "{same:?}");
    }
    let (code, out, _) = resock(&["explain", "EPIPE"]);
    assert_eq!(code, 0);
    assert!(out.contains("SIGPIPE"));
    // Every errno name, not only the socket ones; and -1.
    for (arg, first) in [
        ("ENOENT", "ENOENT (No such file or directory)"),
        ("EWOULDBLOCK", "EAGAIN (Resource temporarily unavailable)"),
        ("EHWPOISON", "EHWPOISON ("),
        ("-1", "errno -1 ("),
    ] {
        let (code, out, err) = resock(&["explain", arg]);
        assert_eq!(code, 0, "{arg}: {err}");
        assert!(out.starts_with(first), "{arg}: {out}");
    }
}

#[test]
fn explain_wraps_to_the_width_it_is_given() {
    let out = Command::new(env!("CARGO_BIN_EXE_resock"))
        .args(["explain", "ECONNRESET"])
        .env("COLUMNS", "40")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let explanation = text.split("\n\n").nth(1).unwrap_or_default();
    assert!(explanation.lines().count() > 5, "{text}");
    for line in explanation.lines() {
        assert!(line.chars().count() <= 40, "{line:?}");
    }
}

/// `resock demo | head -1`: the reader leaves after one line; the demo (SIGPIPE at
/// SIG_DFL, as a C program has it) must end quietly, not be killed by the signal.
#[test]
fn demo_into_a_closed_pipe_exits_cleanly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_resock"))
        .args(["demo", "--records", "50", "--burst", "50"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The pipe's read end is closed here, as `head -1` closes it.
    let out = child.wait_with_output().unwrap();
    assert!(first.starts_with("resock demo:"), "{first}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `resock demo > /dev/full`: ENOSPC is an error message and exit status 1, no panic.
#[test]
fn output_to_a_full_device_is_an_error_not_a_panic() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        skip::skip("no /dev/full here");
        return;
    };
    for args in [
        &["demo", "--records", "5", "--burst", "5"][..],
        &["explain", "104"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_resock"))
            .args(args)
            .stdout(full.try_clone().unwrap())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("ENOSPC (No space left on device)") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn bad_arguments_are_a_usage_error_not_a_panic() {
    for args in [
        &["explain", "ENOSUCHTHING"][..],
        &["frobnicate"],
        &["demo", "--records", "0"],
        &["demo", "--burst", "x"],
        &[],
    ] {
        let (code, _, err) = resock(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn doctor_names_every_setting_as_text_and_as_json() {
    let (code, text, _) = resock(&["doctor"]);
    assert_eq!(code, 0);
    let (code, json, _) = resock(&["doctor", "--json"]);
    assert_eq!(code, 0);
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("doctor --json is JSON");
    let items = parsed.as_array().unwrap();
    // The documented key order, in every object.
    for line in json.lines().filter(|l| l.contains("\"name\"")) {
        let at = |key: &str| line.find(&format!("\"{key}\":")).unwrap();
        assert!(
            at("name") < at("value")
                && at("value") < at("ok")
                && at("ok") < at("meaning")
                && at("meaning") < at("advice"),
            "{line}"
        );
    }
    for name in [
        "net.ipv4.tcp_syncookies",
        "net.core.somaxconn",
        "net.ipv4.tcp_max_syn_backlog",
        "net.ipv4.tcp_abort_on_overflow",
        "net.ipv4.ip_local_port_range",
        "RLIMIT_NOFILE",
        "ListenOverflows",
        "ListenDrops",
        "TCPAbortOnData",
    ] {
        let item = items
            .iter()
            .find(|i| i["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from {json}"));
        assert!(
            item["advice"].as_str().is_some_and(|a| !a.is_empty()),
            "{item}"
        );
        assert!(
            item["meaning"].as_str().is_some_and(|m| !m.is_empty()),
            "{item}"
        );
        assert!(text.contains(name), "{name} missing from the text report");
    }
    let somaxconn = items
        .iter()
        .find(|i| i["name"] == "net.core.somaxconn")
        .unwrap();
    if let Ok(v) = std::fs::read_to_string("/proc/sys/net/core/somaxconn") {
        // A number, not a string.
        assert_eq!(somaxconn["value"].as_u64(), v.trim().parse().ok());
    }
    let range = items
        .iter()
        .find(|i| i["name"] == "net.ipv4.ip_local_port_range")
        .unwrap();
    if !range["value"].is_null() {
        assert!(
            range["value"]
                .as_array()
                .is_some_and(|a| a.len() == 2 && a.iter().all(|n| n.is_u64())),
            "{range}"
        );
    }
}

/// `doctor --strict` gives scripts an exit status: 1 exactly when a setting is a warning.
#[test]
fn doctor_strict_fails_on_warnings() {
    let (_, text, _) = resock(&["doctor"]);
    let warnings = text.contains("[WARN]");
    let (code, _, err) = resock(&["doctor", "--strict"]);
    assert_eq!(code, i32::from(warnings), "{text}\n{err}");
    let (code, _, _) = resock(&["doctor"]);
    assert_eq!(code, 0, "without --strict a warning is not a failure");
}
