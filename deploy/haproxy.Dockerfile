# HAProxy for the compose stack with deploy/haproxy.cfg (Debian's haproxy).
#   docker build --network host -f deploy/haproxy.Dockerfile -t xmpp-server/haproxy .
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends haproxy \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/haproxy.cfg /etc/haproxy/haproxy.cfg
EXPOSE 5222 5223 5269 5270 5443 5281 8404
ENV LB_STARTTLS=:5222 LB_DIRECTTLS=:5223 LB_HEALTH=:8404 XMPP_DOMAIN=localhost \
    LB_S2S=:5269 LB_S2S_TLS=:5270 \
    LB_UPLOAD=:5443 LB_UPLOAD_PEM=/run/haproxy-tls/server.pem \
    LB_WEBSOCKET=:5281 LB_WEBSOCKET_PEM=/run/haproxy-tls/server.pem
# Starts as root only to join the frontends' certificate and key (the certs volume, key
# readable by root) into the PEM file HAProxy takes for the upload and WebSocket ports (one
# file unless LB_UPLOAD_PEM and LB_WEBSOCKET_PEM are set apart), then runs HAProxy as the
# haproxy user.
CMD ["sh", "-c", "set -e; mkdir -p /run/haproxy-tls; umask 077; for f in \"$LB_UPLOAD_PEM\" \"$LB_WEBSOCKET_PEM\"; do cat /certs/cert.pem /certs/key.pem > \"$f\"; done; chown -R haproxy: /run/haproxy-tls; exec setpriv --reuid haproxy --regid haproxy --init-groups haproxy -db -f /etc/haproxy/haproxy.cfg"]
