"""Which SLUG cells does the out-of-reach fix change? SLUG used to keep, when no layer
reached its target, the largest admissible step; it now keeps the admissible step (tried
by the searches or on a grid up to that limit) that lowers the forgetting signal most.
Where the signal falls steadily with the step both give the same layer and step, and a
cell computed before the fix stands. This re-runs SLUG (no evaluation) on the request of
every tuning cell and of every paper-preset cell and lists those whose layer or step
differ: only those need recomputing.

    PYTHONPATH=. python docs/experiments/slug-best-step/check.py  # results.json beside it
"""

import json
from pathlib import Path

from mmu_core.data.generate import default_world
from mmu_core.data.scenarios import (forget_list_path, load_forget_ids, load_scenario,
                                     validation_sets)
from mmu_core.models.backbone import load_backbone
from mmu_core.unlearn import run
from mmu_core.unlearn.request import Request

ROOT = Path(__file__).resolve().parents[3]
RESULTS = ROOT / "docs" / "results" / "bench"


def main():
    world = default_world()
    rows = []
    for scenario in ("privacy", "copyright"):
        sc = load_scenario(world, scenario)
        view = sc.validation_view()
        original = load_backbone(f"embedded:{scenario}")
        sets = {int(size): lists for size, lists in validation_sets(world, scenario).items()}
        for path in sorted((RESULTS / "tuning" / "cells").glob(f"{scenario}-*-slug-*.json")):
            cell = json.loads(path.read_text())
            vpath = next(v for v in sets[int(cell["size"])] if v.stem == cell["validation_set"])
            request = Request.build(original, view, load_forget_ids(vpath), scenario)
            rows.append(_compare(path, cell, request))
        for path in sorted((RESULTS / "paper" / "cells").glob(f"{scenario}-*-slug.json")):
            cell = json.loads(path.read_text())
            ids = load_forget_ids(forget_list_path(world, scenario, cell["size"], cell["seed"]))
            request = Request.build(original, sc, ids, scenario, seed=cell["seed"])
            rows.append(_compare(path, cell, request))
    changed = [r for r in rows if r["changed"]]
    out = {"cells": len(rows), "changed": len(changed), "rows": rows}
    (Path(__file__).parent / "results.json").write_text(json.dumps(out, indent=1))
    print(f"{len(changed)} of {len(rows)} SLUG cells change:")
    for r in changed:
        print(" ", r["cell"], r["before"], "->", r["after"])


def _compare(path, cell, request):
    _, info = run("slug", request, **cell["settings"])
    old = cell["unlearning"]
    before = {"layer": old["layer"], "step": old["step"], "reached": old["target_reached"]}
    after = {"layer": info["layer"], "step": info["step"], "reached": info["target_reached"]}
    row = {"cell": path.name, "before": before, "after": after,
           "changed": (before["layer"], before["step"]) != (after["layer"], after["step"])}
    print(row, flush=True)
    return row


if __name__ == "__main__":
    main()
