"""Every registered unlearning method on the embedded default: it returns a new model,
never mutates the original, and lowers the forgetting pairs' match; bad forget sets get
clear errors."""

import pytest
import torch

from mmu_core.data.loaders import DataError, Pair, open_image
from mmu_core.data.scenarios import forget_list_path, load_forget_ids, load_scenario
from mmu_core.models.backbone import load_backbone
from mmu_core.unlearn import names, run
from mmu_core.unlearn.request import Request

FAST = {"retrain": {"epochs": 1}, "finetune": {"steps": 5}, "ga": {"steps": 3},
        "badt": {"steps": 5}, "multidelete": {"steps": 5}, "slug": {"search_steps": 6},
        "adv": {}, "ours": {}, "ours-local": {"max_steps": 20}, "calibrated": {"max_steps": 10},
        "calibrated-rank": {"max_steps": 10}, "calibrated-near": {"max_steps": 10}}


@pytest.fixture(scope="module")
def request_5(world):
    sc = load_scenario(world, "privacy")
    ids = load_forget_ids(forget_list_path(world, "privacy", 5, 0))
    return Request.build(load_backbone("embedded:privacy"), sc, ids, "privacy", seed=0)


def _match(bb, pairs):
    return float(bb.score_pairs([open_image(p) for p in pairs], [p.text for p in pairs])[
        "itm"].mean())


def test_the_registry_holds_ours_and_the_seven_baselines():
    assert sorted(names()) == sorted(FAST)


@pytest.mark.parametrize("method", sorted(FAST))
def test_method_returns_a_new_model_and_forgets(method, request_5):
    before = {k: v.clone() for k, v in request_5.original.state_dict().items()}
    model, info = run(method, request_5, **FAST[method])
    assert model is not request_5.original and info["method"] == method
    assert info["grad_evals"] > 0 and "untouched" in info["forget_scores"]  # for the tables
    after = request_5.original.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "original was mutated"
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    if method != "finetune":  # finetune only forgets slowly, by not seeing D_f
        assert _match(model, request_5.forget) < _match(request_5.original, request_5.forget)


def test_calibrated_cross_pulls_the_persons_other_captions_too(request_5):
    """`cross`: each forgetting image with its person's other captions (what recall also
    counts as found) is pulled to the never-seen level too."""
    from mmu_core.unlearn.calibrated import cross_pairs

    pairs = cross_pairs(request_5.forget, 1000, torch.Generator().manual_seed(0))
    own = {(p.image, p.text) for p in request_5.forget}
    assert len(pairs) == 5 * 4  # one person, five photos, each with the four other captions
    assert all((p.image, p.text) not in own for p in pairs)
    assert {p.group for p in pairs} == {p.group for p in request_5.forget}
    assert len(cross_pairs(request_5.forget, 7, torch.Generator())) == 7
    model, info = run("calibrated", request_5, max_steps=10, cross=True)
    assert info["cross_pairs"] == 20 and info["settings"]["cross"] is True
    assert "gap_cross_itc_cos" in info["history"][-1]
    assert _match(model, pairs) < _match(request_5.original, pairs)


def test_calibrated_hold_keeps_the_nearest_groups_pairs_and_no_others(request_5):
    """`hold`: the retained pairs of the nearest groups (metrics/collateral.py's choice), none
    of the request's own, are held at their original scores while the request is forgotten."""
    from mmu_core.metrics.collateral import nearest_groups
    from mmu_core.unlearn.calibrated import held_pairs

    held = held_pairs(request_5, 3)
    near = set(nearest_groups(request_5.original, request_5.forget, request_5.retain, 3))
    assert {p.group for p in held} == near and len(near) == 3
    assert held == [p for p in request_5.retain if p.group in near]
    model, info = run("calibrated", request_5, max_steps=10, hold=3)
    free, _ = run("calibrated", request_5, max_steps=10)
    assert info["held_pairs"] == len(held) and info["settings"]["hold"] == 3

    def moved(bb):
        return abs(_match(bb, held) - _match(request_5.original, held))
    assert moved(model) < moved(free)


