# shellcheck shell=bash
# Shared by bench/run.sh and bench/peers.sh (sourced, bash): ports, certificates, waiting,
# and the one list of cases every server is measured with, so that our figures and the
# peers' come from the same generator runs.
#
# A script that sources this defines:
#   server_start VARIANT   VARIANT is "tls", "tls2" (the same with two frontends where the
#                          server has them) or "notls"; starts fresh server processes and sets
#                          SERVER_PORT (comma-separated client ports), SERVER_PIDS (every
#                          server process, comma-separated) and SERVER_NOTLS (1 when this
#                          variant accepts logins without TLS); SERVER_WSS_PORT (XMPP over
#                          WebSocket with TLS, RFC 7395, on SERVER_WS_PATH; empty: the
#                          WebSocket cases are skipped)
#   server_stop            stops what server_start started
# and, for the cases only ours has (skipped for the others): VARIANT "tls-mam" (the message
# archive on; every other variant runs without it, as the peers do), bench_mam_query (the
# mam-query case), VARIANT "tls-upload" (the upload process too) with bench_upload (the
# upload case: XEP-0363 PUT and GET throughput), bench_router_link NAME RATE (the
# router-rate and router-ceiling cases: build/linkgen on the router's link),
# bench_router_offline (router-offline: Redis memory per offline message),
# bench_router_sessions (router-sessions: router memory per session), VARIANT
# "tls-scale100k" (several frontends under a descriptor limit) with bench_scale100k
# (bench/scale100k.sh), and optionally
# bench_case_before NAME / bench_case_after NAME (run around each case).
# and sets LOADGEN, LABEL, DOMAIN, WORK, RESULTS and the sizes below.

: "${LOGIN_N:=1000}" "${IDLE_N:=5000}" "${PAIRS:=200}" "${WINDOW:=10}" "${DURATION:=10}"
: "${MSG_RATE:=0}" "${PRES_USERS:=200}" "${CONTACTS:=50}" "${SCALE_TARGET:=10000}"
: "${SM_N:=2000}" "${MUC_ROOMS:=20}" "${MUC_OCCUPANTS:=50}" "${MUC_MESSAGES:=2000}"
: "${SCALE100K_TARGET:=100000}"
: "${CASES:=login-scram login-plain login-notls login-wss idle idle-wss msg msg-each msg-ws msg-sm msg-mam mam-query upload sm-resume presence pep muc scale}"
: "${STEP_TIMEOUT:=600}"
BENCH_PORTS_TAKEN=""

bench_log() { printf 'bench: %s\n' "$*" >&2; }

# bench_pick_port VAR: a TCP port on loopback that nothing uses, below the ephemeral range so
# the generator's own outgoing connections can never hold it.
bench_pick_port() {
    local p hex
    for _ in $(seq 1 500); do
        p=$((20000 + RANDOM % 12000))
        hex=$(printf '%04X' "$p")
        case " $BENCH_PORTS_TAKEN " in *" $p "*) continue ;; esac
        if ! grep -q ":$hex " /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
            BENCH_PORTS_TAKEN="$BENCH_PORTS_TAKEN $p"
            printf -v "$1" '%s' "$p"
            return 0
        fi
    done
    bench_log "no free port found"
    return 1
}

# bench_wait_port PORT SECONDS [PID]: until something accepts on 127.0.0.1:PORT.
bench_wait_port() {
    local end=$((SECONDS + $2))
    while [ "$SECONDS" -lt "$end" ]; do
        if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then
            bench_log "process $3 exited before listening on $1"
            return 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    bench_log "nothing listens on 127.0.0.1:$1 after $2 s"
    return 1
}

# bench_cert DIR: a self-signed ECDSA P-256 certificate for $DOMAIN (cert.pem, key.pem, and
# both in one file, combined.pem, for servers that want that).
bench_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
        -subj "/CN=$DOMAIN" -addext "subjectAltName=DNS:$DOMAIN" \
        -keyout "$1/key.pem" -out "$1/cert.pem" 2>/dev/null
    cat "$1/cert.pem" "$1/key.pem" > "$1/combined.pem"
}

