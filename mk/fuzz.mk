# Fuzzing with libFuzzer (fuzz/, README.md "Fuzzing").
#   make fuzz          build every harness with clang (ASan, UBSan, libFuzzer) into build-fuzz/
#                      and run each for FUZZ_SECONDS (default 60); fails on any crash or leak
#   make fuzz-smoke    the same, FUZZ_SMOKE_SECONDS (default 5) each: for CI on every change
#   make fuzz-regress  replay fuzz/corpus/<h>/ and fuzz/regressions/<h>/ through each harness
#                      with a plain driver (fuzz/replay.c) built by $(CC) into $(BUILD)/fuzz/;
#                      works with SAN=1 too
#   make fuzz-<h>      run one harness (xml, stream, websocket, s2s, ipc, scram, jid, proxy, admin, caps,
#                      muccfg, mamq, upload, muc)
# Runs write new inputs and crash files under build-fuzz/ only, never into fuzz/corpus/.

FUZZ_HARNESSES := xml stream websocket s2s ipc scram jid proxy admin caps muccfg mamq upload muc
FUZZ_CC        ?= clang
FUZZ_BUILD     := build-fuzz
FUZZ_SECONDS   ?= 60
FUZZ_SMOKE_SECONDS ?= 5
# Extra libFuzzer options, e.g. FUZZ_ARGS='-jobs=2 -workers=2'.
FUZZ_ARGS      ?=
FUZZ_SANFLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS    := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer $(FUZZ_SANFLAGS) \
                  -Wall -Wextra -Werror -Icommon -Isession-router/core $(EXPAT_DEFS)

# What each harness links besides libcommon.a: fuzz_stream runs the frontend's stream.c,
# sasl.c and register.c on stubs of client.c and router_link.c (fuzz/fe_stubs.c).
FUZZ_EXTRA_stream := c2s-frontend/stream.c c2s-frontend/sasl.c c2s-frontend/register.c \
                     c2s-frontend/sm.c c2s-frontend/websocket.c c2s-frontend/s2s.c \
                     c2s-frontend/s2s_out.c fuzz/fe_stubs.c
# fuzz_websocket is fuzz_stream on a connection from a WebSocket listener (HTTP upgrade,
# frames, <open/>/<close/>), with the same router script.
FUZZ_EXTRA_websocket := $(FUZZ_EXTRA_stream)
FUZZ_LIBS_stream     := $(FE_LIBS)
FUZZ_LIBS_websocket  := $(FE_LIBS)
# fuzz_s2s runs the server-to-server streams (s2s.c) on the same stubs: inbound from a peer
# with a certificate for remote.test, or outbound to it.
FUZZ_EXTRA_s2s    := $(FUZZ_EXTRA_stream)
FUZZ_LIBS_s2s     := $(FE_LIBS)
FUZZ_DICT_s2s     := fuzz/xmpp.dict
FUZZ_EXTRA_proxy  := c2s-frontend/proxy.c
# fuzz_caps runs the router's entity capabilities verification.
FUZZ_EXTRA_caps   := session-router/core/capsver.c
$(BUILD)/obj/fuzz/fuzz_caps.o: CFLAGS += -Isession-router/core
# fuzz_muccfg runs a room owner's configuration form (muc#roomconfig).
FUZZ_EXTRA_muccfg := session-router/core/muccfg.c
$(BUILD)/obj/fuzz/fuzz_muccfg.o: CFLAGS += -Isession-router/core
# fuzz_mamq runs the XEP-0313 query parser (users' and rooms' archives).
FUZZ_EXTRA_mamq   := session-router/core/mamq.c
$(BUILD)/obj/fuzz/fuzz_mamq.o: CFLAGS += -Isession-router/core
# fuzz_upload runs the upload process's stored-file header parser.
FUZZ_EXTRA_upload := upload/store.c
# fuzz_muc runs the multi-user chat service with the router's routing code over the unit
# tests' fake link and fake Redis (the sources check_unit links, ROUTER_UNIT_SRC).
FUZZ_EXTRA_muc    := $(ROUTER_UNIT_SRC) tests/unit/fake_link.c tests/unit/fake_redis.c
$(BUILD)/obj/fuzz/fuzz_muc.o: CFLAGS += -Isession-router/core -Isession-router/modules -Itests/unit
$(FUZZ_BUILD)/obj/fuzz/fuzz_muc.o $(FUZZ_BUILD)/obj/session-router/%.o $(FUZZ_BUILD)/obj/tests/unit/%.o: \
	FUZZ_CFLAGS += -Isession-router/modules -Itests/unit
