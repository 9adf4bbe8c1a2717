"""`python -m mmu_core bench unlearning --preset smoke|paper`: methods x scenarios x forget
sizes x seeds on the embedded default, one JSON per cell (resumable: computed cells are
kept and skipped), then tables shaped like the paper's Tables 1-4, Figure 6 and Table 9."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field, replace
from itertools import zip_longest
from pathlib import Path

# a method's guarded form: its tuned setting within the neighbours' budget (unlearn/budget.py)
GUARD = "+budget"


def guarded_base(method: str) -> str | None:
    """"ours-local+budget" -> "ours-local"; None for a method that is not a guarded form."""
    return method[:-len(GUARD)] if method.endswith(GUARD) else None


# <method>+budget: the method within the neighbours' budget (unlearn/budget.py), as the app
# runs it; its budget is read on the confirm half's validation lists, never on a reported
# cell. calibrated, calibrated-rank (issue 32) and ours-local are the candidates for the
# app's default (the lowest four-axis figure on the confirm half, bench/confirm.py).
# calibrated-near is not here: tried and confirmed on privacy only, where it did not carry
# (docs/experiments/calibrated-near), it has no paper or sequence cells
METHODS = ("retrain", "finetune", "ga", "badt", "multidelete", "slug", "adv", "ours",
           "ours-local", "ours-local+budget", "calibrated", "calibrated+budget",
           "calibrated-rank", "calibrated-rank+budget")
UNGUARDED = tuple(m for m in METHODS if guarded_base(m) is None)
# the calibrated methods read the world's calibration pool, which the real downloads lack;
# the suite's smoke pass leaves them out for time (tests/test_unlearn.py runs them)
POOLED = ("calibrated", "calibrated-rank")
NO_POOL = tuple(m for m in UNGUARDED if m not in POOLED)


@dataclass(frozen=True)
class Sources:
    """Where a preset's models come from: embedded names, hub ids or local folders."""

    original: dict  # scenario -> the model that learned D (the one to unlearn from)
    pretrained: str  # Retrain's start
    captioner: str  # MVI's frozen generators (ours)
    painter: str
    recipes: dict = field(default_factory=dict)  # scenario -> Retrain's recipe name


EMBEDDED_SOURCES = Sources({"privacy": "embedded:privacy", "copyright": "embedded:copyright"},
                           "embedded:pretrained", "embedded", "embedded")
# The paper's models by hub id. Copyright's original is BLIP fine-tuned on Flickr30k
# retrieval (what the scenario forgets from); privacy's is BLIP fine-tuned on MLLMU-Bench
# by `python -m mmu_core train --recipe privacy-real --init Salesforce/blip-itm-base-coco`,
# passed with --original privacy=FOLDER. Retrain follows BLIP's retrieval fine-tuning.
REAL_SOURCES = Sources({"privacy": None, "copyright": "Salesforce/blip-itm-base-flickr"},
                       "Salesforce/blip-itm-base-coco", "Salesforce/blip2-opt-2.7b",
                       "stabilityai/stable-diffusion-2-1-base",
                       {"privacy": "privacy-real", "copyright": "copyright-real"})
# The paper's Table 8 generator pairs by hub id (painter, captioner), for MVI on the real
# preset (`bench generation --table 8` names the embedded pair standing in for each)
REAL_GENERATOR_PAIRS = {
    "SD v1.5 + BLIP-2-OPT": ("stable-diffusion-v1-5/stable-diffusion-v1-5",
                             "Salesforce/blip2-opt-2.7b"),
    "SD v1.5 + BLIP-2-T5": ("stable-diffusion-v1-5/stable-diffusion-v1-5",
                            "Salesforce/blip2-flan-t5-xl"),
    "SD v2.1 + BLIP-2-OPT": ("stabilityai/stable-diffusion-2-1-base", "Salesforce/blip2-opt-2.7b"),
    "SD v2.1 + BLIP-2-T5": ("stabilityai/stable-diffusion-2-1-base", "Salesforce/blip2-flan-t5-xl"),
}


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
    extra_seeds: dict = field(default_factory=dict)  # "scenario-size" -> more seeds
    tuned: bool = False  # each method with the protocol's tuned settings (docs/benchmark.md)
    # (scenario, size) cells where every method's result is also audited (docs/audit.md)
    # against its seed's Retrain: relearning, quantisation, per-pair attacks, CKA
    audits: tuple = ()
    audit_relearn_steps: tuple = (0, 5, 20)
    sources: Sources = EMBEDDED_SOURCES

    def seeds_of(self, scenario: str, size: int) -> tuple:
        return self.seeds + tuple(self.extra_seeds.get(f"{scenario}-{size}", ()))


