#!/usr/bin/env bash
# Runs every bench and collects their tables in one file (default target/benchmarks.md),
# ready to paste into BENCHMARKS.md; the throughput chart goes to docs/throughput.svg.
#
#     benches/run.sh [OUTPUT] [SOAK_SECONDS]      (defaults: target/benchmarks.md 600)
set -euo pipefail
cd "$(dirname "$0")/.."
output=${1:-target/benchmarks.md}
soak=${2:-600}
mkdir -p "$(dirname "$output")" docs
{
    echo "# resock benchmarks, $(date -u +%Y-%m-%d), $(nproc) cores, Linux $(uname -r)"
    echo
    cargo bench --quiet -p resock --bench io --features bench -- 7 --svg docs/throughput.svg 2>/dev/null
    echo
    echo "## Reconnect"
    echo
    cargo bench --quiet --bench reconnect 2>/dev/null
    echo
    echo "## Accept"
    echo
    benches/accept.sh
    echo
    echo "## Reconnect soak ($soak s)"
    echo
    cargo bench --quiet --bench reconnect -- --soak "$soak" 2>/dev/null
} | tee "$output"
