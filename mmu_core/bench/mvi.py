"""Benchmarks: measured times and quality on the embedded default, written as JSON with
their settings and provenance (`python -m mmu_core bench ...`)."""

from __future__ import annotations

import re
import time


def _timed(fn, *args, **kw):
    start = time.perf_counter()
    out = fn(*args, **kw)
    return out, round(time.perf_counter() - start, 2)


def _names_in(texts: list[str]) -> int:
    from mmu_core.data.vocab import FIRST_NAMES, LAST_NAMES

    names = {n.lower() for n in FIRST_NAMES + LAST_NAMES}
    return sum(bool(names & set(re.findall(r"\w+", t.lower()))) for t in texts)


def _background_agreement(clf, items) -> dict:
    """Share of R_1 images whose background (read by the classifier) is the one their
    source text names, over the texts that name one."""
    from mmu_core.models.image_classifier import LABELS, label_of

    hits = n = 0
    for a in items:
        y = label_of(a.text)
        if y is None:
            continue
        pred = clf.probabilities(a.images).argmax(-1)
        hits += int((pred == y).sum())
        n += len(a.images)
    return {"agreement": round(100 * hits / n, 1) if n else None, "images": n,
            "chance": round(100 / len(LABELS), 1)}


def mvi_benchmark(data=None, forget_size: int = 5, seed: int = 0,
                  quality_size: int = 50) -> dict:
    """Time a fresh MVI fit + swap anchors for a privacy forget set, once the generators
    are loaded; then the Table 5 probe on held-out pairs and the Table 3 quality columns
    (Self-BLEU-4 of R_2, IS-style score of R_1) per generation strategy."""
    import torch

    from mmu_core.mvi.anchors import STRATEGIES, anchors

    from mmu_core.mvi.fit import fit, fit_or_load, fit_pairs

    from mmu_core.data.generate import default_world
    from mmu_core.data.loaders import open_image
    from mmu_core.data.scenarios import forget_list_path, load_forget_ids, load_scenario
    from mmu_core.metrics.generator_quality import anchor_quality, self_bleu
    from mmu_core.metrics.provenance import provenance
    from mmu_core.models.generators import load_captioner, load_image_classifier, load_painter
    from mmu_core.models.image_classifier import inception_style_score
    from mmu_core.mvi.model import MVIConfig, features, modality_probe

    root = data or default_world()
    (captioner, painter), load_s = _timed(lambda: (load_captioner(), load_painter()))
    sc = load_scenario(root, "privacy")
    forget, _ = sc.split(load_forget_ids(forget_list_path(root, "privacy", forget_size, seed)))
    config = MVIConfig(seed=seed)

    start = time.perf_counter()
    model, summary = fit(captioner, painter, fit_pairs(sc.train, config.max_fit_pairs,
                                                       seed), config)
    items, anchors_s = _timed(anchors, model, captioner, painter, forget, seed=seed)
    total_s = round(time.perf_counter() - start, 2)

    held_out = (sc.unseen + sc.test)[:200]
    result = {
        "benchmark": "mvi", "seed": seed, "threads": torch.get_num_threads(),
        "times_s": {"load_generators": load_s, "fit": summary["seconds"],
                    "anchors": anchors_s, "fit_plus_anchors": total_s},
        "forget_pairs": len(forget), "fit_pairs": summary["pairs"],
        "fit_steps": config.steps, "final_terms": summary["history"][-1],
        "probe_table5": modality_probe(model, features(captioner, painter, held_out)),
        "probe_pairs": len(held_out),
        "examples": [{"pair_id": a.pair_id, "X_2": a.text, "R_2": a.texts[0]} for a in items],
        "name_in_R2": _names_in([t for a in items for t in a.texts]),
    }
    if quality_size:
        clf = load_image_classifier()
        quality = {}
        for scenario, size in (("privacy", quality_size), ("copyright", 35)):
            s = load_scenario(root, scenario)
            pairs, _ = s.split(load_forget_ids(forget_list_path(root, scenario, size, seed)))
            if scenario == "copyright":  # MVI for that scenario's data (cached if fitted)
                model_s, _ = fit_or_load(captioner, painter, s.train, config)
            else:
                model_s = model
            rows = {"real": {"IS": round(inception_style_score(
                clf, [open_image(p) for p in pairs]), 3),
                "self_bleu4": round(self_bleu([p.text for p in pairs]), 2)},
                "images": len({p.image for p in pairs})}
            for strategy in STRATEGIES:
                got = anchors(model_s, captioner, painter, pairs, strategy=strategy,
                              seed=seed, pool=s.train)
                q = anchor_quality(clf, pairs, got)
                rows[strategy] = {
                    "IS": round(q["IS"], 3), "self_bleu4": round(q["self_bleu4"], 2),
                    "name_in_R2": _names_in(q["R_2"]),
                    "R1_background": _background_agreement(clf, got)}
            quality[f"{scenario}-{len(pairs)}"] = rows
        result["quality_table3"] = quality
    result["provenance"] = provenance({"forget_size": forget_size, "seed": seed,
                                       "quality_size": quality_size,
                                       "mvi_config": summary["config"]})
    return result
