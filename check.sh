#!/usr/bin/env bash
# Every check, as CI runs them: lint, format, types, and the tests (integration included).
set -euo pipefail
cd "$(dirname "$0")"
# Debian packages some tests run for real: Prometheus and promtool, Alertmanager,
# docker-compose (to check the Compose file; no engine needed), PostgreSQL (the alert store's
# tests start a server), Chromium and chromedriver (the triage console's browser test).
# Installed when missing and we may.
missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
command -v docker-compose >/dev/null || missing+=(docker-compose)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromedriver >/dev/null || missing+=(chromium chromium-driver)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
ruff check .
ruff format --check .
mypy
pytest -q "$@"
