//! Reporting a test that could not run here. libtest captures `println!` of passing tests,
//! so a plain skip looked like a pass; this writes past the capture to stderr and appends
//! to target/tmp/skipped.txt, which .ci/run prints as its summary of skipped tests.

use std::io::Write;

/// Says (visibly) that this test, or the part of it named in `reason`, did not run.
pub fn skip(reason: &str) {
    let binary = std::env::args()
        .next()
        .and_then(|p| {
            std::path::Path::new(&p)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    // Integration test binaries are named NAME-HASH.
    let file = binary.rsplit_once('-').map_or(binary.as_str(), |(f, _)| f);
    let test = std::thread::current()
        .name()
        .unwrap_or("unknown test")
        .to_string();
    let line = format!("SKIPPED: {file}::{test}: {reason}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = f.write_all(line.as_bytes());
    }
}
