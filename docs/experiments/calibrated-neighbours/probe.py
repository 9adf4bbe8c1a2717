"""Design probe (issue 32): does holding the nearest other people's own pairs at their
original scores keep calibrated-rank's collateral near Retrain's?

On the *choose* half only (mmu_core/bench/probe.py): calibrated-rank with its tuned
setting, once as tuned and once with `hold=20` (the retained pairs of the 20 groups nearest
the request, each pair's ITC cosine and ITM logit regressed to the original's), each
against the list's own Retrain.

    PYTHONPATH=. python docs/experiments/calibrated-neighbours/probe.py     # resumable
"""

from pathlib import Path

from mmu_core.bench.probe import probe

if __name__ == "__main__":
    probe(Path(__file__).parent, "calibrated-rank", {"hold": 20}, "hold")
