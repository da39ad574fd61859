# Redis for the compose stack (Debian's redis-server; no image registry is needed).
#   docker build --network host -f deploy/redis.Dockerfile -t xmpp-server/redis .
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
USER redis
VOLUME ["/data"]
EXPOSE 6379
# Append-only file fsync'd before each write is acknowledged: what Redis acknowledged
# survives a crash (DESIGN.md, "Redis data model").
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data", \
     "--appendonly", "yes", "--appendfsync", "always", "--save", ""]
