"""Adv: instance-wise unlearning with adversarial examples and weight importance (Cha et
al., "Learning to unlearn: instance-wise unlearning for pre-trained classifiers", AAAI
2024), carried to image-text matching: gradient ascent on D_f; targeted adversarial
images around each forgetting image (pushed to match another pair's text) kept matched
to that text, which preserves the decision boundary near D_f; and a regulariser that
lets weights important for D_f move while holding the others (inverted importance).

Importance is per parameter: each weight's squared D_f gradient, turned into its quantile
among all weights (0 = least important). A division by the global maximum would leave
almost every weight at ~0 importance (a few outliers dominate), i.e. a uniform pull back
to the original rather than L2UL's selective one."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmu_core.unlearn import register
from mmu_core.unlearn.request import (Request, optimiser, pair_loss, sample, sample_exactly,
                                      step, tensors)


def _adversarial(bb, pix, target_ids, target_mask, eps=0.03, steps=5):
    """Targeted PGD (L_inf, in normalised pixel space): raise the ITM match with the target
    texts."""
    delta = torch.zeros_like(pix, requires_grad=True)
    for _ in range(steps):
        logits = bb.itm_logits(bb.fuse(bb.encode_image(pix + delta), target_ids, target_mask))
        loss = F.cross_entropy(logits, torch.ones(len(pix), dtype=torch.long,
                                                  device=logits.device))
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta -= eps / 2 * grad.sign()
            delta.clamp_(-eps, eps)
    return (pix + delta).detach()


def quantiles(importance: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each value's quantile among all values of all tensors: the share of values below it
    (ties share the lowest), in [0, 1]."""
    flat = torch.cat([v.flatten() for v in importance.values()])
    ranks = torch.searchsorted(flat.sort().values, flat).to(flat.dtype)
    ranks /= max(1, len(flat) - 1)
    out, start = {}, 0
    for n, v in importance.items():
        out[n] = ranks[start:start + v.numel()].view_as(v)
        start += v.numel()
    return out


@register("adv")
def adversarial(request: Request, steps: int = 10, lr: float = 1e-4, batch_size: int = 16,
                reg: float = 1.0):
    bb = request.fresh_model()
    gen = torch.Generator().manual_seed(request.seed)
    # weight importance for D_f: squared gradients of its training loss (MAS/EWC-like)
    pair_loss(bb, sample(request.forget, batch_size, gen),
              sample(request.retain, batch_size, gen)).backward()
    importance = {n: p.grad.detach().pow(2) for n, p in bb.named_parameters()
                  if p.grad is not None}
    bb.zero_grad(set_to_none=True)
    hold = {n: 1.0 - q for n, q in quantiles(importance).items()}  # 1 = not important
    anchor = {n: p.detach().clone() for n, p in bb.named_parameters()}
    # adversarial examples: each forgetting image pushed to match another group's text
    f_pix, f_ids, f_mask = tensors(bb, request.forget)
    other = [p for p in request.retain if p.group not in {q.group for q in request.forget}]
    targets = sample_exactly(other, len(request.forget), gen)
    t_ids, t_mask = bb.tokenize([p.text for p in targets])
    adv_pix = _adversarial(bb, f_pix, t_ids, t_mask)
    opt = optimiser(bb, lr)
    for _ in range(steps):
        idx = torch.randperm(len(request.forget), generator=gen)[:batch_size]
        forget_batch = [request.forget[i] for i in idx.tolist()]
        forget_loss = pair_loss(bb, forget_batch, sample(request.retain, batch_size, gen))
        keep = F.cross_entropy(bb.itm_logits(bb.fuse(bb.encode_image(adv_pix[idx]),
                                                     t_ids[idx], t_mask[idx])),
                               torch.ones(len(idx), dtype=torch.long, device=t_ids.device))
        penalty = sum((hold[n] * (p - anchor[n]).pow(2)).sum()
                      for n, p in bb.named_parameters() if n in hold)
        step(opt, -forget_loss + keep + reg * penalty, bb.parameters())
    return bb, {"steps": steps, "lr": lr, "adversarial_examples": len(adv_pix)}
