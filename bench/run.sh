#!/bin/bash
# make bench: starts a private stack on loopback ports it picks (redis-server without
# persistence, session-router, one or more c2s-frontends, an ECDSA P-256 certificate),
# creates the bench accounts, runs every case with build/loadgen, prints the table and stops
# everything it started. Results: RESULT lines in $BUILD/bench/results-ours.txt.
#
# usage: bench/run.sh [--build DIR] [--frontends N | --two-frontends] [--login-n N] [--idle-n N]
#                     [--pairs P] [--window W] [--duration T] [--rate R] [--contacts K]
#                     [--presence-users U] [--scale-target N] [--sm-n N]
#                     [--link-gens G] [--link-frontends K] [--link-pairs P]
#                     [--link-window W] [--router-rate R] [--link-no-batch]
#                     [--cases "login-scram msg ..."]
#                     [--keep] [--perf DIR [--perf-cases "msg msg-each"]]
#                     [--scale100k-target N] [--scale100k-rest S] [--scale100k-inflight C]
#                     [--nofile N]
#
# --frontends N: every case runs against N frontends (default 1; the muc case at least 2),
# clients spread over them; for the scale100k case (not in the default list; see
# bench/scale100k.sh) N is 6 unless given.
# --perf DIR: during each of the --perf-cases, `perf record $PERF_ARGS` (-e cpu-clock -F 999
# --call-graph dwarf) on every server process (frontends, router, redis-server) for
# PERF_SECONDS (6) from PERF_DELAY (3) seconds after the generator starts (past the logins,
# inside the measured phase), into DIR/CASE.NAME.data, and `perf stat` counts (system calls
# by kind, context switches, page faults) over the same window into DIR/CASE.NAME.stat
# (bench/profile.sh reads both).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

BUILD=build
FRONTENDS=1
FRONTENDS_SET=0
KEEP=0
PERF_DIR=""
PERF_CASES="msg msg-each"
PERF_STAT_EVENTS=task-clock,context-switches,page-faults,raw_syscalls:sys_enter
for sc in read write readv writev sendto recvfrom sendmsg recvmsg epoll_wait epoll_ctl poll getpid; do
    PERF_STAT_EVENTS="$PERF_STAT_EVENTS,syscalls:sys_enter_$sc"
done
: "${PERF_DELAY:=3}" "${PERF_SECONDS:=6}" "${PERF_ARGS:=-e cpu-clock -F 999 --call-graph dwarf}"
PERF_JOBS=""
while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$2; shift 2 ;;
    --two-frontends) FRONTENDS=2; shift ;;
    --frontends) FRONTENDS=$2; FRONTENDS_SET=1; shift 2 ;;
    --scale100k-target) SCALE100K_TARGET=$2; shift 2 ;;
    --scale100k-rest) SCALE100K_REST=$2; shift 2 ;;
    --scale100k-inflight) SCALE100K_INFLIGHT=$2; shift 2 ;;
    --nofile) NOFILE=$2; shift 2 ;;
    --login-n) LOGIN_N=$2; shift 2 ;;
    --idle-n) IDLE_N=$2; shift 2 ;;
    --pairs) PAIRS=$2; shift 2 ;;
    --window) WINDOW=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --rate) MSG_RATE=$2; shift 2 ;;
    --contacts) CONTACTS=$2; shift 2 ;;
    --presence-users) PRES_USERS=$2; shift 2 ;;
    --scale-target) SCALE_TARGET=$2; shift 2 ;;
    --sm-n) SM_N=$2; shift 2 ;;
    --link-gens) LINK_GENS=$2; shift 2 ;;
    --link-no-batch) LINK_NO_BATCH=1; shift ;;
    --link-frontends) LINK_FRONTENDS=$2; shift 2 ;;
    --link-pairs) LINK_PAIRS=$2; shift 2 ;;
    --link-window) LINK_WINDOW=$2; shift 2 ;;
    --router-rate) ROUTER_RATE=$2; shift 2 ;;
    --cases) CASES=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --perf) PERF_DIR=$2; shift 2 ;;
    --perf-cases) PERF_CASES=$2; shift 2 ;;
    *) echo "usage: see the head of $0" >&2; exit 2 ;;
    esac
