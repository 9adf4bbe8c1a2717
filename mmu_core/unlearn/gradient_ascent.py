"""GA: gradient ascent on the training loss of D_f (Thudi et al. 2022; Golatkar et al.
2020's simplest form): the negated ITC + ITM loss of the forgetting pairs (`pair_loss`)."""

from __future__ import annotations

import torch

from mmu_core.unlearn import register
from mmu_core.unlearn.request import Request, optimiser, pair_loss, sample, step


@register("ga")
def gradient_ascent(request: Request, steps: int = 5, lr: float = 2e-5, batch_size: int = 32):
    bb = request.fresh_model()
    opt = optimiser(bb, lr)
    gen = torch.Generator().manual_seed(request.seed)
    for _ in range(steps):
        loss = pair_loss(bb, sample(request.forget, batch_size, gen),
                         sample(request.retain, batch_size, gen))
        step(opt, -loss, bb.parameters())
    return bb, {"steps": steps, "lr": lr}
