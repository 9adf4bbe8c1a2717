"""Does the second world's privacy-500 list predict the first world's reported cells?

For every paper-preset method with a privacy-500 cell in the first world (three seeds,
`docs/results/bench/paper/cells`), the four-axis figure of the same setting on the second
world's validation list (`docs/results/bench/tuning/cells/privacy-500-world1-image-0-*`),
each against its own world's Retrain. Reads committed cells only; computes nothing.

    PYTHONPATH=. python docs/experiments/second-world/transfer.py
"""

import json
import statistics
from pathlib import Path

from mmu_core.metrics.compare import compare

ROOT = Path(__file__).resolve().parents[3] / "docs" / "results" / "bench"


def four_axis(cell: dict, ref: dict) -> float:
    return compare(cell["metrics"], ref["metrics"])["retrieval"]["four_axis"]


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def main() -> None:
    tuning, paper = ROOT / "tuning" / "cells", ROOT / "paper" / "cells"
    ref1 = load(tuning / "privacy-500-world1-image-0-retrain.json")
    second = [load(p) for p in tuning.glob("privacy-500-world1-image-0-*-[0-9].json")]
    rows = []
    methods = sorted({load(p)["method"] for p in paper.glob("privacy-500-s0-*.json")}
                     - {"retrain", "original"})
    for method in methods:
        cells = [load(p) for p in sorted(paper.glob(f"privacy-500-s[0-9]-{method}.json"))]
        first = [four_axis(c, load(paper / f"privacy-500-s{c['seed']}-retrain.json"))
                 for c in cells]
        # the same method and setting on the second world (guarded forms were not run there)
        pred = next((four_axis(c, ref1) for c in second if c["method"] == method and all(
            cells[0]["settings"].get(k) == v for k, v in c["settings"].items())), None)
        rows.append((method, pred, statistics.mean(first), len(first)))
    print("| method (its privacy-500 setting now) | second world, one list | first world, "
          "reported (mean over seeds) | n |")
    print("|---|---|---|---|")
    for method, pred, first, n in sorted(rows, key=lambda r: r[2]):
        p = "-" if pred is None else f"{pred:.2f}"
        print(f"| {method} | {p} | {first:.2f} | {n} |")


if __name__ == "__main__":
    main()
