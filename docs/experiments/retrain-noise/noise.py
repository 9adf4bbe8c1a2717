"""How far is Retrain from itself? (issue 32's targets against Retrain's own noise)

Each list's Retrain cell in the confirm half (docs/results/bench/confirm/cells) was trained
with seed 0. Here the same list is retrained with another seed (the recipe's batch order and
sampling; the same pretrained start, the same data, the same evaluation), and one list with
seed 0 again (Retrain is not bit-reproducible on this CPU), and each is compared with
the committed cell by the confirm table's own figures (`bench/confirm.py` `list_figures`):
the four-axis figure of one Retrain against another is the floor under which no method's
figure can be read as better. Resumable: one JSON per list in cells/.

Beside it, from the committed Retrain cells alone (choose and confirm halves): how far the
lists' Retrains are from one another. A method that left every list exactly at the median
Retrain's level would still be off by each axis' mean |deviation from the median|: the
floor for any method that cannot tell which lists Retrain leaves findable.

    PYTHONPATH=. python docs/experiments/retrain-noise/noise.py   # writes noise.json
"""

import json
import sys
from pathlib import Path

from mmu_core.bench.confirm import list_figures, summarise
from mmu_core.bench.unlearning import cached_cell

HERE = Path(__file__).resolve().parent
CONFIRM = HERE.parents[1] / "results" / "bench" / "confirm" / "cells"
CHOOSE = HERE.parents[1] / "results" / "bench" / "tuning" / "cells"
SETTINGS = (("privacy", 5), ("privacy", 50), ("copyright", 35), ("copyright", 170))
# (scenario, size, list, seed): another seed on four lists, and the committed cell's own
# seed again on one (what Retrain's nondeterminism on this CPU alone does)
RUNS = (("privacy", 5, "confirm-0", 1), ("privacy", 5, "confirm-1", 1),
        ("privacy", 50, "confirm-0", 1), ("copyright", 35, "confirm-0", 1),
        ("privacy", 5, "confirm-0", 0))


def retrain_again(scenario, size, stem, seed):
    """The confirm cell's own Retrain (`bench/tuning.py` `validation_cell`), with `seed`."""
    from mmu_core.bench.tuning import validation_cell
    from mmu_core.data.generate import default_world
    from mmu_core.data.scenarios import load_scenario, validation_sets
    from mmu_core.models.backbone import load_backbone

    root = default_world()
    vpath = next(p for p in validation_sets(root, scenario, "confirm")[size] if p.stem == stem)
    cell = validation_cell(load_backbone(f"embedded:{scenario}"),
                           load_scenario(root, scenario).validation_view(), scenario, size,
                           vpath, "retrain", {}, f"{scenario}-{size}-{stem}-retrain-seed{seed}",
                           protocol="retrain-noise", seed=seed)
    return {**cell, "seed": seed}


def spread():
    """Per setting: each axis' Retrain over all lists, and its mean |deviation| from the
    median (statistics.median minimises it); `constant_level` averages the four."""
    import statistics

    from mmu_core.bench.confirm import AXES

    out = {}
    for scenario, size in SETTINGS:
        cells = [json.loads(p.read_text()) for folder in (CHOOSE, CONFIRM)
                 for p in sorted(folder.glob(f"{scenario}-{size}-*-retrain.json"))]
        per_axis = {}
        for axis in AXES:
            values = [c["metrics"]["headline"][axis] for c in cells]
            med = statistics.median(values)
            per_axis[axis] = {"values": [round(v, 1) for v in values],
                              "median": round(med, 2),
                              "mad": round(statistics.mean(abs(v - med) for v in values), 2)}
        out[f"{scenario}-{size}"] = {
            "lists": [c["validation_set"] for c in cells], "axes": per_axis,
            "constant_level": round(statistics.mean(a["mad"] for a in per_axis.values()), 2)}
        print(f"{scenario}-{size}: {len(cells)} lists, constant-level floor "
              f"{out[f'{scenario}-{size}']['constant_level']}: "
              + ", ".join(f"{k} {v['mad']}" for k, v in per_axis.items()))
    return out


def main(only=None):
    rows = {}
    for scenario, size, stem, seed in RUNS:
        name = f"{scenario}-{size}-{stem}-retrain-seed{seed}"
        if only and name not in only:
            compute = None
        else:
            def compute(scenario=scenario, size=size, stem=stem, seed=seed):
                return retrain_again(scenario, size, stem, seed)
        # a draw the confirm benchmark keeps as its own reference is read there, not copied
        again = cached_cell(CONFIRM.parent if (CONFIRM / f"{name}.json").is_file() else HERE,
                            name, compute)
        if again is None:
            continue
        first = json.loads((CONFIRM / f"{scenario}-{size}-{stem}-retrain.json").read_text())
        fig = list_figures(again, first)
        print(f"{name}: four-axis {fig['four_axis']:.2f}, signed {fig['signed']}, "
              f"collateral {fig['collateral']} (seed 0: {fig['retrain_collateral']})")
        rows.setdefault(f"{scenario}-{size}" + ("" if seed else " (seed 0 again)"),
                        []).append(fig)
    out = {"retrain_against_retrain": {k: summarise(v) for k, v in rows.items()},
           "between_lists": spread()}
    (HERE / "noise.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(set(sys.argv[1:]) or None)
