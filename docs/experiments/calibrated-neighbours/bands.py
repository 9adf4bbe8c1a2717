"""Does holding the nearest people carry to the people next to them, who are not held?

`hold=20` regresses the pairs of the 20 groups nearest the request to their original
scores, and the collateral (metrics/collateral.py) reads the 10 nearest: a reading that
the held method is trained on. Here both runs (calibrated-rank as tuned, and with
`hold=20`) are read on the 40 nearest groups in bands of 10 (nearest first): the band
21-30 and 31-40 are not held, so they say whether holding generalises or only fixes the
pairs it holds. Retrain's model is not kept by the tuning cells, so its bands are not
here. Choose half only (first list of each setting given).

    PYTHONPATH=. python docs/experiments/calibrated-neighbours/bands.py privacy-50-val-0 ...
"""

import json
import sys
from pathlib import Path

import torch

OUT = Path(__file__).parent / "bands.json"
BAND, BANDS = 10, 4


def bands(original, edited, forget, retain) -> list[float]:
    from mmu_core.metrics.collateral import Neighbours, nearest_groups

    order = nearest_groups(original, forget, retain, BAND * BANDS)
    near = Neighbours(original, forget, retain, BAND * BANDS)
    change = near.change(edited).abs()
    rank = {g: i // BAND for i, g in enumerate(order)}
    band = torch.tensor([rank[p.group] for p in near.pairs])
    return [round(float(change[band == b].mean()), 4) for b in range(BANDS)]


def main(stems: list[str]) -> None:
    from mmu_core.data.generate import default_world
    from mmu_core.data.scenarios import load_forget_ids, load_scenario, validation_sets
    from mmu_core.models.backbone import load_backbone
    from mmu_core.unlearn import run
    from mmu_core.unlearn.request import Request
    from mmu_core.unlearn.tuned import tuned_settings

    root = default_world()
    done = json.loads(OUT.read_text()) if OUT.exists() else {}
    for stem in stems:
        scenario, size, name = stem.split("-", 2)
        size = int(size)
        view = load_scenario(root, scenario).validation_view()
        original = load_backbone(f"embedded:{scenario}")
        vpath = next(p for p in validation_sets(root, scenario)[size] if p.stem == name)
        request = Request.build(original, view, load_forget_ids(vpath), scenario)
        tuned, _ = tuned_settings("calibrated-rank", scenario, size)
        for tag, change in (("tuned", {}), ("hold", {"hold": 20})):
            key = f"{stem}-{tag}"
            if key in done:
                continue
            model, _ = run("calibrated-rank", request, **{**tuned, **change})
            done[key] = bands(original, model, request.forget, request.retain)
            print(key, done[key], flush=True)
            OUT.write_text(json.dumps(done, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
