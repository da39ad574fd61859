#!/bin/bash
# bench/peers.sh: the same generator cases as `make bench`, against ejabberd and Prosody from
# Debian packages, each as a private instance (own config, data directory, certificate and
# loopback ports; never the system service), then our figures beside theirs with the ratio.
#
# usage: bench/peers.sh [--build DIR] [--reuse-ours] [--peers "ejabberd prosody"]
#                       [--no-install] [run.sh size options: --login-n N --idle-n N
#                       --pairs P --window W --duration T --rate R --contacts K
#                       --presence-users U --scale-target N --cases "..."] [--keep]
#
# Installing the packages needs root (apt-get). If the install starts their system services,
# they are stopped and disabled again; services that were running before are left alone.
# A peer that cannot be run here is reported with the reason, and the others go on.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

BUILD=build
REUSE=0
INSTALL=1
KEEP=0
PEERS="ejabberd prosody"
SIZE_ARGS=()
while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$2; shift 2 ;;
    --reuse-ours) REUSE=1; shift ;;
    --peers) PEERS=$2; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --keep) KEEP=1; shift ;;
    --login-n) LOGIN_N=$2; SIZE_ARGS+=("$1" "$2"); shift 2 ;;
    --idle-n) IDLE_N=$2; SIZE_ARGS+=("$1" "$2"); shift 2 ;;
    --pairs) PAIRS=$2; SIZE_ARGS+=("$1" "$2"); shift 2 ;;
    --window) WINDOW=$2; SIZE_ARGS+=("$1" "$2"); shift 2 ;;
    --duration) DURATION=$2; SIZE_ARGS+=("$1" "$2"); shift 2 ;;
    --rate) MSG_RATE=$2; SIZE_ARGS+=("$1" "$2"); shift 2 ;;
    --contacts) CONTACTS=$2; SIZE_ARGS+=("$1" "$2"); shift 2 ;;
    --presence-users) PRES_USERS=$2; SIZE_ARGS+=("$1" "$2"); shift 2 ;;
    --scale-target) SCALE_TARGET=$2; SIZE_ARGS+=("$1" "$2"); shift 2 ;;
    --cases) CASES=$2; SIZE_ARGS+=("$1" "$2"); shift 2 ;;
    *) echo "usage: see the head of $0" >&2; exit 2 ;;
    esac
done

LOADGEN=$BUILD/loadgen
DOMAIN=localhost
PASSWORD=benchpass
STEP_TIMEOUT=$((300 + SCALE_TARGET / 50))
mkdir -p "$BUILD/bench"
OURS=$BUILD/bench/results-ours.txt

# ---- our figures: the same cases through run.sh ----
if [ "$REUSE" = 1 ] && [ -s "$OURS" ]; then
    bench_log "using our figures from $OURS"
else
    bench/run.sh --build "$BUILD" "${SIZE_ARGS[@]}"
fi
[ -x "$LOADGEN" ] || { echo "peers.sh: $LOADGEN is missing; run make bench first" >&2; exit 1; }

# ---- packages ----
ej_running() { bench_running beam.smp; }
pr_running() { bench_running lua5.4 /usr/bin/prosody || bench_running lua5.3 /usr/bin/prosody; }

install_peers() {
    local want="" p
    for p in $PEERS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || want="$want $p"
    done
    [ -z "$want" ] && return 0
    if [ "$INSTALL" = 0 ] || [ "$(id -u)" != 0 ]; then
        bench_log "not installed:$want (installing needs root and no --no-install)"
        return 0
    fi
    local was_ej=0 was_pr=0 guard=0
    ej_running && was_ej=1
    pr_running && was_pr=1
    # Keep the packages from starting their services (Debian's policy-rc.d protocol), if no
    # policy is in place already.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        guard=1
    fi
    bench_log "installing:$want"
    set +e
    apt-get update -qq
    # shellcheck disable=SC2086 # $want is a list of package names
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $want
    local rc=$?
    set -e
    [ "$guard" = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ "$rc" = 0 ] || bench_log "apt-get install failed ($rc)"
    # If the install started the system services anyway, stop and disable them.
    if [ "$was_ej" = 0 ] && ej_running; then
        service ejabberd stop > /dev/null 2>&1 || true
        { systemctl disable ejabberd || update-rc.d ejabberd disable; } > /dev/null 2>&1 || true
    fi
    if [ "$was_pr" = 0 ] && pr_running; then
        service prosody stop > /dev/null 2>&1 || true
        { systemctl disable prosody || update-rc.d prosody disable; } > /dev/null 2>&1 || true
    fi
}
install_peers