PRESETS = {
    # a quick end-to-end pass for the test suite; its Retrain is 2 epochs, not the recipe's
    # (the guarded form is its base method and one more step: tests/test_bench.py checks it
    # on a tiny model)
    "smoke": Preset(grid={"privacy": (5,)}, seeds=(0,), retrain_epochs=2, eval_max_pairs=200,
                    word_shift_pairs=40, methods=NO_POOL),
    # the protocol of docs/benchmark.md: tuned settings, privacy-5 over five seeds
    "paper": Preset(grid={"privacy": (5, 50, 500), "copyright": (35, 170)}, seeds=(0, 1, 2),
                    retrain_epochs=None, eval_max_pairs=1000,
                    ablations=(("privacy", 50), ("copyright", 35)),
                    extra_seeds={"privacy-5": (3, 4)}, tuned=True,
                    audits=(("privacy", 5), ("copyright", 35))),
    # the paper's grid on the real datasets (--data: a folder in the layout of
    # docs/embedded-world.md, i.e. the downloads' own) and models (REAL_SOURCES, each can be
    # overridden). The embedded tuning does not transfer: every method runs its defaults
    # until `bench tune --data` has chosen settings on the real validation sets.
    # (no guarded form: its budget is Retrain's collateral measured on the embedded default;
    # no calibrated: the downloads have no calibration pool of never-trained pairs)
    "real": Preset(grid={"privacy": (5, 50, 500), "copyright": (35, 170)}, seeds=(0, 1, 2),
                   retrain_epochs=None, eval_max_pairs=1000, sources=REAL_SOURCES,
                   methods=NO_POOL),
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


def kept_model_dir(out: Path, name: str) -> Path:
    """Where a benchmark keeps the Retrain model of an audited cell, so that each method's
    audit (maybe in a later run) reads it instead of training it again: outside the
    results folder (weights are not results), keyed by that folder's path."""
    key = hashlib.sha256(str(Path(out).resolve()).encode()).hexdigest()[:10]
    root = Path(os.environ.get("MMU_CACHE_DIR", Path.home() / ".cache" / "mmu"))
    return root / "bench-models" / f"{Path(out).name}-{key}" / name


def guarded_budget(original: str, scenario: str, size: int) -> tuple[float, str]:
    """(the neighbours' budget of a guarded method's cell, where it comes from): Retrain's
    collateral on the confirm lists of the nearest size plus the allowance, the app's own
    default; an error where none is measured for this model."""
    from mmu_core.unlearn.budget import default_budget

    budget, source = default_budget(scenario, size, model=original)
    if budget is None:
        raise ValueError(f"no neighbours' budget for {scenario}-{size}: {source}")
    return round(budget, 4), source


def cached_cell(out: Path, name: str, compute) -> dict | None:
    """A benchmark cell from out/cells/<name>.json, computed (and written atomically) when
    missing: what makes every benchmark resumable. With `compute` None, only read."""
    path = out / "cells" / f"{name}.json"
    if path.is_file():
        return json.loads(path.read_text())
    if compute is None:
        return None
    result = compute()
    write_cell(out, name, result)
    return result


def write_cell(out: Path, name: str, cell: dict) -> None:
    """out/cells/<name>.json, atomically: a run cut short leaves no half-written cell."""
    path = out / "cells" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cell, indent=1))
    tmp.replace(path)


def predates_collateral(cell: dict) -> bool:
    """A cell computed before metrics/collateral.py and not rerun for it since."""
    return not {"collateral", "collateral_from"} & set(cell["unlearning"])


def same_forgetting(a: dict, b: dict, tol: float = 1e-4) -> bool:
    """Whether two unlearning summaries' forget-pair scores agree: the fingerprint that a
    rerun reproduced a cell's model."""
    fa, fb = a.get("forget_scores", {}), b.get("forget_scores", {})
    keys = ("itm_after", "itc_after")
    return all(k in fa and k in fb and abs(fa[k] - fb[k]) <= tol for k in keys)


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """"i/n" (0 <= i < n) -> (i, n); None for all cells."""
    if not text:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard takes i/n, e.g. 0/4 (got {text!r})") from None
    if not 0 <= i < n:
        raise ValueError(f"--shard {text}: need 0 <= i < n")
    return i, n