done

LOADGEN=$BUILD/loadgen
LABEL=ours
DOMAIN=localhost
PREFIX=bench:
PASSWORD=benchpass
# router-rate / router-ceiling: G linkgen processes, each K stand-in frontends and P pairs
# (2P sessions; accounts of their own), W messages in flight per sender (router-ceiling),
# or R messages per second in all (router-rate).
: "${LINK_GENS:=2}" "${LINK_FRONTENDS:=2}" "${LINK_PAIRS:=100}" "${LINK_WINDOW:=20}"
: "${ROUTER_RATE:=10000}" "${OFFLINE_RATE:=5000}"
# --link-no-batch: the stand-ins send one ZeroMQ message per link message (as frontends did
# before batches, docs/PROTOCOL.md "Batches"), to compare.
: "${LINK_NO_BATCH:=}"
for b in c2s-frontend session-router xmppctl upload-server loadgen linkgen; do
    [ -x "$BUILD/$b" ] || { echo "run.sh: $BUILD/$b is missing; run make first" >&2; exit 1; }
done
[[ "$FRONTENDS" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --frontends wants a number" >&2; exit 2; }
# Scale needs more time than the other cases: about 1 ms of CPU per login on each side.
STEP_TIMEOUT=$((300 + SCALE_TARGET / 50))
. bench/scale100k.sh

# Nothing from the caller's environment may override the bench configuration.
for v in $(env | sed -n 's/^\(XMPP_[A-Z0-9_]*\)=.*/\1/p'); do unset "$v"; done

WORK=$(mktemp -d /tmp/xmpp-bench.XXXXXX)
mkdir -p "$BUILD/bench"
RESULTS=$BUILD/bench/results-ours.txt
: > "$RESULTS"
REDIS_PID="" ROUTER_PID="" FE_PIDS="" UPLOAD_PID=""

cleanup() {
    trap - EXIT INT TERM
    scale100k_stop_generators
    server_stop
    [ -n "$REDIS_PID" ] && bench_stop "$REDIS_PID"
    if [ "$KEEP" = 1 ]; then
        echo "run.sh: logs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_raise_nofile
bench_pick_port REDIS_PORT
bench_pick_port ROUTER_PORT
# Frontend ports: as many as the largest case needs (muc: two; scale100k: its own count).
NFE_MAX=$FRONTENDS
[ "$NFE_MAX" -ge 2 ] || NFE_MAX=2
case " $CASES " in *" scale100k "*) [ "$SCALE100K_FRONTENDS" -gt "$NFE_MAX" ] && NFE_MAX=$SCALE100K_FRONTENDS ;; esac
FE_PORTS=()
for i in $(seq 1 "$NFE_MAX"); do
    bench_pick_port port
    FE_PORTS+=("$port")
done
FE1_PORT=${FE_PORTS[0]}
bench_pick_port UPLOAD_PORT
bench_pick_port WSS_PORT
bench_cert "$WORK"
CONF=$WORK/xmpp.conf
cat > "$CONF" <<EOF
# made by bench/run.sh
domain = $DOMAIN
log_level = warn
tls_cert = $WORK/cert.pem
tls_key = $WORK/key.pem
router_endpoint = tcp://127.0.0.1:$ROUTER_PORT
router_bind = tcp://127.0.0.1:$ROUTER_PORT
admin_bind =
redis_host = 127.0.0.1
redis_port = $REDIS_PORT
redis_prefix = $PREFIX
max_connections = $(($(max_connections_needed) + 1000))
auth_timeout = 120
stream_open_timeout = 120
# every generated client comes from 127.0.0.1 and logs in at full speed
max_connections_per_ip = 0
connection_rate_per_ip = 0
max_bytes_per_second = 0
upload_url = http://127.0.0.1:$UPLOAD_PORT/upload
upload_listen = 127.0.0.1:$UPLOAD_PORT
upload_dir = $WORK/uploads
upload_secret_file = $WORK/upload.secret
upload_max_size = 16000000
EOF
(umask 077; openssl rand -hex 32 > "$WORK/upload.secret")

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
    --daemonize no > "$WORK/redis.log" 2>&1 &
REDIS_PID=$!
bench_wait_port "$REDIS_PORT" 10 "$REDIS_PID"

# One account made by xmppctl; its credentials copied to the others in one pipe. Every bench
# account thus has the same password and salt: fine for a benchmark (the server does the same
# work per login), and the generator derives the SCRAM keys once.
NACCT=$(bench_accounts_needed)
bench_log "creating $NACCT accounts"
used_memory() { redis-cli -p "$REDIS_PORT" INFO memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p'; }
ACCT_MEM0=$(used_memory)
"$BUILD/xmppctl" -c "$CONF" adduser "lg0@$DOMAIN" "$PASSWORD" > /dev/null
KEY="${PREFIX}acct:{lg0@$DOMAIN}"
S1=$(redis-cli -p "$REDIS_PORT" --raw HGET "$KEY" scram-sha-1)
S256=$(redis-cli -p "$REDIS_PORT" --raw HGET "$KEY" scram-sha-256)
awk -v n="$NACCT" -v pre="$PREFIX" -v dom="$DOMAIN" -v s1="$S1" -v s256="$S256" '
function bulk(s) { printf "$%d\r\n%s\r\n", length(s), s }
BEGIN {
    for (i = 1; i < n; i++) {
        jid = "lg" i "@" dom
        printf "*6\r\n"; bulk("HSET"); bulk(pre "acct:{" jid "}")
        bulk("scram-sha-1"); bulk(s1); bulk("scram-sha-256"); bulk(s256)
        printf "*3\r\n"; bulk("SADD"); bulk(pre "accounts"); bulk(jid)
    }
}' | redis-cli -p "$REDIS_PORT" --pipe > "$WORK/pipe.log"
got=$(redis-cli -p "$REDIS_PORT" SCARD "${PREFIX}accounts")
[ "$got" = "$NACCT" ] || { echo "run.sh: only $got of $NACCT accounts were created" >&2; exit 1; }
# Redis memory per account (credentials hash and the accounts set), from INFO memory.
echo "RESULT case=accounts server=ours accounts=$NACCT redis_bytes_per_account=$(( ($(used_memory) - ACCT_MEM0) / NACCT ))" |
    tee -a "$RESULTS"

# The frontends one case runs: --frontends, at least two for tls2 (the room case spreads each
# room's occupants over two), the scale100k count for that case.
frontends_for() {
    case $1 in
    tls2) [ "$FRONTENDS" -ge 2 ] && echo "$FRONTENDS" || echo 2 ;;
    tls-scale100k) echo "$SCALE100K_FRONTENDS" ;;
    *) echo "$FRONTENDS" ;;
    esac
}

