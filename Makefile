# Build, run and test the XMPP server. See README.md.
#   make            build c2s-frontend, session-router, xmppctl and upload-server into build/
#   make run        install missing Debian packages, build, start a server for localhost
#   make test       install missing Debian packages and the browser test's npm ones, then in a new
#                   make (flags probed afresh):
#                   build plain and ASan+UBSan; unit tests and fuzz regressions on both; the
#                   integration suite under ASan+UBSan (parallel part on ITEST_JOBS workers,
#                   then the serial tests); test_abuse.py plain (memory bounds); the deployment
#                   topology under ASan+UBSan; each fuzz harness briefly; the integration suite
#                   under valgrind; the docker compose stack for real (XMPP_SKIP_COMPOSE=1
#                   skips that part). Ends with a table of each stage's time and result.
#   make itest      the integration suite (ITEST_JOBS workers, ITEST_PATHS, ITEST_ARGS)
#   make fuzz       every libFuzzer harness for FUZZ_SECONDS (mk/fuzz.mk)
#   make SAN=1 ...  the same build with AddressSanitizer and UndefinedBehaviorSanitizer in build-san/

CC      ?= gcc
PKGS    := libzmq expat openssl hiredis libidn libmicrohttpd check
SAN     ?= 0
ifeq ($(SAN),1)
BUILD   ?= build-san
SANFLAGS := -fsanitize=address,undefined
OPT     := -O1 $(SANFLAGS) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD   ?= build
OPT     := -O2
endif
# Expat 2.6, and Debian's security updates of 2.5, may defer parsing of small reads and have
# the switch that turns it off; older builds never defer and lack the switch.
EXPAT_DEFS := $(shell printf '\043include <expat.h>\nint main(void){XML_SetReparseDeferralEnabled(0,0);return 0;}\n' | \
	$(CC) -x c -Werror=implicit-function-declaration -o /dev/null - -lexpat 2>/dev/null && \
	echo -DHAVE_XML_REPARSE_DEFERRAL)
# EXTRA_CFLAGS: more compile flags (e.g. EXTRA_CFLAGS=-DNDEBUG); objects rebuild when it changes.
EXTRA_CFLAGS ?=
CFLAGS  := -std=c11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -Werror -Icommon $(EXPAT_DEFS) $(EXTRA_CFLAGS)
LDFLAGS := $(SANFLAGS)
LIBS    := -lzmq -lexpat -lssl -lcrypto -lhiredis -lidn -lmicrohttpd
# The frontend's WebSocket (c2s-frontend/websocket.c): frames by wslay, requests by http-parser;
# its server-to-server DNS lookups (c2s-frontend/s2s_resolve.c): c-ares.
FE_LIBS := -lwslay -lhttp_parser -lcares
# Integration test workers: the suite mostly waits (timeouts, round trips), so two per core.
ITEST_JOBS_DEFAULT := $(shell echo $$((2 * $$(nproc 2>/dev/null || echo 1))))

# The flags every object and binary of $(BUILD) was made with. The file is rewritten only
# when they differ from the last build's (a newer expat, SAN, EXTRA_CFLAGS, another
# compiler), and everything depends on it, so a change of flags rebuilds everything.
FLAGS_LINE := $(CC) $(CFLAGS) | $(LDFLAGS) $(LIBS)
FLAGS_FILE := $(BUILD)/.cflags

