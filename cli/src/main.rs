//! `resock`: the library's command line — a narrated demo of the faults every socket
//! program meets, errno explanations, and a doctor for the kernel settings behind resets.

mod out;
use out::outln;

mod demo;

use std::ffi::CStr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use resock::Class;
use resock::error::{classify, errno_from_name, errno_name, explain, should_reconnect};

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
    /// Run a server and a client on loopback, inject the faults every socket program meets
    /// (EOF, RST, a write after the reset, a server restart, a burst of connections) and
    /// show that no record is lost or torn and the process survives.
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
        /// Print JSON: an array of {"name", "value", "ok", "meaning", "advice"} objects, keys
        /// in that order; value is a number, an array of numbers, a string or null.
        #[arg(long)]
        json: bool,
        /// Exit with status 1 when a setting gets a warning.
        #[arg(long)]
        strict: bool,
    },
    /// Explain an errno in plain words: a number (104), hex (0x68), -1, or any errno name
    /// (ECONNRESET, enoent).
    Explain {
        /// The errno, as a number, a hex number or a name such as ECONNRESET, EPIPE.
        #[arg(allow_hyphen_values = true)]
        errno: String,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Demo { records, burst } => demo::run(records, burst),
        Command::Doctor { json, strict } => doctor(json, strict),
        Command::Explain { errno } => explain_command(&errno),
    }
}

/// "ENOSPC (No space left on device)": the name and strerror's text, without the
/// "(os error N)" suffix of std's io::Error.
pub(crate) fn describe_errno(errnum: i32) -> String {
    // SAFETY: strerror returns a pointer to a NUL-terminated string (a static table entry
    // or a thread-local buffer), read at once.
    let text = unsafe { CStr::from_ptr(libc::strerror(errnum)) }.to_string_lossy();
    match errno_name(errnum) {
        Some(name) => format!("{name} ({text})"),
        None => format!("errno {errnum} ({text})"),
    }
}

/// A decimal number (104, -1), a hex number (0x68) or an errno name (ECONNRESET, any case).
fn parse_errno(arg: &str) -> Option<i32> {
    let arg = arg.trim();
    if let Some(hex) = arg.strip_prefix("0x").or_else(|| arg.strip_prefix("0X")) {
        return i32::from_str_radix(hex, 16).ok();
    }
    arg.parse::<i32>().ok().or_else(|| errno_from_name(arg))
}

/// The class as C names it: `RESOCK_CLASS_WOULD_BLOCK` for [`Class::WouldBlock`].
fn c_class_name(class: Class) -> String {
    let mut name = String::from("RESOCK_CLASS_");
    for (i, c) in format!("{class:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// The width to wrap to: the terminal's, else $COLUMNS, else 80.
fn output_width() -> usize {
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills a winsize; on a non-terminal it fails and size stays zero.
    let tty = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    let columns = if tty && size.ws_col > 0 {
        Some(usize::from(size.ws_col))
    } else {
        std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok())
    };
    columns.unwrap_or(80).clamp(20, 200)
}

/// `text` in lines of at most `width` characters.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if line_len > 0 && line_len + 1 + len > width {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += len;
    }
    out
}

fn explain_command(arg: &str) -> ExitCode {
    let Some(errnum) = parse_errno(arg) else {
        eprintln!(
            "resock explain: {arg:?} is not an errno: give a number (104, 0x68, -1) or a name \
             (ECONNRESET, EPIPE, ENOENT, ...)"
        );
        return ExitCode::from(2);
    };
    let width = output_width();
    outln!("{}", describe_errno(errnum));
    outln!(
        "class {}; resock_should_reconnect: {}",
        c_class_name(classify(errnum)),
        i32::from(should_reconnect(errnum))
    );
    outln!();
    outln!("{}", wrap(&explain(errnum).to_string_lossy(), width));
    ExitCode::SUCCESS
}

/// A finding's value as JSON: a number, an array of numbers ("32768 60999"), a string,
/// or null when it could not be read.
fn json_value(value: Option<&str>) -> String {
    let Some(value) = value else {
        return "null".into();
    };
    let numbers: Vec<u64> = value
        .split_whitespace()
        .map_while(|w| w.parse().ok())
        .collect();
    match numbers.len() {
        n if n == 0 || n != value.split_whitespace().count() => {
            serde_json::Value::from(value).to_string()
        }
        1 => numbers[0].to_string(),
        _ => serde_json::Value::from(numbers).to_string(),
    }
}

fn doctor(json: bool, strict: bool) -> ExitCode {
    let findings = resock::doctor::report();
    if json {
        // Written by hand so the keys keep the documented order (serde_json sorts them).
        let items: Vec<String> = findings
            .iter()
            .map(|f| {
                format!(
                    "  {{\"name\": {}, \"value\": {}, \"ok\": {}, \"meaning\": {}, \"advice\": {}}}",
                    serde_json::Value::from(f.name),
                    json_value(f.value.as_deref()),
                    f.ok.map_or("null".into(), |ok| ok.to_string()),
                    serde_json::Value::from(f.meaning),
                    serde_json::Value::from(f.advice.as_str()),
                )
            })
            .collect();
        outln!("[\n{}\n]", items.join(",\n"));
    } else {
        out::print(&resock::doctor::render_text(&findings));
    }
    let warnings = findings.iter().filter(|f| f.ok == Some(false)).count();
    if strict && warnings > 0 {
        eprintln!("resock doctor: {warnings} warning(s)");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