def dry_run(preset: Preset, data) -> Preset:
    """The preset cut to one cell per scenario: seed 0, the smallest forget list `data`
    holds, a 1-epoch Retrain, 50 evaluation pairs, no ablations. Checks that every model
    loads and every method runs end to end before hours of compute."""
    from mmu_core.data.scenarios import DATASETS

    grid = {}
    for scenario in preset.grid:
        sizes = sorted(int(d.name) for d in (Path(data) / "Df" / DATASETS[scenario]).glob("*")
                       if (d / "image-0.txt").is_file())
        if sizes and preset.sources.original.get(scenario):
            grid[scenario] = (sizes[0],)
    if not grid:
        raise ValueError(f"{data}: no forget list Df/<dataset>/<size>/image-0.txt for a "
                         f"scenario with an original model")
    return replace(preset, grid=grid, seeds=(0,), retrain_epochs=1, eval_max_pairs=50,
                   ablations=(), extra_seeds={}, word_shift_pairs=10)


def with_sources(preset: Preset, original: dict | None = None, **named) -> Preset:
    """The preset with some model sources replaced (None values keep the preset's)."""
    src = preset.sources
    return replace(preset, sources=replace(
        src, original={**src.original, **(original or {})},
        **{k: v for k, v in named.items() if v}))


