"""BadT: "Can bad teaching induce forgetting?" (Chundawat et al., AAAI 2023). The student
(a copy of the original) matches an incompetent teacher (a randomly initialised model of
the same architecture) on D_f and the competent teacher (the original) on D_r, by KL on
the ITC similarity distributions and the ITM match distribution. `forget_weight` weighs the
incompetent teacher's KL against the competent one's (the paper's mix is 1:1)."""

from __future__ import annotations

import torch

from mmu_core.unlearn import register
from mmu_core.unlearn.request import Request, kl_to, optimiser, outputs, sample, step, tensors


@register("badt")
def bad_teacher(request: Request, steps: int = 20, lr: float = 5e-5, batch_size: int = 16,
                forget_weight: float = 1.0):
    bb = request.fresh_model()
    bad = request.original.copy()
    torch.manual_seed(request.seed)
    bad.model.init_weights() if hasattr(bad.model, "init_weights") else None
    for m in bad.modules():  # an incompetent teacher: fresh random weights
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    bad.eval()
    opt = optimiser(bb, lr)
    gen = torch.Generator().manual_seed(request.seed)
    for _ in range(steps):
        loss = 0.0
        for teacher, pool, weight in ((bad, request.forget, forget_weight),
                                      (request.original, request.retain, 1.0)):
            batch = sample(pool, batch_size, gen)
            pix, ids, mask = tensors(bb, batch)
            with torch.no_grad():
                target = outputs(teacher, pix, ids, mask)
            loss = loss + weight * kl_to(outputs(bb, pix, ids, mask), target)
        step(opt, loss, bb.parameters())
    return bb, {"steps": steps, "lr": lr, "forget_weight": forget_weight}