COMMON_SRC := $(wildcard common/*.c)
FE_SRC     := $(wildcard c2s-frontend/*.c)
RT_SRC     := $(wildcard session-router/*.c session-router/core/*.c session-router/modules/*.c)
CTL_SRC    := $(wildcard xmppctl/*.c)
UP_SRC     := $(wildcard upload/*.c)
UNIT_SRC   := $(wildcard tests/unit/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

BINS := $(BUILD)/c2s-frontend $(BUILD)/session-router $(BUILD)/xmppctl $(BUILD)/upload-server
# Every configuration key the programs declare, indexed at build time (mk/config.mk).
CONFIG_INDEX := $(BUILD)/obj/gen/config_index.o

.PHONY: all deps browser-deps run test unit itest stacktest composetest interop check-build clean bench FORCE
all: $(BINS)

$(FLAGS_FILE): FORCE
	@mkdir -p $(@D)
	@if [ "$$(cat $@ 2>/dev/null)" != '$(FLAGS_LINE)' ]; then \
	    [ -f $@ ] && echo "flags changed: rebuilding everything in $(BUILD)"; \
	    echo '$(FLAGS_LINE)' >$@; fi

FORCE:

$(BUILD)/obj/%.o: %.c $(FLAGS_FILE)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libcommon.a: $(call obj,$(COMMON_SRC))
	ar rcs $@ $^

$(BUILD)/c2s-frontend: $(call obj,$(FE_SRC)) $(CONFIG_INDEX) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(FE_LIBS)

# The router's core and its modules see each other's headers by name.
$(BUILD)/obj/session-router/%.o: CFLAGS += -Isession-router/core -Isession-router/modules

$(BUILD)/session-router: $(call obj,$(RT_SRC)) $(CONFIG_INDEX) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/xmppctl: $(call obj,$(CTL_SRC)) $(CONFIG_INDEX) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# The HTTP side of XEP-0363 (upload/): libmicrohttpd on its own threads.
$(BUILD)/upload-server: $(call obj,$(UP_SRC)) $(CONFIG_INDEX) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) -lpthread

# The frontend's PROXY protocol parser and per-address limits, and the router's protocol
# rules, are pure (no I/O): their unit tests link them directly. The router's routing code
# runs end to end in tests/unit/check_router.c: its core without link.c (tests/unit/fake_link.c
# stands in) and the modules, over a fake Redis (tests/unit/fake_redis.c). The frontend's
# server-to-server resolver (s2s_resolve.c) runs on c-ares against a DNS server the test
# runs in its own loop (tests/unit/check_s2s_resolve.c).
ROUTER_UNIT_SRC := $(addprefix session-router/core/,route.c remote.c rpresence.c session.c sm.c smq.c deliver.c hook.c user.c module.c rules.c account.c \
		admin.c admin_cmds.c zap.c \
		storage.c iqstore.c iqreq.c caps.c capsver.c pepcfg.c muccfg.c mamq.c mamrun.c service.c turnrest.c contactaddr.c) $(wildcard session-router/modules/*.c)
$(BUILD)/obj/tests/unit/%.o: CFLAGS += -Isession-router/core -Isession-router/modules
$(BUILD)/check_unit: $(call obj,$(UNIT_SRC)) $(BUILD)/obj/c2s-frontend/proxy.o \
		$(BUILD)/obj/c2s-frontend/addrlimit.o $(BUILD)/obj/c2s-frontend/s2s_resolve.o \
		$(call obj,$(ROUTER_UNIT_SRC)) $(CONFIG_INDEX) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) -lcares $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# Further targets, one file per area (fuzzing, valgrind): mk/*.mk.
include $(wildcard mk/*.mk)

deps:
	@tools/install-deps.sh

# The browser test's Converse.js from npm (tests/browser, pinned; the test runs it too).
browser-deps:
	@tools/browser-deps.sh

# Unit tests (Check) for the common modules.
unit: $(BUILD)/check_unit
	$(BUILD)/check_unit

# Integration and interop tests: real redis-server, router, frontend, TLS, on loopback.
# Against a stack that runs already (compose, deploy/stack, a deployment), e.g.
#   make itest XMPP_HOST=127.0.0.1 XMPP_PORT=5222 XMPP_TLS_PORT=5223 XMPP_CAFILE=cert.pem \
#       XMPP_ADDUSER_CMD='docker-compose exec -T router xmppctl adduser'
# (README.md, "Testing a running stack"; tests that need private processes are skipped).
# The tests not marked serial run on ITEST_JOBS pytest-xdist workers (python3-pytest-xdist),
# each with its own redis, router and frontend; then the serial ones alone
# (tools/run-suite.sh; SERIAL in tests/integration/conftest.py). ITEST_JOBS=1: no workers.
# ITEST_PATHS narrows the run (a file, a directory), ITEST_ARGS adds pytest options.
ITEST_JOBS  ?= $(ITEST_JOBS_DEFAULT)
ITEST_PATHS ?= tests/integration
ITEST_ARGS  ?=
itest: $(BINS) $(BUILD)/linkgen
	XMPP_BUILD=$(BUILD) tools/run-suite.sh $(ITEST_JOBS) $(ITEST_ARGS) $(ITEST_PATHS)

# The deployment topology as local processes (deploy/stack: redis, router, two frontends,
# two s2s frontends, HAProxy) on loopback: chat across frontends, a frontend killed, router
# and Redis restarts, other servers' streams through HAProxy.
stacktest: $(BINS)
	timeout 900 env XMPP_BUILD=$(BUILD) /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/stack

# The compose stack for real (deploy/compose-test): starts a private Docker engine when none
# answers, builds the images, runs the integration suite through HAProxy with two frontends,
# checks the s2s ports and federates the stack with a second compose project.
# It fails without Docker; XMPP_SKIP_COMPOSE=1 skips it on purpose.
composetest:
	timeout 4800 deploy/compose-test

check-build: $(BINS) $(BUILD)/check_unit

# Every C process runs under the whole integration suite once with ASan+UBSan and once
# under valgrind, rather than plain, then sanitized, then valgrind: a sanitized run fails
# wherever a plain one would, and finds memory errors besides. The plain build still runs
# the unit tests, the fuzz regressions and test_abuse.py (its memory growth bounds are only
# checked there: ASan's and valgrind's own memory is in VmRSS); valgrind runs the plain
# binaries. The stages stop at the first failure (TEST_KEEP_GOING=1: run them all) and a
# table of each stage's time and result closes the output (tools/test-stages.sh).
test: deps browser-deps
	@tools/test-stages.sh \
	    build            '$(MAKE) check-build && $(MAKE) SAN=1 check-build' \
	    unit             '$(MAKE) unit' \
	    fuzz-regress     '$(MAKE) fuzz-regress' \
	    unit-san         'ASAN_OPTIONS=detect_leaks=1 $(MAKE) SAN=1 unit' \
	    fuzz-regress-san '$(MAKE) SAN=1 fuzz-regress' \
	    itest-san        '$(MAKE) SAN=1 itest' \
	    abuse-plain      '$(MAKE) itest ITEST_PATHS=tests/integration/test_abuse.py' \
	    stacktest-san    '$(MAKE) SAN=1 stacktest' \
	    fuzz-smoke       '$(MAKE) fuzz-smoke' \
	    valgrindtest     '$(MAKE) valgrindtest' \
	    composetest      '$(MAKE) composetest'

# Benchmarks: the load generator (bench/) and `make bench`, which starts a private stack on
# loopback and runs every scenario (bench/run.sh; BENCH_ARGS passes options to it).
LG_SRC := $(filter-out bench/linkgen.c,$(wildcard bench/*.c))

$(BUILD)/loadgen: $(call obj,$(LG_SRC))
	$(CC) $(LDFLAGS) -o $@ $^ -lssl -lcrypto

# The router's own ceiling (bench/linkgen.c): stand-in frontends on the link, no clients.
$(BUILD)/linkgen: $(call obj,bench/linkgen.c bench/lg_stats.c) $(CONFIG_INDEX) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

bench: deps
	$(MAKE) all $(BUILD)/loadgen $(BUILD)/linkgen
	bench/run.sh --build $(BUILD) $(BENCH_ARGS)

# run, test and bench install the packages first, then build in a new make: the flags (the
# expat probe above) are decided with the packages that will be linked, not the ones before.
run: deps
	$(MAKE) all
	@tools/run-local.sh $(BUILD)

clean:
	rm -rf build build-san
