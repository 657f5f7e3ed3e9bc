# syntax=docker/dockerfile:1
# Edict's engine image: `docker build -t ghcr.io/edict-dev/edict:0.1.0 .`
#
# glibc-based on purpose: cel-expr-python (the CEL runtime) ships manylinux wheels only
# (glibc >= 2.28, no musl), so no Alpine. Two stages: the first builds the edict wheel
# and every pinned dependency as wheels; the second installs them with no index at all,
# so the image holds exactly deploy/requirements.lock and no compiler or build tool.
# tests/e2e/test_image.py repeats these steps in a fresh venv (no Docker needed).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# engine/crds is a symlink to ../crds: both go in, the wheel carries the real files.
COPY pyproject.toml README.md ./
COPY crds/ crds/
COPY engine/ engine/
COPY deploy/requirements.lock deploy/requirements.lock
# --no-deps on the lock: a dependency missing from it fails the install below (no index)
# instead of slipping in unpinned; --only-binary: nothing is compiled here.
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m pip wheel --no-deps --only-binary=:all: --wheel-dir /wheels \
      --requirement deploy/requirements.lock

FROM ${PYTHON_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/edict/bin:$PATH
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    --mount=type=bind,source=deploy/requirements.lock,target=/tmp/requirements.lock \
    python -m venv /opt/edict \
 && /opt/edict/bin/python -m pip install --no-index --find-links /wheels \
      --constraint /tmp/requirements.lock edict \
 && /opt/edict/bin/python -m pip uninstall --yes pip setuptools \
 && edict --version
# The `nonroot` uid/gid of distroless images; the Deployment runs as it too, with a
# read-only root file system (bytecode was compiled at install time).
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 8081
ENTRYPOINT ["edict"]
CMD ["run"]
