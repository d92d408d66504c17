"""radae: robust deterministic autoencoders with a Gaussian-mixture prior.

The core (this package's top level) runs with torch alone; ``radae.sweep`` wraps it with Ray,
MLflow and S3 and is imported only by the sweep scripts.
"""

__version__ = "0.1.0"
