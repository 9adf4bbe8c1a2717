"""What was erased, in numbers (paper Figures 1, 7, 8, 10, Table 5): matching-score
matrices, the semantic space projected to 2-D, and the modality probe. Compute only: the
figures are drawn in `figures.py`."""

from __future__ import annotations

import numpy as np
import torch

from mmu_core.data.loaders import Pair, open_image


def neighbours(bb, forget: list[Pair], pool: list[Pair], k: int = 6) -> list[Pair]:
    """The `k` pairs of `pool` (other groups) whose images the model finds most similar to
    the forgetting images: the context a matching-score matrix shows them in."""
    groups = {p.group for p in forget}
    pool = [p for p in pool if p.group not in groups]
    if not pool or k <= 0:
        return []
    f_img, _ = _features(bb, forget)
    p_img, _ = _features(bb, pool)
    best = (p_img @ f_img.T).max(1)
    picked, seen = [], set()
    for i in np.argsort(-best):  # one pair per group, so the matrix has no duplicate rows
        if pool[i].group not in seen:
            picked.append(pool[i])
            seen.add(pool[i].group)
        if len(picked) == k:
            break
    return picked


@torch.no_grad()
def matching_matrix(bb, pairs: list[Pair]) -> np.ndarray:
    """ITM match probability of every image (rows) with every text (columns)."""
    images = [open_image(p) for p in pairs]
    texts = [p.text for p in pairs]
    n = len(pairs)
    probs = bb.score_pairs([im for im in images for _ in range(n)], texts * n)["itm"]
    return probs.numpy().reshape(n, n)


@torch.no_grad()
def _features(bb, pairs: list[Pair], batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """ITC image and text features (the shared semantic space), L2-normalised."""
    img, txt = [], []
    for s in range(0, len(pairs), batch):
        chunk = pairs[s:s + batch]
        img.append(bb.image_feat(bb.encode_image(bb.pixels([open_image(p) for p in chunk]))))
        ids, mask = bb.tokenize([p.text for p in chunk])
        txt.append(bb.text_feat(bb.encode_text(ids, mask)))
    return torch.cat(img).cpu().numpy(), torch.cat(txt).cpu().numpy()


def semantic_map(bb, forget: list[Pair], remain: list[Pair], method: str = "tsne",
                 seed: int = 0) -> dict:
    """2-D coordinates of the image and text features of forgetting and remaining pairs
    (t-SNE or UMAP, fitted on this model's features), with what each point is."""
    if method not in ("tsne", "umap"):
        raise ValueError(f"unknown projection {method!r}; choose tsne or umap")
    pairs = forget + remain
    img, txt = _features(bb, pairs)
    x = np.concatenate([img, txt])
    if method == "tsne":
        from sklearn.manifold import TSNE

        xy = TSNE(2, perplexity=min(30.0, (len(x) - 1) / 3), init="pca",
                  random_state=seed).fit_transform(x)
    else:
        import umap

        xy = umap.UMAP(n_neighbors=min(15, len(x) - 1), random_state=seed,
                       n_jobs=1).fit_transform(x)
    n = len(pairs)
    return {"xy": xy, "modality": ["image"] * n + ["text"] * n,
            "forgetting": [i < len(forget) for i in range(n)] * 2,
            "text": [p.text for p in pairs] * 2, "method": method}


def warm_up_umap() -> None:
    """UMAP compiles with numba on its first fit (~18 s); do it once, off the request path."""
    import umap

    umap.UMAP(n_neighbors=5, n_jobs=1, random_state=0).fit_transform(
        np.random.default_rng(0).normal(size=(40, 8)))


def modality_probe(mvi, captioner, painter, pairs: list[Pair]) -> dict:
    """Table 5 on these pairs: how theta_M labels U' and K' of each modality."""
    from mmu_core.mvi.model import features, modality_probe as theta_m_probe

    with torch.no_grad():
        return theta_m_probe(mvi, features(captioner, painter, pairs))
