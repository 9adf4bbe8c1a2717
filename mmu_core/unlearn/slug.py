"""SLUG: "Targeted unlearning with single layer unlearning gradient" (Cai et al., 2024).
Gradients of the training loss on D_f (forget) and D_r (retain) for every weight matrix;
layer importance ||g_f|| / ||W|| and gradient alignment |cos(g_r, g_f)|; the Pareto front
of (high importance, low alignment); one gradient-ascent step on the front's best layer
with its size found by binary search."""

from __future__ import annotations

import torch

from mmu_core.unlearn import register
from mmu_core.unlearn.request import Request, pair_loss, sample, tensors


def _grads(bb, pairs, contrast):
    bb.zero_grad(set_to_none=True)
    pair_loss(bb, pairs, contrast).backward()
    out = {n: p.grad.detach().clone() for n, p in bb.named_parameters()
           if p.grad is not None and p.dim() == 2}
    bb.zero_grad(set_to_none=True)
    return out


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """Names not dominated in (importance: higher better, alignment: lower better)."""
    return [n for n, (imp, al) in points.items()
            if not any(i2 >= imp and a2 <= al and (i2, a2) != (imp, al)
                       for i2, a2 in points.values())]


@torch.no_grad()
def _forget_score(bb, pix, ids, mask) -> float:
    """Mean ITM match probability of the forgetting pairs."""
    return float(bb.itm_logits(bb.fuse(bb.encode_image(pix), ids, mask)).softmax(-1)[:, 1].mean())


@register("slug")
def slug(request: Request, batch_size: int = 64, target_ratio: float = 0.5,
         search_steps: int = 10, max_step: float = 1.0):
    bb = request.fresh_model()
    gen = torch.Generator().manual_seed(request.seed)
    contrast = sample(request.retain, batch_size, gen)
    g_f = _grads(bb, sample(request.forget, batch_size, gen), contrast)
    g_r = _grads(bb, sample(request.retain, batch_size, gen), contrast)
    params = dict(bb.named_parameters())
    points = {}
    for n, gf in g_f.items():
        imp = float(gf.norm() / params[n].detach().norm().clamp(min=1e-12))
        al = float(torch.nn.functional.cosine_similarity(gf.flatten(), g_r[n].flatten(), 0).abs())
        points[n] = (imp, al)
    front = pareto_front(points)
    layer = max(front, key=lambda n: points[n][0] / (points[n][1] + 1e-3))
    w0 = params[layer].detach().clone()
    direction = g_f[layer] / g_f[layer].norm() * w0.norm()  # ascent, scaled to the layer
    f_pix, f_ids, f_mask = tensors(bb, request.forget)
    start = _forget_score(bb, f_pix, f_ids, f_mask)
    lo, hi = 0.0, max_step
    for _ in range(search_steps):  # smallest step that halves the forgetting pairs' match
        mid = (lo + hi) / 2
        with torch.no_grad():
            params[layer].copy_(w0 + mid * direction)
        if _forget_score(bb, f_pix, f_ids, f_mask) <= target_ratio * start:
            hi = mid
        else:
            lo = mid
    with torch.no_grad():
        params[layer].copy_(w0 + hi * direction)
    return bb, {"layer": layer, "step": round(hi, 5), "front": len(front),
                "forget_match_before": round(start, 4),
                "forget_match_after": round(_forget_score(bb, f_pix, f_ids, f_mask), 4)}
