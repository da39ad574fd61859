#!/bin/sh
# Entry point of the server image. For the frontend: when no certificate is configured, use
# /certs/cert.pem and /certs/key.pem (a volume), making a self-signed ECDSA P-256 one for
# XMPP_DOMAIN on first start (under a lock: replicas share the volume). The private key is
# left readable by the group of XMPP_USER (xmpp), so that a frontend that has dropped to that
# user can reload it on SIGHUP. For the router and the upload process: when upload_url is set
# and no upload secret is configured, both use /secrets/upload.secret (a volume they share),
# made on first start. Then runs the command (which drops privileges itself).
set -eu
case "${1:-}" in
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
session-router|upload-server)
    if [ -n "${XMPP_UPLOAD_URL:-}" ] && [ -z "${XMPP_UPLOAD_SECRET:-}" ] &&
        [ -z "${XMPP_UPLOAD_SECRET_FILE:-}" ] && [ -d /secrets ]; then
        export XMPP_UPLOAD_SECRET_FILE=/secrets/upload.secret
        (
            flock 9
            if [ ! -s /secrets/upload.secret ]; then
                (umask 077; openssl rand -hex 32 > /secrets/upload.secret.new)
                if [ "$(id -u)" = 0 ] && [ -n "${XMPP_USER:-}" ]; then
                    chown "root:$(id -gn "$XMPP_USER")" /secrets/upload.secret.new
                    chmod 640 /secrets/upload.secret.new
                fi
                mv /secrets/upload.secret.new /secrets/upload.secret
                echo "entrypoint: made the upload signing secret in /secrets" >&2
            fi
        ) 9>/secrets/.lock
    fi
    ;;
esac
exec "$@"
