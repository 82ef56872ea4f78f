//! `resock demo`: a server and a client on loopback, the seed's faults injected one by one,
//! narrated as they happen, and a closing table that proves no record was lost or torn.
//!
//! SIGPIPE is put back to SIG_DFL first, as a C program has it (Rust's runtime ignores it
//! at startup), so the write after the reset would kill this process if resock let the
//! kernel raise it.

use std::io::IsTerminal;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use resock::io::{Opts, read_full, write_full};
use resock::{Error, Partial};

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

/// How the server ends a connection after its records.
#[derive(Clone, Copy)]
enum Ending {
    /// close(): the client's recv returns 0.
    Fin,
    /// Half a record, then close() with SO_LINGER {1, 0}: an RST, as when a server crashes.
    TornThenRst,
}

/// Counts the server keeps: records it wrote whole.
#[derive(Default)]
struct ServerCounts {
    sent: AtomicU64,
}

/// Serves one connection from `listener` in a thread: `records` records, then `ending`.
fn serve_one(
    listener: TcpListener,
    conn: u32,
    records: u32,
    ending: Ending,
    counts: Arc<ServerCounts>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let _ = stream.set_nodelay(true);
        for seq in 0..records {
            if write_full(&stream, &record(conn, seq), &Opts::default()).is_err() {
                return;
            }
            counts.sent.fetch_add(1, Ordering::Relaxed);
        }
        if let Ending::TornThenRst = ending {
            let _ = write_full(
                &stream,
                &record(conn, records)[..RECORD / 2],
                &Opts::default(),
            );
            wait_until_acknowledged(&stream);
            set_linger_zero(&stream);
        }
    })
}

/// An abortive close discards unsent data: wait (bounded) until the peer has it all, so the
/// RST tears exactly the half record.
fn wait_until_acknowledged(stream: &TcpStream) {
    for _ in 0..2000 {
        let mut unacked: libc::c_int = 0;
        // SAFETY: SIOCOUTQ writes one int.
        let r = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut unacked) };
        if r < 0 || unacked == 0 {
            return;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

fn set_linger_zero(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid fd and a linger struct of the size given.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
}

/// What the client saw, for the closing table.
#[derive(Default)]
struct ClientCounts {
    intact: u64,
    bad: u64,
    torn_discarded: u64,
    connects: u64,
    refused: u64,
    resets: u64,
    epipe_survived: u64,
    eofs: u64,
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
        println!("\n{}", self.paint("1", &format!("[{n}] {title}")));
    }

    fn kernel(&self, text: &str) {
        println!("    {} {text}", self.paint("33", "kernel:"));
    }

    fn resock(&self, text: &str) {
        println!("    {} {text}", self.paint("32", "resock:"));
    }
}

/// Connects, retrying refused attempts with a doubling pause (25 ms up to 200 ms).
fn connect_with_retry(
    addr: SocketAddr,
    counts: &mut ClientCounts,
    say: &Narrator,
) -> std::io::Result<TcpStream> {
    let mut pause = Duration::from_millis(25);
    let mut refused_here = 0;
    for _ in 0..60 {
        match TcpStream::connect(addr) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                counts.connects += 1;
                if refused_here > 0 {
                    say.resock(&format!(
                        "connected after {refused_here} refused attempt(s), pausing 25 ms doubling to 200 ms between them"
                    ));
                }
                return Ok(stream);
            }
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                if refused_here == 0 {
                    say.kernel("connect: ECONNREFUSED — nothing listens on the port (the server is restarting)");
                }
                refused_here += 1;
                counts.refused += 1;
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(
        "the server did not come back after 60 attempts",
    ))
}

