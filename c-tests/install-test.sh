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
#   - make uninstall leaves no file behind, and no directory install made;
#   - then (as root; skipped otherwise) a real install where the loader has
#     to find the library by its cache: `make install PREFIX=<tmp>/usr/local`,
#     an /etc/ld.so.conf.d entry for its lib/ and ldconfig. A program linked
#     with -letcd against a stand-in for the original library (a
#     libetcd.so without SONAME, as the original's), with no rpath, and a
#     program linked with -letcdapi without rpath: both fail to load before
#     ldconfig and run against etcd after it, with no LD_LIBRARY_PATH; then
#     the entry is removed, ldconfig runs again, and make uninstall leaves
#     nothing of <tmp>/usr/local. The machine is left as it was found: the
#     entry is removed (and ldconfig run) on any exit.
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
ldconf=/etc/ld.so.conf.d/zz-etcdapi-install-test-$$.conf
cleanup() {
    if [ -e "$ldconf" ]; then rm -f "$ldconf"; ldconfig; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
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
./usr/lib/cmake/etcdapi/created-directories
./usr/lib/cmake/etcdapi/etcdapiConfig.cmake
./usr/lib/cmake/etcdapi/etcdapiConfigVersion.cmake
./usr/lib/debug/usr/lib/libetcd.so.debug
./usr/lib/debug/usr/lib/libetcdapi.so.$VERSION.debug
./usr/lib/libetcd.so
./usr/lib/libetcdapi.a
./usr/lib/libetcdapi.so
./usr/lib/libetcdapi.so.1
./usr/lib/libetcdapi.so.$VERSION
./usr/lib/pkgconfig/etcdapi.pc
LIST
check "installed files are the expected ones" diff -u "$tmp/expected" "$tmp/files"
check "libetcdapi.so -> libetcdapi.so.1 -> libetcdapi.so.$VERSION" \
    test "$(readlink "$lib/libetcdapi.so") $(readlink "$lib/libetcdapi.so.1")" \
         = "libetcdapi.so.1 libetcdapi.so.$VERSION"
check "libetcd.so is a library of its own (not a symlink), without SONAME" \
    sh -c "test -f '$lib/libetcd.so' && test ! -L '$lib/libetcd.so' && ! readelf -d '$lib/libetcd.so' | grep -q SONAME"
check "created-directories lists the 13 directories install made" \
    test "$(cat "$lib/cmake/etcdapi/created-directories" | tr '\n' ' ')" = \
    "/usr /usr/include /usr/lib /usr/lib/cmake /usr/lib/cmake/etcdapi /usr/lib/debug /usr/lib/debug/usr /usr/lib/debug/usr/lib /usr/lib/pkgconfig /usr/share /usr/share/man /usr/share/man/man3 /usr/share/man/man7 "

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
check "installed libetcd.so exports the same etcd_* functions" \
    test "$(exports "$lib/libetcd.so")" = "$(exports build/libetcdapi.so.$VERSION)"
check "installed libetcd.so has no .debug_* section, its .debug file has the debug info" \
    sh -c "! readelf -S --wide '$lib/libetcd.so' | grep -q '\.debug_' &&
           readelf -S --wide '$lib/debug/usr/lib/libetcd.so.debug' | grep -q '\.debug_info'"

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
left=$(cd "$stage" && find . -mindepth 1 -type d)
check "make uninstall removes the directories install made${left:+: $left}" test -z "$left"

# ---- make uninstall keeps directories that were there before ----
mkdir -p "$tmp/pre/usr/lib/pkgconfig" "$tmp/pre/usr/share/man/man3"
if $MAKE --no-print-directory install DESTDIR="$tmp/pre" PREFIX=/usr >"$tmp/install2.log" 2>&1 &&
   $MAKE --no-print-directory uninstall DESTDIR="$tmp/pre" PREFIX=/usr >>"$tmp/install2.log" 2>&1; then
    left=$(cd "$tmp/pre" && find . -mindepth 1 | sort | tr '\n' ' ')
    check "install then uninstall over existing usr/lib/pkgconfig, usr/share/man/man3: they stay ($left)" \
        test "$left" = "./usr ./usr/lib ./usr/lib/pkgconfig ./usr/share ./usr/share/man ./usr/share/man/man3 "
else
    cat "$tmp/install2.log"
    bad "make install/uninstall DESTDIR=<tmp>/pre"
fi

# ---- the loader's cache: a real install, ldconfig, old and new programs ----
if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: the ldconfig checks need root (they add an /etc/ld.so.conf.d entry)"
else
    prefix=$tmp/root/usr/local
    # A stand-in for the original library: its functions, no SONAME. The
    # program linked against it records NEEDED libetcd.so, as programs
    # built against the original did; then the stand-in is removed.
    mkdir -p "$tmp/orig"
    cat >"$tmp/orig/stand-in.c" <<'C'
#include "etcd-api.h"
etcd_session etcd_open_str(char *s) { (void)s; return 0; }
void etcd_close_str(etcd_session s) { (void)s; }
char *etcd_get(etcd_session s, char *k) { (void)s; (void)k; return 0; }
etcd_result etcd_set(etcd_session s, char *k, char *v, char *p, unsigned int t)
{ (void)s; (void)k; (void)v; (void)p; (void)t; return ETCD_WTF; }
etcd_result etcd_delete(etcd_session s, char *k) { (void)s; (void)k; return ETCD_WTF; }
C
    cat >"$tmp/orig/old-program.c" <<'C'
/* Uses the original calls only: set, get, delete on argv[1]. */
#include <stdio.h>
#include <stdlib.h>
#include "etcd-api.h"
int main(int argc, char **argv)
{
    etcd_session s;
    char *v;
    if (argc != 2 || !(s = etcd_open_str(argv[1]))) { fprintf(stderr, "etcd_open failed\n"); return 1; }
    if (etcd_set(s, "/install-test/old", "from-an-old-binary", NULL, 0) != ETCD_OK) { fprintf(stderr, "etcd_set failed\n"); return 1; }
    if (!(v = etcd_get(s, "/install-test/old"))) { fprintf(stderr, "etcd_get failed\n"); return 1; }
    printf("got value: %s\n", v);
    free(v);
    if (etcd_delete(s, "/install-test/old") != ETCD_OK) { fprintf(stderr, "etcd_delete failed\n"); return 1; }
    etcd_close_str(s);
    return 0;
}
C
    ${CC:-cc} -std=c89 -pedantic -Wall -Wextra -Werror -fPIC -shared -Iinclude \
        -o "$tmp/orig/libetcd.so" "$tmp/orig/stand-in.c"
    ${CC:-cc} -std=c89 -pedantic -Wall -Wextra -Werror -Iinclude -o "$tmp/old-program" \
        "$tmp/orig/old-program.c" -L"$tmp/orig" -letcd
    rm -rf "$tmp/orig"
    check "the old program needs libetcd.so, has no rpath" \
        sh -c "readelf -d '$tmp/old-program' | grep -q 'NEEDED.*\[libetcd.so\]' &&
               ! readelf -d '$tmp/old-program' | grep -q 'RPATH\|RUNPATH'"

    if $MAKE --no-print-directory install PREFIX="$prefix" >"$tmp/install3.log" 2>&1; then
        ok "make install PREFIX=<tmp>/usr/local"
    else
        cat "$tmp/install3.log"
        bad "make install PREFIX=<tmp>/usr/local"
    fi
    ${CC:-cc} -std=c99 -Wall -Wextra -Werror -I"$prefix/include" -o "$tmp/new-program" \
        c-tests/consumer/consumer.c -L"$prefix/lib" -letcdapi

    # run WANT-STATUS WANT-OUTPUT PROGRAM: PROGRAM on etcd, no LD_LIBRARY_PATH.
    run() {
        c-tests/etcd-local run -- sh -c 'exec env -u LD_LIBRARY_PATH "$1" "$ETCDAPI_TEST_ENDPOINT"' sh "$3" \
            >"$tmp/run.out" 2>&1
        rc=$?
        if [ "$rc" -eq "$1" ] && grep -qF -- "$2" "$tmp/run.out"; then return 0; fi
        echo "exit $rc (want $1), output:"; cat "$tmp/run.out"; return 1
    }
    check "before ldconfig: the old program cannot load libetcd.so (exit 127)" \
        run 127 "libetcd.so: cannot open shared object file" "$tmp/old-program"
    check "before ldconfig: a program built with -letcdapi cannot load libetcdapi.so.1 (exit 127)" \
        run 127 "libetcdapi.so.1: cannot open shared object file" "$tmp/new-program"

    echo "$prefix/lib" >"$ldconf"
    ldconfig
    # ldconfig -p: "<tab>libetcd.so (libc6,x86-64) => /path/libetcd.so"
    cached() { ldconfig -p | awk -v n="$1" -v p="$prefix/lib/$1" '$1 == n && $NF == p { f = 1 } END { exit !f }'; }
    check "ldconfig caches libetcd.so under that name" cached libetcd.so
    check "ldconfig caches libetcdapi.so.1" cached libetcdapi.so.1
    check "the old program resolves libetcd.so to the installed one" \
        sh -c "env -u LD_LIBRARY_PATH ldd '$tmp/old-program' | grep -qF 'libetcd.so => $prefix/lib/libetcd.so '"
    check "after ldconfig: the old program runs against etcd with no LD_LIBRARY_PATH" \
        run 0 "got value: from-an-old-binary" "$tmp/old-program"
    check "after ldconfig: the -letcdapi program runs against etcd with no LD_LIBRARY_PATH" \
        run 0 "new-program: ok" "$tmp/new-program"

    rm -f "$ldconf"
    ldconfig
    check "the ld.so.conf.d entry is gone and the cache no longer names <tmp>" \
        sh -c "test ! -e '$ldconf' && ! ldconfig -p | grep -qF '$tmp'"
    if $MAKE --no-print-directory uninstall PREFIX="$prefix" >"$tmp/uninstall3.log" 2>&1; then
        ok "make uninstall PREFIX=<tmp>/usr/local"
    else
        cat "$tmp/uninstall3.log"
        bad "make uninstall PREFIX=<tmp>/usr/local"
    fi
    check "make uninstall PREFIX=<tmp>/usr/local removes all it made, <tmp>/root included" \
        test ! -e "$tmp/root"
fi

echo "install-test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
