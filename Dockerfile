# The SaLSa harness for GPU clusters (docs/cluster.md): `make docker` builds it, `docker run --gpus all ...` runs it.
# Python 3.11 + the pinned stack of requirements.lock. The lock pins torch 2.14.1 built for CUDA 13.0 together with
# its CUDA runtime as nvidia-* wheels (cuBLAS, cuDNN, NCCL, ...), so the image needs no CUDA base: the host supplies
# only the NVIDIA driver (>= 580 for CUDA 13), injected by `docker run --gpus all` or `apptainer --nv`.
FROM python:3.11-slim-bookworm

ARG GIT_COMMIT=unknown
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    SALSA_DATA_DIR=/data \
    XDG_CACHE_HOME=/tmp/cache \
    MPLCONFIGDIR=/tmp/cache/matplotlib \
    TRITON_CACHE_DIR=/tmp/cache/triton \
    SALSA_GIT_COMMIT=${GIT_COMMIT}

WORKDIR /opt/salsa

# The pinned stack first: this layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock

# Then the project (its code and configs; .dockerignore keeps .venv, outputs, caches and .git out).
COPY . .
RUN pip install --no-cache-dir --no-deps . \
    && mkdir -p /data /opt/salsa/outputs \
    && chmod 0777 /opt/salsa/outputs

# Run directories go to /opt/salsa/outputs/runs and data sets come from /data (SALSA_DATA_DIR): bind-mount both.
CMD ["python", "run.py"]