/// Reads records until the connection ends; checks each one. Returns how it ended.
fn receive(stream: &TcpStream, conn: u32, counts: &mut ClientCounts) -> Partial {
    let mut seq = 0;
    loop {
        let mut rec = [0u8; RECORD];
        match read_full(stream, &mut rec, &Opts::default()) {
            Ok(()) => {
                if rec == record(conn, seq) {
                    counts.intact += 1;
                } else {
                    counts.bad += 1;
                }
                seq += 1;
            }
            Err(stopped) => return stopped,
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

fn play(records: u32, burst: u32) -> std::io::Result<bool> {
    // SAFETY: restoring the default disposition, as a C host has it; nothing else runs yet.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let say = Narrator {
        color: std::io::stdout().is_terminal(),
    };
    let started = Instant::now();
    let server = Arc::new(ServerCounts::default());
    let mut client = ClientCounts::default();

    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    println!(
        "resock demo: server on {addr}, {records} records of {RECORD} bytes per connection, SIGPIPE at SIG_DFL"
    );

    say.step(
        1,
        "Orderly close: the server sends its records and closes (FIN)",
    );
    let handle = serve_one(
        listener.try_clone()?,
        0,
        records,
        Ending::Fin,
        server.clone(),
    );
    let stream = connect_with_retry(addr, &mut client, &say)?;
    let stopped = receive(&stream, 0, &mut client);
    let _ = handle.join();
    if let Error::Eof = stopped.error {
        client.eofs += 1;
        say.kernel("recv returned 0: the peer shut down in order (FIN) — the seed's n == 0");
        say.resock(&format!(
            "read_full: Eof after {} bytes of the next record, errno 0; {} records intact; close and reconnect",
            stopped.done, client.intact
        ));
    } else {
        say.resock(&format!("unexpected end: {stopped}"));
    }
    drop(stream);

    say.step(
        2,
        "Crash mid-record: half a record, then an RST (SO_LINGER {1, 0})",
    );
    let handle = serve_one(
        listener.try_clone()?,
        1,
        records,
        Ending::TornThenRst,
        server.clone(),
    );
    let stream = connect_with_retry(addr, &mut client, &say)?;
    let stopped = receive(&stream, 1, &mut client);
    let _ = handle.join();
    if stopped.error.errno() == libc::ECONNRESET {
        client.resets += 1;
        client.torn_discarded += u64::from(stopped.done > 0);
        say.kernel("the RST arrived: bytes before it were delivered, then recv failed with ECONNRESET (104)");
        say.resock(&format!(
            "read_full: {} — the torn record's {} bytes are counted and discarded, never used",
            stopped.error, stopped.done
        ));
    } else {
        say.resock(&format!("unexpected end: {stopped}"));
    }

    say.step(3, "Write after the reset (the seed's two-writes story)");
    match write_full(&stream, b"ping", &Opts::default()) {
        Err(stopped) if stopped.error.errno() == libc::EPIPE => {
            client.epipe_survived += 1;
            say.kernel(
                "the socket was reset: a plain write() would raise SIGPIPE and kill this process",
            );
            say.resock("send(MSG_NOSIGNAL) returned -1/EPIPE: no signal, the process lives");
        }
        other => say.resock(&format!("the write after the reset gave {other:?}")),
    }
    drop(stream);

    say.step(
        4,
        "Server restart: the port goes dark for 300 ms, then comes back",
    );
    drop(listener);
    let restart = {
        let server = server.clone();
        thread::spawn(move || -> std::io::Result<TcpListener> {
            thread::sleep(Duration::from_millis(300));
            // std's TcpListener sets SO_REUSEADDR, so the port rebinds despite TIME_WAIT.
            let listener = TcpListener::bind(addr)?;
            let handle = serve_one(listener.try_clone()?, 2, records, Ending::Fin, server);
            let _ = handle.join();
            Ok(listener)
        })
    };
    let stream = connect_with_retry(addr, &mut client, &say)?;
    let stopped = receive(&stream, 2, &mut client);
    if let Error::Eof = stopped.error {
        client.eofs += 1;
    }
    say.resock(&format!(
        "reconnected and read {} more records; the connection then ended with EOF",
        client.intact - 2 * u64::from(records)
    ));
    drop(stream);
    let listener = restart
        .join()
        .map_err(|_| std::io::Error::other("the restarted server panicked"))??;

    say.step(
        5,
        &format!("A burst: {burst} connections at once, one record each"),
    );
    let burst_ok = run_burst(listener, addr, burst, &server);
    say.resock(&format!(
        "{burst_ok} of {burst} connections got their record intact"
    ));
    client.intact += burst_ok;
    client.connects += u64::from(burst);

    let sent = server.sent.load(Ordering::Relaxed);
    let ok = sent == client.intact && client.bad == 0 && burst_ok == u64::from(burst);
    println!("\n{}", say.paint("1", "Summary"));
    let rows = [
        ("records sent whole by the server", sent.to_string()),
        ("records received intact", client.intact.to_string()),
        ("records corrupted", client.bad.to_string()),
        (
            "torn records discarded (the crash)",
            client.torn_discarded.to_string(),
        ),
        ("connections made", client.connects.to_string()),
        (
            "connects refused during the restart",
            client.refused.to_string(),
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
        println!("  {what:<40} {value:>10}");
    }
    let verdict = if ok {
        say.paint(
            "32",
            "OK: bytes sent = bytes received, nothing lost or torn",
        )
    } else {
        say.paint("31", "FAILED: records were lost or corrupted")
    };
    println!("\n{verdict}");
    Ok(ok)
}

/// Accepts `burst` connections, each served by its own thread (the seed's model), while as
/// many client threads connect at once. Returns how many clients got their record intact.
fn run_burst(
    listener: TcpListener,
    addr: SocketAddr,
    burst: u32,
    server: &Arc<ServerCounts>,
) -> u64 {
    let acceptor = {
        let server = server.clone();
        thread::spawn(move || {
            let mut handlers = Vec::new();
            for conn in 0..burst {
                let Ok((stream, _)) = listener.accept() else {
                    break;
                };
                let server = server.clone();
                handlers.push(thread::spawn(move || {
                    if write_full(&stream, &record(1000 + conn, 0), &Opts::default()).is_ok() {
                        server.sent.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
            for h in handlers {
                let _ = h.join();
            }
        })
    };
    let clients: Vec<_> = (0..burst)
        .map(|_| {
            thread::spawn(move || {
                let Ok(stream) = TcpStream::connect(addr) else {
                    return false;
                };
                let mut rec = [0u8; RECORD];
                if read_full(&stream, &mut rec, &Opts::default()).is_err() {
                    return false;
                }
                let conn = u32::from_le_bytes([rec[4], rec[5], rec[6], rec[7]]);
                (1000..1000 + burst).contains(&conn) && rec == record(conn, 0)
            })
        })
        .collect();
    let ok = clients
        .into_iter()
        .map(|c| c.join().unwrap_or(false))
        .filter(|&good| good)
        .count() as u64;
    let _ = acceptor.join();
    ok
}
