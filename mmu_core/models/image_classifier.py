"""A small image classifier for an Inception-Score-style measure of generated images.

It is NOT the Inception network (which cannot be downloaded here and knows nothing of the
procedural world): a small CNN trained by this project on the generic pretraining images
to name the kind of picture and its background colour (8 portrait walls + 6 scene
backgrounds = 14 classes). The score is exp(E_x KL(p(y|x) || p(y))), as Inception Score
is, so it is at most 14 and only comparable between runs of this classifier.
"""

from __future__ import annotations

import re
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin

from mmu_core.data.loaders import Pair, open_image
from mmu_core.data.vocab import BACKGROUNDS, SCENE_BACKGROUNDS
from mmu_core.models.building import LOCK

LABELS = [f"portrait/{c}" for c in BACKGROUNDS] + [f"scene/{c}" for c in SCENE_BACKGROUNDS]
IMAGE_SIZE = 32
_WALL = re.compile(r"front of an? (\w+) wall")
_BACKGROUND = re.compile(r"(?:of|on) an? (\w+) background|^an? (\w+) picture")


def label_of(caption: str) -> int | None:
    """The class a caption states, or None when it does not name the background."""
    if m := _WALL.search(caption):
        return LABELS.index(f"portrait/{m.group(1)}")
    if m := _BACKGROUND.search(caption):
        return LABELS.index(f"scene/{m.group(1) or m.group(2)}")
    return None


def to_tensor(images) -> torch.Tensor:
    import numpy as np

    arr = np.stack([np.asarray(im.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE),
                                                         resample=3)) for im in images])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1.0


class ImageClassifier(nn.Module, PyTorchModelHubMixin):
    def __init__(self, num_classes: int = len(LABELS)):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.SiLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.SiLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(64, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @torch.no_grad()
    def probabilities(self, images) -> torch.Tensor:
        self.eval()
        return torch.cat([self(to_tensor(images[s:s + 256])).softmax(-1)
                          for s in range(0, len(images), 256)])


def labelled_images(pairs: list[Pair]) -> tuple[list, list[int]]:
    """One (image, label) per distinct image whose captions name its background."""
    seen = {}
    for p in pairs:
        if p.image not in seen and (y := label_of(p.text)) is not None:
            seen[p.image] = (p, y)
    return [open_image(p) for p, _ in seen.values()], [y for _, y in seen.values()]


def train_classifier(pairs: list[Pair], epochs: int = 6, seed: int = 0,
                     held_out: float = 0.1) -> tuple[ImageClassifier, dict]:
    start = time.perf_counter()
    images, labels = labelled_images(pairs)
    x, y = to_tensor(images), torch.tensor(labels)
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(y), generator=g)
    n_test = int(held_out * len(y))
    test, train = order[:n_test], order[n_test:]
    with LOCK:  # see models.building
        torch.manual_seed(seed)
        clf = ImageClassifier()
    opt = torch.optim.AdamW(clf.parameters(), lr=2e-3)
    for _ in range(epochs):
        clf.train()
        for idx in train[torch.randperm(len(train), generator=g)].split(64):
            # small colour jitter: generated images are blurrier and off-tone
            xb = x[idx] + 0.1 * torch.randn(x[idx].shape, generator=g)
            loss = F.cross_entropy(clf(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    clf.eval()
    with torch.no_grad():
        acc = float((clf(x[test]).argmax(-1) == y[test]).float().mean())
    return clf, {"images": len(y), "held_out": n_test, "held_out_accuracy": round(100 * acc, 2),
                 "epochs": epochs, "seed": seed,
                 "seconds": round(time.perf_counter() - start, 1)}


def inception_style_score(clf: ImageClassifier, images) -> float:
    """exp(E_x KL(p(y|x) || p(y))) with this project's classifier (not Inception)."""
    p = clf.probabilities(list(images)).double().clamp(min=1e-12)
    marginal = p.mean(0, keepdim=True)
    return float((p * (p.log() - marginal.log())).sum(-1).mean().exp())
