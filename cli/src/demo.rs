//! `resock demo`: a resock Server and a resock Dialer-driven client on loopback, the seed's
//! faults injected one by one, narrated as they happen, and a closing table that proves no
//! record was lost or torn.
//!
//! SIGPIPE is put back to SIG_DFL first, as a C program has it (Rust's runtime ignores it
//! at startup), so the write after the reset would kill this process if resock let the
//! kernel raise it.

use std::io::IsTerminal;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use resock::backoff::BackoffConfig;
use resock::dial::{DialConfig, Dialer};
use resock::io::{Opts, read_full, write_full};
use resock::server::{Server, ServerConfig};
use resock::{Class, Error, Partial};

use crate::out::outln;

const RECORD: usize = 64;

/// A 64-byte record: seq and connection (little-endian), a payload derived from both, and
/// an FNV-1a checksum of the first 60 bytes.
fn record(conn: u32, seq: u32) -> [u8; RECORD] {
    let mut rec = [0u8; RECORD];
    rec[..4].copy_from_slice(&seq.to_le_bytes());
    rec[4..8].copy_from_slice(&conn.to_le_bytes());
    for (i, b) in rec[8..60].iter_mut().enumerate() {
        *b = (seq as usize * 31 + conn as usize * 7 + i) as u8;
    }
    let sum = fnv1a(&rec[..60]);
    rec[60..].copy_from_slice(&sum.to_le_bytes());
    rec
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(2_166_136_261u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(16_777_619)
    })
}

/// What the demo server does with its n-th connection (a script shared by both server
/// lives, so the restarted server carries on the numbering).
struct Script {
    records: u32,
    /// The connection that crashes mid-record.
    crash_on: u32,
    /// Connections at or above this number get one record each (the burst).
    burst_from: AtomicU32,
    next_conn: AtomicU32,
    /// Records written whole.
    sent: AtomicU64,
}

impl Script {
    fn serve(&self, fd: OwnedFd) {
        let conn = self.next_conn.fetch_add(1, Ordering::SeqCst);
        let records = if conn >= self.burst_from.load(Ordering::SeqCst) {
            1
        } else {
            self.records
        };
        for seq in 0..records {
            if write_full(&fd, &record(conn, seq), &Opts::default()).is_err() {
                return;
            }
            self.sent.fetch_add(1, Ordering::Relaxed);
        }
        if conn == self.crash_on {
            // Half a record, then an abortive close (RST) once the client has the rest:
            // SO_LINGER {1, 0} discards what is still queued to send.
            let _ = write_full(&fd, &record(conn, records)[..RECORD / 2], &Opts::default());
            wait_until_acknowledged(&fd);
            set_linger_zero(&fd);
        }
    }
}

