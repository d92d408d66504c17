"""The paper's sensitivity study over loss.alpha and prior.num_modes (tables 2 and 3) on Ray.

Definition: ``sweeps/alpha_modes.yaml`` (a grid; Optuna's GridSampler enumerates it). Examples::

    source .stack/env                                       # written by cluster/start_stack.sh
    ray job submit --address $RAY_DASHBOARD --working-dir . -- python sweeps/alpha_modes.py --smoke-test
    python sweeps/alpha_modes.py --concurrency 2 --data-dir /path/to/mnist
    python sweeps/alpha_modes.py --sweep-id alpha-modes-20261125-101500 --resume
"""

import sys
from pathlib import Path

from radae.sweep.cli import main

if __name__ == "__main__":
    sys.exit(main(Path(__file__).with_suffix(".yaml"), doc=__doc__))
