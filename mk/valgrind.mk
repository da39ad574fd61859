# make valgrindtest: the integration suite with the session-router and every c2s-frontend
# the tests start running under valgrind memcheck (tests/integration/conftest.py, XMPP_VALGRIND).
# Uses the normal build ($(BUILD), default build/; never the sanitizer build, which valgrind
# cannot run). Each server process writes NAME.valgrind.log beside its stderr log under
# $(BUILD)/valgrindtest/ (pytest's --basetemp, emptied at the start of each run, kept after
# it for reading); any memcheck error or definitely/indirectly lost block fails the test
# that stopped that process.
#   make valgrindtest                               everything
#   make valgrindtest VALGRIND_TESTS=tests/integration/test_abuse.py
#   make valgrindtest VALGRIND_PYTEST_ARGS='-k billion -x'
# XMPP_VALGRIND_SCALE (start/stop timeouts, default 6), XMPP_TIMEOUT_SCALE (client waits,
# default 4) and XMPP_VALGRIND_ARGS (extra valgrind options) may be set in the environment.

# The suite's parallel part runs on VALGRIND_JOBS pytest-xdist workers (default one per core:
# memcheck keeps a core busy), its serial part alone (tools/run-suite.sh); the logs are under
# $(BUILD)/valgrindtest/parallel/ and $(BUILD)/valgrindtest/serial/.

VALGRIND_TESTS ?= tests/integration
VALGRIND_PYTEST_ARGS ?=
VALGRIND_JOBS ?= $(shell nproc 2>/dev/null || echo 1)

.PHONY: valgrindtest
valgrindtest: $(BINS)
	@if [ "$(SAN)" = "1" ]; then echo "valgrindtest needs the normal build, not SAN=1" >&2; exit 2; fi
	@command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
	rm -rf $(BUILD)/valgrindtest
	XMPP_VALGRIND=1 XMPP_BUILD=$(BUILD) BASETEMP=$(BUILD)/valgrindtest tools/run-suite.sh \
		$(VALGRIND_JOBS) -rfEs $(VALGRIND_PYTEST_ARGS) $(VALGRIND_TESTS)
