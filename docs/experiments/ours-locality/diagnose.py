"""Why ours loses the retained pairs (issue 25, step 1): validation data only.

    python docs/experiments/ours-locality/diagnose.py movement   # which weights move
    python docs/experiments/ours-locality/diagnose.py losers     # which D_r pairs lose
    python docs/experiments/ours-locality/diagnose.py timing     # where a step's time goes

Each part runs a method with its tuned settings (docs/results/bench/tuning/settings.json)
on validation forget sets of the validation view and writes <part>.json beside this file.
Timing at 500 pairs uses 100 training people drawn at random (seed 0), not a reported list.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))


def _setup(scenario: str, size: int, stem: str = "val-0"):
    from mmu_core.data.generate import default_world
    from mmu_core.data.scenarios import forget_list_path, load_forget_ids, load_scenario
    from mmu_core.models.backbone import load_backbone

    root = default_world()
    view = load_scenario(root, scenario).validation_view()
    ids = load_forget_ids(forget_list_path(root, scenario, size, stem))
    return view, ids, load_backbone(f"embedded:{scenario}")


def _run(method, scenario, size, view, ids, original, **override):
    from mmu_core.unlearn import run
    from mmu_core.unlearn.request import Request
    from mmu_core.unlearn.tuned import tuned_settings

    settings = {**tuned_settings(method, scenario, size)[0], **override}
    return run(method, Request.build(original, view, ids, scenario), **settings)


def module_group(name: str) -> str:
    """A parameter's place in BLIP: vision / text self-attention / cross-attention / FFN /
    embeddings / projections / ITM head."""
    if name.startswith("vision_model"):
        return "vision." + ("embeddings" if "embeddings" in name else
                            "attn" if "self_attn" in name else "mlp" if "mlp" in name else "norm")
    if name.startswith("text_encoder"):
        if "embeddings" in name:
            return "text.embeddings"
        if "crossattention" in name:
            return "text.cross_attn"
        if ".attention." in name:
            return "text.self_attn"
        if "intermediate" in name or ".output." in name:
            return "text.ffn"
        return "text.other"
    return name.split(".")[0]  # vision_proj, text_proj, itm_head, ...


def movement() -> dict:
    """Relative change ||W' - W|| / ||W|| per module group, ours against MultiDelete."""
    out = {}
    for scenario, size in (("privacy", 50), ("copyright", 35)):
        view, ids, original = _setup(scenario, size)
        ref = dict(original.model.named_parameters())
        for method in ("ours", "multidelete"):
            model, info = _run(method, scenario, size, view, ids, original)
            num, den = defaultdict(float), defaultdict(float)
            for name, p in model.model.named_parameters():
                g = module_group(name)
                num[g] += float((p.detach() - ref[name].detach()).pow(2).sum())
                den[g] += float(ref[name].detach().pow(2).sum())
            out[f"{scenario}-{size}-{method}"] = {
                "steps": info.get("steps"), "seconds": info["seconds"],
                "relative_change": {g: round((num[g] / max(den[g], 1e-12)) ** 0.5, 5)
                                    for g in sorted(num)},
                "total": round((sum(num.values()) / sum(den.values())) ** 0.5, 5)}
            print(scenario, size, method, out[f"{scenario}-{size}-{method}"], flush=True)
    return out


STOP = {"is", "a", "an", "from", "and", "has", "pet", "the", "was", "born", "in",
        "studied", "lives", "keeps", "enjoys", "of", "with", "wearing", "shirt", "on"}


def _facts(text: str) -> dict:
    """The biography facts a privacy text states (the world's sentence templates)."""
    pats = {"job_city": r"is an? (.+?) from (\w+)",
            "hobby_pet": r"enjoys (.+?) and has a pet (\w+)",
            "month_subject": r"born in (\w+) and studied (.+?)\.",
            "city_pet": r"lives in (\w+) and keeps an? (\w+)"}
    facts = {}
    for key, pat in pats.items():
        m = re.search(pat, text)
        if m:
            a, b = key.split("_")
            facts[a], facts[b] = m.group(1), m.group(2)
    return facts


