"""Diagnostic (issue 32): each forgetting pair's never-seen floor, by the pool's quantile
(calibrated-rank) and by the pool pairs that say the same (calibrated-near), under the
original, on the first choose list of each setting (no Retrain, no confirm list is read).

    PYTHONPATH=. python docs/experiments/calibrated-near/floors.py   # writes floors.json
"""

import json
from pathlib import Path

from mmu_core.data.generate import default_world
from mmu_core.data.scenarios import load_forget_ids, load_scenario, validation_sets
from mmu_core.models.backbone import load_backbone
from mmu_core.unlearn.calibrated import SCORES, Scorer, nearest_pool, never_seen_floors
from mmu_core.unlearn.request import Request

SETTINGS = (("privacy", 5), ("privacy", 50), ("copyright", 35), ("copyright", 170))


def main(out=Path(__file__).parent / "floors.json"):
    root, rows = default_world(), []
    for scenario, size in SETTINGS:
        view = load_scenario(root, scenario).validation_view()
        original = load_backbone(f"embedded:{scenario}")
        vpath = validation_sets(root, scenario)[size][0]
        request = Request.build(original, view, load_forget_ids(vpath), scenario)
        calib, forget = view.calib, request.forget
        scorer = Scorer(request.retain, calib, 0, rank_pool=calib)
        names = (*SCORES, "itc_rank")
        quantile = never_seen_floors(scorer, original, calib, forget, names)
        alike = nearest_pool(calib, forget)
        nearest = never_seen_floors(scorer, original, calib, forget, names, refit=False,
                                    near=alike)
        now = scorer.all(original, forget)
        for i, p in enumerate(forget[:10]):
            rows.append({"list": f"{scenario}-{size}-{vpath.stem}", "text": p.text,
                         "nearest_texts": [calib[j].text for j in alike[i, :3].tolist()],
                         **{f"{k}_{what}": round(float(v[k][i]), 2)
                            for what, v in (("original", now), ("quantile", quantile),
                                            ("nearest", nearest)) for k in names}})
            print(json.dumps(rows[-1]))
    out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
