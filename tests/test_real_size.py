"""Every path at the real BLIP-base size (random weights, models/real_size.py), at reduced
step counts on a reduced scenario: each method and one Retrain epoch, then a forget
request as the app makes it, its Inspect views and the reference-free audit. What it
guards is that nothing runs out of memory or breaks at 384 px and 224M parameters; what it
costs is `bench cost`'s business (docs/results/bench/cost)."""

import pytest

from mmu_core.bench.cost import PeakMemory, SHORT, forget_ids, reduced

# A 24 GB machine runs the app beside this: every path must stay well under it.
MAX_PEAK_GB = 16


@pytest.fixture(scope="module")
def world():
    from mmu_core.data.generate import default_world
    from mmu_core.data.scenarios import load_scenario
    from mmu_core.models import real_size
    from mmu_core.models.backbone import load_backbone

    root = default_world()
    ids = forget_ids(root, 5)
    sc = reduced(load_scenario(root, "privacy"), ids, groups=3, per_split=6)
    return sc, ids, load_backbone(real_size.BACKBONE)


def test_every_method_runs_at_blip_base_size(world):
    from mmu_core.unlearn import names, run
    from mmu_core.unlearn.request import Request

    sc, ids, bb = world
    ran = {}
    with PeakMemory() as mem:
        for m in names():
            settings = dict(SHORT[m])
            extras = {"pretrained": bb} if m == "retrain" else {}
            _, info = run(m, Request.build(bb, sc, ids, "privacy", **extras), **settings)
            ran[m] = info
    assert set(ran) == set(SHORT)  # a new method needs its short setting here
    assert mem.peak_mb < MAX_PEAK_GB * 1024, f"peak {mem.peak_mb} MB"
    moved = [m for m, i in ran.items() if m != "retrain" and not i["forget_scores"]["untouched"]]
    assert moved, "no method moved the forget pairs at all"


def test_request_inspect_and_audit_run_at_blip_base_size(world):
    from mmu_core.erasure.audit import AuditConfig, audit
    from mmu_core.erasure.forget_request import forget
    from mmu_core.erasure.inspection import build_views

    sc, ids, bb = world
    with PeakMemory() as mem:
        outcome = forget(bb, sc, "privacy", sc.split(ids)[0], "ga", {"steps": 1})
        views = build_views(outcome, projections=("tsne",))
        result = audit(outcome.unlearned, bb, None, bb, sc, ids,
                       AuditConfig(relearn_steps=(0, 1), max_pairs=6, cka_pairs=6))
    assert views.matrix is not None and result["reference_free"]
    assert mem.peak_mb < MAX_PEAK_GB * 1024, f"peak {mem.peak_mb} MB"
