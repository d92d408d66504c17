#!/usr/bin/env bash
# Start the local sweep stack on 127.0.0.1: SeaweedFS S3 server (objects kept in --s3-data-dir, default
# <state-dir>/s3-data, across stops), MLflow server (SQLite + S3 artifacts)
# and a Ray head, each on a free port, PIDs recorded in the state dir (default .stack).
#   cluster/start_stack.sh [--state-dir DIR] [--s3-data-dir DIR] [--num-cpus N] [--nodes N]   (N Ray nodes on this host)
#   source .stack/env
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
exec "$PY" -m cluster.stack start "$@"
