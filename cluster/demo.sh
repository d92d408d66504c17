#!/usr/bin/env bash
# `make demo`: the main job end to end on this machine, offline. Starts the local stack (SeaweedFS S3,
# MLflow, Ray head, optuna-dashboard; all on 127.0.0.1), submits a small real sweep with
# `ray job submit` (sweeps/alpha_modes.py --smoke-test: 2 configurations x 2 seeds = 4 trials, 2 epochs on 2,000
# FashionMNIST images each), builds the HTML report and prints where to look. Stops the stack at the
# end unless KEEP=1 (then: cluster/stop_stack.sh --state-dir .stack-demo).
#   cluster/demo.sh                 # or: make demo
#   KEEP=1 cluster/demo.sh          # or: make demo KEEP=1
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
STATE=${DEMO_STATE_DIR:-.stack-demo}
DATA=${DEMO_DATA_DIR:-/usr/share/datasets/fashion-mnist}
SWEEP=demo-$(date -u +%Y%m%d-%H%M%S)
OUT=$PWD/runs/demo/$SWEEP
KEEP=${KEEP:-0}

stop() { if [ "$KEEP" != 1 ]; then "$PY" -m cluster.stack stop --state-dir "$STATE"; fi; }
trap stop EXIT
t0=$(date +%s)
"$PY" -m cluster.stack start --state-dir "$STATE" --optuna-dashboard
# shellcheck disable=SC1091
source "$STATE/env"
mkdir -p "$OUT"
"$(dirname "$PY")/ray" job submit --address "$RAY_DASHBOARD" --working-dir . --runtime-env cluster/runtime_env.yaml -- \
    python sweeps/alpha_modes.py --smoke-test --sweep-id "$SWEEP" --executor direct --concurrency 1 \
    --set data.name=fashion-mnist --data-dir "$DATA" --work-dir "$OUT/trials" --study-db "$RADAE_OPTUNA_DB"
"$PY" dashboards/sweep_report.py "$SWEEP" --out "$OUT/report.html" --optuna-url "$RADAE_OPTUNA_DASHBOARD"
COMPARE=$("$PY" - "$SWEEP" <<'PYEOF'
import os, sys
from radae.store.tracking import COMPARE_URL_TAG, ROLE_TAG, SWEEP_TAG, Tracker
t = Tracker(os.environ["MLFLOW_TRACKING_URI"])
(run,) = t.client.search_runs([t.experiment_id], f"tags.`{SWEEP_TAG}` = '{sys.argv[1]}' and tags.`{ROLE_TAG}` = 'sweep'")
print(f"{os.environ['MLFLOW_TRACKING_URI']}/{run.data.tags[COMPARE_URL_TAG]}")
PYEOF
)
STUDY=$("$PY" -c 'import os, sys; from radae.store.studies import study_page; print(study_page(os.environ["RADAE_OPTUNA_DASHBOARD"], os.environ["RADAE_OPTUNA_DB"], sys.argv[1]))' "$SWEEP")
echo
echo "demo sweep $SWEEP done in $(( $(date +%s) - t0 )) s"
echo "  report (open in a browser, no network needed): $OUT/report.html"
echo "  the same report in S3: s3://$RADAE_S3_BUCKET/$RADAE_S3_PREFIX/reports/sweep=$SWEEP/report.html (and on the parent MLflow run, report/)"
echo "  MLflow, trials side by side:                  $COMPARE"
echo "  optuna-dashboard, the study $SWEEP:          $STUDY"
if [ "$KEEP" = 1 ]; then
    echo "the stack keeps running; stop it with: cluster/stop_stack.sh --state-dir $STATE"
else
    echo "stopping the stack (make demo KEEP=1 leaves it running for the browser)"
fi
