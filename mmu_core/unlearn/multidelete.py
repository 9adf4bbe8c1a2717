"""MultiDelete: "Multimodal machine unlearning" (Cheng & Amiri, ECCV 2024). Three losses:
modality decoupling (the fused embedding of a forgetting pair moves to the original's
fused embedding of a mismatched pair: its image with the text of another group, from D_f
where it holds other groups, else from D_r, so one pair or one person works), multimodal
knowledge retention (fused CLS of D_r pairs kept at the original's) and unimodal knowledge
retention (image embeddings of D_f kept at the original's)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmu_core.data.loaders import Pair
from mmu_core.unlearn import register
from mmu_core.unlearn.request import Request, optimiser, sample, step, tensors


def mismatched_texts(pairs: list[Pair], pool: list[Pair], gen: torch.Generator) -> list[Pair]:
    """For each pair, a pair of another group (another person, another image) whose text
    becomes the mismatch: drawn from the forget pairs of other groups when there are any,
    else from the whole pool."""
    outside = [q for q in pool if q.group not in {p.group for p in pairs}]
    out = []
    for p in pairs:
        others = [q for q in pairs if q.group != p.group] or outside
        if not others:
            raise ValueError(f"no pair outside group {p.group!r} to draw a mismatch from")
        out.append(others[int(torch.randint(len(others), (1,), generator=gen))])
    return out


def _fused_cls(bb, pix, ids, mask):
    return bb.fuse(bb.encode_image(pix), ids, mask)[:, 0]


@register("multidelete")
def multidelete(request: Request, steps: int = 20, lr: float = 5e-5, batch_size: int = 16,
                w_decouple: float = 1.0, w_multimodal: float = 1.0, w_unimodal: float = 1.0):
    bb, orig = request.fresh_model(), request.original
    opt = optimiser(bb, lr)
    gen = torch.Generator().manual_seed(request.seed)
    pool = request.forget + request.retain
    for _ in range(steps):
        f = sample(request.forget, batch_size, gen)
        r = sample(request.retain, batch_size, gen)
        f_pix, f_ids, f_mask = tensors(bb, f)
        r_pix, r_ids, r_mask = tensors(bb, r)
        m_ids, m_mask = bb.tokenize([p.text for p in mismatched_texts(f, pool, gen)])
        with torch.no_grad():
            target_dec = _fused_cls(orig, f_pix, m_ids, m_mask)
            target_mm = _fused_cls(orig, r_pix, r_ids, r_mask)
            target_img = orig.image_feat(orig.encode_image(f_pix))
        loss = (w_decouple * F.mse_loss(_fused_cls(bb, f_pix, f_ids, f_mask), target_dec)
                + w_multimodal * F.mse_loss(_fused_cls(bb, r_pix, r_ids, r_mask), target_mm)
                + w_unimodal * F.mse_loss(bb.image_feat(bb.encode_image(f_pix)), target_img))
        step(opt, loss, bb.parameters())
    return bb, {"steps": steps, "lr": lr}
