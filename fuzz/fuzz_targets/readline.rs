//! readline over arbitrary byte streams, written in arbitrary pieces, on a socket (the
//! MSG_PEEK path) and a pipe (byte at a time), against a simple model: each line ends at
//! the first '\n' or when the buffer is full; the stream's tail ends at EOF. Nothing is
//! lost, nothing is read past a newline.
#![no_main]

use std::io::Write;
use std::os::unix::net::UnixStream;

use libfuzzer_sys::fuzz_target;
use resock::io::{LineEnd, Opts, read_line};

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    data: Vec<u8>,
    pieces: Vec<u16>,
    cap: u8,
}

/// What read_line must return, call after call.
fn model(data: &[u8], cap: usize) -> Vec<(Vec<u8>, LineEnd)> {
    let mut out = Vec::new();
    let mut rest = data;
    loop {
        let take = rest
            .iter()
            .take(cap)
            .position(|&b| b == b'\n')
            .map(|i| i + 1);
        match take {
            Some(n) => {
                out.push((rest[..n].to_vec(), LineEnd::Newline));
                rest = &rest[n..];
            }
            None if rest.len() >= cap => {
                out.push((rest[..cap].to_vec(), LineEnd::Full));
                rest = &rest[cap..];
            }
            None => {
                out.push((rest.to_vec(), LineEnd::Eof));
                return out;
            }
        }
    }
}

fuzz_target!(|input: Input| {
    let data = &input.data[..input.data.len().min(60_000)];
    let cap = usize::from(input.cap.max(1));
    let expected = model(data, cap);
    // The socket: written in the fuzzer's pieces, then closed (all fits in the buffer).
    let (mut a, b) = UnixStream::pair().unwrap();
    let mut at = 0;
    for &p in input.pieces.iter().chain(std::iter::once(&u16::MAX)) {
        let end = (at + usize::from(p)).min(data.len());
        a.write_all(&data[at..end]).unwrap();
        at = end;
        if at == data.len() {
            break;
        }
    }
    drop(a);
    let (r, mut w) = std::io::pipe().unwrap();
    w.write_all(data).unwrap();
    drop(w);
    let mut buf = vec![0u8; cap];
    for (label, got) in [
        ("socket", read_all(&b, &mut buf)),
        ("pipe", read_all(&r, &mut buf)),
    ] {
        assert_eq!(got, expected, "{label}");
    }
});

fn read_all(fd: impl std::os::fd::AsFd + Copy, buf: &mut [u8]) -> Vec<(Vec<u8>, LineEnd)> {
    let mut out = Vec::new();
    loop {
        let line = read_line(fd, buf, &Opts::default()).unwrap();
        out.push((buf[..line.len].to_vec(), line.end));
        if line.end == LineEnd::Eof {
            return out;
        }
    }
}