# bench_stop PID...: SIGTERM, up to 15 s to exit, then SIGKILL (a server stuck in its own
# shutdown must not hang the run). Only for processes this script started.
bench_stop() {
    local p
    for p in "$@"; do kill "$p" 2> /dev/null || true; done
    for p in "$@"; do
        for _ in $(seq 1 150); do
            kill -0 "$p" 2> /dev/null || break
            sleep 0.1
        done
        if kill -0 "$p" 2> /dev/null; then
            bench_log "process $p did not exit within 15 s of SIGTERM; killing it"
            kill -9 "$p" 2> /dev/null || true
        fi
        wait "$p" 2> /dev/null || true
    done
}

# bench_children PID: the process ids whose parent is PID, comma-separated (from /proc, so
# procps is not needed).
bench_children() {
    local d ppid out=""
    for d in /proc/[0-9]*; do
        ppid=$(sed -n 's/^.*) [A-Za-z] \([0-9]*\) .*/\1/p' "$d/stat" 2> /dev/null) || continue
        [ "$ppid" = "$1" ] && out="$out,${d#/proc/}"
    done
    echo "${out#,}"
}

# bench_running COMM [ARG]: whether a process named COMM runs (with ARG as its first argument,
# e.g. lua5.4 /usr/bin/prosody). Pure bash over /proc: no procps, and no match on ourselves.
bench_running() {
    local d comm argv
    for d in /proc/[0-9]*; do
        read -r comm < "$d/comm" 2> /dev/null || continue
        [ "$comm" = "$1" ] || continue
        [ -z "${2:-}" ] && return 0
        mapfile -d '' -t argv < "$d/cmdline" 2> /dev/null || continue
        [ "${argv[1]:-}" = "$2" ] && return 0
    done
    return 1
}

# Descriptors: every session is one socket in the server and one in the generator.
bench_raise_nofile() {
    ulimit -Hn 1048576 2>/dev/null || true
    ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
}

# How many accounts the cases need (lg0 .. lgN-1).
bench_accounts_needed() {
    local n=$LOGIN_N
    for v in $IDLE_N $((2 * PAIRS)) $PRES_USERS $SCALE_TARGET $SM_N $((MUC_ROOMS * MUC_OCCUPANTS)); do
        [ "$v" -gt "$n" ] && n=$v
    done
    # scale100k (ours only, not in the default list): its own number of accounts.
    case " $CASES " in *" scale100k "*) [ "$SCALE100K_TARGET" -gt "$n" ] && n=$SCALE100K_TARGET ;; esac
    echo "$n"
}

