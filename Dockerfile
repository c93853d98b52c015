# The durable-workflows worker: python -m worker, as an unprivileged user.
#
#   docker build -t durable-workflows-worker .
#   docker run --rm -e DWF_TEMPORAL_ADDRESS=host.docker.internal:7233 \
#       -e DWF_APP=examples.expense_approval -p 9464:9464 durable-workflows-worker
#
# Settings are DWF_* environment variables (docs/operations.md). To run your own workflows,
# build FROM this image, COPY your package in and set DWF_APP to its module.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY sdk ./sdk
COPY worker ./worker
COPY activities ./activities
COPY examples ./examples
RUN pip install . \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/dwf dwf

USER dwf
WORKDIR /home/dwf

ENV DWF_HTTP_HOST=0.0.0.0 \
    DWF_HTTP_PORT=9464 \
    DWF_LOG_FORMAT=json
EXPOSE 9464

# Liveness only: /readyz also fails while Temporal or the database is away, which is no
# reason to restart the worker (it reconnects by itself).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=3)"]

# SIGTERM (docker stop) starts a graceful shutdown: give it longer than DWF_SHUTDOWN_GRACE
# (docker stop --time, compose stop_grace_period, Kubernetes terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
CMD ["python", "-m", "worker"]
