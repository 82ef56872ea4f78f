//! Builds every program in c_examples/ as a C user would — `-std=c11 -Wall -Wextra -Werror
//! -pedantic` against include/resock.h — links it once with the static library and once
//! with the shared one, runs it, and checks its exit status and output. The header is also
//! compiled in five C and C++ dialects, and the programs run under valgrind when it is installed.
//!
//! The libraries come from a `cargo build --lib` into a target dir of their own: cargo does
//! not uplift a test build's staticlib/cdylib, and building into the outer target dir while
//! `cargo test` holds its lock could hang.

#[path = "../build/header.rs"]
#[allow(dead_code)]
mod header;
#[path = "common/port.rs"]
mod port;
#[path = "common/skip.rs"]
mod skip;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The native libraries a Rust staticlib needs on Linux (`--print native-static-libs`).
const NATIVE_STATIC_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

/// Generous: these programs finish in well under a second.
const RUN_LIMIT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug)]
enum Link {
    Static,
    Shared,
    /// The static library, with the C side built under AddressSanitizer and UBSan.
    Sanitized,
}

/// The directory holding libresock.a and libresock.so, built once per test run.
fn lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cabi");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--lib", "--locked", "--target-dir"])
            .arg(&target)
            .current_dir(ROOT)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build --lib failed");
        let dir = target.join("debug");
        assert!(dir.join("libresock.a").exists() && dir.join("libresock.so").exists());
        dir
    })
}

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_examples");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

/// Compiles c_examples/NAME.c, warnings as errors, and links it the given way.
fn build(name: &str, link: Link) -> PathBuf {
    build_with(name, link, &[])
}

/// [`build`] with extra compiler arguments before the source. Each program is compiled
/// once per run: tests share the binaries, and one test must never execute a file that
/// another is still writing (that fails with ETXTBSY or EACCES).
fn build_with(name: &str, link: Link, extra: &[&str]) -> PathBuf {
    static BUILT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let lib = lib_dir();
    let stem = name.rsplit('/').next().unwrap_or(name);
    let exe = out_dir().join(format!("{stem}-{link:?}").to_lowercase());
    if built.contains(&exe) {
        return exe;
    }
    let mut cmd = Command::new(cc());
    cmd.args([
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
        "-g",
        "-O1",
    ])
    .arg(format!("-I{ROOT}/include"))
    .arg(format!("-I{ROOT}/c_examples"))
    .args(extra)
    .arg(format!("{ROOT}/c_examples/{name}.c"))
    .arg("-o")
    .arg(&exe);
    match link {
        Link::Static => {
            cmd.arg(lib.join("libresock.a")).args(NATIVE_STATIC_LIBS);
        }
        Link::Sanitized => {
            cmd.args([
                "-fsanitize=address,undefined",
                "-fno-omit-frame-pointer",
                "-fno-sanitize-recover=all",
            ])
            .arg(lib.join("libresock.a"))
            .args(NATIVE_STATIC_LIBS);
        }
        Link::Shared => {
            cmd.arg(format!("-L{}", lib.display()))
                .arg("-lresock")
                .arg(format!("-Wl,-rpath,{}", lib.display()))
                .arg("-lpthread");
        }
    }
    let out = cmd.output().expect("run the C compiler");
    assert!(
        out.status.success(),
        "{name}.c does not build warning-free ({link:?}):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    built.push(exe.clone());
    exe
}

/// Waits for `child` at most `limit`, killing it past that.
fn wait_limited(mut child: Child, limit: Duration, what: &str) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what} ran past {limit:?} and was killed\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        thread::sleep(Duration::from_millis(5));
    }
}

fn valgrind() -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join("valgrind"))
        .find(|p| p.is_file())
}

