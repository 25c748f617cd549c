# tracker: build a wheel (sql/ travels inside it), install it in a slim image, run as a non-root user.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY tracker ./tracker
COPY sql ./sql
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
RUN useradd --system --uid 10001 --create-home --home-dir /home/tracker tracker
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER tracker
WORKDIR /home/tracker
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
