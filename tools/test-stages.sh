#!/bin/sh
# tools/test-stages.sh NAME COMMAND [NAME COMMAND ...]
# Runs each stage's COMMAND (with sh -c) in order, its output going straight through, and
# times it. It stops at the first stage that fails (TEST_KEEP_GOING=1 runs the rest anyway),
# then prints a table of every stage: seconds and result (ok, FAILED (status), not run).
# Exits 1 when any stage failed, else 0. Used by `make test`.
set -u
if [ $# -eq 0 ] || [ $(($# % 2)) -ne 0 ]; then
    echo "usage: $0 NAME COMMAND [NAME COMMAND ...]" >&2
    exit 2
fi
summary=""
failed=""
total_start=$(date +%s)
while [ $# -gt 0 ]; do
    name=$1 cmd=$2
    shift 2
    if [ -n "$failed" ] && [ "${TEST_KEEP_GOING:-0}" != 1 ]; then
        summary="$summary$(printf '%-16s %8s  %s' "$name" - "not run")
"
        continue
    fi
    echo "==== stage $name: $cmd"
    start=$(date +%s)
    sh -c "$cmd"
    rc=$?
    secs=$(($(date +%s) - start))
    if [ $rc -eq 0 ]; then
        result=ok
    else
        result="FAILED (exit status $rc)"
        failed="$failed $name"
    fi
    echo "==== stage $name: $result after ${secs} s"
    summary="$summary$(printf '%-16s %8d  %s' "$name" "$secs" "$result")
"
done
total=$(($(date +%s) - total_start))
echo
echo "==== make test: stages"
printf '%-16s %8s  %s\n' stage seconds result
printf '%s' "$summary"
if [ -n "$failed" ]; then
    printf '%-16s %8d  %s\n' total "$total" "FAILED:$failed"
    exit 1
fi
printf '%-16s %8d  %s\n' total "$total" "all passed"
