"""Scoring one image-text pair with a backbone, for people rather than benchmarks."""

from __future__ import annotations

import torch

from mmu_core.data.inputs import check_user_text, read_user_image
from mmu_core.models.backbone import Backbone


@torch.no_grad()
def score_pair(bb: Backbone, image, text: str) -> dict:
    """ITM match probability and ITC cosine of one pair. `image` may be a path or a PIL
    image; bad input raises InputError with a message for the user."""
    img = read_user_image(image)
    text = check_user_text(text, bb.processor.tokenizer, bb.max_text_len)
    s = bb.score_pairs([img], [text])
    unknown = [w for w in bb.processor.tokenizer.tokenize(text) if w == "[UNK]"]
    return {"itm_match_probability": float(s["itm"][0]), "itc_cosine": float(s["itc"][0]),
            "unknown_words": len(unknown)}
