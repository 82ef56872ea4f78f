#!/usr/bin/env sh
# The ABI check of the installed shared library against the committed baseline
# abi/libresock.abi (libabigail's abidw/abidiff, Debian package abigail-tools).
#
#     scripts/abi.sh check      CI: fails when an existing function or type changed or was
#                               removed; reports added functions without failing
#     scripts/abi.sh baseline   rewrites abi/libresock.abi from the current source: the
#                               deliberate step after an ABI change (scripts/abi-baseline.sh)
#
# An incompatible change also needs RESOCK_ABI_VERSION bumped (src/ffi), which bumps the
# soname libresock.so.N and the version node RESOCK_N (N = RESOCK_ABI_VERSION - 1) with it,
# before the baseline is rewritten.
set -eu
cd "$(dirname "$0")/.."
mode=${1:-check}
baseline=abi/libresock.abi

# The release code with debug info (profile abi), linked exactly as scripts/install.sh
# installs it, DWARF kept.
cargo build --profile abi --lib --locked
prefix=target/abi/install
rm -rf "$prefix"
scripts/install.sh --lib-dir target/abi --keep-debug "$prefix" >/dev/null
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
current=target/abi/libresock.abi
abidw --no-corpus-path --no-comp-dir-path --no-show-locs \
    --out-file "$current" "$prefix/lib/libresock.so.$version"

# The handles C sees as opaque (typedef struct resock_client resock_client;) are Rust
# structs in the DWARF: their layout is private, so changes inside them are not ABI
# changes. The list follows the header.
suppressions=target/abi/opaque.suppr
sed -n 's/^typedef struct \([a-z_]*\) \1;$/\1/p' include/resock.h | while read -r handle; do
    printf '[suppress_type]\n  name_regexp = ::%s$\n\n' "$handle"
done > "$suppressions"

case "$mode" in
    baseline)
        cp "$current" "$baseline"
        echo "wrote $baseline: commit it with the change that made it necessary"
        ;;
    check)
        # abidiff sets bit 8 only for removed symbols; a changed parameter or struct is bit
        # 4, like an added function. So: any change left once additions are ignored fails.
        status=0
        abidiff --no-show-locs --suppressions "$suppressions" "$baseline" "$current" || status=$?
        if [ $((status & 3)) -ne 0 ]; then
            echo "ABI check: abidiff failed (status $status)" >&2
            exit 1
        fi
        changed=0
        abidiff --no-show-locs --no-added-syms --suppressions "$suppressions" "$baseline" "$current" >/dev/null || changed=$?
        if [ $((changed & 12)) -ne 0 ]; then
            echo "ABI check: INCOMPATIBLE change against $baseline (see above)." >&2
            echo "Revert it, or bump RESOCK_ABI_VERSION (the soname follows), then run scripts/abi-baseline.sh." >&2
            exit 1
        elif [ $((status & 4)) -ne 0 ]; then
            echo "ABI check: functions added, nothing changed; run scripts/abi-baseline.sh to record them."
        else
            echo "ABI check: no change against $baseline"
        fi
        ;;
    *)
        echo "usage: scripts/abi.sh check|baseline" >&2
        exit 2
        ;;
esac
