"""Running a sweep: Ray Tune + Ray Train over radae's core, searched by Optuna.

The orchestration layer wraps the core (``radae.train``, ``radae.evaluate``) without changing it. It writes
through :mod:`radae.store` and publishes the report of :mod:`radae.analysis` at the end.

- :mod:`radae.sweep.space`: search spaces over dotted config keys, validated against RunConfig.
- :mod:`radae.sweep.definition`: sweep definitions (``sweeps/*.yaml``).
- :mod:`radae.sweep.options`: every option of a sweep run (flag, help, default, check) in one
  dataclass; :mod:`radae.sweep.cli` generates the scripts' command line from it.
- :mod:`radae.sweep.searcher`: the Tune searcher over an Optuna study (ask and tell; packs, seeds,
  early-stopped trials told PRUNED); the objective it optimises is :mod:`radae.objective`.
- :mod:`radae.sweep.seeds`: S seeds per configuration, grouped for the searcher.
- :mod:`radae.sweep.trainable`: the Tune function trainable (TorchTrainer or direct executor).
- :mod:`radae.sweep.trial`: a trial's typed context and job, reporters, checkpoint restore and the one
  ``train_and_evaluate`` (single trials, pack members and ``sweeps/baselines.py``).
- :mod:`radae.sweep.shapes`: single or packed trial (chosen once, ``shape_of``), what a pack changes.
- :mod:`radae.sweep.packing`: several trials per GPU: ``gpus_per_trial`` (Ray GPU share, CUDA
  memory cap, concurrency) and ``pack_size`` (configurations per trial), validated up front.
- :mod:`radae.sweep.runner`: builds the Tuner (searcher, ASHA, failure config) and resumes.
- :mod:`radae.sweep.console`: one line per trial event on the driver's console.

Nothing here is imported by the core, the store or the analysis.
"""
