#!/bin/bash
# Where the server's time goes in the message case: runs the msg (the generator batches what
# a client queued in one loop pass into one write) and msg-each (one stanza per write) cases
# of bench/run.sh with `perf record` and `perf stat` on every server process (frontend,
# router, redis-server) during the measured phase, then prints for each case and process:
# the per-message system call and context switch counts, `perf report --no-children --sort
# dso,sym` (top lines), and the split by cause (bench/perf_causes.py).
#
# usage: bench/profile.sh [--out DIR] [--top N] [run.sh options, e.g. --build DIR --pairs 200]
# Needs perf (Debian: linux-perf) and root, or kernel.perf_event_paranoid <= 0 for kernel
# samples. PERF_DELAY, PERF_SECONDS, PERF_ARGS as in bench/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=""
TOP=25
BUILD=build
ARGS=()
while [ $# -gt 0 ]; do
    case $1 in
    --out) OUT=$2; shift 2 ;;
    --top) TOP=$2; shift 2 ;;
    --build) BUILD=$2; ARGS+=(--build "$2"); shift 2 ;;
    *) ARGS+=("$1"); shift ;;
    esac
done
command -v perf > /dev/null || { echo "profile.sh: perf is missing (apt-get install linux-perf)" >&2; exit 1; }
[ -n "$OUT" ] || OUT=$BUILD/bench/profile
rm -rf "$OUT"
mkdir -p "$OUT"
: "${PERF_SECONDS:=6}"
export PERF_SECONDS

bench/run.sh --cases "msg msg-each" --perf "$OUT" "${ARGS[@]}" > "$OUT/run.out" 2>&1 ||
    { cat "$OUT/run.out" >&2; exit 1; }
RESULTS=$BUILD/bench/results-ours.txt

for c in msg msg-each; do
    line=$(grep "^RESULT case=$c " "$RESULTS" || true)
    rate=$(sed -n 's/.* msgs_per_s=\([0-9.]*\).*/\1/p' <<< "$line")
    msgs=$(awk -v r="${rate:-0}" -v s="$PERF_SECONDS" 'BEGIN { printf "%.0f", r * s }')
    echo "######## $c"
    echo "$line"
    echo "messages delivered while profiling (msgs_per_s x $PERF_SECONDS s): about $msgs"
    echo
    echo "== per message (perf stat over the same window; in parentheses the ZeroMQ I/O thread's part):"
    for s in "$OUT/$c".*.stat; do
        [ -f "$s" ] || continue
        name=$(basename "$s" .stat)
        # perf stat --per-thread: "comm-tid,value,unit,event,...": totals per process, and
        # the ZeroMQ I/O thread's own part of them.
        awk -F, -v m="$msgs" -v name="${name#"$c".}" '
            /^#/ || NF < 4 || $2 !~ /^[0-9.]+$/ { next }
            { ev = $4; sub(/^syscalls:sys_enter_/, "", ev); sub(/^raw_syscalls:sys_enter/, "syscalls", ev)
              if (!(ev in tot)) order[++n] = ev
              tot[ev] += $2; if ($1 ~ /^ZMQbg\/IO/) io[ev] += $2 }
            END {
              if (m <= 0) exit
              printf "   %-10s", name
              for (i = 1; i <= n; i++) {
                  ev = order[i]
                  if (tot[ev] == 0) continue
                  if (ev == "task-clock") printf "  cpu %.1f us (I/O thread %.1f)", tot[ev] * 1000 / m, io[ev] * 1000 / m
                  else if (io[ev] > 0) printf "  %s %.2f (%.2f)", ev, tot[ev] / m, io[ev] / m
                  else printf "  %s %.2f", ev, tot[ev] / m
              }
              printf "\n" }' "$s"
    done
    echo
    for d in "$OUT/$c".*.data; do
        [ -f "$d" ] || continue
        echo "== perf report --no-children --sort dso,sym: $(basename "$d")"
        perf report -i "$d" --no-children --sort dso,sym --stdio -q -g none 2> /dev/null |
            grep -v '^$' | head -n "$TOP" || true
        echo
    done
    # shellcheck disable=SC2046 # the data files, one word each
    python3 bench/perf_causes.py --top "$TOP" --messages "$msgs" $(ls "$OUT/$c".*.data)
    echo
done
