"""Design probes on the choose half (issue 32): a method's tuned setting with one change,
on the lists the tuning chose on (`val-<k>`), each against the list's own Retrain (the
tuning cells). No confirm list and no reported cell is read; nothing is chosen here (a
change that helps goes through the grid like every setting). The tuned runs are read
from the tuning's cells; the changed ones are computed into `out`/cells (resumable).
Used by the scripts in docs/experiments/calibrated-*/."""

from __future__ import annotations

import json
from pathlib import Path

TUNING = Path(__file__).resolve().parents[2] / "docs" / "results" / "bench" / "tuning" / \
    "cells"
SETTINGS = (("privacy", 5), ("privacy", 50), ("copyright", 35), ("copyright", 170))


def figures(cell: dict, ref: dict) -> dict:
    """The confirm table's figures for one list (bench/confirm.py), rounded, with the steps."""
    from mmu_core.bench.confirm import list_figures

    f = list_figures(cell, ref)
    return {"four_axis": round(f["four_axis"], 2), "avg_g": round(f["avg_g"], 2),
            "signed": {k: round(v, 1) for k, v in f["signed"].items()},
            **{k: f[k] for k in ("collateral", "retrain_collateral", "seconds")},
            "steps": cell["unlearning"]["steps"]}


def probe(out: Path, method: str, change: dict, tag: str, settings=SETTINGS,
          log=print) -> list[dict]:
    """Per choose list of `settings` ((scenario, size), ...): the tuned cell's figures and
    those of the same setting updated with `change` (cells named <list>-<tag>), written to
    `out`/probe.json."""
    from mmu_core.bench.tuning import GRIDS, validation_cell
    from mmu_core.bench.unlearning import cached_cell
    from mmu_core.data.generate import default_world
    from mmu_core.data.scenarios import load_scenario, validation_sets
    from mmu_core.models.backbone import load_backbone
    from mmu_core.unlearn.tuned import tuned_settings

    root, rows = default_world(), []
    for scenario, size in settings:
        view, original = load_scenario(root, scenario).validation_view(), None
        tuned, _ = tuned_settings(method, scenario, size)
        k = GRIDS[method].index(tuned)
        for vpath in validation_sets(root, scenario)[size]:
            stem = f"{scenario}-{size}-{vpath.stem}"
            ref = json.loads((TUNING / f"{stem}-retrain.json").read_text())
            base = json.loads((TUNING / f"{stem}-{method}-{k}.json").read_text())

            def compute():
                nonlocal original
                original = original or load_backbone(f"embedded:{scenario}")
                return validation_cell(original, view, scenario, size, vpath, method,
                                       {**tuned, **change}, f"{stem}-{tag}", 300,
                                       protocol="probe")
            changed = cached_cell(out, f"{stem}-{tag}", compute)
            rows.append({"list": stem, "settings": tuned, "tuned": figures(base, ref),
                         tag: figures(changed, ref)})
            log(json.dumps(rows[-1]))
    (out / "probe.json").write_text(json.dumps(rows, indent=1))
    return rows