/// Runs a program (under valgrind when `grind`), returning its output once it succeeded.
fn run(exe: &Path, args: &[&str], grind: bool) -> String {
    let mut cmd = match (grind, valgrind()) {
        (true, Some(vg)) => {
            let mut c = Command::new(vg);
            c.args([
                "-q",
                "--error-exitcode=1",
                "--leak-check=full",
                "--errors-for-leak-kinds=definite",
            ])
            // Programs that measure their own RSS skip that check under valgrind.
            .env("RESOCK_UNDER_VALGRIND", "1")
            .arg(exe);
            c
        }
        _ => Command::new(exe),
    };
    let child = cmd
        .args(args)
        // cargo test's LD_LIBRARY_PATH names target/debug, whose libresock.so (and the
        // libresock.so.N link build.rs makes) may be another build's: programs must load
        // the library their rpath names, as a user's would.
        .env_remove("LD_LIBRARY_PATH")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_limited(child, RUN_LIMIT, &exe.display().to_string());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{} {args:?} failed: {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        exe.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Each single-process example and a line its output must contain.
const EXAMPLES: &[(&str, &str)] = &[
    ("readn_deadline", "reset peer: -1/ECONNRESET, *done = 3"),
    ("writen_pipe", "no reader: -1/EPIPE"),
    ("writev_readline", "header LENGTH 11"),
    ("explain", "104: ECONNRESET"),
    ("sigpipe_host", "write after RST: -1/EPIPE, process alive"),
    ("bad_input", "bad inputs rejected as documented"),
    ("lifecycle_stress", "lifecycle stress: ok"),
];

#[test]
fn examples_run_against_the_static_and_the_shared_library() {
    for link in [Link::Static, Link::Shared] {
        for (name, expect) in EXAMPLES {
            let out = run(&build(name, link), &[], false);
            assert!(out.contains(expect), "{name} ({link:?}) printed:\n{out}");
        }
    }
}

#[test]
fn examples_are_clean_under_valgrind() {
    if valgrind().is_none() {
        skip::skip("valgrind is not installed (apt-get install valgrind)");
        return;
    }
    for (name, expect) in EXAMPLES {
        let out = run(&build(name, Link::Shared), &[], true);
        assert!(
            out.contains(expect),
            "{name} under valgrind printed:\n{out}"
        );
    }
}

/// The headers (resock.h and resock_compat.h) compile warning-free, -pedantic, in every
/// dialect a C or C++ user may build with: C89 and C++98 have no `//` comments and no
/// comma after the last enumerator.
#[test]
fn the_headers_compile_as_c89_c99_c11_cpp98_and_cpp17() {
    let dir = out_dir();
    let src = dir.join("header_only.c");
    std::fs::write(
        &src,
        "#include \"resock_compat.h\"\nint main(void) { return RESOCK_ABI_VERSION - 1; }\n",
    )
    .unwrap();
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let dialects = [
        (cc(), "-std=c89", "c"),
        (cc(), "-std=c99", "c"),
        (cc(), "-std=c11", "c"),
        (cxx.clone(), "-std=c++98", "c++"),
        (cxx, "-std=c++17", "c++"),
    ];
    for (compiler, std_flag, lang) in dialects {
        let out = Command::new(&compiler)
            .args([
                std_flag,
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pedantic",
                "-fsyntax-only",
                "-x",
                lang,
            ])
            .arg(format!("-I{ROOT}/include"))
            .arg(&src)
            .output()
            .expect("run the compiler");
        assert!(
            out.status.success(),
            "the headers do not compile as {std_flag}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Starts seed_server and returns it with the port it printed.
fn start_server(exe: &Path, port: u16, records: u32, conns: u32, torn: bool) -> (Child, u16) {
    let mut args = vec![port.to_string(), records.to_string(), conns.to_string()];
    if torn {
        args.push("torn".into());
    }
    spawn_listening(exe, &args)
}

/// Starts a server example and returns it with the port from its "listening on" line.
fn spawn_listening(exe: &Path, args: &[String]) -> (Child, u16) {
    let mut child = Command::new(exe)
        .args(args)
        .env_remove("LD_LIBRARY_PATH") // as in run()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    let port = first
        .trim()
        .strip_prefix("listening on ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{} printed {first:?}", exe.display()));
    (child, port)
}

fn finish_server(child: Child) -> String {
    let mut out = wait_limited(child, RUN_LIMIT, "seed_server");
    let mut rest = String::new();
    out.stdout.as_slice().read_to_string(&mut rest).unwrap();
    assert!(
        out.status.success(),
        "seed_server failed: {:?}\n{rest}\n{}",
        out.status,
        String::from_utf8_lossy(&std::mem::take(&mut out.stderr))
    );
    rest
}

/// The seed's client and server exchange checksummed records through a server crash
/// (half a record, then RST), an outage with refused connects, and a restart on the same
/// port: every record the client accepts is intact, the torn one is discarded.
fn seed_pair_through_a_restart(server: &str, client: &str, link: Link, grind_client: bool) {
    let server = build(server, link);
    let client = build(client, link);

    let (first, port) = start_server(&server, port::restart_port(), 50, 1, true);
    let port_arg = port.to_string();
    let client_thread = {
        let client = client.clone();
        thread::spawn(move || run(&client, &[&port_arg, "150", "3"], grind_client))
    };
    assert!(finish_server(first).contains("served 1 connections"));
    // The outage: the client's connects are refused for a while.
    thread::sleep(Duration::from_millis(150));
    // Three connections: under load the first server's records and RST can all arrive
    // before the client's connect poll wakes; SO_ERROR then says ECONNRESET and that
    // connection counts as a failed attempt, so the restarted server may have to serve
    // all three. If the client needed only two of them, the test takes the third.
    let (second, again) = start_server(&server, port, 50, 3, false);
    assert_eq!(again, port);
    let out = client_thread.join().unwrap();
    if let Ok(mut rest) = std::net::TcpStream::connect(("127.0.0.1", port)) {
        let _ = rest.read_to_end(&mut Vec::new());
    }
    assert!(finish_server(second).contains("served 3 connections"));

    let summary = out.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("records="),
        "client summary missing:\n{out}"
    );
    let field = |key: &str| -> u32 {
        summary
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {summary:?}"))
    };
    assert_eq!((field("records="), field("bad=")), (150, 0), "{out}");
    // The crash tore the 51st record of the first connection: reported as a reset (or a
    // short EOF), never accepted. A connect that lands while a server is going away is
    // reset too, so more than three connections may be made.
    assert!(
        out.lines()
            .find(|l| l.starts_with("connection "))
            .is_some_and(|l| l.starts_with("connection 1: after 50 records: ")),
        "{out}"
    );
    // Unless the first server's whole connection was lost at connect (see above): then all
    // three came from the restarted server, each whole and closed in order.
    let lost_at_connect = field("connections=") == 3
        && out
            .lines()
            .filter(|l| l.starts_with("connection "))
            .all(|l| l.contains("after 50 records: EOF"));
    assert!(
        field("torn=") + field("resets=") >= 1 || lost_at_connect,
        "{out}"
    );
    assert!(field("connections=") >= 3, "{out}");
}

#[test]
fn seed_pair_survives_a_server_restart_static() {
    seed_pair_through_a_restart("seed_server", "seed_client", Link::Static, false);
}

#[test]
fn seed_pair_survives_a_server_restart_shared() {
    seed_pair_through_a_restart("seed_server", "seed_client", Link::Shared, false);
}

#[test]
fn the_dial_loop_survives_a_server_restart() {
    for link in [Link::Static, Link::Shared] {
        seed_pair_through_a_restart("seed_server", "dial_loop", link, false);
    }
}

#[test]
fn the_record_client_survives_a_server_restart() {
    for link in [Link::Static, Link::Shared] {
        seed_pair_through_a_restart("seed_server", "record_client", link, false);
    }
}

#[test]
fn the_clients_are_clean_under_valgrind() {
    if valgrind().is_none() {
        skip::skip("valgrind is not installed (apt-get install valgrind)");
        return;
    }
    for client in ["seed_client", "dial_loop", "record_client"] {
        seed_pair_through_a_restart("seed_server", client, Link::Shared, true);
    }
}

#[test]
fn the_seed_server_on_resock_server_serves_through_a_restart() {
    for link in [Link::Static, Link::Shared] {
        seed_pair_through_a_restart("server_records", "seed_client", link, false);
    }
    seed_pair_through_a_restart("server_records", "record_client", Link::Shared, false);
}

/// Sends `request` on `stream` and reads one response of the http_server example.
fn http_exchange(stream: &mut std::net::TcpStream, request: &str) -> String {
    use std::io::Write;
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    // Head, then Content-Length bytes of body.
    while !response.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).unwrap(),
            1,
            "short response: {response:?}"
        );
        response.push(byte[0]);
    }
    let head = String::from_utf8(response).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    head + &String::from_utf8(body).unwrap()
}

