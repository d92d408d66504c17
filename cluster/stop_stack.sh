#!/usr/bin/env bash
# Stop the local sweep stack: signals only the process groups recorded by start_stack.sh
# (never `ray stop`, which would stop every Ray cluster on the machine). The S3 data dir stays: the next
# start on the same state dir serves every object again.
#   cluster/stop_stack.sh [--state-dir DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
exec "$PY" -m cluster.stack stop "$@"