server_start() {
    # The message archive only where a case asks for it (tls-mam): the peers run without one.
    local req=true mam=false nfe i limit=()
    [ "$1" = notls ] && req=false
    [ "$1" = tls-mam ] && mam=true
    nfe=$(frontends_for "$1")
    # scale100k: each frontend under the per-process descriptor limit it is measured with.
    [ "$1" = tls-scale100k ] && limit=(prlimit "--nofile=$NOFILE" --)
    XMPP_REQUIRE_TLS=$req XMPP_MAM_ENABLED=$mam "$BUILD/session-router" -c "$CONF" \
        2>> "$WORK/router.log" &
    ROUTER_PID=$!
    FE_PIDS="" SERVER_PORT=""
    for i in $(seq 1 "$nfe"); do
        # The first frontend also takes XMPP over WebSocket with TLS (wss_listen).
        local envs=("XMPP_REQUIRE_TLS=$req" "XMPP_C2S_LISTEN=127.0.0.1:${FE_PORTS[i - 1]}" "XMPP_FRONTEND_NAME=fe$i")
        [ "$i" = 1 ] && envs+=("XMPP_WSS_LISTEN=127.0.0.1:$WSS_PORT")
        env "${envs[@]}" "${limit[@]}" "$BUILD/c2s-frontend" -c "$CONF" 2>> "$WORK/fe$i.log" &
        FE_PIDS="$FE_PIDS $!"
        SERVER_PORT="$SERVER_PORT,${FE_PORTS[i - 1]}"
    done
    FE_PIDS=${FE_PIDS# } SERVER_PORT=${SERVER_PORT#,}
    SERVER_WSS_PORT=$WSS_PORT
    SERVER_WS_PATH=/xmpp-websocket
    SERVER_PIDS="${FE_PIDS// /,},$ROUTER_PID,$REDIS_PID"
    if [ "$1" = tls-upload ]; then
        "$BUILD/upload-server" -c "$CONF" 2>> "$WORK/upload.log" &
        UPLOAD_PID=$!
        bench_wait_port "$UPLOAD_PORT" 10 "$UPLOAD_PID" || return 1
    fi
    SERVER_NOTLS=0
    [ "$1" = notls ] && SERVER_NOTLS=1
    local p
    for p in ${SERVER_PORT//,/ } $WSS_PORT; do
        bench_wait_port "$p" 10 "$ROUTER_PID" || return 1
    done
}

server_stop() {
    # shellcheck disable=SC2086 # word lists of process ids
    bench_stop $FE_PIDS $ROUTER_PID
    FE_PIDS="" ROUTER_PID=""
}

# The archives the bench accounts have: entries (the main streams), and the bytes of every
# archive key (MEMORY USAGE, exact: SAMPLES 0), conversation streams and indexes included.
archive_keys() {
    local pat
    for pat in "${PREFIX}mam:{*" "${PREFIX}mamwith:{*" "${PREFIX}mamidx:{*"; do
        redis-cli -p "$REDIS_PORT" --scan --pattern "$pat"
    done
}
archive_entries() {
    redis-cli -p "$REDIS_PORT" --scan --pattern "${PREFIX}mam:{*" |
        while read -r k; do redis-cli -p "$REDIS_PORT" XLEN "$k"; done | awk '{ n += $1 } END { print n + 0 }'
}
archive_bytes() {
    archive_keys | while read -r k; do redis-cli -p "$REDIS_PORT" MEMORY USAGE "$k" SAMPLES 0; done |
        awk '{ n += $1 } END { print n + 0 }'
}
archive_clear() {
    archive_keys | while read -r k; do redis-cli -p "$REDIS_PORT" UNLINK "$k" > /dev/null; done
}
# --perf: one perf record per server process, started in the background; the generator
# runs meanwhile (bench_case), and bench_case_after waits for them.
perf_start() {
    PERF_JOBS=""
    [ -n "$PERF_DIR" ] || return 0
    case " $PERF_CASES " in *" $1 "*) ;; *) return 0 ;; esac
    mkdir -p "$PERF_DIR"
    local p n=0
    # shellcheck disable=SC2086 # word lists of process ids
    for p in $FE_PIDS $ROUTER_PID $REDIS_PID; do
        local name=router
        [ "$p" = "$REDIS_PID" ] && name=redis
        case " $FE_PIDS " in *" $p "*) n=$((n + 1)); name=frontend$n ;; esac
        # shellcheck disable=SC2086 # PERF_ARGS: options, split on purpose
        (sleep "$PERF_DELAY" && exec perf record -q $PERF_ARGS -p "$p" \
            -o "$PERF_DIR/$1.$name.data" -- sleep "$PERF_SECONDS") > "$PERF_DIR/$1.$name.log" 2>&1 &
        PERF_JOBS="$PERF_JOBS $!"
        # Counts over the same window: system calls by kind, context switches, page faults.
        (sleep "$PERF_DELAY" && exec perf stat --per-thread -x, -e "$PERF_STAT_EVENTS" -p "$p" \
            -o "$PERF_DIR/$1.$name.stat" -- sleep "$PERF_SECONDS") >> "$PERF_DIR/$1.$name.log" 2>&1 &
        PERF_JOBS="$PERF_JOBS $!"
    done
}
perf_wait() {
    local j
    for j in $PERF_JOBS; do wait "$j" || bench_log "perf exited with $?"; done
    PERF_JOBS=""
}
# Around the msg-mam case: Redis memory per archived message, both copies (the sender's and
# the recipient's entries, with their conversation streams).
redis_commands() {
    redis-cli -p "$REDIS_PORT" INFO stats | sed -n 's/^total_commands_processed:\([0-9]*\).*/\1/p'
}
bench_case_before() {
    REDIS_CMDS0=$(redis_commands)
    perf_start "$1"
    case $1 in msg-mam | mam-query) archive_clear ;; esac
}
bench_case_after() {
    perf_wait
    # What the case asked of Redis: commands processed (INFO stats), the generator's
    # readiness login before the case excluded.
    echo "RESULT case=redis-commands server=ours of=$1 commands=$(( $(redis_commands) - REDIS_CMDS0 ))" |
        tee -a "$RESULTS"
    [ "$1" = msg-mam ] || return 0
    local bytes entries prev=-1
    # The archive writes trail the deliveries under full load: wait until they have landed.
    entries=$(archive_entries)
    while [ "$entries" != "$prev" ]; do
        sleep 1
        prev=$entries
        entries=$(archive_entries)
    done
    bytes=$(archive_bytes)
    awk -v b="$bytes" -v e="$entries" 'BEGIN {
        if (e > 0) printf "RESULT case=msg-mam-memory server=ours entries=%d messages=%d redis_bytes_per_message=%.0f\n", e, e / 2, b / (e / 2) }' |
        tee -a "$RESULTS"
    archive_clear
}
bench_mam_query() {
    bench_log "$LABEL: mam-query"
    set +e
    timeout -k 5 "$STEP_TIMEOUT" python3 bench/mam_query.py --port "$FE1_PORT" \
        --redis-port "$REDIS_PORT" --prefix "$PREFIX" --domain "$DOMAIN" --cafile "$WORK/cert.pem" \
        --password "$PASSWORD" --label "$LABEL" > "$WORK/$LABEL-mam-query.out" 2>&1
    set -e
    sed 's/^/    /' "$WORK/$LABEL-mam-query.out"
    if grep -q '^RESULT ' "$WORK/$LABEL-mam-query.out"; then
        grep '^RESULT ' "$WORK/$LABEL-mam-query.out" | sed 's/^RESULT /RESULT case=mam-query /' >> "$RESULTS"
    else
        echo "RESULT case=mam-query server=$LABEL status=failed" >> "$RESULTS"
    fi
    archive_clear
}

