# Prometheus for the compose stack (Debian's prometheus package, built locally like the
# other images; no image registry is needed). It scrapes the router and every c2s replica
# (deploy/prometheus.yml), found through the compose DNS names.
#   docker build --network host -f deploy/prometheus.Dockerfile -t xmpp-server/prometheus .
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /prometheus && chown prometheus:prometheus /prometheus
COPY deploy/prometheus.yml /etc/prometheus/prometheus.yml
USER prometheus
VOLUME ["/prometheus"]
EXPOSE 9090
CMD ["/usr/bin/prometheus", "--config.file=/etc/prometheus/prometheus.yml", \
     "--storage.tsdb.path=/prometheus", "--storage.tsdb.retention.time=15d", \
     "--web.listen-address=0.0.0.0:9090"]
