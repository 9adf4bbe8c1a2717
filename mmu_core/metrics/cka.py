"""Representation similarity per layer: linear CKA (Kornblith et al., ICML 2019) between two
backbones' hidden states on the same pairs, debiased (see `linear_cka`). Logits can look
forgotten while the layers below stay where they were; CKA against Retrain and against the
original says which."""

from __future__ import annotations

import torch

from mmu_core.data.loaders import Pair, open_image
from mmu_core.models.backbone import Backbone

MIN_EXAMPLES = 4  # the unbiased HSIC divides by n - 3


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Debiased linear CKA of two feature matrices over the same n >= 4 examples ([n, d1],
    [n, d2]): the unbiased HSIC estimator (Song et al., JMLR 2012) in Kornblith et al.'s
    CKA. The plain estimator is biased upward on few examples: unrelated 256-d features
    score about 0.97 on 5 pairs and 0.8 on 64, which is the scale of an audit's D_f; the
    debiased one scores them near 0 (it can fall slightly below 0 by chance)."""
    k, l_ = _gram(x), _gram(y)
    norm = (_hsic(k, k) * _hsic(l_, l_)) ** 0.5
    return float(_hsic(k, l_) / norm) if norm > 0 else float("nan")


def _gram(x: torch.Tensor) -> torch.Tensor:
    x = x.double()
    k = x @ x.t()
    return k - torch.diag(torch.diag(k))  # the unbiased estimator drops the diagonal


def _hsic(k: torch.Tensor, l_: torch.Tensor) -> float:
    n = k.shape[0]
    if n < MIN_EXAMPLES:
        raise ValueError(f"debiased CKA needs at least {MIN_EXAMPLES} examples, got {n}")
    ones = torch.ones(n, dtype=k.dtype)
    return float(((k * l_).sum() + k.sum() * l_.sum() / ((n - 1) * (n - 2))
                  - 2 / (n - 2) * (ones @ k @ l_ @ ones)) / (n * (n - 3)))


def _mean_tokens(h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return h.mean(1)
    m = mask[..., None].to(h.dtype)
    return (h * m).sum(1) / m.sum(1)


@torch.no_grad()
def layer_features(bb: Backbone, pairs: list[Pair], batch_size: int = 64) -> dict:
    """Mean-pooled hidden states of every layer: `vision.<i>` (image encoder), `text.<i>`
    (text encoder alone), `fusion.<i>` (text encoder attending to the image); index 0 is
    the embedding output."""
    bb.eval()
    feats: dict[str, list] = {}
    for s in range(0, len(pairs), batch_size):
        chunk = pairs[s:s + batch_size]
        pix = bb.pixels([open_image(p) for p in chunk])
        ids, mask = bb.tokenize([p.text for p in chunk])
        vis = bb.model.vision_model(pixel_values=pix, output_hidden_states=True)
        txt = bb.model.text_encoder(input_ids=ids, attention_mask=mask,
                                    output_hidden_states=True)
        img = vis.last_hidden_state
        fused = bb.model.text_encoder(
            input_ids=ids, attention_mask=mask, encoder_hidden_states=img,
            encoder_attention_mask=torch.ones(img.shape[:-1], dtype=torch.long,
                                              device=img.device),
            output_hidden_states=True)
        for kind, states, m in (("vision", vis.hidden_states, None),
                                ("text", txt.hidden_states, mask),
                                ("fusion", fused.hidden_states[1:], mask)):
            start = 1 if kind == "fusion" else 0  # fusion's embeddings are text's
            for i, h in enumerate(states, start=start):
                feats.setdefault(f"{kind}.{i}", []).append(_mean_tokens(h, m).cpu())
    return {k: torch.cat(v) for k, v in feats.items()}


def cka_per_layer(a: dict, b: dict) -> dict[str, float]:
    """CKA of each layer of two `layer_features` results on the same pairs."""
    return {k: round(linear_cka(a[k], b[k]), 4) for k in a}
