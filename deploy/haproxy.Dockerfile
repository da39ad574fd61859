# HAProxy for the compose stack with deploy/haproxy.cfg (Debian's haproxy).
#   docker build --network host -f deploy/haproxy.Dockerfile -t xmpp-server/haproxy .
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends haproxy \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/haproxy.cfg /etc/haproxy/haproxy.cfg
USER haproxy
EXPOSE 5222 5223 8404
ENV LB_STARTTLS=:5222 LB_DIRECTTLS=:5223 LB_HEALTH=:8404 XMPP_DOMAIN=localhost
CMD ["haproxy", "-db", "-f", "/etc/haproxy/haproxy.cfg"]
