# loyalsync as sellers run it. Build: docker build -t loyalsync .
# Run (SQLite in the /data volume; the tokens named in your config/marketplaces/*.toml as env vars):
#   docker run -d --name loyalsync -v loyalsync-data:/data -v "$PWD/config:/config:ro" \
#     -e LOYALSYNC_WB_MAIN_TOKEN=... loyalsync
# With PostgreSQL: compose.yaml. The install steps live in container/install.sh, which CI's
# container-equivalent check (tests/acceptance/test_container_equivalent.py) runs too.
FROM python:3.11-slim AS build
WORKDIR /src
# No pip cache in the image (CI's check runs the same script with its warm cache).
ENV PIP_NO_CACHE_DIR=1
COPY container/install.sh /usr/local/bin/loyalsync-install
# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY requirements.lock ./
RUN loyalsync-install deps /opt/loyalsync /src
COPY pyproject.toml README.md ./
COPY connectors ./connectors
COPY store ./store
COPY sync ./sync
COPY loyalty ./loyalty
COPY crm ./crm
COPY app ./app
RUN loyalsync-install app /opt/loyalsync /src

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data loyalsync \
 && mkdir -p /data /config && chown loyalsync /data
COPY --from=build /opt/loyalsync /opt/loyalsync
# The shipped config (dry-run, no accounts until you add config/marketplaces/<platform>.toml);
# mount your own over it: -v "$PWD/config:/config:ro".
COPY config /config
ENV PATH=/opt/loyalsync/bin:$PATH \
    LOYALSYNC_CONFIG=/config/loyalsync.toml \
    LOYALSYNC_DATABASE_URL=sqlite:////data/loyalsync.db \
    LOYALSYNC_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
USER loyalsync
WORKDIR /data
VOLUME ["/data"]
# /healthz on the service endpoint (127.0.0.1:8787 inside the container unless [service] says otherwise).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["loyalsync", "health"]
ENTRYPOINT ["loyalsync"]
CMD ["run"]
