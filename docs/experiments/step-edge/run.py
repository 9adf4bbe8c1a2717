"""Diagnostic (issue 32): would MultiDelete's choice move if its step axis reached the cap?

MultiDelete's grid (docs/benchmark.md) has steps {20, 80}, below the protocol's STEP_CAP of
240, and at privacy-50 and copyright-170 it chose 80, the edge. On those sizes' choose lists
(the shipped original, as the tuning read), this runs the grid's four other settings
(lr x decoupling weight) at 240 steps, each against the list's committed Retrain, and sets
the mean four-axis figure of each beside the committed grid's. Nothing is chosen here: the
fix is a protocol change for every method (docs/benchmark.md, "A known gap").

    PYTHONPATH=. python docs/experiments/step-edge/run.py     # resumable, ~20 min
"""

import json
import statistics
from pathlib import Path

OUT = Path(__file__).parent
TUNING = OUT.parents[1] / "results" / "bench" / "tuning" / "cells"
METHOD, STEPS = "multidelete", 240
SETTINGS = (("privacy", 50), ("copyright", 170))


def main() -> dict:
    from mmu_core.bench.probe import figures
    from mmu_core.bench.tuning import GRIDS, validation_cell
    from mmu_core.bench.unlearning import cached_cell
    from mmu_core.data.generate import default_world
    from mmu_core.data.scenarios import load_scenario, validation_sets
    from mmu_core.models.backbone import load_backbone
    from mmu_core.unlearn.tuned import tuned_settings

    root, result = default_world(), {}
    edge = max(g["steps"] for g in GRIDS[METHOD])
    for scenario, size in SETTINGS:
        view, loaded = load_scenario(root, scenario).validation_view(), []
        tuned, _ = tuned_settings(METHOD, scenario, size)
        lists = [(f"{scenario}-{size}-{v.stem}", v) for v in validation_sets(root, scenario)[size]]

        def computed(stem, vpath, label, settings):
            """The longer run's cell, computed once (the original loaded once)."""
            def compute():
                loaded[:] = loaded or [load_backbone(f"embedded:{scenario}")]
                return validation_cell(loaded[0], view, scenario, size, vpath, METHOD,
                                       settings, f"{stem}-{METHOD}-{label}", 300,
                                       protocol="diagnostic")
            return cached_cell(OUT, f"{stem}-{METHOD}-{label}", compute)

        def row(label, settings, cells):
            per_list = [figures(c, json.loads((TUNING / f"{stem}-retrain.json").read_text()))
                        for c, (stem, _) in zip(cells, lists)]
            rows[label] = {"settings": settings,
                           "mean_four_axis": round(statistics.mean(
                               f["four_axis"] for f in per_list), 2),
                           "chosen": settings == tuned, "lists": per_list}
            print(f"{scenario}-{size} {label} {settings}: {rows[label]['mean_four_axis']}",
                  flush=True)

        rows = {}
        for k, grid in enumerate(GRIDS[METHOD]):
            row(f"grid-{k}", grid, [json.loads((TUNING / f"{stem}-{METHOD}-{k}.json")
                                               .read_text()) for stem, _ in lists])
            if grid["steps"] == edge:  # from the edge's settings, the same at STEPS
                label, longer = f"steps{STEPS}-{k}", {**grid, "steps": STEPS}
                row(label, longer, [computed(stem, v, label, longer) for stem, v in lists])
        result[f"{scenario}-{size}"] = rows
    (OUT / "runs.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
