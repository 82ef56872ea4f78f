//! # resock — socket I/O that survives the real world
//!
//! A C program's socket code fails in a handful of ways: `recv` returns 0 (the peer sent
//! FIN) or -1 with ECONNRESET (it sent RST); a write after the reset raises SIGPIPE and
//! kills the process; a signal interrupts a read with EINTR; a short read tears a record.
//! resock is the library those programs link (`-lresock`) instead of copying `readn` from a
//! textbook, and the same code is a Rust crate.
//!
//! Modules:
//!
//! - [`io`]: exact-count reads and writes on raw fds ([`io::read_full`], [`io::write_full`],
//!   [`io::write_vectored_full`], [`io::read_line`]) that never lose the count and never
//!   raise SIGPIPE — the C calls `readn_sync`, `writen_sync`, `writev_sync`, `readline_sync`.
//! - [`reader`]: the buffered [`reader::Reader`]: lines and exact counts at one syscall per
//!   buffer, a line never split, nothing consumed by a timeout mid-line.
//! - [`error`]: the [`Error`] type, errno classes ([`error::Class`]) and plain-words
//!   explanations ([`error::explain`]).
//! - [`net`]: resolve, connect with a timeout, listen, TCP_NODELAY, keepalive and
//!   TCP_USER_TIMEOUT.
//! - [`backoff`]: the reconnect schedule, pure and deterministic under a seed.
//! - [`dial`]: the [`dial::Dialer`], the seed's `goto next` loop done right.
//! - [`client`]: the [`client::Client`] thread that dials, runs a session, reconnects.
//! - [`server`]: the [`server::Server`] accept loop with a pooled thread per connection.
//! - [`doctor`]: the kernel settings and counters behind resets under load.
//! - [`log`]: where resock's (rate-limited) messages go; silent by default.
//!
//! The C ABI lives in `src/ffi` (the only place with `extern "C"`) and is described by the
//! generated header `include/resock.h`.

pub mod backoff;
pub mod client;
pub mod dial;
pub mod doctor;
pub mod error;
pub mod io;
pub mod log;
pub mod net;
pub mod reader;
pub mod server;

mod ffi;
mod sigpipe;
mod sys;
#[cfg(feature = "test-hooks")]
pub mod test_hooks;
#[cfg(not(feature = "test-hooks"))]
mod test_hooks;
mod wake;

pub use error::{Class, Error, Partial};

/// The README's Rust example, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
