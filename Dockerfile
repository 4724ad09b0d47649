# syntax=docker/dockerfile:1
# One image for the API (`api`) and the GPU worker (`worker`); see docs/deploy.md.
#   docker build -t motioncache:latest .
#   docker run --gpus 1 -v /srv/models:/models:ro -e MOTIONCACHE_REDIS_URL=redis://redis:6379/0 motioncache:latest worker
#
# No CUDA base image: PyTorch's Linux wheels bundle the CUDA runtime, cuDNN and NCCL as pip packages, so the
# image only needs the host driver, which the NVIDIA container toolkit mounts in. That keeps one slim base for
# both roles (the API never imports torch, it just carries it).
FROM python:3.11-slim-bookworm

# torch is installed on its own, first: the biggest layer changes least. PyPI's manylinux x86_64 torch is a CUDA
# build; pass e.g. --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 to choose the CUDA version
# (or your mirror's URL).
# Never the project's `cpu` extra: it pins the CPU-only wheel.
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://pypi.org/simple

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# The build fails here rather than at the first GPU job if a CPU-only wheel slipped in.
RUN pip install --index-url "${TORCH_INDEX_URL}" torch==${TORCH_VERSION} \
    && python -c "import torch, sys; sys.exit(0 if torch.version.cuda else 'torch has no CUDA: wrong wheel')"

WORKDIR /app

# Dependencies from pyproject.toml in their own layer, so a source edit does not reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt torch==${TORCH_VERSION} \
    && rm /tmp/requirements.txt

COPY motioncache ./motioncache
COPY server ./server
COPY worker ./worker
RUN pip install --no-deps . \
    && python -c "import torch; assert torch.version.cuda, 'the project install replaced the CUDA torch'"

COPY deploy/docker/entrypoint.sh /usr/local/bin/motioncache-entrypoint
COPY deploy/docker/healthcheck.py /usr/local/bin/motioncache-healthcheck.py

# Non-root. Models come from a read-only volume at /models; nothing else is written except caches under HOME.
RUN useradd --uid 10001 --create-home --home-dir /home/app --shell /usr/sbin/nologin app \
    && mkdir -p /models \
    && chown app:app /models
USER 10001:10001

ENV HOME=/home/app \
    HF_HOME=/home/app/.cache/huggingface \
    HF_HUB_OFFLINE=1 \
    MOTIONCACHE_MODEL=/models/skyreels-v2-df-1.3b-540p \
    MOTIONCACHE_DEVICE=cuda \
    MOTIONCACHE_DTYPE=bfloat16 \
    MOTIONCACHE_API_PORT=8000 \
    MOTIONCACHE_METRICS_PORT=9100 \
    MOTIONCACHE_REDIS_URL=redis://redis:6379/0

VOLUME ["/models"]
EXPOSE 8000 9100

# A worker's metrics server starts only after its model is loaded (minutes for a large model): hence the long
# start period. Compose and Kubernetes set their own per-role probes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python", "/usr/local/bin/motioncache-healthcheck.py"]

ENTRYPOINT ["/usr/local/bin/motioncache-entrypoint"]
CMD ["api"]
