"""Benchmarks of the audit and of requests made one after another
(`python -m mmu_core bench audit`, `python -m mmu_core bench sequence`).

audit     one forget request on the embedded default (privacy forget-5 seed 0 unless told),
          then the whole audit of `erasure.audit`, timed; Retrain from a folder (`--retrain`)
          or trained here (minutes, not part of the audit's time).
sequence  `requests` requests of `size` training pairs each (whole people for privacy), each
          on top of the one before (`forget_more`), timed; with `retrain=True` also a Retrain
          on the union so far after each request and the deltas to it (minutes each).
sequence-table  the same sequence for several methods (each with its tuned settings), and
          after each request every method's deltas to one Retrain on the union so far,
          shared by all methods; resumable cells under `out`, JSON and Markdown tables.
"""

from __future__ import annotations

import time

from mmu_core.bench.unlearning import METHODS as BENCH_METHODS
from mmu_core.bench.unlearning import guarded_base
from mmu_core.data.generate import default_world
from mmu_core.data.scenarios import forget_list_path, load_forget_ids, load_scenario
from mmu_core.metrics.provenance import provenance
from mmu_core.models.backbone import load_backbone
from mmu_core.unlearn.tuned import tuned_settings

TARGETS = {"audit_s": 60, "sequence_of_five_s": 90}


def _extras(method: str) -> dict:
    if method != "ours":
        return {}
    from mmu_core.models.generators import load_captioner, load_painter

    return {"captioner": load_captioner(), "painter": load_painter()}


def audit_benchmark(method: str = "ours", scenario: str = "privacy", size: int = 5,
                    seed: int = 0, retrain: str | None = None, data=None,
                    relearn_steps=(0, 5, 20)) -> dict:
    from mmu_core.erasure.audit import AuditConfig, audit
    from mmu_core.unlearn import run
    from mmu_core.unlearn.request import Request

    root = data or default_world()
    sc = load_scenario(root, scenario)
    ids = load_forget_ids(forget_list_path(root, scenario, size, seed))
    original = load_backbone(f"embedded:{scenario}")
    settings, source = tuned_settings(method, scenario, len(ids))
    request = Request.build(original, sc, ids, scenario, seed=seed, mvi_pairs=sc.train,
                            **_extras(method))
    unlearned, info = run(method, request, **settings)
    t0 = time.perf_counter()
    if retrain:
        retrained, how = load_backbone(retrain), f"loaded from {retrain}"
    else:
        retrained, r_info = run("retrain", request)
        how = f"trained here ({r_info['seconds']} s, not counted)"
    retrain_s = time.perf_counter() - t0
    result = audit(unlearned, original, retrained, load_backbone("embedded:pretrained"), sc,
                   ids, AuditConfig(relearn_steps=tuple(relearn_steps), seed=seed))
    gap = result["relearn"]["gap"]["benign"]
    return {"method": method, "settings": settings, "settings_from": source,
            "scenario": scenario, "forget_list": f"{size}/image-{seed}",
            "unlearning_s": info["seconds"], "retrain": how,
            "retrain_s": round(retrain_s, 1), "audit_s": result["seconds"],
            "benign_gap_after_last_step": gap[-1], "targets": TARGETS, "audit": result,
            "provenance": provenance({"bench": "audit", "method": method, "seed": seed})}


def _requests(sc, n: int, size: int, seed: int) -> list[list]:
    """`n` disjoint requests of exactly `size` training pairs, each made of whole groups (a
    person, a work with its views), drawn with a fixed seed; a group that would overflow
    the request is left for a later one."""
    import numpy as np

    by_group: dict = {}
    for p in sc.train:
        by_group.setdefault(p.group, []).append(p)
    groups = list(by_group)
    pending = [by_group[groups[i]] for i in np.random.default_rng(seed).permutation(len(groups))]
    out = []
    while len(out) < n:
        current, left = [], []
        for group in pending:  # first fit, in the drawn order
            if len(current) + len(group) <= size:
                current += group
            else:
                left.append(group)
        pending = left
        if len(current) < size:
            raise ValueError(f"not enough whole groups for {n} requests of {size} pairs")
        out.append(current)
    return out


