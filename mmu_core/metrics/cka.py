"""Representation similarity per layer: linear CKA (Kornblith et al., ICML 2019) between two
backbones' hidden states on the same pairs. Logits can look forgotten while the layers
below stay where they were; CKA against Retrain and against the original says which."""

from __future__ import annotations

import torch

from mmu_core.data.loaders import Pair, open_image
from mmu_core.models.backbone import Backbone


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of two feature matrices over the same n examples ([n, d1], [n, d2])."""
    x = x.double() - x.double().mean(0)
    y = y.double() - y.double().mean(0)
    hsic = (y.t() @ x).norm() ** 2
    norm = (x.t() @ x).norm() * (y.t() @ y).norm()
    return float(hsic / norm) if norm > 0 else float("nan")


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