def run_preset(preset_name: str, out: str | Path, data=None, log=print,
               tables_only: bool = False, shard: tuple[int, int] | None = None,
               preset: Preset | None = None, backfill: bool = False) -> dict:
    """Compute the missing cells (none with `tables_only`), then write the tables.

    With `shard=(i, n)` this process computes only every n-th cell of the preset's fixed
    order, starting at the i-th; the others are read when their files exist. Shards share
    `out` (or their cell files are copied into one folder) and `tables_only` merges them.
    `preset` replaces the named one (e.g. with other model sources, or cut to a dry run).
    With `backfill`, cells computed before the collateral was measured get it (issue 32,
    item 4), their methods rerun one by one (resumable: a cell once rerun is not again)."""
    from mmu_core.data.generate import default_world
    from mmu_core.data.scenarios import forget_list_path, load_forget_ids, load_scenario
    from mmu_core.metrics.evaluate import evaluate
    from mmu_core.metrics.provenance import provenance
    from mmu_core.metrics.word_shifts import word_shifts
    from mmu_core.models.backbone import load_backbone
    from mmu_core.unlearn import run
    from mmu_core.unlearn.request import Request
    from mmu_core.unlearn.tuned import tuned_settings

    import torch

    preset = preset or PRESETS[preset_name]
    device = "cuda" if torch.cuda.is_available() else "cpu"  # one GPU per process
    out = Path(out)
    root = data or default_world()
    src = preset.sources
    for scenario in preset.grid:
        if not src.original.get(scenario):
            raise ValueError(f"no original model for {scenario}: pass --original "
                             f"{scenario}=ID_OR_FOLDER (see docs/benchmark.md, 'Real models')")
    shared = {}  # generators and Retrain's start, loaded once for all cells

    def extras():
        if not shared:
            from mmu_core.models.generators import load_captioner, load_painter

            shared.update(pretrained=load_backbone(src.pretrained, device),
                          captioner=load_captioner(src.captioner, device),
                          painter=load_painter(src.painter, device))
        return shared
    cells = {}
    t0 = time.time()
    order = iter(range(10 ** 9))  # each cell's place in the fixed order, for sharding

    def retrained_for(scenario, size, seed, request):
        """The seed's Retrain for an audit: kept when its cell was computed, else trained."""
        folder = kept_model_dir(out, f"{scenario}-{size}-s{seed}-retrain")
        if (folder / "config.json").is_file():
            return load_backbone(str(folder), device)
        epochs = {"epochs": preset.retrain_epochs} if preset.retrain_epochs else {}
        model, info = run("retrain", request, **epochs)
        model.save_pretrained(folder)
        # a cell from before the collateral: add it (read from disk when this run's
        # methods leave Retrain out)
        cell = cells.get(folder.name) or cached_cell(out, folder.name, None)
        if cell is not None and predates_collateral(cell):
            record_collateral(folder.name, cell, info)
        return model

    def audit_against_retrain(scenario, size, seed, sc, ids, original, model):
        from mmu_core.erasure.audit import AuditConfig, audit

        retrained = retrained_for(scenario, size, seed,
                                  request_for(scenario, seed, original, sc, ids))
        reference = (extras()["pretrained"] if src != EMBEDDED_SOURCES
                     else load_backbone(src.pretrained, device))
        config = AuditConfig(relearn_steps=preset.audit_relearn_steps, seed=seed)
        return audit(model, original, retrained, reference, sc, ids, config, progress=False)

    def request_for(scenario, seed, original, sc, ids):
        extra = dict(extras()) if src != EMBEDDED_SOURCES else {}
        if scenario in src.recipes:
            extra["recipe"] = src.recipes[scenario]
        return Request.build(original, sc, ids, scenario, seed=seed, **extra)

    def add_collateral(name, cell, audited):
        """A cell computed before metrics/collateral.py: its method rerun with the cell's
        own settings and seed (record_collateral adds what the rerun measured)."""
        scenario, size, seed, method = (cell[k] for k in ("scenario", "size", "seed", "method"))
        original = load_backbone(src.original[scenario], device)
        ids = load_forget_ids(forget_list_path(root, scenario, size, seed))
        request = request_for(scenario, seed, original, load_scenario(root, scenario), ids)
        model, info = run(guarded_base(method) or method, request, **cell["settings"])
        if method == "retrain" and audited:
            model.save_pretrained(kept_model_dir(out, name))
        record_collateral(name, cell, info)

    def record_collateral(name, cell, info):
        """The rerun's collateral counts where its forget-pair scores equal the cell's (the
        same model); else it is kept apart, said not to count."""
        same = same_forgetting(info, cell["unlearning"])
        cell["unlearning"]["collateral" if same else "collateral_of_a_rerun"] = info["collateral"]
        if not same:
            cell["unlearning"]["forget_scores_of_the_rerun"] = info["forget_scores"]
        cell["unlearning"]["collateral_from"] = (
            time.strftime("%Y-%m-%d") + ": the method rerun with this cell's settings and seed; "
            + ("its forget-pair scores equal this cell's" if same else
               "its forget-pair scores differ from this cell's, so it does not count"))
        write_cell(out, name, cell)
        log(f"{name}: collateral {info['collateral'].get('mean_abs_itm_change')} "
            f"({'same model' if same else 'the rerun differs: not counted'})")

    def one(scenario, size, seed, method, settings=None, tag=None):
        name = f"{scenario}-{size}-s{seed}-{tag or method}"
        mine = shard is None or next(order) % shard[1] == shard[0]
        audited = (scenario, size) in preset.audits and tag is None

        def compute():
            sc = load_scenario(root, scenario)
            ids = load_forget_ids(forget_list_path(root, scenario, size, seed))
            original = load_backbone(src.original[scenario], device)
            kw = {}
            if method == "original":
                model, info = original, {"method": "original", "seconds": 0.0}
            else:
                base = guarded_base(method) or method
                tuned = (tuned_settings(base, scenario, size)[0]
                         if preset.tuned and method != "retrain" else {})
                kw = {**tuned, **(settings or {})}
                if base != method:
                    kw["neighbour_budget"], budget_source = guarded_budget(
                        src.original[scenario], scenario, size)
                if method == "retrain" and preset.retrain_epochs:
                    kw.setdefault("epochs", preset.retrain_epochs)
                # the embedded default: each method loads its own (as the cells so far did)
                model, info = run(base, request_for(scenario, seed, original, sc, ids), **kw)
                if base != method:
                    info = {**info, "method": method, "budget_source": budget_source}
                if method == "retrain" and audited:
                    model.save_pretrained(kept_model_dir(out, name))
            metrics = evaluate(model, sc, ids, max_pairs=preset.eval_max_pairs, seed=seed,
                               progress=False)
            result = {"cell": name, "scenario": scenario, "size": size, "seed": seed,
                      "method": tag or method, "settings": kw, "unlearning": info,
                      "metrics": metrics,
                      "provenance": provenance({"preset": preset_name,
                                                "sources": src.__dict__})}
            if audited and method != "retrain":
                result["audit"] = audit_against_retrain(scenario, size, seed, sc, ids, original,
                                                        model)
            if method in ("ours", "ours-local") and tag is None and seed == preset.seeds[0]:
                d_f, d_r = sc.split(ids)
                result["word_shifts"] = word_shifts(original, model,
                                                    d_f + d_r[:preset.word_shift_pairs])
            return result

        cell = cached_cell(out, name, None if tables_only or not mine else compute)
        if cell is not None and preset.tuned and method not in ("retrain", "original"):
            # a choice changed since the cell was made (a new rule, a new grid): refuse
            # the old cell rather than report it under the new settings
            wanted = {**tuned_settings(guarded_base(method) or method, scenario, size)[0],
                      **(settings or {})}
            held = {k: cell["settings"].get(k) for k in wanted}
            if held != wanted:
                raise ValueError(f"{name}.json holds {held}, the tuned settings now are "
                                 f"{wanted}: remove it to recompute")
        if (backfill and not tables_only and cell is not None and mine and tag is None
                and method != "original"
                and predates_collateral(cell)):
            add_collateral(name, cell, audited)
        if cell is not None:
            cells[name] = cell
            log(f"[{time.time() - t0:7.1f} s] {name}: {cell['unlearning']['seconds']} s")

    # first seed everywhere, then the other seeds of the audited sizes (an audit table
    # needs >= 3 seeds), then the remaining seeds (the reported tables need them), then
    # the ablations: a run cut short still leaves a complete first pass
    grid = [(sc, size) for sc, sizes in preset.grid.items() for size in sizes]
    # Retrain first: an audited cell's Retrain model is kept for the others' audits
    order_methods = tuple(sorted(("original",) + preset.methods, key=lambda m: m != "retrain"))

    def later_seeds(sizes):
        for k in range(1, max(len(preset.seeds_of(*g)) for g in grid)):
            for scenario, size in sizes:
                seeds = preset.seeds_of(scenario, size)
                for method in order_methods if k < len(seeds) else ():
                    one(scenario, size, seeds[k], method)
    for scenario, size in grid:
        for method in order_methods:
            one(scenario, size, preset.seeds[0], method)
    later_seeds([g for g in grid if g in preset.audits])
    later_seeds([g for g in grid if g not in preset.audits])
    for scenario, size in preset.ablations:
        for tag, settings in ABLATIONS.items():
            one(scenario, size, preset.seeds[0], "ours", settings, tag=f"ours[{tag}]")
    out.mkdir(parents=True, exist_ok=True)
    expected = sum(len(preset.seeds_of(*g)) for g in grid) * (1 + len(preset.methods)) + len(
        preset.ablations) * len(ABLATIONS)
    summary = {"preset": preset_name, "cells": len(cells), "cells_expected": expected,
               "provenance": provenance({"preset": preset_name, **preset.__dict__})}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    write_tables(cells, out, preset, expected)
    return summary


