"""The grid table of ours-local on validation sets, read from the tuning cells:

    python docs/experiments/ours-locality/grid_table.py privacy-5-val-0 privacy-5-val-1

Per setting: mean retrieval Avg.G to each set's Retrain, per-set Avg.G, R@D_r and R@D_f
minus Retrain's, collateral (mean |change| of the 10 nearest other groups' own ITM match),
seconds and steps of the method."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
CELLS = ROOT / "docs" / "results" / "bench" / "tuning" / "cells"


def main(sets: list[str]) -> None:
    from mmu_core.metrics.compare import compare

    print("| setting | mean Avg.G | Avg.G per set | delta R@D_r | delta R@D_f | collateral "
          "| s | steps |")
    print("|---|---|---|---|---|---|---|---|")
    for k in range(8):
        cols = {key: [] for key in ("g", "r", "f", "c", "s", "n")}
        cells = [CELLS / f"{s}-ours-local-{k}.json" for s in sets]
        if not all(c.is_file() for c in cells):
            continue
        for s, path in zip(sets, cells):
            c = json.loads(path.read_text())
            ref = json.loads((CELLS / f"{s}-retrain.json").read_text())["metrics"]
            h, u = c["metrics"]["headline"], c["unlearning"]
            cols["g"].append(f"{compare(c['metrics'], ref)['retrieval']['avg_g']:.2f}")
            cols["r"].append(f"{h['R@D_r'] - ref['headline']['R@D_r']:+.1f}")
            cols["f"].append(f"{h['R@D_f'] - ref['headline']['R@D_f']:+.1f}")
            cols["c"].append(f"{u['collateral']['mean_abs_itm_change']:.2f}")
            cols["s"].append(f"{u['seconds']:.0f}")
            cols["n"].append(str(u["steps"]))
        mean = sum(float(x) for x in cols["g"]) / len(sets)
        st = c["settings"]
        print(f"| {st['max_steps']}, {st['lr']:g}, {st['project']} | {mean:.2f} | "
              + " | ".join(" / ".join(cols[key]) for key in "grfcsn") + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
