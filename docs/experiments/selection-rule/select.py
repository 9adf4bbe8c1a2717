"""What-if (issue 32): would the tuning pick other settings if it chose by the four-axis
figure (mean |delta| over MI, R@D_f, R@D_val, R@D_r) instead of retrieval Avg.G (which
leaves D_r out)? Reads the committed choose-half cells only (docs/results/bench/tuning/
cells); computes nothing, changes no setting.

    PYTHONPATH=. python docs/experiments/selection-rule/select.py   # writes select.json
"""

import json
from pathlib import Path

from mmu_core.bench.confirm import list_figures, summarise
from mmu_core.bench.tuning import GRIDS

CELLS = Path(__file__).resolve().parents[2] / "results" / "bench" / "tuning" / "cells"
SETTINGS = (("privacy", 5), ("privacy", 50), ("copyright", 35), ("copyright", 170))


def main(out=Path(__file__).parent / "select.json"):
    rows = []
    for scenario, size in SETTINGS:
        refs = {p.name[:-len("-retrain.json")]: json.loads(p.read_text())
                for p in sorted(CELLS.glob(f"{scenario}-{size}-val-*-retrain.json"))}
        for method, grid in GRIDS.items():
            per = []
            for k in range(len(grid)):
                figs = [list_figures(json.loads((CELLS / f"{stem}-{method}-{k}.json")
                                                .read_text()), ref)
                        for stem, ref in refs.items()
                        if (CELLS / f"{stem}-{method}-{k}.json").exists()]
                if len(figs) < len(refs):
                    break
                mean = summarise(figs)
                per.append({"avg_g": mean["avg_g"][0], "four_axis": mean["four_axis"][0],
                            "d_r": mean["signed"]["R@D_r"][0]})
            if len(per) < len(grid):
                continue
            by = {rule: min(range(len(per)), key=lambda k: (per[k][rule], k))
                  for rule in ("avg_g", "four_axis")}
            rows.append({"setting": f"{scenario}-{size}", "method": method,
                         "lists": len(refs), "changes": by["avg_g"] != by["four_axis"],
                         **{f"by_{rule}": {"settings": grid[k],
                                           **{key: round(v, 2) for key, v in per[k].items()}}
                            for rule, k in by.items()}})
            r = rows[-1]
            print(f"{r['setting']:14s} {method:16s} {'CHANGES' if r['changes'] else 'same   '} "
                  f"avg_g-rule {r['by_avg_g']}  four-axis-rule {r['by_four_axis']}")
    out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
