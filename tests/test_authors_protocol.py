"""The authors' evaluation protocol as a distribution (radae.authors_protocol), on a small untrained model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from radae.authors_protocol import ProtocolSettings, authors_start, draw_distribution, percentile, summary

pytestmark = pytest.mark.usefixtures("one_thread")


class SmallAE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(1024, 32), nn.ReLU(), nn.Linear(32, 4))
        self.decoder = nn.Sequential(nn.Linear(4, 1024), nn.Sigmoid(), nn.Unflatten(1, (1, 32, 32)))

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def reconstruct(self, x):
        return self.decode(self.encode(x))


def test_authors_start_norm_is_uniform_up_to_lambda_and_not_clipped():
    x = torch.zeros(1, 32, 32)  # an all-black image: a clipped start would have no negative pixel
    gen = torch.Generator().manual_seed(0)
    starts = torch.stack([authors_start(x, 5.0, gen) for _ in range(2000)])
    norms = starts.flatten(1).norm(dim=1)
    assert norms.max() <= 5.0 and norms.min() > 0
    # U(0, 5): mean 2.5, sd 5 / sqrt(12) = 1.44; a ball-uniform start (r U^(1/d)) would sit at 5.
    assert abs(float(norms.mean()) - 2.5) < 0.15 and abs(float(norms.std()) - 1.443) < 0.1
    assert (starts < 0).any()


def test_draws_are_rows_of_the_protocol_outputs_and_reproducible():
    model = SmallAE().eval().requires_grad_(False)
    g = torch.Generator().manual_seed(1)
    x, xt = torch.rand(2, 1, 32, 32, generator=g), torch.rand(2, 1, 32, 32, generator=g)
    cfg = ProtocolSettings(draws=2, restarts=2, levels=(1.0, 3.0), maxfun=30)
    rows = draw_distribution(model, x, xt, cfg)
    assert len(rows) == 2 * 2 * 2
    assert [(r["draw"], r["attack"], r["lambda"]) for r in rows[:4]] == [
        (0, "latent", 1.0),
        (0, "latent", 3.0),
        (0, "max_damage", 1.0),
        (0, "max_damage", 3.0),
    ]
    for r in rows:
        pair = r["msssim_paper_xt_recxa"] if r["attack"] == "latent" else r["msssim_paper_recx_recxa"]
        assert 0 <= pair <= 1 and 0 <= r["msssim_paper_x_xa"] <= 1
        assert 0 < r["l2_x_xa"] <= r["lambda"] * (1 + 1e-5)
    assert draw_distribution(model, x, xt, cfg) == rows
    with pytest.raises(ValueError, match="need 3 images"):
        draw_distribution(model, x, xt, ProtocolSettings(draws=3))


def test_settings_refuse_bad_values():
    with pytest.raises(ValueError, match="restarts must be >= 1"):
        ProtocolSettings(restarts=0)
    with pytest.raises(ValueError, match="unknown attack"):
        ProtocolSettings(attacks=("pgd",))
    with pytest.raises(ValueError, match="lambda must be > 0"):
        ProtocolSettings(levels=(0.0,))


def test_percentile_and_its_exact_interval():
    values = [i / 100 for i in range(100)]
    share, low, high = percentile(values, 0.895)
    assert share == 0.9 and low < 0.9 < high and low > 0.8 and high < 0.96
    assert percentile(values, -1.0)[:2] == (0.0, 0.0)
    s = summary([1.0, 2.0, 3.0])
    assert s["mean"] == 2.0 and s["q50"] == 2.0 and s["sd"] == 1.0
