"""The benchmark's protocol and the fixed baselines (issue 12): Eq. 3-5 on hand-made cases,
what each baseline draws and reports, and what tuning may read."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn

from mmu_core.data.loaders import Pair, forget_id, read_id_list
from mmu_core.unlearn import multidelete, ours


class TokenBackbone:
    """A stand-in backbone whose "pixels" and "token ids" are token features already, and
    whose ITM logit is 10 x the dot product of the mean image and mean text token."""

    def __init__(self):
        self.model = SimpleNamespace(vision_proj=nn.Identity(), text_proj=nn.Identity())
        self.temp = torch.tensor(0.5)

    def encode_image(self, pix):
        return pix

    def encode_text(self, ids, mask):
        return ids

    def fuse(self, img, ids, mask):
        logit = 10 * (img.mean(1) * ids.mean(1)).sum(-1)
        return torch.stack([torch.zeros_like(logit), logit], -1)[:, None]

    def itm_logits(self, fused):
        return fused[:, 0]


def t(rows):
    return torch.tensor([rows], dtype=torch.float)


X_IMG = t([[1, 0], [0, 1]])  # image tokens of X_1
X_TXT = t([[1, 0], [0.6, 0.8]])  # text tokens of X_2
R1_IMG = t([[0.6, 0.8], [0.6, 0.8]])  # anchor image R_1
R2_TXT = t([[1, 0], [0, 1]])  # anchor text R_2, its second token padding
X_MASK, R2_MASK = torch.tensor([[1, 1]]), torch.tensor([[1, 0]])


def test_eq3_and_eq4_on_a_hand_made_case():
    bb = TokenBackbone()
    alpha = torch.tensor([[1.0, 0.0]])  # token 1 shared with the anchor (K'), token 2 not (U')
    terms = ours.edit_losses(bb, X_IMG, X_TXT, X_MASK, R1_IMG, R2_TXT, R2_MASK, alpha,
                             ours.Settings(saturate=False))
    tau, a_bar = 0.5, 0.5
    # s_k per text token: N (X_1, X_2) = [1, 0.8]; P (R_1, X_2) = [0.6, 1.0];
    # P (X_1, R_2) = [1, padding]. S = sum_k w_k s_k / K.
    s_n = (0 * 1 + 1 * 0.8) / 2  # N weighted by 1 - alpha
    s_p1 = (1 * 0.6 + 0 * 1.0) / 2  # P weighted by alpha
    s_p2 = 1.0 / 1
    assert float(terms["cl_n"]) == pytest.approx(s_n / tau)
    assert float(terms["cl_p"]) == pytest.approx(-(s_p1 + a_bar * s_p2) / (2 * tau))
    p = lambda img, txt: float(torch.sigmoid(10 * (img.mean(1) * txt.mean(1)).sum()))  # noqa
    p_n = p(X_IMG, X_TXT)
    p_p = p(X_IMG, R2_TXT) + p(R1_IMG, X_TXT)
    assert float(terms["cf_n"]) == pytest.approx((1 - a_bar) * np.log(2 * p_n), rel=1e-5)
    assert float(terms["cf_p"]) == pytest.approx(-a_bar * np.log(p_p), rel=1e-5)
    assert float(terms["l_cf"]) == pytest.approx(np.log(2 * p_n / p_p), abs=1e-6)


def test_one_pair_stops_on_the_median_of_five_mismatch_texts():
    """One pair (an upload in the app): two other texts that happen to match its image
    better than its own text (an unusual photograph) no longer end the edit at once; the
    median of five does not count them. One text per row from five rows on, as before."""
    bb = TokenBackbone()
    image, own = torch.tensor([[[1.0]]]), torch.tensor([[[0.05]]])  # match 0.62
    texts = torch.tensor([[[[0.3]]], [[[0.3]]], [[[-0.5]]], [[[-0.5]]], [[[-0.5]]]])
    mask = torch.ones(5, 1, 1)
    assert float(ours.mismatch_match(bb, image, texts[:1], mask[:1])) > 0.9  # one text: stop
    assert ours._no_better_than_mismatch(bb, image, own, None, texts[:1], mask[:1])
    assert float(ours.mismatch_match(bb, image, texts, mask)) < 0.01
    assert not ours._no_better_than_mismatch(bb, image, own, None, texts, mask)


def test_mismatch_texts_per_row_come_from_other_groups():
    from mmu_core.unlearn.request import sample_exactly

    pairs = [Pair(f"i{k}", f"text {k}", f"G{k % 7}", f"p{k}") for k in range(40)]
    forget, retain = pairs[:7], pairs[7:]
    request = SimpleNamespace(forget=forget, retain=retain)
    bb = SimpleNamespace(tokenize=lambda texts: (
        torch.tensor([[int(t.split()[1])] for t in texts]), torch.ones(len(texts), 1)))
    ids, _ = ours.mismatch_texts(bb, request, 1, seed=3)
    assert ids.shape == (ours.MISMATCH_TEXTS, 1, 1)  # one row: five texts
    ids, _ = ours.mismatch_texts(bb, SimpleNamespace(forget=forget[:1], retain=retain), 1, 3)
    assert all(pairs[int(i)].group != "G0" for i in ids.flatten())
    ids, _ = ours.mismatch_texts(bb, request, 7, seed=3)  # five rows and more: one per row,
    assert ids.shape == (1, 7, 1)  # the same draw as before the change
    others = [p for p in retain if p.group not in {q.group for q in forget}] or retain
    before = sample_exactly(others, 7, torch.Generator().manual_seed(3))
    assert [int(i) for i in ids.flatten()] == [int(p.text.split()[1]) for p in before]


def test_the_hinge_stops_pushing_a_pair_already_below_its_mismatch():
    """hinge=True: a row's N-terms (L_cl and L_cf) count only while the pair scores above
    its image with another group's text; the P-terms are untouched."""
    bb = TokenBackbone()
    alpha = torch.tensor([[1.0, 0.0]])
    plain = ours.edit_losses(bb, X_IMG, X_TXT, X_MASK, R1_IMG, R2_TXT, R2_MASK, alpha,
                             ours.Settings(saturate=False))
    hinge = ours.Settings(hinge=True, saturate=False)
    below = (t([[0.0, 0.0], [0.0, 0.0]]), torch.tensor([[1, 1]]))  # matches nothing
    above = (t([[2, 0], [0, 2]]), torch.tensor([[1, 1]]))  # scores above X_2 on both heads
    still = ours.edit_losses(bb, X_IMG, X_TXT, X_MASK, R1_IMG, R2_TXT, R2_MASK, alpha, hinge,
                             mismatch=below)
    done = ours.edit_losses(bb, X_IMG, X_TXT, X_MASK, R1_IMG, R2_TXT, R2_MASK, alpha, hinge,
                            mismatch=above)
    for key in ("cl_n", "cf_n", "cl_p", "cf_p"):
        assert float(still[key]) == pytest.approx(float(plain[key]))
    assert float(done["cl_n"]) == 0 and float(done["cf_n"]) == 0
    assert float(done["cl_p"]) == pytest.approx(float(plain["cl_p"]))