# bench_ready [SASL [ARG]]: one login per frontend through the generator, retried until the
# server answers (a frontend listens before its link to the router is up).
bench_ready() {
    local ports=${SERVER_PORT//[^,]/}
    for _ in $(seq 1 50); do
        if "$LOADGEN" --scenario login -n $((${#ports} + 1)) --port "$SERVER_PORT" \
            --domain "$DOMAIN" --sasl "${1:-scram-sha-256}" "${@:2}" --pids "$SERVER_PIDS" \
            > "$WORK/ready.out" 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    bench_log "$LABEL does not accept a login:"
    cat "$WORK/ready.out" >&2
    return 1
}

# bench_case NAME ARGS...: one generator run; its RESULT lines go to $RESULTS tagged with
# the case name. A run that prints none is recorded as failed, and the suite goes on.
bench_case() {
    local name=$1 rc
    shift
    bench_log "$LABEL: $name"
    set +e
    timeout -k 5 "$STEP_TIMEOUT" "$LOADGEN" --label "$LABEL" --domain "$DOMAIN" \
        --pids "$SERVER_PIDS" "$@" > "$WORK/$LABEL-$name.out" 2>&1
    rc=$?
    set -e
    sed 's/^/    /' "$WORK/$LABEL-$name.out"
    if grep -q '^RESULT ' "$WORK/$LABEL-$name.out"; then
        grep '^RESULT ' "$WORK/$LABEL-$name.out" | sed "s/^RESULT /RESULT case=$name /" >> "$RESULTS"
    else
        echo "RESULT case=$name server=$LABEL status=failed rc=$rc" >> "$RESULTS"
    fi
}

# The cases, each against freshly started server processes so that memory and CPU figures
# do not carry over from the case before.
bench_suite() {
    local c
    for c in $CASES; do
        case $c in
        sm-resume | msg-mam | mam-query | upload | router-rate | router-ceiling | router-offline | router-sessions | scale100k)
            # Router memory per waiting session, what our archive costs, our upload
            # process, the router fed over its link (no clients), 100,000 sessions over
            # several frontends: only ours.
            if [ "$LABEL" != ours ]; then
                echo "RESULT case=$c server=$LABEL status=skipped" >> "$RESULTS"
                continue
            fi
            local variant=tls-mam
            case $c in sm-resume | router-*) variant=tls ;; esac
            [ "$c" = upload ] && variant=tls-upload
            [ "$c" = scale100k ] && variant=tls-scale100k
            server_start "$variant" || { echo "RESULT case=$c server=$LABEL status=failed reason=start" >> "$RESULTS"; continue; }
            bench_ready || { echo "RESULT case=$c server=$LABEL status=failed reason=no-login" >> "$RESULTS"; server_stop; continue; }
            ;;
        login-scram | login-plain | idle | msg | msg-each | msg-sm | presence | pep | muc | scale)
            local v=tls
            [ "$c" = muc ] && v=tls2
            server_start "$v" || { echo "RESULT case=$c server=$LABEL status=failed reason=start" >> "$RESULTS"; continue; }
            if ! bench_ready; then
                echo "RESULT case=$c server=$LABEL status=failed reason=no-login" >> "$RESULTS"
                server_stop
                continue
            fi
            ;;
        login-wss | idle-wss | msg-ws)
            server_start tls || { echo "RESULT case=$c server=$LABEL status=failed reason=start" >> "$RESULTS"; continue; }
            if [ -z "${SERVER_WSS_PORT:-}" ]; then
                bench_log "$LABEL: $c skipped (no WebSocket listener)"
                echo "RESULT case=$c server=$LABEL status=skipped" >> "$RESULTS"
                server_stop
                continue
            fi
            if ! bench_ready; then
                echo "RESULT case=$c server=$LABEL status=failed reason=no-login" >> "$RESULTS"
                server_stop
                continue
            fi
            ;;
        login-notls)
            server_start notls || { echo "RESULT case=$c server=$LABEL status=failed reason=start" >> "$RESULTS"; continue; }
            if [ "$SERVER_NOTLS" != 1 ]; then
                bench_log "$LABEL: $c skipped (no plaintext logins)"
                echo "RESULT case=$c server=$LABEL status=skipped" >> "$RESULTS"
                server_stop
                continue
            fi
            bench_ready scram-sha-256 --no-tls || { server_stop; continue; }
            ;;
        *)
            bench_log "unknown case $c"
            continue
            ;;
        esac
        if declare -F bench_case_before > /dev/null; then bench_case_before "$c"; fi
        case $c in
        login-scram) bench_case "$c" --scenario login -n "$LOGIN_N" --sasl scram-sha-256 --port "$SERVER_PORT" ;;
        login-plain) bench_case "$c" --scenario login -n "$LOGIN_N" --sasl plain --port "$SERVER_PORT" ;;
        login-notls) bench_case "$c" --scenario login -n "$LOGIN_N" --sasl scram-sha-256 --no-tls --port "$SERVER_PORT" ;;
        idle) bench_case "$c" --scenario idle -n "$IDLE_N" --port "$SERVER_PORT" ;;
        # XMPP over WebSocket with TLS (wss: TLS from the first byte, HTTP upgrade, RFC 7395
        # framing); msg-ws: the first half of the clients (one end of every pair) on wss, the
        # other on STARTTLS TCP.
        login-wss) bench_case "$c" --scenario login -n "$LOGIN_N" --sasl scram-sha-256 --port "$SERVER_PORT" \
            --ws-port "$SERVER_WSS_PORT" --ws-path "${SERVER_WS_PATH:-/xmpp-websocket}" --wss ;;
        idle-wss) bench_case "$c" --scenario idle -n "$IDLE_N" --port "$SERVER_PORT" \
            --ws-port "$SERVER_WSS_PORT" --ws-path "${SERVER_WS_PATH:-/xmpp-websocket}" --wss ;;
        msg-ws) bench_case "$c" --scenario msg --pairs "$PAIRS" --window "$WINDOW" --duration "$DURATION" \
            --rate "$MSG_RATE" --port "$SERVER_PORT" --ws-port "$SERVER_WSS_PORT" \
            --ws-path "${SERVER_WS_PATH:-/xmpp-websocket}" --wss --ws-share 0.5 ;;
        msg) bench_case "$c" --scenario msg --pairs "$PAIRS" --window "$WINDOW" --duration "$DURATION" --rate "$MSG_RATE" --port "$SERVER_PORT" ;;
        # msg-each: the same with every stanza in its own write (one TLS record each), as
        # interactive clients send; msg lets the generator batch what one client queued in a
        # loop pass into one write.
        msg-each) bench_case "$c" --scenario msg --write-each --pairs "$PAIRS" --window "$WINDOW" --duration "$DURATION" --rate "$MSG_RATE" --port "$SERVER_PORT" ;;
        msg-mam) bench_case "$c" --scenario msg --pairs "$PAIRS" --window "$WINDOW" --duration "$DURATION" --rate "$MSG_RATE" --port "$SERVER_PORT" ;;
        mam-query) bench_mam_query ;;
        upload) bench_upload ;;
        router-rate) bench_router_link "$c" "$ROUTER_RATE" ;;
        router-ceiling) bench_router_link "$c" 0 ;;
        router-offline) bench_router_offline ;;
        router-sessions) bench_router_sessions ;;
        scale100k) bench_scale100k ;;
        msg-sm) bench_case "$c" --scenario msg --sm --pairs "$PAIRS" --window "$WINDOW" --duration "$DURATION" --rate "$MSG_RATE" --port "$SERVER_PORT" ;;
        sm-resume) bench_case "$c" --scenario sm-resume -n "$SM_N" --port "$SERVER_PORT" ;;
        presence) bench_case "$c" --scenario presence --presence-users "$PRES_USERS" --contacts "$CONTACTS" --port "$SERVER_PORT" ;;
        pep) bench_case "$c" --scenario pep --presence-users "$PRES_USERS" --contacts "$CONTACTS" --port "$SERVER_PORT" ;;
        muc) bench_case "$c" --scenario muc --rooms "$MUC_ROOMS" --occupants "$MUC_OCCUPANTS" --changes "$MUC_MESSAGES" --presence-inflight 8 --port "$SERVER_PORT" ;;
        scale) bench_case "$c" --scenario scale --scale-target "$SCALE_TARGET" --port "$SERVER_PORT" ;;
        esac
        if declare -F bench_case_after > /dev/null; then bench_case_after "$c"; fi
        server_stop
    done
}

# bench_table FILE...: one column per results file (one server each); the first is ours and
# the others get a ratio column "theirs / ours".
bench_table() {
    awk -f "$(dirname "${BASH_SOURCE[0]}")/table.awk" "$@"
}
