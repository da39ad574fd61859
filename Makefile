# Build, run and test the XMPP server. See README.md.
#   make            build c2s-frontend, session-router and xmppctl into build/
#   make run        install missing Debian packages, build, start a server for localhost
#   make test       install missing Debian packages, run every test, then all again under ASan+UBSan
#   make SAN=1 ...  the same build with AddressSanitizer and UndefinedBehaviorSanitizer in build-san/

CC      ?= gcc
PKGS    := libzmq expat openssl hiredis libidn check
SAN     ?= 0
ifeq ($(SAN),1)
BUILD   ?= build-san
SANFLAGS := -fsanitize=address,undefined
OPT     := -O1 $(SANFLAGS) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD   ?= build
OPT     := -O2
endif
CFLAGS  := -std=c11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -Werror -Icommon
LDFLAGS := $(SANFLAGS)
LIBS    := -lzmq -lexpat -lssl -lcrypto -lhiredis -lidn

COMMON_SRC := $(wildcard common/*.c)
FE_SRC     := $(wildcard c2s-frontend/*.c)
RT_SRC     := $(wildcard session-router/*.c)
CTL_SRC    := $(wildcard xmppctl/*.c)
UNIT_SRC   := $(wildcard tests/unit/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

BINS := $(BUILD)/c2s-frontend $(BUILD)/session-router $(BUILD)/xmppctl

.PHONY: all deps run test unit itest interop check-build clean bench
all: $(BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libcommon.a: $(call obj,$(COMMON_SRC))
	ar rcs $@ $^

$(BUILD)/c2s-frontend: $(call obj,$(FE_SRC)) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/session-router: $(call obj,$(RT_SRC)) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/xmppctl: $(call obj,$(CTL_SRC)) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/check_unit: $(call obj,$(UNIT_SRC)) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

deps:
	@tools/install-deps.sh

# Unit tests (Check) for the common modules.
unit: $(BUILD)/check_unit
	$(BUILD)/check_unit

# Integration and interop tests: real redis-server, router, frontend, TLS, on loopback.
itest: $(BINS)
	XMPP_BUILD=$(BUILD) /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration

check-build: $(BINS) $(BUILD)/check_unit

test: deps
	$(MAKE) check-build
	$(MAKE) unit
	$(MAKE) itest
	$(MAKE) SAN=1 check-build
	ASAN_OPTIONS=detect_leaks=1 $(MAKE) SAN=1 unit
	$(MAKE) SAN=1 itest

# Benchmarks: the load generator (bench/) and `make bench`, which starts a private stack on
# loopback and runs every scenario (bench/run.sh; BENCH_ARGS passes options to it).
LG_SRC := $(wildcard bench/*.c)

$(BUILD)/loadgen: $(call obj,$(LG_SRC))
	$(CC) $(LDFLAGS) -o $@ $^ -lssl -lcrypto

bench: deps
	$(MAKE) all $(BUILD)/loadgen
	bench/run.sh --build $(BUILD) $(BENCH_ARGS)

run: deps all
	@tools/run-local.sh $(BUILD)

clean:
	rm -rf build build-san
