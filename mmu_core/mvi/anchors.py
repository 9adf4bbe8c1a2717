"""Anchor samples (section 4.1): swapping encoders and decoders gives R_1 (images) and
R_2 (texts) for each forgetting pair, by the strategies of Table 3."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from mmu_core.data.loaders import Pair, open_image
from mmu_core.mvi.model import MVI, features, sample

STRATEGIES = ("swap", "no_swap", "only_u", "only_k", "random")  # paper Table 3


@dataclass
class Anchors:
    pair_id: str
    text: str  # the forgetting text X_2
    images: list  # R_1: PIL images
    texts: list  # R_2: strings


def _draws(mean, logvar, n: int, generator) -> list[torch.Tensor]:
    """The posterior mean first, then reparameterised draws."""
    return [mean] + [sample(mean, logvar, generator) for _ in range(n - 1)]


@torch.no_grad()
def anchors(mvi: MVI, captioner, painter, pairs: list[Pair], strategy: str = "swap",
            n_images: int = 1, n_texts: int = 1, seed: int = 0, pool: list[Pair] | None = None,
            guidance: float = 3.0, steps: int = 20) -> list[Anchors]:
    """R_1 (images) and R_2 (texts) for each forgetting pair, by a Table 3 strategy:
    swap (ours): R_2 = LM([K'(X_1); psi_2(U'_1)]), R_1 = UNet([K'(X_2); psi_1(U'_2)]);
    no_swap: each modality's own U' (R_j reconstructs X_j); only_u / only_k: one factor;
    random: X_j of other pairs in `pool` (other groups)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown anchor strategy {strategy!r}; choose from {STRATEGIES}")
    if n_images < 1 or n_texts < 1:
        raise ValueError("n_images and n_texts must be at least 1")
    if strategy == "random":
        return _random_anchors(pairs, pool, n_images, n_texts, seed)
    f = features(captioner, painter, pairs)
    gen = torch.Generator().manual_seed(seed)
    mu1, lv1 = mvi.encode_image(f.pixels)
    mu2, lv2 = mvi.encode_text(f.ids)
    # which U' goes to which decoder
    u_for_text, u_for_image = {"swap": ((mu1, lv1), (mu2, lv2)),
                               "no_swap": ((mu2, lv2), (mu1, lv1)),
                               "only_u": ((mu1, lv1), (mu2, lv2)),
                               "only_k": (None, None)}[strategy]
    texts = []
    for u in (_draws(*u_for_text, n_texts, gen) if u_for_text else [None] * n_texts):
        parts = ([] if strategy == "only_u" else [f.k_image]) + (
            [] if u is None else [mvi.psi(u, "text")])
        texts.append(captioner.generate(torch.cat(parts, 1)))
    images = []
    for k, u in enumerate(_draws(*u_for_image, n_images, gen) if u_for_image
                          else [None] * n_images):
        parts = ([] if strategy == "only_u" else [f.k_text]) + (
            [] if u is None else [mvi.psi(u, "image")])
        images.append(painter.generate(torch.cat(parts, 1), steps=steps, guidance=guidance,
                                       seed=seed + k))
    return [Anchors(p.pair_id, f.texts[i], [ims[i] for ims in images], [ts[i] for ts in texts])
            for i, p in enumerate(pairs)]


def _random_anchors(pairs, pool, n_images, n_texts, seed) -> list[Anchors]:
    import random

    if not pool:
        raise ValueError("the 'random' strategy needs a pool of pairs to draw X_j from")
    rng = random.Random(seed)
    out = []
    for p in pairs:
        others = [q for q in pool if q.group != p.group]
        if not others:
            raise ValueError(f"no pair outside group {p.group} to draw from")
        out.append(Anchors(p.pair_id, p.text,
                           [open_image(rng.choice(others)) for _ in range(n_images)],
                           [rng.choice(others).text for _ in range(n_texts)]))
    return out



def write_anchors(items: list[Anchors], out: str | Path) -> Path:
    """R_1 as PNGs under out/R1/, R_2 and the file index in out/anchors.json."""
    out = Path(out)
    (out / "R1").mkdir(parents=True, exist_ok=True)
    index = []
    for a in items:
        files = []
        for k, im in enumerate(a.images):
            name = f"R1/{a.pair_id}_{k}.png"
            im.save(out / name)
            files.append(name)
        index.append({"pair_id": a.pair_id, "text": a.text, "R1": files, "R2": a.texts})
    (out / "anchors.json").write_text(json.dumps(index, indent=1))
    return out / "anchors.json"
