# statehook: one image for the worker (`run`, the default) and the HTTP API (`api`).
#
#   docker build -t statehook .                      # or: podman build --format docker -t statehook .
#   docker run --rm -e STATEHOOK_REDIS_URL=redis://redis:6379/0 \
#       -v "$PWD/statehook.toml:/etc/statehook/statehook.toml:ro" statehook            # a worker
#   docker run --rm -p 8080:8080 … statehook api                                       # the API
#
# Secrets come from the environment (STATEHOOK_…), never from the image or the config file.
#
# podman and buildah write the OCI format by default, which has no HEALTHCHECK (dropped with a
# warning): build with `--format docker`. `make image-test` builds and smoke-tests this image
# without Docker or a registry (scripts/image-test.sh; the result is in docs/operations.md).

# ---- build: install the project and its dependencies into a venv -------------------------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/statehook
WORKDIR /src

# dependencies first, so that a code change does not reinstall them (every dependency ships
# manylinux wheels for amd64 and arm64: no compiler in the image)
COPY pyproject.toml README.md constraints.txt ./
RUN mkdir -p model core store config providers tasks notifiers transport worker simulator \
 && for p in model core store config providers tasks notifiers transport worker simulator; do touch "$p/__init__.py"; done \
 && /opt/statehook/bin/pip install -c constraints.txt . \
 && /opt/statehook/bin/pip uninstall -y statehook

COPY model ./model
COPY core ./core
COPY store ./store
COPY config ./config
COPY providers ./providers
COPY tasks ./tasks
COPY notifiers ./notifiers
COPY transport ./transport
COPY worker ./worker
COPY simulator ./simulator
# setuptools builds in the source tree: the install above left build/lib/*/__init__.py (the empty
# placeholders, newer than the sources just copied, so build_py would keep them) and an egg-info
# listing only them. Without this rm the image's packages are empty: ImportError at start.
RUN rm -rf build ./*.egg-info \
 && /opt/statehook/bin/pip install --no-deps . \
 && rm -rf build ./*.egg-info \
 && /opt/statehook/bin/python -m compileall -q /opt/statehook/lib

# ---- runtime ------------------------------------------------------------------------------------
FROM python:3.11-slim

LABEL org.opencontainers.image.title="statehook" \
      org.opencontainers.image.description="Watch orders and tasks at providers, detect state transitions, deliver events."

RUN groupadd --system --gid 10001 statehook \
 && useradd --system --uid 10001 --gid statehook --home-dir /app --shell /usr/sbin/nologin statehook \
 && mkdir -p /app /etc/statehook \
 && chown statehook:statehook /app

COPY --from=build /opt/statehook /opt/statehook

ENV PATH=/opt/statehook/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STATEHOOK_CONFIG_FILE=/etc/statehook/statehook.toml \
    STATEHOOK_LOG_FORMAT=json \
    STATEHOOK_API__HOST=0.0.0.0

WORKDIR /app
USER statehook:statehook
EXPOSE 8080

# worker: a fresh heartbeat of a worker in this container; api: it answers and reaches Redis
# (`healthcheck` tells which from the container's main process)
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["statehook", "healthcheck"]

# SIGTERM: a worker stops taking jobs and finishes those in flight within
# STATEHOOK_WORKER__SHUTDOWN_GRACE (20 s): give the container more (docker stop -t 30)
STOPSIGNAL SIGTERM
ENTRYPOINT ["statehook"]
CMD ["run"]
