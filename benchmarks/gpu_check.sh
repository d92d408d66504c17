#!/usr/bin/env bash
# The GPU check of radae, in one call on a bare GPU machine (docs/speed.md, "Running the GPU check").
#
#   bash benchmarks/gpu_check.sh --data-dir .data/mnist           # on the GPU machine: every stage, < 8 min
#   bash benchmarks/gpu_check.sh --dry-run --data-dir DIR         # the plan, plus import/data/definition checks
#   bash benchmarks/gpu_check.sh --cpu-smoke                      # every stage on the CPU at tiny budgets
#                                                                 # (also: GPU_CHECK_CPU=1)
# Stages, each in its own process with its own timeout; a failing stage is recorded and the next
# one still runs:
#   imports   benchmarks/gpu_check_imports.py: every module the stages use imports
#   pytest    pytest -m gpu on the test files holding gpu-marked tests (JUnit XML)
#   bench     benchmarks/throughput.py full run: plain vs radae vs packed 32/128, PGD/FGSM,
#             evaluation protocol, FID on 10,000 samples
#   train     python -m radae.train on MNIST with train.step_mode=graph, 3 epochs
#   grid      benchmarks/packed_grid.py: the 30 points of sweeps/alpha_modes.yaml in one pack
#             through radae.fast.train_packed, 2 epochs x 100 steps
# Output under $OUT (default runs/gpu_check/<UTC time>), at most 8 files as the device tool
# returns them: summary.json (every stage's status, wall time and figures, the environment),
# bench.json, train.json, grid.json, pytest_junit.xml, logs.tar.gz (each stage's full log).
# Run folders (checkpoints, figures) go to a scratch folder ($GPU_CHECK_WORK or a temporary one).
#
# Data: MNIST's four IDX files (.gz or not), from --data-dir, else $RADAE_DATA_DIR, else
# .data/mnist in the checkout (carry it to the GPU machine), else ../shared/data/mnist.
# A missing data folder stops the script before any stage runs (exit 2).
#
# Packages: nothing is installed. The GPU image (Python 3.12, torch 2.11) has every package the
# stages need (torch, numpy, scipy, matplotlib, pyyaml, pillow, pytest; .library/device/KINDS.md),
# and none of ray, mlflow, boto3, optuna, pytorch_msssim or torch_fidelity, which the stages do
# not import (FID falls back to radae's own Frechet distance on the classifier features). No
# wheels are needed; if a .whl/ folder with wheels is carried anyway, they are installed with
# `pip install --no-index --no-deps --target /tmp/site` and put on PYTHONPATH, as the device
# README says.
#
# Exit status: 0 every stage ok; 1 some stage failed or timed out (summary.json says which);
# 2 bad input (data folder, options).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2

MODE=gpu
DATA_DIR="${RADAE_DATA_DIR:-}"
BUDGET_S="${GPU_CHECK_BUDGET_S:-470}"
[[ "${GPU_CHECK_CPU:-0}" == 1 ]] && MODE=cpu
DRY=0
usage() { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --cpu-smoke) MODE=cpu ;;
        --data-dir) DATA_DIR="${2:-}"; shift ;;
        --data-dir=*) DATA_DIR="${1#*=}" ;;
        --budget) BUDGET_S="${2:-}"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "gpu_check: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ "$BUDGET_S" =~ ^[0-9]+$ ]] || { echo "gpu_check: --budget must be whole seconds, got '$BUDGET_S'" >&2; exit 2; }

