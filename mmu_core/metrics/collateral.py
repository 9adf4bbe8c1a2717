"""Collateral of one request: how far it moved the retained pairs most like the forgotten
ones (other people's own matches), so locality shows per request and not only in D_r
averages. Figure 1 of the paper in one number: forgetting one CEO must leave the others'."""

from __future__ import annotations

import torch

from mmu_core.data.loaders import Pair, open_image

NEAREST_GROUPS = 10  # other people (works) nearest the request whose own matches are read


@torch.no_grad()
def image_features(bb, pairs: list[Pair], batch: int = 64) -> torch.Tensor:
    out = []
    for s in range(0, len(pairs), batch):
        pix = bb.pixels([open_image(p) for p in pairs[s:s + batch]])
        out.append(bb.image_feat(bb.encode_image(pix)).cpu())
    return torch.cat(out)


def nearest_groups(bb, forget: list[Pair], pool: list[Pair], k: int) -> list[str]:
    """The `k` groups of `pool` (not the forgetting pairs' own) whose images the model finds
    most like a forgetting image, nearest first."""
    own = {p.group for p in forget}
    pool = [p for p in pool if p.group not in own]
    if not pool or k <= 0:
        return []
    best = (image_features(bb, pool) @ image_features(bb, forget).T).max(1).values
    order: list[str] = []
    for i in best.argsort(descending=True).tolist():
        if pool[i].group not in order:
            order.append(pool[i].group)
        if len(order) == k:
            break
    return order


class Neighbours:
    """The retained pairs of the `k` groups nearest a request (chosen on `before`), with
    their ITM match under `before`: read once, compared with any model after."""

    def __init__(self, before, forget: list[Pair], retain: list[Pair],
                 k: int = NEAREST_GROUPS):
        self.groups = set(nearest_groups(before, forget, retain, k))
        self.pairs = [p for p in retain if p.group in self.groups]
        self.inputs = ([open_image(p) for p in self.pairs], [p.text for p in self.pairs])
        self.before = before.score_pairs(*self.inputs)["itm"] if self.pairs else None

    @torch.no_grad()
    def change(self, after) -> torch.Tensor:
        return after.score_pairs(*self.inputs)["itm"] - self.before

    def moved(self, after) -> float:
        """The collateral: mean |change| of their own matches (0 with no neighbours)."""
        return float(self.change(after).abs().mean()) if self.pairs else 0.0


def collateral(before, after, forget: list[Pair], retain: list[Pair],
               k: int = NEAREST_GROUPS) -> dict:
    """Mean |after - before| of the ITM match of each retained pair of the `k` groups
    nearest the request (chosen on `before`), with the signed mean and the largest."""
    near = Neighbours(before, forget, retain, k)
    if not near.pairs:
        return {"groups": 0, "pairs": 0}
    change = near.change(after)
    return {"groups": len(near.groups), "pairs": len(near.pairs),
            "mean_abs_itm_change": round(float(change.abs().mean()), 4),
            "mean_itm_change": round(float(change.mean()), 4),
            "max_abs_itm_change": round(float(change.abs().max()), 4)}
