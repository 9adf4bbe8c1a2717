"""Design probe (issue 32): does calibrated's `cross` pull close its R@D_f gap?

On the *choose* half only (mmu_core/bench/probe.py): calibrated with its tuned setting,
once as tuned and once with `cross=True`, each against the list's own Retrain.

    PYTHONPATH=. python docs/experiments/calibrated-cross/probe.py     # resumable
"""

from pathlib import Path

from mmu_core.bench.probe import probe

# copyright was left out on 2026-12-05 for time: privacy had answered (see README.md)
if __name__ == "__main__":
    probe(Path(__file__).parent, "calibrated", {"cross": True}, "cross",
          settings=(("privacy", 5), ("privacy", 50)))