bench_raise_nofile
NACCT=$(bench_accounts_needed)
PW=$(mktemp -d /tmp/xmpp-peers.XXXXXX)
chmod 755 "$PW" # the peers run as their own users and must reach their directories
WORK=$PW
PEER_STOP=""
cleanup() {
    trap - EXIT INT TERM
    [ -n "$PEER_STOP" ] && $PEER_STOP
    if [ "$KEEP" = 1 ]; then
        echo "peers.sh: logs kept in $PW" >&2
    else
        rm -rf "$PW"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bench_cert "$PW"

# as_user USER SECONDS CMD...: runs a command as a service user, bounded in time, keeping our
# raised descriptor limit (su would reset it through pam_limits), without a login environment.
as_user() {
    local u=$1 t=$2
    shift 2
    (cd "$PW" && timeout -k 5 "$t" setpriv --reuid="$u" --regid="$u" --init-groups --reset-env "$@")
}

unavailable() { # PEER REASON
    bench_log "$1 cannot be run here: $2"
    local c
    for c in $CASES; do
        echo "RESULT case=$c server=$1 status=unavailable" >> "$RESULTS"
    done
}

# ---- ejabberd ----
EJ=$PW/ejabberd
EJ_TIMEOUT=60
ejctl() {
    as_user ejabberd "$EJ_TIMEOUT" /usr/sbin/ejabberdctl --config-dir "$EJ" --spool "$EJ/db" \
        --logs "$EJ/log" "$@"
}

ej_setup() {
    mkdir -p "$EJ/db" "$EJ/log"
    cp "$PW/combined.pem" "$EJ/"
    cp /etc/ejabberd/inetrc "$EJ/" 2> /dev/null || echo '{lookup,["file","native"]}.' > "$EJ/inetrc"
    bench_pick_port EJ_PORT
    bench_pick_port EJ_NOTLS_PORT
    bench_pick_port EJ_DIST_PORT
    bench_pick_port EJ_WSS_PORT
    # Same limits as ours: backlog 1024 (ejabberd's default of 5 drops SYNs under a login
    # burst), no shaper, 256 KiB stanzas; SCRAM-SHA-256 credentials (4096 iterations).
    cat > "$EJ/ejabberd.yml" <<EOF
hosts:
  - $DOMAIN
loglevel: warning
certfiles:
  - $EJ/combined.pem
listen:
  -
    port: $EJ_PORT
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls_required: true
    max_stanza_size: 262144
    backlog: 1024
  -
    port: $EJ_NOTLS_PORT
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls: true
    max_stanza_size: 262144
    backlog: 1024
  -
    port: $EJ_WSS_PORT
    ip: "127.0.0.1"
    module: ejabberd_http
    tls: true
    backlog: 1024
    request_handlers:
      "/xmpp-websocket": ejabberd_http_ws
auth_method: internal
auth_password_format: scram
auth_scram_hash: sha256
modules:
  mod_roster: {}
  mod_disco: {}
  mod_ping: {}
  mod_muc:
    host: "conference.@HOST@"
    history_size: 20
    max_users: 200
EOF
    # No epmd (a fixed distribution port instead), a private cookie (nothing written to the
    # ejabberd user's home), and no scheduler busy-waiting: on 2 cores shared with the
    # generator, spinning schedulers would be charged to ejabberd as CPU it did not need.
    cat > "$EJ/ejabberdctl.cfg" <<EOF
ERLANG_NODE=ejabberd_bench@localhost
ERL_DIST_PORT=$EJ_DIST_PORT
INET_DIST_INTERFACE=127.0.0.1
ERL_MAX_PORTS=$((2 * SCALE_TARGET + 65536))
ERL_PROCESSES=$((10 * SCALE_TARGET + 250000))
ERL_OPTIONS="+sbwt none +sbwtdcpu none +sbwtdio none -setcookie bench$RANDOM$RANDOM -env ERL_CRASH_DUMP_BYTES 0"
EJABBERD_CONFIG_PATH=$EJ/ejabberd.yml
EJABBERD_PID_PATH=$EJ/ejabberd.pid
EJABBERD_BYPASS_WARNINGS=true
EOF
    chown -R ejabberd:ejabberd "$EJ"
}

ej_pids() { # the VM and its helper children
    local kids
    kids=$(bench_children "$1")
    echo "$1${kids:+,$kids}"
}

ej_start() {
    rm -f "$EJ/ejabberd.pid"
    { ejctl start && ejctl started; } >> "$EJ/log/ctl.log" 2>&1 ||
        { bench_log "ejabberd did not start (see $EJ/log)"; return 1; }
    local vm
    vm=$(cat "$EJ/ejabberd.pid" 2> /dev/null) || return 1
    SERVER_PIDS=$(ej_pids "$vm")
    SERVER_PORT=$EJ_PORT
    SERVER_WSS_PORT=$EJ_WSS_PORT
    SERVER_WS_PATH=/xmpp-websocket
    SERVER_NOTLS=0
    if [ "$1" = notls ]; then
        SERVER_PORT=$EJ_NOTLS_PORT
        SERVER_NOTLS=1
    fi
    bench_wait_port "$SERVER_PORT" 30 "$vm" && bench_wait_port "$EJ_WSS_PORT" 30 "$vm"
}

ej_stop() {
    local vm
    vm=$(cat "$EJ/ejabberd.pid" 2> /dev/null) || return 0
    kill -0 "$vm" 2> /dev/null || return 0
    { ejctl stop && ejctl stopped; } >> "$EJ/log/ctl.log" 2>&1 || true
    bench_stop "$vm" # not our child: this only bounds the wait and kills a VM that hangs
    rm -f "$EJ/ejabberd.pid"
}

ej_accounts() {
    # ejabberd's own bulk import (XEP-0227): it derives SCRAM credentials for each account.
    {
        echo "<?xml version='1.0' encoding='UTF-8'?><server-data xmlns='urn:xmpp:pie:0'><host jid='$DOMAIN'>"
        awk -v n="$NACCT" -v pw="$PASSWORD" 'BEGIN { for (i = 0; i < n; i++) printf "<user name=\"lg%d\" password=\"%s\"/>\n", i, pw }'
        echo "</host></server-data>"
    } > "$EJ/users.xml"
    chown ejabberd:ejabberd "$EJ/users.xml"
    bench_log "ejabberd: importing $NACCT accounts"
    EJ_TIMEOUT=$((120 + NACCT / 20)) ejctl --no-timeout import_piefxis "$EJ/users.xml" >> "$EJ/log/ctl.log" 2>&1 ||
        return 1
    local got
    got=$(ejctl registered_users "$DOMAIN" 2> /dev/null | wc -l)
    [ "$got" -ge "$NACCT" ] || { bench_log "ejabberd has $got of $NACCT accounts"; return 1; }
}

run_ejabberd() {
    LABEL=ejabberd
    RESULTS=$BUILD/bench/results-ejabberd.txt
    : > "$RESULTS"
    [ -x /usr/sbin/ejabberdctl ] || { unavailable ejabberd "the ejabberd package is not installed"; return; }
    command -v setpriv > /dev/null || { unavailable ejabberd "setpriv (util-linux) is missing"; return; }
    ej_setup
    server_start() { ej_start "$1"; }
    server_stop() { ej_stop; }
    PEER_STOP=ej_stop
    if ! ej_start tls || ! ej_accounts; then
        ej_stop
        unavailable ejabberd "it did not start or import accounts (logs: $EJ/log)"
        return
    fi
    ej_stop
    bench_suite
    PEER_STOP=""
}

# ---- Prosody ----
PR=$PW/prosody
PR_PID=""

pr_setup() {
    mkdir -p "$PR/data" "$PR/certs"
    cp "$PW/cert.pem" "$PW/key.pem" "$PR/"
    bench_pick_port PR_PORT
    bench_pick_port PR_HTTP_PORT
    bench_pick_port PR_WSS_PORT
    # epoll backend, backlog 1024, no s2s, no offline storage (we have none either);
    # encryption not required so the no-TLS case can run, PLAIN only under TLS; SCRAM-SHA-256
    # credentials with our iteration count. XMPP over WebSocket (mod_websocket) on the https
    # port (the global certificate); the plain http port only so that the default 5280 is
    # not taken.
    cat > "$PR/prosody.cfg.lua" <<EOF
pidfile = "$PR/prosody.pid"
data_path = "$PR/data"
certificates = "$PR/certs"
log = { { levels = { min = "warn" }, to = "file", filename = "$PR/prosody.log" } }
network_backend = "epoll"
network_settings = { tcp_backlog = 1024 }
interfaces = { "127.0.0.1" }
c2s_ports = { $PR_PORT }
c2s_interfaces = { "127.0.0.1" }
modules_enabled = { "roster", "saslauth", "tls", "disco", "ping", "websocket" }
http_ports = { $PR_HTTP_PORT }
http_interfaces = { "127.0.0.1" }
https_ports = { $PR_WSS_PORT }
https_interfaces = { "127.0.0.1" }
modules_disabled = { "s2s", "s2s_auth_certs", "offline" }
c2s_require_encryption = false
allow_unencrypted_plain_auth = false
authentication = "internal_hashed"
password_hash = "SHA-256"
default_iteration_count = 4096
storage = "internal"
ssl = { certificate = "$PR/cert.pem", key = "$PR/key.pem" }
VirtualHost "$DOMAIN"
Component "conference.$DOMAIN" "muc"
    max_history_messages = 20
EOF
    chown -R prosody:prosody "$PR"
}

pr_start() {
    (cd "$PW" && exec setpriv --reuid=prosody --regid=prosody --init-groups --reset-env \
        /usr/bin/prosody --config "$PR/prosody.cfg.lua" -F) > "$PR/stdout.log" 2>&1 &
    PR_PID=$!
    SERVER_PIDS=$PR_PID
    SERVER_PORT=$PR_PORT
    SERVER_WSS_PORT=$PR_WSS_PORT
    SERVER_WS_PATH=/xmpp-websocket
    SERVER_NOTLS=0
    [ "$1" = notls ] && SERVER_NOTLS=1
    bench_wait_port "$PR_PORT" 30 "$PR_PID" && bench_wait_port "$PR_WSS_PORT" 30 "$PR_PID"
}

pr_stop() {
    [ -n "$PR_PID" ] || return 0
    # Prosody 0.12.3 can hang in its own shutdown with thousands of sessions (an error in
    # mod_c2s while closing them): bench_stop kills it after 15 s.
    bench_stop "$PR_PID"
    PR_PID=""
}

pr_accounts() {
    # One account through prosodyctl; its stored credentials copied to the others (same
    # password and salt, as for ours).
    as_user prosody 60 /usr/bin/prosodyctl --config "$PR/prosody.cfg.lua" register lg0 "$DOMAIN" \
        "$PASSWORD" > "$PR/register.log" 2>&1 || return 1
    local dir=$PR/data/$DOMAIN/accounts
    [ -s "$dir/lg0.dat" ] || return 1
    awk -v n="$NACCT" -v dir="$dir" 'BEGIN {
        while ((getline l < (dir "/lg0.dat")) > 0) c = c l "\n"
        for (i = 1; i < n; i++) { f = dir "/lg" i ".dat"; printf "%s", c > f; close(f) }
    }'
    chown -R prosody:prosody "$dir"
}

run_prosody() {
    LABEL=prosody
    RESULTS=$BUILD/bench/results-prosody.txt
    : > "$RESULTS"
    [ -x /usr/bin/prosody ] || { unavailable prosody "the prosody package is not installed"; return; }
    command -v setpriv > /dev/null || { unavailable prosody "setpriv (util-linux) is missing"; return; }
    pr_setup
    if ! pr_accounts; then
        unavailable prosody "prosodyctl could not register an account (see $PR/register.log)"
        return
    fi
    server_start() { pr_start "$1"; }
    server_stop() { pr_stop; }
    PEER_STOP=pr_stop
    bench_suite
    PEER_STOP=""
}

FILES=("$OURS")
for p in $PEERS; do
    case $p in
    ejabberd) run_ejabberd ;;
    prosody) run_prosody ;;
    *) bench_log "unknown peer $p"; continue ;;
    esac
    FILES+=("$BUILD/bench/results-$p.txt")
done

echo
echo "Side by side (same generator, same machine; 'x ours' = theirs / ours):"
echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
bench_table "${FILES[@]}"