def sequence_benchmark(method: str = "ours", scenario: str = "privacy", requests: int = 5,
                       size: int = 5, seed: int = 0, retrain: bool = False,
                       data=None) -> dict:
    from mmu_core.erasure.forget_request import forget, forget_more, retrain_reference
    from mmu_core.metrics.compare import compare
    from mmu_core.metrics.evaluate import evaluate

    root = data or default_world()
    sc = load_scenario(root, scenario)
    original = load_backbone(f"embedded:{scenario}")
    extras = _extras(method)
    settings, source = tuned_settings(method, scenario, size)
    rows, outcome, total = [], None, 0.0
    for i, pairs in enumerate(_requests(sc, requests, size, seed)):
        t0 = time.perf_counter()
        outcome = (forget(original, sc, scenario, pairs, method, settings, seed=seed, **extras)
                   if outcome is None else
                   forget_more(outcome, pairs, method, settings, seed=seed, **extras))
        seconds = time.perf_counter() - t0
        total += outcome.seconds["method"]
        row = {"request": i + 1, "pairs": len(pairs), "forgotten_so_far":
               len(outcome.forgotten_ids), "method_s": outcome.seconds["method"],
               "request_s": round(seconds, 2),
               "match_before": round(outcome.before.mean("match"), 4),
               "match_after": round(outcome.after.mean("match"), 4)}
        if retrain:
            retrained, _ = retrain_reference(outcome)
            data_all, ids = outcome.all_data(), outcome.forgotten_ids
            metrics = {"unlearned": evaluate(outcome.unlearned, data_all, ids, seed=seed,
                                             progress=False, retrieval_only=True),
                       "retrain": evaluate(retrained, data_all, ids, seed=seed,
                                           progress=False, retrieval_only=True)}
            row["headline"] = {k: v["headline"] for k, v in metrics.items()}
            row["deltas_to_retrain"] = compare(metrics["unlearned"], metrics["retrain"])
        rows.append(row)
        print(row, flush=True)
    return {"method": method, "settings": settings, "settings_from": source,
            "scenario": scenario, "requests": rows,
            "methods_seconds_total": round(total, 2), "targets": TARGETS,
            "provenance": provenance({"bench": "sequence", "method": method, "seed": seed,
                                      "requests": requests, "size": size})}


# the benchmark's methods, Retrain aside (it is the reference of every request)
SEQUENCE_METHODS = tuple(m for m in BENCH_METHODS if m != "retrain")


def sequence_table(out, methods=SEQUENCE_METHODS, scenario: str = "privacy",
                   requests: int = 5, size: int = 5, seed: int = 0, data=None,
                   log=print) -> dict:
    """Each method forgets the same `requests` requests one after another; after request k
    its model and a Retrain on the union of requests 1..k (the scenario's full recipe, one
    per k for all methods) are evaluated on the union as D_f. Cells in out/cells/: one
    per Retrain and one per method's whole sequence, so a cut run resumes."""
    import json
    from pathlib import Path

    from mmu_core.bench.unlearning import cached_cell
    from mmu_core.erasure.forget_request import forget, forget_more
    from mmu_core.metrics.compare import compare
    from mmu_core.metrics.evaluate import evaluate
    from mmu_core.unlearn import names, run
    from mmu_core.unlearn.budget import default_budget
    from mmu_core.unlearn.request import Request

    choices = [m for m in names() if m != "retrain"]
    unknown = [m for m in methods if (guarded_base(m) or m) not in choices]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {choices}")
    out = Path(out)
    root = data or default_world()
    sc = load_scenario(root, scenario)
    original = load_backbone(f"embedded:{scenario}")
    plan = _requests(sc, requests, size, seed)
    unions = [[p.pair_id for r in plan[:k + 1] for p in r] for k in range(len(plan))]

    def measure(model, k):
        return evaluate(model, sc, unions[k], seed=seed, progress=False,
                        retrieval_only=True)

    def chain(method):
        base = guarded_base(method) or method
        settings, source = tuned_settings(base, scenario, size)
        extras, outcome, rows = _extras(base), None, []
        for k, pairs in enumerate(plan):
            # a guarded form: the app's default budget for a request of this size, each
            # request's edit measured against the model it starts from, as in the app
            budget = default_budget(scenario, len(pairs))[0] if base != method else None
            outcome = (forget(original, sc, scenario, pairs, base, settings, seed=seed,
                              budget=budget, **extras) if outcome is None else
                       forget_more(outcome, pairs, base, settings, seed=seed, budget=budget,
                                   **extras))
            assert sorted(outcome.forgotten_ids) == sorted(unions[k])
            rows.append({"request": k + 1, "method_s": outcome.seconds["method"],
                         "steps": outcome.info.get("steps"),
                         **({"budget": outcome.info.get("budget")} if budget is not None else {}),
                         "metrics": measure(outcome.unlearned, k)})
            log(f"{method} request {k + 1}: {rows[-1]['metrics']['headline']}")
        return {"method": method, "settings": settings, "settings_from": source,
                "requests": rows, "provenance": provenance({"bench": "sequence-table",
                                                            "method": method, "seed": seed})}

    def retrained(k):
        request = Request.build(original, sc, unions[k], scenario, seed=seed)
        model, info = run("retrain", request)
        return {"request": k + 1, "forget_ids": unions[k], "unlearning": info,
                "metrics": measure(model, k),
                "provenance": provenance({"bench": "sequence-table", "method": "retrain",
                                          "seed": seed})}

    cells = {m: cached_cell(out, f"{scenario}-{size}x{len(plan)}-s{seed}-{m}",
                            lambda m=m: chain(m)) for m in methods}
    refs = [cached_cell(out, f"{scenario}-{size}x{len(plan)}-s{seed}-retrain-{k + 1}",
                        lambda k=k: retrained(k)) for k in range(len(plan))]
    table = {m: [compare(row["metrics"], refs[k]["metrics"])
                 for k, row in enumerate(cells[m]["requests"])] for m in methods}
    result = {"scenario": scenario, "requests": len(plan), "size": size, "seed": seed,
              "methods": list(methods), "avg_g": {m: [round(c["retrieval"]["avg_g"], 2)
                                                      for c in table[m]] for m in methods},
              # issue 32's figure: Avg.G's three |deltas| and |delta R@D_r|
              "four_axis": {m: [round(c["retrieval"]["four_axis"], 2) for c in table[m]]
                            for m in methods},
              "deltas": {m: [c["retrieval"]["delta"] for c in table[m]] for m in methods},
              "method_s": {m: [r["method_s"] for r in cells[m]["requests"]] for m in methods},
              # Avg.G leaves D_r out; kept beside it so erosion of the retained pairs shows.
              "r_dr": {m: [r["metrics"]["headline"]["R@D_r"] for r in cells[m]["requests"]]
                       for m in methods},
              "retrain": [r["metrics"]["headline"] for r in refs],
              "provenance": provenance({"bench": "sequence-table", "seed": seed})}
    out.mkdir(parents=True, exist_ok=True)
    (out / "sequence.json").write_text(json.dumps(result, indent=1))
    (out / "README.md").write_text(sequence_markdown(result))
    return result


