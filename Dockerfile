# The nudgeflow worker image. `docker compose up --build` builds and runs it
# (see deploy/README.md); on its own: `docker build -t nudgeflow .`.

# Both stages must use the same Python: the virtualenv built in the first is
# copied into the second and points at its interpreter.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, read from pyproject.toml alone: a code change then reuses
# this (slow) layer instead of reinstalling every dependency.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
COPY README.md ./
COPY app ./app
COPY agents ./agents
COPY tables ./tables
COPY config ./config
# `pip install .` without the [embedded] extra: production talks to a real Kafka
# and Redis. --no-deps because the layer above installed them; `pip check` fails
# the build if that list and the package's metadata ever disagree.
RUN pip install --no-deps . && pip check
# The hot path compiled (app/speedups.py) beside the installed package: a C compiler
# and Cython in this stage only, and only the built modules kept.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* \
    && pip install "cython>=3.1" "setuptools>=68" \
    && python -m app.tools.compile_hot_path \
    && pip uninstall -y cython \
    && python -c "import shutil, app.speedups as s; shutil.rmtree(s.BUILD_DIR / 'c'); shutil.rmtree(s.BUILD_DIR / 'objects')"


FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NUDGEFLOW_DATA_DIR=/var/lib/nudgeflow
# A fixed non-root uid, so volume permissions and policies can name it.
RUN useradd --system --uid 10001 --user-group --create-home \
        --home-dir /var/lib/nudgeflow --shell /usr/sbin/nologin nudgeflow
COPY --from=build /opt/venv /opt/venv
# Faust writes its data directory here (tables use the memory store, so nothing
# in it has to outlive the container: state is recovered from the changelog).
WORKDIR /var/lib/nudgeflow
USER nudgeflow
EXPOSE 6066
# Liveness only (/healthz); /readyz answers 503 during every rebalance and
# table recovery, which is not a reason to restart a worker. Python, because
# the slim image has no curl; the port follows NUDGEFLOW_WEB_PORT.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('NUDGEFLOW_WEB_PORT', '6066'), timeout=2)"]
ENTRYPOINT ["nudgeflow"]
CMD ["worker"]
