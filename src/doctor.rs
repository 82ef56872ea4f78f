//! The kernel settings and counters behind "Connection reset by peer" under load.
//!
//! `ab -c 1000` against a server fails when the listen queues are too small, when fds run
//! out, or when a server closes sockets with unread data. [`report`] reads each setting
//! and counter that decides it, says what it does under such a burst, and what to change.
//! An entry that cannot be read (no /proc, a container without the file) is reported as
//! unknown, never as an error.

use std::fmt::Write as _;

/// One setting or counter, read now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The sysctl, limit or counter, e.g. `net.core.somaxconn`.
    pub name: &'static str,
    /// Its current value, or None when it could not be read.
    pub value: Option<String>,
    /// Whether the value looks right for a server taking bursts (None: no opinion).
    pub ok: Option<bool>,
    /// What it does under a burst like `ab -c 1000`.
    pub meaning: &'static str,
    /// What to do, given the value.
    pub advice: String,
}

fn sysctl(name: &str) -> Option<String> {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    std::fs::read_to_string(path)
        .ok()
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn number(value: &Option<String>) -> Option<u64> {
    value.as_deref()?.split_whitespace().next()?.parse().ok()
}

/// A TcpExt counter from /proc/net/netstat (since boot, this network namespace).
fn tcp_ext(name: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next()?, lines.next()?);
    let at = names.split_whitespace().position(|n| n == name)?;
    values.split_whitespace().nth(at).map(str::to_string)
}

fn nofile() -> Option<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0)
        .then_some((lim.rlim_cur, lim.rlim_max))
}

