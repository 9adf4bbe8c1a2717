"""The audit (does the forgetting hold?): CKA, the per-pair attacks, relearning, quantisation,
the whole audit and its command, and forget requests made one after another."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmu_core import unlearn
from mmu_core.data.inputs import InputError
from mmu_core.data.loaders import Pair, open_image
from mmu_core.data.scenarios import forget_list_path, load_forget_ids, load_scenario
from mmu_core.erasure import audit as A
from mmu_core.erasure.forget_request import forget, forget_more, retrain_reference
from mmu_core.metrics.attacks import pair_losses, per_pair_attacks, percentiles
from mmu_core.metrics.cka import cka_per_layer, layer_features, linear_cka
from mmu_core.models.backbone import load_backbone
from mmu_core.unlearn.request import Request

ROOT = Path(__file__).resolve().parent.parent
SMALL = A.AuditConfig(relearn_steps=(0, 2), batch_size=8, max_pairs=24, cka_pairs=8)


@pytest.fixture(scope="module")
def privacy(world):
    sc = load_scenario(world, "privacy")
    return sc, load_forget_ids(forget_list_path(world, "privacy", 5, 0))


@pytest.fixture(scope="module")
def models(privacy):
    sc, ids = privacy
    original = load_backbone("embedded:privacy")
    unlearned, _ = unlearn.run("ga", Request.build(original, sc, ids, "privacy"), steps=10,
                               lr=1e-4)
    return {"original": original, "unlearned": unlearned,
            "reference": load_backbone("embedded:pretrained")}


def test_linear_cka_is_one_for_rotations_and_scalings_and_low_for_unrelated_features():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 16, generator=g)
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=g))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3.0 * x @ q + 5.0) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, torch.randn(200, 16, generator=g)) < 0.2
    # debiased: unrelated features on as few pairs as an audit's D_f average near 0 (the
    # plain estimator gives them about 0.97 on 5 pairs and 0.88 on 35)
    for n in (5, 35):
        unrelated = [linear_cka(torch.randn(n, 256, generator=g), torch.randn(n, 256, generator=g))
                     for _ in range(30)]
        assert abs(sum(unrelated) / 30) < 0.15
    with pytest.raises(ValueError, match="at least 4"):
        linear_cka(x[:3], x[:3])


def test_layer_features_cover_every_layer_and_cka_of_a_model_with_itself_is_one(models,
                                                                               privacy):
    sc, _ = privacy
    bb = models["original"]
    feats = layer_features(bb, sc.train[:10])
    cfg = bb.model.config
    assert len([k for k in feats if k.startswith("vision.")]) == \
        cfg.vision_config.num_hidden_layers + 1
    assert len([k for k in feats if k.startswith("fusion.")]) == \
        cfg.text_config.num_hidden_layers
    assert all(v.shape[0] == 10 for v in feats.values())
    assert set(cka_per_layer(feats, feats).values()) == {1.0}


def test_pair_loss_is_the_itm_and_itc_cross_entropy(models, privacy):
    sc, _ = privacy
    bb = models["original"]
    pair, contrast = sc.train[0], [p.text for p in sc.unseen[:5]]
    got = pair_losses(bb, [pair], contrast)[0]
    with torch.no_grad():
        img = bb.encode_image(bb.pixels([open_image(pair)]))
        ids, mask = bb.tokenize([pair.text] + contrast)
        sim = bb.itc_logits(bb.image_feat(img), bb.text_feat(bb.encode_text(ids, mask)))
        itc = F.cross_entropy(sim, torch.tensor([0]))
        itm = F.cross_entropy(bb.itm_logits(bb.fuse(img, ids[:1], mask[:1])),
                              torch.tensor([1]))
    assert got == pytest.approx(float(itc + itm), rel=1e-4)


def test_attack_summaries_on_hand_made_losses():
    assert list(percentiles(np.array([0.0, 2.5, 10.0]), np.array([1.0, 2.0, 3.0, 4.0]))) == \
        [0.0, 50.0, 100.0]
    members, unseen = np.array([0.25, 0.5]), np.array([1.0, 2.0, 3.0])
    out = per_pair_attacks(members, unseen)  # lower loss = member
    assert out["loss"]["auc"] == 1.0 and out["loss"]["per_pair"] == [100.0, 100.0]
    assert "calibrated" not in out
    # the reference finds the same pairs just as easy: calibration removes the signal
    cal = per_pair_attacks(members, unseen, members + 0.5, unseen + 0.5)["calibrated"]
    assert cal["auc"] == 0.5


def _audited(u_pct, r_pct, u_curve=(10.0, 10.0), r_curve=(10.0, 10.0), n_unseen=100):
    """A hand-made audit result with Retrain: per-pair calibrated (and loss) percentiles of
    the unlearned model and Retrain, and benign R@D_f / MI curves (k = 0, 20)."""
    def attack(pct):
        a = {"auc": round(float(np.mean(pct)) / 100, 4), "per_pair": list(pct)}
        return {"loss": a, "calibrated": a}

    def curve(c):
        return [{"step": 0, "R@D_f": c[0], "MI": c[0]}, {"step": 20, "R@D_f": c[1], "MI": c[1]}]

    pairs = [f"P{i}" for i in range(len(u_pct))]
    res = {"n_forget_pairs": len(pairs), "n_unseen": n_unseen, "reference_free": False,
           "config": {"relearn_steps": [0, 20], "relearn_lr": 1e-4, "batch_size": 16},
           "seconds": 1.0, "quantisation": {}, "cka": {}, "cka_estimator": "debiased linear",
           "per_pair": {"unlearned": attack(u_pct), "retrain": attack(r_pct),
                        "original": attack([100.0] * len(pairs)), "pairs": pairs},
           "relearn": {"benign": {"unlearned": curve(u_curve), "retrain": curve(r_curve)},
                       "targeted_pairs": {"relearned": [], "measured": []}}}
    res["separation"] = A.separation(res)
    return res


def test_the_rule_for_when_a_measure_cannot_tell():
    # the unlearned model away from looks-unseen by more than the spread, Retrain as far
    assert A.cannot_tell(0.99, 0.96, 0.5, 0.07)
    assert not A.cannot_tell(0.99, 0.50, 0.5, 0.07)  # Retrain looks unseen: it separates
    assert not A.cannot_tell(0.55, 0.56, 0.5, 0.10)  # both look unseen: no verdict to doubt
    assert not A.cannot_tell(0.50, 0.96, 0.5, 0.07)  # unlearned looks unseen (Retrain not)
    # the AUC's spread (Hanley & McNeil) shrinks with more pairs
    assert A.auc_se(0.8, 5, 100) > A.auc_se(0.8, 50, 100) > A.auc_se(0.8, 500, 1000) > 0
    assert A.auc_se(0.99, 1, 100) == pytest.approx(0.0703, abs=1e-3)


def test_an_upload_that_retrain_reads_as_a_member_too_gets_no_verdict():
    """The issue's audit screenshot: one uploaded pair at the 99th percentile for the
    unlearned model and the 96th for Retrain, which never saw it."""
    res = _audited([99.0], [96.0])
    cal = res["separation"]["per_pair"]["calibrated"]
    assert cal["auc"]["cannot_tell"] and cal["pairs"][0]["cannot_tell"]
    notes = A.cannot_tell_notes(res)
    assert any("calibrated per-pair attack does not separate the unlearned model from "
               "Retrain" in n and "no verdict" in n for n in notes), notes
    md = A.audit_markdown(res)
    assert md.index("What this audit cannot tell") < md.index("Per-pair attacks")
    card = A.public_summary(res)
    assert card["cannot_tell"]["per_pair_attack_auc"]["calibrated"] is True
    assert "P0" not in json.dumps(card)  # figures only, never a pair
    # Retrain at looks-unseen: the attack separates the two, and the audit says nothing more
    res = _audited([99.0], [50.0])
    assert not res["separation"]["per_pair"]["calibrated"]["auc"]["cannot_tell"]
    assert A.cannot_tell_notes(res) == [] and "cannot tell" not in A.audit_markdown(res)


def test_pairs_are_judged_one_by_one_and_relearning_by_what_came_back():
    # five pairs: two read as members by both models, one by the unlearned model only
    res = _audited([99.0, 95.0, 97.0, 40.0, 50.0], [98.0, 92.0, 30.0, 40.0, 45.0])
    cal = res["separation"]["per_pair"]["calibrated"]
    assert [p["cannot_tell"] for p in cal["pairs"]] == [True, True, False, False, False]
    assert (cal["member_pairs"], cal["cannot_tell_pairs"]) == (3, 2)
    assert not cal["auc"]["cannot_tell"]  # 0.76 vs 0.61, a spread of 0.13: they differ
    assert cal["auc"]["se"] == pytest.approx(A.auc_se(0.762, 5, 100), abs=1e-3)
    assert any("cannot tell for 2 of the 3 pair(s)" in n for n in A.cannot_tell_notes(res))
    # relearning: 5 pairs, one pair's worth is 20 points; Retrain regains as much
    res = _audited([50.0] * 5, [50.0] * 5, u_curve=(10.0, 40.0), r_curve=(20.0, 45.0))
    benign = res["separation"]["relearn"]["benign"]["R@D_f"]
    assert benign == {"unlearned": 30.0, "retrain": 25.0, "step": 20, "spread": 20.0,
                      "cannot_tell": True}
    assert any(n.startswith("Benign relearning does not separate the two on R@D_f")
               for n in A.cannot_tell_notes(res))
    # ... but not when Retrain regains less than the unlearned model by over a pair's worth
    res = _audited([50.0] * 5, [50.0] * 5, u_curve=(10.0, 60.0), r_curve=(20.0, 25.0))
    assert not res["separation"]["relearn"]["benign"]["R@D_f"]["cannot_tell"]


def test_the_verdict_cannot_tell_where_retrain_reads_not_forgotten_too():
    from mmu_core.erasure.forget_request import Evidence, verdict_cannot_tell, verdict_caveat

    def ev(*rows):
        return Evidence([{"pair_id": f"P{i}", "rank": r, "member": m}
                         for i, (r, m) in enumerate(rows)])

    after = ev((3, 0.9), (40, 0.2), (2, 0.1))
    retrain = ev((5, 0.8), (1, 0.9), (50, 0.7))
    assert verdict_cannot_tell(after, retrain) == {"rank": ["P0"], "member": ["P0"], "pairs": 3}
    said = verdict_caveat(after, retrain)
    assert "cannot tell" in said and "ranks the own text of 1 of them in the top 10 too" in said
    assert verdict_caveat(after, ev((50, 0.1), (50, 0.1), (50, 0.1))) == ""


def test_targeted_split_by_groups_pairs_or_nothing():
    def pairs(groups):
        return [Pair(f"{g}{i}.png", "t", g, f"{g}_{i}") for i, g in enumerate(groups)]

    relearned, measured = A.targeted_split(pairs("aabbcc"), 0.5)
    assert {p.group for p in relearned}.isdisjoint({p.group for p in measured})
    assert relearned and measured
    relearned, measured = A.targeted_split(pairs("aaaaa"), 0.5)  # one person
    assert len(relearned) + len(measured) == 5 and relearned and measured
    assert A.targeted_split(pairs("a"), 0.5) == ([], pairs("a"))


def test_relearning_on_forget_pairs_brings_their_loss_back_and_leaves_the_model(models, privacy):
    sc, ids = privacy
    forget, retain = sc.split(ids)
    bb = models["unlearned"]
    before = {k: v.clone() for k, v in bb.state_dict().items()}
    contrast = [p.text for p in retain[:32]]
    cfg = replace(SMALL, relearn_steps=(0, 3, 10), relearn_lr=1e-4)
    curve = A.relearn_curve(bb, forget, retain, cfg,
                            lambda m: {"loss": float(pair_losses(m, forget, contrast).mean())})
    assert [c["step"] for c in curve] == [0, 3, 10]
    assert curve[-1]["loss"] < curve[0]["loss"]
    assert all(torch.equal(before[k], v) for k, v in bb.state_dict().items())


def test_int8_quantisation_replaces_the_linear_layers_and_keeps_the_scores(models, privacy):
    sc, _ = privacy
    bb = models["original"]
    q = A.quantised(bb)
    kinds = {type(m) for m in q.modules()}
    assert torch.nn.Linear not in kinds
    assert any(k.__name__ == "Linear" and "quantized" in k.__module__ for k in kinds)
    pairs = sc.train[:8]
    args = ([open_image(p) for p in pairs], [p.text for p in pairs])
    a, b = bb.score_pairs(*args)["itm"], q.score_pairs(*args)["itm"]
    assert not torch.equal(a, b) and float((a - b).abs().max()) < 0.2


def test_reference_free_audit_then_retrain_measures_only_retrain(models, privacy,
                                                                  monkeypatch):
    sc, ids = privacy
    m = models
    curves = []
    real = A.relearn_curve
    monkeypatch.setattr(A, "relearn_curve", lambda bb, *a: curves.append(bb) or real(bb, *a))
    cache = {}
    free = A.audit(m["unlearned"], m["original"], None, m["reference"], sc, ids, SMALL,
                   progress=False, cache=cache)
    assert free["reference_free"] and "gap" not in free["relearn"]
    assert "retrain" not in free["per_pair"] and "retrain" not in free["quantisation"]
    assert set(free["cka"]["D_f"]) == {"unlearned_vs_original"}
    # the share that came back: (unlearned at k - at 0) / (original - unlearned at 0)
    for mode in ("benign", "targeted"):
        curve, rec = free["relearn"][mode]["unlearned"], free["recovery"][mode]
        removed = rec["original"]["R@D_f"] - curve[0]["R@D_f"]
        assert removed > A.MIN_REMOVED  # GA removed something here
        for c, share in zip(curve, rec["share"]):
            assert share["R@D_f"] == pytest.approx((c["R@D_f"] - curve[0]["R@D_f"]) / removed,
                                                   abs=0.006)
    md = A.audit_markdown(free)
    assert "reference-free" in md and "came back" in md and "gap" not in md
    assert A.public_summary(free)["reference_free"] is True
    assert curves == [m["unlearned"]] * 2  # benign and targeted
    # Retrain added later: only Retrain is measured, the unlearned figures are the same
    res = A.audit(m["unlearned"], m["original"], m["original"], m["reference"], sc, ids, SMALL,
                  progress=False, cache=cache)
    assert curves[2:] == [m["original"]] * 2
    assert res["relearn"]["benign"]["unlearned"] == free["relearn"]["benign"]["unlearned"]
    assert res["per_pair"]["unlearned"] == free["per_pair"]["unlearned"]
    assert not res["reference_free"] and res["recovery"] == free["recovery"]
    # the same figures as an audit made in one go (what the benchmark makes)
    whole = A.audit(m["unlearned"], m["original"], m["original"], m["reference"], sc, ids, SMALL,
                    progress=False)
    assert {**res, "seconds": 0} == {**whole, "seconds": 0}
    del curves[4:]
    # another Retrain (Compare's slider) is measured anew, the unlearned model is not
    A.audit(m["unlearned"], m["original"], m["reference"], m["reference"], sc, ids, SMALL,
            progress=False, cache=cache)
    assert curves[4:] == [m["reference"]] * 2
    # another configuration is measured anew
    A.audit(m["unlearned"], m["original"], None, m["reference"], sc, ids,
            replace(SMALL, relearn_steps=(0, 1)), progress=False, cache=cache)
    assert curves[6:] == [m["unlearned"]] * 2
    with pytest.raises(ValueError, match="must include 0"):
        replace(SMALL, relearn_steps=(5, 20))


def test_audit_reports_every_check_and_the_gap_to_retrain(models, privacy):
    sc, ids = privacy
    m = models
    res = A.audit(m["unlearned"], m["original"], m["original"], m["reference"], sc, ids, SMALL,
                  progress=False)
    assert set(res["relearn"]) == {"benign", "targeted", "gap", "targeted_pairs"}
    for mode in ("benign", "targeted"):
        for k, (u, r) in enumerate(zip(res["relearn"][mode]["unlearned"],
                                       res["relearn"][mode]["retrain"])):
            gap = res["relearn"]["gap"][mode][k]
            assert gap["R@D_f"] == pytest.approx(u["R@D_f"] - r["R@D_f"], abs=0.011)
    # Retrain here is the original: its curve and attacks equal the original's
    assert res["per_pair"]["retrain"] == res["per_pair"]["original"]
    assert set(res["cka"]["D_f"]["original_vs_retrain"].values()) == {1.0}
    assert len(res["per_pair"]["unlearned"]["loss"]["per_pair"]) == len(ids)
    q = res["quantisation"]["unlearned"]
    assert set(q) == {"fp32", "int8"}
    md = A.audit_markdown(res)
    assert "## Relearning, benign" in md and "Debiased linear CKA" in md and "quantisation" in md


def test_audit_command_reads_the_forget_result(world, privacy, tmp_path):
    sc, ids = privacy
    forget = forget_list_path(world, "privacy", 5, 0)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    base = [sys.executable, "-m", "mmu_core"]
    made = subprocess.run(base + ["forget", "--method", "ga", "--forget", str(forget),
                                  "--set", "steps=2", "--no-eval", "--out",
                                  str(tmp_path / "m")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    out = subprocess.run(base + ["audit", "--model", str(tmp_path / "m"), "--retrain",
                                 "embedded:privacy", "--relearn-steps", "0,1",
                                 "--out", str(tmp_path / "audit")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert res["scenario"] == "privacy" and res["n_forget_pairs"] == len(ids)
    assert res["original"] == "embedded:privacy"
    assert (tmp_path / "audit" / "audit.md").read_text().startswith("# Audit")
    # the forget result's card now carries the audit's figures, never a forgotten pair
    card = (tmp_path / "m" / "README.md").read_text()
    assert "relearning_gap_to_retrain" in card and "per_pair_attack_auc" in card
    assert not any(i in card for i in ids)
    assert not any(p.text in card for p in sc.split(ids)[0])


def test_requests_one_after_another(models, privacy, monkeypatch, tmp_path):
    sc, ids = privacy
    seen = []
    real_run = unlearn.run

    def spy(name, request, **kw):
        seen.append(request)
        return real_run(name, request, **kw)

    monkeypatch.setattr(unlearn, "run", spy)
    first_pairs = [p for p in sc.train if p.pair_id in set(ids)]
    first = forget(models["original"], sc, "privacy", first_pairs, "ga", {"steps": 2})
    others = [p for p in sc.train if p.pair_id not in set(ids)]
    second_pairs = [p for p in others if p.group == others[0].group]
    second = forget_more(first, second_pairs, settings={"steps": 2})
    req = seen[-1]
    assert req.original is first.unlearned
    assert req.extras["mvi_pairs"] is first.mvi_pairs  # one MVI fit for the whole sequence
    assert not ({p.pair_id for p in req.retain} & set(ids)), "earlier pairs were retained"
    assert second.history == [first_pairs, second_pairs]
    assert set(second.forgotten_ids) == set(ids) | {p.pair_id for p in second_pairs}
    assert second.shipped is models["original"] and second.method == "ga"
    everything = second.all_data()
    assert set(everything.split(second.forgotten_ids)[0]) == set(first_pairs + second_pairs)
    # Inspect's whole-sequence reading: every pair, from the model before the first request
    from mmu_core.erasure.inspection import scope_text

    whole = second.whole_sequence()
    assert whole.original is models["original"] and whole.unlearned is second.unlearned
    assert whole.forget == first_pairs + second_pairs
    assert set(second.forgotten_ids) <= {p.pair_id for p in whole.scenario_data.train}
    assert "Request 2 of a sequence" in scope_text(second)
    assert "whole sequence of 2 requests" in scope_text(second, whole=True)
    assert f"all {len(whole.forget)} pair(s)" in scope_text(second, whole=True)
    with pytest.raises(InputError, match="earlier request"):
        forget_more(second, first_pairs[:1])
    # Retrain for the sequence: on the data without every pair forgotten so far
    monkeypatch.setattr(unlearn, "run", lambda name, request, **kw: (
        seen.append(request) or (request.original, {"epochs": 0})))
    retrained, how = retrain_reference(second)
    assert not ({p.pair_id for p in seen[-1].retain} & set(second.forgotten_ids))
    assert how["how"] == "retrained on D_r for 0 epochs"

    # Compare, the export and the report cover the union, against the model before the
    # first request (not the last request's pairs against the previous result)
    from mmu_core.erasure import forget_request as FR
    from mmu_core.erasure.export import export_outcome
    from mmu_core.erasure.report import erasure_report
    from mmu_core.metrics import evaluate as E

    evaluated, scored = [], []
    monkeypatch.setattr(E, "evaluate", lambda bb, data, ids, **kw: evaluated.append(
        (bb, data, list(ids))) or {"headline": {"MI": 1.0}})
    monkeypatch.setattr(FR, "evidence", lambda bb, data, pairs, seed=0: scored.append(
        (bb, list(pairs))) or first.before)
    cmp = FR.comparison(second, retrained)
    assert [bb for bb, *_ in evaluated] == [models["original"], second.unlearned, retrained]
    assert all(ids == second.forgotten_ids for *_, ids in evaluated)
    assert all(set(ids) <= {p.pair_id for p in data.train} for _, data, ids in evaluated)
    assert [pairs for _, pairs in scored] == [second.forgotten] * 3
    assert set(cmp["evidence"]) == {"original", "unlearned", "retrained"}
    record, internal = export_outcome(second, tmp_path / "export", "embedded")
    assert internal["request"]["forget_ids"] == second.forgotten_ids
    assert record["forgotten"]["entries"] == len(set(second.forgotten_ids))
    assert record["requests"] == [{"method": "ga", "entries": len(first_pairs)},
                                  {"method": "ga", "entries": len(second_pairs)}]
    assert "forgotten in 2 requests" in (tmp_path / "export" / "README.md").read_text()
    page = erasure_report(second)
    assert "2 requests, each on top of the one before" in page
    assert all(p.pair_id in page for p in first_pairs + second_pairs)


def test_sequence_table_retrains_on_each_union_and_resumes(privacy, tmp_path, monkeypatch):
    """Every method against one Retrain per request, on the union so far; the cells make a
    second call compute nothing. Metrics are faked: this checks the bookkeeping."""
    from mmu_core.bench import audit as B
    from mmu_core.metrics import evaluate as E

    calls, budgets = [], []

    def fake_run(name, request, **kw):
        calls.append((name, [p.pair_id for p in request.forget],
                      {p.pair_id for p in request.retain}))
        budgets.append(kw.get("neighbour_budget"))
        return request.original, {"steps": 1, "seconds": 0.0, "epochs": 1}

    def fake_evaluate(model, sc, ids, **kw):  # Retrain's figures differ from the method's
        retrain = calls[-1][0] == "retrain"
        mi = float(len(ids)) + (10.0 if retrain else 0.0)
        return {"scenario": "privacy", "headline": {"MI": mi, "R@D_f": 50.0, "R@D_test": 60.0,
                                                    "R@D_r": 90.0 if retrain else 70.0}}

    monkeypatch.setattr(unlearn, "run", fake_run)
    monkeypatch.setattr(E, "evaluate", fake_evaluate)
    monkeypatch.setattr(B, "tuned_settings", lambda *a: ({"steps": 1}, "test"))
    r = B.sequence_table(tmp_path, methods=("ga", "ga+budget"), requests=2, size=5)
    # the guarded form ran ga within the app's default budget for a 5-pair request, each time
    from mmu_core.unlearn.budget import default_budget
    assert [b for c, b in zip(calls, budgets) if c[0] == "ga"] == \
        [None, None] + [default_budget("privacy", 5)[0]] * 2
    assert r["avg_g"]["ga+budget"] == r["avg_g"]["ga"]
    plain = [c for c, b in zip(calls, budgets) if b is None]
    retrains = [c for c in plain if c[0] == "retrain"]
    plan = B._requests(load_scenario(B.default_world(), "privacy"), 2, 5, 0)
    unions = [[p.pair_id for p in plan[0]], [p.pair_id for r in plan for p in r]]
    assert [sorted(c[1]) for c in retrains] == [sorted(u) for u in unions]
    assert all(not (set(u) & c[2]) for u, c in zip(unions, retrains))
    # the method's second request forgot only the new pairs, on data without the first
    ga = [c for c in plain if c[0] == "ga"]
    assert sorted(ga[1][1]) == sorted(p.pair_id for p in plan[1])
    assert not (set(unions[0]) & ga[1][2])
    assert r["avg_g"]["ga"] == [round(10.0 / 3, 2)] * 2  # only MI differs, by 10
    # R@D_r, which Avg.G leaves out, has its own table with Retrain's beside the method's
    assert r["r_dr"]["ga"] == [70.0, 70.0]
    # the four-axis figure counts it: (|dMI| 10 + |dR@D_r| 20) / 4
    assert r["four_axis"]["ga"] == [7.5, 7.5]
    md = (tmp_path / "README.md").read_text()
    assert md.count("\n| 2 (10) |") == 3 and "\n| 2 (10) | 90.0 | 70.0 |" in md
    assert "\n| 2 (10) | **7.50** | **7.50** |" in md and "\n| R@D_r | 20.00 | 20.00 |" in md
    n = len(budgets)
    again = B.sequence_table(tmp_path, methods=("ga", "ga+budget"), requests=2, size=5)
    assert len(budgets) == n, "cells were recomputed"
    assert again["avg_g"] == r["avg_g"] and again["retrain"] == r["retrain"]
    with pytest.raises(ValueError, match="unknown method"):
        B.sequence_table(tmp_path, methods=("nope",))


def test_sequence_requests_are_whole_groups_of_exactly_the_size():
    from types import SimpleNamespace

    from mmu_core.bench import audit as B

    sizes = [2, 3, 4, 1, 1, 1, 3, 2, 5, 2, 1, 4]  # groups of uneven sizes
    train = [SimpleNamespace(pair_id=f"g{g}_{i}", group=f"g{g}")
             for g, n in enumerate(sizes) for i in range(n)]
    plan = B._requests(SimpleNamespace(train=train), 3, 5, seed=1)
    assert [len(r) for r in plan] == [5, 5, 5]
    groups = [{p.group for p in r} for r in plan]
    for r, gs in zip(plan, groups):  # every group in a request is whole
        assert sorted(p.pair_id for p in r) == sorted(p.pair_id for p in train if p.group in gs)
    assert not (groups[0] & groups[1]) and not (groups[1] & groups[2])
    with pytest.raises(ValueError, match="not enough whole groups"):
        B._requests(SimpleNamespace(train=train), 6, 5, seed=1)
