# syntax=docker/dockerfile:1.7
# rigserve training image: simulate a rig, train the Purify-then-Align students, export
# a model repository. CPU torch from PyTorch's CPU index (the default index resolves to
# the CUDA build and gigabytes of NVIDIA wheels).
#   docker build -f deploy/docker/train.Dockerfile -t rigserve:train .
#   docker run -v $PWD/repos:/repos rigserve:train export /runs/pta --out /repos/rig

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install --upgrade pip setuptools wheel \
 && pip install --index-url ${TORCH_INDEX} "torch==${TORCH_VERSION}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY rigserve/ rigserve/
COPY sensors/ sensors/
COPY training/ training/
COPY export/ export/
COPY server/ server/
COPY proto/ proto/
# `serve` too: export parity-checks engines with ONNX Runtime and `rigserve demo` serves.
RUN pip install '.[train,serve]'

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLBACKEND=Agg
RUN groupadd --system --gid 10001 rigserve \
 && useradd --system --uid 10001 --gid rigserve --home-dir /home/rigserve --create-home \
      --shell /usr/sbin/nologin rigserve \
 && mkdir -p /work /models && chown rigserve:rigserve /work /models
COPY --from=build /opt/venv /opt/venv
COPY --chown=rigserve:rigserve deploy/docker/build-repository.sh /usr/local/bin/build-repository
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["rigserve"]
CMD ["--help"]
