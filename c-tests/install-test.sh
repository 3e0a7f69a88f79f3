#!/bin/sh
# install-test.sh: `make install DESTDIR=<tmp> PREFIX=/usr`, then use the
# staged tree as the users of an installed library do, then
# `make uninstall` (make test-install, part of make check).
#
#   - the files installed: exactly the expected list;
#   - lean libraries: the .so has no .debug_* section and is under 8 MB, its
#     debug info is in the .debug file its .gnu_debuglink names (same build
#     ID); the .a has no debug info either;
#   - a CMake project (c-tests/consumer, find_package(etcdapi) through
#     CMAKE_PREFIX_PATH) linking etcdapi::etcdapi and etcdapi::etcdapi_static,
#     and a program built with pkg-config (PKG_CONFIG_SYSROOT_DIR and
#     PKG_CONFIG_LIBDIR into the staged tree), all three run against a
#     throwaway etcd (c-tests/etcd-local) and on the staged libraries;
#   - every man page renders with man -l and groff without a warning, and
#     `man -M <staged man dir> 3 NAME` finds a page for every exported
#     function (and the election calls);
#   - make uninstall leaves no file behind.
#
# Installs cmake, scdoc, pkg-config, man-db when missing (apt). Exits 1 on
# any failure, after the summary line "install-test: N passed, M failed".
set -eu
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
VERSION=1.0.0
MAX_SO_BYTES=8000000
# The election calls: their pages are installed before the calls land.
EXTRA_PAGES="etcd_campaign etcd_proclaim etcd_resign etcd_election_leader etcd_observe"

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() { what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
need() {
    command -v "$1" >/dev/null 2>&1 && return 0
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "$2"
}
need cmake cmake
need scdoc scdoc
need pkg-config pkg-config
need man man-db
need groff groff-base
need readelf binutils

tmp=$(mktemp -d /tmp/etcdapi-install-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM
stage=$tmp/stage
lib=$stage/usr/lib
mandir=$stage/usr/share/man

# ---- make install ----
if ! $MAKE --no-print-directory install DESTDIR="$stage" PREFIX=/usr >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    echo "FAIL: make install DESTDIR=$stage PREFIX=/usr"
    exit 1
fi
ok "make install DESTDIR=<tmp> PREFIX=/usr"

# Exactly these files (symlinks marked ->), and the man pages.
(cd "$stage" && find . ! -type d ! -path './usr/share/man/*' | sort) >"$tmp/files"
cat >"$tmp/expected" <<LIST
./usr/include/etcd-api.h
./usr/lib/cmake/etcdapi/etcdapiConfig.cmake
./usr/lib/cmake/etcdapi/etcdapiConfigVersion.cmake
./usr/lib/debug/usr/lib/libetcdapi.so.$VERSION.debug
./usr/lib/libetcd.so
./usr/lib/libetcdapi.a
./usr/lib/libetcdapi.so
./usr/lib/libetcdapi.so.1
./usr/lib/libetcdapi.so.$VERSION
./usr/lib/pkgconfig/etcdapi.pc
LIST
check "installed files are the expected ones" diff -u "$tmp/expected" "$tmp/files"
check "libetcdapi.so -> libetcdapi.so.1 -> libetcdapi.so.$VERSION, libetcd.so -> libetcdapi.so.1" \
    test "$(readlink "$lib/libetcdapi.so") $(readlink "$lib/libetcdapi.so.1") $(readlink "$lib/libetcd.so")" \
         = "libetcdapi.so.1 libetcdapi.so.$VERSION libetcdapi.so.1"

# ---- lean libraries ----
so=$lib/libetcdapi.so.$VERSION
dbg=$lib/debug/usr/lib/libetcdapi.so.$VERSION.debug
so_bytes=$(stat -c %s "$so")
a_bytes=$(stat -c %s "$lib/libetcdapi.a")
dbg_bytes=$(stat -c %s "$dbg")
echo "sizes: libetcdapi.so.$VERSION $so_bytes bytes, libetcdapi.a $a_bytes bytes, .debug $dbg_bytes bytes" \
     "(build/: $(stat -c %s build/libetcdapi.so.$VERSION), $(stat -c %s build/libetcdapi.a))"
check "installed .so has no .debug_* section" sh -c "! readelf -S --wide '$so' | grep -q '\.debug_'"
check "installed .so is under $MAX_SO_BYTES bytes ($so_bytes)" test "$so_bytes" -lt "$MAX_SO_BYTES"
check "installed .a has no .debug_* section" sh -c "! readelf -S --wide '$lib/libetcdapi.a' | grep -q '\.debug_'"
check "the .so's .gnu_debuglink names libetcdapi.so.$VERSION.debug" \
    sh -c "readelf --string-dump=.gnu_debuglink '$so' | grep -q 'libetcdapi.so.$VERSION.debug'"
check "the .debug file holds the debug info" sh -c "readelf -S --wide '$dbg' | grep -q '\.debug_info'"
build_id() { readelf -n "$1" | sed -n 's/.*Build ID: //p'; }
check "the .debug file has the .so's build ID ($(build_id "$so"))" \
    test -n "$(build_id "$so")" -a "$(build_id "$so")" = "$(build_id "$dbg")"
exports() { nm -D --defined-only "$1" | awk '$2 == "T" && $3 ~ /^etcd_/ { print $3 }' | sort; }
check "installed .so exports the same etcd_* functions as build/" \
    test "$(exports "$so")" = "$(exports build/libetcdapi.so.$VERSION)"

# ---- pkg-config against the staged tree ----
pc_flags=$(PKG_CONFIG_SYSROOT_DIR="$stage" PKG_CONFIG_LIBDIR="$lib/pkgconfig" pkg-config --cflags --libs etcdapi)
pc_flags=$(echo $pc_flags)
check "pkg-config with PKG_CONFIG_SYSROOT_DIR: '$pc_flags'" \
    test "$pc_flags" = "-I$stage/usr/include -L$lib -letcdapi"
pc_static=$(PKG_CONFIG_SYSROOT_DIR="$stage" PKG_CONFIG_LIBDIR="$lib/pkgconfig" pkg-config --static --libs etcdapi)
pc_static=$(echo $pc_static)
check "pkg-config --static --libs: '$pc_static'" test "$pc_static" = "-L$lib -letcdapi -lpthread -ldl -lm"
# shellcheck disable=SC2086
check "cc builds the consumer with pkg-config's flags" \
    ${CC:-cc} -std=c99 -Wall -Wextra -Werror -o "$tmp/pkgconfig-consumer" c-tests/consumer/consumer.c \
    $pc_flags -Wl,-rpath,"$lib"

# ---- CMake: find_package(etcdapi) through CMAKE_PREFIX_PATH ----
if cmake -S c-tests/consumer -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$stage/usr" \
         -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" >"$tmp/cmake.log" 2>&1 &&
   cmake --build "$tmp/cmake" >>"$tmp/cmake.log" 2>&1; then
    ok "cmake configures and builds c-tests/consumer (etcdapi::etcdapi, etcdapi::etcdapi_static)"
else
    cat "$tmp/cmake.log"
    bad "cmake configures and builds c-tests/consumer"
fi
check "find_package found the staged package" \
    grep -qx "etcdapi_DIR:PATH=$lib/cmake/etcdapi" "$tmp/cmake/CMakeCache.txt"
resolves_to_stage() { ldd "$1" | grep -q "libetcdapi.so.1 => $lib/libetcdapi.so.1 "; }
check "the CMake shared consumer runs on the staged libetcdapi.so.1" resolves_to_stage "$tmp/cmake/consumer"
check "the pkg-config consumer runs on the staged libetcdapi.so.1" resolves_to_stage "$tmp/pkgconfig-consumer"
check "the CMake static consumer has no libetcdapi.so" sh -c "! ldd '$tmp/cmake/consumer_static' | grep -q libetcdapi"
for version in 1 1.0 "1.0...<2"; do
    printf 'cmake_minimum_required(VERSION 3.19)\nproject(v NONE)\nfind_package(etcdapi %s REQUIRED)\n' "$version" \
        >"$tmp/CMakeLists.txt"
    check "find_package(etcdapi $version) accepts $VERSION" \
        cmake -S "$tmp" -B "$tmp/v" -DCMAKE_PREFIX_PATH="$stage/usr" -Wno-dev >/dev/null 2>&1
    rm -rf "$tmp/v"
done
for version in 2 1.1; do
    printf 'cmake_minimum_required(VERSION 3.19)\nproject(v NONE)\nfind_package(etcdapi %s REQUIRED)\n' "$version" \
        >"$tmp/CMakeLists.txt"
    check "find_package(etcdapi $version) refuses $VERSION" \
        sh -c "! cmake -S '$tmp' -B '$tmp/v' -DCMAKE_PREFIX_PATH='$stage/usr' -Wno-dev >/dev/null 2>&1"
    rm -rf "$tmp/v"
done

# ---- the three consumers against a throwaway etcd ----
for p in cmake/consumer cmake/consumer_static pkgconfig-consumer; do
    if [ -x "$tmp/$p" ]; then
        check "$p: dead port, set/get/get_kv/leader/delete against etcd" \
            c-tests/etcd-local run -- sh -c '"$1" "$ETCDAPI_TEST_ENDPOINT"' sh "$tmp/$p"
    else
        bad "$p was not built"
    fi
done

# ---- man pages ----
pages=$(cd "$mandir" && ls man3/*.3 man7/*.7)
check "man pages installed ($(echo "$pages" | wc -l) files)" test -n "$pages"
for page in $pages; do
    target=$(sed -n 's/^\.so //p' "$mandir/$page")
    if [ -n "$target" ]; then
        check "$page is a link to an installed page ($target)" test -f "$mandir/$target"
    else
        check "groff -man -ww: $page without warnings" \
            sh -c "out=\$(groff -man -ww -z '$mandir/$page' 2>&1) && test -z \"\$out\" || { echo \"\$out\"; false; }"
    fi
    # man -l resolves .so links from the man directory, as man does.
    check "man -l: $page renders without warnings" \
        sh -c "cd '$mandir' && err=\$(MANWIDTH=80 man --warnings -l '$page' 2>&1 >/dev/null) && test -z \"\$err\" || { echo \"\$err\"; false; }"
done
names=$(echo $(exports "$so") $EXTRA_PAGES)
for name in $names; do
    check "man 3 $name: a page naming it, without warnings" sh -c "
        err=\$(MANWIDTH=80 man --warnings -M '$mandir' 3 '$name' 2>&1 >'$tmp/page.txt') && test -z \"\$err\" &&
        sed -n '/^NAME/,/^SYNOPSIS/p' '$tmp/page.txt' | grep -qw '$name' || { echo \"\$err\"; false; }"
done
check "man 7 libetcdapi names every page" sh -c "
    MANWIDTH=80 man -M '$mandir' 7 libetcdapi >'$tmp/overview.txt' 2>/dev/null &&
    for n in $names; do grep -qw \"\$n\" '$tmp/overview.txt' || { echo \"no \$n\"; exit 1; }; done"

# ---- make uninstall ----
if $MAKE --no-print-directory uninstall DESTDIR="$stage" PREFIX=/usr >"$tmp/uninstall.log" 2>&1; then
    ok "make uninstall DESTDIR=<tmp> PREFIX=/usr"
else
    cat "$tmp/uninstall.log"
    bad "make uninstall"
fi
left=$(cd "$stage" && find . ! -type d)
check "make uninstall leaves no file behind${left:+: $left}" test -z "$left"

echo "install-test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
