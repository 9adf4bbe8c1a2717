"""Design probe (issue 32): does calibrated's `rank` score close its R@D_f gap?

On the *choose* half only (mmu_core/bench/probe.py): calibrated with its tuned setting,
once as tuned and once with `rank=True`, each against the list's own Retrain.

    PYTHONPATH=. python docs/experiments/calibrated-rank/probe.py     # resumable
"""

from pathlib import Path

from mmu_core.bench.probe import probe

if __name__ == "__main__":
    probe(Path(__file__).parent, "calibrated", {"rank": True}, "rank")
