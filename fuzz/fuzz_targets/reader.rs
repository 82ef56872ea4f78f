//! The buffered reader over arbitrary byte streams, written in arbitrary pieces, read with
//! arbitrary mixes of lines, exact counts and takes through an arbitrary capacity, against
//! a model of the stream: every byte comes out once and in order, a line longer than the
//! buffer is EMSGSIZE and consumes nothing, EOF ends a line or a count where the model says.
#![no_main]

use std::io::Write;
use std::os::unix::net::UnixStream;

use libfuzzer_sys::fuzz_target;
use resock::io::{LineEnd, Opts};
use resock::reader::Reader;

#[derive(arbitrary::Arbitrary, Debug)]
enum Op {
    Line(u8),
    Exact(u8),
    Take(u8),
}

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    data: Vec<u8>,
    pieces: Vec<u16>,
    capacity: u8,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let data = &input.data[..input.data.len().min(60_000)];
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
    let capacity = usize::from(input.capacity) + 1;
    check(Reader::with_capacity(capacity, &b).unwrap(), data, &input.ops);
    check(Reader::with_capacity(capacity, &r).unwrap(), data, &input.ops);
});

fn check<F: std::os::fd::AsFd>(mut r: Reader<F>, data: &[u8], ops: &[Op]) {
    let mut model = data;
    let finish = std::iter::repeat(&Op::Line(u8::MAX));
    for op in ops.iter().chain(finish) {
        if model.is_empty() {
            return;
        }
        match *op {
            Op::Line(limit) => {
                // A limit of 255 always ends: a line fits, or EMSGSIZE, then Exact drains.
                let limit = usize::from(limit.max(1));
                let mut buf = vec![0u8; limit];
                let nl = model.iter().take(limit).position(|&c| c == b'\n');
                match (nl, r.read_line_with(&mut buf, &Opts::default())) {
                    (Some(i), Ok(line)) => {
                        assert_eq!(&buf[..line.len], &model[..=i]);
                        assert_eq!(line.end, LineEnd::Newline);
                        model = &model[i + 1..];
                    }
                    (None, Err(e)) if model.len() >= limit => {
                        assert_eq!(e.errno(), libc::EMSGSIZE);
                        let mut skip = vec![0u8; limit];
                        r.read_exact_with(&mut skip, &Opts::default()).unwrap();
                        assert_eq!(&skip[..], &model[..limit]);
                        model = &model[limit..];
                    }
                    (None, Ok(line)) if model.len() < limit => {
                        assert_eq!((line.end, &buf[..line.len]), (LineEnd::Eof, model));
                        model = &[];
                    }
                    (nl, got) => panic!("model {nl:?}, got {got:?}"),
                }
            }
            Op::Exact(n) => {
                let mut buf = vec![0u8; usize::from(n)];
                match r.read_exact_with(&mut buf, &Opts::default()) {
                    Ok(()) => {
                        assert_eq!(&buf[..], &model[..buf.len()]);
                        model = &model[buf.len()..];
                    }
                    Err(p) => {
                        assert!(matches!(p.error, resock::Error::Eof));
                        assert!(model.len() < buf.len());
                        assert_eq!(&buf[..p.done], model);
                        model = &[];
                    }
                }
            }
            Op::Take(n) => {
                let mut buf = vec![0u8; usize::from(n)];
                let got = r.take_buffered(&mut buf);
                assert_eq!(&buf[..got], &model[..got]);
                model = &model[got..];
            }
        }
    }
}