def _mean(values):
    return sum(values) / len(values)


def _std(values):
    m = _mean(values)
    return (sum((v - m) ** 2 for v in values) / max(1, len(values) - 1)) ** 0.5


def _pm(row: dict, key: str, delta: bool = True) -> str:
    values = row["values"].get(key)
    if not values:
        return "-"
    text = f"{_mean(values):.2f} ± {_std(values):.2f}"
    deltas = row["deltas"].get(key)
    return text + (f" ({_mean(deltas):.2f})" if delta and deltas else "")


def method_rows(by: dict, scenario: str, size: int, methods) -> dict:
    """Per method: each headline value, its |delta| to the same seed's Retrain, the
    per-seed Avg.G of both tasks, steps, backward passes and time, as lists over seeds."""
    from mmu_core.metrics.compare import compare

    retrain = {c["seed"]: c for c in by.get((scenario, size, "retrain"), [])}
    if not retrain:
        return {}
    rows = {}
    for method in methods:
        group = [c for c in by.get((scenario, size, method), []) if c["seed"] in retrain]
        if not group:
            continue
        values, deltas = {}, {}
        for c in group:
            h, ref = c["metrics"]["headline"], retrain[c["seed"]]["metrics"]["headline"]
            cmp = compare(c["metrics"], retrain[c["seed"]]["metrics"])
            for k, v in h.items():
                values.setdefault(k, []).append(v)
                deltas.setdefault(k, []).append(abs(v - ref[k]))
            values.setdefault("avg_g", []).append(cmp["retrieval"]["avg_g"])
            values.setdefault("four_axis", []).append(cmp["retrieval"]["four_axis"])
            if "second" in cmp:
                values.setdefault("avg_g_second", []).append(cmp["second"]["avg_g"])
            info = c["unlearning"]
            for k, v in (("steps", info.get("steps", info.get("epochs"))),
                         ("grad_evals", info.get("grad_evals")), ("seconds", info["seconds"])):
                if v is not None:
                    values.setdefault(k, []).append(v)
            # Retrain is not bit-reproducible on CPU (its recipe's loss carries last-bit
            # noise), so a cell from before the measure takes a second Retrain's: the same
            # seed and recipe, another draw of what never having seen the pairs does
            measured = info.get("collateral") or (info.get("collateral_of_a_rerun")
                                                  if method == "retrain" else None) or {}
            if "mean_abs_itm_change" in measured:
                values.setdefault("collateral", []).append(measured["mean_abs_itm_change"])
        rows[method] = {"values": values, "deltas": deltas, "n": len(group),
                        "seeds": sorted(c["seed"] for c in group)}
    return rows


