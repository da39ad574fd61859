# shellcheck shell=bash
# The scale100k case of bench/run.sh (sourced by it; `bench/run.sh --cases scale100k`):
# SCALE100K_TARGET (100,000) concurrent sessions, each a full STARTTLS + SCRAM-SHA-256 login,
# bind, initial presence, then idle. One process may hold only NOFILE (20,000) descriptors,
# so the sessions go to SCALE100K_FRONTENDS (6) frontends, each started under
# `prlimit --nofile=NOFILE` (run.sh's server_start, variant tls-scale100k), from several
# generators (build/loadgen --scenario hold, each under the same limit, each with its own
# account range and two source addresses 127.0.0.x, each spreading its clients over every
# frontend). The generators only log in, print their counts by wall-clock second and hold
# the sessions; this script measures the server from /proc:
#   - the ramp: every second the CPU of each server process, set against the generators'
#     login counts of the same second; a row per SCALE100K_INTERVAL (5) seconds: sessions,
#     logins/s, server CPU (% of one core), server CPU ms per login, and the whole ramp;
#   - memory: VmRSS of each process before the ramp and SCALE100K_SETTLE (5) s after it,
#     KiB per session for the frontends (sum), the router, Redis and in all; Redis's own
#     used_memory; the kernel's TCP memory (/proc/net/sockstat, machine-wide, both ends of
#     every loopback connection) and Slab (/proc/meminfo);
#   - at rest: the CPU of every server process over SCALE100K_REST (30) s, all 100,000
#     sessions idle.
# The report goes to stdout and $BUILD/bench/scale100k-report.txt, one RESULT line to
# $RESULTS; the per-second samples and the generators' outputs to $BUILD/bench/scale100k/.

: "${SCALE100K_REST:=30}" "${SCALE100K_INFLIGHT:=600}" "${SCALE100K_INTERVAL:=5}"
: "${SCALE100K_SETTLE:=5}" "${NOFILE:=20000}"
SCALE100K_FRONTENDS=6
[ "${FRONTENDS_SET:-0}" = 1 ] && SCALE100K_FRONTENDS=$FRONTENDS
SCALE100K_GEN_PIDS=""

# Connections one frontend must take: the largest of the scale case and a scale100k share.
max_connections_needed() {
    local n=$SCALE_TARGET per
    case " $CASES " in
    *" scale100k "*)
        per=$(((SCALE100K_TARGET + SCALE100K_FRONTENDS - 1) / SCALE100K_FRONTENDS))
        [ "$per" -gt "$n" ] && n=$per
        ;;
    esac
    echo "$n"
}

# Stops the generators still running (from cleanup too: nothing outlives the run).
scale100k_stop_generators() {
    [ -n "$SCALE100K_GEN_PIDS" ] || return 0
    # shellcheck disable=SC2086 # a word list of process ids
    bench_stop $SCALE100K_GEN_PIDS
    SCALE100K_GEN_PIDS=""
}

