#!/usr/bin/env bash
# Every check, as CI runs them: lint, format, types, and the tests (integration included).
set -euo pipefail
cd "$(dirname "$0")"
# The Prometheus rule tests need promtool, from Debian's prometheus package; the Alertmanager
# tests need prometheus-alertmanager.
if ! { command -v promtool && command -v prometheus-alertmanager; } >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus prometheus-alertmanager >/dev/null
fi
ruff check .
ruff format --check .
mypy
pytest -q "$@"
