"""train.precision / eval.precision: bf16 autocast around the network forwards only, refused where unsupported."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from radae import precision as prec
from radae.config import ConfigError, RunConfig, apply_overrides
from radae.data import dataset_info
from radae.fast import check_packable
from radae.models import create_model
from radae.names import check_names
from radae.precision import check_precision, network_precision
from radae.trainer import train, validate
from radae.trainsteps import make_optimizer, make_train_step

pytestmark = pytest.mark.usefixtures("one_thread")

CPU = torch.device("cpu")
HAS_BF16 = prec.bf16_supported(CPU)
needs_bf16 = pytest.mark.skipif(not HAS_BF16, reason="this CPU has no avx512_bf16/amx_bf16")


def _cfg(**overrides) -> RunConfig:
    base = {"data.name": "mnist", "train.device": "cpu", "loss.weight_batches": 5}
    return apply_overrides(RunConfig(), base | overrides)


def _batch(n: int = 100) -> torch.Tensor:
    return torch.rand((n, *dataset_info("mnist").image_shape), generator=torch.Generator().manual_seed(3))


def _steps(cfg: RunConfig, steps: int) -> tuple[list[float], torch.nn.Module]:
    """``steps`` training steps of a fresh seed-0 model on one fixed batch; the losses and the model."""
    torch.manual_seed(0)
    model = create_model(cfg, dataset_info("mnist").image_shape)
    step = make_train_step(model, make_optimizer(model, cfg), cfg, CPU)
    gen, x = torch.Generator().manual_seed(1), _batch()
    return [float(step(x, gen)["loss"]) for _ in range(steps)], model


def test_precision_round_trips_through_the_config():
    cfg = _cfg(**{"train.precision": "bf16", "eval.precision": "bf16"})
    assert cfg.train.precision == cfg.eval.precision == "bf16"
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.flat()["train.precision"] == "bf16"
    assert RunConfig().train.precision == RunConfig().eval.precision == "fp32"
    with pytest.raises(ConfigError, match=r"train.precision 'fp16' is unknown; known: bf16, fp32"):
        check_names(_cfg(**{"train.precision": "fp16"}))
    with pytest.raises(ConfigError, match=r"eval.precision 'half' is unknown"):
        check_names(_cfg(**{"eval.precision": "half"}))


def test_bf16_is_refused_on_a_cpu_without_bf16_before_any_work(monkeypatch, tmp_path):
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    out = tmp_path / "run"
    cfg = _cfg(**{"train.precision": "bf16", "train.out_dir": str(out)})
    message = r"train.precision bf16 needs native bfloat16 support, but this CPU has none of the flags avx512_bf16"
    with pytest.raises(ConfigError, match=message):
        validate(cfg)
    with pytest.raises(ConfigError, match=message):
        train(cfg, progress=False)  # before the data is read or the output folder is made
    assert not out.exists()
    with pytest.raises(
        ConfigError, match=r"eval.precision bf16 needs native bfloat16 support.*use eval.precision fp32"
    ):
        check_precision("bf16", CPU, "eval.precision")
    assert check_precision("fp32", CPU, "train.precision").dtype is None


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_tile\n\nprocessor\t: 1\nflags\t: fpu\n")
    assert prec.cpu_flags(str(info)) == {"fpu", "avx512f", "avx512_bf16", "amx_tile"}
    assert prec.cpu_flags(str(tmp_path / "absent")) == frozenset()


def test_packed_training_refuses_bf16():
    cfgs = [_cfg(**{"train.precision": p, "train.out_dir": f"runs/p{i}"}) for i, p in enumerate(("fp32", "bf16"))]
    with pytest.raises(ConfigError, match=r"train.precision 'bf16' is not supported by packed training \(member 1\)"):
        check_packable(cfgs)


@needs_bf16
def test_network_precision_switches_only_the_networks_and_restores_them():
    torch.manual_seed(0)
    model = create_model(_cfg(), dataset_info("mnist").image_shape)
    keys = list(model.state_dict())
    x = _batch(8)
    z32 = model.encode(x)
    with network_precision(model, "bf16", CPU):
        z16 = model.encode(x)
        inner = torch.ones(4, 4) @ torch.ones(4, 4)  # code outside the networks stays float32
        with network_precision(model, "bf16", CPU):  # nesting is a no-op
            assert model.encode(x).equal(z16)
    assert z16.dtype == torch.float32 and inner.dtype == torch.float32
    assert not z16.equal(z32)  # the matmuls ran in bfloat16
    assert torch.allclose(z16, z32, rtol=0.05, atol=0.05 * float(z32.detach().abs().max()))
    assert "forward" not in vars(model.encoder) and model.encode(x).equal(z32)
    assert list(model.state_dict()) == keys
    assert all(p.dtype == torch.float32 for p in model.parameters())


@needs_bf16
def test_bf16_training_steps_track_fp32():
    fp32, m32 = _steps(_cfg(), 8)
    bf16, m16 = _steps(_cfg(**{"train.precision": "bf16"}), 8)
    assert fp32 != bf16  # bf16 really ran
    # Same weights at the first step: only bf16 rounding differs. Later steps drift apart as two fp32
    # runs on different hardware would (FGSM's sign() amplifies last-bit differences), within a few %.
    assert bf16[0] == pytest.approx(fp32[0], rel=1e-3)
    for a, b in zip(fp32, bf16, strict=True):
        assert b == pytest.approx(a, rel=0.15)
    assert sum(bf16) == pytest.approx(sum(fp32), rel=0.05)
    assert bf16[-1] < bf16[0]  # and it trains
    assert all(p.dtype == torch.float32 for p in m16.parameters())
    assert "forward" not in vars(m16.encoder) and "forward" not in vars(m16.decoder)


@needs_bf16
def test_bf16_run_trains_and_writes_the_same_files(tmp_path):
    from radae.data import DataError, load_dataset  # noqa: PLC0415  (real MNIST only for this test)

    overrides = {"data.data_dir": "/work/shared/data/mnist", "data.download": False, "data.train_limit": 1000}
    overrides |= {"train.epochs": 1, "train.max_steps_per_epoch": 5, "train.precision": "bf16"}
    cfg = _cfg(**overrides, **{"train.out_dir": str(tmp_path / "bf16")})
    try:
        data = load_dataset(cfg.data)
    except DataError as err:
        pytest.skip(f"real MNIST not available: {err}")
    result = train(cfg, data=data, progress=False)
    assert Path(result.checkpoint).exists()
    fp32 = train(
        dataclasses.replace(
            cfg, train=dataclasses.replace(cfg.train, precision="fp32", out_dir=str(tmp_path / "fp32"))
        ),
        data=data,
        progress=False,
    )
    v16, v32 = result.summary["final"]["val_loss"], fp32.summary["final"]["val_loss"]
    assert v16 == pytest.approx(v32, rel=0.1)