fn wait_until_acknowledged(fd: &OwnedFd) {
    for _ in 0..2000 {
        let mut unacked: libc::c_int = 0;
        // SAFETY: SIOCOUTQ (TIOCOUTQ on sockets) writes one int.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &mut unacked) };
        if r < 0 || unacked == 0 {
            return;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

fn set_linger_zero(fd: &OwnedFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid fd and a linger struct of the size given.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
}

fn start_server(port: u16, script: &Arc<Script>) -> Result<Server, Error> {
    let script = script.clone();
    let server = Server::new(
        ServerConfig::new(Some("127.0.0.1"), &port.to_string()),
        move |fd: OwnedFd, _| script.serve(fd),
    )?;
    server.start()?;
    Ok(server)
}

/// What the client saw, for the closing table.
#[derive(Default)]
struct ClientCounts {
    intact: u64,
    bad: u64,
    torn_discarded: u64,
    eofs: u64,
    resets: u64,
    epipe_survived: u64,
}

struct Narrator {
    color: bool,
}

impl Narrator {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn step(&self, n: u32, title: &str) {
        outln!("\n{}", self.paint("1", &format!("[{n}] {title}")));
    }

    fn kernel(&self, text: &str) {
        outln!("    {} {text}", self.paint("33", "kernel:"));
    }

    fn resock(&self, text: &str) {
        outln!("    {} {text}", self.paint("32", "resock:"));
    }
}

/// Reads records until the connection ends; checks each one. Returns how it ended.
fn receive(fd: &OwnedFd, counts: &mut ClientCounts) -> Partial {
    let mut seq = 0;
    let mut conn = None;
    loop {
        let mut rec = [0u8; RECORD];
        match read_full(fd, &mut rec, &Opts::default()) {
            Ok(()) => {
                let this =
                    *conn.get_or_insert(u32::from_le_bytes([rec[4], rec[5], rec[6], rec[7]]));
                if rec == record(this, seq) {
                    counts.intact += 1;
                } else {
                    counts.bad += 1;
                }
                seq += 1;
            }
            Err(stopped) => {
                match stopped.error.class() {
                    Class::Eof => counts.eofs += 1,
                    Class::Reset => counts.resets += 1,
                    _ => {}
                }
                counts.torn_discarded += u64::from(stopped.done > 0);
                return stopped;
            }
        }
    }
}

/// Runs the demo; exit status 0 only if every record the server completed arrived intact.
pub fn run(records: u32, burst: u32) -> ExitCode {
    match play(records, burst) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("resock demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn play(records: u32, burst: u32) -> Result<bool, Error> {
    // SAFETY: restoring the default disposition, as a C host has it; nothing else runs yet.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let say = Narrator {
        color: std::io::stdout().is_terminal(),
    };
    let started = Instant::now();
    let script = Arc::new(Script {
        records,
        crash_on: 1,
        burst_from: AtomicU32::new(u32::MAX),
        next_conn: AtomicU32::new(0),
        sent: AtomicU64::new(0),
    });
    let mut client = ClientCounts::default();

    let server = start_server(0, &script)?;
    let port = server.local_port()?;
    // Quick backoff for a demo; a connection counts as stable after 100 ms.
    let dialer = Dialer::new(DialConfig {
        backoff: BackoffConfig {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(400),
            stable_after: Duration::from_millis(100),
            ..BackoffConfig::default()
        },
        ..DialConfig::new("127.0.0.1", &port.to_string())
    })?;
    outln!(
        "resock demo: server on 127.0.0.1:{port}, {records} records of {RECORD} bytes per connection, \
         SIGPIPE at SIG_DFL"
    );

    say.step(
        1,
        "Orderly close: the server sends its records and closes (FIN)",
    );
    let fd = dialer.dial()?;
    let stopped = receive(&fd, &mut client);
    say.kernel("recv returned 0: the peer shut down in order (FIN) — the seed's n == 0");
    say.resock(&format!(
        "read_full: {} after {} bytes of the next record, errno {}; {} records intact; hang up and redial",
        stopped.error,
        stopped.done,
        stopped.error.errno(),
        client.intact
    ));
    dialer.hangup(fd)?;

    say.step(
        2,
        "Crash mid-record: half a record, then an RST (SO_LINGER {1, 0})",
    );
    let fd = dialer.dial()?;
    let stopped = receive(&fd, &mut client);
    say.kernel("the RST arrived: the bytes before it were delivered, then recv failed with ECONNRESET (104)");
    say.resock(&format!(
        "read_full: {} — the torn record's {} bytes are counted and discarded, never used",
        stopped.error, stopped.done
    ));

    say.step(3, "Write after the reset (the seed's two-writes story)");
    match write_full(&fd, b"ping", &Opts::default()) {
        Err(stopped) if stopped.error.errno() == libc::EPIPE => {
            client.epipe_survived += 1;
            say.kernel(
                "the socket was reset: a plain write() would raise SIGPIPE and kill this process",
            );
            say.resock("send(MSG_NOSIGNAL) returned -1/EPIPE: no signal, the process lives");
        }
        other => say.resock(&format!("the write after the reset gave {other:?}")),
    }
    dialer.hangup(fd)?;

    say.step(
        4,
        "Server restart: the port goes dark for 300 ms, then comes back",
    );
    server.stop();
    let _ = server.join(Duration::from_secs(5));
    let before = dialer.stats();
    let restart = {
        let script = script.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            start_server(port, &script)
        })
    };
    let fd = dialer.dial()?;
    let server = restart
        .join()
        .map_err(|_| Error::Os(std::io::Error::other("the restarted server panicked")))??;
    let after = dialer.stats();
    say.kernel("connect: ECONNREFUSED — nothing listens on the port while the server restarts");
    say.resock(&format!(
        "{} refused attempt(s), spaced by the jittered backoff (50 ms doubling), then connected",
        after.refused - before.refused
    ));
    let intact_before = client.intact;
    receive(&fd, &mut client);
    say.resock(&format!(
        "read {} more records after the restart; the connection then ended with EOF",
        client.intact - intact_before
    ));
    dialer.hangup(fd)?;

    say.step(
        5,
        &format!("A burst: {burst} connections at once, one record each"),
    );
    script
        .burst_from
        .store(script.next_conn.load(Ordering::SeqCst), Ordering::SeqCst);
    let burst_ok = run_burst(port, burst);
    say.resock(&format!(
        "{burst_ok} of {burst} connections got their record intact (backlog = the kernel's maximum)"
    ));
    client.intact += burst_ok;
    server.stop();
    let _ = server.join(Duration::from_secs(5));

    let stats = dialer.stats();
    let sent = script.sent.load(Ordering::Relaxed);
    let ok = sent == client.intact && client.bad == 0 && burst_ok == u64::from(burst);
    outln!("\n{}", say.paint("1", "Summary"));
    let rows = [
        ("records sent whole by the server", sent.to_string()),
        ("records received intact", client.intact.to_string()),
        ("records corrupted", client.bad.to_string()),
        (
            "torn records discarded (the crash)",
            client.torn_discarded.to_string(),
        ),
        ("reconnects by the dialer", (stats.connects - 1).to_string()),
        (
            "connects refused during the restart",
            stats.refused.to_string(),
        ),
        ("orderly EOFs seen", client.eofs.to_string()),
        ("resets seen (ECONNRESET 104)", client.resets.to_string()),
        (
            "writes after reset survived (EPIPE)",
            client.epipe_survived.to_string(),
        ),
        ("process alive with SIGPIPE at SIG_DFL", "yes".to_string()),
        ("time", format!("{:.2} s", started.elapsed().as_secs_f64())),
    ];
    for (what, value) in rows {
        outln!("  {what:<40} {value:>10}");
    }
    let verdict = if ok {
        say.paint(
            "32",
            "OK: bytes sent = bytes received, nothing lost or torn",
        )
    } else {
        say.paint("31", "FAILED: records were lost or corrupted")
    };
    outln!("\n{verdict}");
    Ok(ok)
}

/// `burst` clients connect at once; returns how many got one intact record.
fn run_burst(port: u16, burst: u32) -> u64 {
    let clients: Vec<_> = (0..burst)
        .map(|_| {
            thread::spawn(move || {
                let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
                    return false;
                };
                let mut rec = [0u8; RECORD];
                if read_full(&stream, &mut rec, &Opts::default()).is_err() {
                    return false;
                }
                let conn = u32::from_le_bytes([rec[4], rec[5], rec[6], rec[7]]);
                rec == record(conn, 0)
            })
        })
        .collect();
    clients
        .into_iter()
        .map(|c| c.join().unwrap_or(false))
        .filter(|&good| good)
        .count() as u64
}