def test_calibrated_rank_ranks_each_pair_among_the_pool_without_its_own_group(request_5):
    """`rank`: a pair's log-probability of its own text among the calibration pool's texts
    (and of its image among the pool's images); a pool pair is read without its own group,
    and the edit pulls the forgetting pairs' rank down toward the pool's."""
    from mmu_core.unlearn.calibrated import Scorer

    bb, pool = request_5.original, request_5.scenario.calib
    scorer = Scorer(request_5.retain, pool, 0, rank_pool=pool)
    scorer.refresh(bb)
    got = scorer.all(bb, pool[:3])["itc_rank"]
    with torch.no_grad():  # by hand: image to text, with the other groups' texts only
        pix, ids, mask = (bb.pixels([open_image(p) for p in pool]), *bb.tokenize(
            [p.text for p in pool]))
        img, txt = bb.image_feat(bb.encode_image(pix)), bb.text_feat(bb.encode_text(ids, mask))
        sim = img @ txt.t() / bb.temp.clamp(0.001, 0.5)
    for i, p in enumerate(pool[:3]):
        others = [j for j, q in enumerate(pool) if q.group != p.group]
        i2t = sim[i, i] - torch.logsumexp(torch.cat([sim[i, i:i + 1], sim[i, others]]), 0)
        t2i = sim[i, i] - torch.logsumexp(torch.cat([sim[i:i + 1, i], sim[others, i]]), 0)
        assert float(got[i]) == pytest.approx(float(i2t + t2i) / 2, abs=1e-4)
    before = scorer.all(bb, request_5.forget)["itc_rank"]
    model, info = run("calibrated-rank", request_5, max_steps=10)
    assert info["settings"]["rank"] is True and "itc_rank" in info["floor"]
    assert "gap_itc_rank" in info["history"][-1]
    assert float(scorer.all(model, request_5.forget)["itc_rank"].mean()) < float(before.mean())


def test_calibrated_near_reads_each_pairs_floor_from_pool_pairs_that_say_the_same(request_5):
    """`floor="nearest"`: a pair's floor is the mean score of the pool pairs whose texts say
    most nearly the same, so the person's appearance sentence (findable when never seen)
    gets a higher rank floor than their biography sentences (only memorised)."""
    from mmu_core.unlearn.calibrated import NEAR, Scorer, nearest_pool, never_seen_floors

    bb, pool, forget = request_5.original, request_5.scenario.calib, request_5.forget
    alike = nearest_pool(pool, forget)
    assert alike.shape == (len(forget), NEAR)
    looks = [i for i, p in enumerate(forget) if p.text.startswith("a ")]
    assert len(looks) == 1  # one appearance sentence per person (docs/embedded-world.md)
    assert all(pool[j].text.startswith("a ") for j in alike[looks[0]].tolist())
    scorer = Scorer(request_5.retain, pool, 0, rank_pool=pool)
    floors = never_seen_floors(scorer, bb, pool, forget, ("itc_rank",), near=alike)
    scores = scorer.all(bb, pool)["itc_rank"]
    assert torch.allclose(floors["itc_rank"], scores[alike].mean(1))
    bio = [i for i in range(len(forget)) if i not in looks]
    assert float(floors["itc_rank"][looks[0]]) > float(floors["itc_rank"][bio].max())
    model, info = run("calibrated-near", request_5, max_steps=10)
    assert info["settings"]["floor"] == "nearest" and info["settings"]["rank"] is True
    with pytest.raises(ValueError, match="floor"):
        run("calibrated", request_5, max_steps=1, floor="median")


def test_bad_forget_sets_get_clear_errors(world):
    sc = load_scenario(world, "privacy")
    bb = load_backbone("embedded:privacy")
    with pytest.raises(DataError, match="empty"):
        Request.build(bb, sc, [], "privacy")
    with pytest.raises(DataError, match="not in"):
        Request.build(bb, sc, ["P0000_0", "nobody_9"], "privacy")
    with pytest.raises(DataError, match="not smaller than the training set"):
        Request.build(bb, sc, [p.pair_id for p in sc.train], "privacy")
    with pytest.raises(ValueError, match="unknown method"):
        run("nope", Request.build(bb, sc, ["P0000_0"], "privacy"))


