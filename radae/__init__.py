"""radae: robust deterministic autoencoders with a Gaussian-mixture prior.

The core (this package's top level and its model, data, attack and fast-path packages) runs with
torch alone. Three packages wrap it: ``radae.sweep`` runs sweeps on Ray, ``radae.store`` keeps their
results (S3, MLflow, Optuna) and ``radae.analysis`` says what they mean (docs/architecture.md).
"""

__version__ = "0.1.0"
