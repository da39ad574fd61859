#!/bin/sh
# Entry point of the coturn image (deploy/coturn/Dockerfile). Makes the secret shared with
# the router on first start when the volume holds none (under a lock: the router's
# entrypoint may be making it at the same time), then writes a private copy of
# /etc/coturn/turnserver.conf with what depends on the deployment:
#   realm            XMPP_DOMAIN (default localhost)
#   static-auth-secret  the first line of TURN_SECRET_FILE (default /turn/secret) that is
#                    neither empty nor a '#' comment: the router's turn_secret_file
#   allowed-peer-ip  this container's own addresses: two clients of this server, both
#                    relayed, reach each other's relay (every other private range is refused)
#   external-ip      TURN_EXTERNAL_IP when set (the public address in front of the relay)
# and runs turnserver with it, dropping to the user turnserver once its ports are bound.
set -eu
SECRET_FILE=${TURN_SECRET_FILE:-/turn/secret}
if [ ! -s "$SECRET_FILE" ]; then
    (
        flock 9
        if [ ! -s "$SECRET_FILE" ]; then
            umask 077
            head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$SECRET_FILE.new"
            echo >>"$SECRET_FILE.new"
            mv "$SECRET_FILE.new" "$SECRET_FILE"
            echo "coturn-entrypoint: made a new shared secret in $SECRET_FILE" >&2
        fi
    ) 9>"$(dirname "$SECRET_FILE")/.lock"
fi
secret=$(sed -n '/^[[:space:]]*#/d; /^[[:space:]]*$/d; s/^[[:space:]]*//; s/[[:space:]]*$//; p; q' "$SECRET_FILE")
[ -n "$secret" ] || { echo "coturn-entrypoint: $SECRET_FILE holds no secret" >&2; exit 1; }
umask 077
conf=/run/coturn/turnserver.conf
{
    cat /etc/coturn/turnserver.conf
    echo "realm=${XMPP_DOMAIN:-localhost}"
    echo "static-auth-secret=$secret"
    for ip in $(hostname -i); do echo "allowed-peer-ip=$ip"; done
    if [ -n "${TURN_EXTERNAL_IP:-}" ]; then echo "external-ip=$TURN_EXTERNAL_IP"; fi
} >"$conf"
exec turnserver -c "$conf" --pidfile=/run/coturn/turnserver.pid \
    --proc-user=turnserver --proc-group=turnserver "$@"