/// Reads every setting and counter now.
pub fn report() -> Vec<Finding> {
    let mut out = Vec::new();

    let value = sysctl("net.ipv4.tcp_syncookies");
    let n = number(&value);
    out.push(Finding {
        name: "net.ipv4.tcp_syncookies",
        ok: n.map(|v| v == 1),
        meaning: "When the SYN queue is full, answer with cookies instead of dropping SYNs. The \
                  kernel then logs \"possible SYN flooding on port N. Sending cookies\" under a \
                  legitimate burst too.",
        advice: match n {
            Some(1) => "Keep it on (1): it keeps a server reachable under a real SYN flood. \
                        Turning it off for a load test, as some guides say, only hides a queue \
                        that is too small: raise the backlog and somaxconn instead."
                .into(),
            Some(0) => "Off: a full SYN queue now drops SYNs and clients wait for \
                        retransmissions. Turn it back on (sysctl -w net.ipv4.tcp_syncookies=1) \
                        and size the queues instead."
                .into(),
            _ => "1 (on) is the safe setting.".into(),
        },
        value,
    });

    let value = sysctl("net.core.somaxconn");
    let n = number(&value);
    out.push(Finding {
        name: "net.core.somaxconn",
        ok: n.map(|v| v >= 1024),
        meaning: "The cap on every listen() backlog (the queue of finished handshakes waiting \
                  for accept). A larger backlog passed to listen() is silently cut to it.",
        advice: match n {
            Some(v) if v >= 1024 => format!("{v} holds a burst of 1000 connections."),
            Some(v) => format!(
                "{v} is too small for `ab -c 1000`: the queue overflows and clients wait or are \
                 reset. Raise it: sysctl -w net.core.somaxconn=4096 (the default since Linux 5.4)."
            ),
            None => "Unknown; 4096 is the default since Linux 5.4.".into(),
        },
        value,
    });

    let value = sysctl("net.ipv4.tcp_max_syn_backlog");
    let n = number(&value);
    out.push(Finding {
        name: "net.ipv4.tcp_max_syn_backlog",
        ok: n.map(|v| v >= 1024),
        meaning: "The queue of half-open connections (SYN received, handshake not finished). \
                  With syncookies on, an overflow sends cookies instead of dropping.",
        advice: match n {
            Some(v) if v >= 1024 => format!("{v} is enough for a burst of 1000."),
            Some(v) => format!("{v} is small: sysctl -w net.ipv4.tcp_max_syn_backlog=4096."),
            None => "Unknown.".into(),
        },
        value,
    });

    let value = sysctl("net.ipv4.tcp_abort_on_overflow");
    let n = number(&value);
    out.push(Finding {
        name: "net.ipv4.tcp_abort_on_overflow",
        ok: n.map(|v| v == 0),
        meaning: "What happens to a handshake when the accept queue is full: 0 drops the \
                  client's final ACK so it retries; 1 answers with an RST at once.",
        advice: match n {
            Some(0) => "0 (the default): an overflow costs clients a retransmission (about 1 s), \
                        not a reset."
                .into(),
            Some(_) => "1: every accept-queue overflow resets the client — exactly `ab`'s \
                        \"apr_socket_recv: Connection reset by peer (104)\". Set it to 0 unless \
                        you want overload to fail fast, and size the backlog."
                .into(),
            None => "0 (the default) is the forgiving setting.".into(),
        },
        value,
    });

    let value = sysctl("net.ipv4.ip_local_port_range");
    let range = value.as_deref().and_then(|v| {
        let mut it = v.split_whitespace().filter_map(|x| x.parse::<u64>().ok());
        Some((it.next()?, it.next()?))
    });
    out.push(Finding {
        name: "net.ipv4.ip_local_port_range",
        ok: range.map(|(lo, hi)| hi.saturating_sub(lo) >= 20_000),
        meaning: "The ephemeral ports for outgoing connections. A load generator (or a client \
                  that reconnects fast) uses one per connection, and each stays in TIME_WAIT \
                  for 60 s after close.",
        advice: match range {
            Some((lo, hi)) if hi.saturating_sub(lo) >= 20_000 => format!(
                "{} ports: about {} new connections per second to one server address before \
                 EADDRNOTAVAIL.",
                hi - lo + 1,
                (hi - lo + 1) / 60
            ),
            Some((lo, hi)) => format!(
                "Only {} ports: connects fail with EADDRNOTAVAIL under churn. Widen it: sysctl -w \
                 net.ipv4.ip_local_port_range=\"1024 65535\".",
                hi.saturating_sub(lo) + 1
            ),
            None => "Unknown.".into(),
        },
        value,
    });

    let limits = nofile();
    out.push(Finding {
        name: "RLIMIT_NOFILE",
        value: limits.map(|(soft, hard)| format!("{soft} {hard}")),
        ok: limits.map(|(soft, _)| soft >= 4096),
        meaning: "The fds this process may hold (soft, hard). A server needs one per \
                  connection; past it accept() fails with EMFILE while the connection stays \
                  queued.",
        advice: match limits {
            Some((soft, _)) if soft >= 4096 => format!("{soft} fds: room for a burst of 1000."),
            Some((soft, hard)) => format!(
                "{soft} fds is too few for 1000 connections: raise it (ulimit -n {}, or \
                 LimitNOFILE= in a systemd unit). resock's accept loop backs off on EMFILE \
                 instead of spinning, but clients still wait.",
                hard.clamp(4096, 65536)
            ),
            None => "Unknown.".into(),
        },
    });

    for (name, meaning, cause) in [
        (
            "ListenOverflows",
            "Times (since boot) a handshake found an accept queue full.",
            "a listener's backlog was too small or its accept loop too slow: raise the backlog \
             (resock's default is the kernel's maximum) and somaxconn",
        ),
        (
            "ListenDrops",
            "Handshakes dropped at a listener for any reason (overflows included).",
            "see ListenOverflows; drops beyond the overflows point at memory pressure",
        ),
        (
            "TCPAbortOnData",
            "Connections closed while unread data sat in their receive queue: each sent an \
             RST, which the peer saw as ECONNRESET.",
            "a server closed sockets before reading the whole request: read the request fully \
             before close()",
        ),
    ] {
        let value = tcp_ext(name);
        let count: Option<u64> = value.as_deref().and_then(|v| v.parse().ok());
        out.push(Finding {
            name,
            ok: count.map(|c| c == 0),
            meaning,
            advice: match count {
                Some(0) => "0: never happened.".into(),
                Some(c) => {
                    format!("{c} since boot: {cause}. Compare before and after a load test.")
                }
                None => "Unknown (/proc/net/netstat not readable).".into(),
            },
            value,
        });
    }
    out
}

/// The report as plain text, one paragraph per finding.
pub fn render_text(findings: &[Finding]) -> String {
    let mut text = String::new();
    for f in findings {
        let mark = match f.ok {
            Some(true) => "ok  ",
            Some(false) => "WARN",
            None => "?   ",
        };
        let _ = writeln!(
            text,
            "[{mark}] {} = {}\n       {}\n       {}\n",
            f.name,
            f.value.as_deref().unwrap_or("unknown"),
            f.meaning,
            f.advice
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_reported_known_or_not() {
        let names: Vec<&str> = report().iter().map(|f| f.name).collect();
        for expected in [
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
            assert!(names.contains(&expected), "{expected} missing");
        }
    }

    #[test]
    fn values_match_what_the_kernel_says() {
        let findings = report();
        let somaxconn = findings
            .iter()
            .find(|f| f.name == "net.core.somaxconn")
            .unwrap();
        let direct = std::fs::read_to_string("/proc/sys/net/core/somaxconn").ok();
        assert_eq!(somaxconn.value, direct.map(|v| v.trim().to_string()));
        let nofile = findings.iter().find(|f| f.name == "RLIMIT_NOFILE").unwrap();
        assert!(nofile.value.is_some());
    }

    #[test]
    fn unknown_values_render_as_unknown() {
        let text = render_text(&[Finding {
            name: "x",
            value: None,
            ok: None,
            meaning: "m",
            advice: "a".into(),
        }]);
        assert!(text.contains("x = unknown"));
    }
}
