"""The full hyperparameter search of the robust GMM autoencoder (Optuna TPE + ASHA) on Ray.

Definition: ``sweeps/search.yaml``. Examples::

    source .stack/env                                       # written by cluster/start_stack.sh
    ray job submit --address $RAY_DASHBOARD --working-dir . -- python sweeps/search.py --smoke-test
    python sweeps/search.py --num-samples 64 --concurrency 4 --objective pareto
    python sweeps/search.py --sweep-id search-20261125-101500 --resume
"""

import sys
from pathlib import Path

from radae.sweep.cli import main

if __name__ == "__main__":
    sys.exit(main(Path(__file__).with_suffix(".yaml"), doc=__doc__))