def test_forget_command_saves_a_loadable_model(world, tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    forget = forget_list_path(world, "privacy", 5, 0)
    base = [sys.executable, "-m", "mmu_core", "forget", "--data", str(world), "--forget",
            str(forget)]
    out = subprocess.run(base + ["--method", "ga", "--set", "steps=2", "--out",
                                 str(tmp_path / "m")],
                         cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    info = json.loads((tmp_path / "m" / "forget_result.json").read_text())
    assert info["unlearning"]["method"] == "ga" and "MI" in json.dumps(info["metrics"])
    assert type(load_backbone(str(tmp_path / "m")).model).__name__ == "BlipForImageTextRetrieval"
    bad = subprocess.run(base + ["--method", "ga", "--set", "nonsense=1", "--no-eval", "--out",
                                 str(tmp_path / "x")],
                         cwd=root, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "nonsense" in bad.stderr


@pytest.mark.parametrize("method", sorted(FAST))
def test_no_method_reads_test_data(method, request_5):
    """D_test (and the never-trained pairs) replaced by pairs whose images do not exist:
    any read of them would raise, so every method, its stopping rule included, runs on
    D_f and D_r only."""
    from dataclasses import replace

    ghost = [Pair(f"/nonexistent/{i}.png", "a ghost", f"G{i}", f"G{i}_0") for i in range(8)]
    sc = replace(request_5.scenario, test=ghost, unseen=ghost, mcq_test=[], ve_test=[])
    request = replace(request_5, scenario=sc, artifacts={})
    model, info = run(method, request, **FAST[method])
    assert info["forget_scores"]["pairs"] == len(request_5.forget)


def test_run_reports_how_far_the_forget_pairs_moved(request_5):
    _, still = run("ga", request_5, steps=0)
    assert still["forget_scores"]["untouched"]
    assert still["forget_scores"]["itm_after"] == still["forget_scores"]["itm_before"]
    _, moved = run("ga", request_5, steps=3, lr=1e-4)
    f = moved["forget_scores"]
    assert not f["untouched"] and f["itm_after"] < f["itm_before"]


def test_slug_says_when_its_target_is_out_of_reach(request_5):
    model, info = run("slug", request_5, target_ratio=1e-6, max_step=0.05, search_steps=4,
                      candidates=2)
    assert info["target_reached"] is False
    assert info["forget_signal_after"] <= info["forget_signal_before"]
    # the step kept is admissible: D_r keeps at least the floor of its signal
    assert info["retain_signal_after"] >= 0.9 * info["retain_signal_before"] - 1e-3
    assert len(info["candidates"]) == 2 and all(not c["reached"] for c in info["candidates"])
    reachable = run("slug", request_5, search_steps=6)[1]
    if reachable["target_reached"]:
        assert reachable["forget_signal_after"] <= reachable["target"] + 1e-3


def test_sample_exactly_fills_every_row():
    from mmu_core.unlearn.request import sample, sample_exactly

    pool = [Pair(f"{i}.png", f"t{i}", f"G{i}", f"G{i}_0") for i in range(4)]
    drawn = sample_exactly(pool, 10, torch.Generator().manual_seed(0))
    assert len(drawn) == 10 and {p.pair_id for p in drawn[:4]} == {p.pair_id for p in pool}
    # a pool large enough gives `sample`'s own draw (cells computed before stay valid)
    assert sample_exactly(pool, 3, torch.Generator().manual_seed(1)) == sample(
        pool, 3, torch.Generator().manual_seed(1))


@pytest.mark.parametrize("method,settings", [
    ("adv", {"steps": 1}), ("ours", {"max_steps": 1, "strategy": "random"})])
def test_methods_run_when_d_f_outnumbers_the_other_groups(method, settings, world):
    """Privacy forget-500 leaves 250 pairs of other people for 500 rows: the methods that
    draw one other-group text per row (Adv's targets, ours' mismatch texts) still run."""
    sc = load_scenario(world, "privacy")
    groups = sorted({p.group for p in sc.train})[:80]
    ids = [p.pair_id for p in sc.train if p.group in groups]
    request = Request.build(load_backbone("embedded:privacy"), sc, ids, "privacy", seed=0)
    assert len(request.forget) > len(request.retain)  # 400 rows, 350 other-group pairs
    _, info = run(method, request, **settings)
    assert not info["forget_scores"]["untouched"]


def test_slug_out_of_reach_keeps_the_step_that_forgot_most(request_5, monkeypatch):
    """A forgetting signal that falls, then rises again with the step's size: the largest
    admissible step (1.0) forgets nothing, the best one lies halfway."""
    import math

    from mmu_core.unlearn import slug as S

    class Fake:
        made = 0

        def __init__(self, bb, pairs, contrast):
            self.forget, Fake.made = Fake.made == 0, Fake.made + 1
            self.w0 = {n: p.detach().clone() for n, p in bb.named_parameters() if p.dim() == 2}

        def __call__(self, bb):  # the step's size: the layer moves by size * its norm
            size = max(float((p.detach() - self.w0[n]).norm() / self.w0[n].norm())
                       for n, p in bb.named_parameters() if n in self.w0)
            return 1.0 - 0.5 * math.sin(math.pi * size) if self.forget else 1.0

    monkeypatch.setattr(S, "Signal", Fake)
    _, info = run("slug", request_5, target_ratio=0.1, search_steps=10, candidates=1)
    assert info["target_reached"] is False
    assert info["step"] == pytest.approx(0.5) and info["forget_signal_after"] == \
        pytest.approx(0.5, abs=1e-3)


def test_calibrated_pulls_huber_near_the_level_and_l1_far_from_it():
    """`pull`: Huber (delta 1, in weighted units) is the L1 pull less 1/2 far from the
    target, and quadratic, with a vanishing gradient, at it."""
    from mmu_core.unlearn.calibrated import distance

    now, target = torch.tensor([0.0, 0.05, 3.0]), torch.zeros(3)
    assert float(distance(now, target, 10.0, "l1")) == pytest.approx((0 + 0.5 + 30) / 3)
    assert float(distance(now, target, 10.0, "huber")) == pytest.approx(
        (0 + 0.5 * 0.5 ** 2 + 29.5) / 3)
    at = torch.tensor([1e-4], requires_grad=True)
    distance(at, torch.zeros(1), 10.0, "huber").backward()
    assert abs(float(at.grad)) < 0.1  # the L1 pull's would be 10


def test_calibrated_rejects_an_unknown_pull(request_5):
    with pytest.raises(ValueError, match="pull must be"):
        run("calibrated", request_5, max_steps=1, pull="l2")