def audit_values(audit: dict) -> dict:
    """The audit table's figures of one audited cell (docs/audit.md), as name -> value; the
    Retrain reference's under "retrain:" names. Relearning figures are at the last step."""
    last = {mode: curves for mode, curves in audit["relearn"].items() if mode != "gap"}
    v = {}
    for who in ("unlearned", "retrain"):
        pre = "" if who == "unlearned" else "retrain:"
        curve = last["benign"][who]
        v[pre + "R@D_f k=0"] = curve[0]["R@D_f"]
        v[pre + "R@D_f benign"] = curve[-1]["R@D_f"]
        if "targeted" in last:
            v[pre + "R@D_f targeted"] = last["targeted"][who][-1]["R@D_f"]
        q = audit["quantisation"][who]
        v[pre + "int8 shift"] = q["int8"]["R@D_f"] - q["fp32"]["R@D_f"]
        v[pre + "loss AUC"] = audit["per_pair"][who]["loss"]["auc"]
        v[pre + "calibrated AUC"] = audit["per_pair"][who]["calibrated"]["auc"]
    gap = audit["relearn"]["gap"]
    v["benign gap"] = gap["benign"][-1]["R@D_f"]
    v["MI benign gap"] = gap["benign"][-1]["MI"]
    if "targeted" in gap:
        v["targeted gap"] = gap["targeted"][-1]["R@D_f"]
    if audit.get("cka_estimator") == "debiased linear" and "D_f" in audit["cka"]:
        # the plain estimator's figures on 5-35 pairs are mostly its upward bias: not shown
        fusion = sorted(k for k in audit["cka"]["D_f"]["unlearned_vs_retrain"]
                        if k.startswith("fusion"))[-1]
        v["CKA vs Retrain"] = audit["cka"]["D_f"]["unlearned_vs_retrain"][fusion]
        v["CKA vs original"] = audit["cka"]["D_f"]["unlearned_vs_original"][fusion]
    return v


AUDIT_COLUMNS = ("R@D_f k=0", "R@D_f benign", "benign gap", "MI benign gap", "R@D_f targeted",
                 "targeted gap", "int8 shift", "loss AUC", "calibrated AUC", "CKA vs Retrain",
                 "CKA vs original")