# Until the next whole wall-clock second (and 5 ms past it, so that the generators, which
# write their count for a second at their first loop pass after it, are there too).
s100k_sleep_to_second() {
    local ns rem
    ns=$(date +%N)
    rem=$((1000000000 - 10#$ns + 5000000))
    sleep "$((rem / 1000000000)).$(printf '%09d' $((rem % 1000000000)))"
}

# user+sys clock ticks of each server process, in the order of S100K_PIDS, on one line (0 for
# one that is gone).
s100k_ticks() {
    local p t
    for p in $S100K_PIDS; do
        t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2> /dev/null)
        printf ' %d' "${t:-0}"
    done
}

s100k_rss() {
    local r
    r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2> /dev/null)
    echo "${r:-0}"
}
s100k_fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2> /dev/null | wc -l; }
s100k_redis_used() { redis-cli -p "$REDIS_PORT" INFO memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p'; }
s100k_tcp_pages() { awk '$1 == "TCP:" { for (i = 2; i < NF; i++) if ($i == "mem") print $(i + 1) }' /proc/net/sockstat; }
s100k_slab() { awk '$1 == "Slab:" { print $2 }' /proc/meminfo; }

# Measures without `set -e`: a generator or server process that dies must not end the run
# before its report (its /proc entries are gone, the figures say what is missing).
bench_scale100k() {
    set +e
    s100k_run
    set -e
}

s100k_run() {
    local n=$SCALE100K_TARGET nfe gens per dir out p k tck rc=0
    nfe=$(frontends_for tls-scale100k)
    dir=$WORK/scale100k
    out=$WORK/$LABEL-scale100k.out
    mkdir -p "$dir"
    : > "$out"
    tck=$(getconf CLK_TCK)
    # One generator per frontend at least, more when a share would not fit in NOFILE (with
    # room for the generator's own descriptors).
    gens=$(((n + NOFILE - 257) / (NOFILE - 256)))
    [ "$gens" -ge "$nfe" ] || gens=$nfe
    per=$(((n + nfe - 1) / nfe))
    bench_log "$LABEL: scale100k ($n sessions, $nfe frontends, $gens generators, descriptor limit $NOFILE)"
    if [ $((per + 200)) -gt "$NOFILE" ]; then
        echo "scale100k: $per sessions per frontend do not fit in $NOFILE descriptors; use more --frontends" | tee -a "$out"
        echo "RESULT case=scale100k server=$LABEL status=failed reason=nofile" >> "$RESULTS"
        return 0
    fi
    # The processes measured, in this order: the frontends, the router, Redis.
    S100K_PIDS="$FE_PIDS $ROUTER_PID $REDIS_PID"
    local names=() fe_n=0
    for p in $FE_PIDS; do
        fe_n=$((fe_n + 1))
        names+=("fe$fe_n")
    done
    names+=(router redis)
    {
        echo "scale100k: $n sessions (STARTTLS, SCRAM-SHA-256, bind, presence, then idle)"
        echo "  $nfe frontends (ports $SERVER_PORT), $gens generators, $SCALE100K_INFLIGHT logins in flight in all"
        for p in $FE_PIDS; do
            echo "  frontend pid $p: $(sed -n 's/^Max open files *\([0-9]*\).*/descriptor limit \1/p' "/proc/$p/limits")"
        done
    } >> "$out"

    local rss0=() redis0 tcp0 slab0
    for p in $S100K_PIDS; do rss0+=("$(s100k_rss "$p")"); done
    redis0=$(s100k_redis_used)
    tcp0=$(s100k_tcp_pages)
    slab0=$(s100k_slab)

    # The ramp: the generators start together; a sample of the server's CPU every second.
    local samples=$dir/samples first=0 cnt conc src
    conc=$((SCALE100K_INFLIGHT / gens))
    [ "$conc" -ge 1 ] || conc=1
    s100k_sleep_to_second
    echo "$(date +%s)$(s100k_ticks)" > "$samples"
    for k in $(seq 0 $((gens - 1))); do
        cnt=$(((n - first) / (gens - k)))
        src=$((2 + 2 * k))
        prlimit "--nofile=$NOFILE" -- "$LOADGEN" --scenario hold -n "$cnt" --first "$first" \
            --port "$SERVER_PORT" --src-first "$src" --src-addrs 2 --concurrency "$conc" \
            --domain "$DOMAIN" --label "$LABEL" --login-timeout 120 \
            --timeout $((600 + n / 50)) > "$dir/gen$k.out" 2> "$dir/gen$k.err" &
        SCALE100K_GEN_PIDS="$SCALE100K_GEN_PIDS $!"
        echo "  generator $k: accounts lg$first..lg$((first + cnt - 1)), from 127.0.0.$src-$((src + 1)), $conc in flight" >> "$out"
        first=$((first + cnt))
    done
    local end=$((SECONDS + 600 + n / 50)) held alive t0 sess last_log=$SECONDS
    t0=$(head -c 10 "$samples")
    while :; do
        s100k_sleep_to_second
        echo "$(date +%s)$(s100k_ticks)" >> "$samples" || { rc=1; break; }
        for p in $S100K_PIDS; do
            kill -0 "$p" 2> /dev/null || { echo "scale100k: server process $p exited during the ramp" >> "$out"; rc=1; }
        done
        [ "$rc" = 0 ] || break
        held=0 alive=0
        for k in $(seq 0 $((gens - 1))); do
            grep -q '^HELD ' "$dir/gen$k.out" && held=$((held + 1))
        done
        for p in $SCALE100K_GEN_PIDS; do kill -0 "$p" 2> /dev/null && alive=$((alive + 1)); done
        if [ $((SECONDS - last_log)) -ge 10 ]; then
            last_log=$SECONDS
            sess=$(for k in $(seq 0 $((gens - 1))); do grep '^PROGRESS ' "$dir/gen$k.out" | tail -1; done |
                awk '{ for (i = 2; i <= NF; i++) if ($i ~ /^ok=/) s += substr($i, 4) } END { print s + 0 }')
            bench_log "scale100k: $sess sessions after $(($(date +%s) - t0)) s"
        fi
        [ "$held" = "$gens" ] && break
        if [ "$alive" -lt "$gens" ]; then
            echo "scale100k: a generator exited during the ramp (see below)" >> "$out"
            rc=1
            break
        fi
        if [ "$SECONDS" -ge "$end" ]; then
            echo "scale100k: the ramp did not end within $((600 + n / 50)) s" >> "$out"
            rc=1
            break
        fi
    done

    # Memory once the buffers of the last logins are released, then the CPU at rest.
    sleep "$SCALE100K_SETTLE"
    local rss1=() redis1 tcp1 slab1 c1 c2 fds=""
    for p in $S100K_PIDS; do rss1+=("$(s100k_rss "$p")"); done
    redis1=$(s100k_redis_used)
    tcp1=$(s100k_tcp_pages)
    slab1=$(s100k_slab)
    local genrss=0
    for p in $FE_PIDS $SCALE100K_GEN_PIDS; do fds="$fds $(s100k_fds "$p")"; done
    for p in $SCALE100K_GEN_PIDS; do genrss=$((genrss + $(s100k_rss "$p"))); done
    c1=$(s100k_ticks)
    sleep "$SCALE100K_REST"
    c2=$(s100k_ticks)
    # The generators' own CPU at rest (they share the two cores).
    local g1 g2
    g1=$(for p in $SCALE100K_GEN_PIDS; do awk '{ print $14 + $15 }' "/proc/$p/stat" 2> /dev/null; done | awk '{ s += $1 } END { print s + 0 }')
    sleep 5
    g2=$(for p in $SCALE100K_GEN_PIDS; do awk '{ print $14 + $15 }' "/proc/$p/stat" 2> /dev/null; done | awk '{ s += $1 } END { print s + 0 }')
    scale100k_stop_generators
    # The raw material stays: the samples and the generators' outputs (bench/scale100k.awk
    # makes the report from them again).
    rm -rf "$BUILD/bench/scale100k"
    cp -r "$dir" "$BUILD/bench/scale100k"
    for k in $(seq 0 $((gens - 1))); do
        sed "s/^/gen$k: /" "$dir/gen$k.err" >> "$out"
        grep -v '^PROGRESS ' "$dir/gen$k.out" | sed "s/^/gen$k: /" >> "$out"
    done

    # The report: the ramp by interval, memory, rest.
    awk -v interval="$SCALE100K_INTERVAL" -v tck="$tck" -v nfe="$nfe" -v target="$n" \
        -v names="${names[*]}" -v rss0="${rss0[*]}" -v rss1="${rss1[*]}" \
        -v redis0="$redis0" -v redis1="$redis1" -v tcp0="$tcp0" -v tcp1="$tcp1" \
        -v slab0="$slab0" -v slab1="$slab1" -v c1="$c1" -v c2="$c2" -v rest="$SCALE100K_REST" \
        -v g1="$g1" -v g2="$g2" -v genrss="$genrss" -v fds="$fds" -v label="$LABEL" -v gens="$gens" \
        -v nofile="$NOFILE" -v pagekib=$(($(getconf PAGESIZE) / 1024)) -v complete=$((1 - rc)) \
        -v results="$RESULTS" -f bench/scale100k.awk "$samples" "$dir"/gen*.out >> "$out"
    sed 's/^/    /' "$out"
    cp "$out" "$BUILD/bench/scale100k-report.txt"
    [ "$rc" = 0 ] || bench_log "scale100k: incomplete (see the report)"
}
