"""Ours-local's locality tools (mmu_core/unlearn/locality.py) and the collateral figure
(mmu_core/metrics/collateral.py): each does what it promises on real forward passes."""

import pytest
import torch
from torch import nn

from mmu_core.data.loaders import open_image
from mmu_core.data.scenarios import forget_list_path, load_forget_ids, load_scenario
from mmu_core.metrics.collateral import collateral, nearest_groups
from mmu_core.models.backbone import load_backbone
from mmu_core.unlearn import run
from mmu_core.unlearn.locality import NullSpaceProjector, saliency_mask
from mmu_core.unlearn.request import Request, pair_loss


@pytest.fixture(scope="module")
def privacy_5(world):
    sc = load_scenario(world, "privacy")
    ids = load_forget_ids(forget_list_path(world, "privacy", 5, 0))
    return Request.build(load_backbone("embedded:privacy"), sc, ids, "privacy", seed=0)


def _inputs(bb, layer: nn.Linear, pairs) -> torch.Tensor:
    """What `layer` receives when the backbone scores these pairs."""
    seen = []
    h = layer.register_forward_hook(lambda m, i, o: seen.append(i[0].reshape(-1, m.in_features)))
    with torch.no_grad():
        bb.score_pairs([open_image(p) for p in pairs], [p.text for p in pairs])
    h.remove()
    return torch.cat(seen)


def test_projected_updates_leave_retained_inputs_nearly_unmoved(privacy_5):
    bb = privacy_5.original.copy()
    proj = NullSpaceProjector(bb, privacy_5.retain, energy=0.99, max_pairs=128)
    assert 0 < proj.summary()["free_fraction"] < 1
    name = "text_encoder.encoder.layer.0.crossattention.self.query"
    layer = proj.layers[name]
    # held-out retained pairs: not the 128 the projector read
    x = _inputs(bb, layer, privacy_5.retain[-40:])
    before = proj.snapshot()
    torch.manual_seed(0)
    with torch.no_grad():
        for m in proj.layers.values():
            m.weight.add_(0.01 * torch.randn_like(m.weight))
        raw = (layer.weight - before[name]) @ x.T
        proj.project(before)
        kept = (layer.weight - before[name]) @ x.T
    # a random update moves D_r's outputs; its projection moves them ~an order less
    assert kept.norm() < 0.2 * raw.norm()


def test_saliency_mask_frees_at_most_its_fraction(privacy_5):
    bb = privacy_5.original.copy()
    params = [p for p in bb.parameters()]
    masks = saliency_mask(params, lambda: pair_loss(bb, privacy_5.forget, privacy_5.retain[:8]),
                          lambda: pair_loss(bb, privacy_5.retain[:32], []), fraction=0.05)
    free = sum(float(m.sum()) for m in masks) / sum(m.numel() for m in masks)
    assert 0 < free <= 0.05 + 1e-6


def test_ours_local_forgets_and_edits_only_linear_weights(privacy_5):
    model, info = run("ours-local", privacy_5, max_steps=40)
    orig = dict(privacy_5.original.model.named_parameters())
    # only linear weights move, and not those of the heads every pair shares
    linear = {f"{n}.weight" for n, m in model.model.named_modules() if isinstance(m, nn.Linear)
              and not n.startswith(("itm_head", "vision_proj", "text_proj"))}
    moved = {n for n, p in model.model.named_parameters() if not torch.equal(p, orig[n])}
    assert moved and moved <= linear, sorted(moved - linear)[:3]
    f = privacy_5.forget
    s_before = privacy_5.original.score_pairs([open_image(p) for p in f], [p.text for p in f])
    s_after = model.score_pairs([open_image(p) for p in f], [p.text for p in f])
    assert float(s_after["itm"].mean()) < float(s_before["itm"].mean()) - 0.1
    assert info["steps"] <= 40 and info["batch"] == 16
    assert 0 <= info["collateral"]["mean_abs_itm_change"] <= 1


def test_collateral_reads_the_nearest_other_people(privacy_5):
    bb = privacy_5.original
    near = nearest_groups(bb, privacy_5.forget, privacy_5.retain, 3)
    assert len(near) == 3 and not {p.group for p in privacy_5.forget} & set(near)
    same = collateral(bb, bb, privacy_5.forget, privacy_5.retain, k=3)
    assert same["pairs"] == sum(p.group in near for p in privacy_5.retain)
    assert same["mean_abs_itm_change"] == 0


def test_ours_local_retain_batches_come_from_the_whole_retained_pool(privacy_5, monkeypatch):
    """A forget set of 5 rows still gets retain batches of 16 distinct retained pairs (a
    name clash once drew them from the first 5 pool entries only)."""
    import mmu_core.unlearn.ours_local as ours_local

    seen = []
    real = ours_local.feature_retention

    def record(bb, retain_batch, *rest):
        seen.append(retain_batch[1])  # token ids of the retain batch
        return real(bb, retain_batch, *rest)

    monkeypatch.setattr(ours_local, "feature_retention", record)
    run("ours-local", privacy_5, max_steps=3, bounded=False)
    assert len(seen) == 3 and all(ids.shape[0] == 16 for ids in seen)
    rows = {tuple(r.tolist()) for ids in seen for r in ids}
    assert len(rows) > 16  # different pairs across steps, from the whole pool