def audit_markdown_table(by: dict, scenario: str, size: int, methods) -> list[str]:
    """Per method, mean ± std over seeds of the audit's figures, and Retrain's own row."""
    rows, ref = {}, {}
    for method in methods:
        for c in by.get((scenario, size, method), []):
            if "audit" not in c:
                continue
            for k, x in audit_values(c["audit"]).items():
                if k.startswith("retrain:"):
                    ref.setdefault(k[8:], {}).setdefault(c["seed"], x)
                else:
                    rows.setdefault(method, {}).setdefault(k, []).append(x)
    if not rows:
        return []
    steps = next(c for m in methods for c in by.get((scenario, size, m), [])
                 if "audit" in c)["audit"]["config"]["relearn_steps"][-1]

    def cell(values):
        return f"{_mean(values):.2f} ± {_std(values):.2f}" if values else "-"

    md = [f"## Audit, {scenario}, forget {size}: does the forgetting hold?", "",
          f"Mean ± std over seeds. R@D_f at k=0 and after {steps} steps of benign relearning "
          f"(fine-tuning on D_r only); benign gap: unlearned minus Retrain after {steps} "
          "steps (Retrain relearned the same way), of R@D_f and of MI; targeted: R@D_f of "
          f"the held-out half of D_f after {steps} steps on the other half, and its gap to "
          "Retrain's; int8 shift: R@D_f after int8 dynamic quantisation minus before; AUCs "
          "of D_f against never-trained pairs (0.5 = indistinguishable; per-pair loss attack "
          "and its reference-calibrated form); debiased CKA of the last fusion layer on D_f "
          "(1 = the same representation, 0 = unrelated; from the cells that used the "
          "debiased estimator only, so its n can be smaller).", "",
          "| method | " + " | ".join(AUDIT_COLUMNS) + " | n |", "|---" * (len(AUDIT_COLUMNS) + 2)
          + "|"]
    for method, v in rows.items():
        md.append(f"| {method} | " + " | ".join(cell(v.get(k, [])) for k in AUDIT_COLUMNS)
                  + f" | {len(v['benign gap'])} |")
    md.append("| retrain (reference) | " + " | ".join(
        cell(list(ref[k].values())) if k in ref else "-" for k in AUDIT_COLUMNS)
              + f" | {len(ref.get('loss AUC', {}))} |")
    return md + [""]


# issue 32: Avg.G leaves the retained pairs out, which is how a method can look best and
# still damage the model
FOUR_AXIS_TITLE = ("four-axis figure: mean |delta| to Retrain of MI, R@D_f, R@D_test and "
                   "R@D_r")
# metrics/collateral.py: the cells computed since it exists carry it
COLLATERAL_TITLE = ("collateral: mean |change| of the ITM match of the 10 nearest other "
                    "people's (works') own pairs")
COLLATERAL_NOTE = ("Retrain's column is Retrain against the original: the reference. Where "
                   "a Retrain cell predates the measure, a second Retrain of the same seed "
                   "and recipe gives it (`--backfill-collateral`; Retrain is not "
                   "bit-reproducible on CPU).")


def summary_markdown(by: dict, preset: Preset) -> list[str]:
    """Every scenario and size on one line per table: the retrieval Avg.G to Retrain of each
    method (the lowest mean in bold), then |delta R@D_r| (locality on the retained pairs)."""
    grid = [(sc, size) for sc, sizes in preset.grid.items() for size in sizes]
    shown = ("original",) + tuple(m for m in preset.methods if m != "retrain")
    rows = {g: method_rows(by, *g, ("retrain",) + shown) for g in grid}
    rows = {g: r for g, r in rows.items() if r}
    if not rows:
        return []
    methods = [m for m in shown if any(m in r for r in rows.values())]
    md = []
    for title, pick in (("retrieval Avg.G to Retrain", lambda r: r["values"]["avg_g"]),
                        (FOUR_AXIS_TITLE, lambda r: r["values"]["four_axis"]),
                        ("|delta R@D_r| to Retrain", lambda r: r["deltas"]["R@D_r"]),
                        ("|delta R@D_f| to Retrain", lambda r: r["deltas"]["R@D_f"]),
                        (COLLATERAL_TITLE, lambda r: r["values"].get("collateral")),
                        ("unlearning time in seconds", lambda r: r["values"]["seconds"])):
        if not any(pick(r[m]) for r in rows.values() for m in methods if m in r):
            continue
        # the collateral's reference: Retrain's own against the original, not a delta
        columns = (["retrain"] if title == COLLATERAL_TITLE else []) + methods
        md += [f"## Summary: {title} (lower is better)", "",
               "Mean ± std over the seeds computed (n of the preset's seeds); the lowest "
               "mean in bold, among the methods with all n seeds; a method with fewer says "
               "(n=k): not comparable yet."
               + (" " + COLLATERAL_NOTE if title == COLLATERAL_TITLE else ""), "",
               "| scenario, forget | n | " + " | ".join(
                   "retrain (reference)" if m == "retrain" else m for m in columns) + " |",
               "|---" * (len(columns) + 2) + "|"]
        for (scenario, size), r in rows.items():
            values = {m: pick(r[m]) for m in columns if m in r and pick(r[m])}
            if not values:
                continue
            n = max(len(v) for v in values.values())
            best = min((_mean(v) for m, v in values.items()
                        if m not in ("original", "retrain") and len(v) == n), default=None)
            d = 3 if title == COLLATERAL_TITLE else 2
            cols = [("-" if m not in values else
                     (f"**{_mean(values[m]):.{d}f}**" if _mean(values[m]) == best
                      else f"{_mean(values[m]):.{d}f}") + f" ± {_std(values[m]):.{d}f}"
                     + (f" (n={len(values[m])})" if len(values[m]) < n else ""))
                    for m in columns]
            md.append(f"| {scenario}, {size} | {n} of {len(preset.seeds_of(scenario, size))} "
                      "| " + " | ".join(cols) + " |")
        md.append("")
    return md