# The router alone: LINK_GENS build/linkgen processes feed it over its link (stand-in
# frontends, no clients, no TLS), their measured windows aligned (--start-at); the first
# reads the router's and Redis's CPU, whole and by thread, over its window. $2: messages per
# second in all (0: closed loop, as fast as the router delivers).
bench_router_link() {
    local name=$1 rate=$2 g pids="" start out=$WORK/$LABEL-$1
    bench_log "$LABEL: $name ($LINK_GENS generators x $LINK_FRONTENDS stand-in frontends x $LINK_PAIRS pairs, rate ${rate:-0})"
    # Time for every generator to bind its sessions before the common window.
    start=$(( $(date +%s%3N) + 3000 + LINK_GENS * LINK_PAIRS * 2 ))
    for g in $(seq 0 $((LINK_GENS - 1))); do
        local watch=()
        [ "$g" = 0 ] && watch=(--watch "$ROUTER_PID,$REDIS_PID")
        timeout -k 5 "$STEP_TIMEOUT" "$BUILD/linkgen" --endpoint "tcp://127.0.0.1:$ROUTER_PORT" \
            --domain "$DOMAIN" --prefix lg --first $((g * 2 * LINK_PAIRS)) --name "linkgen$g" \
            --frontends "$LINK_FRONTENDS" --pairs "$LINK_PAIRS" --window "$LINK_WINDOW" \
            --rate "$(awk -v r="$rate" -v g="$LINK_GENS" 'BEGIN { print r / g }')" \
            --duration "$DURATION" --start-at "$start" "${watch[@]}" \
            ${LINK_NO_BATCH:+--no-batch} > "$out.$g.out" 2>&1 &
        pids="$pids $!"
    done
    local rc=0
    for g in $pids; do wait "$g" || rc=$?; done
    cat "$out".*.out | sed 's/^/    /'
    # One line for the case (bench/link_sum.awk).
    cat "$out".*.out | awk -v name="$name" -v label="$LABEL" -v gens="$LINK_GENS" -v rc="$rc" \
        -f bench/link_sum.awk | tee -a "$RESULTS"
}

