"""What a sweep's results mean: statistics over seeds and images, the paper's tables, reports and plots.

Reads rows through :mod:`radae.analysis.sources` (the one module that meets :mod:`radae.store`) and never
imports :mod:`radae.sweep`; ``dashboards/`` use this package only.

- :mod:`radae.analysis.sources`: a sweep's rows and per-image tables (S3 or Parquet), MLflow client, study link.
- :mod:`radae.analysis.aggregate`: per-configuration mean, std, n and interval of the rows.
- :mod:`radae.analysis.intervals`: bootstrap intervals over seeds and images, clipped to a metric's range.
- :mod:`radae.analysis.samples`: a configuration's values for those intervals (per image, else per seed).
- :mod:`radae.analysis.paper`: the paper's MNIST tables 1-4, transcribed.
- :mod:`radae.analysis.tables`: those tables built from a sweep's rows, radae's values beside the paper's.
- :mod:`radae.analysis.factors`: the factor table (B - A per training factor).
- :mod:`radae.analysis.curves`: robustness and clean reconstruction along training (the probes).
- :mod:`radae.analysis.report`: Pareto front and sensitivity plots.
- :mod:`radae.analysis.html_report`: the self-contained HTML page of a sweep.
"""
