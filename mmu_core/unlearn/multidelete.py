"""MultiDelete: "Multimodal machine unlearning" (Cheng & Amiri, ECCV 2024). Three losses:
modality decoupling (the fused embedding of a forgetting pair moves to the original's
fused embedding of a mismatched pair, its text shuffled within D_f), multimodal knowledge
retention (fused CLS of D_r pairs kept at the original's) and unimodal knowledge
retention (image embeddings of D_f kept at the original's)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmu_core.unlearn import register
from mmu_core.unlearn.request import Request, optimiser, sample, step, tensors


def _fused_cls(bb, pix, ids, mask):
    return bb.fuse(bb.encode_image(pix), ids, mask)[:, 0]


@register("multidelete")
def multidelete(request: Request, steps: int = 20, lr: float = 5e-5, batch_size: int = 16,
                w_decouple: float = 1.0, w_multimodal: float = 1.0, w_unimodal: float = 1.0):
    bb, orig = request.fresh_model(), request.original
    opt = optimiser(bb, lr)
    gen = torch.Generator().manual_seed(request.seed)
    for _ in range(steps):
        f = sample(request.forget, batch_size, gen)
        r = sample(request.retain, batch_size, gen)
        f_pix, f_ids, f_mask = tensors(bb, f)
        r_pix, r_ids, r_mask = tensors(bb, r)
        # text shuffled among D_f pairs of other groups where possible
        perm = torch.randperm(len(f), generator=gen)
        with torch.no_grad():
            target_dec = _fused_cls(orig, f_pix, f_ids[perm], f_mask[perm])
            target_mm = _fused_cls(orig, r_pix, r_ids, r_mask)
            target_img = orig.image_feat(orig.encode_image(f_pix))
        loss = (w_decouple * F.mse_loss(_fused_cls(bb, f_pix, f_ids, f_mask), target_dec)
                + w_multimodal * F.mse_loss(_fused_cls(bb, r_pix, r_ids, r_mask), target_mm)
                + w_unimodal * F.mse_loss(bb.image_feat(bb.encode_image(f_pix)), target_img))
        step(opt, loss, bb.parameters())
    return bb, {"steps": steps, "lr": lr}
