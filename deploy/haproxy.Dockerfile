# HAProxy for the compose stack with deploy/haproxy.cfg (Debian's haproxy).
#   docker build --network host -f deploy/haproxy.Dockerfile -t xmpp-server/haproxy .
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends haproxy \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/haproxy.cfg /etc/haproxy/haproxy.cfg
EXPOSE 5222 5223 5443 8404
ENV LB_STARTTLS=:5222 LB_DIRECTTLS=:5223 LB_HEALTH=:8404 XMPP_DOMAIN=localhost \
    LB_UPLOAD=:5443 LB_UPLOAD_PEM=/run/haproxy-tls/upload.pem
# Starts as root only to join the frontends' certificate and key (the certs volume, key
# readable by root) into the one PEM file HAProxy takes for the upload port, then runs
# HAProxy as the haproxy user.
CMD ["sh", "-c", "set -e; mkdir -p /run/haproxy-tls; umask 077; cat /certs/cert.pem /certs/key.pem > \"$LB_UPLOAD_PEM\"; chown -R haproxy: /run/haproxy-tls; exec setpriv --reuid haproxy --regid haproxy --init-groups haproxy -db -f /etc/haproxy/haproxy.cfg"]
