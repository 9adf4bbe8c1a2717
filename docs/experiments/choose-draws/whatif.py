"""Would the privacy-5 choices change if each choose list were read against the mean of
three Retrain draws, as the confirm lists are, instead of its seed-0 Retrain?

Reads the tuning's committed cells only (every method's grid on `val-0` and `val-1`, and
the draws `privacy-5-val-<k>-retrain-seed{1,2}.json`, computed by
`python -m mmu_core bench tune --scenario privacy --size 5 --method retrain --reference-draws`).
The rule is the protocol's (`bench/tuning.py` `choose`).

    PYTHONPATH=. python docs/experiments/choose-draws/whatif.py     # seconds; whatif.json
"""

import json
from pathlib import Path

from mmu_core.bench.tuning import GRIDS, choose, reference
from mmu_core.metrics.compare import compare

CELLS = Path(__file__).resolve().parents[2] / "results" / "bench" / "tuning" / "cells"
LISTS = ("val-0", "val-1")


def draws(stem: str, many: bool) -> list[dict]:
    first = [json.loads((CELLS / f"{stem}-retrain.json").read_text())]
    more = sorted(CELLS.glob(f"{stem}-retrain-seed*.json")) if many else []
    return first + [json.loads(p.read_text()) for p in more]


def main() -> list[dict]:
    refs = {(v, many): reference(draws(f"privacy-5-{v}", many))
            for v in LISTS for many in (False, True)}
    rows = []
    for method, grid in GRIDS.items():
        row = {"method": method}
        for many, key in ((False, "one_draw"), (True, "three_draws")):
            per = {k: [compare(json.loads((CELLS / f"privacy-5-{v}-{method}-{k}.json")
                                          .read_text())["metrics"],
                               refs[(v, many)]["metrics"])["retrieval"] for v in LISTS]
                   for k in range(len(grid))}
            best, means = choose(per)
            row[key] = {"chosen": best, "settings": grid[best],
                        "four_axis": [round(means["four_axis"][k], 2) for k in sorted(per)]}
        row["changed"] = row["one_draw"]["chosen"] != row["three_draws"]["chosen"]
        rows.append(row)
        print(json.dumps(row))
    out = Path(__file__).parent / "whatif.json"
    out.write_text(json.dumps({"draws": {v: refs[(v, True)].get("draws", 1) for v in LISTS},
                               "rows": rows}, indent=1))
    return rows


if __name__ == "__main__":
    main()
