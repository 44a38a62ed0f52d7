# loyalsync container, first version (the operations issue adds the service endpoint and HEALTHCHECK).
# Build:  docker build -t loyalsync .
# Run:    docker run -v loyalsync-data:/data -v ./config:/config:ro -e LOYALSYNC_WB_MAIN_TOKEN=... loyalsync
FROM python:3.11-slim AS build
WORKDIR /src
COPY requirements.lock pyproject.toml README.md ./
RUN python -m venv /opt/loyalsync \
 && /opt/loyalsync/bin/pip install --no-cache-dir --require-hashes -r requirements.lock
COPY connectors ./connectors
COPY sync ./sync
COPY loyalty ./loyalty
RUN /opt/loyalsync/bin/pip install --no-cache-dir --no-deps .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data loyalsync \
 && mkdir -p /data /config && chown loyalsync /data
COPY --from=build /opt/loyalsync /opt/loyalsync
COPY config /config
ENV PATH=/opt/loyalsync/bin:$PATH \
    LOYALSYNC_CONFIG=/config/loyalsync.toml \
    LOYALSYNC_DATABASE_URL=sqlite:////data/loyalsync.db \
    PYTHONUNBUFFERED=1
USER loyalsync
WORKDIR /data
VOLUME ["/data"]
ENTRYPOINT ["loyalsync"]
CMD ["run"]
