"""`python -m mmu_core bench confirm`: does a tuned choice hold on lists it was not chosen on?

Issue 32's protocol step between tuning and the reported cells. Settings are chosen on the
*choose* half of the validation forget sets (`val-<k>`, `bench tune`); here every method runs
with its chosen setting on the *confirm* half (`confirm-<k>`, world version 4), each list with
its own Retrain, in the same validation view (no D_test, no reported list). Nothing is chosen
here. The table gives, per scenario, size and method, the mean over the confirm lists of
Avg.G, the four-axis figure (Avg.G's three deltas plus |delta R@D_r|), the signed deltas to
Retrain, the collateral on the nearest other people against Retrain's own, and the spread.
At one person Retrain is a draw, not a level: there each list's reference is the mean of
several Retrain draws, and each list's floor (one draw against the others) is given.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from mmu_core.bench.tuning import AXES, REFERENCE_DRAWS, SCENARIOS, reference, validation_cell
from mmu_core.bench.unlearning import GUARD, guarded_base

SETTINGS = Path(__file__).resolve().parents[2] / "docs" / "results" / "bench" / "tuning" / \
    "settings.json"


def confirm(out: str | Path, data=None, scenarios=SCENARIOS, methods=None,
            settings_path: str | Path = SETTINGS, eval_max_pairs: int = 300,
            retrain_epochs: int | None = None, models=None, log=print,
            tables_only: bool = False, shard: tuple[int, int] | None = None,
            sizes=None, lists=None, draws=None) -> dict:
    """Run the missing confirm cells of `methods` (default: every method with a chosen
    setting, and Retrain), `sizes` and `lists` (names such as "confirm-0"; default all;
    every n-th cell with `shard=(i, n)`), then tabulate all cells. `draws` maps
    (scenario, size) to the Retrain draws per list of its reference (REFERENCE_DRAWS);
    Retrain's extra draws come last, after every method's cell."""
    from mmu_core.bench.unlearning import cached_cell
    from mmu_core.data.generate import default_world
    from mmu_core.data.scenarios import load_scenario, validation_sets
    from mmu_core.models.backbone import load_backbone

    out, root = Path(out), Path(data or default_world())
    chosen = json.loads(Path(settings_path).read_text())["settings"]
    draws = REFERENCE_DRAWS if draws is None else draws
    t0, order = time.time(), iter(range(10 ** 9))
    rows, floors = {}, {}
    for scenario in SCENARIOS:
        computing = scenario in scenarios and not tables_only
        view = load_scenario(root, scenario).validation_view() if computing else None
        original = None
        for size, paths in validation_sets(root, scenario, "confirm").items():
            by_method = chosen.get(scenario, {}).get(str(size), {})
            names, by_list = list(by_method), {}
            # the guarded forms after every list's Retrain: their budget reads the others';
            # Retrain's further draws last, a seed over all lists at a time
            extra = [f"retrain-seed{k}" for k in range(1, draws.get((scenario, size), 1))]
            passes = [["retrain", *names], [m + GUARD for m in names], *([m] for m in extra)]
            for vpath, method in [(v, m) for ms in passes for v in paths for m in ms]:
                cells = by_list.setdefault(vpath.stem, {})
                base, seed = guarded_base(method) or method, 0
                if method.startswith("retrain-seed"):
                    base, seed = "retrain", int(method[len("retrain-seed"):])
                settings = {} if base == "retrain" else dict(by_method[base])
                name = f"{scenario}-{size}-{vpath.stem}-{method}"
                mine = shard is None or next(order) % shard[1] == shard[0]
                compute = None
                wanted = ((methods is None or (base if seed else method) in methods)
                          and (sizes is None or size in sizes)
                          and (lists is None or vpath.stem in lists))
                read_on = []
                if guarded_base(method):  # the budget from the other lists' Retrains
                    budget, read_on = others_budget(out, scenario, size, vpath.stem)
                    wanted = wanted and budget is not None
                    settings["neighbour_budget"] = budget
                if computing and mine and wanted:
                    if original is None:
                        original = ((models or {}).get(scenario)
                                    or load_backbone(f"embedded:{scenario}"))

                    def compute(method=method, base=base, settings=settings, name=name,
                                read_on=read_on, seed=seed):
                        cell = validation_cell(original, view, scenario, size, vpath,
                                               base, settings, name, eval_max_pairs,
                                               retrain_epochs, protocol="confirm", seed=seed)
                        return {**cell, "method": base if seed else method,
                                **({"seed": seed} if seed else {}),
                                **({"budget_read_on": read_on} if read_on else {})}
                cells[method] = cached_cell(out, name, compute)
                if cells[method] is not None and cells[method]["settings"] != settings:
                    # a changed choice (or budget) must not be read from an older cell
                    raise ValueError(f"{name}.json holds {cells[method]['settings']}, the "
                                     f"choice now is {settings}: remove it to recompute")
                if cells[method] is not None and compute is not None:
                    log(f"[{time.time() - t0:7.1f} s] {name}: "
                        f"{cells[method]['unlearning']['seconds']} s")
            for cells in by_list.values():
                first, more = cells.pop("retrain"), [cells.pop(m) for m in extra]
                if first is None:
                    continue
                done = [first, *(c for c in more if c is not None)]
                ref = reference(done)
                if len(done) > 1:
                    floors.setdefault((scenario, size), []).append(draw_floor(done))
                    ref["floor"] = floors[(scenario, size)][-1]["draw_vs_others"]
                for method, c in cells.items():
                    if c is not None:
                        rows.setdefault((scenario, size, method), []).append(
                            list_figures(c, ref))
    table = {f"{s}-{n}-{m}": summarise(v) for (s, n, m), v in rows.items()}
    result = {"protocol": "docs/benchmark.md (confirm half)", "settings": str(settings_path),
              "table": table,
              "retrain_draws": {f"{s}-{n}": {"lists": len(v), "per_list": v,
                                             "draw_vs_others": _mean_sd(
                                                 [f["draw_vs_others"] for f in v])}
                                for (s, n), v in floors.items()}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "confirm.json").write_text(json.dumps(result, indent=1))
    (out / "confirm.md").write_text(confirm_markdown(result))
    return result


RESULT = SETTINGS.parents[1] / "confirm" / "confirm.json"


def others_budget(out: Path, scenario: str, size: int, stem: str) -> tuple[float | None,
                                                                          list[str]]:
    """(the neighbours' budget of a guarded cell, the lists it was read on): the mean
    collateral of the Retrains of the *other* confirm lists of its setting computed so far,
    plus the allowance; never the list's own Retrain, which it is compared with. A setting
    with no other list (copyright-170 has one) reads the lists of the nearest other size, as
    the app does for a request of a size without a measurement. None while there are none."""
    from mmu_core.unlearn.budget import ALLOWANCE, retrain_collaterals
    from mmu_core.unlearn.tuned import nearest_size

    by_size = retrain_collaterals(scenario, out / "cells")
    values = {k: v for k, v in by_size.get(size, {}).items() if k != stem}
    others = {n: v for n, v in by_size.items() if n != size}
    if not values and others:
        near = nearest_size(others, size)
        values = {f"{near}/{k}": v for k, v in others[near].items()}
    if not values:
        return None, []
    return round(statistics.mean(values.values()) + ALLOWANCE, 4), sorted(values)


def confirmed_best(path: str | Path = RESULT, guarded: bool = False) -> tuple[str | None, str]:
    """(the method with the lowest four-axis figure on the confirm half, the sentence that
    says on what): the mean over settings of each setting's mean over its lists, among the
    methods computed in every setting that has any; with `guarded`, among their guarded
    forms (the name is given without the suffix). (None, why) without results."""
    path = Path(path)
    if not path.is_file():
        return None, "no confirm results"
    by_setting: dict[str, dict[str, float]] = {}
    lists: dict[str, int] = {}
    for key, row in json.loads(path.read_text())["table"].items():
        scenario, size, method = key.split("-", 2)
        if method.endswith(GUARD) != guarded:
            continue
        method = method[:-len(GUARD)] if guarded else method
        by_setting.setdefault(f"{scenario}-{size}", {})[method] = row["four_axis"][0]
        lists[f"{scenario}-{size}"] = max(lists.get(f"{scenario}-{size}", 0), row["lists"])
    everywhere = set.intersection(*(set(m) for m in by_setting.values())) \
        if by_setting else set()
    if not everywhere:
        return None, "no method has confirm results in every setting computed"
    score = {m: statistics.mean(v[m] for v in by_setting.values()) for m in everywhere}
    best = min(sorted(score), key=score.get)
    settings = ", ".join(f"{k} ({lists[k]} lists)" for k in sorted(by_setting))
    within = " within the neighbours' budget" if guarded else ""
    return best, (f"the lowest four-axis figure on the confirm lists{within} "
                  f"({score[best]:.2f}, mean over {settings}; docs/results/bench/confirm)")


def draw_floor(draws: list[dict]) -> dict:
    """How far one Retrain draw is from the mean of the list's other draws (four-axis figure,
    mean over the draws): what a method exactly like Retrain would score, about."""
    from mmu_core.metrics.compare import compare

    figures = [compare(d["metrics"], reference(draws[:i] + draws[i + 1:])["metrics"])
               ["retrieval"]["four_axis"] for i, d in enumerate(draws)]
    return {"list": draws[0]["validation_set"], "draws": len(draws),
            "draw_vs_others": statistics.mean(figures),
            "headlines": [{k: d["metrics"]["headline"][k] for k in AXES} for d in draws]}


def list_figures(cell: dict, ref: dict) -> dict:
    """One method's figures on one confirm list against that list's Retrain reference (one
    cell, or `reference` of several draws with their `floor`: then also whether the method
    is as near their mean as a draw is to the others', `like_retrain`)."""
    from mmu_core.metrics.compare import compare

    cmp = compare(cell["metrics"], ref["metrics"])["retrieval"]
    h, r = cell["metrics"]["headline"], ref["metrics"]["headline"]
    col = cell["unlearning"].get("collateral", {}).get("mean_abs_itm_change")
    ref_col = ref["unlearning"].get("collateral", {}).get("mean_abs_itm_change")
    return {"list": cell["validation_set"], "avg_g": cmp["avg_g"],
            "four_axis": cmp["four_axis"],
            "signed": {k: h[k] - r[k] for k in AXES},
            "collateral": col, "retrain_collateral": ref_col,
            # a guarded form's time includes taking the edit back (unlearn/budget.py)
            "seconds": round(cell["unlearning"]["seconds"]
                             + cell["unlearning"].get("budget", {}).get("seconds", 0.0), 2),
            "retrain_seconds": ref["unlearning"]["seconds"],
            "retrain_draws": ref.get("draws", 1),
            "like_retrain": cmp["four_axis"] <= ref["floor"] if "floor" in ref else None}


def _mean_sd(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None]
    if not values:
        return float("nan"), float("nan")
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(per_list: list[dict]) -> dict:
    out = {"lists": len(per_list), "per_list": per_list}
    for key in ("avg_g", "four_axis", "collateral", "retrain_collateral", "seconds",
                "retrain_seconds"):
        out[key] = _mean_sd([p[key] for p in per_list])
    out["signed"] = {k: _mean_sd([p["signed"][k] for p in per_list]) for k in AXES}
    like = [p.get("like_retrain") for p in per_list]
    out["retrain_draws"] = [p.get("retrain_draws", 1) for p in per_list]
    out["like_retrain"] = [sum(x is True for x in like), sum(x is not None for x in like)]
    return out


def confirm_markdown(result: dict) -> str:
    md = ["# The confirm half: each method's tuned setting on lists it was not chosen on", "",
          "Mean ± sd over the confirm lists (each against its own Retrain, validation view). "
          "four-axis = mean |delta| over MI, R@D_f, R@D_test (the validation split) and "
          "R@D_r; signed deltas are method minus Retrain; collateral = mean |change| of the "
          "ITM match of the 10 nearest other people (works), Retrain's against the original "
          "beside it. Where a setting has several Retrain draws per list (REFERENCE_DRAWS: "
          "one person), the reference is their mean, and `like Retrain` counts the lists "
          "where the method's four-axis figure is no larger than a draw's against the mean "
          "of the others (that list's floor). Written by "
          "`python -m mmu_core bench confirm`.", ""]
    for key, row in result.get("retrain_draws", {}).items():
        draws = [p["draws"] for p in row["per_list"]]
        md.append(f"- {key.replace('-', ' ')}: Retrain draws per list {draws}; one draw "
                  f"against the mean of the others: four-axis {row['draw_vs_others'][0]:.2f} "
                  f"± {row['draw_vs_others'][1]:.2f} (what a method exactly like Retrain "
                  "would score, about).")
    md += ["", "| setting | method | lists | four-axis | Avg.G | MI | R@D_f | R@D_test | R@D_r | "
           "collateral (Retrain's) | s | like Retrain |", "|---" * 12 + "|"]

    def f(ms, signed=False):
        m, s = ms
        return "n/a" if m != m else (f"{m:+.1f} ± {s:.1f}" if signed else f"{m:.2f} ± {s:.2f}")

    def like(row):
        k, n = row.get("like_retrain", (0, 0))
        return f"{k} of {n}" if n else "-"

    def order(kv):  # by setting, then by the four-axis figure
        scenario, size, _ = kv[0].split("-", 2)
        return scenario, int(size), kv[1]["four_axis"][0]

    for key, row in sorted(result["table"].items(), key=order):
        scenario, size, method = key.split("-", 2)
        sg = row["signed"]
        md.append(f"| {scenario} {size} | {method} | {row['lists']} | {f(row['four_axis'])} | "
                  f"{f(row['avg_g'])} | " + " | ".join(f(sg[k], True) for k in AXES)
                  + f" | {row['collateral'][0]:.3f} ({row['retrain_collateral'][0]:.3f}) | "
                  f"{row['seconds'][0]:.1f} | {like(row)} |")
    return "\n".join(md) + "\n"