def sequence_markdown(r: dict) -> str:
    """Avg.G and the four-axis figure to the Retrain on the union after each request, R@D_r
    after each request beside Retrain's, the last request's |delta| per retrieval metric
    (MI, R@D_f, R@D_test, R@D_r), and each method's total time."""
    methods, n = r["methods"], r["requests"]

    def table(columns):
        return ["| after request (pairs so far) | " + " | ".join(columns) + " |",
                "|---" * (len(columns) + 1) + "|"]

    def label(k):
        return f"| {k + 1} ({(k + 1) * r['size']}) | "

    lines = [f"# Requests one after another: {r['scenario']}, {n} x {r['size']} pairs, "
             f"seed {r['seed']}", ""]

    def lowest_in_bold(key, title):
        lines.extend([title, "", *table(methods)])
        for k in range(n):
            best = min(r[key][m][k] for m in methods)
            lines.append(label(k) + " | ".join(
                f"**{r[key][m][k]:.2f}**" if r[key][m][k] == best else f"{r[key][m][k]:.2f}"
                for m in methods) + " |")

    lowest_in_bold("avg_g", "Avg.G to a Retrain on the union so far (lower is better):")
    if "four_axis" in r:
        lines.append("")
        lowest_in_bold("four_axis", "Four-axis figure (mean |delta| to that Retrain of MI, "
                       "R@D_f, R@D_test and R@D_r; lower is better):")
    if "r_dr" in r:
        lines += ["", "R@D_r after each request (Avg.G leaves it out; Retrain's is the "
                  "reference):", "", *table(["retrain", *methods])]
        for k in range(n):
            lines.append(label(k) + " | ".join(f"{v:.1f}" for v in [
                r["retrain"][k]["R@D_r"], *(r["r_dr"][m][k] for m in methods)]) + " |")
    lines += ["", "After the last request, |delta| to Retrain per metric, and the methods' "
              "seconds over all requests:", "",
              "| | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for key in r["deltas"][methods[0]][-1]:
        lines.append(f"| {key} | " + " | ".join(f"{r['deltas'][m][-1][key]:.2f}"
                                               for m in methods) + " |")
    if "r_dr" in r:
        kept = r["retrain"][-1]["R@D_r"]
        lines.append("| R@D_r | " + " | ".join(f"{abs(r['r_dr'][m][-1] - kept):.2f}"
                                               for m in methods) + " |")
    lines.append("| seconds | " + " | ".join(f"{sum(r['method_s'][m]):.1f}" for m in methods)
                 + " |")
    return "\n".join(lines) + "\n"
