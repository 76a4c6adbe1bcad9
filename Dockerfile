# One image, several commands: `paperboy serve`, `paperboy migrate`, `celery ... worker`,
# `celery ... beat`. Two stages: a throw-away one with a compiler builds every wheel
# (rectools-lightfm has none on PyPI) into a venv; the runtime stage copies that venv and
# adds only the runtime library it needs (libgomp1, OpenMP for LightFM).
#
# The base image is an argument, so the same file builds where Docker Hub cannot be reached:
#   docker build --build-arg PYTHON_IMAGE=registry.example/python:3.11-slim .
# Versions come from constraints.txt (regenerate with .ci/lock-constraints).
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       gcc libc6-dev ca-certificates >/dev/null \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*
# Extra CA certificates (docker/build-ca/*.crt) for a build behind a TLS-intercepting proxy.
COPY docker/build-ca/ /tmp/build-ca/
RUN cat /etc/ssl/certs/ca-certificates.crt > /tmp/pip-ca.pem \
    && find /tmp/build-ca -name '*.crt' -exec cat {} + >> /tmp/pip-ca.pem
# LIGHTFM_NO_CFLAGS: LightFM's setup.py otherwise compiles with -march=native -ffast-math,
# and the image would crash with an illegal instruction on an older x86-64 host.
ENV PIP_CERT=/tmp/pip-ca.pem PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LIGHTFM_NO_CFLAGS=1
RUN python3 -m venv /opt/paperboy
# Dependencies first, from the lock alone: this slow layer (LightFM compiles for a minute)
# is rebuilt only when constraints.txt changes, not on every source edit.
COPY constraints.txt /tmp/
RUN python3 -m pip wheel --quiet --wheel-dir /wheels -r /tmp/constraints.txt \
    && /opt/paperboy/bin/pip install --quiet --no-index --find-links /wheels \
       -r /tmp/constraints.txt
COPY pyproject.toml README.md /src/
COPY recsys /src/recsys
COPY workers /src/workers
COPY api /src/api
COPY experiments /src/experiments
COPY benchmarks /src/benchmarks
# --no-index: the package's dependencies must all come from the lock, or the build fails.
RUN python3 -m pip wheel --quiet --no-deps --wheel-dir /tmp/app /src \
    && /opt/paperboy/bin/pip install --quiet --no-index --find-links /wheels \
       -c /tmp/constraints.txt /tmp/app/paperboy-*.whl \
    && /opt/paperboy/bin/pip check

FROM ${PYTHON_IMAGE} AS runtime
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       libgomp1 >/dev/null \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* \
    && useradd --create-home --uid 10001 paperboy \
    && mkdir -p /data && chown paperboy /data
COPY --from=build /opt/paperboy /opt/paperboy
ENV PATH=/opt/paperboy/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    OPENBLAS_NUM_THREADS=1 PAPERBOY_DATA_DIR=/data
WORKDIR /data
USER paperboy
VOLUME ["/data"]
EXPOSE 8000
CMD ["paperboy", "serve", "--host", "0.0.0.0", "--port", "8000"]
