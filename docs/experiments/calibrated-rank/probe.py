"""Design probe (issue 32): does calibrated's `rank` score close its R@D_f gap?

On the *choose* half only (`val-<k>`, the lists the tuning chose on; no confirm list, no
reported cell): calibrated with its tuned setting, once as tuned and once with
`rank=True`, each against the list's own Retrain (the tuning cells). The tuned runs are
read from docs/results/bench/tuning/cells; the rank runs are computed here.

    PYTHONPATH=. python docs/experiments/calibrated-rank/probe.py     # resumable
"""

from __future__ import annotations

import json
from pathlib import Path

from mmu_core.bench.confirm import list_figures
from mmu_core.bench.tuning import GRIDS, validation_cell
from mmu_core.bench.unlearning import cached_cell
from mmu_core.data.generate import default_world
from mmu_core.data.scenarios import load_scenario, validation_sets
from mmu_core.models.backbone import load_backbone
from mmu_core.unlearn.tuned import tuned_settings

HERE = Path(__file__).parent
TUNING = HERE.parents[1] / "results" / "bench" / "tuning" / "cells"
SETTINGS = (("privacy", 5), ("privacy", 50), ("copyright", 35), ("copyright", 170))


def figures(cell: dict, ref: dict) -> dict:
    """The confirm table's figures for one list (bench/confirm.py), rounded, with the steps."""
    f = list_figures(cell, ref)
    return {"four_axis": round(f["four_axis"], 2), "avg_g": round(f["avg_g"], 2),
            "signed": {k: round(v, 1) for k, v in f["signed"].items()},
            **{k: f[k] for k in ("collateral", "retrain_collateral", "seconds")},
            "steps": cell["unlearning"]["steps"]}


def main() -> None:
    root, rows = default_world(), []
    for scenario, size in SETTINGS:
        view, original = load_scenario(root, scenario).validation_view(), None
        tuned, _ = tuned_settings("calibrated", scenario, size)
        k = GRIDS["calibrated"].index(tuned)
        for vpath in validation_sets(root, scenario)[size]:
            stem = f"{scenario}-{size}-{vpath.stem}"
            ref = json.loads((TUNING / f"{stem}-retrain.json").read_text())
            base = json.loads((TUNING / f"{stem}-calibrated-{k}.json").read_text())

            def compute():
                nonlocal original
                original = original or load_backbone(f"embedded:{scenario}")
                return validation_cell(original, view, scenario, size, vpath, "calibrated",
                                       {**tuned, "rank": True}, f"{stem}-rank", 300,
                                       protocol="probe")
            ranked = cached_cell(HERE, f"{stem}-rank", compute)
            rows.append({"list": stem, "settings": tuned, "tuned": figures(base, ref),
                         "rank": figures(ranked, ref)})
            print(json.dumps(rows[-1]))
    (HERE / "probe.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
