# tracker: build a wheel (sql/ travels inside it), install it and its locked dependencies in a slim
# image, run as a non-root user.
#
# The base image is pinned by digest: python:3.12-slim as published on Docker Hub (the index
# digest; re-resolve with `docker buildx imagetools inspect python:3.12-slim` when bumping).
# Dependencies come from requirements/runtime.lock, every file checked against its hash.
FROM python:3.12-slim@sha256:78387bc3881b8273120a12ebe6c1ab22b018ccc2c9adf565ae1ac9b536e184ea AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY tracker ./tracker
COPY sql ./sql
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.12-slim@sha256:78387bc3881b8273120a12ebe6c1ab22b018ccc2c9adf565ae1ac9b536e184ea
RUN useradd --system --uid 10001 --create-home --home-dir /home/tracker tracker
COPY requirements/runtime.lock /tmp/runtime.lock
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --require-hashes -r /tmp/runtime.lock \
    && pip install --no-cache-dir --no-deps /wheels/*.whl \
    && rm -rf /wheels /tmp/runtime.lock
USER tracker
WORKDIR /home/tracker
# Every address: so without both tokens `tracker serve` refuses to start here (exit 2).
ENV TRACKER_HOST=0.0.0.0 \
    TRACKER_PORT=8080 \
    PYTHONUNBUFFERED=1
EXPOSE 8080
# Ready means the database answers too: /readyz, not /healthz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2).status != 200)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["tracker"]
CMD ["serve"]
