#!/bin/sh
# Entry point of the server image. For the frontend: when no certificate is configured, use
# /certs/cert.pem and /certs/key.pem (a volume), making a self-signed ECDSA P-256 one for
# XMPP_DOMAIN and its service subdomains conference. and upload. (names other servers check
# in federation) on first start (under a lock: replicas share the volume). The private key is
# left readable by the group of XMPP_USER (xmpp), so that a frontend that has dropped to that
# user can reload it on SIGHUP. For the router: when XMPP_TURN_SECRET_FILE names a file that
# is missing or empty (a new volume shared with coturn), makes the secret it shares with
# coturn there. For the router and the upload process: when upload_url is set and no upload
# secret is configured, both use /secrets/upload.secret (a volume they share), made on first
# start. For a frontend that serves other servers (XMPP_S2S_LISTEN set) without
# XMPP_S2S_DIALBACK_SECRET: the secret its Server Dialback keys are made from, the same for
# every s2s replica (a remote server may ask any of them to verify a key another one made),
# kept in /secrets/dialback.secret (a volume they share), made on first start. Secrets are made under a lock (another container may be making the same one). Then
# runs the command (which drops privileges itself).
set -eu
# make_secret FILE WHAT: 32 random bytes as hex in FILE unless it holds one already, readable
# by the group of XMPP_USER (the process drops to it).
make_secret() {
    (
        flock 9
        if [ ! -s "$1" ]; then
            (umask 077; openssl rand -hex 32 >"$1.new")
            if [ "$(id -u)" = 0 ] && [ -n "${XMPP_USER:-}" ]; then
                chown "root:$(id -gn "$XMPP_USER")" "$1.new"
                chmod 640 "$1.new"
            fi
            mv "$1.new" "$1"
            echo "entrypoint: made the $2 in $1" >&2
        fi
    ) 9>"$(dirname "$1")/.lock"
}

upload_secret() {
    if [ -n "${XMPP_UPLOAD_URL:-}" ] && [ -z "${XMPP_UPLOAD_SECRET:-}" ] &&
        [ -z "${XMPP_UPLOAD_SECRET_FILE:-}" ] && [ -d /secrets ]; then
        export XMPP_UPLOAD_SECRET_FILE=/secrets/upload.secret
        make_secret /secrets/upload.secret "upload signing secret"
    fi
}

case "${1:-}" in
session-router)
    if [ -n "${XMPP_TURN_SECRET_FILE:-}" ]; then
        make_secret "$XMPP_TURN_SECRET_FILE" "TURN secret"
    fi
    upload_secret
    ;;
upload-server)
    upload_secret
    ;;
c2s-frontend)
    if [ -z "${XMPP_TLS_CERT:-}" ]; then
        export XMPP_TLS_CERT=/certs/cert.pem XMPP_TLS_KEY=/certs/key.pem
        if [ ! -s /certs/cert.pem ]; then
            (
                flock 9
                if [ ! -s /certs/cert.pem ]; then
                    d=${XMPP_DOMAIN:-localhost}
                    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
                        -days 825 -subj "/CN=$d" -addext "subjectAltName=DNS:$d,DNS:conference.$d,DNS:upload.$d" \
                        -keyout /certs/key.pem.new -out /certs/cert.pem.new 2>/dev/null
                    if [ "$(id -u)" = 0 ] && [ -n "${XMPP_USER:-}" ]; then
                        chown "root:$(id -gn "$XMPP_USER")" /certs/key.pem.new
                        chmod 640 /certs/key.pem.new
                    fi
                    chmod 644 /certs/cert.pem.new
                    mv /certs/key.pem.new /certs/key.pem
                    mv /certs/cert.pem.new /certs/cert.pem
                    echo "entrypoint: made a self-signed certificate for $d in /certs" >&2
                fi
            ) 9>/certs/.lock
        fi
    fi
    if [ -n "${XMPP_S2S_LISTEN:-}" ] && [ -z "${XMPP_S2S_DIALBACK_SECRET:-}" ] && [ -d /secrets ]; then
        make_secret /secrets/dialback.secret "dialback secret"
        XMPP_S2S_DIALBACK_SECRET=$(cat /secrets/dialback.secret)
        export XMPP_S2S_DIALBACK_SECRET
    fi
    ;;
esac
exec "$@"
