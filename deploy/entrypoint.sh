#!/bin/sh
# Entry point of the server image. For the frontend: when no certificate is configured, use
# /certs/cert.pem and /certs/key.pem (a volume), making a self-signed ECDSA P-256 one for
# XMPP_DOMAIN on first start (under a lock: replicas share the volume). The private key is
# left readable by the group of XMPP_USER (xmpp), so that a frontend that has dropped to that
# user can reload it on SIGHUP. For the router: when XMPP_TURN_SECRET_FILE names a file that
# is missing or empty (a new volume shared with coturn), makes the secret it shares with
# coturn there (under a lock: coturn's entrypoint may be making it too). Then runs the
# command (which drops privileges itself).
set -eu
case "${1:-}" in
session-router)
    f=${XMPP_TURN_SECRET_FILE:-}
    if [ -n "$f" ] && [ ! -s "$f" ]; then
        (
            flock 9
            if [ ! -s "$f" ]; then
                umask 077
                head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$f.new"
                echo >>"$f.new"
                mv "$f.new" "$f"
                echo "entrypoint: made a new TURN secret in $f" >&2
            fi
        ) 9>"$(dirname "$f")/.lock"
    fi
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
                        -days 825 -subj "/CN=$d" -addext "subjectAltName=DNS:$d" \
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
    ;;
esac
exec "$@"
