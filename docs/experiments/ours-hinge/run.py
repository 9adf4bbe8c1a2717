"""Does the hinge (ours' N-terms stop per row at the never-learned level) fix ours'
locality on the privacy validation sets? Validation sets only, compared with the tuning
cells' own Retrains; nothing here reads D_test or a reported forget set.

    python docs/experiments/ours-hinge/run.py [--sizes 50 5] [--out results.json]

Each run is ours with the tuned setting of that size, with and without `hinge=True`;
results are appended (resumable) to the JSON beside this file.
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
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 5])
    ap.add_argument("--out", default=str(HERE / "results.json"))
    a = ap.parse_args()
    out = Path(a.out)
    done = json.loads(out.read_text()) if out.is_file() else {}
    root = default_world()
    view = load_scenario(root, "privacy").validation_view()
    original = load_backbone("embedded:privacy")
    for size in a.sizes:
        base, _ = tuned_settings("ours", "privacy", size)
        for vpath in validation_sets(root, "privacy")[size]:
            ref = json.loads((CELLS / f"privacy-{size}-{vpath.stem}-retrain.json").read_text())
            ids = load_forget_ids(vpath)
            for hinge in (False, True):
                key = f"privacy-{size}-{vpath.stem}-hinge={hinge}"
                if key in done:
                    continue
                request = Request.build(original, view, ids, "privacy")
                model, info = run("ours", request, **base, hinge=hinge)
                metrics = evaluate(model, view, ids, max_pairs=300, progress=False,
                                   retrieval_only=True)
                cmp = compare(metrics, ref["metrics"])
                done[key] = {"settings": {**base, "hinge": hinge}, "steps": info["steps"],
                             "seconds": info["seconds"], "headline": metrics["headline"],
                             "retrain": ref["metrics"]["headline"],
                             "avg_g": cmp["retrieval"]["avg_g"],
                             "forget_scores": info["forget_scores"],
                             "provenance": provenance({"experiment": "ours-hinge"})}
                print(key, round(cmp["retrieval"]["avg_g"], 2), info["steps"], "steps",
                      {k: round(v, 1) for k, v in metrics["headline"].items()}, flush=True)
                out.write_text(json.dumps(done, indent=1))


if __name__ == "__main__":
    main()
