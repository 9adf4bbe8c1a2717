"""Per-word matching-score shifts (paper Table 9): the ITM match probability of each
image with each single word of its own text, before and after unlearning, averaged per
word over the pairs it occurs in."""

from __future__ import annotations

import re
from collections import defaultdict

import torch

from mmu_core.data.loaders import Pair, open_image


@torch.no_grad()
def word_scores(bb, pairs: list[Pair]) -> list[dict[str, float]]:
    """For every pair, {word: match probability (%) of (image, word)}."""
    out = []
    for p in pairs:
        words = sorted(set(re.findall(r"[a-z]+", p.text.lower())))
        if not words:
            out.append({})
            continue
        image = open_image(p)
        probs = bb.score_pairs([image] * len(words), words)["itm"]
        out.append({w: 100 * float(v) for w, v in zip(words, probs)})
    return out


def word_shifts(before, after, pairs: list[Pair], top: int = 15, min_count: int = 2,
                near: float = 2.0) -> dict:
    """Average shift per word (after - before, percentage points) in three lists: the `top`
    largest drops (negative shifts only, most negative first), the `top` words (seen at
    least `min_count` times) that moved least (|shift| <= `near`, by |shift|), and the
    `top` largest rises (shifts above `near`), so that no rise passes for a drop or for
    "near zero"."""
    b, a = word_scores(before, pairs), word_scores(after, pairs)
    shifts = defaultdict(list)
    for sb, sa in zip(b, a):
        for w in sb:
            shifts[w].append(sa[w] - sb[w])
    mean = {w: sum(v) / len(v) for w, v in shifts.items()}
    count = {w: len(v) for w, v in shifts.items()}
    drops = sorted((w for w in mean if mean[w] < 0), key=lambda w: mean[w])[:top]
    steady = sorted((w for w in mean if count[w] >= min_count and abs(mean[w]) <= near
                     and w not in drops), key=lambda w: abs(mean[w]))[:top]
    rises = sorted((w for w in mean if mean[w] > near), key=lambda w: -mean[w])[:top]

    def rows(words, digits):
        return [[w, round(mean[w], digits), count[w]] for w in words]

    return {"largest": rows(drops, 3), "near_zero": rows(steady, 5), "rises": rows(rises, 3),
            "near": near,
            "pairs": len(pairs), "words": len(mean)}
