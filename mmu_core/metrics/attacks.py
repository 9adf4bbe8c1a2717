"""Per-pair membership attacks, beside the population SVM of `membership` (per-example
attacks are much stronger than population ones: Hayes et al., SaTML 2025).

loss        the pair's own training loss under the model: ITM cross-entropy as a match, plus
            ITC cross-entropy of its image against its own text among a fixed set of
            contrast texts. Lower loss = more member-like.
calibrated  the same loss relative to a reference model that never saw the scenario's pairs
            (the pretrained backbone): reference loss - model loss (Watson et al., ICLR
            2022). It removes how easy a pair is by itself.

Each attack is summarised as the AUC of D_f (positives) against never-trained pairs, and per
forgetting pair as its percentile among the never-trained pairs' scores: 50 looks unseen,
100 is more member-like than every unseen pair.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from mmu_core.data.loaders import Pair, open_image
from mmu_core.models.backbone import Backbone

CONTRAST_TEXTS = 64


def contrast_texts(pool: list[Pair], n: int = CONTRAST_TEXTS, seed: int = 0) -> list[str]:
    """A fixed set of texts for the ITC term, drawn from `pool` (pairs of groups other than
    the ones attacked, e.g. D_r), so every model is scored against the same negatives."""
    idx = np.random.default_rng(seed).choice(len(pool), min(n, len(pool)), replace=False)
    return [pool[i].text for i in sorted(idx)]


@torch.no_grad()
def pair_losses(bb: Backbone, pairs: list[Pair], contrast: list[str],
                batch_size: int = 64) -> np.ndarray:
    """Each pair's ITM + ITC loss (see the module docstring), in pair order."""
    bb.eval()
    c_ids, c_mask = bb.tokenize(contrast)
    c_feat = bb.text_feat(bb.encode_text(c_ids, c_mask))
    temp = bb.temp.clamp(0.001, 0.5)
    out = []
    for s in range(0, len(pairs), batch_size):
        chunk = pairs[s:s + batch_size]
        pix = bb.pixels([open_image(p) for p in chunk])
        ids, mask = bb.tokenize([p.text for p in chunk])
        img = bb.encode_image(pix)
        i_feat = bb.image_feat(img)
        own = (i_feat * bb.text_feat(bb.encode_text(ids, mask))).sum(-1) / temp
        logits = torch.cat([own[:, None], i_feat @ c_feat.t() / temp], 1)
        itc = torch.logsumexp(logits, 1) - own
        itm = -F.log_softmax(bb.itm_logits(bb.fuse(img, ids, mask)), -1)[:, 1]
        out.append((itc + itm).float().cpu())
    return torch.cat(out).numpy()


def percentiles(scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each score's percentile among `reference` scores (ties count half)."""
    ref = np.sort(reference)
    below = np.searchsorted(ref, scores, side="left")
    upto = np.searchsorted(ref, scores, side="right")
    return 100.0 * (below + upto) / (2 * len(ref))


def _summary(member_scores: np.ndarray, unseen_scores: np.ndarray) -> dict:
    y = np.r_[np.ones(len(member_scores)), np.zeros(len(unseen_scores))]
    return {"auc": round(float(roc_auc_score(y, np.r_[member_scores, unseen_scores])), 4),
            "per_pair": [round(float(p), 1) for p in percentiles(member_scores, unseen_scores)]}


def per_pair_attacks(losses_forget: np.ndarray, losses_unseen: np.ndarray,
                     ref_forget: np.ndarray | None = None,
                     ref_unseen: np.ndarray | None = None) -> dict:
    """The loss attack and, given the reference model's losses on the same pairs, the
    calibrated one."""
    out = {"loss": _summary(-losses_forget, -losses_unseen)}
    if ref_forget is not None:
        out["calibrated"] = _summary(ref_forget - losses_forget, ref_unseen - losses_unseen)
    return out
