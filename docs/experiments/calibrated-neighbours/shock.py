"""Where calibrated-rank's collateral comes from, and whether the path to the level decides
where it ends (privacy-50 val-0, a choose list; no confirm list or reported cell is read).

1. Each score's pull alone (the others' weights 0), 30 steps at lr 1e-4: the collateral
   every 10 steps and the gaps to the floors.
2. calibrated-rank's tuned setting (240 steps) as tuned, with a Huber pull (`pull="huber"`)
   and with the pull's weight ramped up over 120 steps (`ramp=120`): the collateral and the
   largest gap every 20 steps.

    PYTHONPATH=. python docs/experiments/calibrated-neighbours/shock.py   # ~8 min; shock.json
"""

import json
from pathlib import Path

OUT = Path(__file__).parent / "shock.json"
ALONE = (("itm_logit",), ("membership",), ("itc_cos", "itc_rank"))
PATHS = {"tuned": {}, "huber": {"pull": "huber"}, "ramp": {"ramp": 120}}


def trace(info: dict, every: int) -> list[dict]:
    return [{"step": h["step"], "collateral": h["collateral"],
             **{k[4:]: round(v, 2) for k, v in h.items() if k.startswith("gap_")}}
            for h in info["history"] if h["step"] % every == 0]


def main() -> None:
    import mmu_core.unlearn.calibrated as cal
    from mmu_core.data.generate import default_world
    from mmu_core.data.scenarios import load_forget_ids, load_scenario, validation_sets
    from mmu_core.models.backbone import load_backbone
    from mmu_core.unlearn import run
    from mmu_core.unlearn.request import Request
    from mmu_core.unlearn.tuned import tuned_settings

    root = default_world()
    view = load_scenario(root, "privacy").validation_view()
    vpath = validation_sets(root, "privacy")[50][0]
    request = Request.build(load_backbone("embedded:privacy"), view, load_forget_ids(vpath),
                            "privacy")
    out = json.loads(OUT.read_text()) if OUT.exists() else {}
    weights, rank = dict(cal.SCORES), cal.RANK_WEIGHT
    for only in ALONE:
        key = "alone:" + "+".join(only)
        if key in out:
            continue
        cal.SCORES.update({k: (w if k in only else 0.0) for k, w in weights.items()})
        cal.RANK_WEIGHT = rank if "itc_rank" in only else 0.0
        try:
            _, info = run("calibrated", request, max_steps=30, lr=1e-4, rank=True, budget=0)
        finally:
            cal.SCORES.update(weights)
            cal.RANK_WEIGHT = rank
        out[key] = trace(info, 10)
        print(key, out[key], flush=True)
        OUT.write_text(json.dumps(out, indent=1))
    tuned, _ = tuned_settings("calibrated-rank", "privacy", 50)
    for name, change in PATHS.items():
        if f"path:{name}" not in out:
            _, info = run("calibrated-rank", request, **{**tuned, **change})
            out[f"path:{name}"] = trace(info, 20)
            print(name, out[f"path:{name}"], flush=True)
            OUT.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
