//! The `resock` command line, run as a user runs it.

use std::process::Command;

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
fn explain_takes_numbers_and_names() {
    let (code, out, _) = resock(&["explain", "104"]);
    assert_eq!(code, 0);
    assert!(out.contains("RST") && out.contains("Reset"), "{out}");
    let (code, by_name, _) = resock(&["explain", "econnreset"]);
    assert_eq!((code, by_name), (0, out));
    let (code, out, _) = resock(&["explain", "EPIPE"]);
    assert_eq!(code, 0);
    assert!(out.contains("SIGPIPE"));
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
        assert_eq!(somaxconn["value"], v.trim());
    }
}
