"""Variants of ours on the privacy validation sets, against the tuning cells' own Retrains:
method development on validation data only; nothing here reads D_test or a reported
forget set.

    python docs/experiments/ours-variants/run.py NAME [KEY=VALUE ...] [--sizes 50 5]
        [--sets val-0 val-1]

Each run is ours with the tuned setting of that size, overridden by KEY=VALUE (JSON
values: hinge=true, edit='"text"', use_p=false); NAME labels it ("base" = no override).
Results are appended (resumable) to results.json beside this file. The "hinge=..." keys
there are from the first form of this script (hinge on/off; same protocol).
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


def main() -> None:
    from mmu_core.data.generate import default_world
    from mmu_core.data.scenarios import load_forget_ids, load_scenario, validation_sets
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
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 5])
    ap.add_argument("--sets", nargs="+", default=None, help="validation set stems")
    ap.add_argument("--out", default=str(HERE / "results.json"))
    a = ap.parse_args()
    extra = {k: json.loads(v) for k, v in (o.split("=", 1) for o in a.overrides)}
    out = Path(a.out)
    done = json.loads(out.read_text()) if out.is_file() else {}
    root = default_world()
    view = load_scenario(root, "privacy").validation_view()
    original = load_backbone("embedded:privacy")
    for size in a.sizes:
        base, _ = tuned_settings("ours", "privacy", size)
        for vpath in validation_sets(root, "privacy")[size]:
            if a.sets and vpath.stem not in a.sets:
                continue
            key = f"privacy-{size}-{vpath.stem}-{a.name}"
            if key in done:
                continue
            ref = json.loads((CELLS / f"privacy-{size}-{vpath.stem}-retrain.json").read_text())
            ids = load_forget_ids(vpath)
            request = Request.build(original, view, ids, "privacy")
            model, info = run("ours", request, **{**base, **extra})
            metrics = evaluate(model, view, ids, max_pairs=300, progress=False,
                               retrieval_only=True)
            cmp = compare(metrics, ref["metrics"])
            done[key] = {"settings": {**base, **extra}, "steps": info["steps"],
                         "seconds": info["seconds"], "headline": metrics["headline"],
                         "retrain": ref["metrics"]["headline"],
                         "avg_g": cmp["retrieval"]["avg_g"],
                         "forget_scores": info["forget_scores"],
                         "provenance": provenance({"experiment": f"ours-variants/{a.name}"})}
            print(key, round(cmp["retrieval"]["avg_g"], 2), info["steps"], "steps",
                  {k: round(v, 1) for k, v in metrics["headline"].items()}, flush=True)
            out.write_text(json.dumps(done, indent=1))


if __name__ == "__main__":
    main()
