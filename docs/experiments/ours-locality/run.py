"""The design round of ours-local (issue 25, step 2): one locality mechanism per run, on
validation forget sets only, against the tuning cells' own Retrains.

    python docs/experiments/ours-locality/run.py NAME [KEY=VALUE ...] [--method ours-local]
        [--sets privacy-50-val-0 copyright-35-val-0 ...]

KEY=VALUE override the method's settings (VALUE as JSON: project=null, retain='"kl"');
NAME labels the run. Evaluation as in tuning: the validation view, 300 D_r pairs,
retrieval only (MI, R@D_f, R@D_val, R@D_r) and Avg.G to that set's Retrain. Results are
appended (resumable) to results.json beside this file; nothing reads D_test or a
reported forget set.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))
CELLS = ROOT / "docs" / "results" / "bench" / "tuning" / "cells"
SETS = ("privacy-5-val-0", "privacy-5-val-1", "privacy-50-val-0", "privacy-50-val-1",
        "copyright-35-val-0", "copyright-35-val-1", "copyright-170-val-0")


def main() -> None:
    from mmu_core.data.generate import default_world
    from mmu_core.data.scenarios import forget_list_path, load_forget_ids, load_scenario
    from mmu_core.metrics.compare import compare
    from mmu_core.metrics.evaluate import evaluate
    from mmu_core.metrics.provenance import provenance
    from mmu_core.models.backbone import load_backbone
    from mmu_core.unlearn import run
    from mmu_core.unlearn.request import Request
    from mmu_core.unlearn.tuned import tuned_settings

    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("overrides", nargs="*", help="KEY=VALUE (VALUE as JSON)")
    ap.add_argument("--method", default="ours-local")
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    ap.add_argument("--out", default=str(HERE / "results.json"))
    a = ap.parse_args()
    extra = {k: json.loads(v) for k, v in (o.split("=", 1) for o in a.overrides)}
    out = Path(a.out)
    done = json.loads(out.read_text()) if out.is_file() else {}
    root = default_world()
    loaded = {}
    for name in a.sets:
        scenario, size, stem = name.split("-", 2)
        key = f"{name}-{a.name}"
        if key in done:
            continue
        if scenario not in loaded:
            loaded[scenario] = (load_scenario(root, scenario).validation_view(),
                                load_backbone(f"embedded:{scenario}"))
        view, original = loaded[scenario]
        ref = json.loads((CELLS / f"{name}-retrain.json").read_text())
        ids = load_forget_ids(forget_list_path(root, scenario, int(size), stem))
        base = tuned_settings(a.method, scenario, int(size))[0]
        settings = {**base, **extra}
        model, info = run(a.method, Request.build(original, view, ids, scenario), **settings)
        metrics = evaluate(model, view, ids, max_pairs=300, progress=False,
                           retrieval_only=True)
        cmp = compare(metrics, ref["metrics"])
        done[key] = {"method": a.method, "settings": settings, "steps": info["steps"],
                     "seconds": info["seconds"], "headline": metrics["headline"],
                     "retrain": ref["metrics"]["headline"],
                     "avg_g": cmp["retrieval"]["avg_g"],
                     "d_r_delta": (metrics["headline"]["R@D_r"]
                                   - ref["metrics"]["headline"]["R@D_r"]),
                     "info": {k: info[k] for k in ("projector", "mask_free_fraction", "batch",
                                                   "rows_still_above_mismatch") if k in info},
                     "provenance": provenance({"experiment": f"ours-locality/{a.name}"})}
        print(key, round(cmp["retrieval"]["avg_g"], 2), info["steps"], "steps",
              f"{info['seconds']} s", {k: round(v, 1) for k, v in metrics["headline"].items()},
              flush=True)
        out.write_text(json.dumps(done, indent=1))


if __name__ == "__main__":
    main()