# Dictionaries of XMPP tokens for the harnesses that read XML.
FUZZ_DICT_xml     := fuzz/xmpp.dict
FUZZ_DICT_stream  := fuzz/xmpp.dict
FUZZ_DICT_websocket := fuzz/xmpp.dict
FUZZ_DICT_caps    := fuzz/xmpp.dict
FUZZ_DICT_muccfg  := fuzz/xmpp.dict
FUZZ_DICT_mamq    := fuzz/xmpp.dict
FUZZ_DICT_muc     := fuzz/xmpp.dict

fuzz_obj = $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(1))

.PHONY: fuzz fuzz-smoke fuzz-regress fuzz-build fuzz-clean $(addprefix fuzz-,$(FUZZ_HARNESSES))

# Everything, harnesses included, is compiled for coverage (fuzzer-no-link); only the final
# link adds libFuzzer's main.
FUZZ_FLAGS_LINE := $(FUZZ_CC) $(FUZZ_CFLAGS) | $(FUZZ_SANFLAGS) $(LIBS)

$(FUZZ_BUILD)/.cflags: FORCE
	@mkdir -p $(@D)
	@if [ "$$(cat $@ 2>/dev/null)" != '$(FUZZ_FLAGS_LINE)' ]; then \
	    [ -f $@ ] && echo "flags changed: rebuilding everything in $(FUZZ_BUILD)"; \
	    echo '$(FUZZ_FLAGS_LINE)' >$@; fi

$(FUZZ_BUILD)/obj/%.o: %.c $(FUZZ_BUILD)/.cflags
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/libcommon.a: $(call fuzz_obj,$(COMMON_SRC))
	ar rcs $@ $^

define FUZZ_HARNESS_RULES
$(FUZZ_BUILD)/fuzz_$(1): $(call fuzz_obj,fuzz/fuzz_$(1).c $(FUZZ_EXTRA_$(1))) $(FUZZ_BUILD)/libcommon.a
	$(FUZZ_CC) $(FUZZ_SANFLAGS) -fsanitize=fuzzer -o $$@ $$^ $(LIBS) $(FUZZ_LIBS_$(1))

# The run reads the committed corpus and regressions but writes only to its work dir.
fuzz-$(1): $(FUZZ_BUILD)/fuzz_$(1)
	@mkdir -p $(FUZZ_BUILD)/work/$(1) $(FUZZ_BUILD)/artifacts/$(1)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	$(FUZZ_BUILD)/fuzz_$(1) -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/artifacts/$(1)/ \
	    $(if $(FUZZ_DICT_$(1)),-dict=$(FUZZ_DICT_$(1))) $(FUZZ_ARGS) \
	    $(FUZZ_BUILD)/work/$(1) fuzz/corpus/$(1) $(wildcard fuzz/regressions/$(1))

# Plain replay driver built with $(CC) and $(CFLAGS), in $(BUILD) (make and make SAN=1).
$(BUILD)/fuzz/replay_$(1): $(call obj,fuzz/replay.c fuzz/fuzz_$(1).c $(FUZZ_EXTRA_$(1))) $(BUILD)/libcommon.a
	@mkdir -p $$(dir $$@)
	$(CC) $(LDFLAGS) -o $$@ $$^ $(LIBS) $(FUZZ_LIBS_$(1))
endef
$(foreach h,$(FUZZ_HARNESSES),$(eval $(call FUZZ_HARNESS_RULES,$(h))))

fuzz-build: $(addprefix $(FUZZ_BUILD)/fuzz_,$(FUZZ_HARNESSES))

fuzz: fuzz-build
	@set -e; for h in $(FUZZ_HARNESSES); do \
	    echo "== fuzz_$$h for $(FUZZ_SECONDS) s"; \
	    $(MAKE) --no-print-directory fuzz-$$h FUZZ_SECONDS=$(FUZZ_SECONDS) || \
	        { echo "fuzz_$$h failed: the input is in $(FUZZ_BUILD)/artifacts/$$h/"; exit 1; }; \
	done

fuzz-smoke:
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS)

fuzz-regress: $(addprefix $(BUILD)/fuzz/replay_,$(FUZZ_HARNESSES))
	@set -e; for h in $(FUZZ_HARNESSES); do \
	    ASAN_OPTIONS=detect_leaks=1 $(BUILD)/fuzz/replay_$$h fuzz/corpus/$$h \
	        $$(test -d fuzz/regressions/$$h && echo fuzz/regressions/$$h); \
	done

fuzz-clean:
	rm -rf $(FUZZ_BUILD)

clean: fuzz-clean

-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
