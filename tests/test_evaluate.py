import math

import numpy as np
import pytest

from mmu_core.data.scenarios import load_scenario
from mmu_core.metrics.compare import compare
from mmu_core.metrics.evaluate import evaluate, recall_at
from mmu_core.metrics.membership import fit_attack


def test_recall_at_counts_the_best_positive():
    scores = np.array([[0.9, 0.8, 0.1], [0.1, 0.2, 0.3], [0.5, 0.4, 0.3]])
    positives = np.array([[True, False, False], [True, False, False], [False, False, True]])
    r = recall_at(scores, positives, ks=(1, 2, 3))
    assert r == {"R@1": pytest.approx(100 / 3), "R@2": pytest.approx(100 / 3), "R@3": 100.0}


def test_attack_separates_separable_features():
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0, 1, (100, 8)), rng.normal(3, 1, (100, 8))]
    y = np.r_[np.zeros(100), np.ones(100)]
    p = fit_attack(x, y).predict_proba(np.r_[rng.normal(3, 1, (20, 8)), rng.normal(0, 1, (20, 8))])
    assert p[:20, 1].mean() > 0.9 and p[20:, 1].mean() < 0.1


def test_evaluate_reports_every_metric(tiny_backbone, tiny_world):
    sc = load_scenario(tiny_world, "privacy")
    forget = [p.pair_id for p in sc.train[:5]]
    r = evaluate(tiny_backbone, sc, forget, progress=False)
    h = r["headline"]
    assert set(h) >= {"MI", "R@D_f", "R@D_test", "R@D_r", "A@D_f", "A@D_test"}
    assert all(0 <= v <= 100 for v in h.values() if not math.isnan(v))
    assert r["n_forget_pairs"] == 5
    ret = r["details"]["retrieval D_test"]
    assert ret["n_query_texts"] == len(sc.test) and set(ret["TR"]) == {"R@1", "R@5", "R@10"}


def test_compare_computes_deltas_and_m_scores():
    res = {"scenario": "privacy", "headline": {"MI": 20.0, "R@D_f": 30.0, "R@D_test": 80.0,
                                               "A@D_f": 50.0, "A@D_test": 60.0}}
    ret = {"scenario": "privacy", "headline": {"MI": 14.0, "R@D_f": 15.0, "R@D_test": 90.0,
                                               "A@D_f": 25.0, "A@D_test": 70.0}}
    c = compare(res, ret)
    assert c["retrieval"]["delta"] == {"MI": 6.0, "R@D_f": 15.0, "R@D_test": 10.0}
    assert c["retrieval"]["avg_g"] == pytest.approx(31 / 3)
    assert c["second"]["avg_g"] == pytest.approx((6 + 25 + 10) / 3)
    assert (c["M_eff"], c["M_rel"], c["M_loc"]) == (94.0, 85.0, 90.0)
    with pytest.raises(ValueError, match="scenarios differ"):
        compare(res, {**ret, "scenario": "copyright"})


def test_headline_table_shows_deltas_to_retrain():
    from mmu_core.metrics.compare import headline_table

    a = {"headline": {"MI": 90.0, "R@D_f": 91.0, "R@D_test": 70.0}}
    b = {"headline": {"MI": 20.0, "R@D_f": 5.0, "R@D_test": 72.0}}
    t = headline_table({"Original": a, "Retrain": b}, retrain="Retrain").splitlines()
    assert t[0] == "| model | MI | R@D_f | R@D_test |"
    assert t[2] == "| Original | 90.0 (70.0) | 91.0 (86.0) | 70.0 (2.0) |"
    assert t[3] == "| Retrain | 20.0 (0.0) | 5.0 (0.0) | 72.0 (0.0) |"


class GroupBackbone:
    """Scores an image and a text 1 when they belong to the same group, else 0: every
    image of a person matches every sentence of that person equally."""

    def __init__(self, groups):
        self.index = {g: i for i, g in enumerate(sorted(set(groups)))}
        self.text_group = {}

    def eval(self):
        return self

    def _onehot(self, idx):
        import torch
        return torch.nn.functional.one_hot(idx, len(self.index)).float()[:, None]

    def tokenize(self, texts):
        import torch
        ids = torch.tensor([[self.index[self.text_group[t]]] for t in texts])
        return ids, torch.ones_like(ids)

    def encode_text(self, ids, mask):
        return self._onehot(ids[:, 0])

    def image_feat(self, img):
        return img[:, 0]

    text_feat = image_feat

    def fuse(self, img, ids, mask):
        return (img[:, 0] * self._onehot(ids[:, 0])[:, 0]).sum(-1)

    def itm_logits(self, fused):
        import torch
        return torch.stack([torch.zeros_like(fused), 10 * fused], -1)


def test_recall_galleries_and_positives_are_built_as_documented(tiny_world, monkeypatch):
    """Gallery = the queried pairs + the distractors; queries = their images and texts; a
    hit is any pair of the same group (a person's five photos all match each sentence)."""
    import torch

    from mmu_core.metrics import evaluate as ev

    sc = load_scenario(tiny_world, "privacy")
    pairs, distractors = sc.train[:10], sc.unseen[:15]  # two people; three unseen people
    bb = GroupBackbone([p.group for p in pairs + distractors])
    bb.text_group = {p.text: p.group for p in pairs + distractors}
    monkeypatch.setattr(ev, "_image_embeds", lambda bb_, images: bb._onehot(
        torch.tensor([bb.index[p.group] for p in images])))
    r = ev.retrieval(bb, pairs, distractors=distractors)
    assert r["n_gallery_texts"] == 25 and r["n_query_texts"] == 10
    assert r["n_gallery_images"] == len({p.image for p in pairs + distractors})
    assert r["n_query_images"] == len({p.image for p in pairs})
    # per-pair positives would give a sentence's first-ranked photo (the person's first)
    # credit only for sentence 0, i.e. R@1 = 20; group positives give 100
    assert r["IR"]["R@1"] == 100.0 and r["TR"]["R@1"] == 100.0