def losers() -> dict:
    """Per retained pair, the change of its own ITM match and ITC cosine under ours (and
    MultiDelete), grouped by what the pair shares with the forgotten people: a name word,
    a biography fact (job, city, hobby, pet, month, subject), or nothing."""
    from mmu_core.data.loaders import open_image

    view, ids, original = _setup("privacy", 50)
    d_f, d_r = view.split(ids)
    names = {w for p in d_f for w in p.text.split()[:2]}
    facts = defaultdict(set)
    for p in d_f:
        for k, v in _facts(p.text).items():
            facts[k].add(v)
    person_name = {p.group: tuple(p.text.split()[:2]) for p in d_r}
    person_facts = defaultdict(dict)
    for p in d_r:
        person_facts[p.group].update(_facts(p.text))
    images, texts = [open_image(p) for p in d_r], [p.text for p in d_r]
    before = original.score_pairs(images, texts)
    out = {}
    for method in ("ours", "multidelete"):
        model, _ = _run(method, "privacy", 50, view, ids, original)
        after = model.score_pairs(images, texts)
        rows = []
        for i, p in enumerate(d_r):
            shared_name = any(w in names for w in person_name[p.group])
            shared = sorted(k for k, v in person_facts[p.group].items() if v in facts[k])
            rows.append({"group": p.group, "d_itm": float(after["itm"][i] - before["itm"][i]),
                         "d_itc": float(after["itc"][i] - before["itc"][i]),
                         "shared_name": shared_name, "shared_facts": len(shared)})

        def summary(sel):
            sel = list(sel)
            n = max(1, len(sel))
            return {"pairs": len(sel), "mean_d_itm": round(sum(r["d_itm"] for r in sel) / n, 4),
                    "mean_abs_d_itm": round(sum(abs(r["d_itm"]) for r in sel) / n, 4),
                    "mean_d_itc": round(sum(r["d_itc"] for r in sel) / n, 4)}
        groups = {"all": rows,
                  "shares a name word": [r for r in rows if r["shared_name"]],
                  "no shared name word": [r for r in rows if not r["shared_name"]]}
        for k in range(7):
            groups[f"shares {k} facts"] = [r for r in rows if r["shared_facts"] == k]
        out[method] = {k: summary(v) for k, v in groups.items() if v}
        # the pairs that lose most: is it the original's weakest matches?
        ranked = sorted(range(len(rows)), key=lambda i: rows[i]["d_itm"])
        worst = ranked[:len(rows) // 10]
        out[method]["worst decile: original ITM"] = round(
            float(before["itm"][worst].mean()), 4)
        out[method]["all: original ITM"] = round(float(before["itm"].mean()), 4)
        corr = _corr([float(before["itm"][i]) for i in range(len(rows))],
                     [r["d_itm"] for r in rows])
        out[method]["corr(original ITM, d_itm)"] = round(corr, 3)
        print(method, json.dumps(out[method], indent=1), flush=True)
    return out


def _corr(a, b) -> float:
    import numpy as np

    return float(np.corrcoef(np.asarray(a), np.asarray(b))[0, 1])


def timing() -> dict:
    """Where ours' time goes at 5, 50 and 500 pairs: anchors (MVI + generators), the
    stopping check, the edit's forward, the retain term, backward + optimiser step."""
    import torch

    import mmu_core.unlearn.ours as ours
    from mmu_core.data.generate import default_world
    from mmu_core.data.scenarios import load_scenario
    from mmu_core.models.backbone import load_backbone

    clock = defaultdict(float)

    def timed(name, fn):
        def wrapper(*a, **k):
            t = time.perf_counter()
            r = fn(*a, **k)
            clock[name] += time.perf_counter() - t
            return r
        return wrapper
    patched = {"prepare_anchors": "anchors (MVI + generators)",
               "_no_better_than_mismatch": "stopping check", "edit_losses": "edit forward",
               "kl_to": "retain term (KL)", "outputs": "retain term (forwards)",
               "step": "backward + step"}
    saved = {k: getattr(ours, k) for k in patched}
    for k, label in patched.items():
        setattr(ours, k, timed(label, saved[k]))
    out = {}
    try:
        view = load_scenario(default_world(), "privacy").validation_view()
        original = load_backbone("embedded:privacy")
        groups = sorted({p.group for p in view.train})
        g = torch.Generator().manual_seed(0)
        drawn = [groups[i] for i in torch.randperm(len(groups), generator=g)[:100].tolist()]
        for size in (5, 50, 500):
            _, ids, _ = _setup("privacy", size) if size < 500 else (None, None, None)
            if size == 500:
                ids = [p.pair_id for p in view.train if p.group in set(drawn)]
            clock.clear()
            t = time.perf_counter()
            _, info = _run("ours", "privacy", min(size, 50), view, ids, original)
            total = time.perf_counter() - t
            out[str(size)] = {"steps": info["steps"], "method_seconds": info["seconds"],
                              "total_seconds": round(total, 2),
                              **{k: round(v, 2) for k, v in clock.items()}}
            print(size, out[str(size)], flush=True)
    finally:
        for k, fn in saved.items():
            setattr(ours, k, fn)
    return out


if __name__ == "__main__":
    from mmu_core.metrics.provenance import provenance

    part = sys.argv[1]
    result = {"movement": movement, "losers": losers, "timing": timing}[part]()
    result["provenance"] = provenance({"experiment": f"ours-locality/diagnose {part}"})
    (HERE / f"{part}.json").write_text(json.dumps(result, indent=1))
