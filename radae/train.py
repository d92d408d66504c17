"""Train a robust GMM-prior autoencoder (or a baseline) on one dataset.

With no arguments it trains the default config briefly on real FashionMNIST (5 epochs, CPU when
no GPU) and prints where its outputs went. Examples::

    python -m radae.train                                   # the demo: FashionMNIST, 5 epochs
    python -m radae.train --dataset mnist --epochs 5 --data-dir /path/to/mnist
    python -m radae.train --dataset mnist --loss.alpha 0.9 --prior.num_modes 25 --out-dir runs/k25
    python -m radae.train --dataset mnist --adv.method pgd --adv.pgd_steps 5
    python -m radae.train --dataset mnist --prior.num_modes 1          # unimodal variant
    python -m radae.train --out-dir runs/k25 --epochs 20 --resume      # continue that run, 20 epochs in all
    python -m radae.train --config runs/k25/config.json --out-dir runs/k25-again

Every config field is an option ``--section.field`` (see below). Outputs in ``train.out_dir``
(default ``runs/<dataset>-<model>``): ``config.json``, ``checkpoint.pt`` (every epoch, atomic),
``metrics.jsonl`` (one JSON line per epoch), ``summary.json``, ``samples.png`` and
``reconstructions.png``. An output folder holding a checkpoint is never overwritten.

``--resume`` continues the run in ``--out-dir`` from its checkpoint, with the checkpoint's config;
only ``train.epochs``, ``train.device``, ``data.data_dir`` and ``data.download`` may be changed
on the command line (anything else would be another run, and is refused).

Exit status: 0 done; 2 bad input (config value, data, output folder, checkpoint), named in the
message; 3 the loss became NaN or infinite (the last good checkpoint is kept).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from radae.checkpoint import CheckpointError, config_of, load_checkpoint
from radae.cli import build_parser, overrides_from_args, parse_config
from radae.config import ConfigError, apply_overrides
from radae.runfolder import RunFolderError, TrainResult
from radae.trainer import TrainingDiverged, train

__all__ = ["TrainResult", "TrainingDiverged", "RunFolderError", "main", "train"]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m radae.train``; returns the exit status."""
    parser = build_parser("python -m radae.train", __doc__)
    cfg, args = parse_config(parser, argv)
    try:
        ckpt = Path(cfg.train.out_dir) / "checkpoint.pt"
        if args.resume and not args.config and ckpt.exists():
            # Resume the stored run: its config, plus what this command line changes.
            cfg = apply_overrides(config_of(load_checkpoint(ckpt), ckpt), overrides_from_args(args))
        train(cfg, resume=args.resume)
    except ConfigError as err:
        parser.error(str(err))
    except (RunFolderError, CheckpointError, ValueError) as err:  # DataError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print(f"error: training diverged: {err}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
