"""The window x dimension study (the project's main experiment).

    python experiments/sweep.py                       # the default grid, a few minutes on 2 CPU cores
    python experiments/sweep.py --preset paper        # the full-size study
    python experiments/sweep.py --windows 1,2,3 --dims 25,50 --epochs 2 --seeds 0,1 --out runs/small

The same engine as `sg-jax sweep` (`sg_jax.sweep`), with the same options and outputs: OUT/runs.jsonl,
OUT/summary.csv, OUT/summary.md, the heatmaps and loss curves as PNG, and OUT/report.md. Rerunning a
command skips the runs already recorded in OUT/runs.jsonl. See experiments/README.md.
"""

from __future__ import annotations

import sys

from sg_jax.cli import main

if __name__ == "__main__":
    sys.exit(main(["sweep", *sys.argv[1:]]))
