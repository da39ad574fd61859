#!/bin/sh
# tools/run-suite.sh JOBS PYTEST-ARGS...
# Runs an integration suite (tests/integration) in two parts: the tests not marked `serial`
# spread over JOBS pytest-xdist workers (each worker starts its own stack on its own ports),
# then the `serial` ones alone (tests/integration/conftest.py, SERIAL: timing bounds, floods).
# JOBS 1, or no python3-pytest-xdist: both parts run in one process each.
# BASETEMP=DIR: pytest's --basetemp for the parts, DIR/parallel and DIR/serial (each is
# emptied when its part starts).
# Exits 0 when both parts passed (a part that selects no test counts as passed, unless both
# select none), else the first failing part's pytest status.
set -u
jobs=$1
shift
PYTEST="/usr/bin/python3 -m pytest -q -p no:cacheprovider"
par=""
if [ "$jobs" -gt 1 ]; then
    if /usr/bin/python3 -c 'import xdist' 2>/dev/null; then
        par="-n $jobs"
    else
        echo "run-suite: python3-pytest-xdist is not installed: the suite runs in one process" >&2
    fi
fi
bt_par="" bt_ser=""
if [ -n "${BASETEMP:-}" ]; then
    mkdir -p "$BASETEMP"    # pytest makes --basetemp itself, not its parents
    bt_par="--basetemp=$BASETEMP/parallel"
    bt_ser="--basetemp=$BASETEMP/serial"
fi
echo "run-suite: tests that may run side by side${par:+ ($par)}"
$PYTEST $par $bt_par -m "not serial" "$@"
a=$?
echo "run-suite: tests marked serial, one at a time"
$PYTEST $bt_ser -m serial "$@"
b=$?
# 5: no test selected in that part (e.g. one file that holds only serial tests).
if [ $a -eq 5 ] && [ $b -eq 5 ]; then exit 5; fi
[ $a -eq 5 ] && a=0
[ $b -eq 5 ] && b=0
if [ $a -ne 0 ]; then exit $a; fi
exit $b