#[test]
fn the_http_example_answers_plain_and_keep_alive_requests() {
    let exe = build("http_server", Link::Static);
    // A thread per connection, then a thread per request with idle connections in epoll.
    for mode in [&[][..], &["--per-request".to_string()][..]] {
        let args: Vec<String> = mode
            .iter()
            .cloned()
            .chain(["0".into(), "3".into()])
            .collect();
        http_example_serves_three_requests(&exe, &args);
    }
}

fn http_example_serves_three_requests(exe: &Path, args: &[String]) {
    let (child, port) = spawn_listening(exe, args);
    let connect = || std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();

    let mut plain = connect();
    let r = http_exchange(&mut plain, "GET / HTTP/1.0\r\nHost: x\r\n\r\n");
    assert!(
        r.starts_with("HTTP/1.0 200 OK\r\n") && r.ends_with("Hello, world\n"),
        "{r}"
    );
    assert!(r.contains("Connection: close"));
    let mut rest = Vec::new();
    plain.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "HTTP/1.0 without keep-alive closes");

    let mut kept = connect();
    for _ in 0..2 {
        let r = http_exchange(
            &mut kept,
            "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
        );
        assert!(
            r.contains("Connection: Keep-Alive") && r.ends_with("Hello, world\n"),
            "{r}"
        );
    }
    drop(kept);
    let out = wait_limited(child, RUN_LIMIT, "http_server");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("requests=3 accepted=2"), "{stdout}");
}

