#!/bin/sh
# Starts a complete server for the domain localhost in the foreground: a private
# redis-server, the session-router and one c2s-frontend listening on 5222, with a
# self-signed ECDSA P-256 certificate made on first start. Everything lives in run/.
# Ctrl-C stops all of it. Ports and paths can be changed with the XMPP_* variables
# (README.md, "Configuration"). Both processes serve Prometheus metrics (README.md,
# "Metrics"): the router on 127.0.0.1:9101, the frontend on 127.0.0.1:9102
# (ROUTER_METRICS and FRONTEND_METRICS change them; empty turns them off). The upload
# process (XEP-0363 HTTP File Upload) serves the files on 127.0.0.1:5290 (UPLOAD_PORT), its
# files in run/uploads, its signing secret in run/upload.secret. Browser clients connect over
# WebSocket (RFC 7395): ws://127.0.0.1:5280/xmpp-websocket and, with the certificate
# run/cert.pem, wss://localhost:5281/xmpp-websocket (WS_LISTEN and WSS_LISTEN change them
# when run/xmpp.conf is written; README.md, "Connecting a browser client"). The frontend also
# serves other servers (federation, README.md "Federation"): 127.0.0.1:5269 (STARTTLS) and
# 127.0.0.1:5270 (XEP-0368 direct TLS) with the same certificate (S2S_LISTEN and
# S2S_TLS_LISTEN change them when run/xmpp.conf is written; empty turns them off).
set -eu
BUILD=${1:-build}
RUN=${RUN_DIR:-run}
mkdir -p "$RUN"
REDIS_PORT=${XMPP_REDIS_PORT:-6390}
ROUTER_METRICS=${ROUTER_METRICS-127.0.0.1:9101}
FRONTEND_METRICS=${FRONTEND_METRICS-127.0.0.1:9102}
CONF="$RUN/xmpp.conf"
UPLOAD_PORT=${UPLOAD_PORT:-5290}
WS_LISTEN=${WS_LISTEN:-127.0.0.1:5280}
WSS_LISTEN=${WSS_LISTEN:-127.0.0.1:5281}
S2S_LISTEN=${S2S_LISTEN-127.0.0.1:5269}
S2S_TLS_LISTEN=${S2S_TLS_LISTEN-127.0.0.1:5270}

if [ ! -f "$RUN/cert.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
        -subj "/CN=localhost" \
        -addext "subjectAltName=DNS:localhost,DNS:conference.localhost,DNS:upload.localhost" \
        -keyout "$RUN/key.pem" -out "$RUN/cert.pem" 2>/dev/null
    echo "run-local: made a self-signed certificate $RUN/cert.pem for localhost"
fi
if [ ! -f "$RUN/upload.secret" ]; then
    (umask 077; openssl rand -hex 32 > "$RUN/upload.secret")
fi
if [ ! -f "$CONF" ]; then
    cat > "$CONF" <<CONF
# Made by 'make run'; every key is described in README.md.
domain = localhost
c2s_listen = 127.0.0.1:5222
tls_cert = $RUN/cert.pem
tls_key = $RUN/key.pem
router_endpoint = tcp://127.0.0.1:5555
router_bind = tcp://127.0.0.1:5555
redis_host = 127.0.0.1
redis_port = $REDIS_PORT
# anyone may register an account from a client (XEP-0077); a local test server
allow_registration = true
CONF
elif ! grep -q '^ *allow_registration' "$CONF"; then
    # a run/xmpp.conf from before in-band registration existed: the local server has it on
    echo "allow_registration = true" >> "$CONF"
fi
if ! grep -q '^ *upload_url' "$CONF"; then
    # HTTP File Upload (XEP-0363): slots from the router, files from upload-server
    cat >> "$CONF" <<CONF
upload_url = http://localhost:$UPLOAD_PORT/upload
upload_listen = 127.0.0.1:$UPLOAD_PORT
upload_dir = $RUN/uploads
upload_secret_file = $RUN/upload.secret
CONF
fi
if ! grep -q '^ *ws_listen' "$CONF"; then
    # WebSocket for browser clients (RFC 7395), discovery at /.well-known/host-meta (XEP-0156)
    cat >> "$CONF" <<CONF
ws_listen = $WS_LISTEN
wss_listen = $WSS_LISTEN
CONF
fi
if ! grep -q '^ *s2s_listen' "$CONF"; then
    # Federation (server-to-server, RFC 6120): other servers connect here; the same
    # frontend opens the outbound connections to them. The certificate above names
    # localhost only and is self-signed: another server accepts it only when told to trust
    # it (s2s_ca_file), README.md "Federation" has a worked example with two servers.
    cat >> "$CONF" <<CONF
s2s_listen = $S2S_LISTEN
s2s_tls_listen = ${S2S_LISTEN:+$S2S_TLS_LISTEN}
CONF
fi

conf_value() { sed -n "s/^ *$1 *= *//p" "$CONF" | tail -1; }

pids=""
cleanup() {
    trap - INT TERM EXIT
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$RUN" --appendonly yes \
    --save '' --daemonize no > "$RUN/redis.log" 2>&1 &
pids="$pids $!"
# One config file for both: metrics_listen differs, so it comes from the environment.
XMPP_METRICS_LISTEN="$ROUTER_METRICS" "$BUILD/session-router" -c "$CONF" &
pids="$pids $!"
XMPP_METRICS_LISTEN="$FRONTEND_METRICS" "$BUILD/c2s-frontend" -c "$CONF" &
pids="$pids $!"
"$BUILD/upload-server" -c "$CONF" &
pids="$pids $!"
cat <<MSG
run-local: server for localhost on ${XMPP_C2S_LISTEN:-127.0.0.1:5222} (STARTTLS required), Redis on $REDIS_PORT.
run-local: add accounts with:  $BUILD/xmppctl -c $CONF adduser alice@localhost
run-local: file upload (XEP-0363): slots on upload.localhost, files on $(sed -n 's/^ *upload_url *= *//p' "$CONF" | tail -1)
run-local: metrics: router http://${ROUTER_METRICS:-off}/metrics, frontend http://${FRONTEND_METRICS:-off}/metrics
run-local: (or register them from a client: allow_registration is on)
run-local: Ctrl-C stops everything.
MSG
S2S=$(conf_value s2s_listen)
S2S_TLS=$(conf_value s2s_tls_listen)
if [ -n "$S2S" ]; then
    echo "run-local: other servers (federation, README.md \"Federation\"): $S2S (STARTTLS)${S2S_TLS:+, $S2S_TLS (direct TLS)}"
fi
WS=$(conf_value ws_listen)
WSS=$(conf_value wss_listen)
if [ -n "$WS$WSS" ]; then
    echo "run-local: browser clients (WebSocket, RFC 7395; README.md, \"Connecting a browser client\"):"
    [ -z "$WS" ] || echo "run-local:   ws://$WS/xmpp-websocket  (discovery: http://$WS/.well-known/host-meta)"
    [ -z "$WSS" ] || echo "run-local:   wss://localhost:${WSS##*:}/xmpp-websocket  (the browser must trust $RUN/cert.pem)"
fi
wait
