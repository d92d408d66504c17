"""radae's models: every Autoencoder by name (MODELS) and the shared encoder/decoder nets (NETWORKS).

    model = create_model(cfg, image_shape=(1, 32, 32))   # MODELS.get(cfg.model.name).from_config(...)

Importing a model module registers it in MODELS: add one import per model module below.
"""

# Model modules (each registers itself in MODELS on import). The paper's baselines go here too,
# one line per module, e.g. ``vae``.
from radae.models import baselines, rae  # noqa: F401  (register "rae" and the paper's six baselines)
from radae.models.base import MODELS, Autoencoder, LossOutput, create_model
from radae.models.networks import NETWORKS, build_networks

__all__ = ["MODELS", "NETWORKS", "Autoencoder", "LossOutput", "build_networks", "create_model"]
