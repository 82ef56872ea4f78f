//! Ports for servers that restart on the same port.

/// A free loopback port outside the kernel's ephemeral range, for a server that restarts
/// on the same port. A port from bind(0) is free again during the outage, and another
/// test's bind(0) may be given it (seen: a client reading a different example's records
/// as corrupt); ports below ip_local_port_range are never handed out that way.
pub fn restart_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let low: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let span = low.saturating_sub(10_000).max(1);
    let seed = std::process::id().wrapping_mul(7919);
    for _ in 0..1000 {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = 10_000 + (seed.wrapping_add(n.wrapping_mul(104_729))) % span;
        if let Ok(port) = u16::try_from(port)
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port between 10000 and {low}");
}