def write_tables(cells: dict, out: Path, preset: Preset, expected: int | None = None) -> None:
    """tables.md (Markdown), tables.json and cells.csv from the computed cells; with fewer
    than `expected` cells the title says PARTIAL."""
    import csv

    from mmu_core.metrics.compare import compare

    by = {}
    for c in cells.values():
        by.setdefault((c["scenario"], c["size"], c["method"]), []).append(c)

    machines = sorted({c.get("provenance", {}).get("machine", "?") for c in cells.values()})
    partial = (f" (PARTIAL: {len(cells)} of {expected} cells)"
               if expected and len(cells) < expected else "")
    md, js = [f"# Unlearning benchmark, preset `{out.name}`{partial}", "",
              "Each value: mean ± std over the seeds computed so far (n), then in brackets "
              "the mean over seeds of |value - Retrain's of the same seed|; Avg.G likewise "
              "per seed. Steps: optimisation steps (Retrain: epochs); grad: backward passes; "
              "T: unlearning wall time in seconds on the machine of each cell (here: "
              + "; ".join(machines or ["?"]) + ")."
              + (f" Smoke preset: Retrain ran {preset.retrain_epochs} epochs, not the "
                 "recipe's." if preset.retrain_epochs else ""), ""], {}
    md += summary_markdown(by, preset)
    for scenario, sizes in preset.grid.items():
        second = "V-MCQ" if scenario == "privacy" else "VE"
        for size in sizes:
            rows = method_rows(by, scenario, size, ("original",) + preset.methods)
            if not rows:
                continue
            md += [f"## {scenario}, forget {size} (retrieval | {second})", "",
                   "| method | MI | R@D_f | R@D_test | R@D_r | Avg.G | A@D_f | A@D_test | Avg.G "
                   "| steps | grad | T (s) | n |", "|---" * 13 + "|"]
            for method, row in rows.items():
                cols = [_pm(row, k) for k in ("MI", "R@D_f", "R@D_test", "R@D_r", "avg_g",
                                              "A@D_f", "A@D_test", "avg_g_second")]
                cols += [_pm(row, k, delta=False) for k in ("steps", "grad_evals", "seconds")]
                md.append(f"| {method} | " + " | ".join(cols) + f" | {row['n']} |")
                js[f"{scenario}-{size}-{method}"] = row
            md.append("")
            used = {m: by[scenario, size, m][0].get("settings") for m in preset.methods
                    if (scenario, size, m) in by}
            if any(used.values()):
                md += [f"Settings used ({scenario}, forget {size}): " + "; ".join(
                    f"{m} `{json.dumps(s)}`" for m, s in used.items() if s), ""]
    for scenario, size in preset.audits:
        md += audit_markdown_table(by, scenario, size, ("original",) + preset.methods)
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
            md += [f"## Per-word matching-score shifts ({c['method']}), {c['cell']}", "",
                   f"{ws['pairs']} pairs (D_f and the first D_r pairs), {ws['words']} words; "
                   "shift = after - before of the ITM match (%) of each image with each word "
                   "of its text, averaged over the pairs the word occurs in.", "",
                   "| largest drops | shift | n | near zero | shift | n |", "|---" * 6 + "|"]
            for left, right in zip_longest(ws["largest"], ws["near_zero"]):
                cols = [f"{r[0]} | {r[1]:+.{d}f} | {r[2]}" if r else " | | "
                        for r, d in ((left, 2), (right, 5))]
                md.append(f"| {cols[0]} | {cols[1]} |")
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