# router-offline: linkgen --offline: LINK_PAIRS senders bound, each sends LINK_WINDOW
# messages (at most max_offline_messages, 100) to an account with no session, which the router
# stores (mod_offline); OFFLINE_RATE (5000) per second in all, as a burst past 1 MiB of stores
# waiting for Redis is refused (resource-constraint). Redis bytes per stored message from the offline lists themselves
# (MEMORY USAGE ... SAMPLES 0) and from INFO memory; the router's CPU per stored message.
offline_keys() { redis-cli -p "$REDIS_PORT" --scan --pattern "${PREFIX}offline:*"; }
offline_entries() {
    offline_keys | while read -r k; do redis-cli -p "$REDIS_PORT" LLEN "$k"; done |
        awk '{ n += $1 } END { print n + 0 }'
}
bench_router_offline() {
    local out=$WORK/$LABEL-router-offline.out mem0 mem1 bytes entries prev=-1
    bench_log "$LABEL: router-offline ($LINK_PAIRS senders x $LINK_WINDOW messages)"
    mem0=$(used_memory)
    timeout -k 5 "$STEP_TIMEOUT" "$BUILD/linkgen" --endpoint "tcp://127.0.0.1:$ROUTER_PORT" \
        --domain "$DOMAIN" --prefix lg --first 0 --name linkgen-offline --offline \
        --frontends "$LINK_FRONTENDS" --pairs "$LINK_PAIRS" --window "$LINK_WINDOW" \
        --rate "$OFFLINE_RATE" --duration $(( LINK_PAIRS * LINK_WINDOW / OFFLINE_RATE + 2 )) \
        --watch "$ROUTER_PID,$REDIS_PID" > "$out" 2>&1 || true
    sed 's/^/    /' "$out"
    entries=$(offline_entries)
    while [ "$entries" != "$prev" ]; do
        sleep 1
        prev=$entries
        entries=$(offline_entries)
    done
    mem1=$(used_memory)
    bytes=$(offline_keys | while read -r k; do redis-cli -p "$REDIS_PORT" MEMORY USAGE "$k" SAMPLES 0; done |
        awk '{ n += $1 } END { print n + 0 }')
    awk -v e="$entries" -v b="$bytes" -v m0="$mem0" -v m1="$mem1" -v label="$LABEL" '
        /^RESULT / { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
        END {
            if (e == 0) { printf "RESULT case=router-offline server=%s status=failed\n", label; exit }
            printf "RESULT case=router-offline server=%s stored=%d bounced=%d " \
                "redis_bytes_per_offline_message=%.0f used_memory_per_offline_message=%.0f " \
                "router_cpu_ms_per_1000_stored=%.2f redis_cpu_ms_per_1000_stored=%.2f\n",
                label, e, v["errors"], b / e, (m1 - m0) / e, v["cpu_ms0"] * 1000 / e, v["cpu_ms1"] * 1000 / e
        }' "$out" | tee -a "$RESULTS"
    offline_keys | while read -r k; do redis-cli -p "$REDIS_PORT" UNLINK "$k" > /dev/null; done
}

# router-sessions: linkgen binds IDLE_N sessions (no messages) on LINK_FRONTENDS stand-ins,
# each with its initial presence: the router's and Redis's RSS per bound session and CPU per
# bind, without a TLS client or a frontend per session (so at sizes one machine cannot hold
# as TLS clients).
bench_router_sessions() {
    local out=$WORK/$LABEL-router-sessions.out
    bench_log "$LABEL: router-sessions ($IDLE_N sessions on $LINK_FRONTENDS stand-ins)"
    timeout -k 5 "$STEP_TIMEOUT" "$BUILD/linkgen" --endpoint "tcp://127.0.0.1:$ROUTER_PORT" \
        --domain "$DOMAIN" --prefix lg --first 0 --name linkgen-sessions \
        --frontends "$LINK_FRONTENDS" --pairs $((IDLE_N / 2)) --window 0 --duration 0 --settle 3 \
        --watch "$ROUTER_PID,$REDIS_PID" > "$out" 2>&1 || true
    sed 's/^/    /' "$out"
    awk -v n=$((IDLE_N / 2 * 2)) -v label="$LABEL" '
        /^RESULT / { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } ok = 1 }
        END {
            if (!ok) { printf "RESULT case=router-sessions server=%s status=failed\n", label; exit }
            printf "RESULT case=router-sessions server=%s sessions=%d bind_s=%s " \
                "router_kib_per_session=%.2f redis_kib_per_session=%.3f " \
                "router_cpu_ms_per_bind=%.4f redis_cpu_ms_per_bind=%.4f router_rss_kib=%d\n",
                label, n, v["bind_s"], (v["rss_bound_kib0"] - v["rss_before_kib0"]) / n,
                (v["rss_bound_kib1"] - v["rss_before_kib1"]) / n, v["bind_cpu_ms0"] / n,
                v["bind_cpu_ms1"] / n, v["rss_bound_kib0"]
        }' "$out" | tee -a "$RESULTS"
}

