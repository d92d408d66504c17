"""The robustness gap's K trend with one mode placement for every K (K x placement x seed) on Ray.

Definition: ``sweeps/robustness_gap_modes.yaml`` (a grid). Examples::

    source .stack/env                                       # written by cluster/start_stack.sh
    ray job submit --address $RAY_DASHBOARD --working-dir . -- python sweeps/robustness_gap_modes.py --smoke-test
    python sweeps/robustness_gap_modes.py --concurrency 2 --data-dir /path/to/mnist
    python sweeps/robustness_gap_modes.py --sweep-id robustness-gap-modes-20261125-101500 --resume
"""

import sys
from pathlib import Path

from radae.sweep.cli import main

if __name__ == "__main__":
    sys.exit(main(Path(__file__).with_suffix(".yaml"), doc=__doc__))
