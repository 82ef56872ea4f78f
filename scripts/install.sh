#!/usr/bin/env sh
# Installs resock without cargo-c under PREFIX (default /usr/local):
#   lib/libresock.a, lib/libresock.so.VERSION (soname libresock.so.N, every symbol
#   versioned RESOCK_N by abi/resock.map, N = RESOCK_ABI_VERSION - 1) with the
#   libresock.so.N and libresock.so links,
#   lib/pkgconfig/resock.pc, lib/cmake/resock/ (find_package(resock)), include/resock.h,
#   include/resock_compat.h and share/man/man{1,3,7}.
#
#     scripts/install.sh [--lib-dir DIR] [--keep-debug] [PREFIX]
#
# --lib-dir takes libresock.a from DIR instead of building it (with LTO) by
# `cargo rustc --release --lib --crate-type staticlib`; --keep-debug keeps the DWARF that
# is otherwise stripped from both libraries (the ABI check reads types from it).
#
# The shared library is linked here from libresock.a: rustc gives its own cdylib an
# unversioned symbol list that a second version script cannot override, and both are made
# from the same objects.
set -eu
cd "$(dirname "$0")/.."

lib_dir=""
strip_flag=-Wl,--strip-all
while [ $# -gt 0 ]; do
    case "$1" in
        --lib-dir) lib_dir=$2; shift 2 ;;
        --keep-debug) strip_flag=""; shift ;;
        *) break ;;
    esac
done
prefix=${1:-/usr/local}
if [ -z "$lib_dir" ]; then
    # The static library alone: beside the rlib of a plain build rustc skips LTO, which is
    # what shrinks libresock.a (BENCHMARKS.md, "Sizes").
    cargo rustc --release --lib --locked --crate-type staticlib
    lib_dir=target/release
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
abi=$(sed -n 's/^#define RESOCK_ABI_VERSION \([0-9]*\)$/\1/p' include/resock.h)
soname=libresock.so.$((abi - 1))
native_libs="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

mkdir -p "$prefix/lib/pkgconfig" "$prefix/lib/cmake/resock" "$prefix/include"
cp "$lib_dir/libresock.a" "$prefix/lib/"
if [ -n "$strip_flag" ]; then
    # Debug info only: the symbols stay, so programs still link against it.
    ${STRIP:-strip} --strip-debug "$prefix/lib/libresock.a"
fi
# shellcheck disable=SC2086 # native_libs is a list of flags, strip_flag one or none
${CC:-cc} -shared -o "$prefix/lib/libresock.so.$version" \
    -Wl,--whole-archive "$lib_dir/libresock.a" -Wl,--no-whole-archive \
    -Wl,--version-script=abi/resock.map -Wl,-soname,$soname \
    -Wl,--gc-sections -Wl,-z,relro,-z,now -Wl,-O1 $strip_flag $native_libs
ln -sf "libresock.so.$version" "$prefix/lib/$soname"
ln -sf "$soname" "$prefix/lib/libresock.so"
cp include/resock.h include/resock_compat.h "$prefix/include/"
cp cmake/resockConfig.cmake cmake/resockConfigVersion.cmake "$prefix/lib/cmake/resock/"
for section in 1 3 7; do
    mkdir -p "$prefix/share/man/man$section"
    cp man/man$section/*.$section "$prefix/share/man/man$section/"
done
cat > "$prefix/lib/pkgconfig/resock.pc" <<PC
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: resock
Description: Socket I/O that survives the real world (readn/writen, reconnect, accept loop)
Version: $version
Libs: -L\${libdir} -lresock
Libs.private: $native_libs
Cflags: -I\${includedir}
PC
echo "installed resock $version under $prefix"
case "$prefix" in
    /usr | /usr/local) echo "run ldconfig (as root) so the loader finds $soname" ;;
    *) echo "outside the loader's path: link with -Wl,-rpath,$prefix/lib or set LD_LIBRARY_PATH" ;;
esac
