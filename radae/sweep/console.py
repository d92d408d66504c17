"""What a sweep prints while it runs: one short line per trial event and a compact final table.

Tune's own console output is turned off (``verbose=0``): it prints every trial's whole result,
about 190 metrics, and a final table of the first metrics it happens to find. Instead the driver's
:class:`ConsoleCallback` (built in :mod:`radae.sweep.runner`) prints, per configuration:

    trial 3f2a_00001 started: alpha=0.95 K=25 seed=1
    trial 3f2a_00001 epoch 2: val_loss 0.0412
    trial 3f2a_00001 done: score 0.3712, R 0.7412, FID 45.03 (alpha=0.95 K=25 seed=1); 2 training epochs + the final evaluation = 3 reports to Tune

and at the end one row per configuration: trial, status, searched params and seed, score, R, FID.
Tune counts each report of a trial as an "iteration": every epoch's, plus the one final report
that carries the evaluation (so 2 epochs read "3 iterations" in Tune's logs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from radae.objective import FINAL_KEY

# Final metrics shown, in order: (result key, label, format).
SHOWN = (("score", "score", "{:.4f}"), ("robustness", "R", "{:.4f}"), ("fid", "FID", "{:.2f}"))
SHORT = {"prior.num_modes": "K", "loss.alpha": "alpha", "seed": "seed"}


def params_text(params: Mapping[str, Any]) -> str:
    """``alpha=0.95 K=25 seed=1``: searched keys by their last component (K and alpha for the paper's)."""

    def text(v: Any) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)

    return " ".join(f"{SHORT.get(k, k.rsplit('.', 1)[-1])}={text(v)}" for k, v in params.items())


def metrics_text(result: Mapping[str, Any]) -> str:
    """``score 0.3712, R 0.7412, FID 45.03`` (the entries present and finite)."""
    parts = []
    for key, label, form in SHOWN:
        value = result.get(key)
        if isinstance(value, int | float) and math.isfinite(float(value)):
            parts.append(f"{label} {form.format(float(value))}")
    return ", ".join(parts) or "no objective metrics"


def iterations_text(epochs: int | None, reports: int | None) -> str:
    """What Tune's iteration count means for a trial: its epochs plus the final evaluation's report."""
    if not epochs:
        return f"{reports or 0} reports to Tune"
    return f"{epochs} training epochs + the final evaluation = {epochs + 1} reports to Tune"


def started_line(trial: str, params: Mapping[str, Any]) -> str:
    return f"trial {trial} started: {params_text(params)}"


def epoch_line(trial: str, result: Mapping[str, Any]) -> str | None:
    """One line per epoch report (None for a report without an epoch, e.g. the final one)."""
    if "epoch" not in result or result.get(FINAL_KEY):
        return None
    loss = next((result[k] for k in ("val_loss", "m0.val_loss") if k in result), None)
    return f"trial {trial} epoch {int(result['epoch'])}" + (f": val_loss {float(loss):.4g}" if loss is not None else "")


def done_line(trial: str, params: Mapping[str, Any], result: Mapping[str, Any], reports: int | None) -> str:
    epochs = result.get("epochs_trained")
    return (
        f"trial {trial} done: {metrics_text(result)} ({params_text(params)}); "
        f"{iterations_text(int(epochs) if isinstance(epochs, int | float) else None, reports)}"
    )


def final_table(rows: Sequence[tuple[str, str, Mapping[str, Any], Mapping[str, Any]]]) -> str:
    """The sweep's closing table: ``(trial, status, params, final metrics)`` per configuration."""
    header = ["trial", "status", "configuration", *(label for _, label, _ in SHOWN)]
    body = []
    for trial, status, params, result in rows:
        cells = []
        for key, _, form in SHOWN:
            value = result.get(key)
            ok = isinstance(value, int | float) and math.isfinite(float(value))
            cells.append(form.format(float(value)) if ok else "-")
        body.append([trial, status, params_text(params), *cells])
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *body]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])
