//! Standard output for every command, written with resock's own `write_full`: the demo
//! runs with SIGPIPE at SIG_DFL (as a C program has it), so `resock demo | head -1` would
//! otherwise be killed by the signal. A reader that went away ends the program quietly
//! (exit 0); any other write error (`> /dev/full`: ENOSPC) is a message and exit 1, never
//! a panic.

use std::os::fd::AsFd;

use resock::io::{Opts, write_full};

/// Writes `text` to standard output completely, or ends the process as described above.
pub fn print(text: &str) {
    let stdout = std::io::stdout();
    if let Err(stopped) = write_full(stdout.as_fd(), text.as_bytes(), &Opts::default()) {
        let errnum = stopped.error.errno();
        if errnum == libc::EPIPE {
            std::process::exit(0);
        }
        eprintln!(
            "resock: cannot write to standard output: {}",
            crate::describe_errno(errnum)
        );
        std::process::exit(1);
    }
}

/// `println!` through [`print()`].
macro_rules! outln {
    () => {
        $crate::out::print("\n")
    };
    ($($arg:tt)*) => {
        $crate::out::print(&format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;
