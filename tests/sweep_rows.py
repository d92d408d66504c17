"""A small sweep table in the row schema of radae/store/results.py, for report and table tests.

The values are made up but shaped like a real alpha/modes sweep (K x alpha x seeds), so the
tables, statistics and pages can be checked against numbers known in advance.
"""

import hashlib

import pandas as pd

LEVELS = (1, 3, 5)


def make_rows(
    *,
    ks=(1, 10, 25),
    alphas=(0.1, 0.95),
    seeds=(0, 1),
    with_keys=True,
    with_paper=True,
    extra_statuses=True,
    sweep_id="repro-test",
) -> pd.DataFrame:
    rows = []
    for k in ks:
        for a in alphas:
            for s in seeds:
                base = 0.3 + 0.01 * k + 0.2 * a + 0.005 * s  # robustness grows with K and alpha
                params = {"loss.alpha": a, "prior.num_modes": k}
                label = f"loss.alpha={a:g} prior.num_modes={k}"
                row = {
                    "sweep_id": sweep_id,
                    "trial_id": f"t{k:02d}a{int(a * 100):03d}s{s}",
                    "status": "completed",
                    "started_at": 1000.0 + 10 * len(rows),
                    "finished_at": 1060.0 + 10 * len(rows),
                    "wall_seconds": 60.0,
                    "executor": "direct",
                    "config.model.name": "rae",
                    "config.data.name": "mnist",
                    "config.train.epochs": 2,
                    "config.train.device": "cpu",
                    "config.eval.images": 8,
                    "config.eval.trials": 2,
                    "config.eval.attack_steps": 20,
                    "config.eval.fid_samples": 500,
                    "config.eval.fid_runs": 1,
                    "config.loss.alpha": a,
                    "config.prior.num_modes": k,
                    "config.train.out_dir": f"/nonexistent/{sweep_id}/t{k}{a}{s}",
                    "mlflow_run_id": f"run{k}{int(a * 100)}{s}",
                    "mlflow_experiment_id": "1",
                }
                row.update({f"param.{p}": v for p, v in params.items()})
                if with_keys:
                    row.update(
                        {
                            "seed": s,
                            "config_key": hashlib.sha256(label.encode()).hexdigest()[:12],
                            "config_label": label,
                        }
                    )
                for lv in LEVELS:
                    row[f"metric.latent_msssim_xt_recxa_l{lv}_mean"] = 1 - base + 0.02 * lv
                    row[f"metric.max_damage_msssim_recx_recxa_l{lv}_mean"] = base - 0.02 * lv
                    if with_paper:
                        row[f"metric.latent_msssim_paper_xt_recxa_l{lv}_mean"] = 1 - base + 0.02 * lv - 0.05
                        row[f"metric.max_damage_msssim_paper_recx_recxa_l{lv}_mean"] = base - 0.02 * lv - 0.05
                row["metric.fid_classifier_mean"] = 40.0 - k * 0.2 + 10 * a + s
                row["metric.robustness"] = base
                if with_paper:
                    row["metric.robustness_paper"] = base - 0.05
                row["metric.fid"] = row["metric.fid_classifier_mean"]
                row["metric.score"] = base - 0.1 * 3.7
                rows.append(row)
    if extra_statuses:
        rows.append(
            {
                "sweep_id": sweep_id,
                "trial_id": "tpruned",
                "status": "pruned",
                "param.loss.alpha": 0.5,
                "param.prior.num_modes": 5,
                "config.model.name": "rae",
            }
        )
        rows.append(
            {
                "sweep_id": sweep_id,
                "trial_id": "terror",
                "status": "error",
                "param.loss.alpha": 0.9,
                "param.prior.num_modes": 15,
                "config.model.name": "rae",
            }
        )
    return pd.DataFrame(rows)
