#!/usr/bin/env bash
# Which services of the local sweep stack run, and their resident memory.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
exec "$PY" -m cluster.stack status "$@"
