FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams streams
COPY detectors detectors
COPY simulator simulator
RUN pip install --no-cache-dir . && useradd --system --home /app abusemon
USER abusemon
ENV ABUSEMON_METRICS_HOST=0.0.0.0 ABUSEMON_DATA_DIR=/tmp/abuse-monitor
EXPOSE 9464
# Liveness: the worker's event loop is running (see streams/http.py).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ABUSEMON_METRICS_PORT', '9464'), timeout=4)"
ENTRYPOINT ["abuse-monitor"]
CMD ["worker"]
