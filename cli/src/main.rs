//! `resock`: the library's command line — a narrated demo of the seed's faults, and errno
//! explanations.

mod demo;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Socket I/O that survives the real world: see what the kernel does to a connection and
/// what resock does about it.
#[derive(Parser)]
#[command(name = "resock", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a server and a client on loopback, inject the seed's faults (EOF, RST, a write
    /// after the reset, a server restart, a burst of connections) and show that no record
    /// is lost or torn and the process survives.
    Demo {
        /// Records the server sends on each connection.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        records: u32,
        /// Concurrent connections in the final burst.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=2000))]
        burst: u32,
    },
    /// Read the kernel settings and counters behind "Connection reset by peer" under load
    /// (somaxconn, syncookies, the accept-queue overflow counters, the fd limit) and say
    /// what to change.
    Doctor {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Explain an errno in plain words: a number (104) or a name (ECONNRESET).
    Explain {
        /// The errno, as a number or a name such as ECONNRESET, EPIPE, ETIMEDOUT.
        errno: String,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Demo { records, burst } => demo::run(records, burst),
        Command::Doctor { json } => doctor(json),
        Command::Explain { errno } => explain(&errno),
    }
}

/// The errno names `explain` accepts, with their Linux values.
const ERRNO_NAMES: &[(&str, i32)] = &[
    ("ECONNRESET", libc::ECONNRESET),
    ("EPIPE", libc::EPIPE),
    ("ETIMEDOUT", libc::ETIMEDOUT),
    ("ETIME", libc::ETIME),
    ("ECONNREFUSED", libc::ECONNREFUSED),
    ("ECONNABORTED", libc::ECONNABORTED),
    ("ENOTCONN", libc::ENOTCONN),
    ("ESHUTDOWN", libc::ESHUTDOWN),
    ("ENETUNREACH", libc::ENETUNREACH),
    ("EHOSTUNREACH", libc::EHOSTUNREACH),
    ("ENETDOWN", libc::ENETDOWN),
    ("EHOSTDOWN", libc::EHOSTDOWN),
    ("ENETRESET", libc::ENETRESET),
    ("EINTR", libc::EINTR),
    ("EAGAIN", libc::EAGAIN),
    ("EWOULDBLOCK", libc::EWOULDBLOCK),
    ("EINPROGRESS", libc::EINPROGRESS),
    ("EALREADY", libc::EALREADY),
    ("EMFILE", libc::EMFILE),
    ("ENFILE", libc::ENFILE),
    ("ENOBUFS", libc::ENOBUFS),
    ("ENOMEM", libc::ENOMEM),
    ("EBADF", libc::EBADF),
    ("EINVAL", libc::EINVAL),
    ("EFAULT", libc::EFAULT),
    ("ENOTSOCK", libc::ENOTSOCK),
    ("EIO", libc::EIO),
    ("EISDIR", libc::EISDIR),
    ("EADDRINUSE", libc::EADDRINUSE),
    ("EADDRNOTAVAIL", libc::EADDRNOTAVAIL),
    ("ECANCELED", libc::ECANCELED),
];

fn explain(arg: &str) -> ExitCode {
    let errnum = match arg.parse::<i32>() {
        Ok(n) => n,
        Err(_) => match ERRNO_NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(arg))
        {
            Some(&(_, n)) => n,
            None => {
                eprintln!(
                    "resock explain: unknown errno {arg:?}; give a number or one of: {}",
                    ERRNO_NAMES
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                return ExitCode::from(2);
            }
        },
    };
    let class = resock::error::classify(errnum);
    println!(
        "errno {errnum} ({}), class {class:?}",
        std::io::Error::from_raw_os_error(errnum)
    );
    println!("{}", resock::error::explain(errnum).to_string_lossy());
    if resock::error::should_reconnect(errnum) {
        println!("The connection is dead: close it and reconnect (with backoff).");
    }
    ExitCode::SUCCESS
}

fn doctor(json: bool) -> ExitCode {
    let findings = resock::doctor::report();
    if json {
        let items: Vec<serde_json::Value> = findings
            .iter()
            .map(|f| {
                serde_json::json!({
                    "name": f.name,
                    "value": f.value,
                    "ok": f.ok,
                    "meaning": f.meaning,
                    "advice": f.advice,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(items));
    } else {
        print!("{}", resock::doctor::render_text(&findings));
    }
    ExitCode::SUCCESS
}
