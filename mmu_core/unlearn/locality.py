"""What an edit may not move: tools that keep the retained pairs where they were.

- `NullSpaceProjector` (AlphaEdit, Fang et al. ICLR 2025; projected-gradient unlearning,
  Hoang et al. WACV 2024): every edited linear layer's update is projected onto the
  directions that D_r's inputs to that layer hardly use, so W x stays put for them.
- `saliency_mask` (SalUn, Fan et al. ICLR 2024; SFR-on as MMUnlearner uses it): only the
  weights whose gradient on D_f outweighs their gradient on D_r may change.
- `feature_retention` (MultiDelete's unimodal and multimodal knowledge retention): the
  fused CLS and the projected image / text features of D_r, and the separate image and
  text features of D_f, held at the original's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmu_core.data.loaders import Pair
from mmu_core.unlearn.request import tensors


def _passes(bb, pix, ids, mask):
    """The forward passes through which D_r is used (retrieval and matching): both
    encoders, both projections, the fusion of each image with its own text and with a
    neighbour's (ITM re-ranks non-matching candidates too), and the ITM head."""
    img, txt = bb.encode_image(pix), bb.encode_text(ids, mask)
    bb.image_feat(img), bb.text_feat(txt)
    bb.itm_logits(bb.fuse(img, ids, mask))
    bb.itm_logits(bb.fuse(img, ids.roll(1, 0), mask.roll(1, 0)))


class NullSpaceProjector:
    """For each nn.Linear of the backbone, the projector P = I - U U^T onto the complement
    of the top principal directions U of D_r's inputs to it (those holding `energy` of
    their second moment). `project(before)` replaces each weight's update dW by dW P, so
    the layer's output on D_r's inputs moves by at most what the dropped energy allows.
    Biases, norms and embeddings shift every input alike: they are not edited."""

    def __init__(self, bb, retain: list[Pair], energy: float = 0.99, max_pairs: int = 256,
                 batch: int = 64, seed: int = 0):
        if not 0 < energy < 1:
            raise ValueError(f"energy must lie strictly between 0 and 1 (got {energy})")
        self.layers = {name: m for name, m in bb.model.named_modules()
                       if isinstance(m, nn.Linear)}
        second = {name: torch.zeros(m.in_features, m.in_features, dtype=torch.float64)
                  for name, m in self.layers.items()}

        def hook(name):
            def fn(module, inputs, output):
                x = inputs[0].detach().reshape(-1, module.in_features).double()
                second[name] += (x.t() @ x).cpu()
            return fn
        handles = [m.register_forward_hook(hook(n)) for n, m in self.layers.items()]
        g = torch.Generator().manual_seed(seed)
        pick = torch.randperm(len(retain), generator=g)[:max_pairs].tolist()
        pairs = [retain[i] for i in pick]
        try:
            with torch.no_grad():
                for s in range(0, len(pairs), batch):
                    _passes(bb, *tensors(bb, pairs[s:s + batch]))
        finally:
            for h in handles:
                h.remove()
        self.kept_dims = {}
        self.projectors = {}
        for name, c in second.items():
            vals, vecs = torch.linalg.eigh(c)  # ascending
            vals, vecs = vals.flip(0).clamp(min=0), vecs.flip(1)
            cum = vals.cumsum(0) / vals.sum().clamp(min=1e-30)
            k = int((cum < energy).sum()) + 1  # protected directions
            u = vecs[:, :k]
            p = torch.eye(c.shape[0], dtype=torch.float64) - u @ u.t()
            self.projectors[name] = p.float().to(bb.device)
            self.kept_dims[name] = c.shape[0] - k  # dimensions left to the edit

    def parameters(self) -> list[nn.Parameter]:
        return [m.weight for m in self.layers.values()]

    def snapshot(self) -> dict:
        return {n: m.weight.detach().clone() for n, m in self.layers.items()}

    @torch.no_grad()
    def project(self, before: dict) -> None:
        for name, m in self.layers.items():
            m.weight.copy_(before[name] + (m.weight - before[name]) @ self.projectors[name])

    def summary(self) -> dict:
        dims = sum(m.in_features for m in self.layers.values())
        return {"layers": len(self.layers),
                "free_fraction": round(sum(self.kept_dims.values()) / dims, 4)}


def saliency_mask(params: list[nn.Parameter], forget_loss, retain_loss,
                  fraction: float) -> list[torch.Tensor]:
    """SalUn / SFR-on: 1 for the weights whose normalised gradient magnitude on the forget
    loss exceeds that on the retain loss, restricted to the top `fraction` of all weights
    by that ratio; 0 elsewhere. The two losses are callables returning scalars."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1] (got {fraction})")

    def grads(loss_fn):
        gs = torch.autograd.grad(loss_fn(), params, allow_unused=True)
        gs = [torch.zeros_like(p) if g is None else g.abs() for g, p in zip(gs, params)]
        scale = torch.cat([g.flatten() for g in gs]).mean().clamp(min=1e-30)
        return [g / scale for g in gs]
    g_f, g_r = grads(forget_loss), grads(retain_loss)
    ratio = [f / (r + 1e-8) for f, r in zip(g_f, g_r)]
    flat = torch.cat([r.flatten() for r in ratio])
    k = max(1, int(fraction * flat.numel()))
    threshold = max(float(flat.topk(k).values[-1]), 1.0)
    return [((r >= threshold) & (f > 0)).float() for r, f in zip(ratio, g_f)]


def feature_targets(bb, pix, ids, mask, keys=("fused", "image", "text")) -> dict:
    """What `feature_retention` holds: fused CLS, projected image and text features."""
    img = bb.encode_image(pix)
    out = {"image": bb.image_feat(img)}
    if "text" in keys:
        out["text"] = bb.text_feat(bb.encode_text(ids, mask))
    if "fused" in keys:
        out["fused"] = bb.fuse(img, ids, mask)[:, 0]
    return out


@torch.no_grad()
def original_features(original, pix, ids, mask, chunk: int = 128) -> dict:
    """`feature_targets` of the original over many pairs, once, in chunks."""
    parts = [feature_targets(original, pix[s:s + chunk], ids[s:s + chunk], mask[s:s + chunk])
             for s in range(0, len(ids), chunk)]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def feature_retention(bb, retain_batch, retain_target: dict, forget_batch,
                      forget_target: dict) -> torch.Tensor:
    """MultiDelete's retention terms, each a mean squared error to the original's features
    (`original_features`, rows aligned with the batches): D_r's fused CLS (multimodal) and
    projected image / text features, D_f's image and text features taken apart (unimodal:
    each modality alone stays readable)."""
    loss = 0.0
    for batch, target, keys in ((retain_batch, retain_target, ("fused", "image", "text")),
                                (forget_batch, forget_target, ("image", "text"))):
        now = feature_targets(bb, *batch, keys=keys)
        loss = loss + sum(F.mse_loss(now[k], target[k]) for k in keys)
    return loss
