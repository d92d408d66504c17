"""Where a sweep's results live: S3 objects, MLflow runs, the Optuna study file, and the checks and
retries around those services. Used by the sweep (:mod:`radae.sweep`) to write and by the analysis
(:mod:`radae.analysis`) to read; imports nothing from either.

- :mod:`radae.store.settings`: one storage settings object (S3 endpoint, bucket, credentials from the
  environment) from which Ray, boto3, pyarrow and MLflow settings derive; credential scrubbing.
- :mod:`radae.store.s3fs`: a pyarrow S3 filesystem whose pickle holds no credential.
- :mod:`radae.store.retry`: bounded retries with backoff that name the outage.
- :mod:`radae.store.results`: one Parquet object per trial (and per-image tables), idempotent; ``read_sweep``.
- :mod:`radae.store.images`: a trial's per-image rows (every attacked image's metrics).
- :mod:`radae.store.tracking`: MLflow parent run per sweep, nested run per trial.
- :mod:`radae.store.studies`: the Optuna study file and optuna-dashboard's page of a study.
- :mod:`radae.store.fidnet`: one FID feature network per sweep, stored with the results, fetched by every trial.
- :mod:`radae.store.lease`: one driver per sweep, an S3 lease changed only by conditional writes.
- :mod:`radae.store.preflight`: the services (S3, MLflow, Ray) and the definition checked before any trial starts.
- :mod:`radae.store.procfs`: the one ``/proc`` reader (process and socket tables).
"""
