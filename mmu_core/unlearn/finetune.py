"""Finetune: continue the original's training loss on D_r only, so that D_f fades by
catastrophic forgetting (the usual unlearning baseline, e.g. Golatkar et al. 2020)."""

from __future__ import annotations

import torch

from mmu_core.unlearn import register
from mmu_core.unlearn.request import Request, group_ids, optimiser, sample, step, tensors


@register("finetune")
def finetune(request: Request, steps: int = 60, lr: float = 1e-4, batch_size: int = 32):
    from mmu_core.training.recipes import itc_itm_loss

    bb = request.fresh_model()
    opt = optimiser(bb, lr)
    gen = torch.Generator().manual_seed(request.seed)
    for _ in range(steps):
        batch = sample(request.retain, batch_size, gen)
        pix, ids, mask = tensors(bb, batch)
        losses = itc_itm_loss(bb, pix, ids, mask, group_ids(batch).to(bb.device), gen)
        step(opt, losses["itc"] + losses["itm"], bb.parameters())
    return bb, {"steps": steps, "lr": lr}
