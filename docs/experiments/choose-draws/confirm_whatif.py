"""Would the three remade choices carry better? Each changed method's new privacy-5
setting (whatif.json) on the six confirm lists, against the mean of each list's three
Retrain draws, beside its committed confirm cell (the old setting). Nothing is chosen here;
no D_test or reported cell is read.

    PYTHONPATH=. python docs/experiments/choose-draws/confirm_whatif.py   # ~20 min; resumable
"""

import json
import statistics
from pathlib import Path

HERE = Path(__file__).parent
CONFIRM = HERE.parents[1] / "results" / "bench" / "confirm" / "cells"


def main() -> list[dict]:
    from mmu_core.bench.confirm import list_figures
    from mmu_core.bench.tuning import reference, validation_cell
    from mmu_core.bench.unlearning import cached_cell
    from mmu_core.data.generate import default_world
    from mmu_core.data.scenarios import load_scenario, validation_sets
    from mmu_core.models.backbone import load_backbone

    root = default_world()
    view = load_scenario(root, "privacy").validation_view()
    original = None
    changed = [r for r in json.loads((HERE / "whatif.json").read_text())["rows"] if r["changed"]]
    rows = []
    for r in changed:
        method, new = r["method"], r["three_draws"]["settings"]
        per = {"old": [], "new": []}
        for vpath in validation_sets(root, "privacy", "confirm")[5]:
            stem = f"privacy-5-{vpath.stem}"
            ref = reference([json.loads((CONFIRM / f"{stem}-{n}.json").read_text())
                             for n in ("retrain", "retrain-seed1", "retrain-seed2")])
            old = json.loads((CONFIRM / f"{stem}-{method}.json").read_text())

            def compute():
                nonlocal original
                original = original or load_backbone("embedded:privacy")
                return validation_cell(original, view, "privacy", 5, vpath, method, new,
                                       f"{stem}-{method}-new", 300, protocol="probe")
            cell = cached_cell(HERE, f"{stem}-{method}-new", compute)
            for key, c in (("old", old), ("new", cell)):
                f = list_figures(c, ref)
                per[key].append({"list": vpath.stem, "four_axis": round(f["four_axis"], 2),
                                 "signed": {k: round(v, 1) for k, v in f["signed"].items()},
                                 "collateral": f["collateral"], "seconds": f["seconds"]})
        row = {"method": method, "old": r["one_draw"]["settings"], "new": new, "lists": per,
               **{f"mean_{k}": round(statistics.mean(p["four_axis"] for p in v), 2)
                  for k, v in per.items()}}
        rows.append(row)
        print(json.dumps({k: row[k] for k in ("method", "mean_old", "mean_new")}), flush=True)
        (HERE / "confirm_whatif.json").write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
