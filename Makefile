# libetcdapi: build, test, demo, bench, install.
#   make          libraries + C programs in build/
#   make check    every test (Rust + C harness over v3 and v2) against a throwaway local etcd
#   make demo     the example CLI through every call against a throwaway etcd
#   make bench    throughput and latency figures, v3 and v2 (no pass/fail)

PREFIX  ?= /usr/local
DESTDIR ?=
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include

CARGO   ?= cargo
CC      ?= cc
CXX     ?= c++
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror
VERSION := 1.0.0
SOMAJOR := 1

B       := build
REL     := target/release
SONAME  := libetcdapi.so.$(SOMAJOR)
ETCDLOCAL := c-tests/etcd-local

LIBS    := $(B)/libetcdapi.so.$(VERSION) $(B)/$(SONAME) $(B)/libetcdapi.so \
           $(B)/libetcd.so $(B)/libetcdapi.a
PROGS   := $(B)/etcd-test $(B)/harness $(B)/bench $(B)/leader $(B)/secure $(B)/signals
LINK    := -L$(B) -letcdapi -Wl,-rpath,'$$ORIGIN' -lpthread

RUST_SRC := Cargo.toml Cargo.lock build.rs $(shell find src -name '*.rs')

.PHONY: all check check-header check-exports clippy test-rust test-c test-c-v2 test-secure test-leader test-leader-v2 test-signals memcheck demo bench install clean

all: $(LIBS) $(PROGS)

# One cargo run makes all three (a grouped target: cargo runs once).
$(REL)/libetcdapi.so $(REL)/libetcdapi.a include/etcd-api.h &: $(RUST_SRC)
	$(CARGO) build --release
	@touch $(REL)/libetcdapi.so $(REL)/libetcdapi.a include/etcd-api.h

$(B):
	mkdir -p $(B)

$(B)/libetcdapi.so.$(VERSION): $(REL)/libetcdapi.so | $(B)
	cp $< $@
$(B)/$(SONAME): $(B)/libetcdapi.so.$(VERSION)
	ln -sf libetcdapi.so.$(VERSION) $@
$(B)/libetcdapi.so: $(B)/$(SONAME)
	ln -sf $(SONAME) $@
# The original library's name, so programs linked with -letcd run with ours.
$(B)/libetcd.so: $(B)/$(SONAME)
	ln -sf $(SONAME) $@
$(B)/libetcdapi.a: $(REL)/libetcdapi.a | $(B)
	cp $< $@

# C programs: one file each, but for the harness (c-tests/harness/),
# secure and signals, which share c-tests/check.c (reporting, watchdog, keys).
CPROG_FLAGS = $(CFLAGS) $(WARN) -std=c99 -D_POSIX_C_SOURCE=200809L -Iinclude
CHECK_SRC   := c-tests/check.c c-tests/check.h
HARNESS_SRC := $(addprefix c-tests/harness/,main.c kv.c interop.c v2.c watch.c lock.c procs.c extended.c)

$(B)/%: c-tests/%.c include/etcd-api.h $(B)/libetcdapi.so
	$(CC) $(CPROG_FLAGS) -o $@ $< $(LINK)

$(B)/harness: $(HARNESS_SRC) c-tests/harness/harness.h $(CHECK_SRC) include/etcd-api.h $(B)/libetcdapi.so
	$(CC) $(CPROG_FLAGS) -o $@ $(HARNESS_SRC) c-tests/check.c $(LINK)

$(B)/secure: c-tests/secure.c $(CHECK_SRC) include/etcd-api.h $(B)/libetcdapi.so
	$(CC) $(CPROG_FLAGS) -o $@ c-tests/secure.c c-tests/check.c $(LINK)

$(B)/signals: c-tests/signals.c $(CHECK_SRC) include/etcd-api.h $(B)/libetcdapi.so
	$(CC) $(CPROG_FLAGS) -o $@ c-tests/signals.c c-tests/check.c $(LINK)

check: all check-header check-exports clippy test-rust test-c test-c-v2 test-secure test-leader test-leader-v2 test-signals memcheck
	@echo "make check: all passed"

# The committed header must be what cbindgen generates from the sources,
# and must take the original prototypes beside it, as C and as C++.
check-header: include/etcd-api.h
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  git diff --exit-code HEAD -- include/etcd-api.h || \
	  { echo "include/etcd-api.h differs from the committed one: commit the regenerated header"; exit 1; }; \
	fi
	$(CC) -std=c99 -pedantic $(WARN) -Iinclude -c c-tests/header_check.c -o $(B)/header_check_c.o
	$(CXX) -x c++ -pedantic $(WARN) -Iinclude -c c-tests/header_check.c -o $(B)/header_check_cxx.o
	@echo "header: fresh, compiles as C and C++"

