"""The confirm half under both rules, where they choose differently: each method's cells
at the Avg.G rule's choice (docs/results/bench/confirm/cells, as committed) and at the
four-axis rule's (confirm/cells here, computed by the command in README.md, against the
same Retrain cells). Writes compare.json.

    PYTHONPATH=. python docs/experiments/selection-rule/compare.py
"""

import json
from pathlib import Path

from mmu_core.bench.confirm import list_figures, summarise

HERE = Path(__file__).parent
COMMITTED = HERE.parents[1] / "results" / "bench" / "confirm" / "cells"


def main():
    chosen = json.loads((HERE / "four-axis-settings.json").read_text())["settings"]
    rows = []
    for scenario, by_size in chosen.items():
        for size, methods in by_size.items():
            for method in methods:
                per = {"avg_g_rule": [], "four_axis_rule": []}
                for cell in sorted((HERE / "confirm" / "cells").glob(
                        f"{scenario}-{size}-confirm-*-{method}.json")):
                    ref = json.loads((COMMITTED / cell.name.replace(
                        f"-{method}.json", "-retrain.json")).read_text())
                    for rule, path in (("avg_g_rule", COMMITTED / cell.name),
                                       ("four_axis_rule", cell)):
                        per[rule].append(list_figures(json.loads(path.read_text()), ref))
                if not per["four_axis_rule"]:
                    continue
                row = {"setting": f"{scenario}-{size}", "method": method,
                       "lists": len(per["four_axis_rule"])}
                for rule, figs in per.items():
                    mean = summarise(figs)
                    row[rule] = {"four_axis": round(mean["four_axis"][0], 2),
                                 "avg_g": round(mean["avg_g"][0], 2),
                                 **{k: round(v[0], 1) for k, v in mean["signed"].items()},
                                 "collateral": round(mean["collateral"][0], 3)}
                rows.append(row)
                print(json.dumps(row))
    (HERE / "compare.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
