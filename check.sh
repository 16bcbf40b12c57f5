#!/usr/bin/env bash
# Every check, as CI runs them: lint, format, types, and the tests (integration included).
set -euo pipefail
cd "$(dirname "$0")"
ruff check .
ruff format --check .
mypy
pytest -q "$@"