# Only the etcd_* functions may be exported from the shared library.
check-exports: $(B)/libetcdapi.so
	@bad=$$(nm -D --defined-only $(B)/libetcdapi.so | awk '{print $$3}' | grep -v '^etcd_' || true); \
	if [ -n "$$bad" ]; then echo "unexpected exports: $$bad"; exit 1; fi; \
	echo "exports: $$(nm -D --defined-only $(B)/libetcdapi.so | grep -c ' T etcd_') etcd_* functions, nothing else"

# Lints as errors, for the library, its tests and its build script.
clippy:
	$(CARGO) clippy --release --all-targets -- -D warnings

test-rust:
	ETCDAPI_PROTOCOL=v3 $(ETCDLOCAL) run -- $(CARGO) test --release

test-c: $(B)/harness
	ETCDAPI_PROTOCOL=v3 $(ETCDLOCAL) run -- $(B)/harness

# The same harness over etcd's v2 API (same etcd, started with --enable-v2).
test-c-v2: $(B)/harness
	ETCDAPI_PROTOCOL=v2 $(ETCDLOCAL) run -- $(B)/harness

# Secure clusters from C: the whole harness once over https, with client
# certificates and etcd authentication (user root), then the checks of
# etcd_open_opts and the environment variables, and etcd-test's options.
# (tests/secure.rs, in test-rust, starts etcds of its own.)
test-secure: $(B)/harness $(B)/secure $(B)/etcd-test
	ETCDAPI_PROTOCOL=v3 ETCDAPI_TEST_TLS=1 ETCDAPI_TEST_AUTH=1 $(ETCDLOCAL) run -- \
	  sh -c '$(B)/harness && $(B)/secure && c-tests/secure-cli.sh $(B)/etcd-test'

test-leader: $(B)/leader
	ETCDAPI_PROTOCOL=v3 $(ETCDLOCAL) run -- c-tests/leader-test.sh $(B)/leader

test-leader-v2: $(B)/leader
	ETCDAPI_PROTOCOL=v2 $(ETCDLOCAL) run -- c-tests/leader-test.sh $(B)/leader

# Every call succeeds while the calling thread takes a SIGALRM every 2 ms
# from a handler without SA_RESTART (sets, gets, a waiting watch, locks).
test-signals: $(B)/signals
	ETCDAPI_PROTOCOL=v3 $(ETCDLOCAL) run -- $(B)/signals
	ETCDAPI_PROTOCOL=v2 $(ETCDLOCAL) run -- $(B)/signals

# The C harness under valgrind: no invalid access, nothing definitely lost,
# every string we returned released by the caller's free().
VALGRIND := valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite \
            --errors-for-leak-kinds=definite --track-origins=yes
memcheck: $(B)/harness
	@command -v valgrind >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y valgrind; }
	ETCDAPI_PROTOCOL=v3 $(ETCDLOCAL) run -- $(VALGRIND) $(B)/harness

demo: all
	$(ETCDLOCAL) run -- c-tests/demo.sh $(B)/etcd-test

# One etcd: the C bench over v3, then over v2, then etcd's own cost (curl).
bench: all
	$(ETCDLOCAL) run -- sh -c "ETCDAPI_PROTOCOL=v3 $(B)/bench && ETCDAPI_PROTOCOL=v2 $(B)/bench && c-tests/bench-curl.sh"

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 755 $(B)/libetcdapi.so.$(VERSION) $(DESTDIR)$(LIBDIR)/
	ln -sf libetcdapi.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libetcdapi.so
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libetcd.so
	install -m 644 $(B)/libetcdapi.a $(DESTDIR)$(LIBDIR)/
	install -m 644 include/etcd-api.h $(DESTDIR)$(INCDIR)/
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' 'includedir=$(INCDIR)' '' \
	  'Name: etcdapi' 'Description: C interface to etcd (drop-in replacement for etcd-api)' \
	  'Version: $(VERSION)' 'Libs: -L$${libdir} -letcdapi' 'Libs.private: -lpthread -ldl -lm' \
	  'Cflags: -I$${includedir}' > $(DESTDIR)$(LIBDIR)/pkgconfig/etcdapi.pc

clean:
	rm -rf $(B)
	$(CARGO) clean
