"""SLUG: "Targeted unlearning with single layer unlearning gradient" (Cai et al., 2024).
Gradients of the training loss on D_f (forget) and D_r (retain) for every weight matrix;
layer importance ||g_f|| / ||W|| and gradient alignment |cos(g_r, g_f)|; the Pareto front
of (high importance, low alignment); for each layer on the front, one gradient-ascent step
whose size is found by binary search; the layer that reaches the forgetting target while
keeping the most of D_r is chosen.

The search reads a signal every candidate layer can move: each pair's mean of its ITM match
probability and its ITC probability of picking its own text (what retrieval ranks by), so
a projection that only the ITC side sees (`text_proj`) is judged by what it changes. A
step is admissible while the same signal on D_r stays above `retain_floor` of its start.
When no layer reaches the target, the result says so and keeps the admissible step that
lowers the forgetting signal most: every step the searches tried and a grid of
`search_steps` sizes up to the largest admissible one (the signal need not fall steadily
with the step's size).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmu_core.unlearn import register
from mmu_core.unlearn.request import Request, group_ids, pair_loss, sample, tensors


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


class Signal:
    """Mean over `pairs` of (ITM match probability + ITC probability of the own text among
    the texts of `pairs` and `contrast`) / 2: in [0, 1]."""

    def __init__(self, bb, pairs, contrast):
        both = list(pairs) + [c for c in contrast if c.group not in {p.group for p in pairs}]
        self.n = len(pairs)
        self.pix, self.ids, self.mask = tensors(bb, both)
        groups = group_ids(both).to(self.ids.device)
        self.pos = (groups[:self.n, None] == groups[None, :]).float()

    @torch.no_grad()
    def __call__(self, bb) -> float:
        n = self.n
        img = bb.encode_image(self.pix[:n])
        txt = bb.encode_text(self.ids, self.mask)
        itc = (F.softmax(bb.itc_logits(bb.image_feat(img), bb.text_feat(txt)), 1)
               * self.pos).sum(1)
        itm = bb.itm_logits(bb.fuse(img, self.ids[:n], self.mask[:n])).softmax(-1)[:, 1]
        return float(((itc + itm) / 2).mean())


@register("slug")
def slug(request: Request, batch_size: int = 64, target_ratio: float = 0.5,
         search_steps: int = 10, max_step: float = 1.0, retain_floor: float = 0.9,
         candidates: int = 5, max_signal_pairs: int = 128):
    bb = request.fresh_model()
    gen = torch.Generator().manual_seed(request.seed)
    contrast = sample(request.retain, batch_size, gen)
    g_f = _grads(bb, sample(request.forget, batch_size, gen), contrast)
    g_r = _grads(bb, sample(request.retain, batch_size, gen), contrast)
    params = dict(bb.named_parameters())
    points = {}
    for n, gf in g_f.items():
        imp = float(gf.norm() / params[n].detach().norm().clamp(min=1e-12))
        al = float(F.cosine_similarity(gf.flatten(), g_r[n].flatten(), 0).abs())
        points[n] = (imp, al)
    front = pareto_front(points)
    ranked = sorted(front, key=lambda n: points[n][0] / (points[n][1] + 1e-3), reverse=True)
    forget_sig = Signal(bb, sample(request.forget, max_signal_pairs, gen), contrast)
    retain_sig = Signal(bb, sample(request.retain, max_signal_pairs, gen), contrast)
    f0, r0 = forget_sig(bb), retain_sig(bb)

    def at(layer, w0, direction, size):
        with torch.no_grad():
            params[layer].copy_(w0 + size * direction)
        return forget_sig(bb), retain_sig(bb)

    tried = []
    for layer in ranked[:candidates]:
        w0 = params[layer].detach().clone()
        direction = g_f[layer] / g_f[layer].norm() * w0.norm()  # ascent, scaled to the layer
        seen = []  # every admissible (step, forget, retain) the searches evaluate

        def probe(size):
            f, r = at(layer, w0, direction, size)
            if r >= retain_floor * r0:
                seen.append((size, f, r))
            return f, r
        # largest admissible step (D_r kept above the floor), by binary search
        lo, hi = 0.0, max_step
        f_hi, r_hi = probe(hi)
        if r_hi < retain_floor * r0:
            for _ in range(search_steps):
                mid = (lo + hi) / 2
                if probe(mid)[1] >= retain_floor * r0:
                    lo = mid
                else:
                    hi = mid
            hi = lo
        limit = hi
        f_lim, r_lim = probe(limit)
        if f_lim > target_ratio * f0:
            # out of reach: the admissible step that lowers the forgetting signal most, on
            # a grid up to the limit (the signal need not fall steadily with the step)
            for k in range(1, search_steps):
                probe(limit * k / search_steps)
        best = min(seen, key=lambda t: (t[1], -t[0]))
        if f_lim <= target_ratio * f0:  # reachable: the smallest step that reaches it
            lo, hi = 0.0, limit
            for _ in range(search_steps):
                mid = (lo + hi) / 2
                if at(layer, w0, direction, mid)[0] <= target_ratio * f0:
                    hi = mid
                else:
                    lo = mid
            best = (hi, *at(layer, w0, direction, hi))
        tried.append({"layer": layer, "step": round(best[0], 5), "forget": round(best[1], 4),
                      "retain": round(best[2], 4),
                      "reached": best[1] <= target_ratio * f0})
        with torch.no_grad():
            params[layer].copy_(w0)
    reached = [t for t in tried if t["reached"]]
    # among layers that reach the target, keep the most of D_r; else forget the most
    choice = (max(reached, key=lambda t: t["retain"]) if reached
              else min(tried, key=lambda t: t["forget"]))
    w0 = params[choice["layer"]].detach().clone()
    direction = g_f[choice["layer"]] / g_f[choice["layer"]].norm() * w0.norm()
    f1, r1 = at(choice["layer"], w0, direction, choice["step"])
    return bb, {"layer": choice["layer"], "step": choice["step"], "front": len(front),
                "target_reached": bool(reached), "target": round(target_ratio * f0, 4),
                "forget_signal_before": round(f0, 4), "forget_signal_after": round(f1, 4),
                "retain_signal_before": round(r0, 4), "retain_signal_after": round(r1, 4),
                "candidates": tried}