bench_upload() {
    bench_log "$LABEL: upload"
    set +e
    timeout -k 5 "$STEP_TIMEOUT" python3 bench/upload.py --port "$FE1_PORT" --domain "$DOMAIN" \
        --cafile "$WORK/cert.pem" --password "$PASSWORD" --upload-pid "$UPLOAD_PID" \
        --label "$LABEL" > "$WORK/$LABEL-upload.out" 2>&1
    set -e
    sed 's/^/    /' "$WORK/$LABEL-upload.out"
    if grep -q '^RESULT ' "$WORK/$LABEL-upload.out"; then
        grep '^RESULT ' "$WORK/$LABEL-upload.out" | sed 's/^RESULT /RESULT case=upload /' >> "$RESULTS"
    else
        echo "RESULT case=upload server=$LABEL status=failed" >> "$RESULTS"
    fi
    rm -rf "$WORK/uploads"
}

echo "bench: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)," \
    "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
case " $CASES " in
*" scale100k "*) echo "bench: $FRONTENDS frontend(s) ($SCALE100K_FRONTENDS in scale100k), cases: $CASES" ;;
*) echo "bench: $FRONTENDS frontend(s), cases: $CASES" ;;
esac
bench_suite
echo
echo "Results (RESULT lines in $RESULTS):"
bench_table "$RESULTS"