def test_saturate_gives_softplus_of_l_cl_gradient_and_keeps_l_cf():
    """saturate=True: each row's L_cl parts are scaled by sigmoid(L_cl), so their gradient
    is softplus(L_cl)'s; L_cf is untouched."""
    alpha = torch.tensor([[1.0, 0.0]])
    bb = TokenBackbone()
    plain = ours.edit_losses(bb, X_IMG, X_TXT, X_MASK, R1_IMG, R2_TXT, R2_MASK, alpha,
                             ours.Settings(saturate=False))
    x = X_TXT.clone().requires_grad_(True)
    sat = ours.edit_losses(bb, X_IMG, x, X_MASK, R1_IMG, R2_TXT, R2_MASK, alpha,
                           ours.Settings(saturate=True))
    (grad,) = torch.autograd.grad(sat["cl_n"] + sat["cl_p"], x)
    x2 = X_TXT.clone().requires_grad_(True)
    lin = ours.edit_losses(bb, X_IMG, x2, X_MASK, R1_IMG, R2_TXT, R2_MASK, alpha,
                           ours.Settings(saturate=False))
    (want,) = torch.autograd.grad(torch.nn.functional.softplus(lin["cl_n"] + lin["cl_p"]), x2)
    assert torch.allclose(grad, want, atol=1e-6) and grad.abs().sum() > 0
    gate = float(torch.sigmoid(plain["cl_n"] + plain["cl_p"]))
    assert 0 < gate < 1 and float(sat["cl_gate"]) == pytest.approx(gate)
    for key in ("cf_n", "cf_p"):
        assert float(sat[key]) == pytest.approx(float(plain[key]))


