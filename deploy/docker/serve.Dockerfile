# syntax=docker/dockerfile:1.7
# rigserve CPU serving image: ONNX Runtime, REST :8000, gRPC :8001, /metrics.
# Installs `.[serve]` only -- no torch, no training code paths -- into a virtualenv built
# in a throw-away stage, so the runtime stage carries neither pip caches nor compilers.
#   docker build -f deploy/docker/serve.Dockerfile -t rigserve:cpu .
#   docker run -p 8000:8000 -p 8001:8001 -v $PWD/repos/rig:/models:ro rigserve:cpu

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Metadata first: the dependency layer is rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md ./
COPY rigserve/ rigserve/
COPY sensors/ sensors/
COPY training/ training/
COPY export/ export/
COPY server/ server/
COPY proto/ proto/
# A regular (non-editable) install: the runtime stage copies /opt/venv, not /src.
RUN pip install --upgrade pip setuptools wheel \
 && pip install '.[serve]' \
 && ! pip show torch >/dev/null 2>&1

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="rigserve" \
      org.opencontainers.image.description="Sensor-aware serving of multimodal human-sensing models (CPU, ONNX Runtime)" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RIGSERVE_REPOSITORY=/models \
    RIGSERVE_HOST=0.0.0.0 \
    RIGSERVE_HTTP_PORT=8000 \
    RIGSERVE_GRPC_PORT=8001
# A fixed numeric uid so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
RUN groupadd --system --gid 10001 rigserve \
 && useradd --system --uid 10001 --gid rigserve --home-dir /home/rigserve --create-home \
      --shell /usr/sbin/nologin rigserve \
 && mkdir -p /models && chown rigserve:rigserve /models
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /home/rigserve
EXPOSE 8000 8001
VOLUME ["/models"]
# Ready, not live: the container is healthy once the repository's engines are loaded and
# warmed. Python's urllib instead of curl keeps the slim base free of extra packages.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/v2/health/ready' % os.environ.get('RIGSERVE_HTTP_PORT', '8000'), timeout=2)"]
ENTRYPOINT ["rigserve"]
CMD ["serve"]
