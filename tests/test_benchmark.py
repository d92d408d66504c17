"""benchmarks/throughput.py --quick runs end to end on the CPU and its table and JSON parse.

The quick run is a correctness check of the benchmark (every row is produced, rates are
positive, the ratios are the ratios of the printed rates); it is not a timing assertion: CPU
speed on a shared CI machine is not a property of the code.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_benchmark_runs_and_its_output_parses(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--quick", "--device", "cpu", "--json", str(out),
         "--eval-breakdown"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    for key in (
        "plain_steps_per_s",
        "radae_steps_per_s",
        "packed_model_steps_per_s",
        "pgd_over_fgsm_cost",
        "peak_memory_mb",
    ):
        assert math.isfinite(r[key]) and r[key] > 0, key
    assert r["ratio_radae_over_plain"] == pytest.approx(r["radae_steps_per_s"] / r["plain_steps_per_s"])
    assert r["ratio_packed_over_plain"] == pytest.approx(r["packed_model_steps_per_s"] / r["plain_steps_per_s"])
    assert r["pack_size"] == 4 and r["quick"] is True and r["step_mode_radae"] == "eager"
    assert [p["pack_size"] for p in r["packed"]] == [4]
    assert r["packed"][0]["model_steps_per_s"] == pytest.approx(r["packed_model_steps_per_s"])
    assert r["data"].startswith(("real MNIST", "random"))
    # PGD (5 steps) costs more than FGSM (1 step): each extra step is a forward and a backward pass.
    assert r["pgd_over_fgsm_cost"] > 1.0
    # train.precision bf16 is its own row where the CPU has bf16, with its ratio to the fp32 step
    if r["radae_bf16_steps_per_s"] is None:
        assert r["bf16"].startswith("skipped") and r["ratio_bf16_over_fp32"] is None
    else:
        assert r["ratio_bf16_over_fp32"] == pytest.approx(r["radae_bf16_steps_per_s"] / r["radae_steps_per_s"])
    # every evaluation stage is timed, per precision, and the stages add up to at most the total
    breakdown = r["eval_breakdown"]
    precisions = ["fp32"] if r["radae_bf16_steps_per_s"] is None else ["fp32", "bf16"]
    for precision in precisions:
        stages = breakdown[precision]
        assert all(stages[k] is not None and stages[k] >= 0 for k in stages), stages
        assert stages["attack_latent"] > 0 and stages["fid"] > 0 and stages["classifier"] > 0
        assert stages["metrics_latent"] <= stages["attack_latent"]
        top = ("classifier", "attack_latent", "attack_max_damage", "fid_features", "fid")
        assert sum(stages[k] for k in top) <= stages["total"] + 1e-6
    # the printed table carries the same numbers
    table = proc.stdout
    rows = dict(re.findall(r"^(\(\w\)[^\n]*?)\s{2,}([\d,.]+)x?\s*$", table, flags=re.M))
    plain = next(v for k, v in rows.items() if k.startswith("(a)"))
    assert float(plain.replace(",", "")) == pytest.approx(r["plain_steps_per_s"], rel=1e-2)
    assert "evaluation protocol" in table and "FID" in table
    for key, note in (("eval_protocol_s", "eval_protocol"), ("fid_s", "fid")):
        if r[key] is None:
            assert r[note].startswith("skipped"), r[note]
        else:
            assert r[key] > 0, key


@pytest.mark.slow
def test_eval_cost_compares_base_and_checkout_on_the_same_numbers(tmp_path):
    """benchmarks/eval_cost.py --quick: both versions run, every stage is timed, the metrics agree."""
    out = tmp_path / "cost.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "eval_cost.py"), "--base", "b294246", "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    if proc.returncode != 0 and "unknown revision" in proc.stderr + proc.stdout:
        pytest.skip("the base commit is not in this clone's history")
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    for label in ("before", "after"):
        assert r[label]["total"] > 0 and r[label]["fid"] > 0 and r[label]["attack_latent"] > 0
    # The faster projection and the cached FID reference change no number beyond rounding
    # (FID: before went through torch-fidelity, within 1e-3 of radae's own features).
    before, after = r["fid_before_after"]
    assert after == pytest.approx(before, rel=1e-3)
    assert r["largest_metric_difference"]["abs"] < 1e-4, r["largest_metric_difference"]
