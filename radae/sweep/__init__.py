"""Distributed hyperparameter sweeps of radae on Ray Tune + Ray Train, tracked in MLflow, stored in S3.

The orchestration layer wraps the core (``radae.train``, ``radae.evaluate``) without changing it:

- :mod:`radae.sweep.settings`: one storage settings object (S3 endpoint, bucket, credentials from
  the environment) from which Ray, boto3, pyarrow and MLflow settings derive; credential scrubbing.
- :mod:`radae.sweep.space`: search spaces over dotted config keys, validated against RunConfig.
- :mod:`radae.sweep.definition`: sweep definitions (``sweeps/*.yaml``).
- :mod:`radae.sweep.objective`: the documented scalar and two-objective (robustness, FID) modes.
- :mod:`radae.sweep.searcher`: OptunaSearch that records early-stopped trials as PRUNED.
- :mod:`radae.sweep.results`: one Parquet object per trial in S3, idempotent; ``read_sweep``.
- :mod:`radae.sweep.tracking`: MLflow parent run per sweep, nested run per trial.
- :mod:`radae.sweep.trainable`: the Tune function trainable (TorchTrainer or direct executor).
- :mod:`radae.sweep.trial`: a trial's typed context and job, reporters, checkpoint restore and the one
  ``train_and_evaluate`` (single trials, pack members and ``sweeps/baselines.py``).
- :mod:`radae.sweep.shapes`: single or packed trial (chosen once, ``shape_of``), what a pack changes.
- :mod:`radae.sweep.packing`: several trials per GPU: ``gpus_per_trial`` (Ray GPU share, CUDA
  memory cap, concurrency) and ``pack_size`` (configurations per trial), validated up front.
- :mod:`radae.sweep.runner`: builds the Tuner (OptunaSearch, ASHA, failure config) and resumes.
- :mod:`radae.sweep.preflight`: bad input found before any trial starts.
- :mod:`radae.sweep.stack`: the local stack (moto S3, MLflow server, Ray head) on 127.0.0.1.

Nothing here is imported by the core.
"""