def test_a_constant_alpha_scales_s_instead_of_cancelling():
    s = torch.tensor([[0.9, 0.5, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    full = ours.similarity(s, mask, mask)
    assert float(full) == pytest.approx(0.7)
    for c in (0.25, 0.75):
        assert float(ours.similarity(s, c * mask, mask)) == pytest.approx(c * 0.7)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 1.5])
def test_a_fixed_alpha_that_would_drop_a_term_is_refused(alpha):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        ours.contrastive_semantic_editing(SimpleNamespace(), alpha=alpha)


def test_eq5_alpha_is_the_best_cosine_to_the_anchor_tokens():
    bb = TokenBackbone()
    alpha = ours.token_alpha(bb, X_TXT, X_MASK, R2_TXT, R2_MASK)
    # token 1 = anchor token 1 (cos 1); token 2 meets only anchor token 1 (token 2 is padding)
    assert alpha[0].tolist() == pytest.approx([1.0, 0.6])
    opposite = ours.token_alpha(bb, t([[-1, 0]]), torch.tensor([[1]]), R2_TXT, R2_MASK)
    assert opposite.tolist() == [[0.0]]  # clamped to [0, 1]
    masked = ours.token_alpha(bb, X_TXT, torch.tensor([[1, 0]]), R2_TXT, R2_MASK)
    assert masked[0].tolist() == pytest.approx([1.0, 0.0])  # padding of X_2 gets no weight


def _pair(group, k):
    return Pair(f"{group}.png", f"text {group} {k}", group, f"{group}_{k}")


def test_multidelete_mismatches_come_from_other_groups():
    gen = torch.Generator().manual_seed(0)
    one_person = [_pair("P1", k) for k in range(5)]
    retain = [_pair(g, k) for g in ("P2", "P3") for k in range(5)]
    drawn = multidelete.mismatched_texts(one_person, one_person + retain, gen)
    assert len(drawn) == 5 and all(q.group != "P1" for q in drawn)
    one_pair = one_person[:1]
    assert multidelete.mismatched_texts(one_pair, one_pair + retain, gen)[0].group != "P1"
    two = [_pair("A", 0), _pair("B", 0)]
    assert [q.group for q in multidelete.mismatched_texts(two, two + retain, gen)] == ["B", "A"]
    with pytest.raises(ValueError, match="no pair outside"):
        multidelete.mismatched_texts(one_person, one_person, gen)


def test_membership_attack_never_trains_on_the_forget_pairs(monkeypatch):
    from mmu_core.metrics import membership

    calls = []

    def features(bb, pairs):
        calls.append([p.pair_id for p in pairs])
        return np.random.default_rng(len(calls)).normal(size=(len(pairs), 4))

    monkeypatch.setattr(membership, "pair_features", features)
    members = [_pair(f"M{i}", 0) for i in range(40)]
    non = [_pair(f"N{i}", 0) for i in range(40)]
    targets = [_pair(f"F{i}", 0) for i in range(5)]
    membership.membership_inference(None, members, non, targets)
    fitted, scored = calls[:-1], calls[-1]
    assert scored == [p.pair_id for p in targets]
    assert not {i for c in fitted for i in c} & set(scored)


def test_forget_lists_take_ids_or_annotation_image_values(tmp_path):
    assert forget_id("P0127_0") == "P0127_0"
    assert forget_id("flickr30k-images/1000092795.jpg") == "1000092795"
    assert forget_id("mllmu-images/P0000_3.png") == "P0000_3"
    (tmp_path / "ids.txt").write_text("S00012\nS00040\n")
    (tmp_path / "multidelete.txt").write_text("flickr30k-images/S00012.png\n"
                                              "flickr30k-images/S00040.png\n")
    assert read_id_list(tmp_path / "ids.txt") == read_id_list(tmp_path / "multidelete.txt")


def test_word_shift_lists_keep_drops_rises_and_near_zero_apart(monkeypatch):
    from mmu_core.metrics import word_shifts as ws

    before = [{"viktor": 90.0, "wall": 50.0, "blue": 40.0, "hat": 10.0}] * 2
    after = [{"viktor": 60.0, "wall": 49.5, "blue": 64.0, "hat": 11.0}] * 2
    monkeypatch.setattr(ws, "word_scores", lambda bb, pairs: before if bb == "b" else after)
    out = ws.word_shifts("b", "a", [None, None], top=5)
    assert [w for w, *_ in out["largest"]] == ["viktor", "wall"]  # negative shifts only
    assert all(s < 0 for _, s, _ in out["largest"])
    assert [w for w, *_ in out["near_zero"]] == ["hat"]  # |+1| <= 2; wall is a drop
    assert [w for w, *_ in out["rises"]] == ["blue"]  # +24 is a rise, never "near zero"


def test_validation_view_holds_no_test_data(tiny_world):
    from mmu_core.data.scenarios import load_scenario

    for name in ("privacy", "copyright"):
        sc = load_scenario(tiny_world, name)
        view = sc.validation_view()
        test_images = {p.image for p in sc.test}
        assert view.test == sc.val and not view.mcq_test and not view.ve_test
        assert not {p.image for p in view.unseen + view.test} & test_images


def test_tuned_settings_come_from_the_nearest_validated_size(tmp_path):
    import json

    from mmu_core.unlearn.tuned import tuned_settings

    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"settings": {"privacy": {"5": {"ga": {"steps": 5}},
                                                         "50": {"ga": {"steps": 60}}}}}))
    assert tuned_settings("ga", "privacy", 5, path)[0] == {"steps": 5}
    assert tuned_settings("ga", "privacy", 500, path)[0] == {"steps": 60}
    assert tuned_settings("ga", "copyright", 35, path)[0] == {}
    assert tuned_settings("ga", "privacy", 5, tmp_path / "none.json")[0] == {}
    # tuned on the embedded default: another model runs the method's own defaults
    assert tuned_settings("ga", "privacy", 5, path, model="embedded:privacy")[0] == {"steps": 5}
    settings, source = tuned_settings("ga", "privacy", 5, path, model="Salesforce/blip-itm")
    assert settings == {} and "own defaults" in source
