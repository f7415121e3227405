# syntax=docker/dockerfile:1.7
# rigserve GPU serving image: ONNX Runtime with the CUDA and TensorRT execution providers,
# and TensorRT's Python runtime for `.plan` engines, on NVIDIA's CUDA 12 + cuDNN 9 base.
#   docker build -f deploy/docker/gpu.Dockerfile -t rigserve:gpu .
#   docker run --gpus all -p 8000:8000 -p 8001:8001 -v $PWD/repos/rig:/models:ro rigserve:gpu
# Needs the NVIDIA Container Toolkit on the host.

ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

FROM ${CUDA_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY rigserve/ rigserve/
COPY sensors/ sensors/
COPY training/ training/
COPY export/ export/
COPY server/ server/
COPY proto/ proto/
# `onnxruntime` (CPU, pulled by .[serve]) and `onnxruntime-gpu` install into the same
# `onnxruntime` package directory; keeping both leaves whichever was written last, so the
# CPU wheel is removed and the GPU wheel reinstalled over it.
RUN pip install --upgrade pip setuptools wheel \
 && pip install '.[serve,gpu]' \
 && pip uninstall -y onnxruntime \
 && pip install --force-reinstall --no-deps 'onnxruntime-gpu>=1.18' \
 && ! pip show torch >/dev/null 2>&1

FROM ${CUDA_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    RIGSERVE_REPOSITORY=/models \
    RIGSERVE_HOST=0.0.0.0 \
    RIGSERVE_HTTP_PORT=8000 \
    RIGSERVE_GRPC_PORT=8001 \
    RIGSERVE_PRECISION=fp16,fp32,int8
RUN groupadd --system --gid 10001 rigserve \
 && useradd --system --uid 10001 --gid rigserve --home-dir /home/rigserve --create-home \
      --shell /usr/sbin/nologin rigserve \
 && mkdir -p /models && chown rigserve:rigserve /models
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /home/rigserve
EXPOSE 8000 8001
VOLUME ["/models"]
# Longer start period: TensorRT deserialises and warms every `.plan` engine before ready.
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/v2/health/ready' % os.environ.get('RIGSERVE_HTTP_PORT', '8000'), timeout=2)"]
ENTRYPOINT ["rigserve"]
CMD ["serve"]
