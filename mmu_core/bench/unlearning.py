"""`python -m mmu_core bench unlearning --preset smoke|paper`: methods x scenarios x forget
sizes x seeds on the embedded default, one JSON per cell (resumable: computed cells are
kept and skipped), then tables shaped like the paper's Tables 1-4, Figure 6 and Table 9."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

METHODS = ("retrain", "finetune", "ga", "badt", "multidelete", "slug", "adv", "ours")


@dataclass(frozen=True)
class Preset:
    grid: dict  # scenario -> forget sizes
    seeds: tuple
    retrain_epochs: int | None  # None: the scenario recipe's own (the real Retrain)
    eval_max_pairs: int
    ablations: tuple = ()  # (scenario, size) cells for Tables 3-4 / Figure 6 (seed 0)
    word_shift_pairs: int = 200  # D_r pairs added to D_f for Table 9
    methods: tuple = METHODS
    overrides: dict = field(default_factory=dict)


PRESETS = {
    # a quick end-to-end pass for the test suite; its Retrain is 2 epochs, not the recipe's
    "smoke": Preset(grid={"privacy": (5,)}, seeds=(0,), retrain_epochs=2, eval_max_pairs=200,
                    word_shift_pairs=40),
    "paper": Preset(grid={"privacy": (5, 50), "copyright": (35, 170)}, seeds=(0, 1, 2),
                    retrain_epochs=None, eval_max_pairs=1000,
                    ablations=(("privacy", 50), ("copyright", 35))),
}

# variant name -> settings of ours (Table 3 strategies, Table 4 switches, Figure 6)
ABLATIONS = {
    **{f"strategy={s}": {"strategy": s} for s in ("random", "only_u", "only_k", "no_swap")},
    "P only": {"use_n": False, "g_opt": False},
    "N only": {"use_p": False, "g_opt": False},
    "P+N": {"g_opt": False},
    **{f"N_R1={n}": {"n_images": n} for n in (2, 4)},
    **{f"N_R2={n}": {"n_texts": n} for n in (2, 4)},
    **{f"alpha={a}": {"alpha": a} for a in (0.25, 0.5, 0.75)},
}


def _cell(out: Path, name: str, compute) -> dict | None:
    path = out / "cells" / f"{name}.json"
    if path.is_file():
        return json.loads(path.read_text())
    if compute is None:
        return None
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(path)
    return result


def run_preset(preset_name: str, out: str | Path, data=None, log=print,
               tables_only: bool = False) -> dict:
    """Compute the missing cells (none with `tables_only`), then write the tables."""
    from mmu_core.data.generate import default_world
    from mmu_core.data.scenarios import forget_list_path, load_forget_ids, load_scenario
    from mmu_core.metrics.evaluate import evaluate
    from mmu_core.metrics.provenance import provenance
    from mmu_core.metrics.word_shifts import word_shifts
    from mmu_core.models.backbone import load_backbone
    from mmu_core.unlearn import run
    from mmu_core.unlearn.request import Request

    preset = PRESETS[preset_name]
    out = Path(out)
    root = data or default_world()
    cells = {}
    t0 = time.time()

    def one(scenario, size, seed, method, settings=None, tag=None):
        name = f"{scenario}-{size}-s{seed}-{tag or method}"

        def compute():
            sc = load_scenario(root, scenario)
            ids = load_forget_ids(forget_list_path(root, scenario, size, seed))
            original = load_backbone(f"embedded:{scenario}")
            if method == "original":
                model, info = original, {"method": "original", "seconds": 0.0}
            else:
                kw = dict(settings or {})
                if method == "retrain" and preset.retrain_epochs:
                    kw.setdefault("epochs", preset.retrain_epochs)
                request = Request.build(original, sc, ids, scenario, seed=seed)
                model, info = run(method, request, **kw)
            metrics = evaluate(model, sc, ids, max_pairs=preset.eval_max_pairs, seed=seed,
                               progress=False)
            result = {"cell": name, "scenario": scenario, "size": size, "seed": seed,
                      "method": tag or method, "unlearning": info, "metrics": metrics}
            if method == "ours" and tag is None and seed == preset.seeds[0]:
                d_f, d_r = sc.split(ids)
                result["word_shifts"] = word_shifts(original, model,
                                                    d_f + d_r[:preset.word_shift_pairs])
            return result

        cell = _cell(out, name, None if tables_only else compute)
        if cell is not None:
            cells[name] = cell
            log(f"[{time.time() - t0:7.1f} s] {name}: {cell['unlearning']['seconds']} s")

    # first seed everywhere, then the ablations, then the other seeds: a run cut short
    # still leaves a complete first pass
    grid = [(sc, size) for sc, sizes in preset.grid.items() for size in sizes]
    for scenario, size in grid:
        for method in ("original",) + preset.methods:
            one(scenario, size, preset.seeds[0], method)
    for scenario, size in preset.ablations:
        for tag, settings in ABLATIONS.items():
            one(scenario, size, preset.seeds[0], "ours", settings, tag=f"ours[{tag}]")
    for seed in preset.seeds[1:]:
        for scenario, size in grid:
            for method in ("original",) + preset.methods:
                one(scenario, size, seed, method)
    out.mkdir(parents=True, exist_ok=True)
    expected = len(grid) * len(preset.seeds) * (1 + len(preset.methods)) + len(
        preset.ablations) * len(ABLATIONS)
    summary = {"preset": preset_name, "cells": len(cells), "cells_expected": expected,
               "provenance": provenance({"preset": preset_name, **preset.__dict__})}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    write_tables(cells, out, preset)
    return summary


def _mean(values):
    return sum(values) / len(values)


def _fmt(v, d=None):
    return f"{v:.2f}" + (f" ({d:.2f})" if d is not None else "")


def write_tables(cells: dict, out: Path, preset: Preset) -> None:
    """tables.md (Markdown), tables.json and cells.csv from the computed cells."""
    import csv

    from mmu_core.metrics.compare import compare

    by = {}
    for c in cells.values():
        by.setdefault((c["scenario"], c["size"], c["method"]), []).append(c)

    def mean_headline(group):
        keys = group[0]["metrics"]["headline"].keys()
        return {k: _mean([g["metrics"]["headline"][k] for g in group]) for k in keys}

    md, js = [f"# Unlearning benchmark, preset `{out.name}`", "",
              "Means over the seeds computed so far (n; the preset asks for "
              + ", ".join(map(str, preset.seeds)) + "); (|delta| to Retrain's mean); T = "
              "unlearning wall time in seconds on this machine (2 CPU cores)."
              + (f" Smoke preset: Retrain ran {preset.retrain_epochs} epochs, not the "
                 "recipe's." if preset.retrain_epochs else ""), ""], {}
    for scenario, sizes in preset.grid.items():
        second = "V-MCQ" if scenario == "privacy" else "VE"
        for size in sizes:
            if (scenario, size, "retrain") not in by:
                continue
            ref = {"scenario": scenario, "headline": mean_headline(by[scenario, size, "retrain"])}
            md += [f"## {scenario}, forget {size} (retrieval | {second})", "",
                   "| method | MI | R@D_f | R@D_test | Avg.G | MI | A@D_f | A@D_test | Avg.G | T (s) | n |",
                   "|---" * 11 + "|"]
            for method in ("original",) + preset.methods:
                group = by.get((scenario, size, method))
                if not group:
                    continue
                h = mean_headline(group)
                cmp = compare({"scenario": scenario, "headline": h}, ref)
                t = _mean([g["unlearning"]["seconds"] for g in group])
                r, s = cmp["retrieval"], cmp.get("second")
                row = [_fmt(r["values"][k], r["delta"][k]) for k in ("MI", "R@D_f", "R@D_test")]
                row.append(_fmt(r["avg_g"]))
                if s:
                    row += [_fmt(s["values"][k], s["delta"][k]) for k in ("MI", "A@D_f", "A@D_test")]
                    row.append(_fmt(s["avg_g"]))
                else:
                    row += ["-"] * 4
                md.append(f"| {method} | " + " | ".join(row) + f" | {t:.1f} | {len(group)} |")
                js[f"{scenario}-{size}-{method}"] = {"headline": h, "compare": cmp,
                                                     "seconds": t, "seeds": len(group)}
            md.append("")
    for scenario, size in preset.ablations:
        seed = preset.seeds[0]
        ref = cells.get(f"{scenario}-{size}-s{seed}-retrain")
        if not ref:
            continue
        md += [f"## Ablations (ours), {scenario}, forget {size}, seed {seed}", "",
               "| variant | M_eff | M_rel | M_loc | Avg.G (retrieval) | T (s) |", "|---" * 6 + "|"]
        for tag in ["ours"] + [f"ours[{t}]" for t in ABLATIONS]:
            c = cells.get(f"{scenario}-{size}-s{seed}-{tag}")
            if not c:
                continue
            cmp = compare(c["metrics"], ref["metrics"])
            md.append(f"| {tag} | {cmp['M_eff']:.2f} | {cmp['M_rel']:.2f} | {cmp['M_loc']:.2f} "
                      f"| {cmp['retrieval']['avg_g']:.2f} | {c['unlearning']['seconds']:.1f} |")
        md.append("")
    for c in cells.values():
        if "word_shifts" in c:
            ws = c["word_shifts"]
            md += [f"## Per-word matching-score shifts (ours), {c['cell']}", "",
                   f"{ws['pairs']} pairs (D_f and the first D_r pairs), {ws['words']} words; "
                   "shift = after - before of the ITM match (%) of each image with each word "
                   "of its text, averaged over the pairs the word occurs in.", "",
                   "| largest drops | shift | n | near zero | shift | n |", "|---" * 6 + "|"]
            for (w1, s1, n1), (w2, s2, n2) in zip(ws["largest"], ws["near_zero"]):
                md.append(f"| {w1} | {s1:.2f} | {n1} | {w2} | {s2:+.5f} | {n2} |")
            md.append("")
    (out / "tables.md").write_text("\n".join(md) + "\n")
    (out / "tables.json").write_text(json.dumps(js, indent=1))
    keys = sorted({k for c in cells.values() for k in c["metrics"]["headline"]})
    with open(out / "cells.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["cell", "scenario", "size", "seed", "method", "seconds"] + keys)
        for c in cells.values():
            w.writerow([c["cell"], c["scenario"], c["size"], c["seed"], c["method"],
                        c["unlearning"]["seconds"]] + [c["metrics"]["headline"].get(k)
                                                      for k in keys])