#[test]
fn a_legacy_program_builds_unchanged_with_the_compat_header() {
    let legacy = format!("-I{ROOT}/c_examples/legacy");
    for link in [Link::Static, Link::Shared] {
        let exe = build_with(
            "legacy/legacy_echo",
            link,
            &["-include", "resock_compat.h", &legacy],
        );
        let out = run(&exe, &[], false);
        assert!(out.contains("echoed: a longer line of text"), "{out}");
        assert!(out.contains("record: world"), "{out}");
        assert!(out.contains("EPIPE, still alive"), "{out}");
    }
}

fn temp_prefix(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Builds c_examples/Makefile against an installed prefix and runs what it built.
fn make_against(prefix: &Path) {
    let out = prefix.join("bin");
    std::fs::create_dir_all(&out).unwrap();
    let status = Command::new("make")
        .args(["-s", "-C", &format!("{ROOT}/c_examples")])
        .arg(format!("OUT={}", out.display()))
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
        .status()
        .expect("run make");
    assert!(status.success(), "make against {} failed", prefix.display());
    for exe in ["explain-shared", "explain-static", "legacy_echo"] {
        run(&out.join(exe), &[], false);
    }
}

#[test]
fn the_plain_install_works_with_pkg_config() {
    if Command::new("pkg-config")
        .arg("--version")
        .output()
        .is_err()
    {
        skip::skip("pkg-config is not installed (apt-get install pkg-config)");
        return;
    }
    let prefix = temp_prefix("plain-install");
    let status = Command::new(format!("{ROOT}/scripts/install.sh"))
        .arg("--lib-dir")
        .arg(lib_dir())
        .arg(&prefix)
        .status()
        .unwrap();
    assert!(status.success());
    let pc = std::fs::read_to_string(prefix.join("lib/pkgconfig/resock.pc")).unwrap();
    assert!(
        pc.contains(&format!("Version: {}", env!("CARGO_PKG_VERSION"))),
        "{pc}"
    );
    make_against(&prefix);
    for page in ["man1/resock.1", "man7/resock.7", "man3/resock_readn.3"] {
        assert!(prefix.join("share/man").join(page).exists(), "{page}");
    }
}

/// The installed shared library as a distribution wants it: soname libresock.so.N with
/// the usual links, and exactly the header's functions exported, each versioned RESOCK_N
/// (N = RESOCK_ABI_VERSION - 1).
#[test]
fn the_installed_shared_library_has_a_soname_and_versioned_symbols() {
    let prefix = temp_prefix("versioned-install");
    let status = Command::new(format!("{ROOT}/scripts/install.sh"))
        .arg("--lib-dir")
        .arg(lib_dir())
        .arg(&prefix)
        .status()
        .unwrap();
    assert!(status.success());
    let header_text = std::fs::read_to_string(format!("{ROOT}/include/resock.h")).unwrap();
    let major = header::soname_major(&header_text);
    let soname = format!("libresock.so.{major}");
    let lib = prefix.join("lib");
    let real = format!("libresock.so.{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(
        std::fs::read_link(lib.join(&soname)).unwrap(),
        Path::new(&real)
    );
    assert_eq!(
        std::fs::read_link(lib.join("libresock.so")).unwrap(),
        Path::new(&soname)
    );
    let dynamic = Command::new("readelf")
        .args(["-d", "-W"])
        .arg(lib.join(&real))
        .output()
        .expect("run readelf");
    assert!(
        String::from_utf8_lossy(&dynamic.stdout).contains(&format!("Library soname: [{soname}]")),
        "no soname"
    );
    let symbols = Command::new("objdump")
        .arg("-T")
        .arg(lib.join(&real))
        .output()
        .expect("run objdump");
    let mut exported: Vec<String> = String::from_utf8_lossy(&symbols.stdout)
        .lines()
        .filter(|l| l.contains(" DF .text"))
        .map(|l| {
            let mut words = l.split_whitespace().rev();
            let name = words.next().unwrap_or_default();
            let version = words.next().unwrap_or_default();
            assert_eq!(
                version,
                format!("RESOCK_{major}"),
                "{name} is not versioned: {l}"
            );
            name.to_string()
        })
        .collect();
    exported.sort();
    let mut declared: Vec<String> = header::functions(&header_text)
        .into_iter()
        .map(|f| f.name)
        .collect();
    declared.sort();
    assert_eq!(exported, declared, "exports differ from the header");
}

/// A CMake project finds the installed package (`find_package(resock 0.1)`) and links
/// both imported targets, resock::resock and resock::resock_static; both programs run.
#[test]
fn the_cmake_package_links_both_targets() {
    if Command::new("cmake").arg("--version").output().is_err() {
        skip::skip("cmake is not installed (apt-get install cmake)");
        return;
    }
    let prefix = temp_prefix("cmake-install");
    let status = Command::new(format!("{ROOT}/scripts/install.sh"))
        .arg("--lib-dir")
        .arg(lib_dir())
        .arg(&prefix)
        .status()
        .unwrap();
    assert!(status.success());
    let build = prefix.join("build");
    let configure = Command::new("cmake")
        .args(["-S", &format!("{ROOT}/c_examples/cmake"), "-B"])
        .arg(&build)
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
        .output()
        .unwrap();
    assert!(
        configure.status.success(),
        "cmake configure failed:\n{}{}",
        String::from_utf8_lossy(&configure.stdout),
        String::from_utf8_lossy(&configure.stderr)
    );
    let compile = Command::new("cmake")
        .arg("--build")
        .arg(&build)
        .output()
        .unwrap();
    assert!(
        compile.status.success(),
        "cmake --build failed:\n{}{}",
        String::from_utf8_lossy(&compile.stdout),
        String::from_utf8_lossy(&compile.stderr)
    );
    for exe in ["explain-shared", "explain-static"] {
        let out = run(&build.join(exe), &[], false);
        assert!(out.contains("104: ECONNRESET"), "{exe} printed:\n{out}");
    }
}

#[test]
fn cargo_cinstall_works_with_pkg_config() {
    let has_cargo_c = Command::new(env!("CARGO"))
        .args(["cinstall", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_cargo_c {
        skip::skip("cargo-c is not installed (cargo install cargo-c)");
        return;
    }
    let prefix = temp_prefix("capi-install");
    let status = Command::new(env!("CARGO"))
        .args(["cinstall", "--locked", "--libdir", "lib", "--prefix"])
        .arg(&prefix)
        .arg("--target-dir")
        .arg(Path::new(env!("CARGO_TARGET_TMPDIR")).join("capi"))
        .current_dir(ROOT)
        .status()
        .unwrap();
    assert!(status.success(), "cargo cinstall failed");
    let libs: Vec<String> = std::fs::read_dir(prefix.join("lib"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        libs.iter().any(|l| l.starts_with("libresock.so.")),
        "no versioned .so: {libs:?}"
    );
    assert!(prefix.join("include/resock_compat.h").exists());
    make_against(&prefix);
}

#[test]
fn examples_are_clean_under_asan_and_ubsan() {
    for (name, expect) in EXAMPLES {
        let out = run(&build(name, Link::Sanitized), &[], false);
        assert!(
            out.contains(expect),
            "{name} under ASan/UBSan printed:\n{out}"
        );
    }
}

/// The reproducers an adversarial review of the lifecycle wrote (c_examples/attack/): each
/// exits 2 when it breaks a promise of the header, 0 when the promise holds. Run against
/// the static library and, for the ones that exercise memory, under valgrind too.
#[test]
fn the_lifecycle_attacks_of_the_review_hold() {
    /// A program, its arguments and its environment.
    type Case = (
        &'static str,
        &'static [&'static str],
        &'static [(&'static str, &'static str)],
    );
    let cases: &[Case] = &[
        // A log sink on the accept thread that frees or joins its own server.
        ("attack/attack_sink_on_accept_thread", &["free"], &[]),
        ("attack/attack_sink_on_accept_thread", &["join"], &[]),
        // A failed resock_server_start while another thread is in resock_server_join:
        // RUST_MIN_STACK makes Rust's thread spawns fail while C's pthreads work.
        (
            "attack/attack_start_fails_join_hangs",
            &[],
            &[("RUST_MIN_STACK", "100000000000000")],
        ),
        // resock_dial from a pthread key destructor (thread-locals already gone).
        ("attack/attack_dial_in_thread_exit", &[], &[]),
        // A client's 64 MiB record buffer costs no resident memory before it is read.
        ("attack/attack_record_buffer_rss", &[], &[]),
        // A sink calling resock_set_log on one thread, resock_client_free on another.
        ("attack/attack_sink_set_log_vs_free", &[], &[]),
        // Run after stop, INT_MAX joins, concurrent starts, free from on_disconnect.
        ("attack/attack_held", &[], &[]),
    ];
    for (name, args, env) in cases {
        let exe = build(name, Link::Static);
        let child = Command::new(&exe)
            .args(*args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_limited(child, RUN_LIMIT, name);
        assert!(
            out.status.success(),
            "{name} {args:?}: {:?}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if valgrind().is_some() {
        let out = run(&build("attack/attack_held", Link::Shared), &[], true);
        assert!(out.contains("held"), "attack_held under valgrind:\n{out}");
    }
}

/// A legacy program that still defines its own readn (its rdwrn.c not deleted) must fail
/// to compile with the compat header, saying what to do — never link and silently
/// replace resock's function.
#[test]
fn a_leftover_legacy_definition_fails_the_build_loudly() {
    let out = Command::new(cc())
        .args(["-std=c11", "-Wall", "-Wextra", "-pedantic", "-c", "-o"])
        .arg(out_dir().join("leftover_readn.o"))
        .arg(format!("-I{ROOT}/include"))
        .arg(format!("-I{ROOT}/c_examples/legacy"))
        .args(["-include", "resock_compat.h"])
        .arg(format!("{ROOT}/c_examples/legacy/leftover_readn.c"))
        .output()
        .expect("run the C compiler");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second readn compiled:\n{stderr}");
    assert!(
        stderr.contains("redefinition of") && stderr.contains("delete your rdwrn.c/readline.c"),
        "the error does not say what to do:\n{stderr}"
    );
}

/// Where redis-server is, if installed (.ci/run installs Debian's).
fn redis_server() -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join("redis-server"))
        .find(|p| p.is_file())
}

/// A redis-server on 127.0.0.1:`port`, no persistence, ready for connections.
fn start_redis(exe: &Path, port: u16) -> Child {
    let child = Command::new(exe)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server");
    let start = Instant::now();
    while redis_command(port, &["PING"]).is_none() {
        assert!(start.elapsed() < RUN_LIMIT, "redis-server never answered");
        thread::sleep(Duration::from_millis(10));
    }
    child
}

/// Sends one command on a fresh connection; the reply's integer (PUBLISH: receivers;
/// PUBSUB NUMSUB: subscribers), 0 for any other reply, None if redis does not answer.
fn redis_command(port: u16, args: &[&str]) -> Option<i64> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut cmd = format!("*{}\r\n", args.len());
    for a in args {
        cmd += &format!("${}\r\n{a}\r\n", a.len());
    }
    s.write_all(cmd.as_bytes()).ok()?;
    let mut reply = BufReader::new(s);
    let mut line = String::new();
    // An integer reply, or the array of PUBSUB NUMSUB whose last element is the count.
    loop {
        line.clear();
        if reply.read_line(&mut line).ok()? == 0 {
            return None;
        }
        match line.as_bytes().first()? {
            b':' => return line[1..].trim().parse().ok(),
            b'+' => return Some(0),
            b'-' => return None,
            // Array headers, bulk lengths and bulk strings: read on.
            _ => {}
        }
    }
}

/// The lines a child prints on one stream, collected by a thread.
fn collect_lines(stream: impl Read + Send + 'static) -> std::sync::Arc<Mutex<Vec<String>>> {
    let lines = std::sync::Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < RUN_LIMIT,
            "no {what} within {RUN_LIMIT:?}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// The RESP subscriber against a real redis-server: killed and restarted five times, then
/// SIGSTOPped past two heartbeat periods. Every message redis delivered while the
/// subscriber was subscribed (PUBLISH said 1 receiver) reaches its stdout exactly once, in
/// order; the stopped server is hung up on (ETIMEDOUT) within a generous bound.
#[test]
fn the_resp_subscriber_loses_and_duplicates_nothing_through_redis_restarts() {
    let Some(redis) = redis_server() else {
        println!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = start_redis(&redis, port);
    let idle_ms = 300;
    let mut sub = Command::new(build("resp_subscriber", Link::Shared))
        .args(["127.0.0.1", &port.to_string(), "news", &idle_ms.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = collect_lines(sub.stdout.take().unwrap());
    let err = collect_lines(sub.stderr.take().unwrap());
    let count = |lines: &Mutex<Vec<String>>, what: &str| {
        lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(what))
            .count()
    };
    let subscribed = |n: usize| {
        wait_until("subscription", || {
            count(&err, "subscribed") >= n
                && redis_command(port, &["PUBSUB", "NUMSUB", "news"]) == Some(1)
        })
    };
    let mut delivered: Vec<String> = Vec::new();
    let mut publish = |round: &str, n: usize| {
        for i in 0..n {
            let msg = format!("{round}-{i}");
            match redis_command(port, &["PUBLISH", "news", &msg]) {
                Some(1) => delivered.push(msg),
                other => panic!("PUBLISH {msg} while subscribed: {other:?}"),
            }
        }
        let want = delivered.len();
        wait_until("the messages", || out.lock().unwrap().len() >= want);
    };
    subscribed(1);
    for round in 0..5 {
        publish(&format!("life{round}"), 20);
        server.kill().unwrap();
        server.wait().unwrap();
        server = start_redis(&redis, port);
        subscribed(round + 2);
    }
    publish("before-stop", 10);
    let timeouts = count(&err, &format!("disconnected 4 {}", libc::ETIMEDOUT));
    // SAFETY: a plain signal to our own child.
    unsafe { libc::kill(server.id() as i32, libc::SIGSTOP) };
    let stopped = Instant::now();
    wait_until("a heartbeat hang-up", || {
        count(&err, &format!("disconnected 4 {}", libc::ETIMEDOUT)) > timeouts
    });
    let caught = stopped.elapsed();
    // SAFETY: as above.
    unsafe { libc::kill(server.id() as i32, libc::SIGCONT) };
    assert!(
        caught < Duration::from_millis(10 * 2 * idle_ms),
        "the stopped server was noticed only after {caught:?}"
    );
    subscribed(count(&err, "subscribed") + 1);
    publish("after-stop", 10);
    assert_eq!(
        redis_command(port, &["PUBLISH", "news", "quit"]),
        Some(1),
        "quit"
    );
    let status = wait_limited(sub, RUN_LIMIT, "resp_subscriber").status;
    let _ = server.kill();
    let _ = server.wait();
    let got: Vec<String> = out.lock().unwrap().clone();
    assert!(status.success(), "{status:?}\n{:?}", err.lock().unwrap());
    assert_eq!(got.last().map(String::as_str), Some("quit"));
    assert_eq!(got[..got.len() - 1], delivered[..], "lost or duplicated");
    println!(
        "{} messages through 5 restarts and a SIGSTOP (noticed after {caught:?})",
        delivered.len()
    );
}
