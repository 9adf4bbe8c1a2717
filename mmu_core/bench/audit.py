"""Benchmarks of the audit and of requests made one after another
(`python -m mmu_core bench audit`, `python -m mmu_core bench sequence`).

audit     one forget request on the embedded default (privacy forget-5 seed 0 unless told),
          then the whole audit of `erasure.audit`, timed; Retrain from a folder (`--retrain`)
          or trained here (minutes, not part of the audit's time).
sequence  `requests` requests of `size` training pairs each (whole people for privacy), each
          on top of the one before (`forget_more`), timed; with `retrain=True` also a Retrain
          on the union so far after each request and the deltas to it (minutes each).
"""

from __future__ import annotations

import time

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
    """`n` disjoint requests of `size` training pairs: whole groups (a person, an image with
    its captions), drawn with a fixed seed."""
    import numpy as np

    by_group: dict = {}
    for p in sc.train:
        by_group.setdefault(p.group, []).append(p)
    groups = list(by_group)
    order = np.random.default_rng(seed).permutation(len(groups))
    out, current = [], []
    for i in order:
        current += by_group[groups[i]]
        if len(current) >= size:
            out.append(current[:size])
            current = []
            if len(out) == n:
                return out
    raise ValueError(f"not enough groups for {n} requests of {size} pairs")


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
