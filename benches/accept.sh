#!/usr/bin/env bash
# Accept bench (not a test): `ab -n N -c C` against resock's http_server example and
# against a seed-style naive server (thread per accept, listen backlog 5), side by side,
# with the kernel's ListenOverflows counter read before and after each run.
#
#     benches/accept.sh [REQUESTS] [CONCURRENCY]      (defaults: 50000 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-50000}
concurrency=${2:-1000}

if ! command -v ab >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq apache2-utils
fi
ulimit -n "$(ulimit -Hn)"

cargo build --release --lib --quiet
out=target/accept-bench
mkdir -p "$out"
native="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
cc -std=c11 -O2 -Iinclude -Ic_examples c_examples/http_server.c target/release/libresock.a $native -o "$out/http_server"
cc -std=c11 -O2 benches/naive_server.c -lpthread -o "$out/naive_server"

overflows() {
    awk '/^TcpExt:/ { if (!n) { for (i = 1; i <= NF; i++) col[$i] = i; n = 1 } else print $col["ListenOverflows"] }' /proc/net/netstat
}

run() {
    local name=$1 exe=$2
    shift 2
    "$exe" 0 "$@" > "$out/$name.out" 2>&1 &
    local pid=$!
    local port=""
    for _ in $(seq 100); do
        port=$(sed -n 's/^listening on //p' "$out/$name.out")
        [ -n "$port" ] && break
        sleep 0.05
    done
    local before after
    before=$(overflows)
    ab -n "$requests" -c "$concurrency" -q "http://127.0.0.1:$port/" > "$out/$name.ab" 2>&1 || true
    after=$(overflows)
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local rps failed complete error
    rps=$(sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' "$out/$name.ab")
    failed=$(sed -n 's/^Failed requests: *//p' "$out/$name.ab")
    complete=$(sed -n -e 's/^Complete requests: *//p' -e 's/^Total of \([0-9]*\) requests completed/\1 (ab aborted)/p' "$out/$name.ab")
    error=$(grep -o -m1 -E 'apr_[a-z_]+: [^(]*\([0-9]+\)' "$out/$name.ab" || true)
    printf '| %s | %s | %s | %s | %s | %s |\n' "$name" "${complete:--}" "${failed:--}" \
        "${rps:--}" "$((after - before))" "${error:-none}"
}

echo "ab -n $requests -c $concurrency on $(nproc) cores, somaxconn=$(cat /proc/sys/net/core/somaxconn)," \
     "tcp_max_syn_backlog=$(cat /proc/sys/net/ipv4/tcp_max_syn_backlog)," \
     "syncookies=$(cat /proc/sys/net/ipv4/tcp_syncookies), abort_on_overflow=$(cat /proc/sys/net/ipv4/tcp_abort_on_overflow)"
echo
echo "| server | complete | failed | requests/s | ListenOverflows | ab error |"
echo "|---|---|---|---|---|---|"
run "resock http_server" "$out/http_server"
run "naive (backlog 5)" "$out/naive_server" 5
run "naive (backlog 4096)" "$out/naive_server" 4096

# nginx on the same machine, as a reference: a static 200 with the same body.
if ! command -v nginx >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null 2>&1 || true
fi
if command -v nginx >/dev/null; then
    mkdir -p "$out/nginx"
    nginx_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat > "$out/nginx/nginx.conf" <<CONF
worker_processes auto;
pid $PWD/$out/nginx/nginx.pid;
error_log $PWD/$out/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$nginx_port backlog=4096;
        location / { return 200 "Hello, world\n"; }
    }
}
CONF
    nginx -c "$PWD/$out/nginx/nginx.conf" -p "$PWD/$out/nginx"
    sleep 0.5
    before=$(overflows)
    ab -n "$requests" -c "$concurrency" -q "http://127.0.0.1:$nginx_port/" > "$out/nginx.ab" 2>&1 || true
    after=$(overflows)
    nginx -c "$PWD/$out/nginx/nginx.conf" -p "$PWD/$out/nginx" -s stop 2>/dev/null || true
    printf '| %s | %s | %s | %s | %s | %s |\n' "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///')" \
        "$(sed -n 's/^Complete requests: *//p' "$out/nginx.ab")" "$(sed -n 's/^Failed requests: *//p' "$out/nginx.ab")" \
        "$(sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' "$out/nginx.ab")" "$((after - before))" none
else
    echo "| nginx | not installed: skipped | | | | |"
fi

# Memory: the resock server holding 1000 idle connections (one pooled thread each).
"$out/http_server" 0 > "$out/rss.out" 2>&1 &
pid=$!
port=""
for _ in $(seq 100); do
    port=$(sed -n 's/^listening on //p' "$out/rss.out")
    [ -n "$port" ] && break
    sleep 0.05
done
python3 - "$port" "$pid" <<'PY'
import socket, sys, time
port, pid = int(sys.argv[1]), sys.argv[2]
def rss():
    fields = dict(l.split(':', 1) for l in open(f'/proc/{pid}/status'))
    return fields['VmRSS'].strip(), fields['VmHWM'].strip(), fields['Threads'].strip()
idle = rss()
conns = [socket.create_connection(('127.0.0.1', port)) for _ in range(1000)]
time.sleep(1)
held = rss()
print()
print('| resock http_server | RSS | peak RSS | threads |')
print('|---|---|---|---|')
print(f'| idle | {idle[0]} | {idle[1]} | {idle[2]} |')
print(f'| 1000 idle connections | {held[0]} | {held[1]} | {held[2]} |')
for c in conns:
    c.close()
PY
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
