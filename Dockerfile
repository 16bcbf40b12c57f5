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
ENTRYPOINT ["abuse-monitor"]
CMD ["worker"]
