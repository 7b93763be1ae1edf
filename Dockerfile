# imagegate: the gateway as a container image (docs/deployment.md).
#
#   docker build -t imagegate .
#   docker run --rm -p 8080:8080 -e IMAGEGATE_API_KEYS=sk-change-me imagegate
#
# Two stages: the first builds imagegate's wheel from the source tree; the second is a clean
# slim Python with only that wheel (and its dependencies from PyPI) installed, running as an
# unprivileged user. No compiler, source tree or build cache reaches the final image.

ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:${PYTHON_VERSION}-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    IMAGEGATE_HOST=0.0.0.0 \
    IMAGEGATE_PORT=8080 \
    IMAGEGATE_DATA_DIR=/var/lib/imagegate
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/imagegate --create-home \
        --shell /usr/sbin/nologin imagegate
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir /tmp/wheels/*.whl && rm -rf /tmp/wheels
USER imagegate
WORKDIR /var/lib/imagegate
EXPOSE 8080
# SIGTERM drains (lifecycle.shutdown_grace_s); give `docker stop -t` at least that much
STOPSIGNAL SIGTERM
# liveness only: the process answers (readiness, /health/ready, is the balancer's business)
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('IMAGEGATE_PORT', '8080'), timeout=2)"]
ENTRYPOINT ["imagegate"]
CMD ["serve"]