# --- Python, wheels, data -----------------------------------------------------------------------
if [[ -n "${PYTHON:-}" ]]; then :
elif [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"
else PYTHON=python3; fi
if compgen -G "$ROOT/.whl/*.whl" >/dev/null; then
    echo "gpu_check: installing carried wheels: $(cd "$ROOT/.whl" && ls ./*.whl | tr '\n' ' ')"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$ROOT"/.whl/*.whl \
        || { echo "gpu_check: installing the carried wheels failed" >&2; exit 2; }
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi

MNIST_FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
has_mnist() { local f; for f in "${MNIST_FILES[@]}"; do [[ -f "$1/$f.gz" || -f "$1/$f" ]] || return 1; done; }
if [[ -z "$DATA_DIR" ]]; then
    for cand in "$ROOT/.data/mnist" "$ROOT/../shared/data/mnist"; do has_mnist "$cand" && { DATA_DIR="$cand"; break; }; done
fi
if [[ -z "$DATA_DIR" ]] || ! has_mnist "$DATA_DIR"; then
    echo "gpu_check: no MNIST in '${DATA_DIR:-(none given; tried .data/mnist and ../shared/data/mnist)}':" \
        "need ${MNIST_FILES[*]} (.gz or raw). Pass --data-dir, or copy them to .data/mnist and carry .data" >&2
    exit 2
fi
DATA_DIR="$(cd "$DATA_DIR" && pwd)"
export RADAE_DATA_DIR="$DATA_DIR" RADAE_MNIST_DIR="$DATA_DIR" PYTHONUNBUFFERED=1

OUT="${OUT:-$ROOT/runs/gpu_check/$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT" || exit 2
OUT="$(cd "$OUT" && pwd)"
WORK="${GPU_CHECK_WORK:-$(mktemp -d /tmp/gpu_check.XXXXXX)}"
mkdir -p "$WORK/logs" "$WORK/stages"
export XDG_CACHE_HOME="$WORK/cache"   # a fresh FID feature-network cache: built (and timed outside FID) here
BLOCK="ray,mlflow,boto3,optuna,pytorch_msssim,torch_fidelity"
if [[ $MODE == cpu || $DRY == 1 ]]; then
    # Here those packages exist; block them so the run sees what the GPU machine has.
    export GPU_CHECK_BLOCK="$BLOCK" PYTHONPATH="$ROOT/benchmarks/offline_site:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
else
    export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
fi
[[ $MODE == cpu ]] && export OMP_NUM_THREADS=1 CUDA_VISIBLE_DEVICES=""

mapfile -t GPU_TESTS < <(grep -rl --include='test_*.py' 'mark\.gpu' tests | sort)

# --- the plan: name, timeout (s), command ---------------------------------------------------------
if [[ $MODE == gpu ]]; then
    T_IMPORTS=30; T_PYTEST=75; T_BENCH=180; T_TRAIN=60; T_GRID=120
    BENCH_ARGS=(--pack 32,128)
    TRAIN_ARGS=(--train.step_mode graph --epochs 3)
    GRID_ARGS=(--step-mode graph --epochs 2 --max-steps 100)
else
    T_IMPORTS=60; T_PYTEST=120; T_BENCH=300; T_TRAIN=180; T_GRID=240
    BENCH_ARGS=(--quick --device cpu --pack 2,4)
    TRAIN_ARGS=(--train.step_mode eager --train.device cpu --epochs 1 --data.train_limit 1000 --data.val_size 200 --train.max_steps_per_epoch 5)
    GRID_ARGS=(--device cpu --step-mode eager --epochs 1 --max-steps 2 --train-limit 1000 --val-size 200 --pack-size 15)
    BUDGET_S="${GPU_CHECK_BUDGET_S:-900}"
fi
STAGES=(imports pytest bench train grid)
declare -A TIMEOUT=([imports]=$T_IMPORTS [pytest]=$T_PYTEST [bench]=$T_BENCH [train]=$T_TRAIN [grid]=$T_GRID)
declare -A CMD
CMD[imports]="$PYTHON benchmarks/gpu_check_imports.py"
CMD[pytest]="$PYTHON -m pytest -m gpu -q -p no:cacheprovider --junitxml $OUT/pytest_junit.xml ${GPU_TESTS[*]}"
CMD[bench]="$PYTHON benchmarks/throughput.py ${BENCH_ARGS[*]} --json $OUT/bench.json"
CMD[train]="$PYTHON -m radae.train --dataset mnist --data-dir $DATA_DIR ${TRAIN_ARGS[*]} --out-dir $WORK/train"
CMD[grid]="$PYTHON benchmarks/packed_grid.py ${GRID_ARGS[*]} --data-dir $DATA_DIR --work-dir $WORK/grid --json $OUT/grid.json"

echo "gpu_check: mode $MODE$([[ $DRY == 1 ]] && echo ' (dry run)'), python $PYTHON, data $DATA_DIR"
echo "gpu_check: out $OUT, scratch $WORK, overall budget ${BUDGET_S}s"
for s in "${STAGES[@]}"; do printf '  %-8s %4ss  %s\n' "$s" "${TIMEOUT[$s]}" "${CMD[$s]}"; done

summarize() {  # summary.json from the stage records and the stages' JSON files
    "$PYTHON" "$ROOT/benchmarks/gpu_check_summary.py" --mode "$MODE" --dry-run "$DRY" --work "$WORK" --out "$OUT" \
        --data-dir "$DATA_DIR" --budget "$BUDGET_S"
}

record() {  # name rc wall_s timeout_s status
    printf '{"name": "%s", "rc": %d, "wall_s": %s, "timeout_s": %d, "status": "%s"}\n' "$@" >"$WORK/stages/$1.json"
    printf '%s\n' "${CMD[$1]}" >"$WORK/stages/$1.cmd"
}

if [[ $DRY == 1 ]]; then
    # Cheap checks only: versions and device, imports with the GPU machine's missing packages
    # blocked, the sweep definition's grid.
    rc=0
    timeout -k 5 120 ${CMD[imports]} >"$WORK/logs/imports.json" 2>"$WORK/logs/imports.log" || rc=1
    "$PYTHON" -c "
import json, sys, torch
from radae.sweep.definition import load_definition
print('python', sys.version.split()[0], '| torch', torch.__version__, '| cuda', torch.cuda.is_available())
r = json.load(open('$WORK/logs/imports.json'))
print('imports (blocked: $BLOCK):', 'ok' if r['ok'] else r)
d = load_definition('sweeps/alpha_modes.yaml')
print('grid:', d.space.grid_size(), 'configurations of', ', '.join(d.space.params))
sys.exit(not (r['ok'] and d.space.grid_size() == 30))" || rc=1
    echo "gpu test files: ${GPU_TESTS[*]}"
    record imports "$rc" 0 120 "$([[ $rc == 0 ]] && echo ok || echo failed)"
    summarize >/dev/null || rc=1
    echo "gpu_check: dry run $([[ $rc == 0 ]] && echo ok || echo FAILED); summary $OUT/summary.json"
    exit "$rc"
fi

if [[ $MODE == gpu ]] && ! "$PYTHON" -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
    echo "gpu_check: torch sees no CUDA device here; on a machine without a GPU use --cpu-smoke (or --dry-run)" >&2
    exit 2
fi
START=$(date +%s)
for s in "${STAGES[@]}"; do
    left=$((BUDGET_S - ($(date +%s) - START)))
    t=${TIMEOUT[$s]}
    ((t > left - 5)) && t=$((left - 5))
    if ((t < 10)); then
        echo "gpu_check: $s skipped: the overall budget of ${BUDGET_S}s is spent"
        record "$s" -1 0 0 skipped
        continue
    fi
    echo "gpu_check: $s (timeout ${t}s) ..."
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086  # the command is a plain word list
    timeout -k 10 "$t" ${CMD[$s]} >"$WORK/logs/$s.log" 2>&1
    rc=$?
    wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    case $rc in 0) st=ok ;; 124|137) st=timeout ;; *) st=failed ;; esac
    record "$s" "$rc" "$wall" "$t" "$st"
    echo "gpu_check: $s $st (rc $rc) in ${wall}s; log: logs/$s.log"
    [[ $st != ok ]] && tail -n 15 "$WORK/logs/$s.log" | sed 's/^/    | /'
done

# the train stage's figures: its summary.json and metrics.jsonl, as one JSON
"$PYTHON" - "$WORK/train" "$OUT/train.json" <<'EOF' || true
import json, sys
from pathlib import Path
run, out = Path(sys.argv[1]), Path(sys.argv[2])
if (run / "summary.json").exists():
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    out.write_text(json.dumps({"summary": json.loads((run / "summary.json").read_text()), "epochs": metrics}, indent=2))
EOF
summarize
rc=$?
tar -czf "$OUT/logs.tar.gz" -C "$WORK" logs stages 2>/dev/null
exit "$rc"
