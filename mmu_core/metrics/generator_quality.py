"""Quick checks that the embedded generators follow their inputs, on portraits of people
they never saw (the profiles' photos): the colours a caption names, and the colour an
image shows where its prompt placed it."""

from __future__ import annotations

import re

import numpy as np

from mmu_core.data.loaders import Pair, open_image
from mmu_core.data.vocab import BACKGROUNDS, COLOURS, SHIRT_COLOURS

_SHIRT = re.compile(r"wearing an? (\w+) shirt")
_WALL = re.compile(r"front of an? (\w+) wall")


def caption_colour_accuracy(captioner, photos: list[Pair]) -> dict:
    """Greedy captions of appearance photos; the share naming the right shirt and wall
    colour (read from the reference caption)."""
    hits = {"shirt": 0, "wall": 0}
    examples = []
    for s in range(0, len(photos), 32):
        chunk = photos[s:s + 32]
        for p, cap in zip(chunk, captioner.caption([open_image(p) for p in chunk])):
            for key, rx in (("shirt", _SHIRT), ("wall", _WALL)):
                ref, got = rx.search(p.text), rx.search(cap)
                hits[key] += bool(ref and got and ref.group(1) == got.group(1))
            if len(examples) < 5:
                examples.append({"reference": p.text, "generated": cap})
    n = len(photos)
    return {"shirt_colour_acc": 100 * hits["shirt"] / n, "wall_colour_acc": 100 * hits["wall"] / n,
            "n": n, "examples": examples}


def _nearest(rgb, names) -> str:
    return min(names, key=lambda c: float(np.sum((np.array(COLOURS[c]) - rgb) ** 2)))


def painted_colour_accuracy(painter, prompts: list[str], seed: int = 0, guidance: float = 3.0,
                            steps: int = 20) -> dict:
    """Images from appearance prompts; read the wall colour from the top corners and the
    shirt colour from the bottom centre, and compare with the prompt (chance: 1/8 each)."""
    hits = {"shirt": 0, "wall": 0}
    for s in range(0, len(prompts), 16):
        chunk = prompts[s:s + 16]
        images = painter.generate(painter.knowledge(chunk), steps=steps, guidance=guidance,
                                  seed=seed + s)
        for text, im in zip(chunk, images):
            a = np.asarray(im.convert("RGB").resize((32, 32))).astype(float)
            wall = np.concatenate([a[:6, :5].reshape(-1, 3), a[:6, -5:].reshape(-1, 3)]).mean(0)
            shirt = a[-5:, 12:20].reshape(-1, 3).mean(0)
            hits["wall"] += _WALL.search(text).group(1) == _nearest(wall, BACKGROUNDS)
            hits["shirt"] += _SHIRT.search(text).group(1) == _nearest(shirt, SHIRT_COLOURS)
    n = len(prompts)
    return {"shirt_colour_acc": 100 * hits["shirt"] / n, "wall_colour_acc": 100 * hits["wall"] / n,
            "n": n, "guidance": guidance, "steps": steps}


def self_bleu(texts: list[str], n: int = 4) -> float:
    """Self-BLEU-n (%, lower = more diverse; Zhu et al. 2018): each text scored by nltk's
    sentence BLEU against all the others as references, averaged."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    if len(texts) < 2:
        raise ValueError("Self-BLEU needs at least two texts")
    tokens = [t.lower().replace(".", " .").split() for t in texts]
    weights = tuple([1.0 / n] * n)
    smooth = SmoothingFunction().method1
    scores = [sentence_bleu(tokens[:i] + tokens[i + 1:], hyp, weights=weights,
                            smoothing_function=smooth) for i, hyp in enumerate(tokens)]
    return 100 * float(np.mean(scores))


def anchor_quality(clf, pairs: list[Pair], items) -> dict:
    """The generation columns of Tables 3, 7 and 8 for the anchors of a forget set
    (`items`, aligned with `pairs`): the IS-style score of every R_1 (`clf`, the project's
    classifier) and Self-BLEU-4 of one R_2 set per distinct forgetting image (swap texts
    depend on the image only), with those R_2 texts."""
    from mmu_core.models.image_classifier import inception_style_score

    first = {p.image: a for p, a in zip(pairs, items)}
    r2 = [t for a in first.values() for t in a.texts]
    return {"IS": inception_style_score(clf, [im for a in items for im in a.images]),
            "self_bleu4": self_bleu(r2), "R_2": r2}
