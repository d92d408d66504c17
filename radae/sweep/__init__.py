"""Distributed hyperparameter sweeps of radae on Ray Tune + Ray Train, tracked in MLflow, stored in S3.

The orchestration layer wraps the core (``radae.train``, ``radae.evaluate``) without changing it:

- :mod:`radae.sweep.settings`: one storage settings object (S3 endpoint, bucket, credentials from
  the environment) from which Ray, boto3, pyarrow and MLflow settings derive; credential scrubbing.
- :mod:`radae.sweep.space`: search spaces over dotted config keys, validated against RunConfig.
- :mod:`radae.sweep.definition`: sweep definitions (``sweeps/*.yaml``).
- :mod:`radae.sweep.options`: every option of a sweep run (flag, help, default, check) in one
  dataclass; :mod:`radae.sweep.cli` generates the scripts' command line from it.
- :mod:`radae.sweep.objective`: the documented scalar and two-objective (robustness, FID) modes.
- :mod:`radae.sweep.searcher`: the Tune searcher over an Optuna study (ask and tell; packs, seeds,
  early-stopped trials told PRUNED).
- :mod:`radae.sweep.results`: one Parquet object per trial in S3, idempotent; ``read_sweep``.
- :mod:`radae.sweep.tracking`: MLflow parent run per sweep, nested run per trial.
- :mod:`radae.sweep.trainable`: the Tune function trainable (TorchTrainer or direct executor).
- :mod:`radae.sweep.trial`: a trial's typed context and job, reporters, checkpoint restore and the one
  ``train_and_evaluate`` (single trials, pack members and ``sweeps/baselines.py``).
- :mod:`radae.sweep.shapes`: single or packed trial (chosen once, ``shape_of``), what a pack changes.
- :mod:`radae.sweep.packing`: several trials per GPU: ``gpus_per_trial`` (Ray GPU share, CUDA
  memory cap, concurrency) and ``pack_size`` (configurations per trial), validated up front.
- :mod:`radae.sweep.runner`: builds the Tuner (searcher, ASHA, failure config) and resumes.
- :mod:`radae.sweep.preflight`: bad input found before any trial starts.
- :mod:`radae.sweep.procfs`: the one ``/proc`` reader (process and socket tables; the driver lease and
  the local stack's tooling, ``cluster/stack.py``, use it).

Nothing here is imported by the core.
"""
