#!/usr/bin/env sh
# Installs resock without cargo-c: the static and shared libraries, the headers and a
# pkg-config file, under PREFIX (default /usr/local).
#
#     scripts/install.sh [--lib-dir DIR] [PREFIX]
#
# --lib-dir takes libresock.a and libresock.so from DIR instead of building them with
# `cargo build --release`. (cargo cinstall, configured in Cargo.toml, also sets a versioned
# soname; this plain path installs an unversioned libresock.so.)
set -eu
cd "$(dirname "$0")/.."

lib_dir=""
if [ "${1:-}" = "--lib-dir" ]; then
    lib_dir=$2
    shift 2
fi
prefix=${1:-/usr/local}
if [ -z "$lib_dir" ]; then
    cargo build --release --lib --locked
    lib_dir=target/release
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)

mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
cp "$lib_dir/libresock.a" "$lib_dir/libresock.so" "$prefix/lib/"
cp include/resock.h include/resock_compat.h "$prefix/include/"
cat > "$prefix/lib/pkgconfig/resock.pc" <<PC
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: resock
Description: Socket I/O that survives the real world (readn/writen, reconnect, accept loop)
Version: $version
Libs: -L\${libdir} -lresock
Libs.private: -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
Cflags: -I\${includedir}
PC
echo "installed resock $version under $prefix"
