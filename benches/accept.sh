#!/usr/bin/env bash
# Accept and idle-load bench (not a test). Three contenders run side by side on loopback:
#   conn   resock's http_server, a thread per connection (the seed's model)
#   req    resock's http_server --per-request: idle connections in epoll, a pool per request
#   nginx  nginx-light, a static 200 with the same body (installed if missing)
#
# 1. `ab -n N -c C` and `ab -k -n 2N -c C`, alternated A B C A B C for ROUNDS rounds:
#    median requests/s with min–max, failed requests, ratio to nginx.
# 2. Idle cost: each server holding IDLE silent connections (1100 and 10000), its RSS and
#    thread count, and whether a legitimate request is answered meanwhile (and how fast).
#
#     benches/accept.sh [REQUESTS] [CONCURRENCY] [ROUNDS]      (defaults: 50000 1000 3)
#     IDLE_ONLY=1 benches/accept.sh                               (part 2 only)
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-50000}
concurrency=${2:-1000}
rounds=${3:-3}

need=()
command -v ab >/dev/null || need+=(apache2-utils)
command -v nginx >/dev/null || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
ulimit -n "$(ulimit -Hn)"

cargo build --release --lib --quiet
out=target/accept-bench
mkdir -p "$out/nginx"
native="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
cc -std=c11 -O2 -Iinclude -Ic_examples c_examples/http_server.c target/release/libresock.a $native -o "$out/http_server"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start NAME CMD...: runs a server whose first line is "listening on PORT"; sets PORT_NAME.
pids=()
start() {
    local name=$1
    shift
    "$@" > "$out/$name.out" 2>&1 &
    pids+=($!)
    eval "pid_$name=$!"
    local port=""
    for _ in $(seq 200); do
        port=$(sed -n 's/^listening on //p' "$out/$name.out")
        [ -n "$port" ] && break
        sleep 0.05
    done
    eval "port_$name=$port"
}
start_nginx() {
    port_nginx=$(free_port)
    cat > "$out/nginx/nginx.conf" <<CONF
worker_processes auto;
worker_rlimit_nofile 65536;
pid $PWD/$out/nginx/nginx.pid;
error_log $PWD/$out/nginx/error.log;
events { worker_connections 16384; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$port_nginx backlog=4096;
        location / { return 200 "Hello, world\n"; }
    }
}
CONF
    nginx -c "$PWD/$out/nginx/nginx.conf" -p "$PWD/$out/nginx"
    sleep 0.5
    pid_nginx=$(cat "$out/nginx/nginx.pid")
}
stop_all() {
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    nginx -c "$PWD/$out/nginx/nginx.conf" -p "$PWD/$out/nginx" -s stop 2>/dev/null || true
    pids=()
}
trap stop_all EXIT

start conn "$out/http_server" 0
start req "$out/http_server" --per-request 0
start_nginx

echo "ab -c $concurrency on $(nproc) cores, $rounds rounds alternated (A B C A B C), somaxconn=$(cat /proc/sys/net/core/somaxconn)"
echo
# ab_rps NAME ARGS...: one ab run, "rps failed" on stdout.
ab_rps() {
    local port_var=port_$1
    shift
    ab "$@" -q "http://127.0.0.1:${!port_var}/" > "$out/last.ab" 2>&1 || true
    local rps failed
    rps=$(sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' "$out/last.ab")
    failed=$(sed -n 's/^Failed requests: *//p' "$out/last.ab")
    echo "${rps:-0} ${failed:-all}"
}
kinds="plain keepalive"
[ -n "${IDLE_ONLY:-}" ] && kinds=""
for kind in $kinds; do
    if [ "$kind" = plain ]; then args=(-n "$requests" -c "$concurrency"); else args=(-k -n "$((requests * 2))" -c "$concurrency"); fi
    : > "$out/$kind.runs"
    for _ in $(seq "$rounds"); do
        for who in conn req nginx; do
            echo "$who $(ab_rps "$who" "${args[@]}")" >> "$out/$kind.runs"
        done
    done
    python3 - "$out/$kind.runs" "ab ${args[*]}" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    who, rps, failed = line.split()
    runs.setdefault(who, []).append((float(rps), failed))
names = {'conn': 'resock, thread per connection', 'req': 'resock, per request (epoll)', 'nginx': 'nginx-light'}
ref = statistics.median(r for r, _ in runs['nginx'])
print(f"| {sys.argv[2]} | median req/s | min–max | failed (per run) | vs nginx |")
print("|---|---|---|---|---|")
for who in ('conn', 'req', 'nginx'):
    rps = [r for r, _ in runs[who]]
    med = statistics.median(rps)
    print(f"| {names[who]} | {med:.0f} | {min(rps):.0f}–{max(rps):.0f} | {' '.join(f for _, f in runs[who])} | {med / ref:.2f}× |")
print()
PY
done

# Idle cost: IDLE silent connections held open by a client process, then one legitimate
# request; the server's RSS and threads (nginx: master and workers summed).
python3 - "$out" "$port_conn" "$pid_conn" "$port_req" "$pid_req" "$port_nginx" "$pid_nginx" <<'PY'
import os, socket, sys, time
out = sys.argv[1]
servers = [('resock, thread per connection', int(sys.argv[2]), int(sys.argv[3])),
           ('resock, per request (epoll)', int(sys.argv[4]), int(sys.argv[5])),
           ('nginx-light', int(sys.argv[6]), int(sys.argv[7]))]
def procs(pid):
    kids = [int(p) for p in os.listdir('/proc') if p.isdigit()
            and open(f'/proc/{p}/stat').read().split(') ')[1].split()[1] == str(pid)]
    return [pid] + kids
def usage(pid):
    rss = threads = 0
    for p in procs(pid):
        fields = dict(l.split(':', 1) for l in open(f'/proc/{p}/status'))
        rss += int(fields['VmRSS'].split()[0])
        threads += int(fields['Threads'])
    return rss, threads
def legit(port):
    start = time.monotonic()
    try:
        s = socket.create_connection(('127.0.0.1', port), timeout=10)
        s.settimeout(10)
        s.sendall(b'GET / HTTP/1.0\r\n\r\n')
        head = s.recv(100)
        ok = head.startswith(b'HTTP/1.') and b' 200 ' in head.split(b'\r\n')[0]
        s.close()
        return f"{(time.monotonic() - start) * 1e3:.1f} ms" if ok else "no answer"
    except OSError as e:
        return f"not answered in 10 s ({e.__class__.__name__})"
print("| server | idle conns made / held | RSS before → with them | per held conn | threads | a request meanwhile |")
print("|---|---|---|---|---|---|")
for idle in (1100, 10000):
    for name, port, pid in servers:
        rss0, _ = usage(pid)
        conns = []
        for _ in range(idle):
            try:
                conns.append(socket.create_connection(('127.0.0.1', port), timeout=2))
            except OSError:
                break
        time.sleep(1.5)
        rss1, threads = usage(pid)
        # Held: still open from the server's side (a shed connection reads EOF or a reset).
        held = 0
        for c in conns:
            c.setblocking(False)
            try:
                held += c.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b''
            except BlockingIOError:
                held += 1
            except OSError:
                pass
        answer = legit(port)
        per = (rss1 - rss0) * 1024 / max(held, 1)
        print(f"| {name} | {len(conns)} / {held} | {rss0} → {rss1} kB | {per:.0f} B | {threads} | {answer} |")
        for c in conns:
            c.close()
        time.sleep(1.5)
PY
