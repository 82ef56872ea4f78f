//! Reconnect bench (not a test): how fast a client is back after its server restarts, and
//! how hard it hammers a dead port — resock's defaults against the seed's `goto next` loop,
//! in one run, printed side by side.
//!
//!     cargo bench --bench reconnect [-- RESTARTS]      (default 50 restarts)
//!     cargo bench --bench reconnect -- --soak SECONDS   (a reconnect soak: RSS, fds, threads)

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use resock::dial::{DialConfig, Dialer};
use resock::io::{Opts, read_full};

/// The seed's client loop: socket, connect, read until it fails, close, again — no pause.
fn seed_loop(addr: SocketAddr, stop: &AtomicBool, attempts: &AtomicU64) {
    while !stop.load(Ordering::Relaxed) {
        attempts.fetch_add(1, Ordering::Relaxed);
        if let Ok(stream) = TcpStream::connect(addr) {
            let mut byte = [0u8; 1];
            while read_full(&stream, &mut byte, &Opts::default()).is_ok() {}
        }
    }
}

/// A resock client loop with the default configuration.
fn resock_loop(dialer: &Dialer) {
    while let Ok(fd) = dialer.dial() {
        let mut byte = [0u8; 1];
        while read_full(&fd, &mut byte, &Opts::default()).is_ok() {}
        let _ = dialer.hangup(fd);
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Restarts the server `restarts` times (each connection lives `lived`, then the server is
/// down for `outage`) and returns the time from each restart to the client's reconnect.
fn restart_latencies(
    addr: SocketAddr,
    restarts: usize,
    lived: Duration,
    outage: Duration,
) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(restarts);
    for _ in 0..restarts {
        let listener = TcpListener::bind(addr).expect("rebind");
        let up = Instant::now();
        let (conn, _) = listener.accept().expect("accept");
        latencies.push(up.elapsed());
        thread::sleep(lived);
        drop(conn);
        drop(listener);
        thread::sleep(outage);
    }
    latencies.sort();
    latencies
}

/// One field of /proc/self/status, such as VmRSS.
fn status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{field}:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A resock Client reconnecting for `seconds` to a server that sends one record and
/// closes each connection; samples this process's RSS, fds and threads every 10 s.
fn soak(seconds: u64) {
    use resock::client::{Client, ClientConfig, Mode, Session};
    struct Count(Arc<AtomicU64>);
    impl Session for Count {
        fn on_record(&mut self, _: &[u8]) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let server = thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            if resock::io::write_full(&stream, &[0u8; 64], &Opts::default()).is_err() {
                break;
            }
        }
    });
    let records = Arc::new(AtomicU64::new(0));
    let mut dial = DialConfig::new("127.0.0.1", &port);
    // Every connection here lives a moment: count them as stable so the soak cycles fast.
    dial.backoff.stable_after = Duration::ZERO;
    dial.backoff.initial = Duration::from_millis(1);
    dial.backoff.max = Duration::from_millis(10);
    let client = Client::start(
        ClientConfig::new(dial, Mode::Records(64)),
        Count(records.clone()),
    )
    .unwrap();
    println!("| after | connects | records | VmRSS | VmHWM | fds | threads |");
    println!("|---|---|---|---|---|---|---|");
    let start = Instant::now();
    loop {
        let s = client.stats();
        println!(
            "| {} s | {} | {} | {} | {} | {} | {} |",
            start.elapsed().as_secs(),
            s.connects,
            records.load(Ordering::Relaxed),
            status("VmRSS"),
            status("VmHWM"),
            open_fds(),
            status("Threads")
        );
        if start.elapsed() >= Duration::from_secs(seconds) {
            break;
        }
        thread::sleep(Duration::from_secs(10).min(Duration::from_secs(seconds)));
    }
    client.stop();
    client.join(None).unwrap();
    drop(server);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--soak") {
        soak(args.get(at + 1).and_then(|s| s.parse().ok()).unwrap_or(600));
        return;
    }
    let restarts: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(50);
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let port = addr.port().to_string();
    // A connection must outlive stable_after (2 s by default) to count as healthy.
    let lived = Duration::from_millis(2100);
    let outage = Duration::from_millis(200);

    println!(
        "reconnect latency over {restarts} server restarts ({} ms outage each)",
        outage.as_millis()
    );
    let dialer = Arc::new(Dialer::new(DialConfig::new("127.0.0.1", &port)).unwrap());
    let client = {
        let dialer = dialer.clone();
        thread::spawn(move || resock_loop(&dialer))
    };
    let resock = restart_latencies(addr, restarts, lived, outage);
    dialer.stop();
    let _ = client.join();

    let stop = Arc::new(AtomicBool::new(false));
    let seed_attempts = Arc::new(AtomicU64::new(0));
    let seed = {
        let (stop, attempts) = (stop.clone(), seed_attempts.clone());
        thread::spawn(move || seed_loop(addr, &stop, &attempts))
    };
    let seed_latencies =
        restart_latencies(addr, restarts.min(10), Duration::from_millis(100), outage);
    // The server is down again: the seed loop spins on refused connects and sees the flag.
    stop.store(true, Ordering::Relaxed);
    let _ = seed.join();

    println!("| client | median | p99 | max |");
    println!("|---|---|---|---|");
    for (name, l) in [
        ("resock defaults", &resock),
        ("seed loop (no pause)", &seed_latencies),
    ] {
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.1} ms |",
            percentile(l, 0.5).as_secs_f64() * 1e3,
            percentile(l, 0.99).as_secs_f64() * 1e3,
            l[l.len() - 1].as_secs_f64() * 1e3
        );
    }

    println!("\nconnect attempts against a dead port for 2 s");
    let window = Duration::from_secs(2);
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dialer =
        Arc::new(Dialer::new(DialConfig::new("127.0.0.1", &dead.port().to_string())).unwrap());
    let dialing = {
        let dialer = dialer.clone();
        thread::spawn(move || dialer.dial())
    };
    thread::sleep(window);
    dialer.stop();
    let _ = dialing.join();
    let resock_attempts = dialer.stats().attempts;

    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicU64::new(0));
    let seed = {
        let (stop, attempts) = (stop.clone(), attempts.clone());
        thread::spawn(move || seed_loop(dead, &stop, &attempts))
    };
    thread::sleep(window);
    stop.store(true, Ordering::Relaxed);
    let _ = seed.join();
    let seed_attempts = attempts.load(Ordering::Relaxed);

    println!("| client | attempts | attempts/s |");
    println!("|---|---|---|");
    for (name, n) in [
        ("resock defaults", resock_attempts),
        ("seed loop (no pause)", seed_attempts),
    ] {
        println!("| {name} | {n} | {:.0} |", n as f64 / window.as_secs_f64());
    }
}
